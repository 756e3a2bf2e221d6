"""Display rules shared by the docks: contrast limits and thresholds (pure numpy)."""

from __future__ import annotations

import numpy as np

from napari_mor._errors import MorError


def symmetric_limits(
    values: np.ndarray, percentile: float = 99.0
) -> tuple[float, float]:
    """Contrast limits ``(-m, m)`` centred at 0; ``m`` a percentile of ``|values|``."""
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return -1.0, 1.0
    m = float(np.percentile(finite, percentile))
    m = m if m > 0 else float(finite.max()) or 1.0
    return -m, m


def threshold_abs(values: np.ndarray, threshold: float) -> np.ndarray:
    """A float32 copy with NaN where ``|value| < threshold`` (input unchanged)."""
    if not np.isfinite(threshold) or threshold < 0:
        raise MorError(f"Threshold must be a number >= 0; got {threshold!r}.")
    out = np.array(values, dtype=np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        out[np.abs(out) < threshold] = np.nan
    return out
