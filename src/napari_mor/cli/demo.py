"""``napari-mor demo``: the sample study end to end."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``demo`` sub-command."""
    demo = commands.add_parser(
        "demo",
        help="make the sample study and run the whole pipeline on it",
        description=(
            "Write the digital [11C]carfentanil sample study (baseline and challenge "
            "PET + sidecars, T1w, region labels + LUT, brain mask, truth) to a "
            "folder, run the pipeline on it with the default model and k2' and print "
            "a summary."
        ),
    )
    demo.add_argument(
        "--out", type=Path, default=Path("mor_demo"), help="output folder"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument(
        "--noise", type=float, default=None, help="voxel noise CV (default: phantom's)"
    )
    demo.add_argument(
        "--one-scan",
        action="store_true",
        help="one scan with the challenge from 45 min (windowed fits) instead of "
        "separate baseline and challenge scans",
    )
    demo.set_defaults(run=run)
    return demo


def run(args: argparse.Namespace) -> int:
    """Write the sample study and run the pipeline on it."""
    import math

    from napari_mor._errors import MorError
    from napari_mor.workflows.demo import run_demo

    if args.noise is not None and not (math.isfinite(args.noise) and args.noise >= 0):
        raise MorError(
            f"--noise must be a coefficient of variation >= 0 (e.g. 0.08); got "
            f"{args.noise!r}."
        )

    print(
        run_demo(
            args.out, seed=args.seed, noise_cv=args.noise, two_scans=not args.one_scan
        )
    )
    return 0
