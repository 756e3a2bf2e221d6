"""Progress really emitted by the Group study dock's workers, and the adapter.

The statistics worker yields ``(done, total)`` per permutation block and the
batch worker ``(done, total, status)`` per subject (a callback core turned into
a generator by :func:`iter_reported_progress`): the values must increase, the
in-dock bar must move with them and end full, and napari's animated activity
indicator must stay still while the dock's worker runs.
"""

from __future__ import annotations

import threading

import pytest
from qtpy.QtGui import QMovie
from qtpy.QtWidgets import QApplication, QLabel, QStatusBar

from napari_mor._napari._group_widget import GroupWidget
from napari_mor._napari._workers import iter_reported_progress
from napari_mor.group.batch import write_cohort_maps
from napari_mor.sample import simulate_cohort


def _drain(generator):
    values = []
    while True:
        try:
            values.append(next(generator))
        except StopIteration as stop:
            return values, stop.value


# ------------------------------------------------------- the Qt-free adapter
def _counting(n, on_progress=None, fail_at=None):
    for i in range(1, n + 1):
        if i == fail_at:
            raise ValueError(f"failed at {i}")
        on_progress(i, n, f"item {i}")
    return f"{n} done"


def test_adapter_yields_every_report_in_order_and_returns_the_result():
    values, result = _drain(iter_reported_progress(_counting, 4))
    assert values == [(i, 4, f"item {i}") for i in range(1, 5)]
    assert result == "4 done"


def test_adapter_reraises_the_core_error():
    gen = iter_reported_progress(_counting, 4, fail_at=3)
    assert next(gen) == (1, 4, "item 1")
    assert next(gen) == (2, 4, "item 2")
    with pytest.raises(ValueError, match="failed at 3"):
        next(gen)


def _stepped(step, reached, ended):
    """A core reporting 5 times, one step each time the test releases it."""

    def run(on_progress=None):
        try:
            for i in range(1, 6):
                assert step.acquire(timeout=10)
                reached.append(i)
                on_progress(i, 5)
            return "finished"
        finally:
            ended.set()

    return run


@pytest.mark.parametrize("how", ["should_stop", "close"])
def test_adapter_stops_the_core_at_its_next_report(how):
    step, reached, ended, stop = threading.Semaphore(0), [], threading.Event(), []
    gen = iter_reported_progress(
        _stepped(step, reached, ended), should_stop=lambda: bool(stop)
    )
    step.release()
    assert next(gen) == (1, 5)
    if how == "should_stop":
        stop.append(True)  # Cancel pressed
        step.release()
        values, result = _drain(gen)
        assert values == [] and result is None  # stopped, nothing more yielded
    else:
        gen.close()  # the worker dropped the generator
        step.release()
    assert ended.wait(10)
    assert reached == [1, 2]  # the core stopped at its next report


# ---------------------------------------------------------- the dock workers
@pytest.fixture(scope="module")
def small_maps(tmp_path_factory):
    cohort = simulate_cohort(n_subjects=8, seed=1, voxel_mm=6.0)
    return write_cohort_maps(cohort, tmp_path_factory.mktemp("maps"))


def _status_bar_movies():
    return [
        label.movie()
        for top in QApplication.topLevelWidgets()
        for bar in top.findChildren(QStatusBar)
        for label in bar.findChildren(QLabel)
        if label.movie() is not None
    ]


def test_stats_progress_increases_and_the_bar_ends_full(
    make_napari_viewer, qtbot, small_maps, monkeypatch
):
    # one permutation per block, so the worker yields many times
    monkeypatch.setattr("napari_mor.group.permutation._BLOCK_VALUES", 1)
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "Group study")
    assert isinstance(widget, GroupWidget)
    widget.folder_edit.setText(str(small_maps))
    widget.test_combo.setCurrentText("one-sample")
    widget.perm_spin.setValue(30)
    widget.atlas_combo.setCurrentText("none")
    yielded, bar, animating = [], [], []
    widget.progress.valueChanged.connect(bar.append)
    worker = widget.run_stats()
    assert worker is not None

    def on_yielded(value):
        yielded.append(value)
        animating.extend(
            m for m in _status_bar_movies() if m.state() == QMovie.MovieState.Running
        )

    worker.yielded.connect(on_yielded)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    assert widget.result is not None
    done = [d for d, _ in yielded]
    assert len(done) >= 5  # connected after start: the first values may be gone
    assert done == sorted(done) and len(set(done)) == len(done)
    assert yielded[-1] == (30, 30)
    assert bar == sorted(bar) and bar[-1] == widget.progress.maximum()
    assert widget.progress.format() == "done"
    assert not animating  # napari's "in progress" GIF stayed still


def test_batch_progress_per_subject_and_the_bar_ends_full(
    make_napari_viewer, qtbot, tmp_path
):
    from napari_mor.sample import write_bids_cohort

    root = tmp_path / "cohort"
    write_bids_cohort(root, n_subjects=3, seed=2, pet_voxel_mm=6.0, mr_voxel_mm=6.0)
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "Group study")
    yielded, bar = [], []
    widget.batch_progress.valueChanged.connect(bar.append)
    worker = widget.run_batch(root)
    assert worker is not None
    worker.yielded.connect(yielded.append)
    qtbot.waitUntil(lambda: widget.batch_worker is None, timeout=180_000)
    assert "Batch done" in widget.batch_status.text()
    done = [value[0] for value in yielded]
    assert done == sorted(done) and done[-1] == 3 and yielded[-1][1] == 3
    assert {value[2]["subject"] for value in yielded} <= {"sub-01", "sub-02", "sub-03"}
    assert bar == sorted(bar) and bar[-1] == widget.batch_progress.maximum()
    assert widget.folder_edit.text() == str(root / "derivatives" / "napari-mor")
