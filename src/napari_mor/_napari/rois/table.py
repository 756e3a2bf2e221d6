"""ROIs dock, "ROIs" section: the ROI table, rename / delete / merge, save / load.

One row per ROI of the chosen ROI set (name, label, colour, voxels, volume)
from the core's :func:`~napari_mor.rois.roi_table`. Editing a name renames the
ROI; Delete and Merge act on the selected rows. Every change goes through the
core (:func:`~napari_mor.rois.rename_roi` & co) and back into the layer via
:meth:`RoiLayersSection.write_back`.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_mor._errors import MorError
from napari_mor._napari._dock import button_row, notify_errors
from napari_mor._napari._layers import labels_layer_data, spatial_affine_of
from napari_mor._napari._view import show_as_contours
from napari_mor._napari.rois.layers import RoiLayersSection
from napari_mor.io.volume import LabelImage
from napari_mor.rois import (
    delete_roi,
    load_roi_set,
    merge_rois,
    rename_roi,
    roi_table,
    save_roi_set,
)

TABLE_COLUMNS = ("name", "label", "colour", "voxels", "volume mL")


class RoiTableSection(QGroupBox):
    """The ROI table of the chosen ROI set and its buttons.

    Parameters
    ----------
    layers : RoiLayersSection
        Where the ROI set is read from and written back to.
    """

    def __init__(self, layers: RoiLayersSection, parent=None) -> None:
        super().__init__("ROIs (paint with the Labels layer tools)", parent)
        self._layers = layers
        self._filling = False
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.setMinimumHeight(140)
        layout.addWidget(self.table)
        row, buttons = button_row(
            ("Delete", self.delete_selected),
            ("Merge", self.merge_selected),
            ("Save ROI set...", self._save_dialog),
            ("Load ROI set...", self._load_dialog),
        )
        self.delete_button, self.merge_button, self.save_button, self.load_button = (
            buttons
        )
        layout.addLayout(row)

    # --------------------------------------------------------------- rows
    def fill(self, roi_set: LabelImage | None) -> list[str]:
        """Show the rows of ``roi_set`` (None: empty table); return the names."""
        rows = roi_table(roi_set) if roi_set is not None else []
        colors = roi_set.colors if roi_set is not None else {}
        self._filling = True
        self.table.setRowCount(len(rows))
        for r, info in enumerate(rows):
            name_item = QTableWidgetItem(info.name)
            name_item.setData(Qt.ItemDataRole.UserRole, info.label)
            cells = [
                name_item,
                QTableWidgetItem(str(info.label)),
                QTableWidgetItem(""),
                QTableWidgetItem(str(info.n_voxels)),
                QTableWidgetItem(f"{info.volume_ml:.3f}"),
            ]
            rgba = colors.get(info.label)
            if rgba is not None:
                cells[2].setBackground(
                    QColor.fromRgbF(*(float(c) for c in rgba[:3]), 1.0)
                )
            for c, item in enumerate(cells):
                if c != 0:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(r, c, item)
        self._filling = False
        return [info.name for info in rows]

    def table_rows(self) -> list[tuple[str, int, int, float]]:
        """(name, label, voxels, volume mL) of every table row."""
        return [
            (
                self.table.item(r, 0).text(),
                int(self.table.item(r, 1).text()),
                int(self.table.item(r, 3).text()),
                float(self.table.item(r, 4).text()),
            )
            for r in range(self.table.rowCount())
        ]

    def selected_labels(self) -> list[int]:
        """Label values of the selected table rows."""
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        return [int(self.table.item(r, 1).text()) for r in rows]

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 0:
            return
        label = item.data(Qt.ItemDataRole.UserRole)
        self.rename(int(label), item.text())

    # ---------------------------------------------------------- operations
    @notify_errors
    def rename(self, label: int, name: str) -> None:
        """Rename an ROI."""
        try:
            self._layers.write_back(rename_roi(self._layers.roi_set(), label, name))
        except MorError:
            self._layers.changed.emit()  # put the old name back in the table
            raise

    @notify_errors
    def delete(self, label: int) -> None:
        """Delete an ROI."""
        self._layers.write_back(delete_roi(self._layers.roi_set(), label))

    @notify_errors
    def merge(self, labels: list[int], name: str | None = None) -> None:
        """Merge ROIs into the first one."""
        self._layers.write_back(merge_rois(self._layers.roi_set(), labels, name))

    def delete_selected(self) -> None:
        """Delete the ROIs selected in the table."""
        for label in self.selected_labels():
            self.delete(label)

    def merge_selected(self) -> None:
        """Merge the ROIs selected in the table."""
        self.merge(self.selected_labels())

    # ----------------------------------------------------------- save/load
    @notify_errors
    def save_roi_set(self, path: str | Path) -> tuple[Path, Path]:
        """Save the ROI set as label NIfTI + LUT TSV."""
        return save_roi_set(self._layers.roi_set(), path)

    @notify_errors
    def load_roi_set(self, path: str | Path, lut_path: str | Path | None = None):
        """Load an ROI set onto the PET grid (resampled if needed) as a new layer."""
        pet_layer = self._layers.pet_layer
        if pet_layer is not None:
            labels = load_roi_set(
                path,
                lut_path,
                shape=pet_layer.data.shape[1:],
                affine=spatial_affine_of(pet_layer),
            )
        else:
            labels = load_roi_set(path, lut_path)
        data, kwargs, _ = labels_layer_data(labels)
        layer = self._layers.viewer.add_labels(data, **kwargs)
        show_as_contours(layer)  # outlines over the PET / maps
        self._layers.set_labels_layer(layer)
        return layer

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save ROI set", "rois.nii.gz", "NIfTI (*.nii.gz *.nii)"
        )
        if path:
            self.save_roi_set(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load ROI set", "", "NIfTI (*.nii.gz *.nii)"
        )
        if path:
            self.load_roi_set(path)
