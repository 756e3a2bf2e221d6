"""Reference-region kinetic models for [11C]carfentanil PET (no blood sampling).

ROI fits (:func:`fit_roi`, :func:`fit_windows`, :func:`fit_two_scans`) and
voxelwise maps (:func:`fit_maps`, :func:`iter_fit_blocks`) for the Logan
reference plot, MRTM, MRTM2, SRTM, SRTM2, basis-function SRTM and the
equilibrium ratio. Times are minutes from injection, rates 1/min.
"""

from napari_mor.kinetics._setup import MODELS
from napari_mor.kinetics.integrate import (
    convolve_exponential,
    integrate_from_injection,
    integration_matrix,
)
from napari_mor.kinetics.k2p import k2p_from_high_binding_voxels, k2p_from_rois
from napari_mor.kinetics.linear import logan_t_star
from napari_mor.kinetics.results import MapResult, RoiFit
from napari_mor.kinetics.roi import (
    estimate_k2p,
    estimate_k2p_from_rois,
    fit_roi,
    fit_scans,
    fit_two_scans,
    fit_windows,
)
from napari_mor.kinetics.srtm import theta_grid
from napari_mor.kinetics.voxelwise import (
    auto_block_size,
    estimate_k2p_voxelwise,
    fit_maps,
    iter_fit_blocks,
)
from napari_mor.kinetics.weights import C11_HALF_LIFE_MIN, frame_weights

#: Model names accepted by the fitting functions.
MODEL_NAMES = tuple(MODELS)

#: Names served lazily from :mod:`napari_mor.kinetics.transient`, which imports
#: ``scipy.stats`` (~1 s): the steady-state fit path never pays for it.
_TRANSIENT_NAMES = (
    "TransientFit",
    "fit_transient",
    "iter_fit_transient_blocks",
    "simulate_target",
    "simulate_target",
)


def __getattr__(name: str):
    if name in _TRANSIENT_NAMES:
        from napari_mor.kinetics import transient

        return getattr(transient, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "C11_HALF_LIFE_MIN",
    "MODEL_NAMES",
    "MapResult",
    "RoiFit",
    "TransientFit",
    "auto_block_size",
    "convolve_exponential",
    "estimate_k2p",
    "estimate_k2p_from_rois",
    "estimate_k2p_voxelwise",
    "fit_maps",
    "fit_roi",
    "fit_scans",
    "fit_transient",
    "fit_two_scans",
    "fit_windows",
    "frame_weights",
    "integrate_from_injection",
    "integration_matrix",
    "iter_fit_blocks",
    "iter_fit_transient_blocks",
    "k2p_from_high_binding_voxels",
    "k2p_from_rois",
    "logan_t_star",
    "theta_grid",
]
