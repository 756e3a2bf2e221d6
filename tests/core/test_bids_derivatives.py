"""BIDS-PET derivatives (BEP023 names and keys) from `fit` and `delta --bids-out`."""

from __future__ import annotations

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_mor.cli import main
from napari_mor.io.bids_derivatives import (
    bids_map_name,
    parse_bids_map_name,
    source_stem,
)

SOURCE = "sub-07_ses-rest_trc-CFN"


@pytest.fixture(scope="module")
def dataset(sample_files, tmp_path_factory):
    """A BIDS dataset holding the sample scan, and a derivatives folder beside it."""
    root = tmp_path_factory.mktemp("bids")
    pet_dir = root / "sub-07" / "ses-rest" / "pet"
    pet_dir.mkdir(parents=True)
    pet = pet_dir / f"{SOURCE}_pet.nii.gz"
    shutil.copy(sample_files["pet"], pet)
    shutil.copy(
        sample_files["pet"].with_name("sample_pet.json"),
        pet.with_suffix("").with_suffix(".json"),
    )
    return root, pet, root / "derivatives" / "napari-mor"


def _fit(pet, labels, out, *extra):
    argv = ["fit", str(pet), "--labels", str(labels), "--bids-out", str(out)]
    assert main([*argv, *extra]) == 0


def test_maps_and_table_get_bep023_names_and_keys(dataset, sample_files):
    root, pet, deriv = dataset
    windows = ["--window", "20", "45", "--window", "60", "90"]
    _fit(pet, sample_files["labels"], deriv, *windows)
    _fit(pet, sample_files["labels"], deriv, "--rois-only", *windows)
    folder = deriv / "sub-07" / "ses-rest" / "pet"
    names = sorted(p.name for p in folder.glob("*_mimap.nii.gz"))
    assert names == sorted(
        bids_map_name(SOURCE, "logan", quantity, condition)
        for quantity in ("bp_nd", "dvr")
        for condition in ("baseline", "challenge")
    )
    for name in names:  # read back by name: stem, model, meas, desc
        parsed = parse_bids_map_name(name)
        assert parsed["stem"] == SOURCE and parsed["model"] == "Logan"
        sidecar = json.loads((folder / name.replace(".nii.gz", ".json")).read_text())
        assert sidecar["ModelName"] == "Logan"
        assert sidecar["SoftwareName"] == "napari-mor"
        assert sidecar["ReferenceRegion"] == "label 1 (occipital_ref)"
        assert sidecar["CommandLine"].startswith("napari-mor fit ")
        assert "--bids-out" in sidecar["CommandLine"]
        assert sidecar["Condition"] == parsed["desc"]
    kinpar = folder / f"{SOURCE}_model-Logan_kinpar.tsv"
    with open(kinpar, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert {r["condition"] for r in rows} == {"baseline", "challenge"}
    assert json.loads(kinpar.with_suffix(".json").read_text())["ModelName"] == "Logan"
    description = json.loads((deriv / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "napari-mor"
    # the same fit with --out gives the same numbers
    plain = root.parent / "plain.nii.gz"
    argv = ["fit", str(pet), "--labels", str(sample_files["labels"]), *windows]
    assert main([*argv, "--out", str(plain)]) == 0
    np.testing.assert_array_equal(
        nib.load(folder / bids_map_name(SOURCE, "logan", "bp_nd", "baseline")).dataobj,
        nib.load(plain.with_name("plain_baseline.nii.gz")).dataobj,
    )


def test_delta_bids_out_names_after_the_baseline_map(dataset, sample_files):
    _root, pet, deriv = dataset
    _fit(
        pet,
        sample_files["labels"],
        deriv,
        "--window",
        "20",
        "45",
        "--window",
        "60",
        "90",
    )
    folder = deriv / "sub-07" / "ses-rest" / "pet"
    base = folder / bids_map_name(SOURCE, "logan", "bp_nd", "baseline")
    chal = folder / bids_map_name(SOURCE, "logan", "bp_nd", "challenge")
    argv = ["delta", str(base), str(chal), "--labels", str(sample_files["labels"])]
    assert main([*argv, "--bids-out", str(deriv)]) == 0
    for meas in ("deltaBPND", "pctdeltaBPND"):
        path = folder / f"{SOURCE}_model-Logan_meas-{meas}_mimap.nii.gz"
        assert path.is_file() and path.with_name(path.name[:-7] + ".json").is_file()
    assert (folder / f"{SOURCE}_model-Logan_desc-delta_kinpar.tsv").is_file()


def test_bids_out_refusals(dataset, sample_files, tmp_path, capsys):
    root, pet, _deriv = dataset
    argv = ["fit", str(pet), "--labels", str(sample_files["labels"]), "--rois-only"]
    assert main([*argv, "--bids-out", str(root)]) == 2  # into the raw dataset
    assert "derivatives to their own folder" in capsys.readouterr().err
    argv = ["fit", str(sample_files["pet"]), "--labels", str(sample_files["labels"])]
    assert main([*argv, "--bids-out", str(tmp_path)]) == 2  # not a BIDS name
    assert "not a BIDS PET name" in capsys.readouterr().err
    base = sample_files["pet"]
    argv = ["delta", str(base), str(base), "--bids-out", str(tmp_path)]
    assert main(argv) == 2
    assert "BEP023 name" in capsys.readouterr().err


def test_source_stem():
    assert source_stem("/x/sub-01_ses-a_trc-CFN_rec-acdyn_pet.nii.gz") == (
        "sub-01_ses-a_trc-CFN_rec-acdyn"
    )
    assert parse_bids_map_name("sub-01_model-MRTM2_meas-BPND_mimap.nii.gz") == {
        "stem": "sub-01",
        "model": "MRTM2",
        "meas": "BPND",
        "desc": None,
    }
