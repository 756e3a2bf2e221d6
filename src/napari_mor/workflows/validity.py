"""Model validity checks: each model's assumption for a window, checked where it can be.

- Logan reference plot: the plot is linear after t* (every fitted point within
  :data:`LOGAN_TOLERANCE` of the line).
- Equilibrium ratio: tissue and reference are in equilibrium in the window (the
  tissue/reference ratio changes by less than :data:`RATIO_DRIFT` across it).
- Windowed fits of one scan: each window is assumed to be at steady state; a
  change of binding inside the scan re-equilibrates over ~(1 + BP_ND)/k2 (tens of
  minutes for a slowly dissociating tracer), so the challenge window under-reads
  the change (docs/kinetics.md). This is stated, not checked.

A violated assumption becomes a warning (CLI: ``warning:`` lines on stderr; docks:
a napari warning; provenance: ``Warnings``). Never silent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from napari_mor.kinetics import RoiFit

__all__ = [
    "LOGAN_TOLERANCE",
    "RATIO_DRIFT",
    "WINDOWED_ONE_SCAN_NOTE",
    "check_roi_fits",
    "ratio_drift",
]

#: Largest relative deviation of a fitted Logan point from the line.
LOGAN_TOLERANCE = 0.10

#: Largest change of the tissue/reference ratio across a window (fraction).
RATIO_DRIFT = 0.03

#: What windowed fits of one scan assume (provenance note).
WINDOWED_ONE_SCAN_NOTE = (
    "Windowed fits of one scan assume steady state in each window; after a "
    "within-scan challenge a slowly dissociating tracer re-equilibrates over tens "
    "of minutes, so the challenge window under-reads the change and a scan with no "
    "change reads a few percent (see docs/kinetics.md, validation tables). The "
    "release model (--model lpntpet --challenge-onset MIN) fits the change itself "
    "(docs/transient.md); 'napari-mor check-design' shows what these settings read "
    "on this scan."
)


def ratio_drift(
    tac: np.ndarray, ref: np.ndarray, frame_mid_min: np.ndarray, used: np.ndarray
) -> np.ndarray:
    """Relative change of the tissue/reference ratio across the fitted frames.

    Parameters
    ----------
    tac : ndarray, shape (n_frames, n_tacs)
    ref : ndarray, shape (n_frames,)
    frame_mid_min : ndarray, shape (n_frames,)
    used : ndarray of bool, shape (n_frames,)
        Frames of the window.

    Returns
    -------
    drift : ndarray, shape (n_tacs,)
        ``slope * window length / mean ratio`` of a line fitted to the ratio.
    """
    tac = np.asarray(tac, dtype=np.float64).reshape(len(ref), -1)[used]
    ref = np.asarray(ref, dtype=np.float64)[used]
    t = np.asarray(frame_mid_min, dtype=np.float64)[used]
    if t.size < 2:
        return np.full(tac.shape[1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = tac / ref[:, None]
    design = np.stack([np.ones_like(t), t - t.mean()], axis=1)
    coef, *_ = np.linalg.lstsq(design, ratio, rcond=None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return coef[1] * (t.max() - t.min()) / coef[0]


def _logan_deviation(fit: RoiFit) -> float:
    used = fit.frame_mask & np.isfinite(fit.residuals)
    if not used.any():
        return float("nan")
    scale = np.maximum(np.abs(fit.fitted[used]), 1e-12)
    return float(np.max(np.abs(fit.residuals[used]) / scale))


def check_roi_fits(
    fits: Mapping[str, Sequence[RoiFit]],
    tacs_of: Mapping[str, object],
) -> list[str]:
    """Warnings for violated model assumptions in ROI fits (empty when none).

    Parameters
    ----------
    fits : mapping of condition to list of RoiFit
    tacs_of : mapping of condition to RoiTacs
        The TACs fitted (``tacs_kbq_ml``, ``ref_kbq_ml``, ``timing``).
    """
    warnings = []
    for condition, per_roi in fits.items():
        if not per_roi:
            continue
        model = per_roi[0].model
        window = per_roi[0].window_min
        where = (
            condition
            if window is None
            else f"{condition} ({window[0]:g}-{window[1]:g} min)"
        )
        if model == "logan":
            bad = [
                f"{f.name} {dev:.0%}"
                for f in per_roi
                if (dev := _logan_deviation(f)) > LOGAN_TOLERANCE
            ]
            if bad:
                warnings.append(
                    f"Logan plot not linear after t* in {where}: {', '.join(bad)} "
                    f"off the line (tolerance {LOGAN_TOLERANCE:.0%}); choose a later "
                    "t* or a later window."
                )
        elif model == "ratio":
            tacs = tacs_of[condition]
            drift = ratio_drift(
                tacs.tacs_kbq_ml,
                tacs.ref_kbq_ml,
                tacs.timing.frame_mid_min,
                per_roi[0].frame_mask,
            )
            bad = [
                f"{f.name} {d:+.0%}"
                for f, d in zip(per_roi, drift, strict=True)
                if abs(d) > RATIO_DRIFT
            ]
            if bad:
                warnings.append(
                    f"Not at equilibrium in {where}: the tissue/reference ratio "
                    f"changes by {', '.join(bad)} across the window (limit "
                    f"{RATIO_DRIFT:.0%}), so the ratio method is biased; use Logan or "
                    "a later window."
                )
    return warnings
