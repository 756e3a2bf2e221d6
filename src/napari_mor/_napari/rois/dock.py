"""The "ROIs" dock: draw, import atlas regions, MNI spheres, TACs and their plot.

A thin composition of section widgets over :mod:`napari_mor.rois`:

- :mod:`.layers` - PET and ROI-set pickers; the ROI set <-> Labels layer sync,
- :mod:`.space` - is the PET in MNI space; the MNI -> PET transform,
- :mod:`.table` - the ROI table, rename / delete / merge, save / load,
- :mod:`.spheres` - a sphere at MNI coordinates (magicgui form),
- :mod:`.atlas` - atlas search and import (worker thread),
- :mod:`.tacs` - reference choice, TAC extraction, plot and export.

The dock wires them (a changed ROI set refreshes the table and the reference
choices; painting recomputes the TACs) and keeps the dock's public API in one
place. No science here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtWidgets import QWidget

import napari
from napari_mor._errors import MorError
from napari_mor._napari._dock import on_layer_list_change, scrolling_sections
from napari_mor._napari.rois.atlas import AtlasSection
from napari_mor._napari.rois.layers import RoiLayersSection
from napari_mor._napari.rois.space import MniSpaceSection
from napari_mor._napari.rois.spheres import SphereSection
from napari_mor._napari.rois.table import RoiTableSection
from napari_mor._napari.rois.tacs import TacSection
from napari_mor.io.volume import LabelImage
from napari_mor.registration.transforms import Transform
from napari_mor.rois import TacTable

#: Section -> its controls the dock shows as its own attributes.
SECTION_CONTROLS = {
    "layers": ("pet_combo", "labels_combo", "new_set_button"),
    "space": ("space_label", "transform_label"),
    "roi_table": (
        "table",
        "delete_button",
        "merge_button",
        "save_button",
        "load_button",
    ),
    "spheres": (
        "preset_combo",
        "sphere_name",
        "sphere_xyz",
        "sphere_radius",
        "sphere_button",
    ),
    "atlas": (
        "atlas_combo",
        "atlas_search",
        "atlas_list",
        "atlas_threshold",
        "atlas_maxprob",
        "licence_label",
        "atlas_button",
    ),
    "tacs": (
        "reference_combo",
        "pv_check",
        "gtm_check",
        "psf_spin",
        "auto_check",
        "compute_button",
        "export_button",
        "plot",
    ),
}


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
        self.layers = RoiLayersSection(viewer)
        self.space = MniSpaceSection(viewer)
        self.roi_table = RoiTableSection(self.layers)
        self.spheres = SphereSection(self.layers, self.space)
        self.atlas = AtlasSection(self.layers, self.space)
        self.tacs = TacSection(viewer, self.layers)
        sections = (
            self.layers,
            self.space,
            self.roi_table,
            self.spheres,
            self.atlas,
            self.tacs,
        )
        scrolling_sections(self, sections).addStretch(1)
        self._expose_section_widgets()
        self.layers.pet_changed.connect(self._on_pet_changed)
        self.layers.changed.connect(self.refresh_table)
        self.layers.painted.connect(self._auto_update)
        on_layer_list_change(viewer, self.layers.refresh_choices)
        self.layers.refresh_choices()
        self.atlas.refresh_regions()

    def _expose_section_widgets(self) -> None:
        """The sections' controls as dock attributes (scripts and tests use them)."""
        for section, names in SECTION_CONTROLS.items():
            for name in names:
                setattr(self, name, getattr(getattr(self, section), name))

    # ----------------------------------------------------------- wiring
    def _on_pet_changed(self) -> None:
        self.space.show_pet_space(self.layers.pet_layer)

    def refresh_table(self) -> None:
        """Rebuild the ROI table and the reference choices from the ROI layer."""
        roi_set = None
        if self.layers.labels_layer is not None:
            try:
                roi_set = self.layers.roi_set()
            except MorError:
                roi_set = None
        self.tacs.set_reference_choices(self.roi_table.fill(roi_set))

    def _auto_update(self) -> None:
        self.refresh_table()
        if self.tacs.auto_check.isChecked() and self.pet_layer is not None:
            labels = self.labels_layer
            if labels is not None and np.any(np.asarray(labels.data)):
                self.compute_tacs()

    # ----------------------------------------------------------- layers
    @property
    def pet_layer(self) -> Image | None:
        """The chosen dynamic PET layer."""
        return self.layers.pet_layer

    @property
    def labels_layer(self) -> Labels | None:
        """The chosen ROI Labels layer."""
        return self.layers.labels_layer

    def set_pet_layer(self, layer: Image) -> None:
        """Choose the PET layer."""
        self.layers.set_pet_layer(layer)

    def set_labels_layer(self, layer: Labels) -> None:
        """Choose the ROI Labels layer."""
        self.layers.set_labels_layer(layer)

    def new_roi_set(self, name: str = "ROIs") -> Labels | None:
        """Add an empty Labels layer on the PET grid (PET affine) and select it."""
        return self.layers.new_roi_set(name)

    def roi_set(self) -> LabelImage:
        """The current ROI set (labels layer data, LUT and displayed colours)."""
        return self.layers.roi_set()

    # ------------------------------------------------------------ table
    def table_rows(self) -> list[tuple[str, int, int, float]]:
        """(name, label, voxels, volume mL) of every table row."""
        return self.roi_table.table_rows()

    def selected_labels(self) -> list[int]:
        """Label values of the selected table rows."""
        return self.roi_table.selected_labels()

    def rename(self, label: int, name: str) -> None:
        """Rename an ROI."""
        self.roi_table.rename(label, name)

    def delete(self, label: int) -> None:
        """Delete an ROI."""
        self.roi_table.delete(label)

    def merge(self, labels: list[int], name: str | None = None) -> None:
        """Merge ROIs into the first one."""
        self.roi_table.merge(labels, name)

    def delete_selected(self) -> None:
        """Delete the ROIs selected in the table."""
        self.roi_table.delete_selected()

    def merge_selected(self) -> None:
        """Merge the ROIs selected in the table."""
        self.roi_table.merge_selected()

    def save_roi_set(self, path: str | Path) -> tuple[Path, Path] | None:
        """Save the ROI set as label NIfTI + LUT TSV."""
        return self.roi_table.save_roi_set(path)

    def load_roi_set(self, path: str | Path, lut_path: str | Path | None = None):
        """Load an ROI set onto the PET grid (resampled if needed) as a new layer."""
        return self.roi_table.load_roi_set(path, lut_path)

    # ------------------------------------------------ spheres and atlases
    def add_sphere(self, center_mm, radius_mm: float, name: str) -> None:
        """Add a sphere ROI at MNI mm (carried through the MNI->PET transform)."""
        self.spheres.add_sphere(center_mm, radius_mm, name)

    def set_atlas(self, key: str) -> None:
        """Choose an atlas by key."""
        self.atlas.set_atlas(key)

    def import_atlas(self, key: str, names: list[str]) -> None:
        """Import atlas regions into the ROI set (blocking)."""
        self.atlas.import_atlas(key, names)

    def import_atlas_async(self, key: str, names: list[str]):
        """Import atlas regions in a worker thread; returns the worker (or None)."""
        return self.atlas.import_atlas_async(key, names)

    # -------------------------------------------------------- MNI space
    @property
    def mni_transform(self) -> Transform | None:
        """MNI world -> PET world, for native-space subjects (None: PET in MNI)."""
        return self.space.mni_transform

    def set_mni_transform(self, transform: Transform | str | Path | None) -> None:
        """Use an MNI -> PET-world transform (a Transform, a file, or None)."""
        self.space.set_mni_transform(transform)

    def use_registration_layers(self) -> Transform | None:
        """Chain the transforms accepted in the Registration dock (layer metadata)."""
        return self.space.use_registration_layers()

    # ------------------------------------------------------------- TACs
    @property
    def tac_table(self) -> TacTable | None:
        """The last computed TACs."""
        return self.tacs.tac_table

    def reference_name(self) -> str | None:
        """The chosen reference ROI name (None when none)."""
        return self.tacs.reference_name()

    def set_reference(self, name: str) -> None:
        """Choose the reference ROI."""
        self.tacs.set_reference(name)

    def compute_tacs(self) -> TacTable | None:
        """Extract the TACs of the ROI set from the PET and plot them."""
        return self.tacs.compute_tacs()

    def export_tacs(self, path: str | Path) -> Path | None:
        """Write the last computed TACs as TSV (computes them if needed)."""
        return self.tacs.export_tacs(path)


__all__ = ["RoiWidget"]
