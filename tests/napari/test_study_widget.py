"""The Study dock inside a real (headless) napari viewer."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from napari_mor._napari import _dock as dock_helpers
from napari_mor._napari import study as study_package
from napari_mor._napari._study_widget import StudyWidget
from napari_mor.io import FrameTiming, load_labels, load_pet, write_frames_tsv
from napari_mor.rois import summed_image

THALAMUS_WORLD_MM = (0.0, -16.0, 7.0)


def _notifying_modules():
    """The modules the Study dock shows notifications from.

    Its sections (``napari_mor._napari.study.*``) and the shared error
    decorator ``_dock.notify_errors``, through which every error goes.
    """
    modules = [dock_helpers]
    for info in pkgutil.iter_modules(study_package.__path__):
        modules.append(importlib.import_module(f"{study_package.__name__}.{info.name}"))
    return modules


@pytest.fixture
def messages(monkeypatch):
    """Notifications the dock shows, by kind."""
    shown = {"error": [], "warning": [], "info": []}
    for kind in shown:
        for module in _notifying_modules():
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(
                    module, f"show_{kind}", lambda msg, k=kind: shown[k].append(msg)
                )
    return shown


def _open_dock(viewer):
    """The Study dock as napari makes it, through the plugin manifest."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "Study")
    assert isinstance(widget, StudyWidget)
    return widget


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    return viewer, _open_dock(viewer)


def _bids_subject(sample_files, root, subject, sidecar=True):
    pet = root / subject / "pet" / f"{subject}_task-rejection_pet.nii.gz"
    t1w = root / subject / "anat" / f"{subject}_T1w.nii.gz"
    pet.parent.mkdir(parents=True)
    t1w.parent.mkdir(parents=True)
    shutil.copy(sample_files["pet"], pet)
    if sidecar:
        shutil.copy(
            sample_files["pet"].with_name("sample_pet.json"),
            pet.parent / f"{subject}_task-rejection_pet.json",
        )
    shutil.copy(sample_files["mr"], t1w)
    return pet, t1w


def _edit_cell(widget, row, column, text):
    widget.table.item(row, column).setText(text)  # emits itemChanged as a user edit


def test_dock_loads_pet_and_mr_aligned(dock, sample_files, messages):
    viewer, widget = dock
    widget.load_subject(sample_files["pet"], sample_files["mr"])
    assert [layer.name for layer in viewer.layers] == ["sample_T1w", "sample_pet"]
    pet = widget.pet_layer
    truth = load_pet(sample_files["pet"])
    np.testing.assert_allclose(pet.affine.affine_matrix[1:, 1:], truth.affine)
    assert pet.affine.affine_matrix[0, 0] == 1.0  # time axis untouched
    assert pet.metadata["frame_start_s"] == truth.timing.frame_start_s.tolist()
    assert widget.table.rowCount() == 28
    assert widget.table.item(27, 4).text() == "challenge"
    # default windows 20-45 / 60-90 min: the first frames belong to none
    assert widget.table.item(0, 4).text() == ""
    assert widget.table.item(14, 4).text() == "baseline"  # 20-25 min
    assert "kBq/mL" in widget.info_label.text()
    assert "decay corrected" in widget.info_label.text()
    assert viewer.dims.axis_labels[0] == "frame"
    assert viewer.dims.order == (0, 3, 2, 1)  # axial first view: rows y, columns x
    assert "neurological" in viewer.canvas.overlays["text"].text
    viewer.dims.set_current_step(0, 27)
    assert "87.50 min" in widget.frame_label.text()
    # the thalamus lands on high binding through the world transform
    voxel = np.round(pet.world_to_data((27.0, *THALAMUS_WORLD_MM))).astype(int)
    assert pet.data[tuple(voxel)] > 3.0
    assert messages["error"] == []


