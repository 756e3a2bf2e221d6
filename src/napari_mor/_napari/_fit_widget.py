"""The "Kinetic fit" dock: ROI fits at once, voxelwise BP_ND maps in a worker.

A thin widget: it reads its controls into a
:class:`~napari_mor.workflows.fit.FitRequest`, runs the workflow
(:func:`~napari_mor.workflows.fit.fit_rois` in the GUI thread: a few ms; maps in a
``thread_worker`` draining :func:`~napari_mor.workflows.fit_maps.iter_fit_maps`)
and shows tables, plots and layers. No science here: the same request on the
command line (shown in the dock) gives the same numbers and sidecars.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

import napari
from napari_mor._errors import MorError
from napari_mor._napari._dock import (
    button_row,
    notify_errors,
    on_layer_list_change,
    read_only_table,
    scrolling_sections,
)
from napari_mor._napari._fit_plots import (
    FitCurvePlotDock,
    LoganPlotDock,
    ResidualPlotDock,
)
from napari_mor._napari._layers import (
    bp_map_metadata,
    labels_from_layer,
    pet_from_layer,
)
from napari_mor._napari._workers import start_worker
from napari_mor.defaults import DEFAULT_REFERENCE_HINT, DEFAULT_WINDOWS_MIN
from napari_mor.io.tables import write_rows_tsv
from napari_mor.kinetics import MODELS, MapResult, RoiFit
from napari_mor.rois import find_label
from napari_mor.workflows.delta import (
    DELTA_COLUMNS,
    DeltaRequest,
    delta_rows_from_fits,
)
from napari_mor.workflows.fit import (
    FIT_COLUMNS,
    UPTAKE_MASK,
    FitData,
    FitRequest,
    RoiFitResult,
    RoiTacs,
    fit_rois,
    fit_table_rows,
    prepare_fit_data,
)
from napari_mor.workflows.fit_maps import MapPlan, iter_fit_maps, plan_maps

#: Display name -> core model name.
MODEL_CHOICES = {
    "Logan-ref": "logan",
    "MRTM": "mrtm",
    "MRTM2": "mrtm2",
    "SRTM": "srtm",
    "SRTM2": "srtm2",
    "BF-SRTM": "srtm-bf",
    "Ratio (equilibrium)": "ratio",
}

WINDOW_MODES = {
    "preset": "Preset: baseline 0-45 / challenge 45-90 min",
    "custom": "Custom windows (one scan)",
    "whole": "Whole scan (one condition)",
    "two_scans": "Two scans: baseline PET + challenge PET",
}

MASK_ROIS = "ROI voxels (all labels)"
MASK_UPTAKE = "PET uptake >= 25% of p99 (head)"

_TABLE_HEADERS = (
    "ROI",
    "condition",
    "BP_ND",
    "SE",
    "R1",
    "R1 SE",
    "k2 (1/min)",
    "k2' (1/min)",
    "t* (min)",
    "frames",
    "R²",
)
_DELTA_HEADERS = ("ROI", "ΔBP_ND", "%ΔBP", "BP base", "BP chal")


def _drain_map_fits(plan: MapPlan, block_size: int | None):
    """Drain :func:`iter_fit_maps`, yielding its progress; returns the results."""
    return (yield from iter_fit_maps(plan, block_size=block_size))


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, float | np.floating):
        return "—" if not np.isfinite(value) else f"{float(value):.{digits}f}"
    return str(value)


class FitWidget(QWidget):
    """Dock widget: reference-region fits of ROIs and voxelwise BP_ND maps.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (injected by napari when opened from the Plugins menu).
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.inputs: FitRequest | None = None
        self.roi_result: RoiFitResult | None = None
        self.fits: dict[str, list[RoiFit]] = {}
        self.tacs: dict[str, RoiTacs] = {}
        self.roi_labels: list[int] = []
        self.map_results: dict[str, MapResult] = {}
        self.map_layers: dict[str, Image] = {}
        self.worker = None
        #: Voxels per block of the voxelwise fit (None: the core's default).
        self.block_size: int | None = None
        self._row_roi: list[int] = []

        sections = (
            self._build_inputs_box(),
            self._build_run_box(),
            self._build_results_box(),
            self._build_plots(),
            self._build_cli_box(),
        )
        scrolling_sections(self, sections).addStretch(1)
        on_layer_list_change(viewer, self._refresh_layer_choices)
        self._refresh_layer_choices()
        self._on_window_mode()
        self._update_cli()

    # ------------------------------------------------------------------ UI
    def _build_inputs_box(self) -> QGroupBox:
        box = QGroupBox("Inputs")
        form = QFormLayout(box)
        self.pet_combo = QComboBox()
        self.labels_combo = QComboBox()
        self.ref_combo = QComboBox()
        self.labels_combo.currentIndexChanged.connect(self._refresh_reference_choices)
        self.pet_combo.currentIndexChanged.connect(
            lambda *_: self._adopt_study_windows()
        )
        form.addRow("PET (4D)", self.pet_combo)
        form.addRow("ROI set", self.labels_combo)
        form.addRow("Reference ROI", self.ref_combo)

        self.model_combo = QComboBox()
        for display, name in MODEL_CHOICES.items():
            self.model_combo.addItem(display, name)
        form.addRow("Model", self.model_combo)

        self.window_mode_combo = QComboBox()
        for key, text in WINDOW_MODES.items():
            self.window_mode_combo.addItem(text, key)
        self.window_mode_combo.currentIndexChanged.connect(self._on_window_mode)
        form.addRow("Conditions", self.window_mode_combo)
        self.window_spins = {}
        for condition, (start, end) in DEFAULT_WINDOWS_MIN.items():
            row = QHBoxLayout()
            spins = []
            for value in (start, end):
                spin = QDoubleSpinBox()
                spin.setRange(0.0, 10000.0)
                spin.setDecimals(1)
                spin.setSuffix(" min")
                spin.setValue(value)
                spin.valueChanged.connect(self._update_cli)
                row.addWidget(spin)
                spins.append(spin)
            self.window_spins[condition] = spins
            holder = QWidget()
            holder.setLayout(row)
            row.setContentsMargins(0, 0, 0, 0)
            form.addRow(f"{condition} window", holder)
        self.challenge_pet_combo = QComboBox()
        form.addRow("Challenge PET", self.challenge_pet_combo)

        self.t_star_auto = QCheckBox("auto")
        self.t_star_auto.setChecked(True)
        self.t_star_spin = QDoubleSpinBox()
        self.t_star_spin.setRange(0.0, 10000.0)
        self.t_star_spin.setDecimals(1)
        self.t_star_spin.setSuffix(" min")
        self.t_star_spin.setValue(20.0)
        form.addRow("t*", self._pair(self.t_star_auto, self.t_star_spin))
        self.k2p_auto = QCheckBox("auto")
        self.k2p_auto.setChecked(True)
        self.k2p_spin = QDoubleSpinBox()
        self.k2p_spin.setRange(0.0001, 10.0)
        self.k2p_spin.setDecimals(4)
        self.k2p_spin.setSingleStep(0.01)
        self.k2p_spin.setSuffix(" /min")
        self.k2p_spin.setValue(0.2)
        form.addRow("k2'", self._pair(self.k2p_auto, self.k2p_spin))
        for check, spin in (
            (self.t_star_auto, self.t_star_spin),
            (self.k2p_auto, self.k2p_spin),
        ):
            check.toggled.connect(spin.setDisabled)
            check.toggled.connect(self._update_cli)
            spin.setDisabled(True)
            spin.valueChanged.connect(self._update_cli)
        self.weights_combo = QComboBox()
        self.weights_combo.addItems(["none", "duration", "noise"])
        form.addRow("Weighting", self.weights_combo)
        self.mask_combo = QComboBox()
        form.addRow("Map mask", self.mask_combo)
        for combo in (
            self.pet_combo,
            self.labels_combo,
            self.ref_combo,
            self.model_combo,
            self.challenge_pet_combo,
            self.weights_combo,
            self.mask_combo,
        ):
            combo.currentIndexChanged.connect(self._update_cli)
        return box

    @staticmethod
    def _pair(check: QCheckBox, spin: QDoubleSpinBox) -> QWidget:
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(check)
        row.addWidget(spin, 1)
        return holder

    def _build_run_box(self) -> QGroupBox:
        box = QGroupBox("Run")
        layout = QVBoxLayout(box)
        buttons, made = button_row(
            ("Fit ROIs", self.fit_rois),
            ("Fit maps (voxelwise)", self.fit_maps),
            ("Cancel", self.cancel),
        )
        self.fit_rois_button, self.fit_maps_button, self.cancel_button = made
        self.cancel_button.setEnabled(False)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        return box

    def _build_results_box(self) -> QGroupBox:
        box = QGroupBox("ROI fits (click a row to plot it)")
        layout = QVBoxLayout(box)
        self.table = QTableWidget(0, len(_TABLE_HEADERS))
        self.table.setHorizontalHeaderLabels(_TABLE_HEADERS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Interactive
        )
        self.table.setMinimumHeight(180)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        layout.addWidget(self.table)
        layout.addWidget(
            QLabel(
                "ΔBP_ND = BP_baseline − BP_challenge from the ROI fits; positive = "
                "activation (reduced availability, endogenous opioid release)."
            )
        )
        self.delta_table = read_only_table(_DELTA_HEADERS)
        layout.addWidget(self.delta_table)
        row, _ = button_row(
            ("Save table (TSV)…", self._save_table_dialog),
            ("Save maps (NIfTI + JSON)…", self._save_maps_dialog),
        )
        layout.addLayout(row)
        return box

    def _build_plots(self) -> QTabWidget:
        self.curve_plot = FitCurvePlotDock(self.viewer)
        self.residual_plot = ResidualPlotDock(self.viewer)
        self.logan_plot = LoganPlotDock(self.viewer)
        self.plot_tabs = QTabWidget()
        self.plot_tabs.addTab(self.curve_plot, "TAC + model")
        self.plot_tabs.addTab(self.residual_plot, "Residuals")
        self.plot_tabs.addTab(self.logan_plot, "Logan plot")
        self.plot_tabs.setMinimumHeight(320)
        return self.plot_tabs

    def _build_cli_box(self) -> QGroupBox:
        box = QGroupBox("Equivalent command")
        layout = QVBoxLayout(box)
        self.cli_box = QPlainTextEdit()
        self.cli_box.setReadOnly(True)
        self.cli_box.setMaximumHeight(110)
        self.cli_box.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        layout.addWidget(self.cli_box)
        return box

    # -------------------------------------------------------------- layers
    def _pet_layers(self) -> list[Image]:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and layer.ndim == 4
            and "frame_start_s" in layer.metadata
        ]

    def _labels_layers(self) -> list[Labels]:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and layer.ndim == 3
        ]

    @staticmethod
    def _fill(combo: QComboBox, names: list[str], extra: list[str] = ()) -> None:
        current = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems([*extra, *names])
        index = combo.findText(current)
        combo.setCurrentIndex(index if index >= 0 else 0)
        combo.blockSignals(False)

    def _refresh_layer_choices(self, event=None) -> None:
        pets = [layer.name for layer in self._pet_layers()]
        labels = [layer.name for layer in self._labels_layers()]
        self._fill(self.pet_combo, pets)
        self._fill(self.challenge_pet_combo, pets)
        if self.challenge_pet_combo.currentText() == self.pet_combo.currentText():
            others = [name for name in pets if name != self.pet_combo.currentText()]
            if others:
                self.challenge_pet_combo.setCurrentText(others[0])
        before = self.labels_combo.currentText()
        self._fill(self.labels_combo, labels)
        masks = [
            layer.name
            for layer in self.viewer.layers
            if layer.ndim == 3
            and isinstance(layer, Image | Labels)
            and layer.metadata.get("kind") != "bp_map"
        ]
        self._fill(self.mask_combo, masks, [MASK_ROIS, MASK_UPTAKE])
        if self.labels_combo.currentText() != before or self.ref_combo.count() == 0:
            self._refresh_reference_choices()
        self._update_cli()

    def _refresh_reference_choices(self, index=None) -> None:
        layer = self._layer(self.labels_combo.currentText())
        current = self.ref_combo.currentData()
        self.ref_combo.blockSignals(True)
        self.ref_combo.clear()
        lut = {} if layer is None else layer.metadata.get("lut", {}) or {}
        for label in sorted(int(k) for k in lut):
            self.ref_combo.addItem(f"{lut[label]} ({label})", label)
        guess = current if current in lut else find_label(lut, DEFAULT_REFERENCE_HINT)
        if guess is not None:
            self.ref_combo.setCurrentIndex(self.ref_combo.findData(int(guess)))
        else:
            self.ref_combo.setCurrentIndex(-1)
        self.ref_combo.blockSignals(False)
        self._update_cli()

    def _sync_reference_choices(self) -> None:
        """Refresh the reference list when the ROI set's LUT changed (ROIs dock)."""
        layer = self._layer(self.labels_combo.currentText())
        lut = {} if layer is None else layer.metadata.get("lut", {}) or {}
        listed = {self.ref_combo.itemData(i) for i in range(self.ref_combo.count())}
        wanted = {int(k) for k in lut}
        names = {self.ref_combo.itemText(i) for i in range(self.ref_combo.count())}
        if listed != wanted or names != {f"{lut[k]} ({int(k)})" for k in lut}:
            self._refresh_reference_choices()

    def _layer(self, name: str):
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    # ------------------------------------------------------------ setters
    def set_pet_layer(self, layer: Image) -> None:
        """Choose the (baseline) PET layer."""
        self.pet_combo.setCurrentText(layer.name)

    def set_challenge_layer(self, layer: Image) -> None:
        """Choose the challenge PET layer (two-scan mode)."""
        self.challenge_pet_combo.setCurrentText(layer.name)

    def set_labels_layer(self, layer: Labels) -> None:
        """Choose the ROI set (Labels layer with ``metadata["lut"]``)."""
        self.labels_combo.setCurrentText(layer.name)
        self._refresh_reference_choices()

    def set_reference(self, label: int | None) -> None:
        """Choose the reference ROI by label value (None: no reference)."""
        index = -1 if label is None else self.ref_combo.findData(int(label))
        self.ref_combo.setCurrentIndex(index)

    def set_model(self, model: str) -> None:
        """Choose the model by core name (``"logan"``, ``"mrtm2"``, ...)."""
        index = self.model_combo.findData(model)
        if index < 0:
            raise MorError(f"Unknown model {model!r}.")
        self.model_combo.setCurrentIndex(index)

    def set_window_mode(self, mode: str) -> None:
        """``"preset"``, ``"custom"``, ``"whole"`` or ``"two_scans"``."""
        self.window_mode_combo.setCurrentIndex(self.window_mode_combo.findData(mode))

    def _adopt_study_windows(self) -> None:
        """Use the windows the Study dock stored on the PET layer, if customised."""
        name = self.pet_combo.currentText()
        if name not in self.viewer.layers:
            return
        stored = self.viewer.layers[name].metadata.get("windows_min") or {}
        windows = {
            c: tuple(float(v) for v in stored[c])
            for c in DEFAULT_WINDOWS_MIN
            if c in stored
        }
        default = {c: tuple(map(float, w)) for c, w in DEFAULT_WINDOWS_MIN.items()}
        if len(windows) == len(default) and windows != default:
            self.set_windows(windows)

    def set_windows(self, windows_min: dict[str, tuple[float, float]]) -> None:
        """Custom baseline/challenge windows, minutes."""
        self.set_window_mode("custom")
        for condition, (start, end) in windows_min.items():
            self.window_spins[condition][0].setValue(start)
            self.window_spins[condition][1].setValue(end)

    def set_t_star(self, minutes: float | None) -> None:
        """t* in minutes (None: automatic)."""
        self.t_star_auto.setChecked(minutes is None)
        if minutes is not None:
            self.t_star_spin.setValue(minutes)

    def set_k2p(self, per_min: float | None) -> None:
        """k2' in 1/min (None: automatic)."""
        self.k2p_auto.setChecked(per_min is None)
        if per_min is not None:
            self.k2p_spin.setValue(per_min)

    def set_mask(self, choice: str) -> None:
        """Map mask: :data:`MASK_ROIS`, :data:`MASK_UPTAKE` or a 3-D layer name."""
        index = self.mask_combo.findText(choice)
        if index < 0:
            raise MorError(f"No mask choice {choice!r}.")
        self.mask_combo.setCurrentIndex(index)

    def _on_window_mode(self, index=None) -> None:
        mode = self.window_mode_combo.currentData()
        if mode == "preset":
            for condition, (start, end) in DEFAULT_WINDOWS_MIN.items():
                self.window_spins[condition][0].setValue(start)
                self.window_spins[condition][1].setValue(end)
        for spins in self.window_spins.values():
            for spin in spins:
                spin.setEnabled(mode == "custom")
        self.challenge_pet_combo.setEnabled(mode == "two_scans")
        self._update_cli()

    # ------------------------------------------------------------- inputs
    def _require(self, combo: QComboBox, what: str):
        layer = self._layer(combo.currentText())
        if layer is None:
            raise MorError(f"No {what} layer chosen; open one and pick it in the dock.")
        return layer

    def collect_inputs(self) -> FitRequest:
        """Read the controls into a :class:`FitRequest` (raises MorError)."""
        pet_layer = self._require(self.pet_combo, "PET")
        labels_layer = self._require(self.labels_combo, "ROI set (Labels)")
        ref_label = self.ref_combo.currentData()
        if ref_label is None:
            raise MorError(
                f"No reference ROI: the ROI set {labels_layer.name!r} has no region "
                "named like 'occipital' and none is chosen; pick the reference ROI "
                "(occipital cortex) in the dock or add it in the ROIs dock."
            )
        mode = self.window_mode_combo.currentData()
        windows = ()
        if mode in ("preset", "custom"):
            windows = tuple(
                (spins[0].value(), spins[1].value())
                for spins in self.window_spins.values()
            )
        challenge_path = None
        if mode == "two_scans":
            chal = self._require(self.challenge_pet_combo, "challenge PET")
            if chal.name == pet_layer.name:  # layers may be proxies: compare names
                raise MorError(
                    "Baseline and challenge PET are the same layer; pick the "
                    "challenge scan as 'Challenge PET'."
                )
            challenge_path = chal.metadata.get("source_path")
        return FitRequest(
            model=self.model_combo.currentData(),
            reference=int(ref_label),
            windows_min=windows,
            two_scans=mode == "two_scans",
            t_star_min=None
            if self.t_star_auto.isChecked()
            else self.t_star_spin.value(),
            k2p_per_min=None if self.k2p_auto.isChecked() else self.k2p_spin.value(),
            weights=self.weights_combo.currentText(),
            mask=self._mask_choice(),
            pet_path=pet_layer.metadata.get("source_path"),
            challenge_pet_path=challenge_path,
            labels_path=labels_layer.metadata.get("source_path"),
        )

    def _mask_choice(self) -> str | None:
        """The request's ``mask``: None (ROI voxels), ``"uptake"`` or a file."""
        choice = self.mask_combo.currentText()
        if choice in (MASK_ROIS, ""):
            return None
        if choice == MASK_UPTAKE:
            return UPTAKE_MASK
        layer = self._layer(choice)
        return (layer.metadata.get("source_path") if layer else None) or "MASK.nii.gz"

    def _brain_mask(self) -> np.ndarray | None:
        """The mask layer's voxels when a mask layer is chosen."""
        choice = self.mask_combo.currentText()
        if choice in (MASK_ROIS, MASK_UPTAKE, ""):
            return None
        layer = self._layer(choice)
        if layer is None:
            raise MorError(f"Mask layer {choice!r} is gone; pick another mask.")
        return np.asarray(layer.data) > 0

    def fit_data(self, request: FitRequest) -> FitData:
        """The request's inputs from the chosen layers (checked, on the PET grid)."""
        pet = pet_from_layer(self._require(self.pet_combo, "PET"))
        labels_layer = self._require(self.labels_combo, "ROI set")
        challenge = None
        if request.two_scans:
            challenge = pet_from_layer(
                self._require(self.challenge_pet_combo, "challenge PET")
            )
        files = {
            "pet": request.pet_path,
            "challenge_pet": request.challenge_pet_path,
            "labels": request.labels_path,
        }
        brain = self._brain_mask()
        if brain is not None:
            files["mask"] = request.mask
        return prepare_fit_data(
            request,
            pet,
            labels=labels_from_layer(labels_layer),
            challenge=challenge,
            brain_mask=brain,
            input_files=files,
        )

    def _update_cli(self, *args) -> None:
        try:
            request = self.collect_inputs()
        except MorError as err:
            self.cli_box.setPlainText(f"# incomplete inputs: {err}")
            return
        lines = ["# ROI table (one row per ROI and condition):"]
        lines.append(replace(request, rois_only=True, mask=None).command_line())
        if MODELS[request.model].map_solver is not None:
            lines.append("# BP_ND maps (OUT_<condition>.nii.gz with two conditions):")
            lines.append(replace(request, rois_only=False).command_line())
        if len(request.conditions) == 2:
            lines.append("# delta-BP (positive = activation):")
            lines.append(
                DeltaRequest(
                    "OUT_baseline.nii.gz",
                    "OUT_challenge.nii.gz",
                    "DELTA.nii.gz",
                    "PCT_DELTA.nii.gz",
                ).command_line()
            )
        used = self.roi_result.k2p if self.roi_result is not None else None
        if used is not None and used.value is not None and self.inputs == request:
            lines.append(
                f"# k2' used: {used.value:g} /min ({used.source}); the commands "
                f"estimate it the same way, or fix it with --k2p {used.value:g}"
            )
        self.cli_box.setPlainText("\n".join(lines))

    def cli_text(self) -> str:
        """The equivalent command lines shown in the dock."""
        return self.cli_box.toPlainText()

    # ------------------------------------------------------------ ROI fits
    @notify_errors
    def fit_rois(self) -> dict[str, list[RoiFit]]:
        """Fit every ROI in every condition now; fill the tables and plots."""
        self._sync_reference_choices()
        request = self.collect_inputs()
        result = fit_rois(request, self.fit_data(request))
        self.inputs, self.roi_result = request, result
        self.fits, self.tacs = result.fits, result.tacs
        self.roi_labels = result.labels
        self._fill_table()
        self._fill_delta_table()
        if self.table.rowCount():
            self.table.selectRow(0)
        self.status_label.setText(
            f"{request.model}: {len(self.roi_labels)} ROIs × {len(result.fits)} "
            f"condition(s) fitted; reference {result.reference}."
        )
        self._update_cli()
        return result.fits

    def table_rows(self) -> list[dict]:
        """The ROI fit table as rows (columns :data:`FIT_COLUMNS`)."""
        return fit_table_rows(self.roi_result) if self.roi_result else []

    def delta_rows(self) -> list[dict]:
        """Per-ROI delta-BP from the ROI fits (empty without two conditions)."""
        if not {"baseline", "challenge"} <= set(self.fits):
            return []
        first = self.tacs["baseline"]
        return delta_rows_from_fits(self.fits, self.roi_labels, first.n_voxels)

    def _fill_table(self) -> None:
        rows = self.table_rows()
        conditions = list(self.fits)
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        self._row_roi = []
        order = sorted(
            range(len(rows)),
            key=lambda i: (
                self.roi_labels.index(rows[i]["label"]),
                conditions.index(rows[i]["condition"]),
            ),
        )
        for r, i in enumerate(order):
            row = rows[i]
            values = (
                row["name"],
                row["condition"],
                _fmt(row["BP_ND"]),
                _fmt(row["BP_ND_se"]),
                _fmt(row["R1"]),
                _fmt(row["R1_se"]),
                _fmt(row["k2"], 4),
                _fmt(row["k2p"], 4),
                _fmt(row["t_star_min"], 1),
                str(row["n_frames"]),
                _fmt(row["r2"], 4),
            )
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c >= 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
            self._row_roi.append(self.roi_labels.index(row["label"]))
        self.table.resizeColumnsToContents()  # once: per-item resizing is slow
        self.table.blockSignals(False)

    def _fill_delta_table(self) -> None:
        rows = self.delta_rows()
        self.delta_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            values = (
                row["name"],
                _fmt(row["delta_bp_nd"]),
                _fmt(row["pct_delta_bp_nd"], 1),
                _fmt(row["bp_nd_baseline"]),
                _fmt(row["bp_nd_challenge"]),
            )
            for c, text in enumerate(values):
                self.delta_table.setItem(r, c, QTableWidgetItem(text))
        self.delta_table.resizeColumnsToContents()

    def _on_row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.select_roi(self._row_roi[rows[0].row()])

    def select_roi(self, roi_index: int) -> None:
        """Plot the fits of the ``roi_index``-th ROI (order of the table)."""
        fits = {
            condition: per_roi[roi_index] for condition, per_roi in self.fits.items()
        }
        for plot in (self.curve_plot, self.residual_plot, self.logan_plot):
            plot.set_fits(fits, self.tacs, roi_index)
        if next(iter(fits.values())).model == "logan":
            self.plot_tabs.setCurrentWidget(self.logan_plot)

    @notify_errors
    def save_table(self, path: str | Path) -> Path:
        """Write the ROI fit table (and the ROI delta table beside it) as TSV."""
        if not self.fits:
            raise MorError("Nothing to save: fit the ROIs first.")
        path = write_rows_tsv(self.table_rows(), FIT_COLUMNS, path)
        deltas = self.delta_rows()
        if deltas:
            write_rows_tsv(
                deltas, DELTA_COLUMNS, path.with_name(path.stem + "_delta.tsv")
            )
        return path

    # ---------------------------------------------------------------- maps
    @notify_errors
    def fit_maps(self):
        """Start the voxelwise fit in a worker; returns the worker (or None)."""
        if self.worker is not None:
            raise MorError("A voxelwise fit is already running; wait or cancel it.")
        self._sync_reference_choices()
        request = self.collect_inputs()
        plan = plan_maps(request, self.fit_data(request))
        self.status_label.setText(
            f"Voxelwise {request.model}: {plan.n_voxels} voxels × {len(plan.jobs)} "
            f"condition(s); k2' {plan.k2p.source}…"
        )
        self.worker = start_worker(
            _drain_map_fits,
            plan,
            self.block_size,
            desc=f"fitting {request.model} maps",
            on_returned=functools.partial(self._on_maps_returned, plan),
            fraction_of=lambda progress: progress.fraction,
            progress_bar=self.progress,
            cancel_button=self.cancel_button,
            run_button=self.fit_maps_button,
            on_aborted=self._on_aborted,
            on_finished=self._on_worker_finished,
            total=len(plan.jobs),
        )
        return self.worker

    def _on_maps_returned(self, plan: MapPlan, results) -> None:
        added = []
        for job in plan.jobs:
            result = results[job.condition]
            bp = result.maps["bp_nd"]
            finite = bp[np.isfinite(bp)]
            upper = float(np.percentile(finite, 99.5)) if finite.size else 1.0
            name = f"BP_ND {job.condition} [{plan.request.model}]"
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            layer = self.viewer.add_image(
                bp,
                name=name,
                affine=job.pet.affine,
                colormap="viridis",
                contrast_limits=(0.0, max(upper, 1e-3)),
                blending="translucent_no_depth",  # no depth test: tilted MR below
                metadata=bp_map_metadata(plan, job.condition, result),
                visible=job is plan.jobs[-1],
            )
            self.map_results[job.condition] = result
            self.map_layers[job.condition] = layer
            added.append(layer)
        failed = sum(r.n_failed for r in results.values())
        self.status_label.setText(
            f"Added {', '.join(layer.name for layer in added)} ({failed} failed "
            "voxels). Open the Delta-BP dock for the change map."
        )

    def _on_aborted(self) -> None:
        self.status_label.setText("Voxelwise fit cancelled; no layers added.")

    def _on_worker_finished(self) -> None:
        self.worker = None

    def cancel(self) -> None:
        """Stop the running voxelwise fit between blocks (no layer is added)."""
        if self.worker is not None:
            self.worker.quit()

    @notify_errors
    def save_maps(self, out_dir: str | Path, stem: str = "bp_nd") -> list[Path]:
        """Write each BP_ND map as ``OUT_DIR/STEM_<condition>.nii.gz`` + JSON."""
        from napari_mor.maps import write_map

        if not self.map_layers:
            raise MorError("No maps to save: run 'Fit maps' first.")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for condition, layer in self.map_layers.items():
            if layer not in self.viewer.layers:
                continue
            path = out_dir / f"{stem}_{condition}.nii.gz"
            provenance = {
                **layer.metadata.get("provenance", {}),
                "LayerName": layer.name,
            }
            written.append(
                write_map(
                    path, np.asarray(layer.data), layer.affine.affine_matrix, provenance
                )
            )
            layer.metadata["saved_path"] = str(path)
        show_info(f"Saved {len(written)} map(s) to {out_dir}.")
        return written

    # ------------------------------------------------------------- dialogs
    def _save_table_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save ROI fit table", "roi_fits.tsv", "TSV (*.tsv)"
        )
        if path:
            self.save_table(path)

    def _save_maps_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the BP_ND maps")
        if path:
            self.save_maps(path)
