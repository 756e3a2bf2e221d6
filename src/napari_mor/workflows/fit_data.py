"""The inputs of a fit: loaded, checked, on the PET grid; the ONE reference rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import (
    DEFAULT_REFERENCE_HINT,
    TWO_SCAN_CONDITIONS,
)
from napari_mor.io.pet import DynamicPET
from napari_mor.io.timing import FrameTiming
from napari_mor.io.volume import LabelImage
from napari_mor.workflows.request import UPTAKE_FRACTION, UPTAKE_MASK, FitRequest

#: Tolerance (min) when checking that a window lies inside the scan.
_WINDOW_TOLERANCE_MIN = 1e-6


@dataclass(frozen=True)
class PvcCorrection:
    """The partial-volume correction of a fit's inputs (``docs/pvc.md``).

    ROI fits (:func:`roi_tacs`) use the GTM-corrected TACs of every region,
    the reference included, whatever the method. Maps use the scans of
    :class:`FitData`, which are the RBV or iterative-Yang images when
    ``images`` is True; their reference TAC is the mean of the corrected image
    over the reference region (:func:`reference_tac`), corrected the same way
    as the map voxels.

    Attributes
    ----------
    method : {"gtm", "rbv", "iy"}
    psf_fwhm_mm : tuple of 3 floats
    gtm : tuple of GtmResult
        One per scan, in the order (baseline, challenge).
    images : bool
        The scans of the FitData are the corrected images (maps).
    """

    method: str
    psf_fwhm_mm: tuple[float, float, float]
    gtm: tuple
    images: bool

    @property
    def provenance(self) -> dict:
        """The ``PartialVolumeCorrection`` sidecar field."""
        names = {"gtm": "GTM", "rbv": "RBV", "iy": "iterative Yang"}
        return {
            "Method": names[self.method],
            "PSFFWHMmm": list(self.psf_fwhm_mm),
            "RoiTacs": "GTM (Rousset 1998), background label 0 as a region",
            "Maps": f"{names[self.method]} image" if self.images else "none",
            "GTMConditionNumber": [round(g.condition_number, 3) for g in self.gtm],
        }


@dataclass(frozen=True)
class FitData:
    """The loaded, checked inputs of a fit (all on the PET grid).

    Attributes
    ----------
    pet : DynamicPET
        The (baseline) scan.
    challenge : DynamicPET or None
        The challenge scan of a two-scan fit.
    labels : LabelImage or None
        ROI set on the PET grid.
    ref_mask : ndarray of bool, shape (x, y, z)
        Reference-region voxels.
    ref_label : int or None
        Reference label value (None for a mask file).
    reference_description : str
        How the reference was defined, e.g. ``"label 8 (occipital_ref)"``.
    brain_mask : ndarray of bool or None
        Voxels for maps (None: decided by the request's ``mask``).
    input_files : dict of str to str
        Source files by role (``pet``, ``labels``, ...), for provenance.
    pvc : PvcCorrection or None
        Partial-volume correction applied (:func:`prepare_fit_data`); with
        ``rbv``/``iy`` for maps, ``pet`` and ``challenge`` are the corrected images.
    """

    pet: DynamicPET
    challenge: DynamicPET | None
    labels: LabelImage | None
    ref_mask: np.ndarray
    ref_label: int | None
    reference_description: str
    brain_mask: np.ndarray | None = None
    input_files: dict = field(default_factory=dict)
    pvc: PvcCorrection | None = None

    def scans(self) -> dict[str, DynamicPET]:
        """The scan each condition of a two-scan fit uses."""
        return dict(zip(TWO_SCAN_CONDITIONS, (self.pet, self.challenge), strict=True))


def resolve_reference(labels: LabelImage, reference: int | str | None) -> int:
    """The label value of the reference region: the ONE rule.

    Parameters
    ----------
    labels : LabelImage
        ROI set (its LUT names the regions).
    reference : int, str or None
        A label value; a region name (exact, case-insensitive) or a text the
        name contains; None for the region named like "occipital".

    Returns
    -------
    label : int
        Present in ``labels``.
    """
    from napari_mor.rois import find_label

    present = {int(v) for v in labels.present_labels}
    if isinstance(reference, str) and reference.strip().isdigit():
        reference = int(reference)  # "8" is label 8, as on the command line
    if isinstance(reference, int | np.integer) and not isinstance(reference, bool):
        label = int(reference)
    else:
        text = DEFAULT_REFERENCE_HINT if reference is None else str(reference)
        exact = [k for k, v in labels.lut.items() if str(v).lower() == text.lower()]
        label = exact[0] if exact else find_label(labels.lut, text)
        if label is None:
            names = ", ".join(labels.name_of(v) for v in sorted(present)) or "none"
            raise MorError(
                f"No region named like {text!r} in the ROI set (regions: {names}); "
                "choose the reference region (occipital cortex) by name or label."
            )
    if label not in present:
        raise MorError(
            f"The reference label {label} ({labels.name_of(label)}) has no voxels on "
            "the PET grid; pick another reference ROI or draw it."
        )
    return int(label)


def _check_same_scan_grid(base: DynamicPET, chal: DynamicPET) -> None:
    from napari_mor.io.grid import same_grid

    if base.data.shape != chal.data.shape or not same_grid(
        base.spatial_shape, base.affine, chal.spatial_shape, chal.affine
    ):
        raise MorError(
            f"Baseline PET {base.data.shape} and challenge PET {chal.data.shape} are "
            "not on the same grid with the same frame count; coregister / reframe "
            "the challenge scan onto the baseline first."
        )


def _check_windows_in_scan(windows: Sequence[tuple[float, float]], timing) -> None:
    scan_end = float(timing.frame_end_min[-1])
    for start, end in windows:
        if end > scan_end + _WINDOW_TOLERANCE_MIN:
            raise MorError(
                f"Window {start:g}-{end:g} min lies outside the scan (0-{scan_end:g} "
                "min); choose limits within the scan."
            )


def _on_pet_grid(mask: np.ndarray, pet: DynamicPET, what: str) -> np.ndarray:
    mask = np.asarray(mask) > 0
    if mask.shape != pet.spatial_shape:
        raise MorError(
            f"{what} has shape {mask.shape} but the PET volume is {pet.spatial_shape}; "
            "use one on the PET grid."
        )
    return mask


def prepare_fit_data(
    request: FitRequest,
    pet: DynamicPET,
    *,
    labels: LabelImage | None = None,
    ref_mask: np.ndarray | None = None,
    ref_mask_name: str | None = None,
    challenge: DynamicPET | None = None,
    brain_mask: np.ndarray | None = None,
    input_files: Mapping[str, str | Path] | None = None,
    on_empty: str = "raise",
) -> FitData:
    """Check the inputs of a request and put them on the PET grid.

    Parameters
    ----------
    request : FitRequest
    pet : DynamicPET
        The (baseline) scan, decay-corrected.
    labels : LabelImage, optional
        ROI set on any grid (resampled nearest-neighbour onto the PET grid).
    ref_mask : ndarray of bool, shape (x, y, z), optional
        Reference mask on the PET grid (instead of a reference label).
    ref_mask_name : str, optional
        How to name the mask in provenance.
    challenge : DynamicPET, optional
        Challenge scan (two-scan requests), same grid and frames as ``pet``.
    brain_mask : ndarray, optional
        Voxels for maps, on the PET grid.
    input_files : mapping of str to path, optional
        Source files by role, for provenance.
    on_empty : {"raise", "drop"}
        Regions that vanish when resampling the labels.

    Returns
    -------
    FitData
    """
    from napari_mor.rois import labels_on_grid

    for scan in (pet, challenge):
        if scan is not None:
            scan.require_decay_corrected()
    if request.two_scans:
        if challenge is None:
            raise MorError(
                "A two-scan fit needs the challenge PET; give it (--challenge-pet, "
                "or pick the challenge layer)."
            )
        _check_same_scan_grid(pet, challenge)
    elif challenge is not None:
        raise MorError(
            "A challenge scan was given but the request is not a two-scan fit; "
            "choose two scans or drop the challenge PET."
        )
    _check_windows_in_scan(request.windows_min, pet.timing)
    if labels is not None:
        labels = labels_on_grid(
            labels, pet.spatial_shape, pet.affine, on_empty=on_empty
        )
    if ref_mask is not None:
        ref = _on_pet_grid(ref_mask, pet, "The reference mask")
        ref_label, description = None, f"mask {ref_mask_name or 'reference mask'}"
    elif labels is not None:
        ref_label = resolve_reference(labels, request.reference)
        ref = labels.data == ref_label
        description = f"label {ref_label} ({labels.name_of(ref_label)})"
    else:
        raise MorError(
            "No reference region: give an ROI set with the reference (occipital "
            "cortex) or a reference mask."
        )
    if request.rois_only and labels is None:
        raise MorError("ROI fits need an ROI set (labels); give --labels.")
    if brain_mask is not None:
        brain_mask = _on_pet_grid(brain_mask, pet, "The brain mask")
    pvc = None
    if request.pvc != "none":
        pet, challenge, pvc = _partial_volume_step(request, pet, challenge, labels)
    return FitData(
        pet=pet,
        challenge=challenge,
        labels=labels,
        ref_mask=ref,
        ref_label=ref_label,
        reference_description=description,
        brain_mask=brain_mask,
        input_files={k: str(v) for k, v in (input_files or {}).items() if v},
        pvc=pvc,
    )


def _partial_volume_step(request: FitRequest, pet, challenge, labels):
    """The PVC step: GTM TACs of every scan; RBV/iY images for map requests."""
    from napari_mor import pvc

    if labels is None:
        raise MorError(
            "Partial-volume correction needs the ROI set (--labels) covering the "
            "reference and every region; give --labels."
        )
    scans = [scan for scan in (pet, challenge) if scan is not None]
    psf = request.psf_fwhm_mm
    gtm = tuple(pvc.gtm_tacs(scan, labels, psf) for scan in scans)
    images = request.pvc in ("rbv", "iy") and not request.rois_only
    if images:
        correct = pvc.rbv_image if request.pvc == "rbv" else pvc.iterative_yang
        scans = [correct(scan, labels, psf) for scan in scans]
    correction = PvcCorrection(
        method=request.pvc,
        psf_fwhm_mm=gtm[0].psf_fwhm_mm,
        gtm=gtm,
        images=images,
    )
    return scans[0], (scans[1] if len(scans) > 1 else None), correction


def _gtm_of(data: FitData, pet: DynamicPET):
    """The GTM result of one of the fit's scans."""
    for scan, result in zip((data.pet, data.challenge), data.pvc.gtm, strict=False):
        if pet is scan:
            return result
    raise MorError(
        "Partial-volume-corrected TACs exist only for the scans of the fit; pass "
        "data.pet or data.challenge."
    )


def load_fit_data(request: FitRequest) -> FitData:
    """Read the files a request names and prepare them (:func:`prepare_fit_data`)."""
    from napari_mor.io import load_labels, load_pet, load_volume

    if request.pet_path is None:
        raise MorError("No PET file given; pass the 4D PET NIfTI.")
    if request.labels_path is None and request.ref_mask_path is None:
        raise MorError(
            "Give --labels LABELS.nii.gz (with the reference region) or --ref-mask."
        )
    if request.ref_mask_path and (request.lut_path or request.reference is not None):
        raise MorError(
            "--ref-label and --lut go with --labels; with --ref-mask the mask itself "
            "is the reference. Drop them or use --labels."
        )

    def pet_file(path):
        return load_pet(path, frames_tsv=request.frames_path, units=request.units)

    pet = pet_file(request.pet_path)
    challenge = pet_file(request.challenge_pet_path) if request.two_scans else None
    labels = (
        load_labels(request.labels_path, request.lut_path)
        if request.labels_path
        else None
    )
    ref_mask = (
        load_volume(request.ref_mask_path).data > 0 if request.ref_mask_path else None
    )
    brain = None
    if request.mask not in (None, UPTAKE_MASK):
        brain = load_volume(request.mask).data > 0
    files = {
        "pet": request.pet_path,
        "challenge_pet": request.challenge_pet_path if request.two_scans else None,
        "frames": request.frames_path,
        "labels": request.labels_path,
        "lut": request.lut_path,
        "ref_mask": request.ref_mask_path,
        "mask": request.mask if brain is not None else None,
    }
    return prepare_fit_data(
        request,
        pet,
        labels=labels,
        ref_mask=ref_mask,
        ref_mask_name=Path(request.ref_mask_path).name
        if request.ref_mask_path
        else None,
        challenge=challenge,
        brain_mask=brain,
        input_files=files,
    )


# --------------------------------------------------------------- ROI TACs
@dataclass(frozen=True)
class RoiTacs:
    """TACs of the target ROIs and the reference of one scan.

    Attributes
    ----------
    names : list of str
    labels : ndarray of int, shape (n_rois,)
    tacs_kbq_ml : ndarray, shape (n_frames, n_rois)
    ref_kbq_ml : ndarray, shape (n_frames,)
    n_voxels : ndarray of int, shape (n_rois,)
    timing : FrameTiming
    """

    names: list[str]
    labels: np.ndarray
    tacs_kbq_ml: np.ndarray
    ref_kbq_ml: np.ndarray
    n_voxels: np.ndarray
    timing: FrameTiming


def reference_tac(data: FitData, pet: DynamicPET | None = None) -> np.ndarray:
    """Mean reference TAC of a scan (non-finite voxels left out), kBq/mL.

    With partial-volume correction: the GTM value of the reference region when
    the scans are not corrected images (``gtm``, or ROI-only requests), else
    the mean of the corrected image over the reference.
    """
    from napari_mor.rois import mask_mean_tac

    if data.pvc is not None and not data.pvc.images:
        result = _gtm_of(data, data.pet if pet is None else pet)
        column = list(result.table.labels).index(data.ref_label)
        return result.table.mean_kbq_ml[:, column]
    return mask_mean_tac(
        data.pet if pet is None else pet,
        data.ref_mask,
        f"The reference region {data.reference_description}",
    )


def roi_tacs(data: FitData, pet: DynamicPET | None = None) -> RoiTacs:
    """Mean TACs of every labelled ROI except the reference, and the reference TAC.

    Parameters
    ----------
    data : FitData
        With an ROI set.
    pet : DynamicPET, optional
        The scan (default ``data.pet``; the challenge scan of a two-scan fit).
    """
    from napari_mor.rois import extract_tacs

    pet = data.pet if pet is None else pet
    if data.labels is None:
        raise MorError("ROI fits need an ROI set (labels).")
    if data.pvc is not None:
        table = _gtm_of(data, pet).table  # GTM TACs with every PVC method
    else:
        table = extract_tacs(pet, data.labels)
    present = [int(v) for v in table.labels]
    keep = [i for i, v in enumerate(present) if v != data.ref_label]
    if not keep:
        raise MorError(
            "The ROI set has no regions besides the reference; add target ROIs."
        )
    return RoiTacs(
        names=[table.names[i] for i in keep],
        labels=np.asarray([present[i] for i in keep], dtype=np.int64),
        tacs_kbq_ml=np.ascontiguousarray(table.mean_kbq_ml[:, keep]),
        ref_kbq_ml=(
            table.mean_kbq_ml[:, present.index(data.ref_label)]
            if data.ref_label in present
            else reference_tac(data, pet)
        ),
        n_voxels=table.n_voxels[keep],
        timing=table.timing,
    )


# ------------------------------------------------------------------- k2'
def _map_mask(request: FitRequest, data: FitData) -> np.ndarray:
    """Voxels fitted by maps: a brain mask, the uptake mask or the labelled voxels."""
    if data.brain_mask is not None:
        return data.brain_mask
    if request.mask == UPTAKE_MASK:
        return uptake_mask(data.pet, UPTAKE_FRACTION)
    if request.mask is not None:
        raise MorError(
            f"The brain mask {request.mask!r} was not loaded; give a mask image on "
            "the PET grid."
        )
    if data.labels is None:
        raise MorError(
            "A map needs a brain mask: pass --mask BRAIN.nii.gz (or --labels, whose "
            "labelled voxels are then used)."
        )
    return data.labels.data > 0


def uptake_mask(pet: DynamicPET, fraction: float = UPTAKE_FRACTION) -> np.ndarray:
    """Voxels whose mean activity is at least ``fraction`` of its 99th percentile.

    A quick head/brain mask for voxelwise maps when no brain mask is loaded.

    Parameters
    ----------
    pet : DynamicPET
    fraction : float
        Threshold as a fraction (0-1) of the 99th percentile of the
        duration-weighted mean image.

    Returns
    -------
    mask : ndarray of bool, shape (x, y, z)
    """
    if not 0 < fraction < 1:
        raise MorError(f"Mask fraction must be between 0 and 1; got {fraction!r}.")
    weights = pet.timing.frame_duration_s / pet.timing.frame_duration_s.sum()
    mean = np.tensordot(weights, np.nan_to_num(pet.data.astype(np.float64)), axes=1)
    return mean >= fraction * np.percentile(mean, 99)


def mask_description(request: FitRequest, data: FitData) -> str:
    """How the map voxels were chosen (for provenance)."""
    if data.brain_mask is not None:
        return f"mask {Path(request.mask).name}" if request.mask else "brain mask"
    if request.mask == UPTAKE_MASK:
        return f"PET uptake >= {UPTAKE_FRACTION:.0%} of p99"
    return "labelled voxels"


# ------------------------------------------------------------------ ROI fits
