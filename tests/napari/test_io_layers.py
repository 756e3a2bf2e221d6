"""Plugin reader, writer and sample data inside a real (headless) napari viewer."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_mor import MorError
from napari_mor._napari._reader import classify_image_file, napari_get_reader
from napari_mor.io import load_pet

THALAMUS_WORLD_MM = (0.0, -16.0, 7.0)


def _open(viewer, path):
    layers = viewer.open(str(path), plugin="napari-mor")
    assert len(layers) == 1
    return layers[0]


def test_files_open_as_pet_mr_and_labels_aligned_in_world(
    make_napari_viewer, sample_files
):
    viewer = make_napari_viewer()
    mr = _open(viewer, sample_files["mr"])
    pet = _open(viewer, sample_files["pet"])
    labels = _open(viewer, sample_files["labels"])
    assert (mr._type_string, pet._type_string, labels._type_string) == (
        "image",
        "image",
        "labels",
    )
    assert pet.data.shape[0] == 28 and pet.ndim == 4
    assert pet.metadata["frame_mid_min"][0] == pytest.approx(0.25)
    assert pet.metadata["units"] == "kBq/mL"
    assert labels.metadata["lut"][7] == "PAG"
    assert labels.contour >= 1  # read label images are drawn as outlines
    assert mr.colormap.name == "gray" and str(pet.blending) != "additive"
    # One world point lands in the thalamus in every layer, although the grids differ
    # (3 mm PET, 1.5 mm tilted MR).
    label_voxel = np.round(labels.world_to_data(THALAMUS_WORLD_MM)).astype(int)
    assert labels.data[tuple(label_voxel)] == 6
    pet_voxel = np.round(pet.world_to_data((10.0, *THALAMUS_WORLD_MM))).astype(int)
    assert pet_voxel[0] == 10
    assert pet.data[-1][tuple(pet_voxel[1:])] > 3.0  # high binding, not background
    mr_voxel = np.round(mr.world_to_data(THALAMUS_WORLD_MM)).astype(int)
    assert abs(mr.data[tuple(mr_voxel)] - 62.0) < 10.0
    assert not np.allclose(mr.affine.affine_matrix, labels.affine.affine_matrix)


def test_sample_data_appears_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-mor", "carfentanil_study")
    names = [layer.name for layer in viewer.layers]
    assert names == ["sample T1w", "sample PET", "sample regions"]
    pet = viewer.layers["sample PET"]
    assert pet.metadata["truth"]["PAG"]["drop_pct"] == 10.0
    assert viewer.dims.ndim == 4
    assert viewer.dims.order == (0, 3, 2, 1)  # axial first view (one-scan sample)
    assert viewer.layers["sample regions"].contour >= 1


def test_two_scan_sample_data(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-mor", "carfentanil_two_scans")
    names = [layer.name for layer in viewer.layers]
    assert names == ["sample T1w", "PET baseline", "PET challenge", "sample regions"]
    base, chal = viewer.layers["PET baseline"], viewer.layers["PET challenge"]
    assert base.metadata["scan"] == "baseline" and chal.metadata["scan"] == "challenge"
    thalamus = viewer.layers["sample regions"].data == 6
    assert chal.data[-1][thalamus].mean() < 0.97 * base.data[-1][thalamus].mean()


def test_reader_declines_other_files(tmp_path):
    assert napari_get_reader(str(tmp_path / "image.tif")) is None
    assert napari_get_reader(["a.nii.gz", "b.png"]) is None
    assert napari_get_reader(str(tmp_path / "x.nii.gz")) is not None


def test_classification_by_dimensions_dtype_and_lut(sample_files):
    assert classify_image_file(sample_files["pet"]) == "pet"
    assert classify_image_file(sample_files["labels"]) == "labels"
    assert classify_image_file(sample_files["mr"]) == "volume"  # int16 but no LUT


def test_bad_file_gives_a_clear_error_and_viewer_lives(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    data = np.ones((4, 4, 4, 3), np.float32)
    path = tmp_path / "nosidecar_pet.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    with pytest.raises(MorError, match="sidecar"):
        napari_get_reader(str(path))(str(path))
    with pytest.raises(Exception, match="sidecar"):
        viewer.open(str(path), plugin="napari-mor")
    viewer.add_image(np.zeros((3, 3)))  # still alive
    assert len(viewer.layers) == 1


def test_writer_saves_layer_with_affine_and_timing(
    make_napari_viewer, sample_files, tmp_path
):
    viewer = make_napari_viewer()
    pet_layer = _open(viewer, sample_files["pet"])
    labels_layer = _open(viewer, sample_files["labels"])
    out = tmp_path / "saved_pet.nii.gz"
    pet_layer.save(str(out), plugin="napari-mor")
    reloaded = load_pet(out)
    np.testing.assert_allclose(reloaded.data, pet_layer.data, rtol=1e-6)
    np.testing.assert_allclose(
        reloaded.affine, load_pet(sample_files["pet"]).affine, atol=1e-4
    )
    assert reloaded.timing.n_frames == 28
    sidecar = json.loads((tmp_path / "saved_pet.json").read_text())
    assert (
        sidecar["Software"] == "napari-mor" and sidecar["LayerName"] == pet_layer.name
    )
    labels_out = tmp_path / "saved_labels.nii.gz"
    labels_layer.save(str(labels_out), plugin="napari-mor")
    assert (tmp_path / "saved_labels.tsv").read_text().count("\n") == 12
    assert np.array_equal(
        np.asarray(nib.load(str(labels_out)).dataobj), labels_layer.data
    )


def test_delta_map_opens_with_provenance_and_signed_colours(
    make_napari_viewer, tmp_path
):
    from napari_mor.maps import write_map

    data = np.zeros((5, 5, 5), np.float32)
    data[1, 1, 1], data[3, 3, 3] = 0.3, -0.1
    data[0, 0, 0] = np.nan  # failed fit: must stay NaN, not become 0
    path = write_map(
        tmp_path / "sub_delta_bp.nii.gz",
        data,
        np.eye(4),
        {"Quantity": "delta_bp_nd", "Model": "logan"},
    )
    viewer = make_napari_viewer()
    layer = _open(viewer, path)
    assert layer.metadata["provenance"]["Model"] == "logan"
    assert np.isnan(layer.data[0, 0, 0]) and layer.data[1, 1, 1] == pytest.approx(0.3)
    assert layer.colormap.name == "bwr"
    low, high = layer.contrast_limits
    assert low == pytest.approx(-high) and high > 0
    assert "positive = activation" in layer.metadata["sign_convention"]


def test_writer_saves_the_unthresholded_map(tmp_path):
    from napari_mor._napari._writer import write_image_layer

    full = np.array([[[0.05, 0.3]]], np.float32)
    shown = np.where(np.abs(full) < 0.1, np.nan, full)
    (out,) = write_image_layer(
        str(tmp_path / "delta.nii.gz"),
        shown,
        {"name": "delta", "affine": np.eye(4), "metadata": {"unthresholded": full}},
    )
    np.testing.assert_allclose(np.asarray(nib.load(out).dataobj), full)
