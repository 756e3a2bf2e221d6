"""The "Delta-BP" dock: maps from the fit dock's layers, overlay, table, status."""

from __future__ import annotations

import json
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from _docks import add_two_scan_study, open_dock

from napari_mor._napari import _dock
from napari_mor._napari._delta_widget import (
    DELTA_NAME,
    PCT_NAME,
    SIGN_CONVENTION,
    DeltaWidget,
)
from napari_mor._napari._fit_widget import MASK_ROIS, FitWidget
from napari_mor._napari.delta.display import DisplayInputs
from napari_mor._napari.delta.inputs import DeltaInputs
from napari_mor.defaults import MIN_BP_BASE
from napari_mor.sample import make_sample_study

THALAMUS_MM = (0.0, -16.0, 7.0)


@pytest.fixture(scope="module")
def study():
    return make_sample_study(seed=0, separate_scans=True, mr_voxel_mm=3.0)


@pytest.fixture
def errors(monkeypatch):
    shown = []
    monkeypatch.setattr(_dock, "show_error", shown.append)
    return shown


@pytest.fixture
def fitted(make_napari_viewer, qtbot, study):
    """Viewer with the sample (two scans), BP_ND maps from the fit dock.

    Shown (under Xvfb) so that screenshots render the canvas.
    """
    viewer = make_napari_viewer(show=True)
    add_two_scan_study(viewer, study)
    fit = open_dock(viewer, "Kinetic fit", FitWidget)
    fit.set_pet_layer(viewer.layers["PET baseline"])
    fit.set_labels_layer(viewer.layers["regions"])
    fit.set_model("logan")
    fit.set_window_mode("two_scans")
    fit.set_mask(MASK_ROIS)  # ROI voxels: a quick voxelwise run
    fit.fit_maps_button.click()  # as a user does (Qt passes `checked`)
    worker = fit.worker
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    delta = open_dock(viewer, "Delta-BP", DeltaWidget)
    return viewer, fit, delta


