"""Denoising before voxelwise fits and the percent-delta estimator, as a user runs them.

The accuracy of the filters themselves is tested in test_denoise.py; here: the
options reach the fit and the delta map through the CLI, the batch and the
request, the outputs say what was done, and ROI fits stay on unfiltered TACs.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_mor import MorError
from napari_mor.cli import main
from napari_mor.delta_estimators import pct_delta_map
from napari_mor.denoise import denoise_pet
from napari_mor.io import load_pet
from napari_mor.kinetics import fit_maps
from napari_mor.workflows.fit import FitRequest, load_fit_data, reference_tac


def _map(path):
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)


@pytest.fixture(scope="module")
def denoised_run(sample_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("denoise") / "bp.nii.gz"
    argv = ["fit", str(sample_files["pet"]), "--labels", str(sample_files["labels"])]
    argv += ["--k2p", "0.2", "--t-star", "20", "--denoise", "nlm", "--out", str(out)]
    assert main(argv) == 0
    return argv, out


def test_fit_denoise_equals_denoising_then_fitting(sample_files, denoised_run):
    """`fit --denoise nlm`: the map is the fit of the denoised PET inside the map
    mask, with the reference TAC of the unfiltered PET, and says so."""
    _argv, out = denoised_run
    request = FitRequest(
        pet_path=str(sample_files["pet"]),
        labels_path=str(sample_files["labels"]),
        k2p_per_min=0.2,
        t_star_min=20.0,
    )
    data = load_fit_data(request)
    mask = data.labels.data > 0
    pet = load_pet(sample_files["pet"])
    filtered = denoise_pet(
        pet.data,
        pet.affine,
        method="nlm",
        mask=mask,
        frame_duration_s=pet.timing.frame_duration_s,
    )
    expected = fit_maps(
        filtered,
        mask,
        reference_tac(data),
        pet.timing,
        "logan",
        k2p_per_min=0.2,
        t_star_min=20.0,
    ).maps["bp_nd"]
    np.testing.assert_allclose(
        _map(out), expected, rtol=1e-5, atol=1e-5, equal_nan=True
    )
    sidecar = json.loads(out.with_name("bp.json").read_text())
    assert sidecar["Denoising"]["Method"] == "nlm"
    assert sidecar["Denoising"]["FWHMmm"] == 6.0


def test_denoising_lowers_the_spread_inside_regions(sample_files, denoised_run):
    """The point of denoising: the BP_ND spread within each ROI falls."""
    _argv, out = denoised_run
    plain = out.with_name("plain.nii.gz")
    argv = ["fit", str(sample_files["pet"]), "--labels", str(sample_files["labels"])]
    assert main([*argv, "--k2p", "0.2", "--t-star", "20", "--out", str(plain)]) == 0
    labels = np.asarray(nib.load(sample_files["labels"]).dataobj)
    filtered, raw = _map(out), _map(plain)
    for label in range(2, 12):
        inside = labels == label
        assert np.nanstd(filtered[inside]) < 0.7 * np.nanstd(raw[inside]), label


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"denoise": "median"}, "Unknown denoising"),
        ({"denoise_fwhm_mm": 4.0}, "without a method"),
        ({"denoise": "nlm", "denoise_fwhm_mm": -1.0}, "> 0 mm"),
        ({"denoise": "nlm", "rois_only": True}, "unfiltered region means"),
    ],
)
def test_denoise_request_errors(kwargs, match):
    with pytest.raises(MorError, match=match):
        FitRequest(**kwargs)


def test_denoise_round_trips_its_command_line():
    from napari_mor.cli import build_parser
    from napari_mor.cli.fit import request_from_args

    request = FitRequest(
        pet_path="p.nii.gz",
        labels_path="l.nii.gz",
        denoise="hypr-lr",
        denoise_fwhm_mm=5.0,
        out="o.nii.gz",
    )
    argv = request.to_argv()
    assert argv[argv.index("--denoise") + 1] == "hypr-lr"
    assert request_from_args(build_parser().parse_args(argv)) == request


def test_delta_percent_map_uses_the_regularised_estimator(sample_files, tmp_path):
    """`delta --percent`: the default guided-ratio map (its region means agree
    with the ratio of region means) and --pct-estimator voxel-ratio, both named
    in the sidecar."""
    maps = tmp_path / "bp.nii.gz"
    argv = ["fit", str(sample_files["pet"]), "--labels", str(sample_files["labels"])]
    argv += ["--window", "20", "45", "--window", "60", "90", "--out", str(maps)]
    assert main(argv) == 0
    base, chal = (tmp_path / f"bp_{c}.nii.gz" for c in ("baseline", "challenge"))
    outs = {}
    for estimator in ("guided-ratio", "voxel-ratio"):
        pct = tmp_path / f"pct_{estimator}.nii.gz"
        extra = [] if estimator == "guided-ratio" else ["--pct-estimator", estimator]
        delta = tmp_path / f"delta_{estimator}.nii.gz"
        argv = ["delta", str(base), str(chal), "--out", str(delta), "--percent"]
        assert main([*argv, str(pct), *extra]) == 0
        sidecar = json.loads(pct.with_name(pct.name[:-7] + ".json").read_text())
        assert sidecar["PctDeltaEstimator"] == estimator
        outs[estimator] = _map(pct)
    b, c = _map(base), _map(chal)
    affine = nib.load(base).affine
    np.testing.assert_allclose(
        outs["guided-ratio"], pct_delta_map(b, c, affine), atol=1e-4, equal_nan=True
    )
    labels = np.asarray(nib.load(sample_files["labels"]).dataobj)
    for label in range(2, 12):
        inside = (labels == label) & np.isfinite(outs["guided-ratio"])
        ratio = 100 * (b[inside].mean() - c[inside].mean()) / b[inside].mean()
        assert np.mean(outs["guided-ratio"][inside]) == pytest.approx(ratio, abs=1.5)
