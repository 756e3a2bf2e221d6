"""The Group study dock: run statistics in a worker, table, go-to-peak, scatter."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mor._napari._group_widget import GroupWidget
from napari_mor.group.batch import write_cohort_maps
from napari_mor.sample import simulate_cohort


@pytest.fixture(scope="module")
def maps_folder(tmp_path_factory):
    cohort = simulate_cohort(n_subjects=12, seed=3, voxel_mm=5.0)
    return write_cohort_maps(cohort, tmp_path_factory.mktemp("group_maps")), cohort


def _run(widget, qtbot):
    worker = widget.run_stats()
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    qtbot.waitUntil(lambda: widget.result is not None, timeout=5000)


def test_group_widget_runs_and_goes_to_peak(make_napari_viewer, qtbot, maps_folder):
    folder, cohort = maps_folder
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "Group study")
    assert isinstance(widget, GroupWidget)
    widget.folder_edit.setText(str(folder))
    widget.test_combo.setCurrentText("pearson")
    widget.perm_spin.setValue(100)
    widget.atlas_combo.setCurrentText("none")
    _run(widget, qtbot)
    t_layer = viewer.layers["t + (p<0.001)"]
    np.testing.assert_allclose(t_layer.affine.affine_matrix, cohort.affine)
    assert t_layer.metadata["settings"]["test"] == "pearson"
    assert widget.progress.value() == widget.progress.maximum()  # bar at the end
    assert widget.table.rowCount() == len(widget.result.clusters) > 0
    regions = [widget.table.item(r, 10).text() for r in range(widget.table.rowCount())]
    row = next(i for i, name in enumerate(regions) if name.startswith("amygdala"))
    widget.select_cluster(row)
    peak = [
        widget.result.clusters[row][k] for k in ("peak_x_mm", "peak_y_mm", "peak_z_mm")
    ]
    np.testing.assert_allclose(viewer.dims.point[-3:], peak, atol=5.0)
    assert widget.plot.x.size == 12
    r = np.corrcoef(widget.plot.x, widget.plot.y)[0, 1]
    assert r > 0.5  # planted positive correlation with resiliency
    # ROI scatter: sgACC (trait region) vs pgACC (no effect)
    assert widget.roi_combo.count() == len(cohort.labels.lut)
    widget.select_roi("sgACC")
    assert "sgACC" in widget.plot.title
    assert np.corrcoef(widget.plot.x, widget.plot.y)[0, 1] > 0.5
    pg = cohort.labels.data == cohort.labels.label_of("pgACC")
    expected = cohort.delta_bp[:, pg].mean(axis=1)
    widget.select_roi("pgACC")
    np.testing.assert_allclose(widget.plot.y, expected, rtol=1e-5)


def test_group_widget_error_keeps_viewer(make_napari_viewer, tmp_path, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "Group study")
    assert isinstance(widget, GroupWidget)
    widget.folder_edit.setText(str(tmp_path))
    assert widget.run_stats() is None  # no sub-* folders -> show_error
    widget.load_results()  # no group.json -> show_error
    assert widget.result is None and len(viewer.layers) == 0


def test_group_widget_runs_the_cohort_batch(make_napari_viewer, qtbot, tmp_path):
    """BIDS cohort -> per-subject maps in a worker; the maps folder is then used."""
    from napari_mor.sample import write_bids_cohort

    root = tmp_path / "cohort"
    write_bids_cohort(root, n_subjects=2, seed=3, pet_voxel_mm=6.0, mr_voxel_mm=6.0)
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "Group study")
    widget.cohort_edit.setText(str(root))
    worker = widget.run_batch()
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: "Batch done" in widget.batch_status.text(), timeout=5000)
    assert "2 computed" in widget.batch_status.text()
    out = root / "derivatives" / "napari-mor"
    assert widget.folder_edit.text() == str(out)
    for sub in ("sub-01", "sub-02"):
        assert (out / sub).is_dir() and any((out / sub).glob("*delta*.nii.gz"))
    assert widget.batch_progress.value() == widget.batch_progress.maximum()
    # A folder that is not a cohort: a notification, nothing started.
    assert widget.run_batch(tmp_path / "empty") is None


def test_group_widget_pairs_sessions_named_in_the_dock(
    make_napari_viewer, qtbot, tmp_path
):
    """Sessions whose names do not say which is which: without the dock's session
    boxes every subject fails with the reason; with them, two-scan maps."""
    import json

    from napari_mor.sample import write_bids_cohort

    root = tmp_path / "cohort"
    write_bids_cohort(
        root,
        n_subjects=2,
        seed=3,
        pet_voxel_mm=8.0,
        mr_voxel_mm=8.0,
        sessions=2,
        session_names=("01", "02"),
    )
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "Group study")
    widget.cohort_edit.setText(str(root))
    worker = widget.run_batch()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: "Batch done" in widget.batch_status.text(), timeout=5000)
    assert "2 failed" in widget.batch_status.text()
    widget.batch.baseline_session_edit.setText("01")
    widget.batch.challenge_session_edit.setText("02")
    worker = widget.run_batch()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: "2 computed" in widget.batch_status.text(), timeout=5000)
    sidecar = (
        root / "derivatives" / "napari-mor" / "sub-01" / "sub-01_desc-delta_bpnd.json"
    )
    assert json.loads(sidecar.read_text())["TwoScans"] is True
