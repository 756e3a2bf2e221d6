"""Percent delta-BP maps whose region averages agree with the ratio of region means.

The plain map ``100 (b - c) / b`` (:func:`napari_mor.maps.pct_delta_bp`) is a
per-voxel ratio with a noisy denominator: its mean over a region is biased
(``E[c/b] > E[c]/E[b]``; about ``-(100 - pct) var(b)/b^2`` points), low for a
real drop and even of the wrong sign at high noise. The estimators here
regularise the ratio so that region averages of the map track the reference
quantity, ``100 (1 - mean_R(c) / mean_R(b))`` (docs/denoise.md has the table):

- ``"guided-ratio"`` (default): ``100 W(b - c) / W(b)``, both averaged with the
  same non-local weights ``W`` computed on the mean of the two maps (voxels of
  one region, not across edges; :func:`napari_mor.denoise.guided_nlm`). With
  equal noise in both maps their sum is uncorrelated with their difference, so
  the weights do not bias the difference.
- ``"smoothed-ratio"``: ``100 (S(b) - S(c)) / S(b)`` with ``S`` a NaN-aware
  Gaussian (:func:`napari_mor.maps.smooth_map`): a BP-weighted local mean of
  the percent change; small regions are diluted by their neighbours.
- ``"voxel-ratio"``: the plain per-voxel ratio (biased under noise).
"""

from __future__ import annotations

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import (
    DEFAULT_PCT_DELTA_ESTIMATOR,
    MIN_BP_BASE,
    PCT_DELTA_ESTIMATORS,
)

__all__ = [
    "DEFAULT_PCT_DELTA_ESTIMATOR",
    "PCT_DELTA_ESTIMATORS",
    "pct_delta_description",
    "pct_delta_map",
]

_DEFINITIONS = {
    "guided-ratio": (
        "100 * W(BP_baseline - BP_challenge) / W(BP_baseline); W: non-local means "
        "weights from the mean of both maps (single-voxel patches, Gaussian "
        "spatial weight FWHM {fwhm:g} mm, range {h:g} x its noise SD)"
    ),
    "smoothed-ratio": (
        "100 * (S(BP_baseline) - S(BP_challenge)) / S(BP_baseline); S: NaN-aware "
        "Gaussian, FWHM {fwhm:g} mm"
    ),
    "voxel-ratio": "100 * (BP_baseline - BP_challenge) / BP_baseline per voxel",
}


def pct_delta_description(
    estimator: str = DEFAULT_PCT_DELTA_ESTIMATOR, fwhm_mm: float = 6.0, h: float = 3.0
) -> dict:
    """Sidecar fields that say how a percent delta-BP map was computed.

    Parameters
    ----------
    estimator : {"guided-ratio", "smoothed-ratio", "voxel-ratio"}
    fwhm_mm : float
        Spatial FWHM, mm (unused by ``"voxel-ratio"``).
    h : float
        Range parameter of ``"guided-ratio"`` (units of the guide's noise SD).

    Returns
    -------
    fields : dict
        ``{"PctDeltaEstimator": name, "PctDeltaDefinition": text}`` (plus
        ``"PctDeltaFWHMmm"`` for the regularised estimators).
    """
    _check_estimator(estimator)
    fields = {
        "PctDeltaEstimator": estimator,
        "PctDeltaDefinition": _DEFINITIONS[estimator].format(fwhm=fwhm_mm, h=h),
    }
    if estimator != "voxel-ratio":
        fields["PctDeltaFWHMmm"] = float(fwhm_mm)
    return fields


def _check_estimator(estimator: str) -> None:
    if estimator not in PCT_DELTA_ESTIMATORS:
        raise MorError(
            f"Unknown percent delta-BP estimator {estimator!r}; choose one of "
            f"{list(PCT_DELTA_ESTIMATORS)}."
        )


