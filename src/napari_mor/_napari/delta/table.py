"""The Delta-BP dock's ROI table: mean ΔBP_ND and %ΔBP of the means per ROI.

Rows come from :func:`~napari_mor.workflows.delta.roi_mean_delta`; this section
formats them and offers the save buttons.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qtpy.QtWidgets import QBoxLayout, QGroupBox, QTableWidgetItem, QVBoxLayout

from napari_mor._napari._dock import button_row, read_only_table

#: (header, row key, decimals; None: text) of the table.
COLUMNS = (
    ("ROI", "name", None),
    ("voxels", "n_voxels", None),
    ("mean ΔBP_ND", "delta_bp_nd", 3),
    ("%ΔBP of means", "pct_delta_bp_nd", 1),
    ("BP base", "bp_nd_baseline", 3),
    ("BP chal", "bp_nd_challenge", 3),
)


def fmt(value, digits: int | None) -> str:
    """A table cell: ``digits`` decimals; None or non-finite as a dash."""
    if digits is None:
        return str(value)
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


class RoiMeansWidget(QGroupBox):
    """Dock section: the per-ROI table and the save buttons.

    Parameters
    ----------
    save_maps, save_table : callable()
        Slots of the "Save maps" and "Save table" buttons.
    """

    def __init__(self, save_maps: Callable, save_table: Callable, parent=None):
        super().__init__("Mean per ROI", parent)
        layout = QVBoxLayout(self)
        self.table = read_only_table([c[0] for c in COLUMNS], min_height=200)
        layout.addWidget(self.table)
        row, self.save_buttons = button_row(
            ("Save maps (NIfTI + JSON)…", save_maps),
            ("Save table (TSV)…", save_table),
        )
        row.setDirection(QBoxLayout.Direction.TopToBottom)  # long texts: one a line
        layout.addLayout(row)

    def show_rows(self, rows: list[dict]) -> None:
        """Fill the table with ``roi_mean_delta`` rows."""
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (_header, key, digits) in enumerate(COLUMNS):
                self.table.setItem(r, c, QTableWidgetItem(fmt(row[key], digits)))
        self.table.resizeColumnsToContents()
