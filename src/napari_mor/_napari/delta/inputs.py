"""The Delta-BP dock's inputs: the two BP_ND layers, the ROI set, min BP_base.

Layer pickers are Qt combos filled from the layer list (the fit dock's maps are
picked by condition); the percent threshold is the magicgui form
:class:`DeltaInputs`, which gives the
:class:`~napari_mor.workflows.delta.DeltaRequest` field.
"""

from __future__ import annotations

from dataclasses import dataclass

from napari.layers import Image, Labels
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QPushButton

from napari_mor._napari import _metadata as md
from napari_mor._napari.fit.form import InputForm, form_field, narrow_combo
from napari_mor.defaults import MIN_BP_BASE
from napari_mor.workflows.delta import DeltaRequest

NO_LABELS = "(none)"


@dataclass(frozen=True)
class DeltaInputs(InputForm):
    """The delta computation's own setting."""

    labels_left = False  # label on its own line: fits a narrow dock

    min_bp_base: float = form_field(
        MIN_BP_BASE,
        "%ΔBP: min BP_base",
        min=0.0,
        max=10.0,
        step=0.05,
        decimals=2,
        tooltip="percent delta-BP is NaN where BP_baseline < this",
    )

    def request_fields(self) -> dict:
        return {"min_bp_base": self.min_bp_base}


def is_bp_map(layer) -> bool:
    """A 3-D BP_ND map: made by the fit dock, or read from a BP_ND map file.

    Fit-dock maps have ``metadata["kind"] == "bp_map"``
    (:func:`~napari_mor._napari._layers.bp_map_metadata`); a map read by the
    napari-mor reader has its sidecar's ``Quantity == "bp_nd"`` in its
    provenance. MR, PET, mean images and delta maps are not BP_ND maps.
    """
    if not isinstance(layer, Image) or layer.ndim != 3:
        return False
    meta = layer.metadata
    if meta.get(md.KIND) == md.KIND_BP_MAP:
        return True
    provenance = meta.get(md.PROVENANCE) or {}
    return isinstance(provenance, dict) and provenance.get("Quantity") == "bp_nd"


def condition_of(layer) -> str | None:
    """A BP_ND map's condition (``baseline``, ``challenge``, ...), or None."""
    condition = layer.metadata.get(md.CONDITION)
    if condition is None:
        provenance = layer.metadata.get(md.PROVENANCE) or {}
        condition = (
            provenance.get("Condition") if isinstance(provenance, dict) else None
        )
    return condition


def _path_of(layer) -> str | None:
    """The file a map layer was saved to or read from (None: in memory only)."""
    if layer is None:
        return None
    return layer.metadata.get(md.SAVED_PATH) or layer.metadata.get(md.SOURCE_PATH)


class DeltaInputsWidget(QGroupBox):
    """Dock section: baseline / challenge BP_ND layers, ROI set, min BP_base and
    the Compute button.

    Signals
    -------
    changed
        A map choice or the form changed.
    """

    changed = Signal()

    def __init__(self, viewer, compute, parent=None) -> None:
        super().__init__("BP_ND maps", parent)
        self.viewer = viewer
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.base_combo = narrow_combo(QComboBox())
        self.chal_combo = narrow_combo(QComboBox())
        self.labels_combo = narrow_combo(QComboBox())
        form.addRow("Baseline BP_ND", self.base_combo)
        form.addRow("Challenge BP_ND", self.chal_combo)
        form.addRow("ROI set (table)", self.labels_combo)
        self.form = DeltaInputs.create_container()
        self.widgets = DeltaInputs.widgets_of(self.form)
        self.min_bp_spin = self.widgets["min_bp_base"].native
        form.addRow(self.form.native)
        self.compute_button = QPushButton("Compute delta-BP")
        self.compute_button.clicked.connect(lambda *_: compute())
        form.addRow(self.compute_button)
        for combo in (self.base_combo, self.chal_combo):
            combo.currentIndexChanged.connect(lambda *_: self.changed.emit())
        self.form.changed.connect(lambda *_: self.changed.emit())

    def layer(self, name: str):
        """The viewer's layer called ``name`` (None if there is none)."""
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def base_layer(self):
        """The chosen baseline BP_ND layer (or None)."""
        return self.layer(self.base_combo.currentText())

    def chal_layer(self):
        """The chosen challenge BP_ND layer (or None)."""
        return self.layer(self.chal_combo.currentText())

    def labels_layer(self):
        """The chosen ROI set (or None)."""
        return self.layer(self.labels_combo.currentText())

    def _map_layers(self) -> list[Image]:
        """The viewer's BP_ND maps (:func:`is_bp_map`), not the MR or PET."""
        return [layer for layer in self.viewer.layers if is_bp_map(layer)]

    def refresh(self, event=None) -> None:
        """Refill the combos with the BP_ND maps; pick each condition's map.

        A choice is kept while its layer exists, unless it is the *other*
        condition's map and this condition's map has arrived (the fit dock
        adds the baseline map first; a dock opened before Fit maps must not
        stay on the baseline map for the challenge).
        """
        maps = self._map_layers()
        names = [layer.name for layer in maps]
        conditions = {layer.name: condition_of(layer) for layer in maps}
        by_condition = {}
        for layer in maps:  # the newest map of each condition wins
            by_condition[conditions[layer.name]] = layer.name
        chosen = []
        for combo, condition, other in (
            (self.base_combo, "baseline", "challenge"),
            (self.chal_combo, "challenge", "baseline"),
        ):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            keep = current in names and not (
                conditions.get(current) == other and condition in by_condition
            )
            if keep:
                pick = current
            elif condition in by_condition:
                pick = by_condition[condition]
            else:  # a map of no known condition, not the other box's choice
                free = [n for n in names if n not in chosen and conditions[n] != other]
                pick = free[0] if free else None
            combo.setCurrentIndex(names.index(pick) if pick else -1)
            chosen.append(pick)
            combo.blockSignals(False)
        labels = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and layer.ndim == 3
        ]
        current = self.labels_combo.currentText()
        self.labels_combo.clear()
        self.labels_combo.addItems([NO_LABELS, *labels])
        if current in labels:
            self.labels_combo.setCurrentText(current)
        elif labels:
            self.labels_combo.setCurrentText(labels[0])
        self.changed.emit()

    def set_layers(self, baseline: Image, challenge: Image, labels=None) -> None:
        """Choose the two BP_ND layers (and optionally the ROI Labels layer)."""
        self.base_combo.setCurrentText(baseline.name)
        self.chal_combo.setCurrentText(challenge.name)
        if labels is not None:
            self.labels_combo.setCurrentText(labels.name)

    def values(self) -> DeltaInputs:
        """The form's current values."""
        return DeltaInputs.from_container(self.form)

    def request(self) -> DeltaRequest:
        """The dock's request (saved map paths when known)."""
        return DeltaRequest(
            baseline_path=_path_of(self.base_layer()),
            challenge_path=_path_of(self.chal_layer()),
            out="DELTA.nii.gz",
            percent_out="PCT_DELTA.nii.gz",
            **self.values().request_fields(),
        )
