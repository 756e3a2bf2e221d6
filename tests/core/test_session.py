"""The study file (napari_mor.workflows.session), and the Study core stays Qt-free."""

from __future__ import annotations

import shutil

import pytest
from _study_helpers import make_bids_subject

from napari_mor import MorError
from napari_mor.workflows.session import StudyState, load_study, save_study


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


def test_study_core_imports_no_qt_or_napari():
    import subprocess
    import sys

    code = (
        "import sys, napari_mor.io.bids, napari_mor.io.frame_table, "
        "napari_mor.rois.tacs, napari_mor.workflows.session; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'magicgui', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6') "
        "or m == 'matplotlib.pyplot'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
