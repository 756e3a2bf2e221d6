"""Display rules shared by the docks: contrast limits and thresholds (pure numpy).

No napari here: the docks pass a layer's data (and which voxels count) and get
limits back, so the rules are tested without a viewer.
"""

from __future__ import annotations

import numpy as np

from napari_mor._errors import MorError


def _inside(values: np.ndarray, inside: np.ndarray | None) -> np.ndarray:
    """The finite values at the ``inside`` voxels (all voxels when None), float64."""
    values = np.asarray(values)
    if inside is not None:
        inside = np.asarray(inside, dtype=bool)
        if inside.shape != values.shape[-inside.ndim :]:
            raise MorError(
                f"The mask has shape {inside.shape} but the image {values.shape}; "
                "pass a mask on the image's grid."
            )
        values = values[..., inside]
    values = np.asarray(values, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def symmetric_limits(
    values: np.ndarray,
    percentile: float = 99.0,
    inside: np.ndarray | None = None,
) -> tuple[float, float]:
    """Contrast limits ``(-m, m)`` centred at 0; ``m`` a percentile of ``|values|``.

    Parameters
    ----------
    values : ndarray, shape (x, y, z)
        A signed map (delta-BP_ND, percent delta-BP_ND); NaN outside the fit.
    percentile : float
        Percentile of ``|values|`` giving ``m`` (robust: a few noisy voxels at
        the edge of the head do not set the range).
    inside : ndarray of bool, shape (x, y, z), optional
        Voxels that count (the brain, the reliable voxels); default all.

    Returns
    -------
    (low, high) : (float, float)
        ``low == -high``, ``high > 0``; ``(-1, 1)`` when no voxel is finite.
    """
    if not 0 < percentile <= 100:
        raise MorError(f"percentile must be in (0, 100]; got {percentile!r}.")
    finite = np.abs(_inside(values, inside))
    if finite.size == 0:
        return -1.0, 1.0
    m = float(np.percentile(finite, percentile))
    m = m if m > 0 else float(finite.max()) or 1.0
    return -m, m


#: Percent delta-BP_ND counts for the colour range where BP_base is at least
#: this fraction of the high-binding level (99.9th percentile of BP_base).
RELIABLE_BP_FRACTION = 0.25


def reliable_percent_voxels(
    bp_base: np.ndarray, fraction: float = RELIABLE_BP_FRACTION
) -> np.ndarray:
    """Voxels whose percent delta-BP_ND is not noise: BP_base high enough.

    The percent change divides by BP_baseline, so its noise grows like
    ``1 / BP_base``: white matter and low-binding cortex (BP_ND ~ 0.1) reach
    +-100 % from noise alone. The colour range of a percent map is taken over
    the voxels with ``BP_base >= fraction * P99.9(BP_base)``, where the percent
    noise is at most ``1 / fraction`` times that of the highest-binding regions.

    Parameters
    ----------
    bp_base : ndarray, shape (x, y, z)
        Baseline BP_ND map; NaN outside the fitted mask.
    fraction : float
        Of the 99.9th percentile of the finite BP_base values.

    Returns
    -------
    ndarray of bool, shape (x, y, z)
        All False when no voxel is finite or BP_base is nowhere positive.
    """
    bp_base = np.asarray(bp_base, dtype=np.float64)
    finite = np.isfinite(bp_base)
    if not finite.any():
        return finite
    high = float(np.percentile(bp_base[finite], 99.9))
    if high <= 0:
        return np.zeros_like(finite)
    with np.errstate(invalid="ignore"):
        return finite & (bp_base >= fraction * high)


def foreground(values: np.ndarray) -> np.ndarray:
    """The head (or brain) of an image: voxels above the mean of its finite voxels.

    Parameters
    ----------
    values : ndarray, shape (..., x, y, z)
        An MR or PET image (a 4D PET is averaged over its leading frame axis).

    Returns
    -------
    ndarray of bool, shape (x, y, z)
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 4:
        with np.errstate(invalid="ignore"):
            values = np.nanmean(values, axis=0)
    finite = np.isfinite(values)
    if not finite.any():
        return finite
    with np.errstate(invalid="ignore"):
        return finite & (values > values[finite].mean())


def percentile_limits(
    values: np.ndarray,
    inside: np.ndarray | None = None,
    percentiles: tuple[float, float] = (1.0, 99.5),
) -> tuple[float, float]:
    """Contrast limits from two percentiles of the finite ``inside`` voxels.

    Parameters
    ----------
    values : ndarray, shape (..., x, y, z)
        An MR (3D) or a dynamic PET (4D, frames first; all frames count).
    inside : ndarray of bool, shape (x, y, z), optional
        Voxels that count (default :func:`foreground`: the head, so the air
        around it does not pull the low limit to 0 and wash the head out).
    percentiles : (float, float)

    Returns
    -------
    (low, high) : (float, float)
        ``high > low``.
    """
    if inside is None:
        inside = foreground(values)
    finite = _inside(values, inside)
    if finite.size == 0:
        finite = _inside(values, None)
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, percentiles))
    return low, max(high, low + 1e-6)


def threshold_abs(values: np.ndarray, threshold: float) -> np.ndarray:
    """A float32 copy with NaN where ``|value| < threshold`` (input unchanged)."""
    if not np.isfinite(threshold) or threshold < 0:
        raise MorError(f"Threshold must be a number >= 0; got {threshold!r}.")
    out = np.array(values, dtype=np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        out[np.abs(out) < threshold] = np.nan
    return out
