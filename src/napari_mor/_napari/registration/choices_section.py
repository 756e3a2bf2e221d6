"""Registration dock, section 1: mode, moving and fixed layers, frame window.

The layer lists follow the mode (4D PET for motion correction, PET and a 3D MR
for PET -> MR, a 3D MR and the MNI152 template or another 3D image for
MR -> MNI) and the viewer's layers; :meth:`ChoicesSection.collect_inputs`
reads the chosen layers into core objects on the main thread.
"""

from __future__ import annotations

from napari.layers import Image
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from napari_mor._errors import MorError
from napari_mor._napari._dock import on_layer_list_change
from napari_mor._napari._layers import pet_from_layer, volume_from_layer
from napari_mor._napari.registration._work import (
    MNI_TEMPLATE,
    MODES,
    RegistrationInputs,
)


class ChoicesSection(QWidget):
    """Mode / Moving / Fixed combos and the reference (mean) frame window.

    ``excluded`` returns a layer to leave out of the lists (the dock's own
    result preview).
    """

    def __init__(self, viewer, excluded=lambda: None, parent=None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._excluded = excluded
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(list(MODES))
        self.moving_combo = QComboBox()
        self.fixed_combo = QComboBox()
        self.start_spin = _minutes(20.0)
        self.end_spin = _minutes(90.0)
        window = QHBoxLayout()
        window.addWidget(self.start_spin)
        window.addWidget(QLabel("to"))
        window.addWidget(self.end_spin)
        window.addWidget(QLabel("min"))
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Moving", self.moving_combo)
        form.addRow("Fixed", self.fixed_combo)
        form.addRow("Reference / mean frames", window)
        self.mode_combo.currentIndexChanged.connect(self.refresh_choices)
        on_layer_list_change(viewer, self.refresh_choices)
        self.refresh_choices()

    @property
    def mode(self) -> str:
        """The core mode: ``motion``, ``pet_to_mr`` or ``mr_to_mni``."""
        return MODES[self.mode_combo.currentText()]

    def set_mode(self, mode: str) -> None:
        """Select a mode by its core name (``motion``, ``pet_to_mr``, ``mr_to_mni``)."""
        label = next(k for k, v in MODES.items() if v == mode)
        self.mode_combo.setCurrentText(label)

    def _image_layers(self, ndim: int | None = None) -> list[str]:
        excluded = self._excluded()
        return [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and layer is not excluded
            and (ndim is None or layer.data.ndim == ndim)
        ]

    def refresh_choices(self, event=None) -> None:
        """Refill the layer lists for the mode, keeping the current choices."""
        mode = self.mode
        moving_before = self.moving_combo.currentText()
        fixed_before = self.fixed_combo.currentText()
        self.moving_combo.clear()
        self.fixed_combo.clear()
        if mode == "motion":
            self.moving_combo.addItems(self._image_layers(4))
        elif mode == "pet_to_mr":
            self.moving_combo.addItems(self._image_layers(4) + self._image_layers(3))
            self.fixed_combo.addItems(self._image_layers(3))
        else:
            self.moving_combo.addItems(self._image_layers(3))
            self.fixed_combo.addItems([MNI_TEMPLATE, *self._image_layers(3)])
        self.fixed_combo.setEnabled(mode != "motion")
        self.start_spin.setEnabled(mode != "mr_to_mni")
        self.end_spin.setEnabled(mode != "mr_to_mni")
        for combo, before in (
            (self.moving_combo, moving_before),
            (self.fixed_combo, fixed_before),
        ):
            if before and combo.findText(before) >= 0:
                combo.setCurrentText(before)
        same = self.fixed_combo.currentText() == self.moving_combo.currentText()
        if mode == "pet_to_mr" and self.fixed_combo.count() > 1 and same:
            self.fixed_combo.setCurrentIndex(1)  # a fixed image other than moving

    def collect_inputs(self) -> RegistrationInputs:
        """Read the chosen layers into core objects (main thread only)."""
        mode = self.mode
        moving_name = self.moving_combo.currentText()
        if not moving_name:
            raise MorError(
                "No suitable moving layer: open a dynamic PET (motion, PET->MR) or "
                "a 3D MR (MR->MNI) first."
            )
        moving_layer = self.viewer.layers[moving_name]
        window = (self.start_spin.value(), self.end_spin.value())
        if window[1] <= window[0]:
            raise MorError(
                f"The frame window {window[0]:g}-{window[1]:g} min is empty; the end "
                "must be after the start."
            )
        if mode == "motion" or (mode == "pet_to_mr" and moving_layer.data.ndim == 4):
            moving = pet_from_layer(moving_layer)
        else:
            moving = volume_from_layer(moving_layer)
        fixed_name = self.fixed_combo.currentText()
        fixed = None
        if mode == "pet_to_mr":
            if not fixed_name:
                raise MorError("Open a 3D T1 MR layer to register the PET to.")
            if fixed_name == moving_name:
                raise MorError("Moving and fixed are the same layer; pick the MR.")
            fixed = volume_from_layer(self.viewer.layers[fixed_name])
        elif mode == "mr_to_mni" and fixed_name != MNI_TEMPLATE:
            fixed = volume_from_layer(self.viewer.layers[fixed_name])
        return RegistrationInputs(mode, moving_name, fixed_name, moving, fixed, window)


def _minutes(value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 10000.0)
    spin.setDecimals(1)
    spin.setValue(value)
    return spin
