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
