"""Delta-BP maps, provenance writing and the ``napari-mor fit``/``delta`` commands."""

from __future__ import annotations

import csv
import hashlib
import json

import nibabel as nib
import numpy as np
import pytest
from _simulate import REF_K2P, frame_schedule_min, reference_tac, target_tacs

import napari_mor
from napari_mor import MorError
from napari_mor.cli import main
from napari_mor.io import DynamicPET, write_lut, write_nifti, write_pet
from napari_mor.io.timing import FrameTiming
from napari_mor.maps import delta_bp, map_provenance, pct_delta_bp, write_map
from napari_mor.workflows.fit import FIT_COLUMNS

AFFINE = np.diag([2.0, 2.0, 2.5, 1.0])
AFFINE[:3, 3] = [-10.0, -20.0, -5.0]


def test_delta_sign_and_percent():
    base = np.array([2.0, 1.0, 0.05, np.nan, 3.0])
    chal = np.array([1.5, 1.2, 0.0, 1.0, 3.0])
    delta = delta_bp(base, chal)
    np.testing.assert_allclose(delta[[0, 1, 2, 4]], [0.5, -0.2, 0.05, 0.0])
    assert delta.dtype == np.float32 and np.isnan(delta[3])
    assert delta[0] > 0  # reduced availability in the challenge = positive
    pct = pct_delta_bp(base, chal)
    np.testing.assert_allclose(pct[[0, 1, 4]], [25.0, -20.0, 0.0], rtol=1e-6)
    assert np.isnan(pct[2]) and np.isnan(pct[3])  # base below 0.1 / NaN
    assert np.isfinite(pct_delta_bp(base, chal, min_bp_base=0.01)[2])


def test_delta_does_not_modify_inputs_and_checks_shapes():
    base, chal = np.ones((3, 3, 3)), np.zeros((3, 3, 3))
    base.flags.writeable = chal.flags.writeable = False
    delta_bp(base, chal)
    pct_delta_bp(base, chal)
    with pytest.raises(MorError, match=r"same \(PET\) grid"):
        delta_bp(base, chal[:2])


def test_write_map_nifti_and_sidecar(tmp_path):
    data = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    data.flags.writeable = False
    source = tmp_path / "input.bin"
    source.write_bytes(b"pet data")
    prov = map_provenance(
        reference_region="occipital", windows={"baseline": (5, 40)},
        input_files=[source], Model="mrtm2", TStarMin=None, K2PrimePerMin=0.15,
    )  # fmt: skip
    out = write_map(tmp_path / "bp.nii.gz", data, AFFINE, prov)
    image = nib.load(out)
    assert image.get_data_dtype() == np.float32
    np.testing.assert_allclose(image.affine, AFFINE)
    np.testing.assert_allclose(image.get_fdata(), data)
    sidecar = json.loads((tmp_path / "bp.json").read_text())
    assert sidecar["Model"] == "mrtm2"
    assert sidecar["ReferenceRegion"] == "occipital"
    assert sidecar["WindowsMin"] == {"baseline": [5, 40]}
    assert sidecar["K2PrimePerMin"] == 0.15
    assert sidecar["SoftwareVersion"] == napari_mor.__version__
    assert "Created" in sidecar
    digest = sidecar["InputFiles"][str(source)]["sha256"]
    assert digest == hashlib.sha256(b"pet data").hexdigest()
    assert not list(tmp_path.glob(".tmp-*"))  # atomic: no temp files left


def test_write_map_rejects_4d(tmp_path):
    with pytest.raises(MorError, match="3-D"):
        write_map(tmp_path / "x.nii.gz", np.zeros((2, 2, 2, 2)), AFFINE, {})


def test_provenance_missing_input(tmp_path):
    with pytest.raises(MorError, match="do not exist"):
        map_provenance(input_files=[tmp_path / "nope.nii.gz"])


# --- command line -----------------------------------------------------------

SHAPE = (4, 3, 3)
BP_LABEL = {1: 0.0, 2: 1.0, 3: 3.0}  # 1 = occipital reference


