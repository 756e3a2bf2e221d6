"""ROIs dock, "MNI space" section: is the PET in MNI space, and the MNI -> PET line.

Atlas regions and spheres are defined by MNI coordinates. This section says
whether the chosen PET looks like MNI space (the core's
:func:`~napari_mor.rois.mni_space_warning`), holds the MNI -> PET-world
transform the other sections carry ROIs through (from a file, or chained from
the transforms the Registration dock left in layer metadata) and shows it.
"""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QFileDialog, QFormLayout, QGroupBox, QLabel

from napari_mor._errors import MorError
from napari_mor._napari import _metadata as meta
from napari_mor._napari._dock import button_row, notify_errors
from napari_mor._napari._layers import spatial_affine_of
from napari_mor.registration.transforms import Transform, load_transform
from napari_mor.rois import mni_space_warning
from napari_mor.rois.space import MNI_SPACES, mni_to_space

NATIVE_SPACE_NOTE = (
    "Atlas regions and spheres are placed by MNI coordinates: they apply directly "
    "to PET in MNI space. For native-space PET, run registration first (Registration "
    "dock: MR->MNI and PET->MR, Accept both) or load an MNI->PET transform file; the "
    "ROIs are then carried into PET space through it."
)

NO_TRANSFORM = "none: PET taken to be in MNI space"


class MniSpaceSection(QGroupBox):
    """The PET's space note and the MNI -> PET transform (load / clear).

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Searched for the Registration dock's ``transform_to_<SPACE>`` metadata.

    Attributes
    ----------
    mni_transform : Transform or None
        MNI world -> PET world, for native-space subjects (None: PET in MNI).
    """

    def __init__(self, viewer, parent=None) -> None:
        super().__init__("MNI space", parent)
        self.viewer = viewer
        self.mni_transform: Transform | None = None
        form = QFormLayout(self)
        self.space_label = QLabel(NATIVE_SPACE_NOTE)
        self.space_label.setWordWrap(True)
        self.transform_label = QLabel(NO_TRANSFORM)
        self.transform_label.setWordWrap(True)
        row, (self.load_transform_button, self.clear_transform_button) = button_row(
            ("Load MNI->PET transform...", self._on_load_transform_clicked),
            ("Clear", lambda: self.set_mni_transform(None)),
        )
        form.addRow(self.space_label)
        form.addRow("MNI -> PET", self.transform_label)
        form.addRow(row)

    def show_pet_space(self, pet_layer) -> None:
        """Warn (in orange) when the PET does not look like MNI space."""
        if pet_layer is None:
            self.space_label.setText(NATIVE_SPACE_NOTE)
            self.space_label.setStyleSheet("")
            return
        warning = mni_space_warning(
            pet_layer.data.shape[1:], spatial_affine_of(pet_layer)
        )
        self.space_label.setText(warning or NATIVE_SPACE_NOTE)
        self.space_label.setStyleSheet("color: #ffa500;" if warning else "")

    @notify_errors
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
            if key.startswith(meta.TRANSFORM_TO_PREFIX) and isinstance(value, dict)
        ]
        chain = mni_to_space(transforms, "PET")
        if chain is not None:
            self.mni_transform = chain
            self._show_transform()
        return chain

    def warn_if_not_mni(self, layer) -> None:
        """Before placing MNI ROIs: find a transform, else warn if not MNI space.

        ``layer`` is the ROI set (or the PET when there is none yet).
        """
        if self.mni_transform is None:
            self.use_registration_layers()
        if layer is None or self.mni_transform is not None:
            return
        warning = mni_space_warning(layer.data.shape[-3:], spatial_affine_of(layer))
        if warning:
            show_warning(warning)

    def _show_transform(self) -> None:
        transform = self.mni_transform
        if transform is None:
            self.transform_label.setText(NO_TRANSFORM)
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
