"""The Kinetic fit dock's result tables: ROI fits and the ROI delta-BP_ND.

Rows come from the workflow (:func:`~napari_mor.workflows.fit.fit_table_rows`,
:func:`~napari_mor.workflows.delta.delta_rows_from_fits`); this section only
formats them. The BP_ND columns come right after the ROI name, so they are in
view in a narrow dock.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QGroupBox,
    QLabel,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_mor._napari._dock import button_row, read_only_table

#: (header, row key, decimals) of the ROI fit table; None: shown as text.
ROI_COLUMNS = (
    ("ROI", "name", None),
    ("BP_ND", "BP_ND", 3),
    ("SE", "BP_ND_se", 3),
    ("condition", "condition", None),
    ("R1", "R1", 3),
    ("R1 SE", "R1_se", 3),
    ("k2 (1/min)", "k2", 4),
    ("k2' (1/min)", "k2p", 4),
    ("t* (min)", "t_star_min", 1),
    ("frames", "n_frames", None),
    ("R²", "r2", 4),
)
#: (header, row key, decimals) of the release model's ROI table.
RELEASE_ROI_COLUMNS = (
    ("ROI", "name", None),
    ("BP_ND", "BP_ND", 3),
    ("BP chal", "BP_ND_challenge", 3),
    ("%ΔBP", "pct_delta_BP", 1),
    ("p release", "p_release", 3),
    ("onset (min)", "onset_min", 1),
    ("peak (min)", "peak_min", 1),
    ("shape", "shape", None),
    ("k2' (1/min)", "k2p", 4),
    ("frames", "n_frames", None),
)
#: (header, row key, decimals) of the ROI delta table.
DELTA_COLUMNS_SHOWN = (
    ("ROI", "name", None),
    ("ΔBP_ND", "delta_bp_nd", 3),
    ("%ΔBP", "pct_delta_bp_nd", 1),
    ("BP base", "bp_nd_baseline", 3),
    ("BP chal", "bp_nd_challenge", 3),
)
_TEXT_COLUMNS = ("name", "condition", "shape")

SIGN_NOTE = (
    "ΔBP_ND = BP_baseline − BP_challenge from the ROI fits; positive = "
    "activation (reduced availability, endogenous opioid release)."
)


def fmt(value, digits: int | None = 3) -> str:
    """A table cell: floats with ``digits`` decimals, non-finite as a dash."""
    if digits is not None and isinstance(value, float | np.floating):
        return "—" if not np.isfinite(value) else f"{float(value):.{digits}f}"
    return str(value)


def fill_table(table, rows: list[dict], columns) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, (_header, key, digits) in enumerate(columns):
            item = QTableWidgetItem(fmt(row.get(key, float("nan")), digits))
            if key not in _TEXT_COLUMNS:
                item.setTextAlignment(
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
            table.setItem(r, c, item)
    table.resizeColumnsToContents()  # once: per-item resizing is slow


class RoiTablesWidget(QGroupBox):
    """Dock section: the ROI fit table (click a row to plot it), the ROI
    delta-BP_ND table and the save buttons.

    Signals
    -------
    roi_selected(int)
        Index of the ROI (order of the fits) of the clicked row.
    """

    roi_selected = Signal(int)

    def __init__(self, save_table: Callable, save_maps: Callable, parent=None):
        super().__init__("ROI fits (click a row to plot it)", parent)
        layout = QVBoxLayout(self)
        self.table = read_only_table([c[0] for c in ROI_COLUMNS], min_height=180)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        layout.addWidget(self.table)
        note = QLabel(SIGN_NOTE)
        note.setWordWrap(True)
        layout.addWidget(note)
        self.delta_table = read_only_table([c[0] for c in DELTA_COLUMNS_SHOWN])
        layout.addWidget(self.delta_table)
        row, self.save_buttons = button_row(
            ("Save table (TSV)…", save_table),
            ("Save maps (NIfTI + JSON)…", save_maps),
        )
        row.setDirection(QBoxLayout.Direction.TopToBottom)  # long texts: one per line
        layout.addLayout(row)
        self._row_roi: list[int] = []

    def show_fits(
        self, rows: list[dict], roi_labels: list[int], conditions, columns=ROI_COLUMNS
    ) -> None:
        """Fill the ROI table: rows in ROI order, then condition order.

        Parameters
        ----------
        rows : list of dict
            :func:`~napari_mor.workflows.fit.fit_table_rows` of the fits.
        roi_labels : list of int
            Label values in the fits' ROI order.
        conditions : sequence of str
            Conditions in the fits' order.
        columns : sequence of (str, str, int or None)
            :data:`ROI_COLUMNS`, or :data:`RELEASE_ROI_COLUMNS` for lp-ntPET.
        """
        conditions = list(conditions)
        ordered = sorted(
            rows,
            key=lambda row: (
                roi_labels.index(row["label"]),
                conditions.index(row["condition"]),
            ),
        )
        self.table.blockSignals(True)
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels([c[0] for c in columns])
        fill_table(self.table, ordered, columns)
        self._row_roi = [roi_labels.index(row["label"]) for row in ordered]
        self.table.blockSignals(False)

    def show_deltas(self, rows: list[dict]) -> None:
        """Fill the ROI delta table (rows of ``delta_rows_from_fits``)."""
        fill_table(self.delta_table, rows, DELTA_COLUMNS_SHOWN)

    def roi_of_row(self, row: int) -> int:
        """Index of the ROI (order of the fits) shown in table row ``row``."""
        return self._row_roi[row]

    def _on_row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.roi_selected.emit(self._row_roi[rows[0].row()])
