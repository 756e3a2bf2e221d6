"""The "ROIs" dock in a real (headless) napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor._cache import CACHE_DIR_ENV
from napari_mor._napari import _dock as dock_helpers
from napari_mor._napari import _workers as worker_helpers
from napari_mor._napari._layers import labels_layer_data, pet_layer_data
from napari_mor._napari._roi_widget import RoiWidget, TacPlotDock
from napari_mor.io import LabelImage, load_labels
from napari_mor.rois import extract_tacs, read_tacs_tsv


@pytest.fixture(autouse=True)
def atlas_cache_dir(tmp_path, monkeypatch):
    """Atlas imports cached in a temporary folder, empty at the start."""
    from napari_mor.rois import atlases

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    atlases.clear_atlas_cache()
    yield atlases
    atlases.clear_atlas_cache()


@pytest.fixture
def errors(monkeypatch):
    """Messages shown through napari's show_error by the widget.

    Every error of the dock goes through the shared error decorator
    (``_dock.notify_errors``) or, from its atlas worker, ``_workers``.
    """
    shown: list[str] = []
    original = dock_helpers.show_error

    def record(message):
        shown.append(str(message))
        original(message)

    for module in (dock_helpers, worker_helpers):
        monkeypatch.setattr(module, "show_error", record)
    return shown


def _viewer_with_pet(make_napari_viewer, study, with_regions=False):
    viewer = make_napari_viewer()
    data, kwargs, _ = pet_layer_data(study.pet, "sample PET")
    viewer.add_image(data, **kwargs)
    if with_regions:
        data, kwargs, _ = labels_layer_data(study.labels, "sample regions")
        viewer.add_labels(data, **kwargs)
    return viewer


def _dock(viewer) -> RoiWidget:
    widget = RoiWidget(viewer)
    viewer.window.add_dock_widget(widget, name="ROIs")
    return widget


def test_dock_lists_layers_and_flags_mni_space(make_napari_viewer, noise_free_study):
    viewer = _viewer_with_pet(make_napari_viewer, noise_free_study, with_regions=True)
    widget = _dock(viewer)
    assert widget.pet_layer is viewer.layers["sample PET"]
    assert widget.labels_layer is viewer.layers["sample regions"]
    assert "registration" in widget.space_label.text()  # native-space caveat shown
    rows = widget.table_rows()
    assert [r[0] for r in rows][:2] == ["occipital_ref", "ventral_striatum_L"]
    pag = next(r for r in rows if r[0] == "PAG")
    assert pag[2] == int((noise_free_study.labels.data == 7).sum())
    assert pag[3] == pytest.approx(pag[2] * 0.027, abs=1e-3)
    assert widget.reference_name() == "occipital_ref"  # default: "occipital" in name


def test_dock_opens_from_plugin_manifest(make_napari_viewer, noise_free_study):
    viewer = _viewer_with_pet(make_napari_viewer, noise_free_study)
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "ROIs")
    assert isinstance(widget, RoiWidget)
    # The injected viewer is napari's public proxy; the workflow still runs.
    widget.new_roi_set()
    widget.add_sphere((0, -30, -10), 4.5, "PAG")
    table = widget.compute_tacs()
    assert table.names == ["PAG"]


def test_painted_roi_gives_tacs_and_plot_lines(make_napari_viewer, noise_free_study):
    study = noise_free_study
    viewer = _viewer_with_pet(make_napari_viewer, study)
    widget = _dock(viewer)
    layer = widget.new_roi_set()
    assert layer.data.shape == study.pet.spatial_shape
    np.testing.assert_allclose(layer.affine.affine_matrix, study.pet.affine)
    # "Paint" two regions programmatically: the phantom's thalamus and occipital.
    painted = np.zeros(study.pet.spatial_shape, dtype=layer.data.dtype)
    painted[study.labels.data == 6] = 1
    painted[study.labels.data == 1] = 2
    layer.data = painted
    widget.rename(1, "thalamus")
    widget.rename(2, "occipital")
    assert [r[0] for r in widget.table_rows()] == ["thalamus", "occipital"]
    assert widget.reference_name() == "occipital"
    table = widget.compute_tacs()
    core = extract_tacs(
        study.pet,
        LabelImage(painted, study.pet.affine, {1: "thalamus", 2: "occipital"}),
    )
    lines = widget.plot.lines_by_region()
    assert set(lines) == {"thalamus", "occipital"}
    for name in ("thalamus", "occipital"):
        x, y = lines[name].get_data()
        np.testing.assert_allclose(x, study.pet.timing.frame_mid_min)
        np.testing.assert_allclose(y, core.tac(name))
        np.testing.assert_allclose(y, table.tac(name))
    truth = study.truth["regions"]["midline_thalamus"]["noise_free_tac_kbq_ml"]
    np.testing.assert_allclose(lines["thalamus"].get_ydata(), truth, atol=2e-5)
    ref, other = lines["occipital"], lines["thalamus"]
    assert ref.get_linestyle() == "--" and other.get_linestyle() == "-"
    assert ref.get_linewidth() > other.get_linewidth()
    assert widget.plot.axes.get_xlabel() == "time (min)"
    assert "kBq/mL" in widget.plot.axes.get_ylabel()


def test_tacs_update_after_painting(make_napari_viewer, noise_free_study, qtbot):
    study = noise_free_study
    viewer = _viewer_with_pet(make_napari_viewer, study)
    widget = _dock(viewer)
    layer = widget.new_roi_set()
    assert widget.tac_table is None
    painted = np.zeros(study.pet.spatial_shape, dtype=layer.data.dtype)
    painted[study.labels.data == 7] = 3
    layer.data = painted  # fires events.data -> debounced update
    qtbot.waitUntil(lambda: widget.tac_table is not None, timeout=5000)
    truth = study.truth["regions"]["PAG"]["noise_free_tac_kbq_ml"]
    np.testing.assert_allclose(widget.tac_table.tac("label_3"), truth, atol=2e-5)
    # Painting through the layer API (paint event) updates again.
    first = widget.tac_table
    layer.selected_label = 4
    voxel = np.argwhere(study.labels.data == 6)[0]
    layer.paint(tuple(voxel), 4)
    qtbot.waitUntil(lambda: widget.tac_table is not first, timeout=5000)
    assert "label_4" in widget.tac_table.names


def test_spheres_presets_and_table_operations(make_napari_viewer, noise_free_study):
    study = noise_free_study
    viewer = _viewer_with_pet(make_napari_viewer, study)
    widget = _dock(viewer)
    widget.new_roi_set()
    widget.preset_combo.setCurrentText("PAG")
    assert widget.sphere_name.text() == "PAG"
    assert [s.value() for s in widget.sphere_xyz] == [0.0, -30.0, -10.0]
    assert widget.sphere_radius.value() == 4.5
    widget.sphere_button.click()
    widget.preset_combo.setCurrentText("pgACC")
    widget.sphere_button.click()  # both hemispheres in one ROI
    widget.add_sphere((0, -88, 6), 10, "occipital_ref")
    rows = widget.table_rows()
    assert [r[0] for r in rows] == ["PAG", "pgACC", "occipital_ref"]
    pag_voxels = int((study.labels.data == 7).sum())
    assert rows[0][2] == pag_voxels  # the phantom's PAG is the same 4.5 mm ball
    pgacc = widget.labels_layer.data == 2
    world_x = (np.argwhere(pgacc) * 3.0 + study.pet.affine[:3, 3])[:, 0]
    assert world_x.min() < -4 and world_x.max() > 4
    # Rename through the table cell, then merge and delete through the buttons.
    widget.table.item(1, 0).setText("pgACC_bilateral")
    assert widget.labels_layer.metadata["lut"][2] == "pgACC_bilateral"
    widget.merge([1, 2], "PAG+pgACC")
    assert [r[0] for r in widget.table_rows()] == ["PAG+pgACC", "occipital_ref"]
    widget.table.clearSelection()
    widget.table.selectRow(1)
    widget.delete_button.click()
    assert [r[0] for r in widget.table_rows()] == ["PAG+pgACC"]
    assert not np.any(widget.labels_layer.data == 3)


def test_save_load_export_round_trip(make_napari_viewer, noise_free_study, tmp_path):
    study = noise_free_study
    viewer = _viewer_with_pet(make_napari_viewer, study, with_regions=True)
    widget = _dock(viewer)
    widget.compute_tacs()
    image, lut = widget.save_roi_set(tmp_path / "rois.nii.gz")
    saved = load_labels(image, lut)
    np.testing.assert_array_equal(saved.data, study.labels.data)
    assert saved.lut == study.labels.lut
    layer = widget.load_roi_set(image)
    assert widget.labels_layer is layer
    np.testing.assert_array_equal(layer.data, study.labels.data)
    np.testing.assert_allclose(layer.affine.affine_matrix, study.pet.affine)
    assert layer.metadata["lut"] == study.labels.lut
    path = widget.export_tacs(tmp_path / "tacs.tsv")
    table = read_tacs_tsv(path)
    assert table.names == [study.labels.lut[v] for v in sorted(study.labels.lut)]
    truth = study.truth["regions"]["amygdala_R"]["noise_free_tac_kbq_ml"]
    np.testing.assert_allclose(table.tac("amygdala_R"), truth, atol=1e-4)


def test_bad_inputs_notify_and_viewer_survives(
    make_napari_viewer, noise_free_study, errors
):
    viewer = make_napari_viewer()
    widget = _dock(viewer)
    assert widget.compute_tacs() is None
    assert "No dynamic PET layer" in errors[-1]
    assert widget.new_roi_set() is None
    data, kwargs, _ = pet_layer_data(noise_free_study.pet, "sample PET")
    viewer.add_image(data, **kwargs)
    widget.new_roi_set()
    widget.compute_tacs()
    assert "ROI set is empty" in errors[-1]
    widget.add_sphere((0, 0, 500), 5, "far")
    assert "outside the PET field of view" in errors[-1]
    widget.add_sphere((0, -30, -10), 4.5, "PAG")
    widget.add_sphere((0, 21, -10), 5, "pag")
    assert "already exists" in errors[-1]
    widget.rename(1, "")
    assert "cannot be empty" in errors[-1]
    assert widget.table_rows()[0][0] == "PAG"
    with pytest.raises(MorError):
        widget.set_reference("nope")
    # The viewer is still alive and usable.
    viewer.add_points(np.zeros((1, 4)))
    assert len(viewer.layers) == 3
    assert isinstance(widget.plot, TacPlotDock)


def test_atlas_import_in_dock(make_napari_viewer, noise_free_study, qtbot, errors):
    viewer = _viewer_with_pet(make_napari_viewer, noise_free_study)
    widget = _dock(viewer)
    widget.new_roi_set()
    widget.set_atlas("neuromorphometrics")
    assert "CC BY-NC" in widget.licence_label.text()
    widget.atlas_search.setText("amygdala")
    names = [widget.atlas_list.item(i).text() for i in range(widget.atlas_list.count())]
    assert names == ["Right_Amygdala", "Left_Amygdala"]
    widget.import_atlas("neuromorphometrics", ["Left_Amygdala"])
    rows = widget.table_rows()
    assert rows[0][0] == "Left_Amygdala" and rows[0][2] > 30
    # The threaded path used by the button.
    widget.atlas_list.item(0).setSelected(True)
    worker = widget.import_atlas_async("neuromorphometrics", ["Right_Amygdala"])
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: len(widget.table_rows()) == 2, timeout=5000)
    assert widget.table_rows()[1][0] == "Right_Amygdala"
    widget.import_atlas("neuromorphometrics", ["Left Amygdla"])
    assert "Close matches" in errors[-1] and "Left_Amygdala" in errors[-1]


def test_native_space_pet_takes_rois_through_registration_transforms(
    make_napari_viewer, noise_free_study, tmp_path
):
    """MNI spheres reach a native-space PET via the Registration dock's transforms."""
    from dataclasses import replace

    from napari_mor.registration import Transform, compose, save_transform

    angle = np.deg2rad(7.0)
    turn = np.eye(4)
    turn[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    shift = np.eye(4)
    shift[:3, 3] = (6.0, -4.0, 9.0)
    mni_to_mr = Transform(turn, "MNI152", "MR", "rigid")
    mr_to_pet = Transform(shift, "MR", "PET", "rigid")
    study = noise_free_study
    mni_to_pet = compose(mni_to_mr, mr_to_pet)
    native = replace(study.pet, affine=mni_to_pet.matrix @ study.pet.affine)
    viewer = make_napari_viewer()
    data, kwargs, _ = pet_layer_data(native, "native PET")
    viewer.add_image(data, **kwargs)
    # What Accept in the Registration dock leaves in layer metadata:
    viewer.add_image(
        np.zeros((4, 4, 4)),
        name="T1 in MNI",
        metadata={"transform_to_MR": mni_to_mr.to_dict()},
    )
    viewer.add_image(
        np.zeros((4, 4, 4)),
        name="PET on T1",
        metadata={"transform_to_PET": mr_to_pet.to_dict()},
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", "ROIs")
    widget.set_pet_layer(viewer.layers["native PET"])
    widget.new_roi_set()
    widget.add_sphere((0, -30, -10), 4.5, "PAG")
    assert widget.transform_label.text().startswith("MNI152 -> PET")
    np.testing.assert_array_equal(widget.labels_layer.data > 0, study.labels.data == 7)
    # The same transform from a file; clearing it goes back to "PET in MNI".
    path = save_transform(mni_to_pet, tmp_path / "mni_to_pet.txt")
    widget.set_mni_transform(None)
    assert widget.mni_transform is None and "MNI space" in widget.transform_label.text()
    widget.set_mni_transform(path)
    np.testing.assert_allclose(
        widget.mni_transform.matrix, mni_to_pet.matrix, atol=1e-6
    )


def test_gtm_corrected_tacs_undo_a_known_blur(make_napari_viewer, noise_free_study):
    """ROIs dock, GTM on: a 6 mm blurred PET gives the true regional TACs back."""
    from dataclasses import replace

    from napari_mor.pvc import blur_psf

    study = noise_free_study
    blurred = replace(study.pet, data=blur_psf(study.pet.data, study.pet.affine, 6.0))
    viewer = make_napari_viewer()
    data, kwargs, _ = pet_layer_data(blurred, "blurred PET")
    viewer.add_image(data, **kwargs)
    data, kwargs, _ = labels_layer_data(study.labels, "sample regions")
    viewer.add_labels(data, **kwargs)
    widget = _dock(viewer)
    truth = study.truth["regions"]["midline_thalamus"]["noise_free_tac_kbq_ml"]
    plain = widget.compute_tacs().tac("midline_thalamus")
    widget.gtm_check.setChecked(True)
    widget.psf_spin.setValue(6.0)
    corrected = widget.compute_tacs().tac("midline_thalamus")
    late = slice(-10, None)
    plain_err = np.abs(plain[late] / np.asarray(truth)[late] - 1).max()
    gtm_err = np.abs(corrected[late] / np.asarray(truth)[late] - 1).max()
    assert plain_err > 0.05 and gtm_err < plain_err / 2, (plain_err, gtm_err)


def test_second_atlas_import_comes_from_the_cache(
    make_napari_viewer, noise_free_study, qtbot, errors, monkeypatch, atlas_cache_dir
):
    """The button's threaded import twice: the atlas is read once, same ROIs."""
    from napari_mor._napari.rois import atlas as atlas_section

    calls = []
    real = atlas_section.load_atlas_regions

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(atlas_section, "load_atlas_regions", counting)
    viewer = _viewer_with_pet(make_napari_viewer, noise_free_study)
    widget = _dock(viewer)
    imported = []
    for set_name in ("first set", "second set", "third set"):
        if set_name == "third set":
            atlas_cache_dir.clear_atlas_cache()  # a new session: disk cache
        widget.new_roi_set(set_name)
        widget.set_atlas("harvard_oxford")
        widget.atlas_search.setText("left amygdala")
        widget.atlas_list.item(0).setSelected(True)
        assert widget.table_rows() == []
        widget.atlas_button.click()
        qtbot.waitUntil(lambda: len(widget.table_rows()) == 1, timeout=120_000)
        imported.append(np.asarray(widget.labels_layer.data).copy())
    assert calls == ["harvard_oxford"]  # decompressed once
    assert not errors
    assert imported[0].any()
    for data in imported[1:]:
        np.testing.assert_array_equal(data, imported[0])
    assert list(atlas_cache_dir.atlas_cache_dir().glob("*.npz"))
