"""The Kinetic fit dock's run controls: Fit ROIs, Fit maps, Cancel, progress, status."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import QGridLayout, QGroupBox, QLabel, QProgressBar, QPushButton


class RunControlsWidget(QGroupBox):
    """Dock section: the run buttons, the progress bar (0-1000) with Cancel
    beside it, and a status line; one button a line, so a narrow dock shows all.

    Parameters
    ----------
    fit_rois, fit_maps, cancel : callable()
        Slots of the three buttons.
    """

    def __init__(
        self,
        fit_rois: Callable,
        fit_maps: Callable,
        cancel: Callable,
        parent=None,
    ) -> None:
        super().__init__("Run", parent)
        grid = QGridLayout(self)
        made = []
        for text, slot in (
            ("Fit ROIs", fit_rois),
            ("Fit maps (voxelwise)", fit_maps),
            ("Cancel", cancel),
        ):
            button = QPushButton(text)
            # slots take no arguments: Qt's clicked(checked) is dropped
            button.clicked.connect(lambda *_, slot=slot: slot())
            made.append(button)
        self.fit_rois_button, self.fit_maps_button, self.cancel_button = made
        self.fit_rois_button.setToolTip("fit every ROI now (a few ms)")
        self.fit_maps_button.setToolTip("voxelwise BP_ND maps, in the background")
        self.cancel_button.setToolTip("stop the voxelwise fit (no layer is added)")
        self.cancel_button.setEnabled(False)
        grid.addWidget(self.fit_rois_button, 0, 0, 1, 2)
        grid.addWidget(self.fit_maps_button, 1, 0, 1, 2)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        grid.addWidget(self.progress, 2, 0)
        grid.addWidget(self.cancel_button, 2, 1)  # beside what it stops
        grid.setColumnStretch(0, 1)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        grid.addWidget(self.status_label, 3, 0, 1, 2)
