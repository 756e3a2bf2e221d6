"""Low-level image loading with clear errors for missing, corrupt or odd files."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_mor._errors import MorError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ECAT_SUFFIXES = (".v",)


def strip_image_suffix(path: str | Path) -> Path:
    """Path without ``.nii``, ``.nii.gz`` or ``.v`` (the stem shared with sidecars)."""
    path = Path(path)
    name = path.name
    for suffix in (".nii.gz", ".nii", ".v"):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path.with_suffix("")


def is_image_path(path: str | Path) -> bool:
    """True when the file name ends in a suffix napari-mor reads."""
    name = str(path).lower()
    return name.endswith(NIFTI_SUFFIXES + ECAT_SUFFIXES)


def load_image(path: str | Path) -> nib.spatialimages.SpatialImage:
    """Load a NIfTI or ECAT7 image header (data stays on disk until asked for).

    Raises
    ------
    MorError
        When the file is missing, of an unknown kind, or not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise MorError(f"{path} does not exist; check the path.")
    if not is_image_path(path):
        raise MorError(
            f"{path} is not a NIfTI (.nii, .nii.gz) or ECAT7 (.v) file; convert it "
            "to NIfTI (e.g. with dcm2niix) first."
        )
    try:
        if path.name.lower().endswith(ECAT_SUFFIXES):
            return nib.ecat.load(str(path))
        return nib.load(str(path))
    except Exception as err:  # nibabel raises many types for broken files
        raise MorError(
            f"{path} could not be read as an image ({type(err).__name__}: {err}); "
            "the file is corrupt or truncated, copy or export it again."
        ) from err


def read_data(image: nib.spatialimages.SpatialImage, path: str | Path) -> np.ndarray:
    """Read the voxel array as float32, turning truncation errors into MorError."""
    try:
        data = np.asarray(image.dataobj, dtype=np.float32)
    except (OSError, EOFError, ValueError, gzip.BadGzipFile, zlib.error) as err:
        raise MorError(
            f"{path} is truncated or corrupt: its voxel data could not be read "
            f"({type(err).__name__}: {err}); copy or export the file again."
        ) from err
    return data


def affine_of(image: nib.spatialimages.SpatialImage, path: str | Path) -> np.ndarray:
    """The 4x4 voxel-to-world (mm) affine, checked to be finite and invertible."""
    affine = np.asarray(image.affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise MorError(f"{path} has no valid voxel-to-world affine; fix its header.")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise MorError(
            f"{path} has a singular affine (zero voxel size); fix the qform/sform "
            "in its header."
        )
    return affine
