"""The "Registration" dock in a real (headless) napari viewer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _docks import open_dock
from scipy.spatial.transform import Rotation

from napari_mor._napari._layers import pet_layer_data, volume_layer_data
from napari_mor._napari._registration_widget import RegistrationWidget
from napari_mor.io import FrameTiming, Volume
from napari_mor.registration import (
    Transform,
    apply_frame_transforms,
    brain_points_mm,
    mean_displacement_mm,
)
from napari_mor.sample.phantom import BRAIN_CENTER_MM

CENTER = np.asarray(BRAIN_CENTER_MM, dtype=float)


def _rigid(shift, angles_deg) -> Transform:
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    matrix[:3, 3] = CENTER - matrix[:3, :3] @ CENTER + np.asarray(shift, float)
    return Transform(matrix)


def _subset(pet, frames):
    frames = list(frames)
    timing = FrameTiming(
        pet.timing.frame_start_s[frames], pet.timing.frame_duration_s[frames]
    )
    return replace(pet, data=pet.data[frames].copy(), timing=timing)


@pytest.fixture
def errors():
    """Messages of the error notifications shown while the test runs.

    Read from napari's notification manager, so it sees every ``show_error``
    (the dock's own and :func:`start_worker`'s) whichever module calls it.
    """
    from napari.utils.notifications import NotificationSeverity, notification_manager

    shown: list[str] = []

    def record(notification) -> None:
        if notification.severity == NotificationSeverity.ERROR:
            shown.append(str(notification.message))

    notification_manager.notification_ready.connect(record)
    yield shown
    notification_manager.notification_ready.disconnect(record)


def _dock(viewer) -> RegistrationWidget:
    return open_dock(viewer, "Registration", RegistrationWidget)


def _run_and_wait(qtbot, widget):
    """Start the dock's worker and wait until its ``finished`` was handled.

    Waiting on ``widget.worker is None`` (reset by the finished handler) avoids
    missing a ``finished`` signal emitted before a waitSignal could connect.
    """
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    return worker


def test_motion_mode_adds_corrected_pet_and_trace(
    make_napari_viewer, qtbot, sample_study
):
    pet = _subset(sample_study.pet, [0, 16, 19, 25, 27])
    truth = [_rigid([0, 0, 0], [0, 0, 0])] * 3 + [_rigid([0, 0, 0], [0, 0, 0])] * 2
    truth[1] = _rigid([3.0, -2.0, 2.0], [2.0, -1.0, 1.5])
    truth[2] = _rigid([4.0, -2.0, 3.0], [2.5, -1.5, 2.0])
    moved = apply_frame_transforms(pet, [t.inverse() for t in truth])
    viewer = make_napari_viewer()
    data, kwargs, _ = pet_layer_data(moved, "moved PET")
    original = viewer.add_image(data, **kwargs)
    before = np.array(original.data, copy=True)
    widget = _dock(viewer)
    widget.set_mode("motion")
    widget.start_spin.setValue(60.0)
    assert widget.moving_combo.currentText() == "moved PET"
    progress = []
    widget.progress.valueChanged.connect(progress.append)
    _run_and_wait(qtbot, widget)
    # per-frame progress (4 frames registered, 1 early frame left alone):
    # the bar moved in steps, never back, and ended full
    assert widget.progress.value() == widget.progress.maximum()
    moved = [value for value in progress if value > 0]
    assert len(moved) >= 3 and moved == sorted(moved)
    layer = widget.result_layer
    assert layer is not None and layer.name == "moved PET motion-corrected"
    np.testing.assert_allclose(
        layer.affine.affine_matrix, original.affine.affine_matrix
    )
    assert layer.metadata["frame_start_s"] == original.metadata["frame_start_s"]
    trace = layer.metadata["motion_trace"]
    assert trace["status"][0].startswith("skipped")
    np.testing.assert_array_equal(original.data, before)  # input untouched
    # plot shows the trace computed by the core
    assert widget.trace_plot.translation_mm.shape == (5, 3)
    assert len(widget.trace_plot.axes.lines) >= 6
    result = widget.last_output.result
    points = brain_points_mm(sample_study.brain_mask.astype(float), pet.affine)
    for frame in (1, 2):
        assert (
            mean_displacement_mm(result.transforms[frame], points, truth[frame]) < 1.0
        )
    widget.accept()
    assert layer in viewer.layers
    assert len(layer.metadata["motion_transforms"]) == 5
    assert not widget.undo_button.isEnabled()


def test_pet_to_mr_overlay_then_undo(make_napari_viewer, qtbot, sample_study):
    truth = _rigid([4.0, -3.0, 3.0], [3.0, 0.0, 4.0])
    pet = _subset(sample_study.pet, range(20, 28))
    pet = replace(pet, affine=truth.matrix @ pet.affine)
    mr = sample_study.mr  # 3 mm copy of the T1 keeps the test fast
    coarse = Volume(mr.data[::2, ::2, ::2].copy(), mr.affine @ np.diag([2, 2, 2, 1.0]))
    viewer = make_napari_viewer()
    data, kwargs, _ = pet_layer_data(pet, "PET")
    pet_layer = viewer.add_image(data, **kwargs)
    data, kwargs, _ = volume_layer_data(coarse, "T1")
    mr_layer = viewer.add_image(data, **kwargs)
    widget = _dock(viewer)
    widget.set_mode("pet_to_mr")
    widget.moving_combo.setCurrentText("PET")
    widget.fixed_combo.setCurrentText("T1")
    _run_and_wait(qtbot, widget)
    layer = widget.result_layer
    assert layer is not None and layer.opacity == 0.5
    assert layer.data.shape == coarse.data.shape
    np.testing.assert_allclose(layer.affine.affine_matrix, coarse.affine)
    found = widget.last_output.result.transform
    points = brain_points_mm(coarse.data, coarse.affine)
    assert mean_displacement_mm(found, points, truth) < 1.0
    widget.undo()
    assert layer not in viewer.layers
    assert pet_layer in viewer.layers and mr_layer in viewer.layers
    assert "transform_to_PET" not in pet_layer.metadata


def test_accept_stores_transform_in_result_metadata(
    make_napari_viewer, qtbot, sample_study
):
    mr = sample_study.mr
    coarse = Volume(mr.data[::2, ::2, ::2].copy(), mr.affine @ np.diag([2, 2, 2, 1.0]))
    moved = Volume(coarse.data, _rigid([5.0, 0, 0], [0, 0, 3.0]).matrix @ coarse.affine)
    viewer = make_napari_viewer()
    for volume, name in ((coarse, "T1 template"), (moved, "T1 moved")):
        data, kwargs, _ = volume_layer_data(volume, name)
        viewer.add_image(data, **kwargs)
    widget = _dock(viewer)
    widget.set_mode("mr_to_mni")
    widget.moving_combo.setCurrentText("T1 moved")
    widget.fixed_combo.setCurrentText("T1 template")
    _run_and_wait(qtbot, widget)
    layer = widget.result_layer
    assert layer is not None
    widget.accept()
    stored = layer.metadata["transform_to_MR"]
    assert stored["fixed_space"] == "T1 template" and stored["moving_space"] == "MR"
    assert Transform.from_dict(stored).matrix.shape == (4, 4)
    assert layer in viewer.layers


def test_errors_are_notified_and_viewer_keeps_running(
    make_napari_viewer, qtbot, sample_study, errors
):
    mr = sample_study.mr
    coarse = Volume(mr.data[::2, ::2, ::2].copy(), mr.affine @ np.diag([2, 2, 2, 1.0]))
    pet = _subset(sample_study.pet, [26, 27])
    far = replace(pet, affine=_rigid([900.0, 0, 0], [0, 0, 0]).matrix @ pet.affine)
    viewer = make_napari_viewer()
    widget = _dock(viewer)
    widget.set_mode("motion")
    assert widget.run() is None  # no PET layer
    assert "No suitable moving layer" in errors[-1]
    data, kwargs, _ = volume_layer_data(coarse, "T1")
    viewer.add_image(data, **kwargs)
    data, kwargs, _ = pet_layer_data(far, "far PET")
    pet_layer = viewer.add_image(data, **kwargs)
    widget.set_mode("pet_to_mr")
    widget.moving_combo.setCurrentText("far PET")
    widget.fixed_combo.setCurrentText("T1")
    n_layers = len(viewer.layers)
    _run_and_wait(qtbot, widget)
    assert any("do not overlap" in message for message in errors)
    assert widget.result_layer is None and len(viewer.layers) == n_layers
    assert pet_layer in viewer.layers
    assert widget.run_button.isEnabled()
    widget.fixed_combo.setCurrentText("far PET")  # same layer twice
    widget.moving_combo.setCurrentText("far PET")
    if widget.fixed_combo.currentText() == "far PET":
        assert widget.run() is None
        assert "same layer" in errors[-1]


def test_cancel_leaves_nothing(make_napari_viewer, qtbot, sample_study):
    viewer = make_napari_viewer()
    data, kwargs, _ = pet_layer_data(sample_study.pet, "PET")
    viewer.add_image(data, **kwargs)
    widget = _dock(viewer)
    widget.set_mode("motion")
    assert widget.run() is not None
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=180_000)
    assert widget.result_layer is None
    assert [layer.name for layer in viewer.layers] == ["PET"]
    assert "Cancel" in widget.status_label.text()
