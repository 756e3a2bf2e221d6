"""BP_ND maps per condition, delta-BP and percent delta-BP, written with provenance.

Delta-BP = BP_baseline - BP_challenge; positive values mean reduced receptor
availability during the challenge (activation, endogenous opioid release).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import MIN_BP_BASE
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics import MODELS, MapResult, fit_maps

__all__ = [
    "bp_maps",
    "delta_bp",
    "map_provenance",
    "pct_delta_bp",
    "smooth_map",
    "write_map",
]


def bp_maps(
    pet: np.ndarray,
    mask: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    model: str,
    windows: Mapping[str, tuple[float, float]],
    **options,
) -> dict[str, MapResult]:
    """BP_ND maps for each named condition window of one scan.

    Parameters
    ----------
    pet : ndarray, shape (t, x, y, z)
        Dynamic PET, kBq/mL (not modified).
    mask : ndarray of bool, shape (x, y, z)
    ref : ndarray, shape (t,)
        Reference TAC.
    timing : FrameTiming
    model : str
        Map-capable model (see :func:`napari_mor.kinetics.fit_maps`).
    windows : mapping of str to (float, float)
        Condition name to window (minutes), e.g. ``{"baseline": (5, 40),
        "challenge": (45, 90)}``. Integrals run from injection in every window.
    **options
        Passed to :func:`napari_mor.kinetics.fit_maps`. Models that need k2'
        (MRTM2, SRTM2) need ``k2p_per_min``: one value shared by every window,
        so that delta-BP compares like with like (the workflows estimate it
        once per subject, :func:`napari_mor.workflows.fit.shared_k2p`).

    Returns
    -------
    results : dict of str to MapResult
        ``results[name].maps["bp_nd"]`` has shape (x, y, z), float32.
    """
    if not windows:
        raise MorError("No condition windows given; pass e.g. {'baseline': (5, 40)}.")
    if MODELS[model].k2p == "required" and options.get("k2p_per_min") is None:
        raise MorError(
            f"{model} maps need one k2' shared by every window; pass k2p_per_min "
            "(napari_mor.workflows.fit.shared_k2p applies the package's k2' policy)."
        )
    return {
        name: fit_maps(pet, mask, ref, timing, model, window=tuple(window), **options)
        for name, window in windows.items()
    }


def _pair(bp_base: np.ndarray, bp_chal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    base = np.asarray(bp_base, dtype=np.float64)
    chal = np.asarray(bp_chal, dtype=np.float64)
    if base.shape != chal.shape:
        raise MorError(
            f"Baseline BP map has shape {base.shape} but challenge BP map has "
            f"{chal.shape}; both must be on the same (PET) grid: resample one onto "
            "the other first."
        )
    return base, chal


def delta_bp(bp_base: np.ndarray, bp_chal: np.ndarray) -> np.ndarray:
    """Delta-BP = BP_baseline - BP_challenge (positive = activation).

    Parameters
    ----------
    bp_base, bp_chal : ndarray, same shape (e.g. (x, y, z) or (n_rois,))
        BP_ND at baseline and during the challenge.

    Returns
    -------
    delta_bp_nd : ndarray, float32, same shape (NaN where either is NaN)
    """
    base, chal = _pair(bp_base, bp_chal)
    return (base - chal).astype(np.float32)


def pct_delta_bp(
    bp_base: np.ndarray, bp_chal: np.ndarray, min_bp_base: float = MIN_BP_BASE
) -> np.ndarray:
    """Percent delta-BP = 100 (BP_baseline - BP_challenge) / BP_baseline.

    Parameters
    ----------
    bp_base, bp_chal : ndarray, same shape
    min_bp_base : float
        Voxels with baseline BP_ND below this (default 0.1, e.g. reference-like
        tissue, where the ratio explodes) are NaN.

    Returns
    -------
    pct_delta_bp_nd : ndarray, float32, same shape
        Percent; positive = reduced availability during the challenge.
    """
    base, chal = _pair(bp_base, bp_chal)
    if not np.isfinite(min_bp_base):
        raise MorError(f"min_bp_base must be a finite number; got {min_bp_base!r}.")
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(base) & (base >= min_bp_base)
        pct = np.where(
            valid, 100.0 * (base - chal) / np.where(valid, base, 1.0), np.nan
        )
    return pct.astype(np.float32)


def map_provenance(
    result: MapResult | None = None,
    *,
    reference_region: str | None = None,
    windows: Mapping[str, tuple[float, float]] | None = None,
    input_files: Sequence[str | Path] | Mapping[str, str | Path] = (),
    **extra,
) -> dict:
    """Provenance dictionary for a map sidecar.

    Parameters
    ----------
    result : MapResult, optional
        Supplies model, window, t*, k2', failed-voxel counts and weighting.
    reference_region : str, optional
        How the reference TAC was defined (e.g. ``"label 8 (occipital)"``).
    windows : mapping, optional
        Condition windows (minutes), when several were used.
    input_files : sequence of path, or mapping of role to path
        Input files; their SHA-256 hashes (and roles, e.g. ``"pet"``) are
        recorded under ``InputFiles``, keyed by path.
    **extra
        Further fields (e.g. ``Quantity="delta_bp_nd"``).

    Returns
    -------
    provenance : dict
        JSON-serialisable; software version and date are added on writing.
    """
    from napari_mor.io import file_sha256

    prov: dict = {}
    if result is not None:
        prov.update(
            Model=result.model,
            WindowMin=None if result.window_min is None else list(result.window_min),
            TStarMin=_finite_or_none(result.t_star_min),
            K2PrimePerMin=_finite_or_none(result.k2p_per_min),
            NVoxels=result.n_voxels,
            NFailedVoxels=result.n_failed,
            Options=result.info,
        )
    if reference_region is not None:
        prov["ReferenceRegion"] = reference_region
    if windows is not None:
        prov["WindowsMin"] = {k: list(v) for k, v in windows.items()}
    roles = (
        {str(path): role for role, path in input_files.items()}
        if isinstance(input_files, Mapping)
        else dict.fromkeys(str(path) for path in input_files)
    )
    missing = [path for path in roles if not Path(path).is_file()]
    if missing:
        raise MorError(f"Cannot hash input file(s) {missing}: they do not exist.")
    prov["InputFiles"] = {
        path: {"sha256": file_sha256(path), **({"role": role} if role else {})}
        for path, role in roles.items()
    }
    prov.update(extra)
    return prov


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def write_map(
    path: str | Path, data: np.ndarray, affine: np.ndarray, provenance: Mapping
) -> Path:
    """Write a 3-D map as NIfTI float32 with a JSON provenance sidecar.

    Parameters
    ----------
    path : str or Path
        Output ``.nii.gz`` (or ``.nii``); the sidecar is the same path with
        ``.json`` (``OUT.nii.gz`` -> ``OUT.json``).
    data : ndarray, shape (x, y, z)
        Map values (stored as float32; the array is not modified).
    affine : ndarray, shape (4, 4)
        PET voxel-to-world (mm) affine.
    provenance : mapping
        Sidecar fields (see :func:`map_provenance`); software version and date
        are added.

    Returns
    -------
    path : Path

    Notes
    -----
    Image and sidecar are each written to a temporary file in the output
    folder and moved into place with :func:`os.replace` (atomic).
    """
    from napari_mor.io import write_nifti

    data = np.asarray(data)
    if data.ndim != 3:
        raise MorError(
            f"A map must be 3-D (x, y, z); got shape {data.shape}. Write 4-D data "
            "with napari_mor.io.write_pet."
        )
    return write_nifti(path, data.astype(np.float32), affine, dict(provenance))


def smooth_map(data: np.ndarray, affine: np.ndarray, fwhm_mm: float) -> np.ndarray:
    """Gaussian smoothing with FWHM in mm; NaN-aware (normalised by the mask).

    Parameters
    ----------
    data : ndarray, shape (x, y, z)
        Map (e.g. BP_ND); NaN marks voxels without a value.
    affine : ndarray, shape (4, 4)
        Voxel->world (mm) affine, for the voxel sizes.
    fwhm_mm : float
        Full width at half maximum, mm (0: no smoothing).

    Returns
    -------
    smoothed : ndarray, shape (x, y, z), float32
        NaN where the input was NaN or where less than 10 % of the kernel
        weight fell on finite voxels.

    Notes
    -----
    ``sigma_vox = fwhm_mm / (sqrt(8 ln 2) * voxel size)`` per axis; the
    smoothed finite values are divided by the smoothed finite mask, so NaN
    voxels neither count as zeros nor spread.
    """
    from scipy import ndimage

    if fwhm_mm <= 0:
        return np.asarray(data, dtype=np.float32)
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    sigma = fwhm_mm / (np.sqrt(8 * np.log(2)) * zooms)
    finite = np.isfinite(data)
    num = ndimage.gaussian_filter(np.where(finite, data, 0.0), sigma, mode="constant")
    den = ndimage.gaussian_filter(finite.astype(float), sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(finite & (den > 0.1), num / den, np.nan)
    return out.astype(np.float32)
