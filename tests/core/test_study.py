"""Study core: BIDS discovery, frame table, mean image, voxel TAC, study file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor.io import FrameTiming, load_pet
from napari_mor.study import (
    FrameRow,
    StudyState,
    find_bids_subject,
    find_label,
    frame_table,
    load_study,
    region_tac,
    save_study,
    summed_image,
    timing_from_table,
    voxel_tac,
    world_to_voxel,
)

WINDOWS = {"baseline": (0.0, 45.0), "challenge": (45.0, 90.0)}


def make_bids_subject(sample_files, root, subject="sub-01", sidecar=True):
    """Copy the sample study into a BIDS subject layout."""
    pet_dir = root / subject / "pet"
    anat_dir = root / subject / "anat"
    pet_dir.mkdir(parents=True)
    anat_dir.mkdir(parents=True)
    pet = pet_dir / f"{subject}_task-rejection_pet.nii.gz"
    shutil.copy(sample_files["pet"], pet)
    if sidecar:
        shutil.copy(
            sample_files["pet"].with_name("sample_pet.json"),
            pet.with_suffix("").with_suffix(".json"),
        )
    t1w = anat_dir / f"{subject}_T1w.nii.gz"
    shutil.copy(sample_files["mr"], t1w)
    return pet, t1w


# ----------------------------------------------------------------------- BIDS


def test_bids_subject_lists_pet_runs_and_t1w(sample_files, tmp_path):
    pet, t1w = make_bids_subject(sample_files, tmp_path)
    # a second run without sidecar and an ECAT file; noise that must be ignored
    bare = pet.with_name("sub-01_task-acceptance_pet.nii")
    bare.write_bytes(b"not read here")
    ecat = pet.with_name("sub-01_task-pain_pet.v")
    ecat.write_bytes(b"")
    (pet.parent / "sub-01_task-rejection_blood.tsv").write_text("x\n")
    (t1w.parent / "sub-01_T2w.nii.gz").write_bytes(b"")
    listing = find_bids_subject(tmp_path / "sub-01")
    assert [r.path for r in listing.pet_runs] == sorted([pet, bare, ecat])
    by_path = {r.path: r for r in listing.pet_runs}
    assert by_path[pet].sidecar is not None and not by_path[pet].needs_frames_tsv
    assert by_path[bare].sidecar is None and by_path[bare].needs_frames_tsv
    assert not by_path[ecat].needs_frames_tsv  # ECAT carries its frame times
    assert listing.t1w_images == (t1w,)
    assert listing.subjects == ()


def test_bids_dataset_lists_subjects_with_pet(sample_files, tmp_path):
    pet1, _ = make_bids_subject(sample_files, tmp_path, "sub-01")
    pet2, _ = make_bids_subject(sample_files, tmp_path, "sub-02")
    (tmp_path / "sub-03" / "anat").mkdir(parents=True)  # no PET: not listed
    listing = find_bids_subject(tmp_path)
    assert listing.subjects == (tmp_path / "sub-01", tmp_path / "sub-02")
    assert [r.path for r in listing.pet_runs] == [pet1, pet2]
    assert len(listing.t1w_images) == 2


def test_bids_sessions_are_searched(sample_files, tmp_path):
    root = tmp_path / "sub-07"
    make_bids_subject(sample_files, root, "ses-baseline")
    listing = find_bids_subject(root)
    assert listing.pet_runs[0].path.parent == root / "ses-baseline" / "pet"


def test_bids_without_pet_raises(tmp_path):
    (tmp_path / "sub-01" / "anat").mkdir(parents=True)
    with pytest.raises(MorError, match="No PET found"):
        find_bids_subject(tmp_path)
    with pytest.raises(MorError, match="not a folder"):
        find_bids_subject(tmp_path / "missing")


# ------------------------------------------------------------------ frame table


def _uneven_timing():
    return FrameTiming(
        [0.0, 60.0, 180.0, 2700.0, 3000.0], [60.0, 120.0, 300.0, 300.0, 600.0]
    )


def test_frame_table_rows_in_minutes_with_windows():
    rows = frame_table(_uneven_timing(), WINDOWS)
    assert [r.frame for r in rows] == [0, 1, 2, 3, 4]
    assert rows[1].start_min == pytest.approx(1.0)
    assert rows[1].end_min == pytest.approx(3.0)
    assert rows[1].duration_min == pytest.approx(2.0)
    assert [r.window for r in rows] == [
        "baseline",
        "baseline",
        "baseline",
        "challenge",  # mid 47.5 min
        "challenge",  # mid 55 min
    ]
    late = frame_table(_uneven_timing(), {"late": (50.0, 60.0)})
    assert [r.window for r in late] == ["", "", "", "", "late"]


def test_timing_from_table_round_trip_and_edit():
    rows = frame_table(_uneven_timing(), WINDOWS)
    timing = timing_from_table(rows, n_volumes=5)
    np.testing.assert_allclose(timing.frame_start_s, _uneven_timing().frame_start_s)
    edited = [(r.start_min, r.duration_min) for r in rows]
    edited[4] = (50.0, 5.0)
    timing = timing_from_table(edited)
    assert timing.frame_start_s[4] == pytest.approx(3000.0)
    assert timing.frame_duration_s[4] == pytest.approx(300.0)


def test_timing_from_table_rejects_overlap_backwards_and_bad_values():
    rows = [(r.start_min, r.duration_min) for r in frame_table(_uneven_timing())]
    overlap = list(rows)
    overlap[1] = (1.0, 10.0)  # ends at 11 min, frame 2 starts at 3 min
    with pytest.raises(MorError, match="overlap"):
        timing_from_table(overlap)
    backwards = list(rows)
    backwards[3] = (2.0, 1.0)  # starts before frame 2
    with pytest.raises(MorError, match="not increasing"):
        timing_from_table(backwards)
    with pytest.raises(MorError, match="duration"):
        timing_from_table([(0.0, 1.0), (1.0, 0.0)])
    with pytest.raises(MorError, match="numbers"):
        timing_from_table([(0.0, 1.0), ("soon", 1.0)])
    with pytest.raises(MorError, match="5 frames"):
        timing_from_table(rows[:4], n_volumes=5)
    with pytest.raises(MorError, match="end must be after"):
        frame_table(_uneven_timing(), {"bad": (40.0, 30.0)})


# ------------------------------------------------------------------ quick looks


def test_summed_image_equals_hand_computation():
    rng = np.random.default_rng(3)
    data = rng.random((5, 3, 4, 2)).astype(np.float32)
    timing = _uneven_timing()  # mids 0.5, 2, 5.5, 47.5, 55 min
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
    assert world_to_voxel(pet.affine, world, pet.spatial_shape) == (i, j, k)
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
    tac = region_tac(sample_study.pet.data, labels.data, label)
    mask = labels.data == label
    np.testing.assert_allclose(tac[7], sample_study.pet.data[7][mask].mean(), rtol=1e-6)
    assert find_label(labels.lut, "cerebellum") is None
    with pytest.raises(MorError, match="resample"):
        region_tac(sample_study.pet.data, labels.data[:-1], label)


# ------------------------------------------------------------------- study file


def test_study_file_round_trip_with_relative_paths(sample_files, tmp_path):
    folder = tmp_path / "study"
    pet, t1w = make_bids_subject(sample_files, folder)
    labels = folder / "rois" / "labels.nii.gz"
    labels.parent.mkdir()
    shutil.copy(sample_files["labels"], labels)
    shutil.copy(sample_files["lut"], labels.parent / "labels.tsv")
    state = StudyState(
        pet_path=pet,
        mr_path=t1w,
        frame_start_s=[0.0, 60.0],
        frame_duration_s=[60.0, 120.0],
        windows_min={"baseline": (5.0, 40.0), "pain": (45.0, 80.0)},
        labels_path=labels,
        lut_path=labels.parent / "labels.tsv",
        mean_window_min=(40.0, 90.0),
        fit_settings={"model": "logan", "t_star_min": 20.0},
    )
    study_file = save_study(folder / "my_study.json", state)
    text = study_file.read_text()
    assert '"sub-01/pet/sub-01_task-rejection_pet.nii.gz"' in text
    assert str(tmp_path) not in text.split('"provenance"')[0]
    moved = shutil.move(str(folder), str(tmp_path / "moved"))
    loaded = load_study(tmp_path / "moved" / "my_study.json")
    assert (
        loaded.pet_path == (tmp_path / "moved" / "sub-01" / "pet" / pet.name).resolve()
    )
    assert loaded.pet_path.is_file() and loaded.mr_path.is_file()
    assert loaded.lut_path.is_file() and loaded.labels_path.parent.name == "rois"
    assert loaded.frames_tsv_path is None
    assert loaded.windows_min == {"baseline": (5.0, 40.0), "pain": (45.0, 80.0)}
    assert loaded.frame_duration_s == [60.0, 120.0]
    assert loaded.mean_window_min == (40.0, 90.0)
    assert loaded.fit_settings == {"model": "logan", "t_star_min": 20.0}
    assert moved.endswith("moved")


def test_study_file_errors(tmp_path):
    with pytest.raises(MorError, match="does not exist"):
        load_study(tmp_path / "none.json")
    other = tmp_path / "other.json"
    other.write_text('{"FrameDuration": [1]}')
    with pytest.raises(MorError, match="not a napari-mor study"):
        load_study(other)
    newer = tmp_path / "newer.json"
    newer.write_text('{"napari_mor_study": 99}')
    with pytest.raises(MorError, match="version"):
        load_study(newer)
    with pytest.raises(MorError, match=r"\.json"):
        save_study(tmp_path / "study.txt", StudyState())
    bad = StudyState(frame_start_s=[0.0, 30.0], frame_duration_s=[60.0, 60.0])
    with pytest.raises(MorError, match="overlap"):
        save_study(tmp_path / "study.json", bad)
    assert isinstance(FrameRow(0, 0.0, 1.0, 1.0), FrameRow)


def test_study_core_imports_no_qt_or_napari():
    import subprocess
    import sys

    code = (
        "import sys, napari_mor.study; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'magicgui', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6') "
        "or m == 'matplotlib.pyplot'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
