"""The plugin writer puts the BEP023 keys in the sidecar of a kinetic map layer."""

from __future__ import annotations

import json

import numpy as np

from napari_mor._napari._writer import write_image_layer


def test_bp_map_layer_sidecar_has_bep023_keys(tmp_path):
    meta = {
        "name": "BP_ND baseline [logan]",
        "affine": np.diag([3.0, 3.0, 3.0, 1.0]),
        "metadata": {
            "kind": "bp_map",
            "provenance": {"Model": "logan", "ReferenceRegion": "label 1 (occ)"},
        },
    }
    written = write_image_layer(str(tmp_path / "bp.nii.gz"), np.ones((4, 4, 4)), meta)
    assert written == [str(tmp_path / "bp.nii.gz")]
    sidecar = json.loads((tmp_path / "bp.json").read_text())
    assert sidecar["ModelName"] == "Logan"
    assert sidecar["ReferenceRegion"] == "label 1 (occ)"
    assert sidecar["SoftwareName"] == "napari-mor"
    plain = {"name": "T1w", "affine": np.eye(4), "metadata": {}}
    write_image_layer(str(tmp_path / "mr.nii.gz"), np.ones((4, 4, 4)), plain)
    assert "ModelName" not in json.loads((tmp_path / "mr.json").read_text())
