"""The ``napari-mor`` command: the headless main job.

One module per sub-command; each builds its parser from static names (no numpy,
nibabel, napari or Qt at start-up, so ``napari-mor --help`` answers at once), turns
the parsed arguments into a request and calls :mod:`napari_mor.workflows`.
"""

from __future__ import annotations

import argparse
import sys

from napari_mor._errors import MorError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    from napari_mor import __version__
    from napari_mor.cli import check_design, delta, demo, fit, group, register, tacs

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
    for module in (demo, tacs, fit, check_design, delta, register, group):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``napari-mor`` command; returns the exit status.

    Bad input (:class:`~napari_mor.MorError`, unreadable files) prints one
    ``napari-mor COMMAND: error: ...`` line and returns 2, without a traceback.
    """
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