@pytest.fixture(scope="module")
def study_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    labels = np.zeros(SHAPE, np.int32)
    labels[0] = 1
    labels[1:3] = 2
    labels[3, :2] = 3
    tacs = {
        1: reference_tac(),
        2: target_tacs([1.0])[:, 0],
        3: target_tacs([3.0])[:, 0],
    }
    data = np.zeros((timing.n_frames, *SHAPE), np.float32)
    for label, tac in tacs.items():
        data[:, labels == label] = tac[:, None]
    pet = DynamicPET(data=data, affine=AFFINE, timing=timing)
    paths = {
        "pet": write_pet(folder / "pet.nii.gz", pet),
        "labels": write_nifti(folder / "labels.nii.gz", labels, AFFINE, dtype=np.int32),
        "lut": write_lut(
            {1: "occipital", 2: "cortex", 3: "thalamus"}, folder / "lut.tsv"
        ),
        "ref": write_nifti(
            folder / "ref.nii.gz", (labels == 1).astype(np.float32), AFFINE
        ),
        "brain": write_nifti(
            folder / "brain.nii.gz", (labels > 0).astype(np.float32), AFFINE
        ),
    }
    return paths, labels


def _run(argv):
    """``napari-mor ARGV``: exit status (2 on bad input, message on stderr)."""
    return main(argv)


def test_cli_fit_rois_only(study_files, tmp_path):
    paths, _ = study_files
    out = tmp_path / "rois.tsv"
    argv = ["fit", str(paths["pet"]), "--labels", str(paths["labels"]), "--lut",
            str(paths["lut"]), "--ref-label", "1", "--model", "srtm", "--rois-only",
            "--out", str(out)]  # fmt: skip
    assert _run(argv) == 0
    with out.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert tuple(rows[0]) == FIT_COLUMNS
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"cortex", "thalamus"}
    assert float(by_name["thalamus"]["BP_ND"]) == pytest.approx(3.0, rel=0.01)
    assert float(by_name["cortex"]["BP_ND"]) == pytest.approx(1.0, rel=0.01)
    assert by_name["thalamus"]["label"] == "3" and by_name["cortex"]["model"] == "srtm"
    assert by_name["cortex"]["t_star_min"] == "NaN"


@pytest.mark.parametrize("model", ["mrtm2", "srtm-bf", "logan"])
def test_cli_fit_map_and_delta(study_files, tmp_path, model, capsys):
    paths, labels = study_files
    out = tmp_path / "bp.nii.gz"
    argv = ["fit", str(paths["pet"]), "--ref-mask", str(paths["ref"]), "--model", model,
            "--mask", str(paths["brain"]), "--out", str(out)]  # fmt: skip
    if model in ("logan", "mrtm2"):
        # 24 voxels are too few for the automatic k2' of maps: a clear error
        assert _run(argv) == 2
        assert "high-binding voxels" in capsys.readouterr().err
        argv += ["--k2p", str(REF_K2P)]
    if model == "logan":
        argv += ["--t-star", "20", "--window", "10", "90"]
    assert _run(argv) == 0
    bp = nib.load(out).get_fdata()
    np.testing.assert_allclose(bp[labels == 3], 3.0, rtol=0.02)
    np.testing.assert_allclose(bp[labels == 2], 1.0, rtol=0.02)
    sidecar = json.loads((tmp_path / "bp.json").read_text())
    assert sidecar["Model"] == model and sidecar["ReferenceRegion"].startswith("mask")
    assert str(paths["pet"]) in sidecar["InputFiles"]
    if model == "logan":
        assert sidecar["TStarMin"] == 20.0 and sidecar["WindowMin"] == [10.0, 90.0]
        assert (tmp_path / "bp_DVR.nii.gz").is_file()
    else:
        assert (tmp_path / "bp_R1.nii.gz").is_file()
    if model == "mrtm2":  # k2' estimated: median MRTM k2' of high-binding voxels
        assert sidecar["K2PrimePerMin"] == pytest.approx(REF_K2P, rel=0.01)
    # a challenge map with lower BP: delta positive where BP dropped
    chal = tmp_path / "chal.nii.gz"
    write_map(chal, np.asarray(bp) * 0.8, AFFINE, {})
    delta, pct = tmp_path / "delta.nii.gz", tmp_path / "pct.nii.gz"
    assert _run(["delta", str(out), str(chal), "--out", str(delta),
                 "--percent", str(pct)]) == 0  # fmt: skip
    d = nib.load(delta).get_fdata()
    p = nib.load(pct).get_fdata()
    np.testing.assert_allclose(d[labels == 3], 0.2 * bp[labels == 3], rtol=1e-5)
    np.testing.assert_allclose(p[labels == 3], 20.0, rtol=1e-4)
    assert np.all(np.isnan(p[labels == 1]))  # reference: BP ~ 0 < 0.1
    assert np.all(np.isnan(d[labels == 0]))  # outside the brain mask: no value
    # the delta sidecar carries each input map's provenance (model, reference, ...)
    delta_sidecar = json.loads((tmp_path / "delta.json").read_text())
    assert delta_sidecar["Baseline"]["Model"] == model
    assert delta_sidecar["Quantity"] == "delta_bp_nd"


