"""``napari-mor check-design``: what the chosen method reads on your own scan."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``check-design`` sub-command."""
    from napari_mor.cli.fit import add_fit_arguments

    check = commands.add_parser(
        "check-design",
        help="design-bias check: simulate no change and a planted drop on your scan",
        description=(
            "Fit the no-release two-tissue reference model to each ROI's frames "
            "before the challenge onset, simulate the whole scan on the same frames "
            "and at the same noise level with (a) no change and (b) a planted drop "
            "in receptor availability from the onset, fit each simulated scan with "
            "the method given here (model, windows, k2'; the defaults when none are "
            "given) and report the percent delta-BP it reads. A no-change reading "
            "beyond 2 % is a warning. ROI fits of one scan (images with --labels, "
            "or --tacs)."
        ),
    )
    add_fit_arguments(check)
    check.add_argument(
        "--planted-drop",
        type=float,
        default=10.0,
        metavar="PCT",
        help="drop of receptor availability planted from the onset (default 10)",
    )
    check.add_argument(
        "--n-sim",
        type=int,
        default=50,
        metavar="N",
        help="simulated scans per scenario (default 50)",
    )
    check.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    check.add_argument(
        "--out", type=Path, required=True, help="OUT.tsv (one row per region)"
    )
    check.set_defaults(run=run)
    return check


def run(args: argparse.Namespace) -> int:
    """Run the check, write the table and print each region's readings."""
    import sys

    from napari_mor._errors import MorError
    from napari_mor.cli.fit import _check_not_inputs, request_from_args
    from napari_mor.defaults import RELEASE_MODEL
    from napari_mor.io.tables import write_rows_tsv
    from napari_mor.workflows.design_check import (
        DESIGN_COLUMNS,
        check_design,
        design_tacs,
    )

    onset = args.challenge_onset
    if args.model != RELEASE_MODEL:
        args.challenge_onset = None  # windowed models: the onset is the check's
    args.rois_only = True
    request = request_from_args(args)
    if not str(request.out).lower().endswith(".tsv"):
        raise MorError(f"The design check writes a .tsv table; got {request.out}.")
    _check_not_inputs(request)  # rois_only: the table path
    tacs = design_tacs(request)
    result = check_design(
        request,
        tacs,
        onset_min=onset,
        planted_pct=args.planted_drop,
        n_sim=args.n_sim,
        seed=args.seed,
    )
    write_rows_tsv(result.rows, DESIGN_COLUMNS, request.out)
    for text in result.warnings:
        print(f"napari-mor check-design: warning: {text}", file=sys.stderr)
    print(
        f"{result.request.model} ({result.rows[0]['design']}), onset "
        f"{result.onset_min:g} min, {args.n_sim} simulated scans per scenario:"
    )
    for row in result.rows:
        print(
            f"  {row['name']}: no change {row['no_change_mean_pct']:+.1f} "
            f"(SD {row['no_change_sd_pct']:.1f}); planted {row['planted_pct']:g} -> "
            f"{row['drop_mean_pct']:+.1f} (SD {row['drop_sd_pct']:.1f})"
        )
    print(f"-> {request.out}")
    return 0
