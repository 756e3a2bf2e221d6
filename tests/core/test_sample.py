"""The phantom: truth, determinism, geometry, kinetics and noise behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor.io import load_labels, load_pet, load_volume
from napari_mor.sample import REGIONS, REJECTION_REGIONS, make_sample_study
from napari_mor.sample.phantom import world_coordinates


def _centroid_world(labels, label):
    index = np.argwhere(labels.data == label).mean(axis=0)
    return labels.affine[:3, :3] @ index + labels.affine[:3, 3]


def test_truth_lists_every_region_with_planted_drop(sample_study):
    regions = sample_study.truth["regions"]
    assert set(regions) == {r.name for r in REGIONS}
    for name, region in regions.items():
        expected_drop = 10.0 if name in REJECTION_REGIONS else 0.0
        assert region["drop_pct"] == expected_drop
        assert region["bp_nd_challenge"] == pytest.approx(
            region["bp_nd_baseline"] * (1 - expected_drop / 100)
        )
    assert regions["occipital_ref"]["bp_nd_baseline"] == 0.0
    assert sample_study.truth["reference_region"] == "occipital_ref"


def test_same_seed_same_study_other_seed_other_noise():
    a = make_sample_study(seed=3, pet_voxel_mm=6.0)
    b = make_sample_study(seed=3, pet_voxel_mm=6.0)
    c = make_sample_study(seed=4, pet_voxel_mm=6.0)
    np.testing.assert_array_equal(a.pet.data, b.pet.data)
    np.testing.assert_array_equal(a.mr.data, b.mr.data)
    assert not np.array_equal(a.pet.data, c.pet.data)


def test_regions_sit_at_their_mni_positions(sample_study):
    for region in REGIONS:
        if len(region.centers_mm) > 1 or region.name == "occipital_ref":
            continue  # bilateral pairs and the cortex-clipped reference
        centroid = _centroid_world(sample_study.labels, region.label)
        assert np.linalg.norm(centroid - region.centers_mm[0]) < 2.0, region.name


def test_every_region_has_voxels_on_the_pet_grid(sample_study):
    counts = np.bincount(sample_study.labels.data.ravel(), minlength=len(REGIONS) + 1)
    assert (counts[1:] > 0).all()
    assert counts[7] >= 8  # PAG, the smallest region, ~4.5 mm radius at 3 mm voxels


def test_frames_are_realistic(sample_study):
    timing = sample_study.pet.timing
    assert timing.n_frames == 28
    assert timing.frame_end_min[-1] == pytest.approx(90.0)
    assert np.all(np.diff(timing.frame_duration_s) >= 0)  # increasing lengths
    assert timing.frame_duration_min[0] == 0.5


def test_noise_free_voxels_equal_region_curves(noise_free_study):
    study = noise_free_study
    for name, region in study.truth["regions"].items():
        voxels = study.pet.data[:, study.labels.data == region["label"]]
        np.testing.assert_allclose(
            voxels.mean(axis=1), region["noise_free_tac_kbq_ml"], rtol=1e-4, atol=1e-5
        )
        assert np.ptp(voxels, axis=1).max() == 0, name


def test_binding_regions_exceed_reference_and_drop_in_challenge(noise_free_study):
    regions = noise_free_study.truth["regions"]
    ref = np.array(regions["occipital_ref"]["noise_free_tac_kbq_ml"])
    late = slice(-3, None)
    for name in ("midline_thalamus", "amygdala_L", "sgACC"):
        tac = np.array(regions[name]["noise_free_tac_kbq_ml"])
        assert tac[late].mean() / ref[late].mean() - 1 > 1.0, name
    # A region with a planted drop loses binding relative to its own no-drop twin.
    undropped = make_sample_study(noise_cv=0.0, pet_voxel_mm=6.0, drop_pct={})
    dropped = make_sample_study(noise_cv=0.0, pet_voxel_mm=6.0)

    def thal(study):
        return np.array(
            study.truth["regions"]["midline_thalamus"]["noise_free_tac_kbq_ml"]
        )

    before = slice(0, 19)  # frames ending by 45 min
    np.testing.assert_allclose(
        thal(dropped)[before], thal(undropped)[before], rtol=1e-9
    )
    assert thal(dropped)[-1] < 0.97 * thal(undropped)[-1]


def test_noise_scales_like_counts(sample_study, noise_free_study):
    """Shorter frames are noisier at equal activity; SD ~ sqrt(C/duration)."""
    mask = sample_study.labels.data == 1
    noise = sample_study.pet.data[:, mask] - noise_free_study.pet.data[:, mask]
    sd = noise.std(axis=1)
    truth = np.array(
        sample_study.truth["regions"]["occipital_ref"]["noise_free_tac_kbq_ml"]
    )
    timing = sample_study.pet.timing
    decay = np.exp(np.log(2) / 20.38 * timing.frame_mid_min)
    expected = np.sqrt(truth * decay / timing.frame_duration_min)
    ratio = sd[1:] / expected[1:]
    assert ratio.std() / ratio.mean() < 0.1  # one constant explains every frame
    assert sd[7] > sd[20]  # 1-min frame at 4.5 min noisier than 5-min frame later


def test_mr_is_finer_tilted_and_aligned_in_world(sample_study):
    mr, labels = sample_study.mr, sample_study.labels
    assert mr.voxel_size_mm == pytest.approx([1.5, 1.5, 1.5])
    assert not np.allclose(mr.affine[:3, :3] / 1.5, np.eye(3))  # oblique
    # The MR voxel at the world centroid of the thalamus shows region T1 contrast.
    world = _centroid_world(labels, 6)
    voxel = np.round(np.linalg.solve(mr.affine, [*world, 1])[:3]).astype(int)
    assert abs(mr.data[tuple(voxel)] - 62.0) < 10.0


def test_world_coordinates_follow_the_affine():
    affine = np.array([[2, 0, 0, -10], [0, 3, 0, 5], [0, 0, 4, 1], [0, 0, 0, 1.0]])
    world = world_coordinates((2, 2, 2), affine)
    np.testing.assert_allclose(world[1, 1, 1], [-8, 8, 5])


def test_separate_scans_hold_each_condition_throughout():
    study = make_sample_study(noise_cv=0.0, pet_voxel_mm=6.0, separate_scans=True)
    assert study.pet_challenge is not None
    mask = study.labels.data == 6
    base = study.pet.data[-1, mask].mean()
    challenge = study.pet_challenge.data[-1, mask].mean()
    assert challenge < 0.97 * base


def test_unknown_drop_region_is_rejected():
    with pytest.raises(MorError, match="Unknown regions"):
        make_sample_study(drop_pct={"hippocampus": 5})


def test_written_study_reads_back(sample_files, sample_study):
    pet = load_pet(sample_files["pet"])
    np.testing.assert_allclose(pet.data, sample_study.pet.data, rtol=1e-6)
    labels = load_labels(sample_files["labels"], sample_files["lut"])
    assert labels.lut[7] == "PAG"
    np.testing.assert_array_equal(labels.data, sample_study.labels.data)
    mr = load_volume(sample_files["mr"])
    np.testing.assert_allclose(mr.affine, sample_study.mr.affine, atol=1e-4)
    assert pet.decay_corrected is True and pet.radionuclide == "C11"


def test_cached_sample_study_equals_a_fresh_one_and_shares_nothing(
    tmp_path, monkeypatch
):
    """Open Sample reads the study from the user cache after the first time: the
    same arrays as a fresh build, new ones on every call, rebuilt when broken."""
    from napari_mor._cache import CACHE_DIR_ENV
    from napari_mor.sample import cache as sample_cache
    from napari_mor.sample import make_sample_study

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    first = sample_cache.cached_sample_study(separate_scans=True)
    path = sample_cache.sample_cache_path(separate_scans=True)
    assert path.is_file() and path.parent == tmp_path / "samples"
    builds = []
    monkeypatch.setattr(
        "napari_mor.sample.make_sample_study",
        lambda **kw: builds.append(kw) or make_sample_study(**kw),
    )
    second = sample_cache.cached_sample_study(separate_scans=True)
    assert builds == []  # read back, not rebuilt
    fresh = make_sample_study(separate_scans=True)
    for study in (first, second):
        np.testing.assert_array_equal(study.pet.data, fresh.pet.data)
        np.testing.assert_array_equal(
            study.pet_challenge.data, fresh.pet_challenge.data
        )
        np.testing.assert_array_equal(study.labels.data, fresh.labels.data)
        assert study.truth == fresh.truth
    assert not np.shares_memory(first.labels.data, second.labels.data)
    path.write_bytes(b"not a pickle")
    third = sample_cache.cached_sample_study(separate_scans=True)
    assert builds == [{"separate_scans": True}]
    np.testing.assert_array_equal(third.mr.data, fresh.mr.data)
