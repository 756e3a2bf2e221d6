"""Live re-fit in the Kinetic fit dock: t* / window sliders and paint strokes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _docks import add_two_scan_study, open_dock

from napari_mor._napari._fit_widget import FitWidget
from napari_mor._napari.fit.live_box import LIVE_DEBOUNCE_MS, TICKS_PER_MIN
from napari_mor._napari.fit.request import fit_data_from_layers
from napari_mor.sample import make_sample_study
from napari_mor.workflows.fit import fit_rois, fit_table_rows

WAIT_MS = 10_000


@pytest.fixture(scope="module")
def study():
    return make_sample_study(seed=0, separate_scans=True, mr_voxel_mm=3.0)


@pytest.fixture
def dock(make_napari_viewer, study):
    viewer = make_napari_viewer()
    add_two_scan_study(viewer, study)
    widget = open_dock(viewer, "Kinetic fit", FitWidget)
    widget.set_pet_layer(viewer.layers["PET baseline"])
    widget.set_labels_layer(viewer.layers["regions"])
    widget.set_model("logan")
    widget.set_window_mode("preset")
    return viewer, widget


def _column(table, header: str) -> list[str]:
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    c = headers.index(header)
    return [table.item(r, c).text() for r in range(table.rowCount())]


def _expected_bp(widget, request) -> list[str]:
    """BP_ND column of a fresh workflow fit, in the table's row order."""
    result = fit_rois(request, fit_data_from_layers(widget.layers_box, request))
    rows = {(r["label"], r["condition"]): r for r in fit_table_rows(result)}
    order = sorted(
        rows,
        key=lambda k: (result.labels.index(k[0]), list(result.fits).index(k[1])),
    )
    return [f"{rows[k]['BP_ND']:.3f}" for k in order]


def test_t_star_slider_refits_after_the_debounce(dock, qtbot):
    _viewer, widget = dock
    widget.fit_rois_button.click()
    first_request = widget.inputs
    before = _column(widget.table, "BP_ND")
    assert widget.live_box.live_check.isChecked()
    slider = widget.live_box.t_star_slider
    assert slider.maximum() == 90 * TICKS_PER_MIN  # the sample's scan end
    slider.setValue(30 * TICKS_PER_MIN)  # as a drag lands
    assert widget.t_star_spin.value() == 30.0  # the spin box follows
    assert not widget.t_star_auto.isChecked()
    assert _column(widget.table, "t* (min)")[0] != "30.0"  # not yet: debounced
    qtbot.waitUntil(lambda: widget.n_live_refits >= 1, timeout=WAIT_MS)
    assert set(_column(widget.table, "t* (min)")) == {"30.0"}
    expected = _expected_bp(widget, replace(first_request, t_star_min=30.0))
    assert _column(widget.table, "BP_ND") == expected
    assert expected != before  # the change is visible
    legend = list(widget.logan_plot.curves())
    assert any("t* = 30 min" in text for text in legend), legend  # plots follow
    widget.t_star_spin.setValue(40.0)  # the slider follows the spin box
    assert slider.value() == 40 * TICKS_PER_MIN


def test_window_slider_makes_custom_windows_and_refits(dock, qtbot):
    _viewer, widget = dock
    widget.fit_rois()
    start = widget.live_box.window_sliders["challenge"][0]
    with qtbot.waitSignal(widget.roi_fit_done, timeout=WAIT_MS) as signal:
        start.setValue(65 * TICKS_PER_MIN)
    assert signal.args == [True]
    assert widget.window_mode_combo.currentData() == "custom"
    assert widget.window_spins["challenge"][0].value() == 65.0
    windows = dict(
        zip(("baseline", "challenge"), widget.inputs.windows_min, strict=True)
    )
    assert windows["challenge"][0] == 65.0
    assert _column(widget.table, "BP_ND") == _expected_bp(widget, widget.inputs)


def test_several_changes_make_one_refit_and_none_before_fit_rois(dock, qtbot):
    _viewer, widget = dock
    slider = widget.live_box.t_star_slider
    slider.setValue(25 * TICKS_PER_MIN)
    qtbot.wait(3 * LIVE_DEBOUNCE_MS)
    assert widget.n_live_refits == 0 and widget.table.rowCount() == 0  # not fitted
    widget.fit_rois()
    for minutes in (26, 27, 28, 29):  # a drag: one fit after the last step
        slider.setValue(minutes * TICKS_PER_MIN)
    qtbot.waitUntil(lambda: widget.n_live_refits >= 1, timeout=WAIT_MS)
    qtbot.wait(3 * LIVE_DEBOUNCE_MS)
    assert widget.n_live_refits == 1
    assert set(_column(widget.table, "t* (min)")) == {"29.0"}
    widget.live_box.live_check.setChecked(False)  # live off: nothing re-fits
    slider.setValue(35 * TICKS_PER_MIN)
    qtbot.wait(3 * LIVE_DEBOUNCE_MS)
    assert widget.n_live_refits == 1
    assert set(_column(widget.table, "t* (min)")) == {"29.0"}


