"""NIfTI + JSON provenance writers (atomic: temp file then rename)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_mor._errors import MorError
from napari_mor.io._nifti import strip_image_suffix


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the result onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp_name))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def provenance_base() -> dict:
    """Fields every written file records: software, version and time."""
    from napari_mor import __version__

    return {
        "Software": "napari-mor",
        "SoftwareVersion": __version__,
        "Created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_json(path: str | Path, content: dict) -> Path:
    """Write a JSON file atomically (NumPy values converted to plain types)."""
    path = Path(path)
    text = json.dumps(content, indent=2, default=_json_default)
    _atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    return path


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_nifti(
    path: str | Path,
    data: np.ndarray,
    affine: np.ndarray,
    provenance: dict | None = None,
    dtype: type = np.float32,
) -> Path:
    """Write an image as NIfTI with a JSON sidecar, both atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.nii`` or ``.nii.gz``.
    data : ndarray, shape (x, y, z) or (x, y, z, t)
        Voxel values; for dynamic data pass time last.
    affine : ndarray, shape (4, 4)
        Voxel-to-world (mm) transform.
    provenance : dict, optional
        Extra sidecar fields (model, inputs, ...). Software, version and date
        are always added. ``None`` and ``{}`` still write a sidecar.
    dtype : numpy dtype
        Stored type (float32 for maps, int16/int32 for labels).

    Returns
    -------
    Path
        The image path; the sidecar is beside it with ``.json``.
    """
    path = Path(path)
    if not str(path).lower().endswith((".nii", ".nii.gz")):
        raise MorError(f"Output {path} must end in .nii or .nii.gz.")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise MorError(f"An affine must be 4x4; got shape {affine.shape}.")
    image = nib.Nifti1Image(np.asarray(data).astype(dtype, copy=False), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    _atomic_write(path, lambda tmp: nib.save(image, str(tmp)))
    sidecar = {**(provenance or {}), **provenance_base()}
    write_json(strip_image_suffix(path).with_suffix(".json"), sidecar)
    return path
