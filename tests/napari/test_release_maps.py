"""lp-ntPET maps from the Kinetic fit dock reach the Delta-BP dock as two BP maps."""

from __future__ import annotations

import numpy as np
from _docks import open_dock
from napari.layers import Layer

from napari_mor._napari._fit_widget import MASK_ROIS, FitWidget
from napari_mor._napari._layers import labels_layer_data, pet_layer_data
from napari_mor._napari.fit import dock as dock_module
from napari_mor.sample import make_sample_study


def test_release_maps_are_a_baseline_and_a_challenge_map(
    make_napari_viewer, qtbot, monkeypatch
):
    study = make_sample_study(seed=0, separate_scans=False, mr_voxel_mm=3.0)
    viewer = make_napari_viewer()
    for data in (
        pet_layer_data(study.pet, "PET"),
        labels_layer_data(study.labels, "regions"),
    ):
        viewer.add_layer(Layer.create(*data))
    widget = open_dock(viewer, "Kinetic fit", FitWidget)
    shown = []
    monkeypatch.setattr(dock_module, "show_warning", shown.append)
    widget.model_form["model"].value = "lpntpet"
    widget.set_mask(MASK_ROIS)
    worker = widget.fit_maps()
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    assert any("Voxelwise lp-ntPET" in text for text in shown)  # never silent
    base = viewer.layers["BP_ND baseline [lpntpet]"]
    chal = viewer.layers["BP_ND challenge [lpntpet]"]
    result = widget.map_results["scan"]
    np.testing.assert_array_equal(base.data, result.maps["bp_nd"])
    np.testing.assert_array_equal(chal.data, result.maps["bp_nd_challenge"])
    for layer, condition in ((base, "baseline"), (chal, "challenge")):
        assert layer.metadata["kind"] == "bp_map"
        assert layer.metadata["provenance"]["Condition"] == condition
        assert layer.metadata["provenance"]["Model"] == "lpntpet"
        warnings = layer.metadata["provenance"]["Warnings"]
        assert any("Voxelwise lp-ntPET" in w for w in warnings)