def test_dock_lists_and_loads_a_bids_dataset(dock, sample_files, tmp_path, messages):
    viewer, widget = dock
    _bids_subject(sample_files, tmp_path, "sub-01")
    pet2, t1w2 = _bids_subject(sample_files, tmp_path, "sub-02", sidecar=False)
    listing = widget.load_bids_folder(tmp_path)
    assert [widget.subject_combo.itemText(i) for i in range(3)] == [
        "all subjects",
        "sub-01",
        "sub-02",
    ]
    assert widget.pet_combo.count() == 2
    assert "(no sidecar)" in widget.pet_combo.itemText(1)
    assert len(listing.t1w_images) == 2
    widget.subject_combo.setCurrentIndex(1)  # sub-01 only
    assert widget.pet_combo.count() == 1
    assert widget.t1w_combo.currentText() == "sub-01/anat/sub-01_T1w.nii.gz"
    widget.load_selected_run()
    assert widget.pet_layer.metadata["source_path"].endswith(
        "sub-01_task-rejection_pet.nii.gz"
    )
    assert widget.mr_layer is not None and len(viewer.layers) == 2
    # choosing sub-02 (no sidecar) asks for a frames TSV; the old PET is replaced
    widget.subject_combo.setCurrentIndex(2)
    widget.load_selected_run()
    assert widget.pet_layer is None
    assert any("sidecar" in m for m in messages["warning"])
    assert widget.mr_layer.metadata["source_path"] == str(t1w2)
    # a folder without PET: an error notification, no exception
    (tmp_path / "empty").mkdir()
    widget._safe(widget.load_bids_folder, tmp_path / "empty")
    assert "No PET found" in messages["error"][-1]
    assert pet2.is_file()


def test_frame_table_edit_updates_layer_timing(dock, sample_files, messages):
    _viewer, widget = dock
    widget.load_subject(sample_files["pet"])
    meta = widget.pet_layer.metadata
    old_start = list(meta["frame_start_s"])
    _edit_cell(widget, 27, 3, "4")  # last frame 5 -> 4 min
    assert messages["error"] == []
    assert meta["frame_duration_s"][27] == pytest.approx(240.0)
    assert meta["frame_mid_min"][27] == pytest.approx(87.0)
    assert meta["frame_start_s"] == old_start  # untouched cells keep exact values
    assert widget.table.item(27, 2).text() == "89"  # end recomputed
    _edit_cell(widget, 0, 3, "0.4")  # first frame 0-0.4 min
    _edit_cell(widget, 0, 1, "0.1")  # then 0.1-0.5 min
    assert messages["error"] == []
    assert meta["frame_start_s"][0] == pytest.approx(6.0)
    assert meta["frame_duration_s"][0] == pytest.approx(24.0)
    assert meta["frame_mid_min"][0] == pytest.approx(0.3)


def test_bad_frame_edit_shows_error_and_keeps_old_values(dock, sample_files, messages):
    _viewer, widget = dock
    widget.load_subject(sample_files["pet"])
    meta = widget.pet_layer.metadata
    before = (list(meta["frame_start_s"]), list(meta["frame_duration_s"]))
    _edit_cell(widget, 5, 1, "0.2")  # frame 5 would start before frame 4: backwards
    assert "not increasing" in messages["error"][-1]
    _edit_cell(widget, 10, 3, "30")  # frame 10 would overlap frame 11
    assert "overlap" in messages["error"][-1]
    _edit_cell(widget, 3, 3, "abc")
    assert "numbers" in messages["error"][-1]
    assert (meta["frame_start_s"], meta["frame_duration_s"]) == before
    assert widget.table.item(5, 1).text() == "2.5"  # restored
    assert widget.table.item(10, 3).text() == "2"
    assert widget.timing_edited is False


