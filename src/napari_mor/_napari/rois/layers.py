"""ROIs dock, "Layers" section: the PET and ROI-set pickers and the ROI-set sync.

The section is the dock's handle on its two layers. It turns the chosen Labels
layer into a core :class:`~napari_mor.io.volume.LabelImage` (:meth:`roi_set`)
and writes core results back into it (:meth:`write_back`: data, LUT and
colours). Signals tell the dock what happened: ``pet_changed`` (another PET
chosen), ``changed`` (another ROI set chosen, or the ROI set rewritten) and
``painted`` (the ROI layer was painted or its data replaced; debounced).
"""

from __future__ import annotations

import contextlib

import numpy as np
from napari.layers import Image, Labels
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QPushButton

from napari_mor._errors import MorError
from napari_mor._napari import _metadata as meta
from napari_mor._napari._dock import notify_errors
from napari_mor._napari._layers import labels_from_layer, spatial_affine_of
from napari_mor.io.volume import LabelImage
from napari_mor.rois import default_color, empty_roi_set

#: Painting is debounced: the dock updates this long after the last stroke.
AUTO_UPDATE_MS = 300


class RoiLayersSection(QGroupBox):
    """PET (4D Image) and ROI set (3D Labels) pickers, and the ROI-set sync.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers are offered.
    """

    #: Another PET layer was chosen (or the choices changed).
    pet_changed = Signal()
    #: Another ROI set was chosen, or the ROI set was written back.
    changed = Signal()
    #: The ROI layer was painted or its data replaced (debounced).
    painted = Signal()

    def __init__(self, viewer, parent=None) -> None:
        super().__init__("Layers", parent)
        self.viewer = viewer
        self._connected_labels: Labels | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTO_UPDATE_MS)
        self._timer.timeout.connect(self.painted.emit)
        form = QFormLayout(self)
        self.pet_combo = QComboBox()
        self.pet_combo.currentIndexChanged.connect(self._on_pet_changed)
        self.labels_combo = QComboBox()
        self.labels_combo.currentIndexChanged.connect(self._on_labels_changed)
        self.new_set_button = QPushButton("New ROI set on PET grid")
        self.new_set_button.clicked.connect(lambda: self.new_roi_set())
        form.addRow("PET (4D)", self.pet_combo)
        form.addRow("ROI set", self.labels_combo)
        form.addRow(self.new_set_button)

    # ------------------------------------------------------------ choices
    def refresh_choices(self, event=None) -> None:
        """Offer the viewer's 4D Image and 3D Labels layers (keep the choice)."""
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

    def _layers_of(self, kind, ndim: int) -> list:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, kind) and layer.ndim == ndim
        ]

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
        self.pet_changed.emit()

    def _on_labels_changed(self, index=None) -> None:
        layer = self.labels_layer
        if layer is not self._connected_labels:
            if self._connected_labels is not None:
                self._disconnect(self._connected_labels)
            if layer is not None:
                layer.events.paint.connect(self._schedule_update)
                layer.events.data.connect(self._schedule_update)
            self._connected_labels = layer
        self.changed.emit()

    def _disconnect(self, layer: Labels) -> None:
        for emitter in (layer.events.paint, layer.events.data):
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                emitter.disconnect(self._schedule_update)

    def _schedule_update(self, event=None) -> None:
        self._timer.start()

    # ------------------------------------------------------------ ROI set
    def require_pet(self) -> Image:
        """The chosen PET layer (MorError when there is none)."""
        layer = self.pet_layer
        if layer is None:
            raise MorError(
                "No dynamic PET layer: open a 4D PET (with its JSON sidecar) or the "
                "napari-mor sample study first."
            )
        return layer

    def require_labels(self) -> Labels:
        """The chosen ROI Labels layer (MorError when there is none)."""
        layer = self.labels_layer
        if layer is None:
            raise MorError(
                "No ROI set: click 'New ROI set on PET grid' or open a label image."
            )
        return layer

    @notify_errors
    def new_roi_set(self, name: str = "ROIs") -> Labels:
        """Add an empty Labels layer on the PET grid (PET affine) and select it."""
        pet_layer = self.require_pet()
        roi_set = empty_roi_set(pet_layer.data.shape[1:], spatial_affine_of(pet_layer))
        layer = self.viewer.add_labels(
            roi_set.data,
            affine=roi_set.affine,
            name=name,
            metadata={
                meta.KIND: meta.KIND_LABELS,
                meta.LUT: {},
                meta.SOURCE_PATH: None,
            },
            opacity=0.6,
        )
        self.set_labels_layer(layer)
        return layer

    def roi_set(self) -> LabelImage:
        """The current ROI set (labels layer data, LUT and displayed colours)."""
        layer = self.require_labels()
        labels = labels_from_layer(layer)
        values = set(int(v) for v in labels.present_labels) | set(labels.lut)
        colors = {v: tuple(float(c) for c in layer.get_color(v)) for v in values}
        return LabelImage(labels.data, labels.affine, labels.lut, colors, labels.path)

    def write_back(self, labels: LabelImage) -> None:
        """Put a core LabelImage back into the ROI layer (data, LUT, colours)."""
        layer = self.require_labels()
        layer.metadata = {
            **layer.metadata,
            meta.LUT: {int(k): v for k, v in labels.lut.items()},
        }
        colormap = layer.colormap
        if isinstance(colormap, DirectLabelColormap):
            color_dict = dict(colormap.color_dict)
            for value in set(int(v) for v in labels.present_labels) | set(labels.lut):
                if value not in color_dict:
                    color_dict[value] = labels.colors.get(value, default_color(value))
            layer.colormap = DirectLabelColormap(color_dict=color_dict)
        layer.data = np.asarray(labels.data, dtype=layer.data.dtype)
        self.changed.emit()
