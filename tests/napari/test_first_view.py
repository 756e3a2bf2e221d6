"""The first view of the sample: axial, neurological, labels as contours."""

from __future__ import annotations

import numpy as np

from napari_mor._napari._view import ORIENTATION_TEXT


def _head_box(image: np.ndarray) -> tuple[int, int]:
    """Height and width (pixels) of the non-background part of a screenshot."""
    rgb = image[..., :3].astype(int)
    rows, cols = np.nonzero(rgb.sum(-1) > 60)
    return int(np.ptp(rows)), int(np.ptp(cols))


def test_two_scan_sample_opens_axial_and_neurological(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-mor", "carfentanil_two_scans")
    assert viewer.dims.ndim == 4
    assert viewer.dims.order == (0, 3, 2, 1)  # rows y, columns x: axial
    assert viewer.dims.displayed == (2, 1)
    camera = viewer.scene.camera
    assert str(camera.orientation[1]) == "up"  # anterior at the top
    assert str(camera.orientation[2]) == "right"  # subject's right on the right
    overlay = viewer.canvas.overlays["text"]
    assert overlay.visible and overlay.text == ORIENTATION_TEXT
    assert "neurological" in overlay.text
    # the slice through striatum, amygdala and PAG (within a 3 mm voxel)
    assert abs(viewer.dims.point[3] + 12.0) <= 3.0
    assert viewer.dims.current_step[0] == viewer.dims.nsteps[0] - 1  # late frame
    labels = viewer.layers["sample regions"]
    assert labels.contour >= 1
    mr = viewer.layers["sample T1w"]
    assert mr.colormap.name == "gray"
    for name in ("PET baseline", "PET challenge"):
        assert str(viewer.layers[name].blending) != "additive"
    # the picture: an axial head is taller (176 mm, y) than wide (140 mm, x);
    # the old sagittal first view was wider (y) than tall (z, 128 mm)
    viewer.layers["PET challenge"].visible = False
    overlay.visible = False  # its text would widen the box
    height, width = _head_box(np.asarray(viewer.screenshot(canvas_only=True)))
    assert height > 1.1 * width, (height, width)
