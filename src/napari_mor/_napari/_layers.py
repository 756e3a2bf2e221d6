"""Conversions between napari layers (data + affine + metadata) and core objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor._napari._display import foreground, percentile_limits
from napari_mor.io._nifti import strip_image_suffix
from napari_mor.io.pet import DynamicPET
from napari_mor.io.timing import FrameTiming
from napari_mor.io.volume import LabelImage, Volume

LayerDataTuple = tuple  # (data, kwargs, layer_type)

#: Layer axes of 3-D images (world x, y, z in mm) and of dynamic PET (frame first).
SPATIAL_AXES = {"axis_labels": ("x", "y", "z"), "units": ("mm", "mm", "mm")}
PET_AXES = {
    "axis_labels": ("frame", "x", "y", "z"),
    "units": ("pixel", "mm", "mm", "mm"),
}


def time_affine(spatial_affine: np.ndarray) -> np.ndarray:
    """5x5 layer affine for (t, x, y, z) data: time axis untouched."""
    affine = np.eye(5)
    affine[1:, 1:] = spatial_affine
    return affine


def spatial_affine_of(layer) -> np.ndarray:
    """The 4x4 voxel->world affine of a layer's last three axes."""
    matrix = np.asarray(layer.affine.affine_matrix, dtype=np.float64)
    if matrix.shape == (4, 4):
        return matrix
    if matrix.shape == (5, 5):
        return matrix[1:, 1:]
    raise MorError(
        f"Layer {layer.name!r} has {matrix.shape[0] - 1} dimensions; a 3D or 4D "
        "image was expected."
    )


#: Opacity of a PET layer over the grey MR, and of labels' contours.
PET_OPACITY = 0.8
LABELS_OPACITY = 0.9
#: Labels are drawn as outlines this many voxels thick (napari ``contour``), so
#: their colours are not read as the values of the map below them.
LABELS_CONTOUR = 1


def pet_colormap():
    """Inferno fading in from transparent: low activity lets the MR show through.

    Alpha rises from 0 at the lower contrast limit to 1 at 15 % of the range, so
    the PET sits *over* a grey MR (translucent) instead of adding to it and
    washing the head out to white.
    """
    from matplotlib import colormaps
    from napari.utils.colormaps import Colormap

    positions = np.linspace(0.0, 1.0, 33)
    colors = colormaps["inferno"](positions)
    colors[:, 3] = np.clip(positions / 0.15, 0.0, 1.0)
    return Colormap(
        colors=colors,
        controls=positions,
        name="mor_inferno_fade",
        display_name="inferno (clear at 0)",
    )


def pet_layer_data(pet: DynamicPET, name: str | None = None) -> LayerDataTuple:
    """napari Image layer data for a dynamic PET (time slider first).

    Contrast: 0 to the 99.5th percentile of the head's voxels (all frames);
    translucent over the MR with :func:`pet_colormap`.
    """
    _low, upper = percentile_limits(pet.data, foreground(pet.data), (1.0, 99.5))
    kwargs = {
        "name": name or _stem(pet.path, "PET"),
        "affine": time_affine(pet.affine),
        "metadata": pet.metadata(),
        "colormap": pet_colormap(),
        "contrast_limits": (0.0, max(upper, 1e-6)),
        "blending": "translucent_no_depth",  # over the (tilted) MR, no depth test
        "opacity": PET_OPACITY,
        **PET_AXES,
    }
    return pet.data, kwargs, "image"


def volume_layer_data(volume: Volume, name: str | None = None) -> LayerDataTuple:
    """napari Image layer data for an MR or other 3D image (grey).

    Contrast: black at the 0.5th percentile of the whole image (the air), white
    at the 99.5th percentile of the head's voxels
    (:func:`~napari_mor._napari._display.foreground`), so grey and white
    matter stay apart instead of both going white.
    """
    low, _ = percentile_limits(volume.data, np.ones(volume.data.shape, bool))
    _, high = percentile_limits(volume.data, None, (0.5, 99.5))
    low = min(low, high - 1e-6)
    kwargs = {
        "name": name or _stem(volume.path, "MR"),
        "affine": volume.affine,
        "metadata": {
            "kind": "volume",
            "source_path": str(volume.path) if volume.path else None,
        },
        "colormap": "gray",
        "contrast_limits": (low, high),
        **SPATIAL_AXES,
    }
    return volume.data, kwargs, "image"


