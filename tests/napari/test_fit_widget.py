"""The "Kinetic fit" dock in a headless napari viewer (sample study, two scans)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from _docks import add_two_scan_study, open_dock
from napari.layers import Layer
from qtpy.QtCore import QPoint
from qtpy.QtWidgets import QApplication, QScrollArea

from napari_mor import kinetics
from napari_mor._napari import _dock
from napari_mor._napari._fit_widget import MASK_ROIS, MASK_UPTAKE, FitWidget
from napari_mor._napari._layers import (
    labels_layer_data,
    pet_layer_data,
)
from napari_mor._napari.fit.inputs_form import ModelInputs, WindowInputs
from napari_mor.defaults import (
    DEFAULT_MODEL,
    DEFAULT_WINDOWS_MIN,
    FIT_MODELS,
    RELEASE_SHAPES,
    WEIGHTINGS,
)
from napari_mor.rois import extract_tacs
from napari_mor.sample import make_sample_study
from napari_mor.workflows.fit import FitRequest

THALAMUS = 4  # index among the target ROIs (label 6; the reference is dropped)


def _headers(table) -> list[str]:
    return [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]


@pytest.fixture(scope="module")
def study():
    """Baseline + challenge scans on the default 3 mm grid (10% planted drop)."""
    return make_sample_study(seed=0, separate_scans=True, mr_voxel_mm=3.0)


@pytest.fixture
def errors(monkeypatch):
    shown = []
    monkeypatch.setattr(_dock, "show_error", shown.append)
    return shown


@pytest.fixture
def dock(make_napari_viewer, study):
    viewer = make_napari_viewer()
    add_two_scan_study(viewer, study)
    widget = open_dock(viewer, "Kinetic fit", FitWidget)
    widget.set_pet_layer(viewer.layers["PET baseline"])
    widget.set_labels_layer(viewer.layers["regions"])
    return viewer, widget


def test_defaults_find_layers_and_occipital_reference(dock):
    _viewer, widget = dock
    assert widget.pet_combo.currentText() == "PET baseline"
    assert widget.challenge_pet_combo.currentText() == "PET challenge"
    assert widget.ref_combo.currentData() == 1  # "occipital_ref"
    for start, end in DEFAULT_WINDOWS_MIN.values():  # the preset windows
        assert f"--window {start:g} {end:g}" in widget.cli_text()


def test_reference_list_follows_lut_edits(dock):
    viewer, widget = dock
    layer = viewer.layers["regions"]
    layer.metadata = {
        **layer.metadata,
        "lut": {**layer.metadata["lut"], 1: "occ_cortex"},
    }
    widget.set_model("mrtm")
    assert widget.fit_rois() is not None
    assert widget.ref_combo.currentText() == "occ_cortex (1)"


def test_roi_fit_gives_the_core_numbers_and_plots(dock, study):
    _viewer, widget = dock
    widget.set_model("mrtm")
    widget.set_window_mode("preset")
    widget.fit_rois_button.click()  # as a user does (Qt passes `checked`)
    assert widget.table.rowCount() > 0
    fits = widget.fit_rois()
    table = extract_tacs(study.pet, study.labels)
    names = [n for n in table.names if n != "occipital_ref"]
    expected = kinetics.fit_windows(
        np.stack([table.tac(n) for n in names], axis=1),
        table.tac("occipital_ref"),
        study.pet.timing,
        "mrtm",
        DEFAULT_WINDOWS_MIN,
        names=names,
    )
    for condition in ("baseline", "challenge"):
        got = [(f.name, f.bp_nd, f.bp_nd_se) for f in fits[condition]]
        assert got == [(f.name, f.bp_nd, f.bp_nd_se) for f in expected[condition]]
    assert widget.table.rowCount() == 20  # 10 ROIs x 2 conditions
    headers = _headers(widget.table)
    assert headers[:3] == ["ROI", "BP_ND", "SE"]  # BP in view in a narrow dock
    bp_column, condition_column = headers.index("BP_ND"), headers.index("condition")
    assert widget.table.item(0, condition_column).text() == "baseline"
    assert float(widget.table.item(0, bp_column).text()) == pytest.approx(
        expected["baseline"][0].bp_nd, abs=5e-4
    )
    # clicking a row plots that ROI: the model curve is the core's fitted values
    widget.table.selectRow(2 * THALAMUS + 1)
    curves = widget.curve_plot.curves()
    fit = expected["challenge"][THALAMUS]
    _x, y = curves["mrtm fit, challenge"]
    np.testing.assert_allclose(y, fit.fitted[fit.frame_mask])
    assert widget.residual_plot.curves()  # residuals drawn
    assert "midline_thalamus" in widget.curve_plot.axes.get_title()


def test_logan_plot_has_t_star_line_per_condition(dock):
    _viewer, widget = dock
    widget.set_model("logan")
    widget.set_window_mode("two_scans")
    widget.set_t_star(20.0)
    widget.fit_rois()
    widget.select_roi(0)
    labels = list(widget.logan_plot.curves())
    assert "t* = 20 min (baseline)" in labels and "t* = 20 min (challenge)" in labels
    assert widget.plot_tabs.currentWidget() is widget.logan_plot
    assert "--t-star 20" in widget.cli_text()


def test_two_scans_recover_the_planted_drop_through_the_dock(dock, study):
    _viewer, widget = dock
    widget.set_model("logan")
    widget.set_window_mode("two_scans")
    widget.fit_rois()
    pct = {r["name"]: r["pct_delta_bp_nd"] for r in widget.delta_rows()}
    for name, truth in study.truth["regions"].items():
        if name != "occipital_ref":
            assert pct[name] == pytest.approx(truth["drop_pct"], abs=3.5), name
    assert widget.delta_table.rowCount() == 10


def test_voxelwise_maps_in_worker_aligned_with_provenance(dock, qtbot, study):
    viewer, widget = dock
    widget.set_model("logan")
    widget.set_window_mode("preset")
    widget.set_mask(MASK_ROIS)
    worker = widget.fit_maps()
    assert worker is not None
    progress = []
    worker.yielded.connect(progress.append)
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    assert widget.progress.value() == 1000
    for condition in ("baseline", "challenge"):
        layer = viewer.layers[f"BP_ND {condition} [logan]"]
        np.testing.assert_allclose(layer.affine.affine_matrix, study.pet.affine)
        assert layer.data.shape == study.pet.spatial_shape
        prov = layer.metadata["provenance"]
        assert prov["Model"] == "logan"
        assert prov["WindowMin"] == list(DEFAULT_WINDOWS_MIN[condition])
        assert prov["ReferenceRegion"] == "label 1 (occipital_ref)"
        assert np.isfinite(prov["TStarMin"]) and layer.metadata["software_version"]
        low, high = layer.contrast_limits
        assert low == 0 and 1.0 < high < 10.0
        assert np.isfinite(layer.data[study.labels.data == 6]).all()
        assert np.isnan(layer.data[study.labels.data == 0]).all()


def test_cancel_mid_way_adds_nothing(dock, qtbot, errors):
    viewer, widget = dock
    widget.set_model("mrtm")
    widget.set_window_mode("whole")
    widget.set_mask(MASK_UPTAKE)
    widget.block_size = 500  # many blocks, so the cancel lands mid-way
    n_layers = len(viewer.layers)
    worker = widget.fit_maps()
    seen = []
    worker.yielded.connect(seen.append)
    worker.yielded.connect(lambda value: widget.cancel())
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    assert seen and seen[-1][2] < seen[-1][3]  # stopped before the last block
    assert len(viewer.layers) == n_layers and not errors
    assert widget.progress.format() == "cancelled"
    assert widget.fit_maps_button.isEnabled()


def test_save_table_and_maps(dock, qtbot, tmp_path):
    _viewer, widget = dock
    widget.set_model("mrtm2")
    widget.set_window_mode("two_scans")
    widget.fit_rois()
    table = widget.save_table(tmp_path / "fits.tsv")
    lines = table.read_text().splitlines()
    assert lines[0].startswith("condition\tname\tlabel\tmodel\tBP_ND\tBP_ND_se")
    assert len(lines) == 21
    assert (tmp_path / "fits_delta.tsv").read_text().count("\n") == 11
    worker = widget.fit_maps()
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    written = widget.save_maps(tmp_path / "maps")
    assert [p.name for p in written] == [
        "bp_nd_baseline.nii.gz",
        "bp_nd_challenge.nii.gz",
    ]
    image = nib.load(str(written[0]))
    np.testing.assert_allclose(
        image.affine, widget.map_layers["baseline"].affine.affine_matrix, atol=1e-5
    )
    sidecar = json.loads((tmp_path / "maps" / "bp_nd_baseline.json").read_text())
    assert sidecar["Model"] == "mrtm2" and np.isfinite(sidecar["K2PrimePerMin"])
    assert sidecar["SoftwareVersion"] and sidecar["Condition"] == "baseline"
    # k2' "auto": the equivalent command carries the value the fits used
    assert f"--k2p {sidecar['K2PrimePerMin']:g}" in widget.cli_text()


def test_errors_notify_and_viewer_lives(dock, errors, study):
    viewer, widget = dock
    widget.set_reference(None)
    assert widget.fit_rois() is None
    assert "No reference ROI" in errors[-1]
    widget.set_reference(1)
    widget.set_windows({"baseline": (0.0, 45.0), "challenge": (45.0, 120.0)})
    assert widget.fit_rois() is None and "outside the scan" in errors[-1]
    assert widget.fit_maps() is None and "outside the scan" in errors[-1]
    # a challenge scan on another grid
    cropped = pet_layer_data(study.pet_challenge, "PET cropped")
    viewer.add_layer(Layer.create(cropped[0][:, :-3], cropped[1], cropped[2]))
    widget.set_window_mode("two_scans")
    widget.set_challenge_layer(viewer.layers["PET cropped"])
    assert widget.fit_rois() is None and "same grid" in errors[-1]
    widget.set_challenge_layer(viewer.layers["PET baseline"])
    assert widget.fit_rois() is None and "same layer" in errors[-1]
    widget.set_model("srtm")
    widget.set_challenge_layer(viewer.layers["PET challenge"])
    assert widget.fit_maps() is None and "per ROI only" in errors[-1]
    # still usable
    widget.set_model("mrtm")
    assert widget.fit_rois() is not None
    viewer.add_points([[0, 0, 0, 0]])
    assert len(errors) == 6


def test_windows_from_the_study_dock_are_adopted(dock):
    viewer, widget = dock
    layer = viewer.layers["PET baseline"]
    layer.metadata = {
        **layer.metadata,
        "windows_min": {"baseline": (5.0, 40.0), "challenge": (50.0, 90.0)},
    }
    widget.pet_combo.setCurrentText("PET challenge")
    widget.set_pet_layer(layer)
    inputs = widget.collect_inputs()
    assert dict(zip(inputs.conditions, inputs.windows_min, strict=True)) == {
        "baseline": (5.0, 40.0),
        "challenge": (50.0, 90.0),
    }


def test_forms_are_dataclasses_with_the_package_defaults(qtbot):
    assert ModelInputs().model == DEFAULT_MODEL
    assert WindowInputs().windows() == DEFAULT_WINDOWS_MIN
    specs = ModelInputs.specs()
    assert [value for _text, value in specs["model"].choices] == list(FIT_MODELS)
    assert [value for _text, value in specs["weights"].choices] == list(WEIGHTINGS)
    container = ModelInputs.create_container()
    widgets = ModelInputs.widgets_of(container)
    assert ModelInputs.from_container(container) == ModelInputs()
    k2p = widgets["k2p_per_min"].native  # range, step, decimals, unit from the field
    assert (k2p.minimum(), k2p.maximum(), k2p.singleStep()) == (0.0001, 10.0, 0.01)
    assert k2p.decimals() == 4 and k2p.suffix() == " /min"
    widgets["t_star_auto"].value = False
    widgets["t_star_min"].value = 25.0
    widgets["weights"].value = "duration"
    model = ModelInputs.from_container(container)
    assert model.request_fields() == {
        "model": DEFAULT_MODEL,
        "t_star_min": 25.0,
        "k2p_per_min": None,
        "weights": "duration",
        "pvc": "none",
        "psf_fwhm_mm": None,  # no PVC: no PSF
        "challenge_onset_min": None,  # lp-ntPET only
        "denoise": "none",
        "denoise_fwhm_mm": None,
    }
    windows = WindowInputs(mode="custom", challenge_end_min=80.0)
    request = FitRequest(
        reference=1, **model.request_fields(), **windows.request_fields()
    )
    assert request.windows_min == (DEFAULT_WINDOWS_MIN["baseline"], (60.0, 80.0))
    assert request.conditions == ("baseline", "challenge")
    two = WindowInputs(mode="two_scans").request_fields()
    assert two == {"windows_min": (), "two_scans": True}
    assert WindowInputs(mode="whole").request_fields()["windows_min"] == ()
    preset = WindowInputs(mode="preset", baseline_start_min=5.0).request_fields()
    assert preset["windows_min"] == tuple(DEFAULT_WINDOWS_MIN.values())


def test_fit_rois_button_after_choosing_the_model_in_the_form(dock, study):
    _viewer, widget = dock
    model = next(m for m in ("mrtm", "srtm") if m != DEFAULT_MODEL)
    assert widget.model_form["model"].value == DEFAULT_MODEL
    widget.model_form["model"].value = model  # the magicgui combo, as a user picks
    assert widget.model_combo.currentData() == model
    assert f"--model {model}" in widget.cli_text()
    widget.fit_rois_button.click()
    assert widget.status_label.text().startswith(f"{model}:")
    assert {row["model"] for row in widget.table_rows()} == {model}
    table = extract_tacs(study.pet, study.labels)
    names = [n for n in table.names if n != "occipital_ref"]
    expected = kinetics.fit_windows(
        np.stack([table.tac(n) for n in names], axis=1),
        table.tac("occipital_ref"),
        study.pet.timing,
        model,
        DEFAULT_WINDOWS_MIN,
        names=names,
    )
    headers = _headers(widget.table)
    name_col, bp_col, condition_col = (
        headers.index(h) for h in ("ROI", "BP_ND", "condition")
    )
    assert widget.table.rowCount() == 2 * len(names)
    for r in range(widget.table.rowCount()):  # ROI order, then condition order
        fit = expected[widget.table.item(r, condition_col).text()][r // 2]
        assert widget.table.item(r, name_col).text() == fit.name
        assert float(widget.table.item(r, bp_col).text()) == pytest.approx(
            fit.bp_nd, abs=5e-4
        )


def test_default_width_shows_cancel_window_ends_and_bp(make_napari_viewer, study):
    viewer = make_napari_viewer(show=True)
    add_two_scan_study(viewer, study)
    widget = open_dock(viewer, "Kinetic fit", FitWidget)
    widget.set_labels_layer(viewer.layers["regions"])
    widget.set_window_mode("custom")
    QApplication.processEvents()
    scroll = widget.findChild(QScrollArea)
    viewport = scroll.viewport()
    assert not scroll.horizontalScrollBar().isVisible()
    spins = widget.window_spins
    for target in (widget.cancel_button, spins["baseline"][1], spins["challenge"][1]):
        left = target.mapTo(viewport, QPoint(0, 0)).x()
        assert left >= 0 and left + target.width() <= viewport.width()
        assert target.isVisible()
    assert spins["challenge"][1].isEnabled()  # custom windows: editable
    widget.set_model("mrtm")
    widget.fit_rois()
    QApplication.processEvents()
    table = widget.table
    for header in ("BP_ND", "SE"):
        column = _headers(table).index(header)
        right = table.columnViewportPosition(column) + table.columnWidth(column)
        assert 0 < right <= table.viewport().width(), header


def test_violated_model_assumption_is_a_warning_not_silent(dock, monkeypatch):
    """Ratio method in bolus+infusion windows: not at equilibrium -> warning."""
    from napari_mor._napari.fit import dock as fit_dock

    _viewer, widget = dock
    shown = []
    monkeypatch.setattr(fit_dock, "show_warning", shown.append)
    widget.set_model("ratio")
    widget.set_window_mode("preset")
    widget.fit_rois_button.click()
    assert widget.table.rowCount() > 0
    assert any("Not at equilibrium" in text for text in shown), shown


def test_reference_follows_its_name_on_a_new_roi_set(dock):
    """A new ROI set numbers regions differently: label 1 is now the PAG."""
    viewer, widget = dock
    assert widget.ref_combo.currentText() == "occipital_ref (1)"
    old = viewer.layers["regions"]
    data = np.asarray(old.data).copy()
    swapped = np.where(data == 1, 7, np.where(data == 7, 1, data))
    lut = {**old.metadata["lut"], 1: "PAG", 7: "occipital_ref"}
    viewer.add_labels(
        swapped,
        name="new set",
        affine=old.affine,
        metadata={**old.metadata, "lut": lut},
    )
    widget.set_labels_layer(viewer.layers["new set"])
    assert widget.ref_combo.currentText() == "occipital_ref (7)"
    widget.set_model("mrtm")
    fits = widget.fit_rois()
    names = [f.name for f in next(iter(fits.values()))]
    assert "occipital_ref" not in names and "PAG" in names


@pytest.mark.parametrize("dock_first", [False, True])
def test_two_scan_sample_opens_in_two_scan_mode(make_napari_viewer, dock_first):
    """Open Sample (two scans): the dock picks two scans and reads the drop."""
    viewer = make_napari_viewer()
    if dock_first:
        widget = open_dock(viewer, "Kinetic fit", FitWidget)
    viewer.open_sample("napari-mor", "carfentanil_two_scans")
    if not dock_first:
        widget = open_dock(viewer, "Kinetic fit", FitWidget)
    assert widget.window_mode_combo.currentData() == "two_scans"
    assert widget.challenge_pet_combo.currentText() == "PET challenge"
    widget.fit_rois_button.click()
    truth = viewer.layers["PET baseline"].metadata["truth"]
    for row in widget.delta_rows():
        planted = truth[row["name"]]["drop_pct"]
        assert row["pct_delta_bp_nd"] == pytest.approx(planted, abs=3.0), row


def test_partial_volume_correction_from_the_form(dock, errors):
    """GTM in the form: ROI fits corrected, the command says so; maps need RBV."""
    _viewer, widget = dock
    widget.model_form["pvc"].value = "gtm"
    widget.model_form["psf_fwhm_mm"].value = 6.0
    widget.set_window_mode("two_scans")
    widget.fit_rois_button.click()
    assert widget.table.rowCount() == 20 and not errors
    assert "--pvc gtm --psf-fwhm 6" in widget.cli_text()
    assert "# no maps:" in widget.cli_text()
    assert widget.fit_maps() is None and "rbv" in errors[-1]


@pytest.fixture
def one_scan_dock(make_napari_viewer):
    """The one-scan sample (challenge from 45 min) in the Kinetic fit dock."""
    study = make_sample_study(seed=0, separate_scans=False, mr_voxel_mm=3.0)
    viewer = make_napari_viewer()
    for data in (
        pet_layer_data(study.pet, "PET"),
        labels_layer_data(study.labels, "regions"),
    ):
        viewer.add_layer(Layer.create(*data))
    widget = open_dock(viewer, "Kinetic fit", FitWidget)
    return viewer, widget, study


def test_release_model_from_the_form_fits_the_scan_whole(one_scan_dock):
    """Pick lp-ntPET in the form: the windows section turns off, Fit ROIs fills
    the release columns with the workflow's numbers, the plot shows the release
    fit over the TAC, and the delta table holds BP_ND before/after the onset."""
    from napari_mor.kinetics.transient import fit_transient

    _viewer, widget, study = one_scan_dock
    widget.model_form["model"].value = "lpntpet"
    assert not widget.windows_box.isEnabled()
    assert widget.model_box.widgets["challenge_onset_min"].native.isEnabled()
    assert not widget.t_star_spin.isEnabled()
    assert "--model lpntpet --challenge-onset 45" in widget.cli_text()
    assert "--window" not in widget.cli_text()
    widget.fit_rois_button.click()
    headers = _headers(widget.table)
    assert headers[:4] == ["ROI", "BP_ND", "BP chal", "%ΔBP"]
    table = extract_tacs(study.pet, study.labels)
    names = [n for n in table.names if n != "occipital_ref"]
    expected = fit_transient(
        np.stack([table.tac(n) for n in names], axis=1),
        table.tac("occipital_ref"),
        study.pet.timing,
        k2p_per_min=widget.roi_result.k2p.value,
        onset_min=45.0,
        names=names,
        shapes=RELEASE_SHAPES,
    )
    pct_col = headers.index("%ΔBP")
    assert widget.table.rowCount() == len(names)
    for r, fit in enumerate(expected):
        assert widget.table.item(r, 0).text() == fit.name
        assert float(widget.table.item(r, pct_col).text()) == pytest.approx(
            fit.pct_delta_bp, abs=0.05
        )
    deltas = widget.delta_rows()
    assert [round(d["pct_delta_bp_nd"], 3) for d in deltas] == [
        round(f.pct_delta_bp, 3) for f in expected
    ]
    widget.table.selectRow(THALAMUS)
    plot = widget.plot_tabs.release_plot
    assert widget.plot_tabs.currentWidget() is plot
    curves = plot.curves()
    assert {"release fit", "no-release fit"} <= set(curves)
    np.testing.assert_allclose(
        curves["release fit"][1], expected[THALAMUS].fitted, rtol=1e-6
    )


def test_check_design_button_fills_its_table(one_scan_dock, qtbot):
    """The design check runs in a worker on the dock's settings (default windowed
    Logan) and shows, per ROI, what a no-change and a planted-drop scan read."""
    from napari_mor.workflows.design_check import check_design, design_request

    _viewer, widget, _study = one_scan_dock
    widget.design_box.n_sim_spin.setValue(3)
    worker = widget.check_design()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    result = widget.design_check
    assert result is not None and result.request.model == DEFAULT_MODEL
    table = widget.design_box.table
    assert table.rowCount() == len(result.rows) == 10
    request = widget.collect_inputs(rois_only=True)
    from napari_mor.workflows.fit import roi_tacs

    again = check_design(
        design_request(request), roi_tacs(widget.fit_data(request)), n_sim=3
    )
    for r, row in enumerate(again.rows):
        assert table.item(r, 0).text() == row["name"]
        assert float(table.item(r, 1).text()) == pytest.approx(
            row["no_change_mean_pct"], abs=0.05
        )


def test_denoise_from_the_form_reaches_the_maps_not_the_rois(dock, qtbot):
    """Choose nlm denoising: Fit ROIs is unchanged (unfiltered TACs), the maps are
    fitted on the denoised PET (less spread inside an ROI) and say so."""
    viewer, widget = dock
    widget.set_window_mode("two_scans")
    widget.set_mask(MASK_ROIS)
    before = [row["BP_ND"] for row in (widget.fit_rois() and widget.table_rows())]
    worker = widget.fit_maps()
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    plain = np.asarray(viewer.layers["BP_ND baseline [logan]"].data).copy()
    widget.model_form["denoise"].value = "nlm"
    assert "--denoise nlm --denoise-fwhm 6" in widget.cli_text()
    widget.fit_rois_button.click()
    assert [row["BP_ND"] for row in widget.table_rows()] == before
    worker = widget.fit_maps()
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    layer = viewer.layers["BP_ND baseline [logan]"]
    assert layer.metadata["provenance"]["Denoising"]["Method"] == "nlm"
    labels = viewer.layers["regions"].data
    inside = labels == 6
    assert np.nanstd(layer.data[inside]) < 0.7 * np.nanstd(plain[inside])


def test_live_sliders_follow_the_model_and_window_mode(dock):
    """t* slider off for lp-ntPET; window sliders only for preset/custom windows."""
    from napari_mor.defaults import RELEASE_MODEL

    _viewer, widget = dock
    live = widget.live_box
    widget.set_model("logan")
    widget.set_window_mode("two_scans")
    assert live.t_star_slider.isEnabled()
    assert not any(s.isEnabled() for s in live.sliders()[1:])
    widget.set_window_mode("custom")
    assert all(s.isEnabled() for s in live.sliders()[1:])
    widget.set_windows({"baseline": (10.0, 40.0), "challenge": (50.0, 80.0)})
    assert [s.value() for s in live.sliders()[1:]] == [20, 80, 100, 160]  # 0.5 min
    widget.set_model(RELEASE_MODEL)
    assert not live.t_star_slider.isEnabled()
    assert not any(s.isEnabled() for s in live.sliders()[1:])