def test_windows_and_mean_image(dock, sample_files, messages):
    viewer, widget = dock
    widget.load_subject(sample_files["pet"])
    widget.set_windows_min({"baseline": (5.0, 40.0), "challenge": (50.0, 90.0)})
    assert widget.table.item(0, 4).text() == ""  # mid 0.25 min, before baseline
    assert widget.table.item(19, 4).text() == ""  # mid 47.5 min, between windows
    assert widget.pet_layer.metadata["windows_min"]["baseline"] == (5.0, 40.0)
    mean_layer = widget.add_mean_image(40.0, 90.0)
    pet = load_pet(sample_files["pet"])
    expected = summed_image(pet.data, pet.timing, 40.0, 90.0)
    np.testing.assert_allclose(mean_layer.data, expected, rtol=1e-6)
    np.testing.assert_allclose(mean_layer.affine.affine_matrix, pet.affine)
    assert mean_layer.metadata["frames_used"] == list(range(18, 28))
    widget._safe(widget.add_mean_image, 200.0, 300.0)
    assert "No frame" in messages["error"][-1]
    assert len(viewer.layers) == 2


def test_cursor_tac_plots_the_clicked_voxel(dock, sample_files, messages):
    viewer, widget = dock
    widget.load_subject(sample_files["pet"], sample_files["mr"])
    pet = load_pet(sample_files["pet"])
    i, j, k = 31, 40, 26
    world = (pet.affine @ [i, j, k, 1.0])[:3]
    widget.tac_checkbox.setChecked(True)
    assert widget._on_mouse_press in viewer.mouse_drag_callbacks
    # the mouse callback with a 4D world position (time first), as napari gives it
    event = SimpleNamespace(type="mouse_press", position=(12.0, *world))
    widget._on_mouse_press(viewer, event)
    line = widget.tac_plot.line("voxel")
    np.testing.assert_allclose(line.get_ydata(), pet.data[:, i, j, k])
    np.testing.assert_allclose(line.get_xdata(), pet.timing.frame_mid_min, atol=1e-4)
    assert not np.allclose(line.get_ydata(), pet.data[:, i, j, k + 1])
    assert widget.tac_plot.line("reference") is None  # no labels yet
    assert widget.tac_plot.axes.get_xlabel() == "time (min)"
    # with the regions on the PET grid, the occipital reference TAC is added
    labels = load_labels(sample_files["labels"], sample_files["lut"])
    widget.load_labels(sample_files["labels"], sample_files["lut"])
    viewer.dims.ndisplay = 3  # the click position is used as given in 3D
    widget._on_mouse_press(viewer, SimpleNamespace(type="mouse_press", position=world))
    ref = widget.tac_plot.line("reference")
    mask = labels.data == labels.label_of("occipital_ref")
    np.testing.assert_allclose(
        ref.get_ydata(), pet.data[:, mask].mean(axis=1), rtol=1e-5
    )
    assert "occipital" in ref.get_label()
    # a drag does nothing; a click outside the PET is an error notification
    widget._on_mouse_press(viewer, SimpleNamespace(type="mouse_move", position=world))
    widget._on_mouse_press(
        viewer, SimpleNamespace(type="mouse_press", position=(0, 900.0, 0, 0))
    )
    assert "outside the PET field of view" in messages["error"][-1]
    np.testing.assert_allclose(
        widget.tac_plot.line("voxel").get_ydata(), pet.data[:, i, j, k]
    )
    widget.tac_checkbox.setChecked(False)
    assert widget._on_mouse_press not in viewer.mouse_drag_callbacks


