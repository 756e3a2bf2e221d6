"""Frame weights for the weighted least-squares fits."""

from __future__ import annotations

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.timing import FrameTiming

__all__ = ["C11_HALF_LIFE_MIN", "WEIGHT_SCHEMES", "frame_weights"]

#: Carbon-11 physical half-life, minutes.
C11_HALF_LIFE_MIN = 20.364

#: Accepted names for ``weights``.
WEIGHT_SCHEMES = ("none", "duration", "noise")


def frame_weights(
    timing: FrameTiming,
    scheme: str | np.ndarray = "none",
    activity: np.ndarray | None = None,
    *,
    decay_half_life_min: float | None = C11_HALF_LIFE_MIN,
    floor_fraction: float = 0.05,
) -> np.ndarray:
    """Relative frame weights (inverse variances up to a constant).

    Parameters
    ----------
    timing : FrameTiming
        Frame timing.
    scheme : {"none", "duration", "noise"} or ndarray, shape (n_frames,)
        ``"none"``: all 1. ``"duration"``: frame duration. ``"noise"``:
        noise-equivalent counts, ``w = duration / activity`` (times
        ``exp(-lambda t_mid)`` when ``decay_half_life_min`` is given, for
        decay-corrected data). An array is used as given (must be >= 0, finite).
    activity : ndarray, shape (n_frames,) or (n_frames, n_tacs), optional
        Activity for ``"noise"`` (kBq/mL); with several columns their mean is
        used, so all TACs share one weight vector. Required for ``"noise"``.
    decay_half_life_min : float or None
        Half-life (min) used to undo decay correction in ``"noise"``;
        ``None`` when the data are not decay-corrected. Default C-11.
    floor_fraction : float
        ``"noise"`` floors activity at this fraction of its maximum so that
        near-zero early frames do not get huge weights.

    Returns
    -------
    weights : ndarray, shape (n_frames,), float64
        Normalised to mean 1.

    Notes
    -----
    For decay-corrected activity ``C`` in a frame of duration ``d`` at
    mid-time ``t``, the number of true counts is proportional to
    ``C d exp(-lambda t)`` and ``Var(C) ~ C exp(lambda t) / d``, hence
    ``w = d exp(-lambda t) / C``.
    """
    n = timing.n_frames
    if not isinstance(scheme, str):
        weights = np.array(scheme, dtype=np.float64).ravel()
        if weights.size != n or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise MorError(
                f"Frame weights must be {n} finite values >= 0 (one per frame); got "
                f"{weights.size} values; fix the weights array."
            )
    elif scheme == "none":
        weights = np.ones(n)
    elif scheme == "duration":
        weights = timing.frame_duration_min.copy()
    elif scheme == "noise":
        weights = _noise_weights(timing, activity, decay_half_life_min, floor_fraction)
    else:
        raise MorError(
            f"Unknown weighting {scheme!r}; use one of {', '.join(WEIGHT_SCHEMES)} "
            "or pass an array of per-frame weights."
        )
    if not np.any(weights > 0):
        raise MorError("All frame weights are zero; give at least 3 frames weight > 0.")
    return weights / weights.mean()


def _noise_weights(
    timing: FrameTiming,
    activity: np.ndarray | None,
    decay_half_life_min: float | None,
    floor_fraction: float,
) -> np.ndarray:
    if activity is None:
        raise MorError(
            "Noise-equivalent weighting needs the activity per frame; pass "
            "activity= (e.g. the tissue TAC) or use weights='duration'."
        )
    act = np.asarray(activity, dtype=np.float64)
    act = act.reshape(act.shape[0], -1).mean(axis=1) if act.ndim > 1 else act
    if act.size != timing.n_frames or not np.all(np.isfinite(act)) or act.max() <= 0:
        raise MorError(
            f"Activity for noise weighting must be {timing.n_frames} finite values "
            "with a positive maximum; check the TAC."
        )
    act = np.maximum(act, floor_fraction * act.max())
    weights = timing.frame_duration_min / act
    if decay_half_life_min is not None:
        weights = weights * np.exp(
            -np.log(2.0) / decay_half_life_min * timing.frame_mid_min
        )
    return weights
