"""npe2 reader: dynamic PET (4D NIfTI + sidecar, ECAT7), MR and label images."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError, MorWarning
from napari_mor._napari._display import symmetric_limits
from napari_mor._napari._layers import (
    labels_layer_data,
    pet_layer_data,
    volume_layer_data,
)
from napari_mor.io import load_labels, load_pet, load_volume
from napari_mor.io._nifti import (
    is_image_path,
    load_image,
    read_map_sidecar,
    sidecar_path_for,
)
from napari_mor.io.volume import find_lut_beside

_LABEL_NAME = re.compile(r"(label|dseg|aseg|atlas|roi|mask|seg)", re.IGNORECASE)


def napari_get_reader(path):
    """Return a reader for NIfTI/ECAT paths napari-mor understands, else None."""
    if isinstance(path, list):
        if not path or not all(isinstance(p, str | Path) for p in path):
            return None
        return read_paths if all(is_image_path(p) for p in path) else None
    if not isinstance(path, str | Path) or not is_image_path(path):
        return None
    return read_paths


def read_paths(path) -> list[tuple]:
    """Read one or several files into napari layer data tuples."""
    import napari
    from napari_mor._napari._view import style_new_layers

    paths = path if isinstance(path, list) else [path]
    layers = []
    for item in paths:
        layers.extend(read_image_file(item))
    style_new_layers(napari.current_viewer())  # labels drawn as contours
    return layers


def classify_image_file(path: str | Path) -> str:
    """Decide whether a file is ``"pet"``, ``"labels"`` or ``"volume"``.

    4D with more than one volume (or ECAT) is dynamic PET; a 3D integer image
    with a lookup table beside it, or a label-like name, is labels; anything
    else is a plain image (MR).

    Raises
    ------
    MorError
        For shapes napari-mor does not read, and for a 4D integer image with a
        label-like name and no PET sidecar (a label image saved as 4D).
    """
    path = Path(path)
    if path.name.lower().endswith(".v"):
        return "pet"
    image = load_image(path)
    shape = tuple(image.shape)
    integer = np.issubdtype(image.get_data_dtype(), np.integer)
    label_like = integer and (
        find_lut_beside(path) is not None or _LABEL_NAME.search(path.name)
    )
    if len(shape) == 4 and shape[3] > 1:
        if label_like and not sidecar_path_for(path).is_file():
            raise MorError(
                f"{path} looks like a label image (integer values, label-like name "
                f"or a LUT beside it) but has shape {shape}: 4D with {shape[3]} "
                "volumes. Save label images as 3D (x, y, z); for dynamic PET, "
                f"add the JSON sidecar {sidecar_path_for(path).name} with its frame "
                "timing."
            )
        return "pet"
    if len(shape) not in (3, 4):
        raise MorError(
            f"{path} has shape {shape}; napari-mor reads 3D images and 4D dynamic PET."
        )
    return "labels" if label_like else "volume"


#: Map quantities (sidecar ``Quantity``) shown with a diverging colormap at 0.
_SIGNED_QUANTITIES = ("delta_bp_nd", "pct_delta_bp_nd")


def read_image_file(path: str | Path) -> list[tuple]:
    """Layer data for one file; warnings from the loaders become napari warnings."""
    kind = classify_image_file(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MorWarning)
        if kind == "pet":
            layer = pet_layer_data(load_pet(path))
        elif kind == "labels":
            layer = labels_layer_data(load_labels(path))
        else:
            provenance = read_map_sidecar(path) or {}
            volume = load_volume(path, keep_nan="Quantity" in provenance)
            layer = _with_map_display(volume_layer_data(volume), provenance)
    _show_warnings(caught)
    return [layer]


def _with_map_display(layer: tuple, provenance: dict) -> tuple:
    """A napari-mor map keeps its provenance; delta-BP maps get signed colours."""
    if not provenance:
        return layer
    data, kwargs, layer_type = layer
    kwargs["metadata"] = {**kwargs["metadata"], "provenance": provenance}
    if provenance.get("Quantity") in _SIGNED_QUANTITIES:
        # robust and symmetric: 99th percentile of |value| over the fitted
        # (finite, non-zero) voxels, as the Delta-BP dock shows its maps
        with np.errstate(invalid="ignore"):
            fitted = np.isfinite(data) & (data != 0)
        kwargs.update(
            colormap="bwr",
            contrast_limits=symmetric_limits(data, 99.0, fitted),
            blending="translucent_no_depth",
            opacity=0.8,
        )
        kwargs["metadata"]["sign_convention"] = (
            "delta-BP = BP_baseline - BP_challenge; positive = activation"
        )
    return data, kwargs, layer_type


def _show_warnings(caught) -> None:
    if not caught:
        return
    from napari.utils.notifications import show_warning

    for message in dict.fromkeys(str(item.message) for item in caught):
        show_warning(message)


#: File patterns napari-mor reads (the manifest's reader patterns).
READER_PATTERNS = ("*.nii", "*.nii.gz", "*.v")


def make_default_reader() -> list[str]:
    """Make napari-mor napari's reader for PET/MR/label files (napari's setting).

    With two readers for ``*.nii.gz`` and no preference, napari asks (File >
    Open, drag-and-drop) or fails (``napari x.nii.gz``: napari's builtin reader
    has no NIfTI backend). This sets napari's own preference
    (``plugins.extension2reader``), used whenever napari picks the reader
    (``plugin=None``). Returns the patterns now mapped to napari-mor.
    """
    from napari.settings import get_settings

    plugins = get_settings().plugins
    plugins.extension2reader = {
        **plugins.extension2reader,
        **dict.fromkeys(READER_PATTERNS, "napari-mor"),
    }
    return list(READER_PATTERNS)


def is_default_reader() -> bool:
    """True when napari opens every napari-mor pattern with napari-mor."""
    from napari.settings import get_settings

    chosen = get_settings().plugins.extension2reader
    return all(chosen.get(pattern) == "napari-mor" for pattern in READER_PATTERNS)
