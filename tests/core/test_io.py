"""Readers and writers: round trips, units, timing and every bad-input message."""

from __future__ import annotations

import gzip
import json
import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_mor import MorError, MorWarning
from napari_mor.io import (
    DynamicPET,
    FrameTiming,
    file_sha256,
    load_labels,
    load_pet,
    load_volume,
    read_frames_tsv,
    read_lut,
    write_frames_tsv,
    write_lut,
    write_nifti,
    write_pet,
)
from napari_mor.io._nifti import load_image
from napari_mor.io.pet import _ecat_timing

OBLIQUE = np.array(
    [
        [2.0, 0.3, 0.0, -40.0],
        [-0.3, 2.0, 0.2, -50.0],
        [0.0, -0.2, 2.5, -20.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _timing(n_frames: int = 5) -> FrameTiming:
    durations = np.array([30, 30, 60, 120, 300, 300, 300, 300][:n_frames], float)
    return FrameTiming(np.concatenate([[0], np.cumsum(durations)[:-1]]), durations)


def _pet(n_frames: int = 5, seed: int = 0) -> DynamicPET:
    rng = np.random.default_rng(seed)
    data = rng.uniform(0, 10, (n_frames, 6, 7, 8)).astype(np.float32)
    return DynamicPET(data=data, affine=OBLIQUE, timing=_timing(n_frames))


def _write_4d(path: Path, n_frames: int = 5, sidecar: dict | None = None) -> Path:
    data = (
        np.random.default_rng(1).uniform(0, 5, (6, 7, 8, n_frames)).astype(np.float32)
    )
    nib.save(nib.Nifti1Image(data, OBLIQUE), str(path))
    if sidecar is not None:
        stem = str(path).removesuffix(".gz").removesuffix(".nii")
        Path(stem + ".json").write_text(json.dumps(sidecar))
    return path


def _sidecar(n_frames: int = 5, **changes) -> dict:
    sidecar = {**_timing(n_frames).to_dict(), "Units": "kBq/mL"}
    sidecar.update(changes)
    return sidecar


def test_pet_round_trip_keeps_data_affine_and_timing(tmp_path):
    pet = _pet()
    path = write_pet(tmp_path / "scan_pet.nii.gz", pet)
    loaded = load_pet(path)
    np.testing.assert_allclose(loaded.data, pet.data)
    np.testing.assert_allclose(loaded.affine, OBLIQUE, atol=1e-5)
    np.testing.assert_allclose(loaded.timing.frame_start_s, pet.timing.frame_start_s)
    np.testing.assert_allclose(loaded.timing.frame_mid_min, pet.timing.frame_mid_min)
    assert loaded.data.dtype == np.float32 and loaded.data.shape == (5, 6, 7, 8)
    sidecar = json.loads((tmp_path / "scan_pet.json").read_text())
    assert sidecar["SoftwareVersion"] and sidecar["Units"] == "kBq/mL"


def test_frame_mid_times_are_computed_from_uneven_frames():
    timing = _timing(5)
    np.testing.assert_allclose(timing.frame_mid_s, [15, 45, 90, 180, 390])
    np.testing.assert_allclose(timing.frame_end_min[-1], 9.0)


def test_frames_tsv_overrides_and_round_trips(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, None)
    timing = _timing(5)
    tsv = write_frames_tsv(timing, tmp_path / "frames.tsv")
    pet = load_pet(path, frames_tsv=tsv)
    np.testing.assert_allclose(pet.timing.frame_duration_s, timing.frame_duration_s)
    np.testing.assert_allclose(read_frames_tsv(tsv).frame_start_s, timing.frame_start_s)


def test_units_are_converted_to_kbq_and_recorded(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, _sidecar(Units="Bq/mL"))
    raw = np.moveaxis(np.asarray(nib.load(str(path)).dataobj), 3, 0)
    pet = load_pet(path)
    np.testing.assert_allclose(pet.data, raw * 1e-3, rtol=1e-6)
    assert pet.unit_scale == pytest.approx(1e-3)
    assert pet.metadata()["source_units"] == "Bq/mL"
    assert pet.units == "kBq/mL"


def test_nci_per_ml_conversion(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, _sidecar(Units="nCi/cc"))
    assert load_pet(path).unit_scale == pytest.approx(0.037)


def test_injection_start_shifts_frames(tmp_path):
    sidecar = _sidecar()
    sidecar["FrameTimesStart"] = [t + 20 for t in sidecar["FrameTimesStart"]]
    sidecar["InjectionStart"] = 20
    pet = load_pet(_write_4d(tmp_path / "p.nii.gz", 5, sidecar))
    assert pet.timing.frame_start_s[0] == 0


def test_loading_never_modifies_the_file(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, _sidecar())
    before = file_sha256(path)
    pet = load_pet(path)
    pet.data[:] = 0  # even editing the loaded array leaves the file alone
    assert file_sha256(path) == before


def test_mr_and_labels_load_with_lut(tmp_path):
    labels = np.zeros((6, 7, 8), np.int16)
    labels[1:3, 1:3, 1:3] = 1
    labels[4, 4, 4] = 2
    write_nifti(tmp_path / "roi_labels.nii.gz", labels, OBLIQUE, dtype=np.int16)
    write_lut({1: "amygdala_L", 2: "PAG"}, tmp_path / "roi_labels.tsv")
    loaded = load_labels(tmp_path / "roi_labels.nii.gz")
    assert loaded.lut == {1: "amygdala_L", 2: "PAG"}
    assert loaded.data.dtype == np.int32 and loaded.label_of("pag") == 2
    volume = load_volume(tmp_path / "roi_labels.nii.gz")
    np.testing.assert_allclose(
        volume.voxel_size_mm, np.sqrt((OBLIQUE[:3, :3] ** 2).sum(0))
    )


def test_freesurfer_lut_is_read(tmp_path):
    lut_path = tmp_path / "FreeSurferColorLUT.txt"
    lut_path.write_text(
        "# comment\n0 Unknown 0 0 0 0\n10 Left-Thalamus 0 118 14 0\n"
        "18 Left-Amygdala 103 255 255 0\n"
    )
    lut, colors = read_lut(lut_path)
    assert lut == {10: "Left-Thalamus", 18: "Left-Amygdala"}
    assert colors[10][:3] == pytest.approx((0, 118 / 255, 14 / 255))


def test_ecat_frame_times_come_from_subheaders():
    from nibabel.testing import data_path

    ecat = Path(data_path) / "tinypet.v"
    timing = _ecat_timing(load_image(ecat), ecat)
    np.testing.assert_allclose(timing.frame_start_s, [1500.016])
    np.testing.assert_allclose(timing.frame_duration_s, [300.0])
    with pytest.raises(MorError, match="single frame"):
        load_pet(ecat)


# --- bad input: one test per message ---------------------------------------------


def test_3d_file_as_dynamic_pet(tmp_path):
    path = tmp_path / "static.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), str(path))
    with pytest.raises(MorError, match="must be 4D"):
        load_pet(path)


def test_missing_sidecar_names_keys_and_frames_option(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, None)
    with pytest.raises(MorError, match=r"FrameTimesStart.*--frames"):
        load_pet(path)


def test_sidecar_without_timing_keys(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, {"Units": "kBq/mL"})
    with pytest.raises(MorError, match="lacks FrameTimesStart, FrameDuration"):
        load_pet(path)


def test_frame_count_mismatch(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, _sidecar(4))
    with pytest.raises(MorError, match="image has 5 frames but the timing lists 4"):
        load_pet(path)


@pytest.mark.parametrize(
    ("starts", "durations", "message"),
    [
        ([0, 60, 30, 200, 300], [30, 30, 30, 30, 30], "not increasing"),
        ([0, 20, 60, 200, 300], [30, 30, 30, 30, 30], "overlap"),
        ([-10, 30, 60, 200, 300], [30, 30, 30, 30, 30], "negative"),
        ([0, 30, 60, 200, 300], [30, 0, 30, 30, 30], "must be > 0"),
        ([0, 30, 60, 200, 300], [30, 30, 30, 30, float("nan")], "NaN"),
    ],
)
def test_bad_frame_times(tmp_path, starts, durations, message):
    sidecar = {"FrameTimesStart": starts, "FrameDuration": durations}
    path = _write_4d(tmp_path / "p.nii.gz", 5, sidecar)
    with pytest.raises(MorError, match=message):
        load_pet(path)


def test_nan_voxels_warn_and_are_masked(tmp_path):
    path = tmp_path / "p.nii.gz"
    data = np.ones((4, 4, 4, 5), np.float32)
    data[1, 2, 3, 2] = np.nan
    data[0, 0, 0, 4] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    Path(tmp_path / "p.json").write_text(json.dumps(_sidecar()))
    with pytest.warns(MorWarning, match="2 voxels hold NaN/Inf"):
        pet = load_pet(path)
    assert np.isfinite(pet.data).all()
    assert pet.nonfinite_mask.sum() == 2 and pet.nonfinite_mask[1, 2, 3]


def test_truncated_gzip_is_reported_as_corrupt(tmp_path):
    good = _write_4d(tmp_path / "good.nii.gz", 5, None)
    bad = tmp_path / "bad_pet.nii.gz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    Path(tmp_path / "bad_pet.json").write_text(json.dumps(_sidecar()))
    with pytest.raises(MorError, match=r"bad_pet.nii.gz .*(truncated|corrupt)"):
        load_pet(bad)


def test_garbage_file_is_reported(tmp_path):
    bad = tmp_path / "junk.nii.gz"
    bad.write_bytes(gzip.compress(b"not an image at all" * 10))
    with pytest.raises(MorError, match=r"junk\.nii\.gz"):
        load_volume(bad)


def test_labels_with_fractions_are_rejected(tmp_path):
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(np.full((3, 3, 3), 1.5, np.float32), np.eye(4)), str(path))
    with pytest.raises(MorError, match="non-integer"):
        load_labels(path)


def test_lut_with_duplicate_index(tmp_path):
    lut = tmp_path / "lut.tsv"
    lut.write_text("index\tname\n1\tamygdala\n1\tthalamus\n")
    with pytest.raises(MorError, match="label 1 appears twice"):
        read_lut(lut)


def test_lut_missing_labels_warns(tmp_path):
    labels = np.zeros((4, 4, 4), np.int16)
    labels[0, 0, 0], labels[1, 1, 1] = 1, 7
    write_nifti(tmp_path / "x_labels.nii.gz", labels, np.eye(4), dtype=np.int16)
    write_lut({1: "a"}, tmp_path / "x_labels.tsv")
    with pytest.warns(MorWarning, match=r"no names for labels \[7\]"):
        loaded = load_labels(tmp_path / "x_labels.nii.gz")
    assert loaded.name_of(7) == "label_7"


def test_unknown_units(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, _sidecar(Units="counts"))
    with pytest.raises(MorError, match="unknown activity unit 'counts'"):
        load_pet(path)


def test_missing_units_warn_and_assume_kbq(tmp_path):
    sidecar = _sidecar()
    del sidecar["Units"]
    path = _write_4d(tmp_path / "p.nii.gz", 5, sidecar)
    with pytest.warns(MorWarning, match="assuming kBq/mL"):
        assert load_pet(path).unit_scale == 1.0


def test_missing_file(tmp_path):
    with pytest.raises(MorError, match="does not exist"):
        load_pet(tmp_path / "nope.nii.gz")


def test_writer_is_atomic_and_leaves_no_temp_files(tmp_path):
    out = write_nifti(
        tmp_path / "map.nii.gz", np.ones((3, 3, 3)), OBLIQUE, {"Model": "x"}
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.json", "map.nii.gz"]
    image = nib.load(str(out))
    assert image.get_data_dtype() == np.float32
    np.testing.assert_allclose(image.affine, OBLIQUE, atol=1e-5)
    sidecar = json.loads((tmp_path / "map.json").read_text())
    assert sidecar["Model"] == "x" and sidecar["Software"] == "napari-mor"


def test_writer_failure_keeps_the_old_file(tmp_path):
    out = write_nifti(tmp_path / "map.nii.gz", np.ones((3, 3, 3)), np.eye(4))
    before = file_sha256(out)
    with pytest.raises(MorError, match="4x4"):
        write_nifti(out, np.zeros((3, 3, 3)), np.eye(3))
    assert file_sha256(out) == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_pet_dataclass_rejects_mismatched_timing():
    with pytest.raises(MorError, match="timing lists 4"):
        DynamicPET(np.zeros((5, 2, 2, 2), np.float32), np.eye(4), _timing(4))


def test_window_selects_frames_by_mid_time():
    timing = _timing(8)
    mask = timing.frames_in_window(0, 5)
    assert mask.tolist() == [True, True, True, True, False, False, False, False]
    with pytest.raises(MorError, match="empty"):
        timing.frames_in_window(5, 5)


def test_warning_free_round_trip(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_pet(write_pet(tmp_path / "a_pet.nii.gz", _pet()))


def test_nan_voxels_are_left_out_of_mean_tacs(tmp_path):
    from napari_mor.rois import mask_mean_tac

    path = tmp_path / "p.nii.gz"
    data = np.full((4, 4, 4, 5), 2.0, np.float32)
    data[1, 1, 1, 3] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    Path(tmp_path / "p.json").write_text(json.dumps(_sidecar()))
    with pytest.warns(MorWarning):
        pet = load_pet(path)
    mask = np.zeros((4, 4, 4), bool)
    mask[:2, :2, :2] = True
    np.testing.assert_allclose(mask_mean_tac(pet, mask), 2.0)  # not (7 * 2 + 0) / 8
    only_bad = np.zeros_like(mask)
    only_bad[1, 1, 1] = True
    with pytest.raises(MorError, match="no \\(finite\\) voxels"):
        mask_mean_tac(pet, only_bad, "Reference")


def test_parametric_maps_keep_nan_when_asked(tmp_path):
    data = np.ones((3, 3, 3), np.float32)
    data[0, 0, 0] = np.nan
    path = write_nifti(tmp_path / "bp.nii.gz", data, np.eye(4))
    assert np.isnan(load_volume(path, keep_nan=True).data[0, 0, 0])
    with pytest.warns(MorWarning):
        assert load_volume(path).data[0, 0, 0] == 0.0


def test_injection_start_must_be_a_number(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, _sidecar(InjectionStart="abc"))
    with pytest.raises(MorError, match="InjectionStart 'abc' is not a number"):
        load_pet(path)


def test_frames_tsv_that_is_not_text(tmp_path):
    tsv = tmp_path / "frames.tsv"
    tsv.write_bytes(b"frame_start\tframe_duration\n\xff\xfe\x00\x01")
    with pytest.raises(MorError, match="not a UTF-8 text file"):
        read_frames_tsv(tsv)


def test_uncorrected_pet_is_refused_for_kinetics(tmp_path):
    path = _write_4d(tmp_path / "p.nii.gz", 5, _sidecar(ImageDecayCorrected=False))
    pet = load_pet(path)
    with pytest.raises(MorError, match="not decay-corrected"):
        pet.require_decay_corrected()
    load_pet(_write_4d(tmp_path / "q.nii.gz", 5, _sidecar())).require_decay_corrected()