def test_delta_from_fit_dock_layers_recovers_the_pattern(fitted, study):
    viewer, fit, dock = fitted
    # the dock picks the fit dock's two layers by condition
    assert dock.base_combo.currentText() == "BP_ND baseline [logan]"
    assert dock.chal_combo.currentText() == "BP_ND challenge [logan]"
    dock.labels_combo.setCurrentText("regions")
    dock.compute_button.click()  # as a user does (Qt passes `checked`)
    base = viewer.layers["BP_ND baseline [logan]"].data
    chal = viewer.layers["BP_ND challenge [logan]"].data
    layer = viewer.layers[DELTA_NAME]
    np.testing.assert_allclose(layer.data, base - chal, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(
        layer.affine.affine_matrix, fit.map_layers["baseline"].affine.affine_matrix
    )
    np.testing.assert_allclose(layer.affine.affine_matrix, study.pet.affine)
    low, high = layer.contrast_limits
    assert low == -high and high > 0
    assert layer.metadata["sign_convention"] == SIGN_CONVENTION
    assert "Positive" in dock.legend.text() and "activation" in dock.legend.text()
    pct = viewer.layers[PCT_NAME]
    assert not pct.visible and layer.visible
    assert viewer.layers.selection.active is layer
    rows = {r["name"]: r for r in dock.rows}
    for name, truth in study.truth["regions"].items():
        if name == "occipital_ref":
            continue
        assert rows[name]["pct_delta_bp_nd"] == pytest.approx(
            truth["drop_pct"], abs=4.0
        ), name
    assert rows["PAG"]["delta_bp_nd"] > 0  # sign: drop in BP = positive delta
    assert dock.table.rowCount() == 11


def test_threshold_opacity_and_unthresholded_metadata(fitted):
    viewer, _fit, dock = fitted
    dock.compute()
    layer = viewer.layers[DELTA_NAME]
    full = layer.metadata["unthresholded"]
    dock.threshold_spin.setValue(0.2)
    hidden = np.abs(full) < 0.2
    assert np.isnan(layer.data[hidden]).all()
    np.testing.assert_array_equal(layer.data[~hidden], full[~hidden])
    assert np.isnan(viewer.layers[PCT_NAME].data[hidden]).all()
    assert layer.metadata["unthresholded"] is full  # kept whole
    dock.opacity_slider.setValue(35)
    assert layer.opacity == pytest.approx(0.35)
    dock.show_combo.setCurrentText(PCT_NAME)
    assert viewer.layers[PCT_NAME].visible and not layer.visible
    assert dock.shown_layer().name == PCT_NAME


def test_click_writes_value_to_status_bar(fitted):
    viewer, _fit, dock = fitted
    dock.compute()
    dock._on_click(viewer, SimpleNamespace(position=(0.0, *THALAMUS_MM)))
    assert viewer.status.startswith("ΔBP_ND = +")
    assert "activation" in viewer.status


def test_overlay_screenshot_shows_diverging_colours(fitted):
    viewer, _fit, dock = fitted
    for name in ("PET baseline", "PET challenge", "regions"):
        viewer.layers[name].visible = False
    viewer.dims.set_point(1, 0.0)  # midline sagittal slice: thalamus and PAG
    before = np.asarray(viewer.screenshot(canvas_only=True))
    dock.compute()
    dock.threshold_spin.setValue(0.15)
    after = np.asarray(viewer.screenshot(canvas_only=True))
    assert after.std() > 0

    def red(img):
        rgb = img[..., :3].astype(int)
        return int(((rgb[..., 0] > rgb[..., 1] + 60) & (rgb[..., 0] > 120)).sum())

    assert red(after) > red(before) + 20  # activation (red) over the grey MR


def test_save_maps_and_table_and_command(fitted, tmp_path):
    _viewer, fit, dock = fitted
    fit.save_maps(tmp_path)
    dock._update_cli()
    assert str(tmp_path / "bp_nd_baseline.nii.gz") in dock.cli_text()
    dock.labels_combo.setCurrentText("regions")
    dock.compute()
    dock.threshold_spin.setValue(0.3)
    written = dock.save_maps(tmp_path / "delta.nii.gz", tmp_path / "pct.nii.gz")
    assert len(written) == 2
    saved = np.asarray(nib.load(str(written[0])).dataobj)
    np.testing.assert_allclose(saved, dock.delta, equal_nan=True)  # unthresholded
    sidecar = json.loads((tmp_path / "delta.json").read_text())
    assert sidecar["Quantity"] == "delta_bp_nd"
    assert sidecar["Baseline"]["Model"] == "logan"
    table = dock.save_table(tmp_path / "delta_rois.tsv")
    assert table.read_text().splitlines()[0].startswith("name\tlabel\tn_voxels")


def test_errors_notify(fitted, errors):
    viewer, _fit, dock = fitted
    dock.chal_combo.setCurrentText(dock.base_combo.currentText())
    assert dock.compute() is None and "same layer" in errors[-1]
    other = viewer.add_image(
        np.zeros((5, 5, 5), np.float32), name="elsewhere", affine=np.diag([2, 2, 2, 1])
    )
    dock.chal_combo.setCurrentText(other.name)
    assert dock.compute() is None and "different affines" in errors[-1]
    assert dock.save_table(viewer and "x.tsv") is None and "No ROI table" in errors[-1]
    assert len(viewer.layers) >= 6  # viewer intact


def test_forms_give_the_request_field_and_the_display(make_napari_viewer):
    viewer = make_napari_viewer()
    dock = open_dock(viewer, "Delta-BP", DeltaWidget)
    assert DeltaInputs().min_bp_base == MIN_BP_BASE == dock.min_bp_spin.value()
    assert "--min-bp-base" not in dock.cli_text()
    dock.inputs_box.form["min_bp_base"].value = 0.25  # the magicgui form
    assert dock.inputs().min_bp_base == 0.25
    assert "--min-bp-base 0.25" in dock.cli_text()
    display = dock.display_box.values()
    assert display == DisplayInputs()
    assert (display.show, display.opacity_pct) == (DELTA_NAME, 90)
    dock.opacity_slider.setValue(35)
    dock.fade_check.setChecked(False)
    display = dock.display_box.values()
    assert (display.opacity_pct, display.fade) == (35, False)
    assert display.colormap_of().name == "mor_bwr"
