"""ROIs dock, "Sphere at MNI coordinates" section (a magicgui form).

The form is :class:`SphereInputs`, a dataclass owning the defaults, ranges and
units (MNI centre in mm, radius in mm, a preset from
:data:`~napari_mor.rois.SPHERE_PRESETS`). Choosing a preset fills the form; Add
sphere places the ball with :func:`~napari_mor.rois.add_sphere`, carried into
PET space through the MNI -> PET transform when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from magicgui.widgets import Container
from qtpy.QtWidgets import QGroupBox, QPushButton, QVBoxLayout

from napari_mor._napari._dock import notify_errors
from napari_mor._napari.rois.layers import RoiLayersSection
from napari_mor._napari.rois.space import MniSpaceSection
from napari_mor._napari.study.inputs import (
    InputContainer,
    choice,
    number,
    set_widget_values,
    text,
)
from napari_mor.rois import SPHERE_PRESETS, add_sphere
from napari_mor.rois.space import points_into_world

#: MNI coordinates as the form shows them.
_MNI_MM = {"min": -200.0, "max": 200.0, "step": 1.0, "decimals": 1, "unit": "mm"}
CUSTOM = "custom"


@dataclass(frozen=True)
class SphereInputs(InputContainer):
    """A sphere ROI at MNI coordinates.

    Parameters
    ----------
    preset : str
        ``"custom"`` or a key of :data:`~napari_mor.rois.SPHERE_PRESETS`.
    name : str
        ROI name.
    x_mm, y_mm, z_mm : float
        MNI centre, mm (-200 to 200).
    radius_mm : float
        Radius, mm (0.5 to 50).
    """

    preset: str = choice(CUSTOM, (CUSTOM, *SPHERE_PRESETS))
    name: str = text("", placeholder="ROI name")
    x_mm: float = number(0.0, **_MNI_MM, label="x", tooltip="MNI x, mm")
    y_mm: float = number(0.0, **_MNI_MM, label="y", tooltip="MNI y, mm")
    z_mm: float = number(0.0, **_MNI_MM, label="z", tooltip="MNI z, mm")
    radius_mm: float = number(6.0, min=0.5, max=50.0, unit="mm", label="radius")

    @staticmethod
    def preset_values(preset: str) -> dict | None:
        """Field values of a preset (its first centre), None for ``custom``."""
        found = SPHERE_PRESETS.get(preset)
        if found is None:
            return None
        x, y, z = (float(v) for v in found.centers_mm[0])
        return {
            "name": found.name,
            "x_mm": x,
            "y_mm": y,
            "z_mm": z,
            "radius_mm": found.radius_mm,
        }

    def centers_mm(self) -> list[list[float]]:
        """The centre; both of a bilateral preset when its first one is unchanged."""
        xyz = [self.x_mm, self.y_mm, self.z_mm]
        preset = SPHERE_PRESETS.get(self.preset)
        bilateral = preset is not None and len(preset.centers_mm) > 1
        if bilateral and np.allclose(xyz, preset.centers_mm[0]):
            return [list(c) for c in preset.centers_mm]
        return [xyz]


class SphereSection(QGroupBox):
    """The sphere form (magicgui) and its Add button.

    ``preset_combo``, ``sphere_name``, ``sphere_xyz`` (x, y, z) and
    ``sphere_radius`` are the Qt widgets of the form, for scripts and tests.
    """

    def __init__(
        self, layers: RoiLayersSection, space: MniSpaceSection, parent=None
    ) -> None:
        super().__init__("Sphere at MNI coordinates", parent)
        self._layers = layers
        self._space = space
        self.inputs = SphereInputs.make_widgets()
        w = self.inputs
        xyz = Container(
            widgets=[w["x_mm"], w["y_mm"], w["z_mm"]],
            layout="horizontal",
            labels=False,
            label="x, y, z",
        )
        xyz.margins = (0, 0, 0, 0)
        self.form = Container(
            widgets=[w["preset"], w["name"], xyz, w["radius_mm"]], labels=True
        )
        self.form.margins = (0, 0, 0, 0)
        w["preset"].changed.connect(self._on_preset)
        self.sphere_button = QPushButton("Add sphere")
        self.sphere_button.clicked.connect(self._on_add_clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.sphere_button)
        self.preset_combo = w["preset"].native
        self.sphere_name = w["name"].native
        self.sphere_xyz = [w[key].native for key in ("x_mm", "y_mm", "z_mm")]
        self.sphere_radius = w["radius_mm"].native

    def values(self) -> SphereInputs:
        """The form's values."""
        return SphereInputs.from_widgets(self.inputs)

    def _on_preset(self, name: str) -> None:
        values = SphereInputs.preset_values(name)
        if values is not None:
            set_widget_values(self.inputs, **values)

    def _on_add_clicked(self) -> None:
        inputs = self.values()
        self.add_sphere(inputs.centers_mm(), inputs.radius_mm, inputs.name)

    @notify_errors
    def add_sphere(self, center_mm, radius_mm: float, name: str) -> None:
        """Add a sphere ROI at MNI mm (carried through the MNI->PET transform)."""
        self._space.warn_if_not_mni(self._layers.labels_layer or self._layers.pet_layer)
        if self._space.mni_transform is not None:
            center_mm = points_into_world(center_mm, self._space.mni_transform)
        self._layers.write_back(
            add_sphere(self._layers.roi_set(), center_mm, radius_mm, name)
        )