def labels_layer_data(labels: LabelImage, name: str | None = None) -> LayerDataTuple:
    """napari Labels layer data with the LUT in metadata and its colours.

    napari's ``Labels`` takes no ``contour`` argument: the layer is drawn as
    contours (:data:`LABELS_CONTOUR`) once it is in a viewer, by
    :func:`napari_mor._napari._view.style_new_layers`.
    """
    kwargs = {
        "name": name or _stem(labels.path, "labels"),
        "affine": labels.affine,
        "metadata": {
            "kind": "labels",
            "lut": {int(k): v for k, v in labels.lut.items()},
            "source_path": str(labels.path) if labels.path else None,
        },
        "opacity": LABELS_OPACITY,
        **SPATIAL_AXES,
    }
    if labels.colors:
        kwargs["colormap"] = {
            None: (0, 0, 0, 0),
            0: (0, 0, 0, 0),
            **{int(k): tuple(v) for k, v in labels.colors.items()},
        }
    return labels.data, kwargs, "labels"


def _stem(path: Path | None, default: str) -> str:
    return default if path is None else strip_image_suffix(path).name


def pet_from_layer(layer) -> DynamicPET:
    """Rebuild a DynamicPET from a napari Image layer made by the PET reader."""
    data = np.asarray(layer.data)
    if data.ndim != 4:
        raise MorError(
            f"Layer {layer.name!r} has {data.ndim} dimensions; pick a dynamic (4D) "
            "PET layer."
        )
    meta = layer.metadata
    if "frame_start_s" not in meta or "frame_duration_s" not in meta:
        raise MorError(
            f"Layer {layer.name!r} has no frame timing in its metadata; open the PET "
            "with its JSON sidecar (or a frames TSV) through napari-mor."
        )
    timing = FrameTiming(meta["frame_start_s"], meta["frame_duration_s"])
    return DynamicPET(
        data=data.astype(np.float32, copy=False),
        affine=spatial_affine_of(layer),
        timing=timing,
        decay_corrected=meta.get("decay_corrected"),
        radionuclide=meta.get("radionuclide"),
        nonfinite_mask=(
            np.asarray(meta["nonfinite_mask"], dtype=bool)
            if "nonfinite_mask" in meta
            else None
        ),
        path=Path(meta["source_path"]) if meta.get("source_path") else None,
    )


def volume_from_layer(layer) -> Volume:
    """A Volume from a 3D napari Image layer."""
    data = np.asarray(layer.data)
    if data.ndim != 3:
        raise MorError(f"Layer {layer.name!r} is not 3D (shape {data.shape}).")
    return Volume(
        data=data.astype(np.float32, copy=False), affine=spatial_affine_of(layer)
    )


def labels_from_layer(layer) -> LabelImage:
    """A LabelImage from a napari Labels layer (LUT from its metadata)."""
    data = np.asarray(layer.data)
    if data.ndim != 3:
        raise MorError(f"Labels layer {layer.name!r} is not 3D (shape {data.shape}).")
    lut = {int(k): str(v) for k, v in layer.metadata.get("lut", {}).items()}
    return LabelImage(
        data=data.astype(np.int32, copy=False), affine=spatial_affine_of(layer), lut=lut
    )


def bp_map_metadata(plan, condition: str, result) -> dict:
    """``layer.metadata`` of a BP_ND map layer: its provenance (as its sidecar).

    Parameters
    ----------
    plan : napari_mor.workflows.fit_maps.MapPlan
    condition : str
    result : napari_mor.kinetics.MapResult
    """
    from napari_mor import __version__
    from napari_mor.workflows.fit_maps import map_provenance_of

    scans = {job.condition: job.pet for job in plan.jobs}
    # the release model's one job ("scan") gives the baseline and challenge maps
    source = scans.get(condition, plan.jobs[0].pet)
    return {
        "kind": "bp_map",
        "condition": condition,
        "model": result.model,
        "source_path": str(source.path) if source.path else None,
        "software_version": __version__,
        "provenance": map_provenance_of(plan, condition, result, Quantity="bp_nd"),
    }


def viewer_sources(viewer) -> dict[str, str]:
    """The files the viewer's layers were read from (or saved to), by layer name.

    A dock's writer passes them to :func:`napari_mor.io.outputs.check_outputs`,
    so that saving never replaces a file that is open in the viewer.
    """
    sources = {}
    for layer in viewer.layers:
        for key in ("source_path", "saved_path"):
            path = layer.metadata.get(key)
            if path:
                sources[f"{layer.name} ({key.split('_')[0]})"] = str(path)
    return sources
