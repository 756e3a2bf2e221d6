"""From the Kinetic fit dock's sections to the workflow: request and fit data.

:func:`collect_request` reads the layer pickers and the two magicgui forms into
a :class:`~napari_mor.workflows.fit.FitRequest` (the forms give their own
fields, see :meth:`~napari_mor._napari.fit.form.InputForm.request_fields`);
:func:`fit_data_from_layers` converts the chosen layers for
:func:`~napari_mor.workflows.fit.prepare_fit_data` (which checks them).
"""

from __future__ import annotations

from napari_mor._errors import MorError
from napari_mor._napari import _metadata as md
from napari_mor._napari._layers import labels_from_layer, pet_from_layer
from napari_mor._napari.fit.inputs_form import ModelInputs, WindowInputs
from napari_mor._napari.fit.layers_box import LayerPickerWidget
from napari_mor.defaults import RELEASE_MODEL
from napari_mor.workflows.fit import FitData, FitRequest, prepare_fit_data


def collect_request(
    layers: LayerPickerWidget,
    model: ModelInputs,
    windows: WindowInputs,
    rois_only: bool = False,
) -> FitRequest:
    """The request of the chosen layers and form values (raises MorError).

    Parameters
    ----------
    layers : LayerPickerWidget
        PET, challenge PET, ROI set, reference ROI and map mask choices.
    model, windows : ModelInputs, WindowInputs
        The forms' values.
    rois_only : bool
        The request of the ROI fits (no map mask) instead of the maps'.
    """
    pet_layer = layers.require(layers.pet_combo, "PET")
    labels_layer = layers.require(layers.labels_combo, "ROI set (Labels)")
    ref_label = layers.ref_combo.currentData()
    if ref_label is None:
        raise MorError(
            f"No reference ROI: the ROI set {labels_layer.name!r} has no region "
            "named like 'occipital' and none is chosen; pick the reference ROI "
            "(occipital cortex) in the dock or add it in the ROIs dock."
        )
    conditions = windows.request_fields()
    if model.model == RELEASE_MODEL:  # one scan, fitted whole: no windows
        conditions = {"windows_min": (), "two_scans": False}
    challenge_path = None
    if conditions["two_scans"]:
        chal = layers.require(layers.challenge_pet_combo, "challenge PET")
        if chal.name == pet_layer.name:  # layers may be proxies: compare names
            raise MorError(
                "Baseline and challenge PET are the same layer; pick the "
                "challenge scan as 'Challenge PET'."
            )
        challenge_path = chal.metadata.get(md.SOURCE_PATH)
    fields = model.request_fields()
    if rois_only:  # ROI fits use the unfiltered region means
        fields.update(denoise="none", denoise_fwhm_mm=None)
    return FitRequest(
        **fields,
        **conditions,
        reference=int(ref_label),
        rois_only=rois_only,
        mask=None if rois_only else layers.mask_choice(),
        pet_path=pet_layer.metadata.get(md.SOURCE_PATH),
        challenge_pet_path=challenge_path,
        labels_path=labels_layer.metadata.get(md.SOURCE_PATH),
    )


def fit_data_from_layers(layers: LayerPickerWidget, request: FitRequest) -> FitData:
    """The request's inputs from the chosen layers (checked, on the PET grid)."""
    pet = pet_from_layer(layers.require(layers.pet_combo, "PET"))
    labels_layer = layers.require(layers.labels_combo, "ROI set")
    challenge = None
    if request.two_scans:
        challenge = pet_from_layer(
            layers.require(layers.challenge_pet_combo, "challenge PET")
        )
    files = {
        "pet": request.pet_path,
        "challenge_pet": request.challenge_pet_path,
        "labels": request.labels_path,
    }
    brain = layers.brain_mask()
    if brain is not None:
        files["mask"] = request.mask
    return prepare_fit_data(
        request,
        pet,
        labels=labels_from_layer(labels_layer),
        challenge=challenge,
        brain_mask=brain,
        input_files=files,
    )
