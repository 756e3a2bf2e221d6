"""``napari-mor delta``: two BP_ND maps -> delta-BP and percent delta-BP maps."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_mor.cli._common import optional_str
from napari_mor.defaults import (
    DEFAULT_PCT_DELTA_ESTIMATOR,
    MIN_BP_BASE,
    PCT_DELTA_ESTIMATORS,
)


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``delta`` sub-command."""
    delta = commands.add_parser(
        "delta",
        help="delta-BP = baseline - challenge (positive = activation)",
        description=(
            "Delta-BP_ND = BP_baseline - BP_challenge; positive values mean reduced "
            "receptor availability during the challenge (endogenous opioid release). "
            "--percent writes 100 * delta / BP_baseline (NaN where BP_baseline < "
            "--min-bp-base)."
        ),
    )
    delta.add_argument("baseline", type=Path, help="baseline BP_ND map")
    delta.add_argument("challenge", type=Path, help="challenge BP_ND map")
    outs = delta.add_mutually_exclusive_group(required=True)
    outs.add_argument("--out", type=Path, help="delta-BP map (.nii.gz)")
    outs.add_argument(
        "--bids-out",
        type=Path,
        metavar="DIR",
        help="BIDS derivatives folder: delta and percent maps (and --rois with "
        "--labels) named after the baseline map's BEP023 name "
        "(..._meas-deltaBPND_mimap.nii.gz, ..._meas-pctdeltaBPND_mimap.nii.gz)",
    )
    delta.add_argument("--percent", type=Path, help="percent delta-BP map (.nii.gz)")
    delta.add_argument(
        "--min-bp-base",
        type=float,
        default=MIN_BP_BASE,
        help=f"minimum baseline BP_ND for percent delta-BP (default {MIN_BP_BASE:g})",
    )
    delta.add_argument(
        "--pct-estimator",
        choices=PCT_DELTA_ESTIMATORS,
        default=DEFAULT_PCT_DELTA_ESTIMATOR,
        help="percent map: guided-ratio (default) and smoothed-ratio regularise "
        "numerator and denominator so region means of the map agree with the ratio "
        "of region means under noise; voxel-ratio is 100 (b - c) / b per voxel, "
        "biased by a noisy denominator (docs/denoise.md)",
    )
    delta.add_argument(
        "--labels",
        type=Path,
        help="ROIs (label image) for --rois; resampled onto the maps' grid if needed",
    )
    delta.add_argument("--lut", type=Path, help="LUT of --labels (default: beside it)")
    delta.add_argument(
        "--rois",
        type=Path,
        metavar="OUT.tsv",
        help="per-region delta-BP and percent delta-BP from the region means "
        "(100 * (mean base - mean chal) / mean base), one row per label",
    )
    delta.set_defaults(run=run)
    return delta


def request_from_args(args: argparse.Namespace):
    """The :class:`~napari_mor.workflows.delta.DeltaRequest` of parsed arguments."""
    from napari_mor.workflows.delta import DeltaRequest

    return DeltaRequest(
        baseline_path=optional_str(args.baseline),
        challenge_path=optional_str(args.challenge),
        out=optional_str(args.out),
        percent_out=optional_str(args.percent),
        min_bp_base=args.min_bp_base,
        labels_path=optional_str(getattr(args, "labels", None)),
        lut_path=optional_str(getattr(args, "lut", None)),
        rois_out=optional_str(getattr(args, "rois", None)),
        pct_estimator=getattr(args, "pct_estimator", DEFAULT_PCT_DELTA_ESTIMATOR),
        bids_out=optional_str(getattr(args, "bids_out", None)),
    )


def run(args: argparse.Namespace) -> int:
    """Compute and write the delta maps."""
    from napari_mor.workflows.delta import run_delta

    written = run_delta(request_from_args(args))
    print("delta-BP -> " + ", ".join(str(p) for p in written))
    return 0
