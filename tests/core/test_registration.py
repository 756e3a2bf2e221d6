"""Registration on the phantom with known misalignments (truth known exactly)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_mor import MorError
from napari_mor._errors import MorWarning
from napari_mor.io import DynamicPET, FrameTiming, LabelImage, Volume
from napari_mor.registration import (
    Transform,
    apply_frame_transforms,
    brain_points_mm,
    compose,
    correct_motion,
    load_transform,
    mean_displacement_mm,
    normalize_to_mni,
    register,
    resample_label_data,
    resample_label_image,
    resample_map,
    save_transform,
)
from napari_mor.sample.phantom import BRAIN_CENTER_MM, REGIONS

CENTER = np.asarray(BRAIN_CENTER_MM, dtype=float)


def rigid(translation_mm, rotation_deg, center=CENTER, fixed="A", moving="B"):
    """Rigid transform rotating about ``center`` then translating."""
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_euler("xyz", rotation_deg, degrees=True).as_matrix()
    matrix[:3, 3] = center - matrix[:3, :3] @ center + np.asarray(translation_mm)
    return Transform(matrix, fixed, moving, "rigid")


def angle_between_deg(a: Transform, b: Transform) -> float:
    """Rotation angle (deg) of a^-1 b."""
    delta = np.linalg.inv(a.matrix) @ b.matrix
    cos = np.clip((np.trace(delta[:3, :3]) - 1) / 2, -1, 1)
    return float(np.rad2deg(np.arccos(cos)))


def pet_subset(pet: DynamicPET, frames) -> DynamicPET:
    """A shorter PET with some frames (timing kept, gaps allowed)."""
    frames = list(frames)
    timing = FrameTiming(
        pet.timing.frame_start_s[frames], pet.timing.frame_duration_s[frames]
    )
    return replace(pet, data=pet.data[frames].copy(), timing=timing)


# Frames of the sample study used for the motion test: 2 early (left alone),
# 3 moving, 2 still late frames (the reference window 60-90 min).
MOTION_FRAMES = (0, 2, 10, 16, 19, 25, 27)


def simulated_motion(timing: FrameTiming) -> list[Transform]:
    """A head-motion trace: drift up to ~6 mm / 4 deg before 60 min, still after."""
    trace = []
    for mid in timing.frame_mid_min:
        f = float(np.clip((mid - 3) / 40, 0, 1)) if mid < 60 else 0.0
        jump = 1.5 if 30 < mid < 60 else 0.0
        trace.append(
            rigid(
                np.array([4.0, -3.0, 3.0]) * f + jump,
                np.array([3.0, -2.0, 2.5]) * f,
                fixed="PET reference",
                moving="PET frame",
            )
        )
    return trace


@pytest.fixture(scope="module")
def moved_pet(sample_study):
    pet = pet_subset(sample_study.pet, MOTION_FRAMES)
    truth = simulated_motion(pet.timing)
    moved = apply_frame_transforms(pet, [t.inverse() for t in truth])
    return moved, truth


def test_motion_correction_recovers_simulated_trace(moved_pet, sample_study):
    moved, truth = moved_pet
    before = moved.data.copy()
    result = correct_motion(moved, reference_window_min=(60.0, 90.0))
    np.testing.assert_array_equal(moved.data, before)  # input untouched
    assert result.corrected.data is not moved.data
    points = brain_points_mm(sample_study.brain_mask.astype(float), moved.affine)
    registered = np.flatnonzero(result.registered)
    assert list(registered) == [2, 3, 4, 5, 6]
    assert set(result.left_alone) == {0, 1}
    assert "before 2 min" in result.status[0]
    for frame in registered:
        error = mean_displacement_mm(result.transforms[frame], points, truth[frame])
        assert error < 1.0, (frame, error)
        assert angle_between_deg(result.transforms[frame], truth[frame]) < 0.5
    # the trace reports the simulated motion (largest at frame 4, 47.5 min)
    assert np.nanargmax(result.displacement_mm) == 4
    np.testing.assert_allclose(
        result.translation_mm[5],
        truth[5].rigid_parameters(result.center_mm)["translation_mm"],
        atol=1.0,
    )
    assert np.isnan(result.translation_mm[0]).all()
    # frames left alone are copied, registered ones corrected towards the truth
    np.testing.assert_array_equal(result.corrected.data[0], moved.data[0])
    columns = result.trace_columns(moved.timing)
    assert columns["status"][0].startswith("skipped")
    assert len(columns["tx_mm"]) == moved.n_frames


def test_motion_correction_leaves_zero_frame_and_warns(moved_pet):
    moved, _ = moved_pet
    pet = pet_subset(moved, [4, 5, 6])
    data = pet.data.copy()
    data[0] = 0.0
    pet = replace(pet, data=data)
    with pytest.warns(MorWarning, match="empty"):
        result = correct_motion(
            pet, reference_window_min=(60.0, 90.0), levels=((2, 6.0),), passes=1
        )
    assert "empty frame" in result.status[0]
    assert list(result.status[1:]) == ["registered", "registered"]
    np.testing.assert_array_equal(result.corrected.data[0], 0.0)


def test_motion_correction_needs_dynamic_pet_and_frames(sample_study):
    with pytest.raises(MorError, match="DynamicPET"):
        correct_motion(sample_study.mr)
    with pytest.raises(MorError, match="No PET frame has its mid-time"):
        correct_motion(sample_study.pet, reference_window_min=(200.0, 300.0))


@pytest.fixture(scope="module")
def known_template(sample_study):
    """The phantom MR resampled into a 2 mm MNI-like grid through a known affine."""
    matrix = np.eye(4)
    linear = Rotation.from_euler("xyz", [6, -4, 3], degrees=True).as_matrix()
    matrix[:3, :3] = linear @ np.diag([1.08, 0.95, 1.04])
    matrix[:3, 3] = CENTER - matrix[:3, :3] @ CENTER + [5.0, -4.0, 6.0]
    truth = Transform(matrix, "template", "MR")
    affine = np.array(
        [[2.0, 0, 0, -98], [0, 2.0, 0, -134], [0, 0, 2.0, -72], [0, 0, 0, 1]]
    )
    shape = (99, 117, 95)
    mr = sample_study.mr
    data = resample_map(mr.data, mr.affine, truth, shape, affine)
    return Volume(data=data, affine=affine), truth


def test_normalize_recovers_known_affine_on_region_centroids(
    sample_study, known_template
):
    template, truth = known_template
    result = normalize_to_mni(sample_study.mr, template=template)
    centers = np.array([c for r in REGIONS for c in r.centers_mm], dtype=float)
    errors = np.linalg.norm(
        result.transform.apply(centers) - truth.apply(centers), axis=1
    )
    assert errors.max() < 3.0, errors
    assert result.transform.fixed_space == "MNI152"
    assert result.transform.moving_space == "MR"


def test_normalize_to_real_mni_template_is_sane(sample_study):
    """The phantom head is no brain: only check the fit runs and is plausible."""
    result = normalize_to_mni(
        sample_study.mr,
        levels=((4, 8.0),),
        affine_levels=((4, 6.0),),
        sampling_fraction=0.1,
    )
    linear = result.transform.matrix[:3, :3]
    assert 0.7 < np.linalg.det(linear) < 1.5
    scales = np.linalg.svd(linear, compute_uv=False)
    assert np.all((scales > 0.75) & (scales < 1.35))
    # MNI origin lands inside the phantom brain (within 20 mm of its centre).
    origin_in_mr = result.transform.apply(np.zeros(3))
    assert np.linalg.norm(origin_in_mr - CENTER) < 25.0


def test_registration_errors_are_clear(sample_study):
    mr = sample_study.mr
    far = Volume(mr.data, mr.affine @ _translation([600.0, 0, 0]))
    with pytest.raises(MorError, match="do not overlap"):
        register(mr, far)
    with pytest.raises(MorError, match="3D image"):
        register(mr, Volume(mr.data[:, :, 60], mr.affine))
    with pytest.raises(MorError, match="at least 8 voxels"):
        register(mr, Volume(mr.data[:, :, 60:62], mr.affine))
    with pytest.raises(MorError, match="empty or constant"):
        register(mr, Volume(np.zeros_like(mr.data), mr.affine))
    with pytest.raises(MorError, match="kind"):
        register(mr, mr, kind="bspline")


def test_registration_warns_when_not_converged(sample_study):
    pet_mean = Volume(sample_study.pet.data[-1], sample_study.pet.affine)
    with pytest.warns(MorWarning, match="did not converge"):
        result = register(
            pet_mean, pet_mean, iterations=1, levels=((4, 4.0),), optimizer="rsgd"
        )
    assert not result.converged


def test_register_can_be_cancelled(sample_study):
    pet_mean = Volume(sample_study.pet.data[-1], sample_study.pet.affine)
    result = register(pet_mean, pet_mean, should_stop=lambda: True)
    assert result.cancelled and not result.converged


def _translation(shift) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = shift
    return matrix


# ------------------------------------------------------------- transforms


def test_transform_inverse_compose_and_space_check():
    a = rigid([3, 0, 1], [2, 0, 5], fixed="MNI152", moving="MR")
    b = rigid([-1, 2, 0], [0, 4, 0], fixed="MR", moving="PET")
    chained = compose(a, b)
    assert (chained.fixed_space, chained.moving_space) == ("MNI152", "PET")
    point = np.array([10.0, -20.0, 5.0])
    np.testing.assert_allclose(chained.apply(point), b.apply(a.apply(point)))
    np.testing.assert_allclose(chained.inverse().apply(chained.apply(point)), point)
    with pytest.raises(MorError, match="do not meet"):
        compose(b, a.inverse().inverse())
    with pytest.raises(MorError, match="4x4"):
        Transform(np.eye(3))
    with pytest.raises(MorError, match="singular"):
        Transform(np.diag([1.0, 0.0, 1.0, 1.0]))


@pytest.mark.parametrize("suffix", [".tfm", ".txt"])
def test_transform_files_round_trip(tmp_path, suffix):
    transform = rigid([6, -2, 3], [5, 1, -2], fixed="MR", moving="PET")
    path = save_transform(transform, tmp_path / f"xfm{suffix}")
    loaded = load_transform(path)
    np.testing.assert_allclose(loaded.matrix, transform.matrix, atol=1e-8)
    assert (loaded.fixed_space, loaded.moving_space) == ("MR", "PET")


def test_tfm_is_written_in_itk_lps_convention(tmp_path):
    import SimpleITK as sitk

    transform = rigid([6, -2, 3], [5, 1, -2])
    path = save_transform(transform, tmp_path / "xfm.tfm")
    itk = sitk.ReadTransform(str(path))
    ras = np.array([10.0, 20.0, 30.0])
    flip = np.array([-1.0, -1.0, 1.0])
    lps_out = np.asarray(itk.TransformPoint(tuple(ras * flip)))
    np.testing.assert_allclose(lps_out * flip, transform.apply(ras), atol=1e-6)


def test_transform_file_errors(tmp_path):
    with pytest.raises(MorError, match="does not exist"):
        load_transform(tmp_path / "missing.tfm")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n4 5 6\n")
    with pytest.raises(MorError, match="4x4"):
        load_transform(bad)
    with pytest.raises(MorError, match=r"\.tfm"):
        save_transform(Transform.identity(), tmp_path / "xfm.nii")


def test_resample_labels_and_maps_through_a_known_shift(sample_study):
    labels = sample_study.labels
    shift = Transform(_translation([3.0, 0.0, 0.0]))  # reference -> image: +3 mm x
    before = labels.data.copy()
    moved = resample_label_data(
        labels.data, labels.affine, shift, labels.data.shape, labels.affine
    )
    np.testing.assert_array_equal(labels.data, before)
    # output voxel i takes image voxel i+1 along x (3 mm voxels)
    np.testing.assert_array_equal(moved[:-1], labels.data[1:])
    assert moved.dtype == np.int32
    assert set(np.unique(moved)) <= set(np.unique(labels.data))
    image = resample_label_image(labels, None, labels.data.shape, labels.affine)
    assert isinstance(image, LabelImage) and image.lut == labels.lut
    frame = sample_study.pet.data[-1]
    mapped = resample_map(frame, labels.affine, shift, frame.shape, labels.affine)
    np.testing.assert_allclose(mapped[:-1], frame[1:], atol=1e-5)
    dynamic = resample_map(
        sample_study.pet.data[-3:], labels.affine, None, frame.shape, labels.affine
    )
    np.testing.assert_allclose(dynamic, sample_study.pet.data[-3:], atol=1e-5)


def test_labels_from_mr_grid_to_pet_grid_through_coreg_direction(sample_study):
    """MR-space labels reach the PET grid with the inverse of MR->PET."""
    study = sample_study
    mr_labels = resample_label_data(
        study.labels.data,
        study.labels.affine,
        None,
        study.mr.data.shape,
        study.mr.affine,
    )
    mr_to_pet = rigid([6, 0, 0], [0, 0, 0], fixed="MR", moving="PET")
    shifted_pet_affine = mr_to_pet.matrix @ study.pet.affine
    # labels on a PET grid whose world is shifted by the MR->PET transform
    on_pet = resample_label_data(
        mr_labels,
        study.mr.affine,
        mr_to_pet.inverse(),
        study.labels.data.shape,
        shifted_pet_affine,
    )
    agree = np.mean(
        on_pet[study.labels.data > 0] == study.labels.data[study.labels.data > 0]
    )
    assert agree > 0.8


def test_resample_errors():
    with pytest.raises(MorError, match="3D"):
        resample_label_data(np.zeros((4, 4)), np.eye(4), None, (4, 4, 4), np.eye(4))
    with pytest.raises(MorError, match="non-integer"):
        resample_label_data(
            np.full((4, 4, 4), 0.5), np.eye(4), None, (4, 4, 4), np.eye(4)
        )
    with pytest.raises(MorError, match="3D"):
        resample_map(np.zeros((4, 4)), np.eye(4), None, (4, 4, 4), np.eye(4))


def test_no_warnings_on_clean_identity_registration(sample_study):
    pet_mean = Volume(sample_study.pet.data[-1], sample_study.pet.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MorWarning)
        result = register(pet_mean, pet_mean, levels=((2, 4.0),), optimizer="rsgd")
    assert (
        mean_displacement_mm(
            result.transform, brain_points_mm(pet_mean.data, pet_mean.affine)
        )
        < 0.2
    )
