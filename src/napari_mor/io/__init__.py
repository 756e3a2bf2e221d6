"""Readers and writers: dynamic PET, MR, label images, lookup tables, provenance.

Nothing here imports napari or Qt.
"""

from napari_mor.io.pet import (
    ACTIVITY_UNIT,
    DynamicPET,
    frames_by_voxel,
    load_pet,
    sidecar_path_for,
    write_pet,
)
from napari_mor.io.timing import FrameTiming, read_frames_tsv, write_frames_tsv
from napari_mor.io.volume import (
    LabelImage,
    Volume,
    load_labels,
    load_volume,
    read_lut,
    write_lut,
)
from napari_mor.io.writers import file_sha256, write_json, write_nifti

__all__ = [
    "ACTIVITY_UNIT",
    "DynamicPET",
    "FrameTiming",
    "LabelImage",
    "Volume",
    "file_sha256",
    "frames_by_voxel",
    "load_labels",
    "load_pet",
    "load_volume",
    "read_frames_tsv",
    "read_lut",
    "sidecar_path_for",
    "write_frames_tsv",
    "write_json",
    "write_lut",
    "write_nifti",
    "write_pet",
]