def pct_delta_map(
    bp_base: np.ndarray,
    bp_chal: np.ndarray,
    affine: np.ndarray,
    *,
    estimator: str = DEFAULT_PCT_DELTA_ESTIMATOR,
    fwhm_mm: float = 6.0,
    h: float = 3.0,
    mask: np.ndarray | None = None,
    min_bp_base: float = MIN_BP_BASE,
) -> np.ndarray:
    """Percent delta-BP map, regularised so that region averages are unbiased.

    Parameters
    ----------
    bp_base, bp_chal : ndarray, shape (x, y, z)
        Baseline and challenge BP_ND on one grid (NaN: no value; not modified).
    affine : ndarray, shape (4, 4)
        Voxel->world (mm) affine, for the voxel sizes.
    estimator : {"guided-ratio", "smoothed-ratio", "voxel-ratio"}
        See the module docstring and Notes.
    fwhm_mm : float
        FWHM of the spatial weight, mm (> 0).
    h : float
        ``"guided-ratio"``: range parameter in units of the guide's noise SD;
        larger mixes regions of closer BP_ND.
    mask : ndarray of bool, shape (x, y, z), optional
        Voxels used (default: where both maps are finite).
    min_bp_base : float
        Voxels whose baseline BP_ND (the regularised one for the regularised
        estimators) is below this are NaN.

    Returns
    -------
    pct_delta_bp_nd : ndarray, shape (x, y, z), float32
        Percent; positive = reduced availability during the challenge.

    Notes
    -----
    guided-ratio: ``G = log(1 + max((b + c)/2, -0.9))`` (BP_ND noise grows
    with DVR, so its log has about even noise), ``W`` the non-local weights of
    :func:`napari_mor.denoise.guided_nlm` on ``G``; ``pct = 100 W(b - c) / W(b)``.
    In a region wider than the search window the weights average that region
    only, so the map's region mean approaches ``100 (1 - mean(c)/mean(b))``.
    """
    from napari_mor.denoise import guided_nlm
    from napari_mor.maps import _pair, pct_delta_bp, smooth_map

    _check_estimator(estimator)
    base, chal = _pair(bp_base, bp_chal)
    if base.ndim != 3:
        raise MorError(
            f"Percent delta-BP maps need 3-D BP_ND maps (x, y, z); got shape "
            f"{base.shape}. For ROI values use the ratio of region means "
            "(napari_mor.workflows.delta.roi_mean_delta)."
        )
    if estimator == "voxel-ratio":
        return pct_delta_bp(base, chal, min_bp_base)
    if not (np.isfinite(fwhm_mm) and fwhm_mm > 0):
        raise MorError(
            f"The percent delta-BP FWHM must be a positive number of mm; got "
            f"{fwhm_mm!r} (use estimator='voxel-ratio' for no regularisation)."
        )
    valid = np.isfinite(base) & np.isfinite(chal)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != base.shape:
            raise MorError(
                f"The mask has shape {mask.shape} but the BP_ND maps have shape "
                f"{base.shape}; pass a mask on the maps' grid."
            )
        valid &= mask
    if not valid.any():
        raise MorError("No voxel has finite baseline and challenge BP_ND in the mask.")
    if estimator == "smoothed-ratio":
        num = smooth_map(np.where(valid, base - chal, np.nan), affine, fwhm_mm)
        den = smooth_map(np.where(valid, base, np.nan), affine, fwhm_mm)
    else:
        guide = np.log1p(np.maximum(0.5 * (base + chal), -0.9))
        num, den = guided_nlm(
            np.stack([base - chal, base]),
            np.where(valid, guide, np.nan),
            affine,
            fwhm_mm=fwhm_mm,
            h=h,
            patch_radius_vox=0,
            mask=valid,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = valid & np.isfinite(den) & (den >= min_bp_base)
        pct = np.where(ok, 100.0 * num / np.where(ok, den, 1.0), np.nan)
    return pct.astype(np.float32)
