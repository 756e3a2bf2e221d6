"""The Kinetic fit dock's design check: what the chosen method reads on this scan.

The button runs :func:`~napari_mor.workflows.design_check.iter_check_design` (in
the dock's worker) on the ROI TACs of the chosen layers with the dock's model,
windows and k2'; the table shows, per ROI, the %ΔBP read in simulated scans with
no change and with the planted drop.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from napari_mor._napari._dock import read_only_table
from napari_mor._napari.fit.results import fill_table

#: (header, row key, decimals) of the design-check table.
DESIGN_COLUMNS_SHOWN = (
    ("ROI", "name", None),
    ("no change %ΔBP", "no_change_mean_pct", 1),
    ("SD", "no_change_sd_pct", 1),
    ("planted", "planted_pct", 0),
    ("reads", "drop_mean_pct", 1),
    ("SD ", "drop_sd_pct", 1),
    ("noise CV", "noise_cv", 3),
)

_EXPLAIN = (
    "Fits each ROI's frames before the onset, simulates this scan with no change "
    "and with a planted drop (same frames, same noise) and fits them with the "
    "model and windows above. A no-change reading beyond ±2 % is made by the "
    "design, not by the brain."
)


class DesignCheckWidget(QGroupBox):
    """Dock section: planted drop, number of simulated scans, the button, the table.

    Parameters
    ----------
    run_check : callable()
        Slot of the "Check design" button.
    """

    def __init__(self, run_check: Callable, parent=None) -> None:
        super().__init__("Design check (simulated on this scan)", parent)
        layout = QVBoxLayout(self)
        note = QLabel(_EXPLAIN)
        note.setWordWrap(True)
        layout.addWidget(note)
        form = QFormLayout()
        self.planted_spin = QDoubleSpinBox()
        self.planted_spin.setRange(1.0, 50.0)
        self.planted_spin.setValue(10.0)
        self.planted_spin.setSuffix(" %")
        self.n_sim_spin = QSpinBox()
        self.n_sim_spin.setRange(2, 1000)
        self.n_sim_spin.setValue(50)
        form.addRow("planted drop", self.planted_spin)
        form.addRow("simulated scans", self.n_sim_spin)
        layout.addLayout(form)
        self.button = QPushButton("Check design")
        self.button.setToolTip("napari-mor check-design with the dock's settings")
        self.button.clicked.connect(lambda *_: run_check())
        layout.addWidget(self.button)
        self.table = read_only_table([c[0] for c in DESIGN_COLUMNS_SHOWN])
        layout.addWidget(self.table)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)

    def show_rows(self, rows: list[dict]) -> None:
        """Fill the table with the rows of a design check."""
        fill_table(self.table, rows, DESIGN_COLUMNS_SHOWN)
