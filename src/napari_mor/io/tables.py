"""The one TSV table writer (atomic; NaN as ``NaN``, floats to 6 digits)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.writers import _atomic_write

__all__ = ["format_cell", "write_rows_tsv"]


def format_cell(value, missing: str = "") -> str:
    """One TSV cell: floats with 6 significant digits, non-finite as ``NaN``."""
    if isinstance(value, float | np.floating):
        return "NaN" if not np.isfinite(value) else f"{float(value):.6g}"
    if value is None:
        return missing
    return str(value)


def write_rows_tsv(
    rows: Sequence[Mapping],
    columns: Sequence[str],
    path: str | Path,
    *,
    missing: str = "",
) -> Path:
    """Write table rows as a TSV file, atomically (temp file, then rename).

    Parameters
    ----------
    rows : sequence of mapping
        One mapping per row; missing columns are written empty.
    columns : sequence of str
        Header, in order.
    path : str or Path
        Output ``.tsv`` file.
    missing : str
        Text of a missing or None cell (BIDS tables use ``n/a``).

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    if path.suffix.lower() != ".tsv":
        raise MorError(f"Tables are written as .tsv; got {path.name}.")

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([format_cell(row.get(c), missing) for c in columns])

    _atomic_write(path, write)
    return path
