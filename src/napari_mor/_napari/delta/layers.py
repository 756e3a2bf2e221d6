"""The Delta-BP dock's layers: add or update the maps, threshold, range, style.

Display only: thresholding hides voxels in the shown data; the whole map stays
in ``layer.metadata["unthresholded"]`` and in the dock (what gets saved).
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image

from napari_mor._napari import _metadata as md
from napari_mor._napari._display import symmetric_limits, threshold_abs
from napari_mor._napari.delta.display import SIGN_CONVENTION, DisplayInputs


def show_map(
    viewer,
    name: str,
    data: np.ndarray,
    affine,
    quantity: str,
    provenance: dict,
    inside: np.ndarray | None = None,
) -> Image:
    """Add the map as layer ``name``, or update it in place (same shape).

    Contrast limits are symmetric about 0: the 99th percentile of ``|data|``
    over the ``inside`` voxels (the fitted brain; for the percent map its
    reliable voxels, :func:`~napari_mor._napari._display.reliable_percent_voxels`),
    so noise at the edge of the head does not set the range. The range of the
    slider covers every voxel.
    """
    metadata = {
        md.KIND: md.KIND_DELTA_MAP,
        md.QUANTITY: quantity,
        md.UNTHRESHOLDED: data,
        md.SIGN_CONVENTION: SIGN_CONVENTION,
        md.PROVENANCE: {**provenance, "Quantity": quantity},
    }
    layer = next((lay for lay in viewer.layers if lay.name == name), None)
    if layer is not None and layer.data.shape == data.shape:
        layer.metadata = metadata
        layer.affine = affine
        layer.data = data
    else:
        if layer is not None:
            viewer.layers.remove(layer)
        layer = viewer.add_image(
            data,
            name=name,
            affine=affine,
            blending="translucent_no_depth",  # no depth test: tilted MR below
            metadata=metadata,
        )
    limits = symmetric_limits(data, 99.0, inside)
    widest = symmetric_limits(data, 100.0)
    layer.contrast_limits_range = max(widest, limits, key=lambda lim: lim[1])
    layer.contrast_limits = limits
    return layer


def apply_threshold(
    delta_layer: Image,
    pct_layer: Image | None,
    delta: np.ndarray,
    pct: np.ndarray,
    threshold: float,
) -> None:
    """Hide ``|ΔBP_ND|`` below ``threshold`` (the % map hides the same voxels)."""
    shown = threshold_abs(delta, threshold)
    delta_layer.data = shown
    delta_layer.metadata[md.THRESHOLD] = threshold
    if pct_layer is not None:
        pct_layer.data = np.where(np.isnan(shown), np.nan, pct).astype(np.float32)
        pct_layer.metadata[md.THRESHOLD] = threshold


def apply_range(layer: Image, value: float) -> None:
    """Contrast limits ``(-value, value)`` of a delta layer (widening its range)."""
    _low, high = layer.contrast_limits_range
    if value > high:
        layer.contrast_limits_range = (-value, value)
    layer.contrast_limits = (-value, value)


def apply_style(viewer, layers, display: DisplayInputs) -> None:
    """Colormap and opacity of the delta layers; only the chosen one visible
    (and active, so the status bar reports it)."""
    cmap = display.colormap_of()
    for layer in layers:
        if layer is None or layer not in viewer.layers:
            continue
        layer.colormap = cmap
        layer.opacity = display.opacity_pct / 100.0
        layer.visible = layer.name == display.show
        if layer.visible:
            viewer.layers.selection.active = layer
