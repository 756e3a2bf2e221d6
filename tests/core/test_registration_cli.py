"""``napari-mor register ...`` end to end on files, incl. PET->MR accuracy."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_mor.cli import main
from napari_mor.io import load_pet, load_volume, write_nifti, write_pet
from napari_mor.registration import (
    Transform,
    brain_points_mm,
    load_transform,
    mean_displacement_mm,
)
from napari_mor.sample.phantom import BRAIN_CENTER_MM

CENTER = np.asarray(BRAIN_CENTER_MM, dtype=float)


def _run(*argv) -> int:
    """``napari-mor register ARGV``: exit status (2 on bad input, message on stderr)."""
    return main(["register", *map(str, argv)])


def _misalignment() -> Transform:
    """6 mm translation + 5 deg rotation (about an oblique axis) of the PET."""
    axis = np.array([1.0, -0.6, 0.8])
    axis /= np.linalg.norm(axis)
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_rotvec(np.deg2rad(5.0) * axis).as_matrix()
    shift = np.array([3.0, -4.0, 3.0])
    shift *= 6.0 / np.linalg.norm(shift)
    matrix[:3, 3] = CENTER - matrix[:3, :3] @ CENTER + shift
    return Transform(matrix, "MR", "PET")


@pytest.fixture(scope="module")
def files(sample_study, tmp_path_factory):
    """Late PET frames with a misaligned header, and the T1."""
    folder = tmp_path_factory.mktemp("reg_cli")
    truth = _misalignment()
    late = list(range(20, 28))
    pet = sample_study.pet
    from napari_mor.io import FrameTiming

    subset = replace(
        pet,
        data=pet.data[late].copy(),
        timing=FrameTiming(
            pet.timing.frame_start_s[late], pet.timing.frame_duration_s[late]
        ),
        affine=truth.matrix @ pet.affine,
    )
    paths = {
        "pet": write_pet(folder / "pet.nii.gz", subset),
        "mr": write_nifti(
            folder / "T1w.nii.gz", sample_study.mr.data, sample_study.mr.affine
        ),
        "labels": write_nifti(
            folder / "labels.nii.gz",
            sample_study.labels.data,
            sample_study.labels.affine,
            dtype=np.int16,
        ),
    }
    return folder, paths, truth


def test_cli_coreg_recovers_misalignment_and_apply_uses_it(files, sample_study, capsys):
    folder, paths, truth = files
    xfm = folder / "pet2mr.tfm"
    assert (
        _run("coreg", paths["pet"], paths["mr"], "--out", xfm, "--window", 20, 90) == 0
    )
    assert "MR->PET rigid" in capsys.readouterr().out
    found = load_transform(xfm)
    assert (found.fixed_space, found.moving_space) == ("MR", "PET")
    mr = sample_study.mr
    points = brain_points_mm(mr.data, mr.affine)
    assert mean_displacement_mm(Transform.identity(), points, truth) > 5.0
    error = mean_displacement_mm(found, points, truth)
    assert error < 1.0, error
    delta = np.linalg.inv(found.matrix) @ truth.matrix
    angle = np.rad2deg(np.arccos(np.clip((np.trace(delta[:3, :3]) - 1) / 2, -1, 1)))
    assert angle < 0.5, angle
    sidecar = json.loads(xfm.with_suffix(".json").read_text())
    assert sidecar["fixed_space"] == "MR" and "SimpleITK" in sidecar["Library"]

    # labels (on the true PET grid == phantom grid) onto the misaligned PET grid:
    # the misaligned PET world is truth(MR world), so pull labels through the
    # inverse of MR->PET ... and they must land where the PET voxels are.
    out = folder / "labels_on_pet.nii.gz"
    code = _run(
        "apply",
        paths["labels"],
        "--transform",
        xfm,
        "--reference",
        paths["pet"],
        "--out",
        out,
        "--labels",
        "--inverse",
    )
    assert code == 0
    moved = load_volume(out).data.astype(int)
    truth_labels = sample_study.labels.data
    inside = truth_labels > 0
    assert np.mean(moved[inside] == truth_labels[inside]) > 0.85

    # 4D PET onto the MR grid keeps its frames and timing
    out_pet = folder / "pet_on_mr.nii.gz"
    code = _run(
        "apply",
        paths["pet"],
        "--transform",
        xfm,
        "--reference",
        paths["mr"],
        "--out",
        out_pet,
    )
    assert code == 0
    resliced = load_pet(out_pet)
    assert resliced.data.shape == (8, *mr.data.shape)
    np.testing.assert_allclose(resliced.affine, mr.affine, atol=1e-4)


def test_cli_motion_writes_pet_and_trace(files, capsys):
    folder, paths, _ = files
    out = folder / "pet_mc.nii.gz"
    trace = folder / "trace.tsv"
    before = paths["pet"].read_bytes()
    code = _run(
        "motion",
        paths["pet"],
        "--out",
        out,
        "--trace",
        trace,
        "--reference",
        60,
        90,
        "--passes",
        1,
    )
    assert code == 0
    assert paths["pet"].read_bytes() == before
    corrected = load_pet(out)
    assert corrected.n_frames == 8
    rows = trace.read_text().splitlines()
    header = rows[0].split("\t")
    assert header[:4] == ["frame", "frame_start", "frame_end", "frame_mid_min"]
    assert "displacement_mm" in header and "status" in header
    assert len(rows) == 9
    # still frames: tiny motion
    shifts = [float(r.split("\t")[header.index("displacement_mm")]) for r in rows[1:]]
    assert max(shifts) < 1.0
    assert "frames registered" in capsys.readouterr().out


def test_cli_errors_exit_2_and_write_nothing(files, capsys, tmp_path):
    _, paths, _ = files
    flat = write_nifti(tmp_path / "flat.nii.gz", np.zeros((20, 20, 1)), np.eye(4))
    out = tmp_path / "x.tfm"
    assert _run("coreg", paths["pet"], flat, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-mor register: error:") and "at least 8 voxels" in err
    assert not out.exists()
    assert _run("coreg", paths["pet"], paths["mr"], "--out", tmp_path / "x.nii") == 2
    assert ".tfm" in capsys.readouterr().err
    assert _run("motion", paths["pet"], "--out", paths["pet"]) == 2
    assert "never overwritten" in capsys.readouterr().err
    far = write_nifti(
        tmp_path / "far.nii.gz",
        load_volume(paths["mr"]).data,
        np.diag([1.5, 1.5, 1.5, 1.0]) @ np.eye(4)
        + np.array([[0, 0, 0, 900.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]),
    )
    assert _run("coreg", paths["pet"], far, "--out", out) == 2
    assert "do not overlap" in capsys.readouterr().err
    assert not out.exists()
    missing = tmp_path / "none.tfm"
    code = _run(
        "apply",
        paths["mr"],
        "--transform",
        missing,
        "--reference",
        paths["mr"],
        "--out",
        tmp_path / "o.nii.gz",
    )
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_registration_core_imports_no_qt_and_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, napari_mor.registration, napari_mor.cli.register; "
        "bad = [m for m in ('napari', 'qtpy', 'PyQt6', 'magicgui', "
        "'matplotlib.pyplot', 'SimpleITK', 'nilearn') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
