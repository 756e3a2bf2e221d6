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
        np.zeros((5, 5, 5), np.float32),
        name="elsewhere",
        affine=np.diag([2, 2, 2, 1]),
        metadata={"kind": "bp_map", "condition": "challenge"},
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


def _bp_layer(viewer, data, condition, name):
    return viewer.add_image(
        data,
        name=name,
        affine=np.diag([3.0, 3.0, 3.0, 1.0]),
        metadata={"kind": "bp_map", "condition": condition},
    )


def test_percent_map_opens_at_robust_symmetric_limits(make_napari_viewer, errors):
    """A +10 % drop in a receptor-rich core stays visible next to a noisy
    low-binding rim (large percent changes from noise alone)."""
    viewer = make_napari_viewer()
    rng = np.random.default_rng(1)
    shape = (30, 30, 30)
    radius = np.sqrt(((np.indices(shape) - 14.5) ** 2).sum(0))
    base = np.full(shape, np.nan, np.float32)
    base[radius < 13] = 0.15
    base[radius < 8] = 2.0
    chal = (base * 0.9 + rng.normal(0, 0.08, shape)).astype(np.float32)
    viewer.add_image(np.nan_to_num(base) * 50, name="T1w")  # not a BP map
    dock = open_dock(viewer, "Delta-BP", DeltaWidget)
    _bp_layer(viewer, base, "baseline", "BP base")
    _bp_layer(viewer, chal, "challenge", "BP chal")
    assert [dock.base_combo.itemText(i) for i in range(dock.base_combo.count())] == [
        "BP base",
        "BP chal",
    ]
    dock.threshold_spin.setValue(0.0)  # the forms keep values between docks
    dock.compute_button.click()
    assert not errors
    pct = viewer.layers[PCT_NAME]
    full = pct.metadata["unthresholded"]
    finite = np.abs(full[np.isfinite(full)])
    naive = np.percentile(finite, 99)  # what a plain percentile would give
    low, high = pct.contrast_limits
    assert low == -high and 10 < high < 25, pct.contrast_limits
    assert naive > 50 and naive > 3 * high  # the rim's noise does not set it
    assert pct.contrast_limits_range[1] >= finite.max() - 1e-3  # slider: all
    d_low, d_high = viewer.layers[DELTA_NAME].contrast_limits
    assert d_low == -d_high and 0.2 < d_high < 0.5  # 0.2 drop + noise
    # the colour range box follows the layer shown and sets its limits
    assert dock.range_spin.value() == pytest.approx(d_high, abs=1e-3)
    dock.show_combo.setCurrentText(PCT_NAME)
    assert dock.range_spin.value() == pytest.approx(high, abs=1e-3)
    dock.range_spin.setValue(30.0)
    assert pct.contrast_limits == pytest.approx((-30.0, 30.0))
    assert viewer.layers[DELTA_NAME].contrast_limits == pytest.approx((d_low, d_high))


def test_dock_opened_before_fit_maps_picks_them_up(
    make_napari_viewer, qtbot, study, errors
):
    viewer = make_napari_viewer()
    add_two_scan_study(viewer, study)
    dock = open_dock(viewer, "Delta-BP", DeltaWidget)  # before any map exists
    assert dock.base_combo.count() == dock.chal_combo.count() == 0  # no MR, no PET
    dock.compute_button.click()
    assert "Pick a baseline and a challenge" in errors[-1]
    fit = open_dock(viewer, "Kinetic fit", FitWidget)
    fit.set_pet_layer(viewer.layers["PET baseline"])
    fit.set_labels_layer(viewer.layers["regions"])
    fit.set_model("logan")
    fit.set_window_mode("two_scans")
    fit.set_mask(MASK_ROIS)
    fit.fit_maps_button.click()
    with qtbot.waitSignal(fit.worker.finished, timeout=180_000):
        pass
    choices = [dock.base_combo.itemText(i) for i in range(dock.base_combo.count())]
    assert sorted(choices) == ["BP_ND baseline [logan]", "BP_ND challenge [logan]"]
    assert dock.base_combo.currentText() == "BP_ND baseline [logan]"
    assert dock.chal_combo.currentText() == "BP_ND challenge [logan]"
    n_errors = len(errors)
    dock.compute_button.click()
    assert len(errors) == n_errors, errors[-1:]  # not "the same layer"
    assert DELTA_NAME in viewer.layers


def test_labels_are_contours_under_the_delta_map(fitted):
    viewer, _fit, dock = fitted
    regions = viewer.layers["regions"]
    assert regions.contour >= 1  # outlines: their colours are not ΔBP values
    dock.compute_button.click()
    names = [layer.name for layer in viewer.layers]
    assert names.index("regions") < names.index(PCT_NAME) < names.index(DELTA_NAME)
    assert names[-1] == DELTA_NAME  # drawn last: on top
    drawn = viewer.add_labels(  # an ROI set drawn later, then delta-BP again
        np.zeros(regions.data.shape, np.int32),
        name="drawn ROIs",
        affine=regions.affine.affine_matrix,
        metadata={"kind": "labels", "lut": {}},
    )
    assert drawn.contour >= 1  # labels added after the dock opened: outlines too
    dock.compute_button.click()
    names = [layer.name for layer in viewer.layers]
    assert names.index("drawn ROIs") < names.index(DELTA_NAME) == len(names) - 1
    mr, pet = viewer.layers["T1w"], viewer.layers["PET baseline"]
    assert mr.colormap.name == "gray" and names.index("T1w") < names.index(
        "PET baseline"
    )
    assert str(pet.blending) != "additive"  # over the MR, not washing it white


def test_click_read_out_stays_in_the_dock(fitted):
    viewer, _fit, dock = fitted
    dock.compute_button.click()
    assert dock._on_click in viewer.mouse_drag_callbacks  # registered on the canvas
    click = SimpleNamespace(position=(0.0, *THALAMUS_MM))
    for callback in list(viewer.mouse_drag_callbacks):
        callback(viewer, click)
    assert dock.readout.text().startswith("ΔBP_ND = +")
    assert "activation" in dock.readout.text()
    viewer.status = "x: 12, y: 40"  # napari's status bar on the next mouse move
    assert dock.readout.text().startswith("ΔBP_ND = +")
    dock._on_click(viewer, SimpleNamespace(position=(0.0, 500.0, 500.0, 500.0)))
    assert dock.readout.text().startswith("ΔBP_ND = +")  # outside: kept
