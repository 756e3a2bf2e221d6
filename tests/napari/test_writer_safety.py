"""Dock and plugin writers never write onto a file that is open in the viewer."""

from __future__ import annotations

import hashlib

import pytest
from _docks import open_dock

from napari_mor import MorError
from napari_mor._napari._reader import read_paths
from napari_mor._napari._writer import write_image_layer, write_labels_layer


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plugin_writer_refuses_the_layers_own_file(sample_files):
    layers = read_paths(str(sample_files["mr"])) + read_paths(
        str(sample_files["labels"])
    )
    (mr_data, mr_meta, _), (lab_data, lab_meta, _) = layers
    before = {k: _sha(sample_files[k]) for k in ("mr", "labels", "lut")}
    with pytest.raises(MorError, match="Inputs are never overwritten"):
        write_image_layer(str(sample_files["mr"]), mr_data, mr_meta)
    with pytest.raises(MorError, match="Inputs are never overwritten"):
        write_labels_layer(str(sample_files["labels"]), lab_data, lab_meta)
    assert before == {k: _sha(sample_files[k]) for k in ("mr", "labels", "lut")}


def test_fit_dock_save_maps_refuses_an_open_file(
    make_napari_viewer, qtbot, sample_files, tmp_path
):
    from napari_mor._napari._fit_widget import MASK_ROIS, FitWidget

    viewer = make_napari_viewer()
    for role in ("pet", "labels"):
        viewer.open(str(sample_files[role]), plugin="napari-mor")
    fit = open_dock(viewer, "Kinetic fit", FitWidget)
    fit.set_mask(MASK_ROIS)
    fit.fit_maps_button.click()
    with qtbot.waitSignal(fit.worker.finished, timeout=180_000):
        pass
    condition = next(iter(fit.map_layers))
    open_file = tmp_path / f"mine_{condition}.nii.gz"  # a file open in the viewer
    open_file.write_bytes(b"not to be replaced")
    viewer.layers[0].metadata["source_path"] = str(open_file)
    assert fit.save_maps(tmp_path, stem="mine") is None  # refused, notified
    assert open_file.read_bytes() == b"not to be replaced"
    assert not list(tmp_path.glob("mine_*.json"))
    written = fit.save_maps(tmp_path, stem="bp")
    assert len(written) == len(fit.map_layers)
    assert all(path.exists() for path in written)
