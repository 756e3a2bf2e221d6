"""Study quick looks in napari_mor.rois: mean image, voxel TAC, reference TAC."""

from __future__ import annotations

import numpy as np
import pytest
from _study_helpers import uneven_timing

from napari_mor import MorError
from napari_mor.io import load_pet
from napari_mor.rois import (
    find_label,
    mask_mean_tac,
    summed_image,
    voxel_index,
    voxel_tac,
)


def test_summed_image_equals_hand_computation():
    rng = np.random.default_rng(3)
    data = rng.random((5, 3, 4, 2)).astype(np.float32)
    timing = uneven_timing()  # mids 0.5, 2, 5.5, 47.5, 55 min
    mean = summed_image(data, timing, 40.0, 90.0)
    hand = (data[3] * 300.0 + data[4] * 600.0) / 900.0
    assert mean.dtype == np.float32 and mean.shape == (3, 4, 2)
    np.testing.assert_allclose(mean, hand, rtol=1e-6)
    # a window that excludes frames: only frame 2 (mid 5.5) in 4-6 min
    np.testing.assert_allclose(summed_image(data, timing, 4.0, 6.0), data[2])
    assert not np.allclose(summed_image(data, timing, 0.0, 90.0), data.mean(axis=0))
    with pytest.raises(MorError, match="No frame"):
        summed_image(data, timing, 10.0, 40.0)
    with pytest.raises(MorError, match="frames"):
        summed_image(data[:4], timing, 0.0, 90.0)


def test_voxel_tac_at_known_world_point(sample_files):
    pet = load_pet(sample_files["pet"])
    i, j, k = 30, 40, 25
    world = (pet.affine @ [i, j, k, 1.0])[:3] + np.array(
        [1.2, -1.4, 0.9]
    )  # within the voxel
    tac = voxel_tac(pet.data, pet.affine, world)
    np.testing.assert_array_equal(tac, pet.data[:, i, j, k])
    assert not np.array_equal(tac, pet.data[:, i, j, k + 1])
    assert voxel_index(world, pet.affine, pet.spatial_shape) == (i, j, k)
    with pytest.raises(MorError, match="outside the PET field of view"):
        voxel_tac(pet.data, pet.affine, (500.0, 0.0, 0.0))


def test_voxel_tac_with_rotated_affine():
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    affine = np.array(
        [
            [0.0, -2.0, 0.0, 10.0],
            [2.0, 0.0, 0.0, -5.0],
            [0.0, 0.0, 3.0, 1.0],
            [0, 0, 0, 1],
        ]
    )
    world = affine @ [2, 1, 4, 1]
    np.testing.assert_array_equal(voxel_tac(data, affine, world[:3]), data[:, 2, 1, 4])


def test_reference_tac_from_occipital_label(sample_study):
    labels = sample_study.labels
    label = find_label(labels.lut, "occipital")
    assert labels.lut[label] == "occipital_ref"
    tac = mask_mean_tac(sample_study.pet, labels.data == label, "occipital")
    mask = labels.data == label
    np.testing.assert_allclose(tac[7], sample_study.pet.data[7][mask].mean(), rtol=1e-6)
    assert find_label(labels.lut, "cerebellum") is None
    with pytest.raises(MorError, match="resample"):
        mask_mean_tac(sample_study.pet, labels.data[:-1] == label, "occipital")
