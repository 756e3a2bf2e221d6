"""The "Delta-BP" dock: delta-BP_ND and percent delta-BP_ND over the MR.

Delta-BP_ND = BP_baseline - BP_challenge (:func:`napari_mor.maps.delta_bp`);
positive = activation (reduced availability, endogenous opioid release).
The dock shows both maps with a diverging colormap centred at 0, hides
``|value|`` below a threshold (display only; the unthresholded map stays in
``layer.metadata["unthresholded"]`` and is what gets saved), lists mean values
per ROI and writes clicked values to the status bar. No science here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.utils.colormaps import Colormap
from napari.utils.notifications import show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import napari
from napari_mor._errors import MorError
from napari_mor._napari._display import symmetric_limits, threshold_abs
from napari_mor._napari._dock import (
    button_row,
    notify_errors,
    on_layer_list_change,
    read_only_table,
    scrolling_sections,
)
from napari_mor._napari._layers import labels_from_layer, spatial_affine_of
from napari_mor.io._nifti import strip_image_suffix
from napari_mor.io.tables import write_rows_tsv
from napari_mor.rois import labels_on_grid, voxel_index
from napari_mor.workflows.delta import (
    DELTA_COLUMNS,
    DeltaRequest,
    compute_delta,
    roi_mean_delta,
)

SIGN_CONVENTION = (
    "ΔBP_ND = BP_baseline − BP_challenge.  Positive (red) = activation: reduced "
    "receptor availability during the challenge (endogenous opioid release). "
    "Negative (blue) = increased availability (deactivation)."
)

DELTA_NAME = "delta-BP_ND"
PCT_NAME = "%delta-BP_ND"
_NO_LABELS = "(none)"
_COLORMAPS = ("bwr", "RdBu_r", "coolwarm")  # all: positive red, negative blue
_TABLE_HEADERS = ("ROI", "voxels", "mean ΔBP_ND", "%ΔBP of means", "BP base", "BP chal")


def diverging_colormap(name: str = "bwr", fade: bool = True) -> Colormap:
    """A napari colormap sampled from a matplotlib diverging map.

    With ``fade`` the alpha falls to 0 at the centre, so values near 0 let the MR
    show through (the contrast limits are symmetric, so the centre is 0).
    """
    from matplotlib import colormaps

    positions = np.linspace(0.0, 1.0, 33)
    colors = colormaps[name](positions)
    if fade:
        colors[:, 3] = np.clip(np.abs(2 * positions - 1) * 4.0, 0.0, 1.0)
    return Colormap(
        colors=colors,
        controls=positions,
        name=f"mor_{name}{'_fade' if fade else ''}",
        display_name=f"{name}{' (clear at 0)' if fade else ''}",
    )


class DeltaWidget(QWidget):
    """Dock widget: delta-BP_ND and percent delta-BP_ND from two BP_ND layers.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.delta: np.ndarray | None = None
        self.pct: np.ndarray | None = None
        self.affine: np.ndarray | None = None
        self.rows: list[dict] = []
        self.provenance: dict = {}
        self.delta_layer: Image | None = None
        self.pct_layer: Image | None = None

        sections = (
            self._build_inputs_box(),
            self._build_display_box(),
            self._build_table_box(),
            self._build_cli_box(),
        )
        scrolling_sections(self, sections).addStretch(1)
        on_layer_list_change(viewer, self._refresh_layer_choices)
        callbacks, on_click = viewer.mouse_drag_callbacks, self._on_click
        callbacks.append(on_click)
        self.destroyed.connect(
            lambda *_: callbacks.remove(on_click) if on_click in callbacks else None
        )
        self._refresh_layer_choices()

    # ------------------------------------------------------------------ UI
    def _build_inputs_box(self) -> QGroupBox:
        box = QGroupBox("BP_ND maps")
        form = QFormLayout(box)
        self.base_combo = QComboBox()
        self.chal_combo = QComboBox()
        self.labels_combo = QComboBox()
        form.addRow("Baseline BP_ND", self.base_combo)
        form.addRow("Challenge BP_ND", self.chal_combo)
        form.addRow("ROI set (table)", self.labels_combo)
        self.min_bp_spin = QDoubleSpinBox()
        self.min_bp_spin.setRange(0.0, 10.0)
        self.min_bp_spin.setDecimals(2)
        self.min_bp_spin.setSingleStep(0.05)
        self.min_bp_spin.setValue(0.1)
        self.min_bp_spin.setToolTip("percent delta-BP is NaN where BP_baseline < this")
        form.addRow("%ΔBP: min BP_base", self.min_bp_spin)
        self.compute_button = QPushButton("Compute delta-BP")
        self.compute_button.clicked.connect(lambda: self.compute())
        form.addRow(self.compute_button)
        for combo in (self.base_combo, self.chal_combo):
            combo.currentIndexChanged.connect(self._update_cli)
        self.min_bp_spin.valueChanged.connect(self._update_cli)
        return box

    def _build_display_box(self) -> QGroupBox:
        box = QGroupBox("Display")
        form = QFormLayout(box)
        self.legend = QLabel(SIGN_CONVENTION)
        self.legend.setWordWrap(True)
        form.addRow(self.legend)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 100.0)
        self.threshold_spin.setDecimals(3)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.valueChanged.connect(self._apply_threshold)
        form.addRow("hide |ΔBP_ND| below", self.threshold_spin)
        self.range_spin = QDoubleSpinBox()
        self.range_spin.setRange(0.001, 100.0)
        self.range_spin.setDecimals(3)
        self.range_spin.setSingleStep(0.05)
        self.range_spin.setValue(1.0)
        self.range_spin.setToolTip(
            "contrast limits of the ΔBP_ND layer: -range..+range"
        )
        self.range_spin.valueChanged.connect(self._apply_range)
        form.addRow("colour range ±", self.range_spin)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(90)
        self.opacity_slider.valueChanged.connect(self._apply_style)
        form.addRow("opacity", self.opacity_slider)
        row = QHBoxLayout()
        self.cmap_combo = QComboBox()
        self.cmap_combo.addItems(_COLORMAPS)
        self.cmap_combo.currentIndexChanged.connect(self._apply_style)
        self.fade_check = QCheckBox("clear near 0")
        self.fade_check.setChecked(True)
        self.fade_check.toggled.connect(self._apply_style)
        row.addWidget(self.cmap_combo)
        row.addWidget(self.fade_check)
        holder = QWidget()
        holder.setLayout(row)
        row.setContentsMargins(0, 0, 0, 0)
        form.addRow("colormap", holder)
        self.show_combo = QComboBox()
        self.show_combo.addItems([DELTA_NAME, PCT_NAME])
        self.show_combo.currentIndexChanged.connect(self._apply_style)
        form.addRow("show", self.show_combo)
        return box

    def _build_table_box(self) -> QGroupBox:
        box = QGroupBox("Mean per ROI")
        layout = QVBoxLayout(box)
        self.table = read_only_table(_TABLE_HEADERS, min_height=200)
        layout.addWidget(self.table)
        row, _ = button_row(
            ("Save maps (NIfTI + JSON)…", self._save_maps_dialog),
            ("Save table (TSV)…", self._save_table_dialog),
        )
        layout.addLayout(row)
        return box

    def _build_cli_box(self) -> QGroupBox:
        box = QGroupBox("Equivalent command")
        layout = QVBoxLayout(box)
        self.cli_box = QPlainTextEdit()
        self.cli_box.setReadOnly(True)
        self.cli_box.setMaximumHeight(80)
        layout.addWidget(self.cli_box)
        return box

    # -------------------------------------------------------------- layers
    def _map_layers(self) -> list[Image]:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and layer.ndim == 3
            and layer.metadata.get("kind") != "delta_bp_map"
        ]

    def _refresh_layer_choices(self, event=None) -> None:
        maps = self._map_layers()
        names = [layer.name for layer in maps]
        by_condition = {
            layer.metadata.get("condition"): layer.name
            for layer in maps
            if layer.metadata.get("kind") == "bp_map"
        }
        for combo, condition in (
            (self.base_combo, "baseline"),
            (self.chal_combo, "challenge"),
        ):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)
            elif condition in by_condition:
                combo.setCurrentText(by_condition[condition])
            combo.blockSignals(False)
        labels = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and layer.ndim == 3
        ]
        current = self.labels_combo.currentText()
        self.labels_combo.clear()
        self.labels_combo.addItems([_NO_LABELS, *labels])
        if current in labels:
            self.labels_combo.setCurrentText(current)
        elif labels:
            self.labels_combo.setCurrentText(labels[0])
        self._update_cli()

    def set_layers(self, baseline: Image, challenge: Image, labels=None) -> None:
        """Choose the two BP_ND layers (and optionally the ROI Labels layer)."""
        self.base_combo.setCurrentText(baseline.name)
        self.chal_combo.setCurrentText(challenge.name)
        if labels is not None:
            self.labels_combo.setCurrentText(labels.name)

    def _layer(self, name: str):
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def inputs(self) -> DeltaRequest:
        """The dock's request (saved map paths when known)."""
        base = self._layer(self.base_combo.currentText())
        chal = self._layer(self.chal_combo.currentText())

        def path_of(layer):
            if layer is None:
                return None
            return layer.metadata.get("saved_path") or layer.metadata.get("source_path")

        return DeltaRequest(
            baseline_path=path_of(base),
            challenge_path=path_of(chal),
            out="DELTA.nii.gz",
            percent_out="PCT_DELTA.nii.gz",
            min_bp_base=self.min_bp_spin.value(),
        )

    def _update_cli(self, *args) -> None:
        self.cli_box.setPlainText(self.inputs().command_line())

    def cli_text(self) -> str:
        """The equivalent ``napari-mor delta`` command shown in the dock."""
        return self.cli_box.toPlainText()

    # ------------------------------------------------------------- compute
    @notify_errors
    def compute(self) -> np.ndarray:
        """Delta-BP_ND and percent delta-BP_ND from the chosen layers; show them."""
        base = self._layer(self.base_combo.currentText())
        chal = self._layer(self.chal_combo.currentText())
        if base is None or chal is None:
            raise MorError(
                "Pick a baseline and a challenge BP_ND layer (3-D); run 'Fit maps' "
                "in the Kinetic fit dock to make them."
            )
        if base.name == chal.name:  # layers may be proxies: compare names
            raise MorError("Baseline and challenge are the same layer; pick two maps.")
        request = self.inputs()
        base_data, chal_data = np.asarray(base.data), np.asarray(chal.data)
        result = compute_delta(
            base_data,
            chal_data,
            spatial_affine_of(base),
            spatial_affine_of(chal),
            sources={
                "baseline": request.baseline_path,
                "challenge": request.challenge_path,
            },
            provenance={
                "baseline": _saved_or_layer_provenance(base),
                "challenge": _saved_or_layer_provenance(chal),
            },
            min_bp_base=request.min_bp_base,
        )
        self.delta, self.pct = result.delta_bp_nd, result.pct_delta_bp_nd
        self.affine = result.affine
        self.provenance = result.provenance
        self.delta_layer = self._show(DELTA_NAME, self.delta, "delta_bp_nd")
        self.pct_layer = self._show(PCT_NAME, self.pct, "pct_delta_bp_nd")
        self.range_spin.blockSignals(True)
        self.range_spin.setValue(self.delta_layer.contrast_limits[1])
        self.range_spin.blockSignals(False)
        self._apply_threshold()
        self._apply_style()
        base.visible = chal.visible = False  # show the change over the MR
        self.refresh_table(base_data, chal_data)
        self._update_cli()
        return self.delta

    def _show(self, name: str, data: np.ndarray, quantity: str) -> Image:
        metadata = {
            "kind": "delta_bp_map",
            "quantity": quantity,
            "unthresholded": data,
            "sign_convention": SIGN_CONVENTION,
            "provenance": {**self.provenance, "Quantity": quantity},
        }
        layer = self._layer(name)
        if layer is not None and layer.data.shape == data.shape:
            layer.metadata = metadata
            layer.affine = self.affine
            layer.data = data
        else:
            if layer is not None:
                self.viewer.layers.remove(layer)
            layer = self.viewer.add_image(
                data,
                name=name,
                affine=self.affine,
                blending="translucent_no_depth",  # no depth test: tilted MR below
                metadata=metadata,
            )
        layer.contrast_limits_range = symmetric_limits(data, 100.0)
        layer.contrast_limits = symmetric_limits(data, 99.0)
        return layer

    def _apply_threshold(self, *args) -> None:
        """Hide ``|ΔBP_ND|`` below the threshold (the % map follows the same voxels)."""
        if self.delta is None or self.delta_layer is None:
            return
        threshold = self.threshold_spin.value()
        shown = threshold_abs(self.delta, threshold)
        self.delta_layer.data = shown
        self.delta_layer.metadata["threshold"] = threshold
        if self.pct_layer is not None:
            pct = np.where(np.isnan(shown), np.nan, self.pct).astype(np.float32)
            self.pct_layer.data = pct
            self.pct_layer.metadata["threshold"] = threshold

    def _apply_range(self, *args) -> None:
        """Symmetric contrast limits (centred at 0) of the ΔBP_ND layer."""
        if self.delta_layer is None:
            return
        value = self.range_spin.value()
        _low, high = self.delta_layer.contrast_limits_range
        if value > high:
            self.delta_layer.contrast_limits_range = (-value, value)
        self.delta_layer.contrast_limits = (-value, value)

    def _apply_style(self, *args) -> None:
        cmap = diverging_colormap(
            self.cmap_combo.currentText(), self.fade_check.isChecked()
        )
        shown = self.show_combo.currentText()
        for layer in (self.delta_layer, self.pct_layer):
            if layer is None or layer not in self.viewer.layers:
                continue
            layer.colormap = cmap
            layer.opacity = self.opacity_slider.value() / 100.0
            layer.visible = layer.name == shown
            if layer.visible:
                self.viewer.layers.selection.active = layer

    def shown_layer(self) -> Image | None:
        """The delta layer currently shown (the one the status bar reports)."""
        return (
            self.pct_layer
            if self.show_combo.currentText() == PCT_NAME
            else (self.delta_layer)
        )

    # -------------------------------------------------------------- table
    def refresh_table(self, base=None, chal=None) -> list[dict]:
        """Mean ΔBP_ND and %ΔBP per ROI of the chosen ROI set."""
        self.rows = []
        layer = self._layer(self.labels_combo.currentText())
        if layer is not None and self.delta is not None:
            labels = labels_on_grid(
                labels_from_layer(layer), self.delta.shape, self.affine
            )
            self.rows = roi_mean_delta(
                self.delta, self.pct, labels, base, chal, self.min_bp_spin.value()
            )
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            values = (
                row["name"],
                str(row["n_voxels"]),
                _fmt(row["delta_bp_nd"], 3),
                _fmt(row["pct_delta_bp_nd"], 1),
                _fmt(row["bp_nd_baseline"], 3),
                _fmt(row["bp_nd_challenge"], 3),
            )
            for c, text in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        return self.rows

    # -------------------------------------------------------------- status
    def status_text(self, world_mm) -> str | None:
        """Status-bar text for a world point (None outside the map)."""
        if self.delta is None:
            return None
        index = voxel_index(world_mm, self.affine, self.delta.shape)
        if index is None:
            return None
        delta, pct = float(self.delta[index]), float(self.pct[index])
        if not np.isfinite(delta):
            return f"ΔBP_ND: no value at voxel {index} (outside the fitted mask)"
        sign = (
            "activation (reduced availability)"
            if delta > 0
            else "increased availability"
        )
        return f"ΔBP_ND = {delta:+.3f}, %ΔBP = {pct:+.1f}% at voxel {index}: {sign}"

    def _on_click(self, viewer, event) -> None:
        text = self.status_text(np.asarray(event.position)[-3:])
        if text is not None:
            viewer.status = text

    # ---------------------------------------------------------------- save
    @notify_errors
    def save_maps(self, delta_path: str | Path, pct_path: str | Path | None = None):
        """Write the unthresholded delta (and percent) maps as NIfTI + JSON."""
        from napari_mor.maps import write_map

        if self.delta is None:
            raise MorError("Nothing to save: compute delta-BP first.")
        written = [
            write_map(
                delta_path,
                self.delta,
                self.affine,
                {**self.provenance, "Quantity": "delta_bp_nd"},
            )
        ]
        if pct_path is not None:
            written.append(
                write_map(
                    pct_path,
                    self.pct,
                    self.affine,
                    {**self.provenance, "Quantity": "pct_delta_bp_nd"},
                )
            )
        show_info("Saved " + ", ".join(str(p) for p in written))
        return written

    @notify_errors
    def save_table(self, path: str | Path) -> Path:
        """Write the per-ROI table as TSV."""
        if not self.rows:
            raise MorError("No ROI table: compute delta-BP with an ROI set chosen.")
        return write_rows_tsv(self.rows, DELTA_COLUMNS, path)

    def _save_maps_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save delta-BP map", "delta_bp_nd.nii.gz", "NIfTI (*.nii.gz *.nii)"
        )
        if path:
            stem = str(strip_image_suffix(path))
            self.save_maps(path, f"{stem}_pct.nii.gz")

    def _save_table_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save delta-BP ROI table", "delta_bp_rois.tsv", "TSV (*.tsv)"
        )
        if path:
            self.save_table(path)


def _fmt(value, digits: int) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def _saved_or_layer_provenance(layer) -> dict | None:
    """A BP layer's provenance: its saved sidecar when saved, else its metadata."""
    from napari_mor.workflows.delta import read_map_sidecar

    saved = read_map_sidecar(layer.metadata.get("saved_path"))
    return saved if saved is not None else layer.metadata.get("provenance")
