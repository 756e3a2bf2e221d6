"""Fits in the file's voxel order: no transposing copy, the same numbers.

``load_pet`` returns the time-first view of the NIfTI (x, y, z, t) array (x
fastest in memory; for an uncompressed float32 ``.nii`` the memory map itself);
the voxelwise fits and the high-binding k2' read it as a (t, n_voxels) matrix
in that order. Results must equal the C-ordered array's.
"""

from __future__ import annotations

import json
import os
import time

import nibabel as nib
import numpy as np
import pytest
from _simulate import REF_K2P, frame_schedule_min, reference_tac, target_tacs

from napari_mor.io import frames_by_voxel, load_pet
from napari_mor.io._nifti import file_sha256
from napari_mor.io.pet import DynamicPET, write_pet
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics import fit_maps, k2p_from_high_binding_voxels

SHAPE = (9, 7, 5)


@pytest.fixture(scope="module")
def study():
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    rng = np.random.default_rng(21)
    bp = rng.uniform(0.0, 3.0, int(np.prod(SHAPE)))
    tacs = target_tacs(np.linspace(0, 3, 16))[
        :, np.digitize(bp, np.linspace(0, 3, 16)) - 1
    ]
    tacs = tacs * (1.0 + 0.03 * rng.standard_normal(tacs.shape))
    pet_c = tacs.reshape((timing.n_frames, *SHAPE)).astype(np.float32)
    pet_f = np.moveaxis(np.asfortranarray(np.moveaxis(pet_c, 0, 3)), 3, 0)
    mask = np.ones(SHAPE, bool)
    mask[0, 0, :] = mask[-1, :, 0] = False
    return pet_c, pet_f, mask, reference_tac(), timing


def test_file_order_view_is_read_without_a_copy(study):
    pet_c, pet_f, _mask, _ref, _timing = study
    assert not pet_f.flags.c_contiguous and np.array_equal(pet_f, pet_c)
    flat, order = frames_by_voxel(pet_f)
    assert order == "F" and np.shares_memory(flat, pet_f)
    ijk = (3, 2, 4)
    column = np.ravel_multi_index(ijk, SHAPE, order="F")
    np.testing.assert_array_equal(flat[:, column], pet_c[(slice(None), *ijk)])
    flat_c, order_c = frames_by_voxel(pet_c)
    assert order_c == "C" and np.shares_memory(flat_c, pet_c)


@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("logan", {"t_star_min": 20.0}),
        ("logan", {"weights": "noise"}),  # automatic t*, mean-TAC weights
        ("mrtm", {"window": (0.0, 60.0)}),
        ("mrtm2", {}),  # k2' from voxelwise MRTM
        ("srtm-bf", {"n_theta": 20}),
        ("ratio", {"window": (40.0, 90.0)}),
    ],
)
def test_maps_in_file_order_equal_c_order(study, model, options):
    pet_c, pet_f, mask, ref, timing = study
    by_c = fit_maps(pet_c, mask, ref, timing, model, block_size=50, **options)
    by_f = fit_maps(pet_f, mask, ref, timing, model, block_size=50, **options)
    assert by_f.t_star_min == pytest.approx(by_c.t_star_min, nan_ok=True)
    assert by_f.n_failed == by_c.n_failed
    for name, expected in by_c.maps.items():
        got = by_f.maps[name]
        assert got.shape == SHAPE and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-7, err_msg=name)


def test_high_binding_k2p_is_identical_in_file_order(study):
    pet_c, pet_f, mask, ref, timing = study
    inner = mask.copy()
    inner[:, 0, :] = False  # a reference-free brain
    expected = k2p_from_high_binding_voxels(
        pet_c, inner, ref, timing, window=(0.0, 45.0), min_voxels_per_band=5
    )
    got = k2p_from_high_binding_voxels(
        pet_f, inner, ref, timing, window=(0.0, 45.0), min_voxels_per_band=5
    )
    assert got[1] == expected[1]  # the same voxels in the same bands
    assert got[0] == pytest.approx(expected[0], rel=1e-9)  # round-off only
    assert got[0] == pytest.approx(REF_K2P, rel=0.3)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_loader_keeps_the_file_order_and_values(study, tmp_path, suffix):
    pet_c, _pet_f, _mask, _ref, timing = study
    scan = DynamicPET(data=pet_c, affine=np.eye(4), timing=timing, decay_corrected=True)
    path = write_pet(tmp_path / f"pet{suffix}", scan)
    before = path.read_bytes()
    loaded = load_pet(path)
    assert loaded.data.shape == pet_c.shape and loaded.data.dtype == np.float32
    assert type(loaded.data) is np.ndarray  # a plain array, even when mapped
    assert frames_by_voxel(loaded.data)[1] == "F"  # no transposing copy
    np.testing.assert_array_equal(loaded.data, pet_c)
    # fitting it never writes into the (copy-on-write) mapped file
    mask = np.ones(SHAPE, bool)
    fit_maps(loaded.data, mask, reference_tac(), timing, "logan", t_star_min=20.0)
    assert path.read_bytes() == before


def test_loader_scales_and_zeroes_nonfinite_voxels_in_file_order(study, tmp_path):
    pet_c, _pet_f, _mask, _ref, timing = study
    data = pet_c * 1000.0  # Bq/mL
    data[4, 2, 3, 1] = np.nan
    img = nib.Nifti1Image(np.moveaxis(data, 0, 3), np.eye(4))
    path = tmp_path / "pet.nii"
    nib.save(img, path)
    sidecar = {**timing.to_dict(), "Units": "Bq/mL", "ImageDecayCorrected": True}
    (tmp_path / "pet.json").write_text(json.dumps(sidecar))
    with pytest.warns(UserWarning, match="NaN"):
        loaded = load_pet(path)
    expected = np.where(np.isfinite(data), data, 0).astype(np.float32) * np.float32(
        1e-3
    )
    np.testing.assert_allclose(loaded.data, expected, rtol=1e-6)
    assert loaded.nonfinite_mask[2, 3, 1] and loaded.nonfinite_mask.sum() == 1


def test_file_hash_is_computed_once_and_redone_when_the_file_changes(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"a" * 1000)
    old = time.time() - 10  # settled: older than the time-stamp granularity
    os.utime(path, (old, old))
    first = file_sha256(path)
    assert file_sha256(path) == first
    path.write_bytes(b"b" * 1000)  # same size, new content
    os.utime(path, (old, old))  # even with the old mtime (ctime changes)
    assert file_sha256(path) != first
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"c" * 10)  # just written: hashed every time
    digest = file_sha256(fresh)
    fresh.write_bytes(b"d" * 10)
    assert file_sha256(fresh) != digest
