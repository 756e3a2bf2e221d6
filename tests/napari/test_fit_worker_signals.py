"""The Kinetic fit dock's map worker: the progress it really emits.

As cellfinder's ``tests/napari/test_worker_signals.py``: record the values the
worker yields and what the dock's progress bar shows, and check them.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from _docks import add_two_scan_study, open_dock
from napari.qt.threading import create_worker

from napari_mor._napari import _workers
from napari_mor._napari._fit_widget import MASK_ROIS, FitWidget
from napari_mor._napari.fit import dock as fit_dock
from napari_mor._napari.fit.maps import drain_map_fits
from napari_mor.sample import make_sample_study
from napari_mor.workflows.fit_maps import MapProgress, plan_maps

BLOCK = 150  # voxels per block: several blocks per condition on the ROI mask


@pytest.fixture(scope="module")
def study():
    return make_sample_study(seed=0, separate_scans=True, mr_voxel_mm=3.0)


@pytest.fixture
def widget(make_napari_viewer, study):
    viewer = make_napari_viewer()
    add_two_scan_study(viewer, study)
    widget = open_dock(viewer, "Kinetic fit", FitWidget)
    widget.set_pet_layer(viewer.layers["PET baseline"])
    widget.set_labels_layer(viewer.layers["regions"])
    widget.set_model("mrtm")
    widget.set_window_mode("preset")  # two conditions on one scan: two jobs
    widget.set_mask(MASK_ROIS)
    widget.block_size = BLOCK
    return widget


def _check_fractions(emitted: list) -> None:
    assert len(emitted) > 4, "expected several blocks per condition"
    assert all(isinstance(p, MapProgress) for p in emitted)
    assert {p.condition for p in emitted} == {"baseline", "challenge"}
    fractions = [p.fraction for p in emitted]
    assert all(0.0 < f <= 1.0 for f in fractions)
    assert all(b > a for a, b in pairwise(fractions)), fractions
    assert fractions[-1] == pytest.approx(1.0)


def test_worker_yields_increasing_fractions_ending_at_one(widget, qtbot):
    """The dock's work, run in a worker connected before it starts."""
    request = widget.collect_inputs()
    plan = plan_maps(request, widget.fit_data(request))
    worker = create_worker(drain_map_fits, plan, BLOCK)
    emitted, returned = [], []
    worker.yielded.connect(emitted.append)
    worker.returned.connect(returned.append)
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        worker.start()
    _check_fractions(emitted)
    assert set(returned[0]) == {"baseline", "challenge"}
    n_voxels = plan.n_voxels
    assert [p.total for p in emitted] == [n_voxels] * len(emitted)


def test_dock_progress_bar_follows_the_worker_to_1000(widget, qtbot, monkeypatch):
    """Clicking "Fit maps": what its worker emits, and what the bar shows."""
    emitted = []

    def recording_start_worker(work, *args, on_yielded=None, **kwargs):
        def record(value):
            emitted.append(value)
            if on_yielded is not None:
                on_yielded(value)

        return _workers.start_worker(work, *args, on_yielded=record, **kwargs)

    monkeypatch.setattr(fit_dock, "start_worker", recording_start_worker)
    bar = []
    widget.progress.valueChanged.connect(bar.append)
    widget.fit_maps_button.click()
    assert widget.worker is not None and not widget.fit_maps_button.isEnabled()
    assert widget.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=180_000)
    _check_fractions(emitted)
    assert bar == sorted(bar) and bar[-1] == 1000
    assert any(0 < value < 1000 for value in bar)  # it moved, not just jumped
    assert {round(1000 * p.fraction) for p in emitted} <= {0, *bar}
    assert widget.progress.value() == 1000 and widget.progress.format() == "done"
    assert widget.fit_maps_button.isEnabled() and not widget.cancel_button.isEnabled()
    assert set(widget.map_layers) == {"baseline", "challenge"}