def test_cli_errors_exit_2(study_files, tmp_path, capsys):
    paths, _ = study_files
    base = ["fit", str(paths["pet"]), "--labels", str(paths["labels"])]
    assert _run([*base, "--model", "mrtm", "--out", str(tmp_path / "x.nii.gz")]) == 2
    # no --ref-label: the region named like 'occipital'; none here (no LUT)
    err = capsys.readouterr().err
    assert "No region named like 'occipital'" in err and "label_1" in err
    argv = [*base, "--ref-label", "1", "--model", "mrtm2", "--k2p", "-1", "--rois-only",
            "--out", str(tmp_path / "x.tsv")]  # fmt: skip
    assert _run(argv) == 2
    assert "error: k2'" in capsys.readouterr().err
    argv = [*base, "--ref-label", "1", "--model", "mrtm", "--rois-only",
            "--out", str(tmp_path / "x.nii.gz")]  # fmt: skip
    assert _run(argv) == 2
    assert ".tsv" in capsys.readouterr().err
    argv = ["fit", str(paths["pet"]), "--ref-mask", str(paths["ref"]), "--model",
            "srtm", "--mask", str(paths["brain"]), "--out",
            str(tmp_path / "m.nii.gz")]  # fmt: skip
    assert _run(argv) == 2
    assert "srtm-bf" in capsys.readouterr().err
    # options that would be silently ignored are refused
    argv = ["fit", str(paths["pet"]), "--ref-mask", str(paths["ref"]), "--ref-label",
            "1", "--model", "mrtm", "--out", str(tmp_path / "m.nii.gz")]  # fmt: skip
    assert _run(argv) == 2
    assert "go with --labels" in capsys.readouterr().err
    argv = [*base, "--ref-label", "1", "--model", "mrtm", "--rois-only", "--mask",
            str(paths["brain"]), "--out", str(tmp_path / "x.tsv")]  # fmt: skip
    assert _run(argv) == 2
    assert "Drop one of them" in capsys.readouterr().err
    argv = ["fit", str(paths["pet"]), "--ref-mask", str(paths["ref"]), "--model",
            "mrtm", "--out", str(tmp_path / "m.nii.gz")]  # fmt: skip
    assert _run(argv) == 2
    assert "--mask" in capsys.readouterr().err
    other = tmp_path / "other.nii.gz"
    write_map(other, np.zeros((2, 2, 2)), np.eye(4), {})
    assert _run(["delta", str(paths["brain"]), str(other), "--out",
                 str(tmp_path / "d.nii.gz")]) == 2  # fmt: skip
    assert "same" in capsys.readouterr().err


def test_maps_share_one_k2p_across_windows():
    """MRTM2 maps without k2': one k2' (the baseline's), used for every window."""
    from napari_mor.sample import make_sample_study
    from napari_mor.workflows.fit import FitRequest, prepare_fit_data
    from napari_mor.workflows.fit_maps import fit_maps_now, plan_maps

    study = make_sample_study(seed=0, noise_cv=0.0, pet_voxel_mm=6.0, mr_voxel_mm=6.0)
    request = FitRequest(model="mrtm2", windows_min=tuple(study.windows_min.values()))
    data = prepare_fit_data(
        request, study.pet, labels=study.labels, brain_mask=study.brain_mask
    )
    plan = plan_maps(request, data)
    results = fit_maps_now(plan)
    k2p = {result.k2p_per_min for result in results.values()}
    assert k2p == {plan.k2p.value} and abs(plan.k2p.value - 0.2) < 0.02
