"""Automatic k2' (FRTM profile over composites) across the carfentanil k4 sweep."""

from __future__ import annotations

import _carfentanil_sim as cs
import numpy as np
import pytest

from napari_mor._errors import MorError
from napari_mor.kinetics.k2p import k2p_from_high_binding_voxels, k2p_from_rois

TRUE_K2P = 0.15


@pytest.mark.parametrize("k4", [0.05, 0.08, 0.15, 0.6])
def test_k2p_from_voxels_within_10_percent_at_voxel_noise_010(k4):
    scan = cs.simulate_scan(
        k4_per_min=k4,
        k2p_per_min=TRUE_K2P,
        drop=0.10,
        noise_cv=0.10,
        ref_noise_cv=0.005,
        n_realisations=2000,
        seed=3,
    )
    pet, mask, ref = cs.voxel_image(scan)
    k2p, desc = k2p_from_high_binding_voxels(
        pet, mask, ref, scan.timing, window=(0, 45)
    )
    assert abs(k2p / TRUE_K2P - 1) <= 0.10, desc
    assert "FRTM" in desc
    assert "shared k4" in desc


def _slow_k4_voxels(seed):
    scan = cs.simulate_scan(
        k4_per_min=0.05,
        k2p_per_min=TRUE_K2P,
        drop=0.10,
        noise_cv=0.10,
        ref_noise_cv=0.005,
        n_realisations=1000,
        seed=seed,
    )
    return (*cs.voxel_image(scan), scan.timing)


def test_k2p_from_voxels_slow_k4_every_seed_within_10_percent():
    """Issue 12: k4 = 0.05 /min, voxel noise 0.10, ten seeds (about 6 s).

    The free-k4 profile (the estimator before issue 12) misses 10 % in four of
    these seeds (errors +16.7, -12.1, +12.5, +12.1 %; median |error| 8.1 %).
    """
    errors = []
    for seed in range(100, 110):
        pet, mask, ref, timing = _slow_k4_voxels(seed)
        k2p, _ = k2p_from_high_binding_voxels(pet, mask, ref, timing, window=(0, 45))
        errors.append(k2p / TRUE_K2P - 1)
    errors = np.abs(errors)
    assert errors.max() <= 0.10, np.round(100 * errors, 1)
    assert np.median(errors) <= 0.05, np.round(100 * errors, 1)


def test_k2p_from_voxels_is_deterministic_and_leaves_input_alone():
    pet, mask, ref, timing = _slow_k4_voxels(104)
    before = pet.copy()
    first = k2p_from_high_binding_voxels(pet, mask, ref, timing, window=(0, 45))
    second = k2p_from_high_binding_voxels(pet, mask, ref, timing, window=(0, 45))
    assert first == second
    np.testing.assert_array_equal(pet, before)


@pytest.mark.parametrize("k4", [0.05, 0.08, 0.15, 0.6])
def test_k2p_from_rois_shared_k4_noise_free(k4):
    scan = cs.simulate_scan(k4_per_min=k4, drop=0.10)
    k2p, desc = k2p_from_rois(
        scan.tacs, scan.ref, scan.timing, scan.names, window=(0, 45), k4="shared"
    )
    assert abs(k2p / TRUE_K2P - 1) <= 0.03, desc
    assert "shared k4" in desc and "thalamus" in desc


def test_shared_k4_tracks_a_different_true_value():
    scan = cs.simulate_scan(k4_per_min=0.05, k2p_per_min=0.25, drop=0.0)
    k2p, _ = k2p_from_rois(scan.tacs, scan.ref, scan.timing, k4="shared")
    assert abs(k2p / 0.25 - 1) <= 0.05


def test_unknown_k4_option_is_refused():
    scan = cs.simulate_scan(k4_per_min=0.08)
    with pytest.raises(MorError, match="k4 must be 'free' or 'shared'"):
        k2p_from_rois(scan.tacs, scan.ref, scan.timing, k4="fixed")


def test_non_finite_tac_is_refused_by_the_shared_fit():
    scan = cs.simulate_scan(k4_per_min=0.08)
    tacs = scan.tacs.copy()
    tacs[3, 1] = np.nan
    with pytest.raises(MorError, match="NaN/inf"):
        k2p_from_rois(tacs, scan.ref, scan.timing, window=(0, 45), k4="shared")


def test_ill_conditioned_shared_fit_raises():
    scan = cs.simulate_scan(k4_per_min=0.08, noise_cv=0.5, seed=1)
    with pytest.raises(MorError, match="ill-determined"):
        k2p_from_rois(
            scan.tacs,
            scan.ref,
            scan.timing,
            window=(0, 45),
            max_rel_se=0.05,
            k4="shared",
        )


@pytest.mark.parametrize("k4", [0.05, 0.08, 0.15, 0.6])
def test_k2p_from_rois_noise_free(k4):
    scan = cs.simulate_scan(k4_per_min=k4, drop=0.10)
    k2p, _ = k2p_from_rois(scan.tacs, scan.ref, scan.timing, scan.names, window=(0, 45))
    assert abs(k2p / TRUE_K2P - 1) <= 0.03


def test_k2p_tracks_a_different_true_value():
    scan = cs.simulate_scan(k4_per_min=0.08, k2p_per_min=0.25, drop=0.0)
    k2p, _ = k2p_from_rois(scan.tacs, scan.ref, scan.timing, window=(0, 45))
    assert abs(k2p / 0.25 - 1) <= 0.05


def test_single_roi_is_refused_with_advice():
    scan = cs.simulate_scan(k4_per_min=0.08)
    with pytest.raises(MorError, match="at least two TACs"):
        k2p_from_rois(scan.tacs[:, :1], scan.ref, scan.timing)


def test_ill_conditioned_profile_raises():
    scan = cs.simulate_scan(k4_per_min=0.08, noise_cv=0.5, seed=1)
    with pytest.raises(MorError, match=r"ill-determined|pass k2'"):
        k2p_from_rois(scan.tacs, scan.ref, scan.timing, window=(0, 45), max_rel_se=0.05)


def test_too_few_voxels_raises():
    scan = cs.simulate_scan(k4_per_min=0.08, n_realisations=5, noise_cv=0.05)
    pet, mask, ref = cs.voxel_image(scan)
    with pytest.raises(MorError, match="high-binding voxels"):
        k2p_from_high_binding_voxels(pet, mask, ref, scan.timing, window=(0, 45))


def test_noise_model_hits_requested_cv():
    scan = cs.simulate_scan(k4_per_min=0.08, noise_cv=0.10, n_realisations=4000)
    late = scan.tacs[-3:]
    rel = late.std(axis=2) / scan.clean_tacs[-3:]
    assert np.allclose(rel.mean(axis=0), 0.10, rtol=0.1)
