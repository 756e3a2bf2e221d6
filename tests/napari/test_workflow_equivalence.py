"""Same inputs, same outputs: the docks and the commands they display agree.

The Kinetic fit dock runs on the sample study opened from files (as a user opens
it); the "BP_ND maps" and delta command lines shown in the dock are then run
through ``napari-mor`` and their maps and sidecars compared with the dock's
layers (everything but dates and paths).
"""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from _docks import open_dock

from napari_mor.cli import main
from napari_mor.io import load_volume, sidecar_path_for
from napari_mor.sample import make_sample_study, write_sample_study

#: Fields of the file, not of the map: dates, layer names, the map file's own hash.
_VOLATILE = {
    "Created",
    "LayerName",
    "ImageSHA256",
    "FitOutput",
    "Software",
    "SoftwareVersion",
}


def _comparable(provenance: dict) -> dict:
    """Provenance without dates and paths (input files by role and hash), as JSON."""
    out = {}
    for key, value in json.loads(json.dumps(provenance)).items():
        if key in _VOLATILE:
            continue
        if key == "InputFiles":
            value = sorted((v.get("role"), v["sha256"]) for v in value.values())
        elif isinstance(value, dict):
            value = _comparable(value)
        out[key] = value
    return out


def _sidecar(path) -> dict:
    return json.loads(sidecar_path_for(path).read_text())


def _command(widget, marker: str) -> list[str]:
    lines = widget.cli_text().splitlines()
    return shlex.split(lines[lines.index(marker) + 1])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    study = make_sample_study(seed=0)
    return write_sample_study(study, tmp_path_factory.mktemp("sample"))


@pytest.fixture
def fitted(make_napari_viewer, qtbot, files):
    from napari_mor._napari._delta_widget import DeltaWidget
    from napari_mor._napari._fit_widget import MASK_ROIS, FitWidget

    viewer = make_napari_viewer()
    for role in ("pet", "labels"):
        viewer.open(str(files[role]), plugin="napari-mor")
    fit = open_dock(viewer, "Kinetic fit", FitWidget)
    fit.set_model("mrtm2")
    fit.set_window_mode("preset")
    fit.set_mask(MASK_ROIS)
    fit.fit_maps_button.click()
    with qtbot.waitSignal(fit.worker.finished, timeout=180_000):
        pass
    delta = open_dock(viewer, "Delta-BP", DeltaWidget)
    return viewer, fit, delta


def test_fit_dock_and_its_command_give_the_same_maps_and_sidecars(fitted, tmp_path):
    _viewer, fit, _delta = fitted
    argv = _command(fit, "# BP_ND maps (OUT_<condition>.nii.gz with two conditions):")
    assert argv[:2] == ["napari-mor", "fit"]
    argv[argv.index("--out") + 1] = str(tmp_path / "OUT.nii.gz")
    assert main(argv[1:]) == 0
    for condition, layer in fit.map_layers.items():
        path = tmp_path / f"OUT_{condition}.nii.gz"
        np.testing.assert_allclose(
            load_volume(path, keep_nan=True).data,
            np.asarray(layer.data),
            rtol=1e-5,
            atol=1e-6,
            equal_nan=True,
        )
        cli = _comparable(_sidecar(path))
        dock = _comparable({**layer.metadata["provenance"], "Quantity": "bp_nd"})
        assert cli == dock, condition
        assert cli["K2PrimePerMin"] > 0 and cli["K2PrimeSource"].startswith(
            "FRTM profile"
        )


def test_delta_dock_and_napari_mor_delta_agree(fitted, tmp_path):
    _viewer, fit, delta = fitted
    saved = fit.save_maps(tmp_path, stem="bp")
    delta.set_layers(*fit.map_layers.values())
    delta.compute_button.click()
    argv = shlex.split(delta.cli_text())
    assert argv[2:4] == [str(p) for p in saved]
    argv[argv.index("--out") + 1] = str(tmp_path / "delta.nii.gz")
    argv[argv.index("--percent") + 1] = str(tmp_path / "pct.nii.gz")
    assert main(argv[1:]) == 0
    np.testing.assert_allclose(
        load_volume(tmp_path / "delta.nii.gz", keep_nan=True).data,
        delta.delta,
        atol=1e-6,
        equal_nan=True,
    )
    written = delta.save_maps(tmp_path / "dock_delta.nii.gz")
    cli = _comparable(_sidecar(tmp_path / "delta.nii.gz"))
    dock = _comparable(_sidecar(written[0]))
    assert cli == dock
    assert cli["Model"] == "mrtm2" and len(cli["InputFiles"]) == 2
