"""The ONE k2' policy: one value per subject, from the baseline, shared by all."""

from __future__ import annotations

from dataclasses import dataclass

from napari_mor._errors import MorError
from napari_mor.io.volume import LabelImage
from napari_mor.workflows.fit_data import (
    FitData,
    RoiTacs,
    _map_mask,
    reference_tac,
    resolve_reference,
    roi_tacs,
)
from napari_mor.workflows.request import FitRequest


@dataclass(frozen=True)
class K2pChoice:
    """The k2' every condition of a subject shares, and where it came from.

    Attributes
    ----------
    value : float or None
        k2', 1/min (None: the model does not use it).
    source : str
        e.g. ``"given"``, ``"MRTM on 'midline_thalamus' (label 5), window
        0-45 min"``.
    """

    value: float | None
    source: str


def _model_uses_k2p(model: str) -> bool:
    from napari_mor.defaults import RELEASE_MODEL
    from napari_mor.kinetics import MODELS

    return model == RELEASE_MODEL or MODELS[model].k2p != "no"


def _window_text(window: tuple[float, float] | None) -> str:
    return "baseline scan" if window is None else f"frames {window[0]:g}-{window[1]:g}"


def k2p_window(request: FitRequest) -> tuple[float, float] | None:
    """Frames k2' is estimated on: injection to the end of the baseline window.

    The whole baseline scan for two scans (None). Early frames carry most of
    the information on k2' and precede any challenge, so a baseline window that
    starts late (e.g. 20-45 min) still estimates k2' from 0-45 min.
    """
    window = request.baseline_window
    return None if window is None else (0.0, float(window[1]))


def shared_k2p(request: FitRequest, data: FitData) -> K2pChoice:
    """The ONE k2' policy: one value per subject, from the baseline, for all conditions.

    k2' belongs to the reference region and does not change with the challenge,
    so it is fixed once, on the baseline (:func:`k2p_window`: injection to the
    end of the first window, or the whole baseline scan), and shared by every
    window and scan:

    1. a given ``k2p_per_min``;
    2. ``k2p_region``: MRTM on that region's mean TAC (Ichise 2003; biased low
       for slowly dissociating tracers, see docs/kinetics.md);
    3. automatic: the k2' that the ROI TACs share under the full reference
       tissue model (:func:`napari_mor.kinetics.k2p.k2p_from_rois`); with fewer
       than two target ROIs, the same on composite TACs of the high-binding
       voxels of the map mask
       (:func:`napari_mor.kinetics.k2p.k2p_from_high_binding_voxels`).

    Models without k2' (MRTM, SRTM, SRTM-BF, ratio) get ``value=None``.
    """
    from napari_mor import kinetics
    from napari_mor.kinetics.k2p import k2p_from_high_binding_voxels
    from napari_mor.rois import mask_mean_tac

    if not _model_uses_k2p(request.model):
        return K2pChoice(None, "not used by the model")
    if request.k2p_per_min is not None:
        return K2pChoice(float(request.k2p_per_min), "given")
    window = k2p_window(request)
    where = _window_text(window)
    ref = reference_tac(data)
    if request.k2p_region is not None:
        if data.labels is None:
            raise MorError("A k2' region needs an ROI set (labels) to find it in.")
        label = _region_label(data.labels, request.k2p_region)
        name = data.labels.name_of(label)
        tac = mask_mean_tac(data.pet, data.labels.data == label, f"k2' region {name}")
        value = kinetics.estimate_k2p(
            tac, ref, data.pet.timing, window=window, t_star_min=request.t_star_min
        )
        return K2pChoice(value, f"MRTM on {name!r} (label {label}), {where}")
    if data.labels is not None and len(data.labels.present_labels) > 2:
        return shared_k2p_of_tacs(request, roi_tacs(data))
    mask = _map_mask(request, data) & ~data.ref_mask
    value, how = k2p_from_high_binding_voxels(
        data.pet.data, mask, ref, data.pet.timing, window=window
    )
    return K2pChoice(value, how)


def shared_k2p_of_tacs(request: FitRequest, tacs: RoiTacs) -> K2pChoice:
    """The same policy on regional TACs alone (a TAC table, or the ROI TACs).

    A given k2'; ``k2p_region`` (a column name): MRTM on that TAC; automatic:
    the FRTM profile shared by every target TAC, on the baseline frames.
    """
    from napari_mor import kinetics
    from napari_mor.kinetics.k2p import k2p_from_rois

    if not _model_uses_k2p(request.model):
        return K2pChoice(None, "not used by the model")
    if request.k2p_per_min is not None:
        return K2pChoice(float(request.k2p_per_min), "given")
    window = k2p_window(request)
    if request.k2p_region is not None:
        name = str(request.k2p_region)
        if name not in tacs.names:
            raise MorError(
                f"No TAC named {name!r} for k2' (TACs: {', '.join(tacs.names)}); "
                "choose a high-binding region."
            )
        value = kinetics.estimate_k2p(
            tacs.tacs_kbq_ml[:, tacs.names.index(name)],
            tacs.ref_kbq_ml,
            tacs.timing,
            window=window,
            t_star_min=request.t_star_min,
        )
        return K2pChoice(value, f"MRTM on {name!r}, {_window_text(window)}")
    value, how = k2p_from_rois(
        tacs.tacs_kbq_ml, tacs.ref_kbq_ml, tacs.timing, tacs.names, window=window
    )
    return K2pChoice(value, how)


def _region_label(labels: LabelImage, region: int | str) -> int:
    try:
        return resolve_reference(labels, region)
    except MorError as err:
        raise MorError(
            f"k2' region {region!r}: {err} Choose a high-binding region that is in "
            "the ROI set."
        ) from None
