"""Input validation shared by the kinetic models (raises :class:`MorError`)."""

from __future__ import annotations

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.pet import frames_by_voxel, voxel_order
from napari_mor.io.timing import FrameTiming

__all__ = [
    "MIN_FIT_FRAMES",
    "as_tac_matrix",
    "check_not_flat",
    "check_positive_k2p",
    "check_reference",
    "fit_frame_mask",
    "frames_by_voxel",
    "voxel_order",
]

#: Minimum number of frames a regression may use.
MIN_FIT_FRAMES = 3


def as_tac_matrix(
    tac: np.ndarray, timing: FrameTiming, name: str = "tac"
) -> np.ndarray:
    """Return ``tac`` as a float64 copy of shape (n_frames, n_tacs)."""
    arr = np.array(tac, dtype=np.float64, copy=True)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != timing.n_frames:
        raise MorError(
            f"{name} has shape {np.shape(tac)} but the frame timing lists "
            f"{timing.n_frames} frames; pass an array of shape (n_frames,) or "
            f"(n_frames, n_tacs) with n_frames = {timing.n_frames} (time first)."
        )
    if arr.shape[1] == 0:
        raise MorError(f"{name} has no columns; pass at least one TAC.")
    return arr


def check_reference(ref: np.ndarray, timing: FrameTiming) -> np.ndarray:
    """Validate the reference TAC and return a float64 copy of shape (n_frames,)."""
    arr = np.array(ref, dtype=np.float64, copy=True)
    if arr.ndim != 1 or arr.size != timing.n_frames:
        raise MorError(
            f"Reference TAC has shape {np.shape(ref)} but the frame timing lists "
            f"{timing.n_frames} frames; pass one value per frame, shape "
            f"({timing.n_frames},)."
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise MorError(
            f"Reference TAC has NaN/Inf in frames {bad}; check the reference mask "
            "(is it inside the PET field of view?) or drop those frames."
        )
    late = arr[timing.frame_mid_min >= 0.25 * timing.frame_end_min[-1]]
    if np.any(late <= 0):
        raise MorError(
            f"Reference TAC is zero or negative in {int(np.sum(late <= 0))} frame(s) "
            "after the first quarter of the scan (min "
            f"{late.min():g}); the reference region probably lies outside the "
            "brain or the PET field of view: check the reference mask/label."
        )
    return arr


def check_not_flat(tac: np.ndarray, name: str = "tac") -> None:
    """Raise when every column of ``tac`` is constant (no kinetic information)."""
    spread = np.nanmax(tac, axis=0) - np.nanmin(tac, axis=0)
    scale = np.nanmax(np.abs(tac), axis=0)
    flat = ~(spread > 1e-9 * np.maximum(scale, 1e-30))
    if tac.shape[1] == 1 and flat[0]:
        raise MorError(
            f"{name} is flat (constant {tac[0, 0]:g} in every frame), so no model can "
            "be fitted; check that the TAC was extracted from the dynamic PET and "
            "not from a single frame or an empty ROI."
        )


def check_positive_k2p(k2p_per_min: float | None, model: str) -> float:
    """Validate a fixed k2' value (1/min)."""
    if k2p_per_min is None:
        raise MorError(
            f"{model} needs k2' (1/min): pass k2p_per_min (--k2p VALUE), or estimate "
            "it with estimate_k2p() from MRTM on a high-binding region."
        )
    value = float(k2p_per_min)
    if not (np.isfinite(value) and value > 0):
        raise MorError(
            f"k2' = {k2p_per_min!r} 1/min is invalid: k2' is the reference-region "
            "efflux rate and must be a finite value > 0 (typically 0.05-0.5 /min); "
            "pass a positive --k2p or let it be estimated with MRTM."
        )
    return value


def fit_frame_mask(
    timing: FrameTiming,
    window: tuple[float, float] | None,
    t_star_min: float | None = None,
) -> np.ndarray:
    """Frames used in a regression: mid-time in ``window`` and at/after ``t_star_min``.

    Raises
    ------
    MorError
        When fewer than three frames remain.
    """
    end_min = float(timing.frame_end_min[-1])
    if window is None:
        mask = np.ones(timing.n_frames, dtype=bool)
        where = "the scan"
    else:
        start, stop = (float(v) for v in window)
        mask = timing.frames_in_window(start, stop)
        where = f"window {start:g}-{stop:g} min"
    if t_star_min is not None:
        t_star = float(t_star_min)
        if not np.isfinite(t_star) or t_star >= timing.frame_mid_min[-1]:
            raise MorError(
                f"t* = {t_star_min!r} min is at or beyond the last frame (mid-time "
                f"{timing.frame_mid_min[-1]:.3g} min, scan end {end_min:.3g} min); "
                "choose an earlier t* or let it be found automatically."
            )
        mask &= timing.frame_mid_min >= t_star
        where += f" after t* = {t_star:g} min"
    n_fit = int(mask.sum())
    if n_fit < MIN_FIT_FRAMES:
        raise MorError(
            f"Only {n_fit} frame(s) have mid-times in {where}; a fit needs at least "
            f"{MIN_FIT_FRAMES}. Widen the window or move t* earlier (frame mid-times: "
            f"{np.round(timing.frame_mid_min, 2).tolist()} min)."
        )
    return mask
