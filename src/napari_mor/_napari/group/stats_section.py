"""Group study dock, section 2: choose a maps folder and run (or load) statistics.

The analysis runs in a worker started by :func:`start_worker`:
:func:`napari_mor.group.iter_group_stats` yields per block of permutations (the
in-dock bar moves, Cancel stops between blocks), then the worker loads the
template and the region labels, so the GUI thread only adds layers. Emits
:attr:`StatsSection.result_ready` with a :class:`GroupOutput`.
"""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_mor._errors import MorError
from napari_mor._napari._dock import button_row
from napari_mor._napari._workers import start_worker
from napari_mor._napari.group._work import (
    GroupInputs,
    GroupOutput,
    prepare_stats,
    region_labels_for,
    run_stats,
    template_for,
    template_name,
)

TESTS = ("paired", "one-sample", "pearson", "spearman")
TAILS = ("two-sided", "greater", "less")
ATLASES = ("harvard_oxford", "neuromorphometrics", "aal", "none")


class StatsSection(QWidget):
    """Maps folder, test options, Run statistics / Load results / Cancel, bar."""

    result_ready = Signal(object)

    def __init__(self, viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.worker = None
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("maps folder or results folder")
        browse = QPushButton("Browse")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit)
        folder_row.addWidget(browse)
        self.test_combo = QComboBox()
        self.test_combo.addItems(TESTS)
        self.covariate_edit = QLineEdit("resiliency")
        self.tail_combo = QComboBox()
        self.tail_combo.addItems(TAILS)
        self.p_spin = QDoubleSpinBox()
        self.p_spin.setDecimals(4)
        self.p_spin.setRange(0.0001, 0.05)
        self.p_spin.setSingleStep(0.0005)
        self.p_spin.setValue(0.001)
        self.perm_spin = QSpinBox()
        self.perm_spin.setRange(0, 100000)
        self.perm_spin.setValue(1000)
        self.conn_combo = QComboBox()
        self.conn_combo.addItems(["26", "18", "6"])
        self.atlas_combo = QComboBox()
        self.atlas_combo.addItems(ATLASES)
        form = QFormLayout()
        form.addRow("test", self.test_combo)
        form.addRow("covariate", self.covariate_edit)
        form.addRow("tail", self.tail_combo)
        form.addRow("cluster-forming p", self.p_spin)
        form.addRow("permutations", self.perm_spin)
        form.addRow("connectivity", self.conn_combo)
        form.addRow("peak atlas", self.atlas_combo)
        buttons, made = button_row(
            ("Run statistics", self.run_stats),
            ("Load results", self.load_results),
            ("Cancel", self.cancel),
        )
        self.run_button, self.load_button, self.cancel_button = made
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(folder_row)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Maps or results folder")
        if folder:
            self.folder_edit.setText(folder)

    def inputs(self) -> GroupInputs:
        """The options as core inputs."""
        text = self.folder_edit.text().strip()
        if not text:
            raise MorError("Choose a maps folder (from 'napari-mor group run').")
        atlas = self.atlas_combo.currentText()
        return GroupInputs(
            folder=Path(text),
            test=self.test_combo.currentText(),
            covariate=self.covariate_edit.text().strip(),
            tail=self.tail_combo.currentText(),
            p_voxel=float(self.p_spin.value()),
            n_perm=int(self.perm_spin.value()),
            connectivity=int(self.conn_combo.currentText()),
            atlas=None if atlas == "none" else atlas,
        )

    def run_stats(self):
        """Start the analysis in a worker; returns the worker (None on error)."""
        if self.worker is not None:
            show_error("Group statistics are already running; wait or press Cancel.")
            return None
        try:
            inputs = self.inputs()
            kwargs = prepare_stats(inputs)
        except (MorError, OSError) as err:
            show_error(str(err))
            return None
        show_template = template_name(inputs.folder) not in self.viewer.layers
        self.worker = start_worker(
            run_stats,
            kwargs,
            inputs.folder,
            show_template,
            desc="Group statistics",
            on_returned=self.result_ready.emit,
            fraction_of=lambda value: value[0] / max(value[1], 1),
            progress_bar=self.progress,
            cancel_button=self.cancel_button,
            run_button=self.run_button,
            on_finished=self._finished,
        )
        return self.worker

    def cancel(self) -> None:
        """Stop the permutations between blocks; nothing is added."""
        if self.worker is not None:
            self.worker.quit()
            show_info("Group statistics cancelled.")

    def _finished(self) -> None:
        self.worker = None

    def load_results(self) -> None:
        """Load a results folder written by ``napari-mor group stats``."""
        from napari_mor.group import load_group_result

        try:
            folder = self.inputs().folder
            result = load_group_result(folder)
            template, name = (None, "")
            if template_name(folder) not in self.viewer.layers:
                template, name = template_for(folder)
            labels = region_labels_for(folder, result)
        except (MorError, OSError) as err:
            show_error(str(err))
            return
        self.result_ready.emit(GroupOutput(result, folder, template, name, labels))
