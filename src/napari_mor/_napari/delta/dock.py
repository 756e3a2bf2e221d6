"""The "Delta-BP" dock: delta-BP_ND and percent delta-BP_ND over the MR.

Delta-BP_ND = BP_baseline - BP_challenge
(:func:`~napari_mor.workflows.delta.compute_delta`); positive = activation
(reduced availability, endogenous opioid release). A thin widget composing
small sections (inputs, display, ROI table, equivalent command): it shows both
maps with a diverging colormap centred at 0, hides ``|value|`` below a
threshold (display only; the unthresholded map stays in
``layer.metadata["unthresholded"]`` and is what gets saved), lists mean values
per ROI and shows the clicked value in the dock (and the status bar). No science here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QFileDialog, QWidget

import napari
from napari_mor._errors import MorError
from napari_mor._napari import _metadata as md
from napari_mor._napari._display import reliable_percent_voxels
from napari_mor._napari._dock import (
    notify_errors,
    on_layer_list_change,
    scrolling_sections,
)
from napari_mor._napari._layers import (
    labels_from_layer,
    spatial_affine_of,
    viewer_sources,
)
from napari_mor._napari._view import keep_on_top, style_new_layers
from napari_mor._napari.delta import layers as delta_layers
from napari_mor._napari.delta.display import (
    DELTA_NAME,
    PCT_NAME,
    SIGN_CONVENTION,
    DeltaDisplayWidget,
    diverging_colormap,
)
from napari_mor._napari.delta.inputs import DeltaInputsWidget
from napari_mor._napari.delta.table import RoiMeansWidget
from napari_mor._napari.fit.cli_box import CommandWidget
from napari_mor.io._nifti import strip_image_suffix
from napari_mor.io.tables import write_rows_tsv
from napari_mor.rois import labels_on_grid, voxel_index
from napari_mor.workflows.delta import (
    DELTA_COLUMNS,
    DeltaRequest,
    compute_delta,
    read_map_sidecar,
    roi_mean_delta,
)

__all__ = [
    "DELTA_NAME",
    "PCT_NAME",
    "SIGN_CONVENTION",
    "DeltaWidget",
    "diverging_colormap",
]


def _saved_or_layer_provenance(layer) -> dict | None:
    """A BP layer's provenance: its saved sidecar when saved, else its metadata."""
    saved = read_map_sidecar(layer.metadata.get(md.SAVED_PATH))
    return saved if saved is not None else layer.metadata.get(md.PROVENANCE)


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

        self.inputs_box = DeltaInputsWidget(viewer, self.compute)
        self.display_box = DeltaDisplayWidget()
        self.table_box = RoiMeansWidget(self._save_maps_dialog, self._save_table_dialog)
        self.cli = CommandWidget(max_height=80)
        sections = (self.inputs_box, self.display_box, self.table_box, self.cli)
        scrolling_sections(self, sections).addStretch(1)
        # the sections' Qt widgets, as attributes (tests and scripts use them)
        inputs, display = self.inputs_box, self.display_box
        self.base_combo, self.chal_combo = inputs.base_combo, inputs.chal_combo
        self.labels_combo, self.min_bp_spin = inputs.labels_combo, inputs.min_bp_spin
        self.compute_button = inputs.compute_button
        self.legend, self.readout = display.legend, display.readout
        self.threshold_spin, self.range_spin = (
            display.threshold_spin,
            display.range_spin,
        )
        self.opacity_slider = display.opacity_slider
        self.cmap_combo, self.fade_check = display.cmap_combo, display.fade_check
        self.show_combo = display.show_combo
        self.table, self.cli_box = self.table_box.table, self.cli.text_edit

        inputs.changed.connect(self._update_cli)
        display.on_change(self._apply_threshold, self._apply_range, self._apply_style)
        on_layer_list_change(viewer, inputs.refresh)
        callbacks, on_click = viewer.mouse_drag_callbacks, self._on_click
        callbacks.append(on_click)
        self.destroyed.connect(
            lambda *_: callbacks.remove(on_click) if on_click in callbacks else None
        )
        style_new_layers(viewer)  # ROI sets as contours: not read as ΔBP values
        inputs.refresh()

    # -------------------------------------------------------------- inputs
    def set_layers(self, baseline: Image, challenge: Image, labels=None) -> None:
        """Choose the two BP_ND layers (and optionally the ROI Labels layer)."""
        self.inputs_box.set_layers(baseline, challenge, labels)

    def inputs(self) -> DeltaRequest:
        """The dock's request (saved map paths when known)."""
        return self.inputs_box.request()

    def _update_cli(self, *args) -> None:
        self.cli.set_text(self.inputs().command_line())

    def cli_text(self) -> str:
        """The equivalent ``napari-mor delta`` command shown in the dock."""
        return self.cli.text()

    # ------------------------------------------------------------- compute
    @notify_errors
    def compute(self) -> np.ndarray:
        """Delta-BP_ND and percent delta-BP_ND from the chosen layers; show them."""
        base, chal = self.inputs_box.base_layer(), self.inputs_box.chal_layer()
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
        fitted = np.isfinite(base_data) & np.isfinite(chal_data)
        self.delta_layer = self._show(DELTA_NAME, self.delta, "delta_bp_nd", fitted)
        self.pct_layer = self._show(
            PCT_NAME, self.pct, "pct_delta_bp_nd", reliable_percent_voxels(base_data)
        )
        keep_on_top(self.viewer, (self.pct_layer, self.delta_layer))  # over labels
        self._show_range()
        self._apply_threshold()
        self._apply_style()
        base.visible = chal.visible = False  # show the change over the MR
        self.refresh_table(base_data, chal_data)
        self._update_cli()
        return self.delta

    def _show(self, name: str, data: np.ndarray, quantity: str, inside) -> Image:
        return delta_layers.show_map(
            self.viewer, name, data, self.affine, quantity, self.provenance, inside
        )

    def _show_range(self) -> None:
        """Show the shown layer's upper contrast limit as the colour range."""
        layer = self.shown_layer()
        if layer is not None and layer in self.viewer.layers:
            self.display_box.set_range_quietly(float(layer.contrast_limits[1]))

    def _apply_threshold(self) -> None:
        """Hide ``|ΔBP_ND|`` below the threshold (the % map follows the same voxels)."""
        if self.delta is None or self.delta_layer is None:
            return
        delta_layers.apply_threshold(
            self.delta_layer,
            self.pct_layer,
            self.delta,
            self.pct,
            self.display_box.values().threshold,
        )

    def _apply_range(self) -> None:
        """Symmetric contrast limits (centred at 0) of the shown delta layer."""
        layer = self.shown_layer()
        if layer is not None and layer in self.viewer.layers:
            delta_layers.apply_range(layer, self.display_box.values().colour_range)

    def _apply_style(self) -> None:
        delta_layers.apply_style(
            self.viewer, (self.delta_layer, self.pct_layer), self.display_box.values()
        )
        self._show_range()  # the range box follows the layer shown

    def shown_layer(self) -> Image | None:
        """The delta layer currently shown (the one the status bar reports)."""
        shown = self.display_box.values().show
        return self.pct_layer if shown == PCT_NAME else self.delta_layer

    # -------------------------------------------------------------- table
    def refresh_table(self, base=None, chal=None) -> list[dict]:
        """Mean ΔBP_ND and %ΔBP per ROI of the chosen ROI set."""
        self.rows = []
        layer = self.inputs_box.labels_layer()
        if layer is not None and self.delta is not None:
            labels = labels_on_grid(
                labels_from_layer(layer), self.delta.shape, self.affine
            )
            min_bp = self.inputs_box.values().min_bp_base
            self.rows = roi_mean_delta(self.delta, self.pct, labels, base, chal, min_bp)
        self.table_box.show_rows(self.rows)
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
        """A click on the canvas: the value there, in the dock and the status bar."""
        text = self.status_text(np.asarray(event.position)[-3:])
        if text is not None:
            self.readout.setText(text)  # stays: the status bar follows the mouse
            viewer.status = text

    # ---------------------------------------------------------------- save
    @notify_errors
    def save_maps(self, delta_path: str | Path, pct_path: str | Path | None = None):
        """Write the unthresholded delta (and percent) maps as NIfTI + JSON."""
        from napari_mor.io.outputs import check_outputs
        from napari_mor.maps import write_map

        if self.delta is None:
            raise MorError("Nothing to save: compute delta-BP first.")
        maps = [(delta_path, self.delta, "delta_bp_nd")]
        if pct_path is not None:
            maps.append((pct_path, self.pct, "pct_delta_bp_nd"))
        check_outputs(
            viewer_sources(self.viewer), {name: path for path, _, name in maps}
        )
        written = [
            write_map(path, data, self.affine, {**self.provenance, "Quantity": name})
            for path, data, name in maps
        ]
        show_info("Saved " + ", ".join(str(p) for p in written))
        return written

    @notify_errors
    def save_table(self, path: str | Path) -> Path:
        """Write the per-ROI table as TSV."""
        from napari_mor.io.outputs import check_outputs

        if not self.rows:
            raise MorError("No ROI table: compute delta-BP with an ROI set chosen.")
        check_outputs(viewer_sources(self.viewer), {"ROI table": path})
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
