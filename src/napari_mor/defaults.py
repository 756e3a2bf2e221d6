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
