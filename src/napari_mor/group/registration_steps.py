"""Registration steps of the batch: one scan, or a baseline/challenge pair, to MNI."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_mor._errors import MorError
from napari_mor.group.design import SubjectInputs  # noqa: F401  (annotations)


def _identity_registration(pet, subject):
    """Data already in MNI space (e.g. the phantom): nothing to do."""
    return pet


def _native_to_mni_registration(pet, subject, with_transform: bool = False):
    """Native-space subject: motion correction, PET->T1, T1->MNI, PET onto MNI.

    Frames are realigned (:func:`napari_mor.registration.correct_motion`), the
    mean PET is coregistered rigidly to the subject's T1w, the T1w is normalised
    (affine) to nilearn's MNI152 template, and every frame is resampled once,
    through the composed MNI -> PET transform, onto the 2 mm template grid.
    """
    from dataclasses import replace

    from napari_mor.io import load_volume
    from napari_mor.registration import (
        compose,
        coregister_pet_to_mr,
        correct_motion,
        normalize_to_mni,
        resample_map,
    )
    from napari_mor.rois import load_mni_template

    if subject.t1w is None:
        raise MorError(
            f"{subject.subject}: MNI registration needs a T1w image "
            "(sub-*/anat/*_T1w.nii.gz); add it or use --registration identity."
        )
    mr = load_volume(subject.t1w)
    corrected = correct_motion(pet).corrected
    mr_to_pet = coregister_pet_to_mr(corrected, mr).transform
    mni_to_mr = normalize_to_mni(mr).transform
    template = load_mni_template(2)
    mni_to_pet = compose(mni_to_mr, mr_to_pet)
    data = resample_map(
        corrected.data,
        corrected.affine,
        mni_to_pet,
        template.data.shape,
        template.affine,
    )
    registered = replace(
        corrected,
        data=data.astype(np.float32, copy=False),
        affine=template.affine,
        nonfinite_mask=None,
    )
    if not with_transform:
        return registered
    from napari_mor.registration.coreg import mean_pet_image

    return registered, _generic(mni_to_pet), mean_pet_image(corrected)


def _check_scan_pair(base, chal, subject) -> None:
    """Two scans of one subject must have the same frames (count and timing)."""
    base_ses, chal_ses = subject.sessions or ("baseline", "challenge")
    where = (
        f"{subject.subject}: the baseline scan (ses-{base_ses}, {subject.pet.name}) "
        f"has {base.n_frames} frames, the challenge scan (ses-{chal_ses}, "
        f"{subject.challenge_pet.name}) {chal.n_frames}"
    )
    if base.n_frames != chal.n_frames:
        raise MorError(
            f"{where}; both scans need the same frame schedule. Reframe one of "
            "them or leave the subject out."
        )
    if not np.allclose(base.timing.frame_start_s, chal.timing.frame_start_s) or not (
        np.allclose(base.timing.frame_duration_s, chal.timing.frame_duration_s)
    ):
        raise MorError(
            f"{where} with different frame times; both scans need the same frame "
            "schedule. Reframe one of them or leave the subject out."
        )


def _identity_pair(base, chal, subject):
    """Two scans already on one (MNI) grid: nothing to do, else a clear error."""
    from napari_mor.io.grid import same_grid

    if not same_grid(base.spatial_shape, base.affine, chal.spatial_shape, chal.affine):
        raise MorError(
            f"{subject.subject}: the challenge scan {subject.challenge_pet.name} "
            f"(grid {chal.spatial_shape}) is not on the baseline scan's grid "
            f"{base.spatial_shape} (or has another affine); use --registration mni "
            "(aligns the challenge scan to the baseline scan and both to MNI) or "
            "resample the scans onto one grid first."
        )
    return base, chal


def _native_to_mni_pair(base, chal, subject):
    """Challenge scan -> baseline scan (rigid, MI), baseline -> T1w -> MNI.

    Both motion-corrected scans are resampled once onto the 2 mm template grid;
    the challenge scan through MNI -> baseline PET -> challenge PET.
    """
    from dataclasses import replace

    from napari_mor.registration import (
        compose,
        coregister_pet_to_mr,
        correct_motion,
        resample_map,
    )

    base_mni, mni_to_base, base_mean = _native_to_mni_registration(base, subject, True)
    corrected = correct_motion(chal).corrected
    base_to_chal = coregister_pet_to_mr(corrected, base_mean).transform
    template_shape = base_mni.spatial_shape
    data = resample_map(
        corrected.data,
        corrected.affine,
        compose(mni_to_base, _generic(base_to_chal)),
        template_shape,
        base_mni.affine,
    )
    chal_mni = replace(
        corrected,
        data=data.astype(np.float32, copy=False),
        affine=base_mni.affine,
        nonfinite_mask=None,
    )
    return base_mni, chal_mni


def _generic(transform):
    """The same matrix with generic space names (chains with any transform)."""
    from dataclasses import replace

    return replace(transform, fixed_space="fixed", moving_space="moving")


#: Two-scan registration by name: ``f(baseline, challenge, subject) ->
#: (baseline, challenge)`` on one (MNI) grid.
PAIR_REGISTRATIONS: dict[str, Callable] = {
    "identity": _identity_pair,
    "mni": _native_to_mni_pair,
}


#: Registration steps by name: ``f(pet: DynamicPET, subject: SubjectInputs) ->
#: DynamicPET`` on the MNI grid. ``identity`` for data already in MNI space (the
#: phantom), ``mni`` for native-space subjects with a T1w.
REGISTRATIONS: dict[str, Callable] = {
    "identity": _identity_registration,
    "mni": _native_to_mni_registration,
}
