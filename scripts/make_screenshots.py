"""Make the README / docs screenshots of the "Kinetic fit" and "Delta-BP" docks.

Run headless under Xvfb (never with QT_QPA_PLATFORM=offscreen, which renders
black canvases)::

    xvfb-run -a -s "-screen 0 1920x1200x24" python scripts/make_screenshots.py

It opens the sample study (baseline and challenge scans of the digital
[11C]carfentanil phantom, 10% BP_ND drop in ventral striatum, amygdala, midline
thalamus and PAG), fits the ROIs and voxelwise Logan maps through the docks,
computes delta-BP over the MR and saves PNGs (< 300 kB each) to docs/images/:
``first_view.png`` (the sample as it opens: axial, MR in grey under the PET,
regions as contours), the three docks, ``delta_overlay.png`` and
``napari_window.png``.
It also prints the wall times of the ROI and voxelwise fits through the UI and
the per-ROI delta-BP it recovered.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

MAX_BYTES = 300_000
#: Axial slice (world z, mm) through ventral striatum, amygdala, PAG and sgACC.
AXIAL_Z_MM = -12.0
#: The Delta-BP dock's click read-out is shown for a typical voxel of this label
#: (right ventral striatum): the one closest to the ROI's mean delta-BP_ND.
CLICK_LABEL = 3


def _save_png(image: np.ndarray, path: Path, max_width: int) -> Path:
    """Save an RGB(A) array as PNG, shrinking until it is < 300 kB.

    Palette quantisation is the last resort: it maps the few bright overlay
    voxels to dull palette colours, so the image is downscaled first.
    """
    from PIL import Image

    original = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    width = min(max_width, original.width)
    while True:
        height = round(original.height * width / original.width)
        picture = original.resize((width, height), Image.Resampling.LANCZOS)
        picture.save(path, optimize=True)
        if path.stat().st_size <= MAX_BYTES or width <= 700:
            break
        width = int(width * 0.85)
    if path.stat().st_size > MAX_BYTES:
        picture.quantize(
            colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        ).save(path, optimize=True)
    return path


def _grab(widget, path: Path, max_width: int = 900) -> Path:
    """Render a Qt widget (all of it, also the scrolled-away part) to PNG."""
    from qtpy.QtWidgets import QScrollArea

    scroll = widget.findChild(QScrollArea)
    target = scroll.widget() if scroll is not None else widget
    pixmap = target.grab()
    image = pixmap.toImage().convertToFormat(pixmap.toImage().Format.Format_RGBA8888)
    buffer = image.constBits()
    buffer.setsize(image.sizeInBytes())
    array = np.frombuffer(buffer, np.uint8).reshape(
        image.height(), image.bytesPerLine() // 4, 4
    )[:, : image.width()]
    return _save_png(array.copy(), path, max_width)


def _window_screenshot(viewer) -> np.ndarray:
    """Whole window with the canvas pasted from a canvas-only screenshot.

    A window grab (``canvas_only=False``) composites the GL framebuffer's alpha
    over the dark window background, which darkens translucent overlays; the
    canvas-only screenshot renders them as on screen.
    """
    from qtpy.QtCore import QPoint

    full = np.array(viewer.screenshot(canvas_only=False, flash=False))
    canvas = np.asarray(viewer.screenshot(canvas_only=True, flash=False))
    try:
        native = viewer.window._qt_viewer.canvas.native
        offset = native.mapTo(viewer.window._qt_window, QPoint(0, 0))
    except AttributeError:  # private napari API moved: keep the plain grab
        return full
    top, left = offset.y(), offset.x()
    height, width = canvas.shape[:2]
    if top + height <= full.shape[0] and left + width <= full.shape[1]:
        full[top : top + height, left : left + width] = canvas
    return full


def _typical_voxel_mm(delta) -> np.ndarray:
    """World mm of the CLICK_LABEL voxel whose delta-BP_ND is nearest its ROI mean."""
    labels = np.asarray(delta.inputs_box.labels_layer().data)
    index = np.argwhere((labels == CLICK_LABEL) & np.isfinite(delta.delta))
    values = delta.delta[tuple(index.T)]
    voxel = index[np.argmin(np.abs(values - values.mean()))]
    return delta.affine[:3, :3] @ voxel + delta.affine[:3, 3]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from napari.layers import Layer
    from qtpy.QtWidgets import QApplication

    import napari
    from napari_mor._napari._delta_widget import DeltaWidget
    from napari_mor._napari._fit_widget import FitWidget
    from napari_mor._napari._layers import (
        labels_layer_data,
        pet_layer_data,
        volume_layer_data,
    )
    from napari_mor._napari._roi_widget import RoiWidget
    from napari_mor._napari._view import set_axial_view, style_new_layers
    from napari_mor.sample import make_sample_study

    study = make_sample_study(seed=0, separate_scans=True)
    viewer = napari.Viewer(show=True, title="napari-mor: kinetic fit and delta-BP")
    viewer.window._qt_window.resize(1800, 1100)
    for data in (
        volume_layer_data(study.mr, "sample T1w"),
        pet_layer_data(study.pet, "PET baseline"),
        pet_layer_data(study.pet_challenge, "PET challenge"),
        labels_layer_data(study.labels, "sample regions"),
    ):
        viewer.add_layer(Layer.create(*data))
    # the phantom's brain mask (on the PET grid) restricts the voxelwise fit
    viewer.add_labels(
        study.brain_mask.astype(np.uint8),
        name="brain mask",
        affine=study.pet.affine,
        visible=False,
    )
    app = QApplication.instance()
    # the first view a user gets from Open Sample: axial, neurological, contours
    style_new_layers(viewer)
    set_axial_view(viewer, z_mm=AXIAL_Z_MM, frame=-1)
    viewer.layers["PET challenge"].visible = False
    app.processEvents()
    first_png = _save_png(
        np.asarray(viewer.screenshot(canvas_only=True, flash=False)),
        args.out / "first_view.png",
        900,
    )
    viewer.layers["PET challenge"].visible = True

    rois = RoiWidget(viewer)
    viewer.window.add_dock_widget(rois, name="ROIs", area="right")
    rois.set_pet_layer(viewer.layers["PET baseline"])
    rois.set_labels_layer(viewer.layers["sample regions"])
    rois.compute_tacs()
    app.processEvents()
    roi_png = _grab(rois, args.out / "roi_dock.png")

    fit = FitWidget(viewer)
    viewer.window.add_dock_widget(fit, name="Kinetic fit", area="right")
    fit.set_pet_layer(viewer.layers["PET baseline"])
    fit.set_challenge_layer(viewer.layers["PET challenge"])
    fit.set_labels_layer(viewer.layers["sample regions"])
    fit.set_model("logan")
    fit.set_window_mode("two_scans")
    fit.set_mask("brain mask")
    roi_s = []
    for _ in range(2):  # the first call also loads matplotlib fonts
        start = time.perf_counter()
        fit.fit_rois()
        app.processEvents()
        roi_s.append(time.perf_counter() - start)
    fit.select_roi(fit.roi_labels.index(6))  # midline thalamus
    app.processEvents()

    start = time.perf_counter()
    worker = fit.fit_maps()
    if worker is None:
        raise SystemExit("the voxelwise fit did not start (see the notification)")
    while fit.worker is not None:
        app.processEvents()
        time.sleep(0.005)
    map_s = time.perf_counter() - start
    n_vox = fit.map_results["baseline"].n_voxels
    print(
        f"ROI fit through the dock: {roi_s[0]:.2f} s first, {roi_s[1]:.2f} s again "
        "(10 ROIs x 2 scans, Logan, table + 3 plots)"
    )
    print(f"Voxelwise maps through the worker: {map_s:.2f} s ({n_vox} voxels x 2)")

    delta = DeltaWidget(viewer)
    viewer.window.add_dock_widget(delta, name="Delta-BP", area="right")
    delta.labels_combo.setCurrentText("sample regions")
    delta.compute()  # robust symmetric limits: the dock's default
    delta.threshold_spin.setValue(0.15)
    for name in ("PET baseline", "PET challenge"):
        viewer.layers[name].visible = False
    viewer.layers["sample regions"].visible = True  # contours, under the map
    delta._on_click(viewer, SimpleNamespace(position=(0.0, *_typical_voxel_mm(delta))))
    set_axial_view(viewer, z_mm=AXIAL_Z_MM)
    app.processEvents()
    print("ROI means of the delta-BP map (planted: 10% in the rejection regions):")
    for row in delta.rows:
        print(
            f"  {row['name']:<20} {row['delta_bp_nd']:+.3f}  "
            f"{row['pct_delta_bp_nd']:+6.1f}%"
        )

    paths = [
        first_png,
        roi_png,
        _grab(fit, args.out / "fit_dock.png"),
        _grab(delta, args.out / "delta_dock.png"),
        _save_png(
            np.asarray(viewer.screenshot(canvas_only=True, flash=False)),
            args.out / "delta_overlay.png",
            900,
        ),
        _save_png(_window_screenshot(viewer), args.out / "napari_window.png", 1400),
    ]
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1000:.0f} kB)")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
