"""npe2 reader: dynamic PET (4D NIfTI + sidecar, ECAT7), MR and label images."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError, MorWarning
from napari_mor._napari._layers import (
    labels_layer_data,
    pet_layer_data,
    volume_layer_data,
)
from napari_mor.io import load_labels, load_pet, load_volume
from napari_mor.io._nifti import is_image_path, load_image, strip_image_suffix

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
    paths = path if isinstance(path, list) else [path]
    layers = []
    for item in paths:
        layers.extend(read_image_file(item))
    return layers


def classify_image_file(path: str | Path) -> str:
    """Decide whether a file is ``"pet"``, ``"labels"`` or ``"volume"``.

    4D with more than one volume (or ECAT) is dynamic PET; a 3D integer image
    with a lookup table beside it, or a label-like name, is labels; anything
    else is a plain image (MR).
    """
    path = Path(path)
    if path.name.lower().endswith(".v"):
        return "pet"
    image = load_image(path)
    shape = tuple(image.shape)
    if len(shape) == 4 and shape[3] > 1:
        return "pet"
    if len(shape) not in (3, 4):
        raise MorError(
            f"{path} has shape {shape}; napari-mor reads 3D images and 4D dynamic PET."
        )
    integer = np.issubdtype(image.get_data_dtype(), np.integer)
    stem = strip_image_suffix(path)
    has_lut = stem.with_suffix(".tsv").is_file() or stem.with_suffix(".txt").is_file()
    if integer and (has_lut or _LABEL_NAME.search(path.name)):
        return "labels"
    return "volume"


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
            layer = volume_layer_data(load_volume(path))
    _show_warnings(caught)
    return [layer]


def _show_warnings(caught) -> None:
    if not caught:
        return
    from napari.utils.notifications import show_warning

    for item in caught:
        show_warning(str(item.message))
