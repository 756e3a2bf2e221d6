"""The plugin reader on bad or stale files: MorError or a warning, never a traceback."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_mor import MorError
from napari_mor._napari import _reader
from napari_mor.io import write_nifti


@pytest.fixture
def shown(monkeypatch):
    """Messages the reader shows as napari warnings."""
    messages = []
    monkeypatch.setattr(
        "napari.utils.notifications.show_warning", lambda msg: messages.append(msg)
    )
    return messages


def test_map_with_a_stale_sidecar_warns_once_and_drops_its_provenance(tmp_path, shown):
    out = write_nifti(
        tmp_path / "delta.nii.gz",
        np.linspace(-1, 1, 27).reshape(3, 3, 3),
        np.eye(4),
        {"Quantity": "delta_bp_nd", "Model": "logan"},
    )
    write_nifti(tmp_path / "other.nii.gz", np.ones((3, 3, 3)), np.eye(4))
    shutil.copy(tmp_path / "other.nii.gz", out)  # map replaced, sidecar kept
    [(_data, kwargs, _kind)] = _reader.read_paths(str(out))
    assert "provenance" not in kwargs["metadata"]
    assert len(shown) == 1 and "does not describe" in shown[0]


def test_map_with_its_own_sidecar_keeps_provenance(tmp_path, shown):
    out = write_nifti(
        tmp_path / "bp.nii.gz", np.ones((3, 3, 3)), np.eye(4), {"Model": "logan"}
    )
    [(_data, kwargs, _kind)] = _reader.read_paths(str(out))
    assert kwargs["metadata"]["provenance"]["Model"] == "logan"
    assert shown == []


def test_4d_label_image_is_named_as_such(tmp_path):
    path = tmp_path / "sample_labels.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((3, 3, 3, 2), np.int16), np.eye(4)), str(path))
    with pytest.raises(MorError, match=r"looks like a label image .* 4D with 2"):
        _reader.classify_image_file(path)


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ("null", "holds a JSON null"),
        ('{"Units": 1000}', "Units is the number 1000"),
    ],
)
def test_bad_pet_sidecars_are_mor_errors(tmp_path, sidecar, message):
    path = tmp_path / "scan_pet.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((3, 3, 3, 4), np.float32), np.eye(4)), str(path))
    (tmp_path / "scan_pet.json").write_text(sidecar)
    with pytest.raises(MorError, match=message):
        _reader.read_paths(str(path))
