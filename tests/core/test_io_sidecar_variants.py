"""Sidecars as scanners and converters write them (dcm2niix 2026, DICOM units)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mor.io import load_pet
from napari_mor.io.pet import DynamicPET, write_pet
from napari_mor.io.timing import FrameTiming, injection_assumed
from napari_mor.workflows.fit import FitRequest, prepare_fit_data
from napari_mor.workflows.fit_maps import map_provenance_of, plan_maps


@pytest.fixture
def pet_file(tmp_path):
    timing = FrameTiming(np.arange(6) * 60.0, np.full(6, 60.0))
    data = np.full((6, 4, 4, 4), 2.0, np.float32)
    data[:, 2:] = 5.0
    path = write_pet(
        tmp_path / "pet.nii.gz",
        DynamicPET(data=data, affine=np.eye(4), timing=timing, decay_corrected=True),
    )
    return path


def _edit(path, **changes):
    sidecar = path.with_name("pet.json")
    content = json.loads(sidecar.read_text())
    for key, value in changes.items():
        if value is None:
            content.pop(key, None)
        else:
            content[key] = value
    sidecar.write_text(json.dumps(content))


@pytest.mark.parametrize(
    ("units", "scale"), [("BQML", 1e-3), ("Bq/cc", 1e-3), ("KBQML", 1.0)]
)
def test_dicom_unit_spellings_load(pet_file, units, scale):
    _edit(pet_file, Units=units)
    pet = load_pet(pet_file)
    assert pet.unit_scale == scale and pet.source_units == units
    np.testing.assert_allclose(pet.data.max(), 5.0 * scale, rtol=1e-6)


def test_missing_injection_start_means_scan_start_and_says_so(pet_file):
    _edit(pet_file, TimeZero=None, InjectionStart=None)
    pet = load_pet(pet_file)
    assert pet.timing.frame_start_s[0] == 0.0 and injection_assumed(pet.sidecar)
    labels_data = np.zeros((4, 4, 4), np.int32)
    labels_data[:2] = 1
    from napari_mor.io.volume import LabelImage

    labels = LabelImage(labels_data, np.eye(4), {1: "occipital"})
    request = FitRequest(model="mrtm", mask="uptake")
    plan = plan_maps(request, prepare_fit_data(request, pet, labels=labels))
    assert (
        "InjectionStart"
        in map_provenance_of(plan, "scan", None)["InjectionStartAssumed"]
    )


def test_injection_start_shifts_frames_to_injection(pet_file):
    _edit(pet_file, InjectionStart=-30)  # injection 30 s before TimeZero
    pet = load_pet(pet_file)
    assert pet.timing.frame_start_s[0] == 30.0 and not injection_assumed(pet.sidecar)
