"""How the viewer shows a study: axial first view, orientation, labels as contours.

These helpers touch the viewer (dims, camera, overlays, layer order); the
numbers they use (contrast limits) come from :mod:`._display`.

World axes of napari-mor layers are NIfTI world coordinates (RAS+, mm), so a
dynamic PET has world axes ``(frame, x, y, z)`` and an MR ``(x, y, z)``; the
viewer aligns the last three. Displaying ``(y, x)`` -- rows y, columns x --
with y increasing upwards is an axial slice, anterior at the top and the
subject's right on the right of the screen: the neurological convention.
"""

from __future__ import annotations

from collections.abc import Iterable

from napari.layers import Labels

from napari_mor._napari import _metadata as md
from napari_mor._napari._layers import LABELS_CONTOUR

#: Shown in the canvas's text overlay once the axial view is set.
ORIENTATION_TEXT = (
    "axial slice, neurological convention: subject's right on the right, "
    "anterior at the top"
)


def axial_order(ndim: int) -> tuple[int, ...]:
    """``viewer.dims.order`` that displays world ``(y, x)`` of ``ndim`` axes.

    The last three world axes are x, y, z; the slider axes (frame, z) come
    first, so the last two displayed are y (rows) and x (columns).
    """
    if ndim < 3:
        return tuple(range(ndim))
    return (*range(ndim - 3), ndim - 1, ndim - 2, ndim - 3)


def set_axial_view(viewer, z_mm: float | None = None, frame: int | None = None):
    """Show an axial slice, anterior up, neurological, and say so on the canvas.

    Parameters
    ----------
    viewer : napari.Viewer
    z_mm : float, optional
        World z (mm) of the slice; default napari's (the middle).
    frame : int, optional
        Frame shown by the time slider (4-D viewers); negative counts from the
        end (``-1``: the last, late-binding frame).
    """
    ndim = viewer.dims.ndim
    if ndim < 3:
        return
    viewer.dims.ndisplay = 2
    viewer.dims.order = axial_order(ndim)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.orientation = ("towards", "up", "right")  # y (anterior) upwards
    if z_mm is not None:
        viewer.dims.set_point(ndim - 1, float(z_mm))
    if frame is not None and ndim >= 4:
        n_steps = viewer.dims.nsteps[0]
        viewer.dims.set_current_step(0, frame % n_steps if n_steps else 0)
    overlay = viewer.canvas.overlays["text"]  # napari >= 0.9 (viewer.text_overlay)
    overlay.text = ORIENTATION_TEXT
    overlay.position = "top_left"
    overlay.visible = True
    viewer.reset_view()


def show_as_contours(layer) -> None:
    """Draw a napari-mor Labels layer as outlines (once, when it arrives)."""
    if (
        isinstance(layer, Labels)
        and layer.metadata.get(md.KIND) == md.KIND_LABELS
        and not layer.contour
    ):
        layer.contour = LABELS_CONTOUR


def _on_inserted(event) -> None:
    show_as_contours(event.value)


def style_new_layers(viewer) -> None:
    """Draw napari-mor label layers as contours, now and when they are added.

    napari's ``Labels`` has no ``contour`` argument, so layer data tuples
    (reader, sample data) cannot carry it; this connects once per viewer.
    """
    if viewer is None:
        return
    for layer in viewer.layers:
        show_as_contours(layer)
    inserted = viewer.layers.events.inserted
    if _on_inserted not in inserted.callbacks:
        inserted.connect(_on_inserted)


def keep_on_top(viewer, layers: Iterable) -> None:
    """Move ``layers`` (in order) to the top of the layer list: drawn last."""
    for layer in layers:
        if layer is not None and layer in viewer.layers:
            index = viewer.layers.index(layer)
            if index != len(viewer.layers) - 1:
                viewer.layers.move(index, len(viewer.layers))


def axial_once_added(names: Iterable[str], z_mm: float | None = None) -> None:
    """When layers ``names`` are all in the current viewer: axial view, contours.

    For npe2 sample data, which returns layer data and cannot reach the viewer
    that adds it; does nothing without a current viewer.
    """
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        return
    style_new_layers(viewer)
    wanted = set(names)
    inserted = viewer.layers.events.inserted

    def _when_all_added(event=None) -> None:
        if wanted <= {layer.name for layer in viewer.layers}:
            inserted.disconnect(_when_all_added)
            set_axial_view(viewer, z_mm=z_mm, frame=-1)

    inserted.connect(_when_all_added)
