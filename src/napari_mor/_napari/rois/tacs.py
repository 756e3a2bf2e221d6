"""ROIs dock, "TACs" section: reference choice, TAC extraction, plot and export.

The TACs come from the core (:func:`~napari_mor.rois.extract_tacs` on the PET
grid, or :func:`~napari_mor.rois.extract_weighted_tacs` with partial-volume
fractions); :class:`TacPlotDock` draws them, the reference thick and dashed.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QVBoxLayout,
)

from napari_mor._errors import MorError
from napari_mor._napari._dock import button_row, notify_errors
from napari_mor._napari._layers import pet_from_layer
from napari_mor._napari._plot_base import BasePlotDock
from napari_mor._napari.rois.layers import RoiLayersSection
from napari_mor.defaults import DEFAULT_REFERENCE_HINT
from napari_mor.rois import (
    TacTable,
    extract_tacs,
    extract_weighted_tacs,
    label_fractions,
    labels_on_grid,
    write_tacs_tsv,
)

_NO_REFERENCE = "(none)"


class TacPlotDock(BasePlotDock):
    """TACs of the ROI set: minutes on x, kBq/mL on y; reference thick and dashed."""

    def __init__(self, viewer=None, parent=None) -> None:
        self.table: TacTable | None = None
        self.reference: str | None = None
        self.region_colors: dict[str, tuple] = {}
        super().__init__(viewer, parent)

    def set_tacs(
        self,
        table: TacTable | None,
        reference: str | None = None,
        colors: dict[str, tuple] | None = None,
    ) -> None:
        """Show a TAC table (``None`` clears the plot)."""
        self.table = table
        self.reference = reference
        self.region_colors = dict(colors or {})
        self.refresh()

    def draw(self) -> None:
        ax = self.axes
        ax.set_xlabel("time (min)")
        ax.set_ylabel("activity (kBq/mL)")
        if self.table is None:
            ax.set_title("TACs: compute to show")
            return
        t_min = self.table.timing.frame_mid_min
        for index, name in enumerate(self.table.names):
            is_ref = name == self.reference
            ax.plot(
                t_min,
                self.table.mean_kbq_ml[:, index],
                label=f"{name} (ref)" if is_ref else name,
                color=self.region_colors.get(name),
                linewidth=3.0 if is_ref else 1.4,
                linestyle="--" if is_ref else "-",
                marker=None if is_ref else ".",
                markersize=3,
                zorder=3 if is_ref else 2,
                gid=name,
            )
        ax.set_title("Regional TACs")
        ax.set_xlim(left=0)
        ax.legend(fontsize="x-small", loc="best")

    def lines_by_region(self) -> dict:
        """Region name -> its Line2D (for tests and export)."""
        return {line.get_gid(): line for line in self.axes.get_lines()}


class TacSection(QGroupBox):
    """Reference ROI, partial-volume and auto-update options, compute, export, plot.

    Attributes
    ----------
    tac_table : TacTable or None
        The last computed TACs.
    """

    def __init__(self, viewer, layers: RoiLayersSection, parent=None) -> None:
        super().__init__("TACs", parent)
        self._layers = layers
        self.tac_table: TacTable | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.reference_combo = QComboBox()
        self.reference_combo.currentIndexChanged.connect(self._on_reference_changed)
        self.pv_check = QCheckBox("partial-volume weighted (3x3x3 sub-voxels)")
        self.gtm_check = QCheckBox("partial-volume corrected (GTM, Rousset 1998)")
        self.gtm_check.setToolTip(
            "undo the scanner blur of the regional TACs; label 0 is the background "
            "region, so label every tissue you can (docs/pvc.md)"
        )
        self.psf_spin = QDoubleSpinBox()
        self.psf_spin.setRange(0.5, 20.0)
        self.psf_spin.setSingleStep(0.5)
        self.psf_spin.setValue(6.0)
        self.psf_spin.setSuffix(" mm")
        self.auto_check = QCheckBox("update when ROIs change")
        self.auto_check.setChecked(True)
        form.addRow("reference", self.reference_combo)
        form.addRow(self.pv_check)
        form.addRow(self.gtm_check)
        form.addRow("PSF FWHM", self.psf_spin)
        form.addRow(self.auto_check)
        layout.addLayout(form)
        row, (self.compute_button, self.export_button) = button_row(
            ("Compute TACs", self.compute_tacs),
            ("Export TACs...", self._export_dialog),
        )
        layout.addLayout(row)
        self.plot = TacPlotDock(viewer)
        layout.addWidget(self.plot)

    # ----------------------------------------------------------- reference
    def set_reference_choices(self, names: list[str]) -> None:
        """Offer ``names`` (keep the choice; else the first "occipital" one)."""
        current = self.reference_combo.currentText()
        self.reference_combo.blockSignals(True)
        self.reference_combo.clear()
        self.reference_combo.addItem(_NO_REFERENCE)
        self.reference_combo.addItems(names)
        if current in names:
            self.reference_combo.setCurrentText(current)
        else:
            hint = DEFAULT_REFERENCE_HINT.lower()
            matches = [n for n in names if hint in n.lower()]
            if matches:
                self.reference_combo.setCurrentText(matches[0])
        self.reference_combo.blockSignals(False)

    def reference_name(self) -> str | None:
        """The chosen reference ROI name (None when none)."""
        text = self.reference_combo.currentText()
        return None if text in ("", _NO_REFERENCE) else text

    def set_reference(self, name: str) -> None:
        """Choose the reference ROI."""
        if self.reference_combo.findText(name) < 0:
            raise MorError(f"No ROI named {name!r} to use as reference.")
        self.reference_combo.setCurrentText(name)

    def _on_reference_changed(self, index=None) -> None:
        if self.tac_table is not None:
            self.plot.set_tacs(
                self.tac_table, self.reference_name(), self._name_colors()
            )

    def _name_colors(self) -> dict[str, tuple]:
        try:
            roi_set = self._layers.roi_set()
        except MorError:
            return {}
        return {roi_set.name_of(k): v for k, v in roi_set.colors.items()}

    # ---------------------------------------------------------------- TACs
    @notify_errors
    def compute_tacs(self) -> TacTable:
        """Extract the TACs of the ROI set from the PET and plot them."""
        pet = pet_from_layer(self._layers.require_pet())
        roi_set = self._layers.roi_set()
        if not roi_set.present_labels.size:
            raise MorError(
                "The ROI set is empty; paint, add a sphere or import atlas regions."
            )
        if self.gtm_check.isChecked():
            from napari_mor.pvc import gtm_tacs

            roi_set = labels_on_grid(roi_set, pet.spatial_shape, pet.affine)
            table = gtm_tacs(pet, roi_set, self.psf_spin.value()).table
        elif self.pv_check.isChecked():
            fractions = label_fractions(roi_set, pet.spatial_shape, pet.affine)
            table = extract_weighted_tacs(pet, fractions)
        else:
            roi_set = labels_on_grid(roi_set, pet.spatial_shape, pet.affine)
            table = extract_tacs(pet, roi_set)
        self.tac_table = table
        self.plot.set_tacs(table, self.reference_name(), self._name_colors())
        return table

    @notify_errors
    def export_tacs(self, path: str | Path) -> Path:
        """Write the last computed TACs as TSV (computes them if needed)."""
        table = self.tac_table or self.compute_tacs()
        if table is None:
            raise MorError("No TACs to export; compute them first.")
        return write_tacs_tsv(table, path)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export TACs", "tacs.tsv", "TSV (*.tsv)"
        )
        if path:
            self.export_tacs(path)
