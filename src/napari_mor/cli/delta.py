"""``napari-mor delta``: two BP_ND maps -> delta-BP and percent delta-BP maps."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_mor.cli._common import optional_str
from napari_mor.defaults import MIN_BP_BASE


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
    delta.add_argument("--out", type=Path, required=True, help="delta-BP map (.nii.gz)")
    delta.add_argument("--percent", type=Path, help="percent delta-BP map (.nii.gz)")
    delta.add_argument(
        "--min-bp-base",
        type=float,
        default=MIN_BP_BASE,
        help=f"minimum baseline BP_ND for percent delta-BP (default {MIN_BP_BASE:g})",
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
    )


def run(args: argparse.Namespace) -> int:
    """Compute and write the delta maps."""
    from napari_mor.workflows.delta import run_delta

    written = run_delta(request_from_args(args))
    print("delta-BP -> " + ", ".join(str(p) for p in written))
    return 0
