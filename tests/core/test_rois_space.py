"""MNI-defined ROIs carried into a native-space PET through registration transforms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_mor import MorError
from napari_mor.registration import Transform
from napari_mor.rois import add_sphere, empty_roi_set, resample_labels
from napari_mor.rois.space import (
    labels_into_world,
    mni_to_space,
    points_into_world,
    transform_chain,
)


def _rigid(angles_deg, shift_mm, fixed, moving) -> Transform:
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    matrix[:3, 3] = shift_mm
    return Transform(matrix, fixed, moving, "rigid")


MNI_TO_MR = _rigid((4, -3, 8), (5.0, -7.0, 12.0), "MNI152", "MR")
MR_TO_PET = _rigid((-6, 2, 1), (-3.0, 4.0, 2.0), "MR", "PET")


def test_chain_composes_normalization_and_coregistration():
    chain = transform_chain([MR_TO_PET, MNI_TO_MR], "MNI152", "PET")
    point = np.array([10.0, -20.0, 30.0])
    np.testing.assert_allclose(
        chain.apply(point), MR_TO_PET.apply(MNI_TO_MR.apply(point))
    )
    assert (chain.fixed_space, chain.moving_space) == ("MNI152", "PET")
    back = transform_chain([MR_TO_PET, MNI_TO_MR], "PET", "MNI152")
    np.testing.assert_allclose(back.apply(chain.apply(point)), point, atol=1e-9)
    assert transform_chain([MR_TO_PET], "MNI152", "PET") is None
    assert mni_to_space([MNI_TO_MR, MR_TO_PET], "PET") is not None


def test_atlas_labels_land_on_the_native_grid(noise_free_study):
    """A subject whose PET world is the MNI world moved rigidly: labels follow."""
    study = noise_free_study
    mni_to_pet = transform_chain([MNI_TO_MR, MR_TO_PET], "MNI152", "PET")
    native_affine = mni_to_pet.matrix @ study.pet.affine  # same voxels, moved world
    moved = resample_labels(
        labels_into_world(study.labels, mni_to_pet),
        study.labels.data.shape,
        native_affine,
    )
    np.testing.assert_array_equal(moved.data, study.labels.data)
    # Without the transform the regions miss: the subject is not in MNI space.
    unmoved = resample_labels(
        study.labels, study.labels.data.shape, native_affine, on_empty="drop"
    )
    assert (unmoved.data == study.labels.data).mean() < 0.999
    pag = study.labels.data == 7
    assert (unmoved.data[pag] == 7).mean() < 0.5


def test_sphere_centres_follow_the_transform(noise_free_study):
    study = noise_free_study
    mni_to_pet = transform_chain([MNI_TO_MR, MR_TO_PET], "MNI152", "PET")
    native_affine = mni_to_pet.matrix @ study.pet.affine
    roi_set = empty_roi_set(study.labels.data.shape, native_affine)
    centre = points_into_world((0.0, -30.0, -10.0), mni_to_pet)
    with_pag = add_sphere(roi_set, centre, 4.5, "PAG")
    np.testing.assert_array_equal(with_pag.data > 0, study.labels.data == 7)
    with pytest.raises(MorError, match="3 coordinates"):
        points_into_world((1.0, 2.0), mni_to_pet)
