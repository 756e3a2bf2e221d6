"""Defaults and names every entry point shares (imports nothing: `--help` uses them).

One definition each: the CLI, the docks, the batch and the demo read them from
here. A test checks :data:`MODEL_NAMES` against the kinetics registry.
"""

from __future__ import annotations

#: Model names accepted by :mod:`napari_mor.kinetics` (static, for fast ``--help``).
MODEL_NAMES: tuple[str, ...] = (
    "logan",
    "mrtm",
    "mrtm2",
    "srtm",
    "srtm2",
    "srtm-bf",
    "ratio",
)

#: The within-scan release model (lp-ntPET style, :mod:`napari_mor.kinetics.transient`):
#: one scan, BP_ND before and after a challenge onset, fitted in one model.
RELEASE_MODEL = "lpntpet"

#: Response shape of the release model in every entry point: a sustained change
#: with a 2-min rise (validated in docs/transient.md: unbiased, calibrated release
#: test). Searching a family of shapes fits the noise and inflates the spread.
RELEASE_SHAPES: tuple[tuple[str, float], ...] = (("sustained", 2.0),)

#: Every model a fit request accepts: the reference-region models and the
#: release model.
FIT_MODELS: tuple[str, ...] = (*MODEL_NAMES, RELEASE_MODEL)

#: Denoising of the PET before voxelwise fits (:mod:`napari_mor.denoise`; static
#: here for fast ``--help``; a test checks it against ``denoise.METHODS``).
DENOISE_METHODS: tuple[str, ...] = ("none", "gaussian", "hypr-lr", "nlm")

#: Estimators of the percent delta-BP map (:mod:`napari_mor.delta_estimators`):
#: a regularised ratio whose region means agree with the ratio of region means.
PCT_DELTA_ESTIMATORS: tuple[str, ...] = (
    "guided-ratio",
    "smoothed-ratio",
    "voxel-ratio",
)

#: The percent delta-BP estimator used when none is chosen (docs/denoise.md).
DEFAULT_PCT_DELTA_ESTIMATOR = "guided-ratio"

#: Frame weightings.
WEIGHTINGS: tuple[str, ...] = ("none", "duration", "noise")

#: Condition windows of one bolus+infusion scan with the challenge from 45 min,
#: minutes from injection. Late windows: the tissue of a slowly dissociating
#: tracer is closest to equilibrium there (docs/kinetics.md, validation tables).
DEFAULT_WINDOWS_MIN: dict[str, tuple[float, float]] = {
    "baseline": (20.0, 45.0),
    "challenge": (60.0, 90.0),
}

#: Start of the challenge in a one-scan study (sample data), minutes.
DEFAULT_CHALLENGE_ONSET_MIN = 45.0

#: Text that finds the reference region in a lookup table (occipital cortex).
DEFAULT_REFERENCE_HINT = "occipital"

#: Minimum baseline BP_ND for percent delta-BP (smaller baselines give NaN).
MIN_BP_BASE = 0.1

#: Condition names of a two-scan study, in order.
TWO_SCAN_CONDITIONS: tuple[str, str] = ("baseline", "challenge")

#: The model a fit uses when none is chosen (CLI, docks, batch and demo alike):
#: Logan reference plot with the shared k2' (chosen from the validation sweep in
#: docs/kinetics.md: unbiased for two scans across k4 0.05-0.6 /min, the least
#: biased with usable noise for windowed one-scan fits).
DEFAULT_MODEL = "logan"
