"""The ``napari-mor`` command: demo, tacs, errors and a light start-up."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_mor.cli import main
from napari_mor.io import load_labels, load_pet
from napari_mor.rois import extract_tacs, read_tacs_tsv


def test_demo_writes_the_study_and_prints_a_summary(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for name in (
        "sample_pet.nii.gz",
        "sample_pet.json",
        "sample_T1w.nii.gz",
        "sample_labels.nii.gz",
        "sample_labels.tsv",
        "sample_truth.json",
        "sample_tacs.tsv",
    ):
        assert (tmp_path / "demo" / name).is_file(), name
        assert name in out or name.endswith(".json")
    assert "File > Open Sample > napari-mor" in out


def test_tacs_command_matches_the_core(sample_files, tmp_path, capsys):
    out = tmp_path / "tacs.tsv"
    code = main(
        [
            "tacs",
            str(sample_files["pet"]),
            "--labels",
            str(sample_files["labels"]),
            "--out",
            str(out),
        ]
    )
    assert code == 0 and "11 regions" in capsys.readouterr().out
    table = read_tacs_tsv(out)
    expected = extract_tacs(
        load_pet(sample_files["pet"]), load_labels(sample_files["labels"])
    )
    assert table.names == expected.names
    np.testing.assert_allclose(table.mean_kbq_ml, expected.mean_kbq_ml, rtol=1e-5)
    np.testing.assert_array_equal(table.n_voxels, expected.n_voxels)
    header = out.read_text().splitlines()[0].split("\t")
    assert header[:5] == [
        "frame_start",
        "frame_end",
        "occipital_ref",
        "occipital_ref_sd",
        "occipital_ref_n",
    ]


def test_tacs_command_reports_bad_input_without_traceback(tmp_path, capsys):
    code = main(
        [
            "tacs",
            str(tmp_path / "missing.nii.gz"),
            "--labels",
            "x.nii.gz",
            "--out",
            str(tmp_path / "t.tsv"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "does not exist" in err
    assert not (tmp_path / "t.tsv").exists()


def test_help_is_fast_and_imports_no_gui():
    code = (
        "import sys; from napari_mor.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'magicgui', 'nilearn')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"]], ids=" ".join)
def test_help_leaves_numpy_and_nibabel_unimported(argv):
    """``napari-mor --help`` answers from static names: no numpy, nibabel, Qt."""
    code = (
        "import sys\n"
        "from napari_mor.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'nibabel', 'napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "usage: napari-mor" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


@pytest.mark.parametrize(
    "module",
    [
        "io",
        "rois",
        "sample",
        "cli",
        "cli.fit",
        "workflows",
        "workflows.demo",
        "kinetics",
        "maps",
        "workflows.session",
        "io.bids",
        "group",
        "registration",
        "rois.space",
        "workflows.fit",
        "workflows.fit_maps",
        "workflows.delta",
        "defaults",
        "group.batch",
    ],
)
def test_core_modules_never_import_napari_or_qt(module):
    code = (
        f"import sys, napari_mor.{module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'magicgui')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_unwritable_output_is_a_clear_error(sample_files, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(
        [
            "tacs",
            str(sample_files["pet"]),
            "--labels",
            str(sample_files["labels"]),
            "--out",
            str(blocker / "tacs.tsv"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "check the path" in err and "Traceback" not in err


def test_units_option_scales_files_that_do_not_say(tmp_path, capsys):
    import json

    import nibabel as nib

    data = np.full((3, 3, 3, 4), 2000.0, np.float32)  # Bq/mL, no Units in the sidecar
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "p.nii.gz"))
    timing = {"FrameTimesStart": [0, 60, 120, 240], "FrameDuration": [60, 60, 120, 120]}
    (tmp_path / "p.json").write_text(json.dumps(timing))
    labels = np.ones((3, 3, 3), np.int16)
    nib.save(nib.Nifti1Image(labels, np.eye(4)), str(tmp_path / "roi_labels.nii.gz"))
    out = tmp_path / "tacs.tsv"
    argv = ["tacs", str(tmp_path / "p.nii.gz"), "--labels"]
    argv += [str(tmp_path / "roi_labels.nii.gz"), "--units", "Bq/mL", "--out", str(out)]
    assert main(argv) == 0
    np.testing.assert_allclose(read_tacs_tsv(out).mean_kbq_ml, 2.0)