def test_painting_the_roi_set_updates_bp_nd(dock, qtbot, study):
    viewer, widget = dock
    widget.set_t_star(20.0)
    widget.fit_rois()
    before = _column(widget.table, "BP_ND")
    layer = viewer.layers["regions"]
    with qtbot.waitSignal(widget.roi_fit_done, timeout=WAIT_MS):
        layer.data = np.asarray(layer.data).copy()  # keep the fixture unpainted
    assert _column(widget.table, "BP_ND") == before  # same voxels, same fit
    thalamus = 6
    # grow the thalamus into background voxels next to the reference
    index = np.argwhere(np.asarray(layer.data) == 1)[:40]
    with qtbot.waitSignal(widget.roi_fit_done, timeout=WAIT_MS):
        layer.selected_label = thalamus
        layer.brush_size = 1
        for voxel in index:
            layer.paint(tuple(int(v) for v in voxel), thalamus, refresh=False)
        layer.refresh()
    assert np.sum(np.asarray(layer.data) == thalamus) > np.sum(
        study.labels.data == thalamus
    )
    after = _column(widget.table, "BP_ND")
    assert after != before
    assert after == _expected_bp(widget, widget.inputs)


def _mouse(plot, name: str, x_data: float, y_data: float, button=1) -> None:
    """A matplotlib mouse event at data coordinates, through the canvas."""
    from matplotlib.backend_bases import MouseEvent

    x_px, y_px = plot.axes.transData.transform((x_data, y_data))
    MouseEvent(name, plot.canvas, x_px, y_px, button=button)._process()


def test_dragging_the_t_star_line_on_the_logan_plot_refits(dock, qtbot):
    from napari_mor._napari._fit_plots import t_star_at_logan_x
    from napari_mor.workflows.fit import logan_x_at_t_star

    _viewer, widget = dock
    widget.set_t_star(20.0)
    widget.fit_rois()
    plot = widget.logan_plot
    assert widget.plot_tabs.currentWidget() is plot
    fit = plot.fits["baseline"]
    timing = plot.tacs["baseline"].timing
    x_from = logan_x_at_t_star(fit, timing)
    x_to = float(np.interp(30.0, timing.frame_mid_min, fit.x))  # 30 min
    assert t_star_at_logan_x(fit, timing, x_from) == pytest.approx(20.0)
    y_mid = float(np.mean(plot.axes.get_ylim()))
    _mouse(plot, "button_press_event", x_from + 1e-3, y_mid)  # grab the line
    _mouse(plot, "motion_notify_event", (x_from + x_to) / 2, y_mid)
    _mouse(plot, "button_release_event", x_to, y_mid)
    assert widget.t_star_spin.value() == 30.0
    qtbot.waitUntil(lambda: widget.n_live_refits >= 1, timeout=WAIT_MS)
    assert set(_column(widget.table, "t* (min)")) == {"30.0"}
    before = widget.n_live_refits
    far = x_to + 0.3 * (plot.axes.get_xlim()[1] - x_to)  # a press off the line
    _mouse(plot, "button_press_event", far, y_mid)
    _mouse(plot, "button_release_event", far + 1.0, y_mid)
    qtbot.wait(3 * LIVE_DEBOUNCE_MS)
    assert widget.t_star_spin.value() == 30.0 and widget.n_live_refits == before


def test_incomplete_live_inputs_wait_in_the_status_line(dock, qtbot, monkeypatch):
    """t* past the window's frames: no notification, the old table stays."""
    from napari_mor._napari import _dock

    shown = []
    monkeypatch.setattr(_dock, "show_error", shown.append)
    _viewer, widget = dock
    widget.fit_rois()
    before = _column(widget.table, "BP_ND")
    widget.live_box.t_star_slider.setValue(40 * TICKS_PER_MIN)  # 20-45 min window
    qtbot.waitUntil(
        lambda: widget.status_label.text().startswith("Live re-fit waiting"),
        timeout=WAIT_MS,
    )
    assert "at least 3" in widget.status_label.text()
    assert not shown and widget.n_live_refits == 0
    assert _column(widget.table, "BP_ND") == before
    widget.live_box.t_star_slider.setValue(30 * TICKS_PER_MIN)  # back: fits again
    qtbot.waitUntil(lambda: widget.n_live_refits == 1, timeout=WAIT_MS)
    assert widget.status_label.text().startswith("live re-fit, logan")
