"""Options shared by the sub-commands (PET timing and units, windows)."""

from __future__ import annotations

import argparse
from pathlib import Path

#: Help of the ``--units`` option of the commands that read PET.
UNITS_HELP = (
    "activity unit of the stored values when the file does not say "
    "(Bq/mL, kBq/mL, MBq/mL, nCi/mL, uCi/mL; e.g. for ECAT)"
)


def add_pet_args(parser: argparse.ArgumentParser) -> None:
    """``--frames FRAMES.tsv`` and ``--units UNIT`` for commands that read PET."""
    parser.add_argument(
        "--frames", type=Path, help="frames TSV (frame_start, frame_duration, s)"
    )
    parser.add_argument("--units", help=UNITS_HELP)


def optional_str(value) -> str | None:
    """``str(value)``, or None for None (paths in requests are strings)."""
    return None if value is None else str(value)
