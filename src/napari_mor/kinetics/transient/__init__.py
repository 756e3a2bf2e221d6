"""Within-scan challenge: lp-ntPET-style transient-release fits (ROI and voxelwise).

A two-tissue reference-region model with ``k3(t) = k3 - Delta h(t)``:

- ``_linear``: the six-coefficient multilinear form, solved for every response
  basis by batched normal equations (voxelwise maps, start of the ROI fit);
- ``_forward``: :func:`simulate_target`, the operational forward model driven
  by the measured reference TAC;
- ``_nls``: the nonlinear least-squares refinement of ROI fits and the
  calibration of the release test.

See ``docs/transient.md`` for the equations and the validation.
"""

from napari_mor.kinetics.transient._forward import simulate_target
from napari_mor.kinetics.transient._linear import (
    DEFAULT_SHAPES,
    MIN_BASELINE_MIN,
    MIN_POST_ONSET_FRAMES,
    TransientFit,
    fit_transient,
    iter_fit_transient_blocks,
    response_basis,
)

__all__ = [
    "DEFAULT_SHAPES",
    "MIN_BASELINE_MIN",
    "MIN_POST_ONSET_FRAMES",
    "TransientFit",
    "fit_transient",
    "iter_fit_transient_blocks",
    "response_basis",
    "simulate_target",
]