def test_study_file_round_trip_restores_layers_and_settings(
    make_napari_viewer, sample_files, tmp_path, messages
):
    folder = tmp_path / "study"
    pet_path, t1w = _bids_subject(sample_files, folder, "sub-01")
    labels = folder / "labels.nii.gz"
    shutil.copy(sample_files["labels"], labels)
    shutil.copy(sample_files["lut"], folder / "labels.tsv")
    viewer = make_napari_viewer()
    widget = StudyWidget(viewer)
    widget.load_subject(pet_path, t1w)
    widget.load_labels(labels, folder / "labels.tsv")
    _edit_cell(widget, 27, 3, "4")
    widget.set_windows_min({"baseline": (5.0, 40.0), "challenge": (50.0, 85.0)})
    widget.mean_start_spin.setValue(30.0)
    widget.fit_settings = {"model": "logan", "t_star_min": 20.0}
    widget.save_study(folder / "study.json")
    assert str(tmp_path) not in (folder / "study.json").read_text().split("prov")[0]
    shutil.move(str(folder), str(tmp_path / "moved"))

    viewer2 = make_napari_viewer()
    widget2 = _open_dock(viewer2)
    state = widget2.load_study(tmp_path / "moved" / "study.json")
    assert messages["error"] == []
    assert [layer._type_string for layer in viewer2.layers] == [
        "image",
        "image",
        "labels",
    ]
    meta = widget2.pet_layer.metadata
    assert meta["frame_duration_s"][27] == pytest.approx(240.0)
    assert meta["frame_duration_s"][26] == pytest.approx(300.0)
    assert meta["source_path"].startswith(str((tmp_path / "moved").resolve()))
    assert widget2.windows_min() == {"baseline": (5.0, 40.0), "challenge": (50.0, 85.0)}
    assert widget2.table.item(19, 4).text() == ""  # mid 47.5 min
    assert widget2.mean_start_spin.value() == 30.0
    assert widget2.fit_settings == {"model": "logan", "t_star_min": 20.0}
    assert widget2.labels_layer.metadata["lut"][7] == "PAG"
    assert state.mr_path.name == "sub-01_T1w.nii.gz"


def test_missing_sidecar_notifies_and_frames_tsv_loads(
    dock, sample_files, tmp_path, messages
):
    viewer, widget = dock
    pet_path = tmp_path / "nosidecar_pet.nii.gz"
    shutil.copy(sample_files["pet"], pet_path)
    widget.load_subject(pet_path, sample_files["mr"])
    assert widget.pet_layer is None
    assert any("no JSON sidecar" in m for m in messages["warning"])
    assert "Load frames TSV" in widget.sidecar_label.text()
    assert [layer.name for layer in viewer.layers] == ["sample_T1w"]  # MR loaded
    viewer.add_image(np.zeros((3, 3)))  # viewer alive
    timing = load_pet(sample_files["pet"]).timing
    tsv = write_frames_tsv(timing, tmp_path / "frames.tsv")
    widget.load_frames_tsv(tsv)
    meta = widget.pet_layer.metadata
    np.testing.assert_allclose(meta["frame_start_s"], timing.frame_start_s)
    assert meta["frames_tsv_path"] == str(tsv)
    assert widget.table.rowCount() == 28
    # a TSV with the wrong number of frames: an error, viewer keeps running
    short = write_frames_tsv(
        FrameTiming(timing.frame_start_s[:5], timing.frame_duration_s[:5]),
        tmp_path / "short.tsv",
    )
    widget._safe(widget.load_frames_tsv, short)
    assert "28 frames" in messages["error"][-1]
    assert widget.pet_layer is not None and widget.pet_layer in viewer.layers


def test_dock_makes_napari_mor_the_reader_for_nifti(dock, sample_files, messages):
    """napari's builtin reader fails on .nii.gz; one click makes napari pick ours.

    ``plugin=None`` is how File > Open, drag-and-drop and ``napari x.nii.gz`` open
    files (napari's reader preference); ``viewer.open`` defaults to the builtins.
    """
    from napari.settings import get_settings

    viewer, widget = dock
    assert widget.reader_button.isVisibleTo(widget)
    with pytest.raises(Exception):  # noqa: B017 (two readers, no preference yet)
        viewer.open(str(sample_files["pet"]), plugin=None)
    widget.reader_button.click()
    assert get_settings().plugins.extension2reader["*.nii.gz"] == "napari-mor"
    assert not widget.reader_button.isVisibleTo(widget)
    assert any("napari-mor" in text for text in messages["info"])
    (layer,) = viewer.open(str(sample_files["pet"]), plugin=None)
    assert layer.data.ndim == 4 and layer.metadata["frame_start_s"]
