"""The Kinetic fit dock's layer pickers: PET scans, ROI set, reference ROI, map mask.

Qt combo boxes filled from the viewer's layer list (refreshed when layers are
added, removed or renamed); the reference list follows the ROI set's lookup
table and defaults to the region named like "occipital".
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox

from napari_mor._errors import MorError
from napari_mor._napari import _metadata as md
from napari_mor._napari.fit.form import narrow_combo
from napari_mor.defaults import DEFAULT_REFERENCE_HINT
from napari_mor.rois import find_label
from napari_mor.workflows.fit import UPTAKE_MASK

MASK_ROIS = "ROI voxels (all labels)"
MASK_UPTAKE = "PET uptake >= 25% of p99 (head)"


def _fill(combo: QComboBox, names: list[str], extra: list[str] = ()) -> None:
    """Replace a combo's items, keeping the current one when it is still there."""
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems([*extra, *names])
    index = combo.findText(current)
    combo.setCurrentIndex(index if index >= 0 else 0)
    combo.blockSignals(False)


def _lut_of(layer) -> dict:
    return {} if layer is None else layer.metadata.get(md.LUT, {}) or {}


class LayerPickerWidget(QGroupBox):
    """Dock section: which layers a fit uses.

    Signals
    -------
    changed
        Any choice changed.
    pet_changed
        The (baseline) PET layer changed.
    """

    changed = Signal()
    pet_changed = Signal()

    def __init__(self, viewer, parent=None) -> None:
        super().__init__("Inputs", parent)
        self.viewer = viewer
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.pet_combo = narrow_combo(QComboBox())
        self.challenge_pet_combo = narrow_combo(QComboBox())
        self.challenge_pet_combo.setToolTip("the challenge scan, in two-scan mode")
        self.labels_combo = narrow_combo(QComboBox())
        self.ref_combo = narrow_combo(QComboBox())
        self._ref_name: str | None = None  # the reference follows its name
        self._ref_layer: str | None = None
        self.ref_combo.currentIndexChanged.connect(self._remember_reference)
        self.mask_combo = narrow_combo(QComboBox())
        self.mask_combo.setToolTip("voxels the voxelwise fit covers")
        for text, combo in (
            ("PET (4D)", self.pet_combo),
            ("Challenge PET", self.challenge_pet_combo),
            ("ROI set", self.labels_combo),
            ("Reference ROI", self.ref_combo),
            ("Map mask", self.mask_combo),
        ):
            form.addRow(text, combo)
            combo.currentIndexChanged.connect(lambda *_: self.changed.emit())
        self.labels_combo.currentIndexChanged.connect(self.refresh_reference_choices)
        self.pet_combo.currentIndexChanged.connect(lambda *_: self.pet_changed.emit())

    # ------------------------------------------------------------- layers
    def layer(self, name: str):
        """The viewer's layer called ``name`` (None if there is none)."""
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def require(self, combo: QComboBox, what: str):
        """The layer chosen in ``combo``; MorError if none is."""
        layer = self.layer(combo.currentText())
        if layer is None:
            raise MorError(f"No {what} layer chosen; open one and pick it in the dock.")
        return layer

    def pet_layers(self) -> list[Image]:
        """4-D image layers with frame timing."""
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and layer.ndim == 4
            and md.FRAME_START_S in layer.metadata
        ]

    def labels_layers(self) -> list[Labels]:
        """3-D Labels layers."""
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and layer.ndim == 3
        ]

    def refresh(self, event=None) -> None:
        """Refill every combo from the layer list."""
        pets = [layer.name for layer in self.pet_layers()]
        labels = [layer.name for layer in self.labels_layers()]
        _fill(self.pet_combo, pets)
        _fill(self.challenge_pet_combo, pets)
        if self.challenge_pet_combo.currentText() == self.pet_combo.currentText():
            others = [name for name in pets if name != self.pet_combo.currentText()]
            if others:
                self.challenge_pet_combo.setCurrentText(others[0])
        before = self.labels_combo.currentText()
        _fill(self.labels_combo, labels)
        masks = [
            layer.name
            for layer in self.viewer.layers
            if layer.ndim == 3
            and isinstance(layer, Image | Labels)
            and layer.metadata.get(md.KIND) != md.KIND_BP_MAP
        ]
        _fill(self.mask_combo, masks, [MASK_ROIS, MASK_UPTAKE])
        if self.labels_combo.currentText() != before or self.ref_combo.count() == 0:
            self.refresh_reference_choices()
        self.changed.emit()

    def refresh_reference_choices(self, index=None) -> None:
        """List the ROI set's regions; the reference follows its NAME.

        On another ROI set the reference is the region with the same name (label
        values differ between ROI sets), else the region named like "occipital";
        on the same ROI set whose names were edited, the same label is kept.
        """
        layer_name = self.labels_combo.currentText()
        lut = _lut_of(self.layer(layer_name))
        current = self.ref_combo.currentData()
        current_name = self._ref_name
        self.ref_combo.blockSignals(True)
        self.ref_combo.clear()
        for label in sorted(int(k) for k in lut):
            self.ref_combo.addItem(f"{lut[label]} ({label})", label)
        same_name = [
            int(k)
            for k, v in lut.items()
            if current_name and str(v).lower() == current_name.lower()
        ]
        if same_name:
            guess = same_name[0]
        elif layer_name == self._ref_layer and current in lut:
            guess = current  # the same ROI set, its names edited
        else:
            guess = find_label(lut, DEFAULT_REFERENCE_HINT)
        index = -1 if guess is None else self.ref_combo.findData(int(guess))
        self.ref_combo.setCurrentIndex(index)
        self.ref_combo.blockSignals(False)
        self._remember_reference()
        self.changed.emit()

    def _remember_reference(self, *args) -> None:
        """Remember the reference by name and ROI set (see refresh)."""
        label = self.ref_combo.currentData()
        lut = _lut_of(self.layer(self.labels_combo.currentText()))
        self._ref_name = None if label is None else str(lut.get(int(label), ""))
        self._ref_layer = self.labels_combo.currentText()

    def sync_reference_choices(self) -> None:
        """Refresh the reference list when the ROI set's LUT changed (ROIs dock)."""
        lut = _lut_of(self.layer(self.labels_combo.currentText()))
        combo = self.ref_combo
        listed = {combo.itemData(i) for i in range(combo.count())}
        names = {combo.itemText(i) for i in range(combo.count())}
        wanted = {int(k) for k in lut}
        if listed != wanted or names != {f"{lut[k]} ({int(k)})" for k in lut}:
            self.refresh_reference_choices()

    # ------------------------------------------------------------ setters
    def set_reference(self, label: int | None) -> None:
        """Choose the reference ROI by label value (None: no reference)."""
        index = -1 if label is None else self.ref_combo.findData(int(label))
        self.ref_combo.setCurrentIndex(index)

    def set_mask(self, choice: str) -> None:
        """Map mask: :data:`MASK_ROIS`, :data:`MASK_UPTAKE` or a 3-D layer name."""
        index = self.mask_combo.findText(choice)
        if index < 0:
            raise MorError(f"No mask choice {choice!r}.")
        self.mask_combo.setCurrentIndex(index)

    # -------------------------------------------------------------- masks
    def mask_choice(self) -> str | None:
        """The request's ``mask``: None (ROI voxels), ``"uptake"`` or a file."""
        choice = self.mask_combo.currentText()
        if choice in (MASK_ROIS, ""):
            return None
        if choice == MASK_UPTAKE:
            return UPTAKE_MASK
        layer = self.layer(choice)
        return (layer.metadata.get(md.SOURCE_PATH) if layer else None) or "MASK.nii.gz"

    def brain_mask(self) -> np.ndarray | None:
        """The mask layer's voxels when a mask layer is chosen."""
        choice = self.mask_combo.currentText()
        if choice in (MASK_ROIS, MASK_UPTAKE, ""):
            return None
        layer = self.layer(choice)
        if layer is None:
            raise MorError(f"Mask layer {choice!r} is gone; pick another mask.")
        return np.asarray(layer.data) > 0
