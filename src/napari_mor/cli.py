"""The ``napari-mor`` command: the headless main job.

Nothing heavy is imported at start-up (no napari, Qt or nilearn) so that
``napari-mor --help`` answers at once; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_mor._cli_group import add_group_parser
from napari_mor._cli_kinetics import UNITS_HELP, add_delta_parser, add_fit_parser
from napari_mor._cli_registration import add_register_parser
from napari_mor._errors import MorError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    from napari_mor import __version__

    parser = argparse.ArgumentParser(
        prog="napari-mor",
        description=(
            "Mu-opioid receptor PET: regional TACs, reference-region kinetics and "
            "delta-BP maps. Times are minutes from injection; activity kBq/mL."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_demo_parser(commands)
    _add_tacs_parser(commands)
    add_fit_parser(commands)
    add_delta_parser(commands)
    add_register_parser(commands)
    add_group_parser(commands)
    return parser


def _add_demo_parser(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="make the sample study and run the whole pipeline on it",
        description=(
            "Write the digital [11C]carfentanil sample study (PET + sidecar, T1w, "
            "region labels + LUT, brain mask, truth) to a folder, run the pipeline "
            "on it and print a summary."
        ),
    )
    demo.add_argument(
        "--out", type=Path, default=Path("mor_demo"), help="output folder"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument(
        "--noise", type=float, default=None, help="voxel noise CV (default: phantom's)"
    )
    demo.set_defaults(run=run_demo)


def _add_tacs_parser(commands) -> None:
    tacs = commands.add_parser(
        "tacs",
        help="regional TACs (mean, SD, voxel count per frame) from a label image",
        description=(
            "Mean, SD and voxel count per label and frame. The labels must be on "
            "the PET grid. Output TSV: frame_start, frame_end (s), then NAME, "
            "NAME_sd, NAME_n per region (kBq/mL)."
        ),
    )
    tacs.add_argument(
        "pet", type=Path, help="4D PET NIfTI (sidecar beside it) or ECAT .v"
    )
    tacs.add_argument(
        "--labels", type=Path, required=True, help="label NIfTI on the PET grid"
    )
    tacs.add_argument(
        "--lut", type=Path, help="lookup table (TSV index/name or FreeSurfer)"
    )
    tacs.add_argument(
        "--frames", type=Path, help="frames TSV (frame_start, frame_duration, s)"
    )
    tacs.add_argument("--units", help=UNITS_HELP)
    tacs.add_argument("--out", type=Path, required=True, help="output TSV")
    tacs.set_defaults(run=run_tacs)


def run_tacs(args: argparse.Namespace) -> int:
    """``napari-mor tacs``: write regional TACs as TSV."""
    from napari_mor.io import load_labels, load_pet
    from napari_mor.rois import extract_tacs, write_tacs_tsv

    pet = load_pet(args.pet, frames_tsv=args.frames, units=args.units)
    labels = load_labels(args.labels, args.lut)
    table = extract_tacs(pet, labels)
    write_tacs_tsv(table, args.out)
    print(
        f"wrote {args.out}: {pet.n_frames} frames x {len(table.names)} regions "
        f"({', '.join(table.names)})"
    )
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """``napari-mor demo``: write the sample study and run the pipeline on it."""
    from napari_mor.pipeline import run_sample_pipeline

    summary = run_sample_pipeline(args.out, seed=args.seed, noise_cv=args.noise)
    print(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``napari-mor`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except MorError as err:
        print(f"napari-mor {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # unreadable input, output folder that is a file, ...
        print(
            f"napari-mor {args.command}: error: {err.strerror or err}: "
            f"{err.filename or ''}; check the path and its permissions.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
