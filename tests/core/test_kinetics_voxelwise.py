"""Voxelwise maps: equal to ROI fits, blockwise progress, no input modified."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from _simulate import REF_K2P, frame_schedule_min, reference_tac, target_tacs

from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics import (
    auto_block_size,
    estimate_k2p_voxelwise,
    fit_maps,
    fit_roi,
    iter_fit_blocks,
)
from napari_mor.maps import bp_maps

SHAPE = (5, 4, 3)
BP_SET = np.array([0.0, 0.5, 1.0, 2.0, 3.0])


@pytest.fixture(scope="module")
def phantom():
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    ref = reference_tac()
    rng = np.random.default_rng(3)
    n_vox = int(np.prod(SHAPE))
    tacs = target_tacs(BP_SET)[:, np.arange(n_vox) % BP_SET.size]
    tacs = tacs * (1.0 + 0.03 * rng.standard_normal(tacs.shape))  # noisy voxels
    pet = tacs.reshape((timing.n_frames, *SHAPE)).astype(np.float32)
    mask = np.ones(SHAPE, bool)
    mask[0, 0, :] = False
    return pet, mask, ref, timing


MAP_CASES = [
    ("logan", {"t_star_min": 20.0, "k2p_per_min": REF_K2P}),
    ("logan", {"t_star_min": 20.0}),
    ("mrtm", {}),
    ("mrtm2", {"k2p_per_min": REF_K2P}),
    ("srtm-bf", {}),
    ("srtm2", {"k2p_per_min": REF_K2P}),
    ("ratio", {"window": (40.0, 90.0)}),
    ("mrtm", {"weights": "duration", "window": (0.0, 60.0)}),
]


@pytest.mark.parametrize(("model", "options"), MAP_CASES)
def test_voxelwise_equals_roi_fits(phantom, model, options):
    pet, mask, ref, timing = phantom
    result = fit_maps(pet, mask, ref, timing, model, block_size=7, **options)
    tacs = pet[:, mask].astype(np.float64)  # the same float32 values
    roi_model = "srtm2" if model == "srtm2" else model
    fits = fit_roi(tacs, ref, timing, roi_model, **options)
    roi_bp = np.array([f.bp_nd for f in fits])
    bp = result.maps["bp_nd"]
    assert bp.dtype == np.float32 and bp.shape == SHAPE
    assert np.all(np.isnan(bp[~mask]))
    valid = np.isfinite(bp[mask])
    assert valid.sum() >= mask.sum() - 2
    tol = 0.02 if model == "srtm2" else 1e-4  # srtm2 maps use basis functions
    np.testing.assert_allclose(bp[mask][valid], roi_bp[valid], rtol=tol, atol=tol)
    assert result.n_voxels == mask.sum()
    assert result.n_failed == int((~valid).sum())


def test_maps_recover_truth(phantom):
    pet, mask, ref, timing = phantom
    truth = BP_SET[np.arange(int(np.prod(SHAPE))) % BP_SET.size].reshape(SHAPE)
    result = fit_maps(pet, mask, ref, timing, "mrtm2", k2p_per_min=REF_K2P)
    err = result.maps["bp_nd"][mask] - truth[mask]
    assert np.nanmax(np.abs(err)) < 0.35  # 3 % voxel noise
    assert abs(np.nanmean(err)) < 0.05
    assert set(result.maps) == {"bp_nd", "r1", "k2_per_min"}


def test_iter_fit_blocks_progress_and_result(phantom):
    pet, mask, ref, timing = phantom
    blocks = iter_fit_blocks(pet, mask, ref, timing, "mrtm", block_size=10)
    progress = []
    while True:
        try:
            progress.append(next(blocks))
        except StopIteration as stop:
            result = stop.value
            break
    total = int(mask.sum())
    assert [d for d, _ in progress] == [*range(10, total, 10), total]
    assert all(t == total for _, t in progress)
    assert np.isfinite(result.maps["bp_nd"][mask]).all()


def test_on_progress_callback_and_cancel(phantom):
    pet, mask, ref, timing = phantom
    calls = []
    fit_maps(pet, mask, ref, timing, "logan", t_star_min=20.0, block_size=16,
             on_progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    assert calls[-1] == (mask.sum(), mask.sum()) and len(calls) == 4
    blocks = iter_fit_blocks(pet, mask, ref, timing, "srtm-bf", block_size=16)
    assert next(blocks) == (16, mask.sum())
    blocks.close()  # cancelling between blocks is allowed


def test_failed_voxels_are_nan_and_counted(phantom):
    pet, mask, ref, timing = phantom
    pet = pet.copy()
    pet[:, 1, 1, 1] = 0.0  # empty voxel: singular
    pet[:, 2, 2, 2] = pet[:, 2, 2, 2] * np.nan  # NaN voxel
    pet[:, 3, 3, 1] = np.outer(ref, 80.0)[:, 0]  # BP_ND = 79 > 50
    result = fit_maps(pet, mask, ref, timing, "mrtm2", k2p_per_min=REF_K2P)
    bp = result.maps["bp_nd"]
    for vox in [(1, 1, 1), (2, 2, 2), (3, 3, 1)]:
        assert np.isnan(bp[vox])
    assert result.n_failed == 3


def test_no_input_is_modified(phantom):
    pet, mask, ref, timing = phantom
    arrays = {"pet": pet.copy(), "mask": mask.copy(), "ref": ref.copy()}
    frozen = {k: v.copy() for k, v in arrays.items()}
    for arr in arrays.values():
        arr.flags.writeable = False  # any in-place write would raise
    tac = arrays["pet"][:, arrays["mask"]][:, :4].astype(np.float64)
    tac.flags.writeable = False
    weights = np.ones(timing.n_frames)
    weights.flags.writeable = False
    for model, options in MAP_CASES:
        fit_maps(arrays["pet"], arrays["mask"], arrays["ref"], timing, model, **options)
        fit_roi(tac, arrays["ref"], timing, model, **options)
    fit_roi(tac, arrays["ref"], timing, "srtm", weights=weights)
    fit_roi(tac, arrays["ref"], timing, "srtm2", k2p_per_min=REF_K2P)
    bp_maps(arrays["pet"], arrays["mask"], arrays["ref"], timing, "mrtm",
            {"a": (5.0, 40.0), "b": (45.0, 90.0)})  # fmt: skip
    for key, arr in arrays.items():
        np.testing.assert_array_equal(arr, frozen[key])


def test_k2p_median_over_high_binding_voxels(phantom):
    pet, mask, ref, timing = phantom
    k2p = estimate_k2p_voxelwise(pet, mask, ref, timing)
    assert k2p == pytest.approx(REF_K2P, rel=0.1)
    auto = fit_maps(pet, mask, ref, timing, "mrtm2")
    assert auto.k2p_per_min == pytest.approx(k2p)


def test_bp_maps_per_condition(phantom):
    pet, mask, ref, timing = phantom
    results = bp_maps(pet, mask, ref, timing, "mrtm2",
                      {"baseline": (5.0, 40.0), "challenge": (45.0, 90.0)},
                      k2p_per_min=REF_K2P)  # fmt: skip
    assert set(results) == {"baseline", "challenge"}
    assert results["challenge"].window_min == (45.0, 90.0)
    diff = results["baseline"].maps["bp_nd"] - results["challenge"].maps["bp_nd"]
    assert abs(np.nanmean(diff)) < 0.1  # no change simulated


def test_peak_memory_below_three_pet_arrays():
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    ref = reference_tac()
    shape = (40, 40, 24)
    tac = target_tacs([1.0])[:, 0]
    pet = np.broadcast_to(tac[:, None, None, None], (timing.n_frames, *shape))
    pet = pet.astype(np.float32)
    mask = np.ones(shape, bool)
    for model, options in [("srtm-bf", {}), ("mrtm", {})]:
        tracemalloc.start()
        fit_maps(pet, mask, ref, timing, model, **options)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 3 * pet.nbytes, (model, peak / pet.nbytes)


def test_auto_block_size_bounds():
    small = np.zeros((28, 4, 4, 4), np.float32)
    big = np.zeros((28, 128, 128, 63), np.float32)
    assert auto_block_size(small) == 1024
    assert 1024 < auto_block_size(big, 100) < auto_block_size(big) <= 65536
