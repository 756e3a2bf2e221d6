"""Study dock quick looks: the mean image over a time range, the clicked voxel's TAC.

Both come from the core: :func:`napari_mor.rois.summed_image` (duration-weighted
mean of the frames in the range) and :func:`napari_mor.rois.voxel_tac` with the
occipital reference TAC (:func:`napari_mor.rois.mask_mean_tac`) when a label
layer on the PET grid has one. The mean image's range is a magicgui form over
:class:`~napari_mor._napari.study.inputs.MeanImageInputs`.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import Container, Label
from napari.layers import Labels
from qtpy.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QPushButton, QVBoxLayout

from napari_mor._errors import MorError
from napari_mor._napari import _metadata as meta
from napari_mor._napari._dock import notify_errors
from napari_mor._napari._layers import pet_from_layer, spatial_affine_of
from napari_mor._napari.study.files import FilesSection
from napari_mor._napari.study.inputs import MeanImageInputs, set_widget_values
from napari_mor._napari.study.plots import VoxelTacPlotDock
from napari_mor.defaults import DEFAULT_REFERENCE_HINT
from napari_mor.io.grid import same_grid
from napari_mor.rois import find_label, mask_mean_tac, summed_image, voxel_index
from napari_mor.rois import voxel_tac as core_voxel_tac


class MeanImageSection(QGroupBox):
    """Time range (minutes) and "Add mean image"."""

    def __init__(self, files: FilesSection, parent=None) -> None:
        super().__init__("Mean image", parent)
        self._files = files
        self.inputs = MeanImageInputs.make_widgets()
        self.form = Container(
            widgets=[
                self.inputs["start_min"],
                Label(value="to"),
                self.inputs["end_min"],
                Label(value="min"),
            ],
            layout="horizontal",
            labels=False,
        )
        self.form.margins = (0, 0, 0, 0)
        self.mean_button = QPushButton("Add mean image")
        self.mean_button.clicked.connect(lambda: self._on_add_clicked())
        hbox = QHBoxLayout(self)
        hbox.addWidget(self.form.native)
        hbox.addWidget(self.mean_button)
        self.mean_start_spin = self.inputs["start_min"].native
        self.mean_end_spin = self.inputs["end_min"].native

    def window_min(self) -> tuple[float, float]:
        """The range in the form, minutes."""
        return MeanImageInputs.from_widgets(self.inputs).as_tuple()

    def set_window_min(self, start_min: float, end_min: float) -> None:
        """Show a range in the form, minutes."""
        set_widget_values(self.inputs, start_min=start_min, end_min=end_min)

    def add_mean_image(
        self, start_min: float | None = None, end_min: float | None = None
    ):
        """Add the duration-weighted mean PET over a time range as a new layer."""
        layer = self._files.require_pet()
        shown_start, shown_end = self.window_min()
        start = shown_start if start_min is None else float(start_min)
        end = shown_end if end_min is None else float(end_min)
        self.set_window_min(start, end)
        timing = self._files.timing()
        mean = summed_image(np.asarray(layer.data), timing, start, end)
        used = timing.frames_in_window(start, end)
        return self._files.viewer.add_image(
            mean,
            name=f"{layer.name} mean {start:g}-{end:g} min",
            affine=spatial_affine_of(layer),
            colormap="inferno",
            blending="additive",
            metadata={
                meta.KIND: meta.KIND_MEAN_IMAGE,
                meta.UNITS: layer.metadata.get(meta.UNITS, "kBq/mL"),
                meta.MEAN_WINDOW_MIN: [start, end],
                meta.FRAMES_USED: np.flatnonzero(used).tolist(),
                meta.SOURCE_LAYER: layer.name,
            },
        )

    @notify_errors
    def _on_add_clicked(self) -> None:
        self.add_mean_image()


class VoxelTacSection(QGroupBox):
    """ "Show the TAC of the clicked voxel" and its plot."""

    def __init__(self, files: FilesSection, parent=None) -> None:
        super().__init__("Voxel TAC", parent)
        self._files = files
        self.viewer = files.viewer
        self._callback_connected = False
        vbox = QVBoxLayout(self)
        self.tac_checkbox = QCheckBox("Show the TAC of the clicked voxel")
        self.tac_checkbox.toggled.connect(self._on_tac_toggled)
        vbox.addWidget(self.tac_checkbox)
        self.tac_plot = VoxelTacPlotDock(self.viewer, self)
        vbox.addWidget(self.tac_plot)
        callbacks, on_press = self.viewer.mouse_drag_callbacks, self._on_mouse_press
        self.destroyed.connect(
            lambda *_: callbacks.remove(on_press) if on_press in callbacks else None
        )

    def _on_tac_toggled(self, checked: bool) -> None:
        callbacks = self.viewer.mouse_drag_callbacks
        if checked and not self._callback_connected:
            callbacks.append(self._on_mouse_press)
            self._callback_connected = True
        elif not checked and self._callback_connected:
            if self._on_mouse_press in callbacks:
                callbacks.remove(self._on_mouse_press)
            self._callback_connected = False

    @notify_errors
    def _on_mouse_press(self, viewer, event) -> None:
        """Mouse callback: plot the TAC under a click (not while dragging)."""
        if event.type != "mouse_press":
            return
        self.show_tac_at(event.position)

    def show_tac_at(self, world_position) -> np.ndarray:
        """Plot the TAC of the PET voxel under a world position.

        Parameters
        ----------
        world_position : sequence of float
            Viewer world coordinates; the last three are x, y, z in mm (a
            leading time coordinate, as in ``event.position`` with a 4D PET,
            is ignored).

        Returns
        -------
        tac : ndarray, shape (n_frames,)
            The voxel's activity, kBq/mL.
        """
        layer = self._files.require_pet()
        position = np.asarray(world_position, dtype=np.float64)
        if position.size < 3:
            raise MorError(
                f"Click position {tuple(position)} has fewer than 3 coordinates; "
                "use a 3D (x, y, z) world position."
            )
        world_mm = position[-3:]
        affine = spatial_affine_of(layer)
        data = np.asarray(layer.data)
        tac = core_voxel_tac(data, affine, world_mm)
        voxel = voxel_index(world_mm, affine, data.shape)
        reference, reference_name = self._reference_tac(layer)
        self.tac_plot.set_curves(
            np.asarray(layer.metadata[meta.FRAME_MID_MIN]),
            tac,
            f"voxel {voxel}",
            reference,
            reference_name,
        )
        return tac

    def _reference_tac(self, pet_layer) -> tuple[np.ndarray | None, str]:
        """Mean TAC of an 'occipital' label on the PET grid, if a layer has one.

        The mean leaves out non-finite PET voxels, as every regional TAC does
        (:func:`napari_mor.rois.mask_mean_tac`).
        """
        pet_affine = spatial_affine_of(pet_layer)
        for layer in self.viewer.layers:
            if not isinstance(layer, Labels) or layer.data.ndim != 3:
                continue
            lut = layer.metadata.get(meta.LUT) or {}
            label = find_label(lut, DEFAULT_REFERENCE_HINT)
            if label is None or not same_grid(
                layer.data.shape,
                spatial_affine_of(layer),
                pet_layer.data.shape,
                pet_affine,
            ):
                continue
            name = str(lut.get(label, lut.get(str(label))))
            tac = mask_mean_tac(
                pet_from_layer(pet_layer), np.asarray(layer.data) == label, name
            )
            return tac, f"{name} (reference)"
        return None, ""
