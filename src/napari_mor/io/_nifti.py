"""Low-level image loading with clear errors for missing, corrupt or odd files.

Also the two things readers and writers must agree on: where an image's JSON
sidecar lives (:func:`sidecar_path_for`) and how a sidecar names the exact map
it describes (:data:`IMAGE_SHA256_KEY`, checked by :func:`check_sidecar_hash`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import time
import warnings
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_mor._errors import MorError, MorWarning

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ECAT_SUFFIXES = (".v",)

#: Sidecar key holding the SHA-256 (hex) of the image file the sidecar describes.
IMAGE_SHA256_KEY = "ImageSHA256"

#: Deflate cannot compress better than about 1032:1; a ``.nii.gz`` whose header
#: claims more voxel bytes than this many times its size is damaged.
_MAX_GZIP_RATIO = 1100


def strip_image_suffix(path: str | Path) -> Path:
    """Path without ``.nii``, ``.nii.gz`` or ``.v`` (the stem shared with sidecars)."""
    path = Path(path)
    name = path.name
    for suffix in (".nii.gz", ".nii", ".v"):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path.with_suffix("")


def sidecar_path_for(image_path: str | Path) -> Path:
    """The JSON sidecar beside an image: ``X.nii.gz``, ``X.nii``, ``X.v`` -> ``X.json``.

    Only the image suffix is replaced, so dots in the stem are kept
    (``bp_v1.2.nii.gz`` -> ``bp_v1.2.json``).
    """
    stem = strip_image_suffix(image_path)
    return stem.with_name(stem.name + ".json")


def is_image_path(path: str | Path) -> bool:
    """True when the file name ends in a suffix napari-mor reads."""
    name = str(path).lower()
    return name.endswith(NIFTI_SUFFIXES + ECAT_SUFFIXES)


#: Digests of files already hashed in this process, by file identity and state.
_SHA256_CACHE: dict[tuple, str] = {}
_SHA256_CACHE_SIZE = 64
#: Files modified less than this long before hashing are not cached: the file
#: system's time stamps are coarse (a few ms), so a rewrite within one tick
#: could keep size and mtime (git's "racily clean" rule).
_SHA256_SETTLED_NS = 2_000_000_000


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks.

    A file is hashed once per process: the digest is remembered by device,
    inode, size and modification/change times, so the loader's sidecar check
    and the provenance of every map written from the same input share one
    pass over a large PET. A file that changed (or was replaced) is hashed
    again; so is one modified within the last two seconds.
    """
    path = Path(path)
    state = os.stat(path)
    key = (
        os.path.realpath(path),
        state.st_dev,
        state.st_ino,
        state.st_size,
        state.st_mtime_ns,
        state.st_ctime_ns,
    )
    cached = _SHA256_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    hexdigest = digest.hexdigest()
    settled = max(state.st_mtime_ns, state.st_ctime_ns) + _SHA256_SETTLED_NS
    if time.time_ns() > settled:
        if len(_SHA256_CACHE) >= _SHA256_CACHE_SIZE:
            _SHA256_CACHE.pop(next(iter(_SHA256_CACHE)))
        _SHA256_CACHE[key] = hexdigest
    return hexdigest


def load_image(path: str | Path) -> nib.spatialimages.SpatialImage:
    """Load a NIfTI or ECAT7 image header (data stays on disk until asked for).

    Raises
    ------
    MorError
        When the file is missing, of an unknown kind, not a readable image, or a
        single-file NIfTI whose ``vox_offset`` points into the header.
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
        image = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for broken files
        raise MorError(
            f"{path} could not be read as an image ({type(err).__name__}: {err}); "
            "the file is corrupt or truncated, copy or export it again."
        ) from err
    _check_vox_offset(image, path)
    return image


def _check_vox_offset(image, path: Path) -> None:
    """A single-file NIfTI stores voxels after its header (byte 352, NIfTI-2: 544).

    nibabel reads from whatever offset the header gives, so ``vox_offset = 0``
    would silently return the header bytes as the first voxels (a shifted
    volume).
    """
    offset = _data_offset(image)
    if offset is None:
        return
    minimum = int(image.header.single_vox_offset)
    if offset < minimum:
        raise MorError(
            f"{path} has an invalid header: vox_offset is {offset}, but a single-file "
            f"NIfTI stores its voxels from byte {minimum} on, so the volume would "
            "be read shifted. Re-export the image, or repair the header (e.g. "
            f"with nibabel: set header['vox_offset'] = {minimum} and save)."
        )


def _data_offset(image) -> int | None:
    """Byte offset of the voxels in a single-file NIfTI read from disk, else None."""
    if not isinstance(image, nib.Nifti1Image):  # Nifti2Image is a subclass
        return None
    offset = getattr(image.dataobj, "offset", None)  # None for in-memory images
    return None if offset is None else int(offset)


def read_data(
    image: nib.spatialimages.SpatialImage,
    path: str | Path,
    dtype: type | None = np.float32,
) -> np.ndarray:
    """Read the voxel array, turning truncation and size errors into MorError.

    Parameters
    ----------
    image : nibabel image
        From :func:`load_image`.
    path : str or Path
        The file (named in messages).
    dtype : numpy dtype or None
        Type of the returned array; ``None`` keeps the stored type (after any
        ``scl_slope``/``scl_inter`` scaling), so integer labels stay exact.

    Returns
    -------
    data : ndarray, shape as in the header

    Raises
    ------
    MorError
        When the header claims more voxel data than the file can hold or than
        fits in memory, or when the data cannot be decoded.
    """
    _check_data_size(image, Path(path))
    try:
        data = np.asarray(image.dataobj, dtype=dtype)
    except (OSError, EOFError, ValueError, gzip.BadGzipFile, zlib.error) as err:
        raise MorError(
            f"{path} is truncated or corrupt: its voxel data could not be read "
            f"({type(err).__name__}: {err}); copy or export the file again."
        ) from err
    return data


def _check_data_size(image, path: Path) -> None:
    """Compare the header's data size with the file size and free memory.

    Checked before anything is allocated, so a damaged header claiming a giant
    shape gives a MorError instead of a MemoryError (or the OOM killer).
    """
    n_voxels = math.prod(int(n) for n in image.shape)
    try:
        itemsize = int(np.dtype(image.get_data_dtype()).itemsize)
    except (TypeError, ValueError, AttributeError):  # ECAT: per-frame types
        itemsize = 4
    stored = n_voxels * itemsize
    name = path.name.lower()
    offset = _data_offset(image)
    if offset is not None:
        size = path.stat().st_size
        if name.endswith(".nii") and offset + stored > size:
            raise MorError(
                f"{path}: the header describes {_shape_text(image)} voxels "
                f"({offset + stored} bytes with the header) but the file holds only "
                f"{size} bytes; the header is damaged or the file was truncated. "
                "Copy or export the file again."
            )
        if name.endswith(".gz") and offset + stored > _MAX_GZIP_RATIO * size:
            raise MorError(
                f"{path}: the header describes {_shape_text(image)} voxels "
                f"({offset + stored} bytes) but the compressed file is only {size} "
                "bytes, far more than gzip can compress; the header is damaged. "
                "Copy or export the file again."
            )
    needed = n_voxels * 4 + (stored if itemsize != 4 else 0)
    available = _available_memory_bytes()
    if available is not None and needed > available:
        raise MorError(
            f"{path}: reading {_shape_text(image)} voxels needs about "
            f"{needed / 2**30:.1f} GiB of memory but only {available / 2**30:.1f} "
            "GiB is available. Close other programs, or crop or downsample the "
            "image first (if the shape looks wrong, the header is damaged)."
        )


def _shape_text(image) -> str:
    dims = "x".join(str(int(n)) for n in image.shape)
    try:
        return f"{dims} {np.dtype(image.get_data_dtype()).name}"
    except (TypeError, ValueError, AttributeError):
        return dims


def _available_memory_bytes() -> int | None:
    """Memory a new array can use: MemAvailable + SwapFree, else physical RAM.

    None when the platform tells neither (the check is then skipped).
    """
    try:
        fields = {}
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                fields[key] = int(rest.split()[0]) * 1024
        return fields["MemAvailable"] + fields.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


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


def check_sidecar_hash(
    image_path: str | Path, sidecar: dict | None = None, stacklevel: int = 3
) -> bool:
    """Warn when a sidecar's ``ImageSHA256`` does not match the image beside it.

    napari-mor writes a map and its sidecar as a pair, the sidecar recording the
    SHA-256 of the map. A mismatch means the sidecar describes another map: a
    write was interrupted between the two renames, two runs wrote the same
    output at once, or one of the files was replaced by hand.

    Parameters
    ----------
    image_path : str or Path
        The image file.
    sidecar : dict, optional
        The sidecar content when already read; otherwise the sidecar beside the
        image is read (a missing or unreadable sidecar counts as "no hash").
    stacklevel : int
        Passed to :func:`warnings.warn`.

    Returns
    -------
    bool
        False when the sidecar carries a hash that differs from the image's
        (a :class:`MorWarning` was issued); True otherwise.
    """
    sidecar_path = sidecar_path_for(image_path)
    if sidecar is None:
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return True
    if not isinstance(sidecar, dict) or IMAGE_SHA256_KEY not in sidecar:
        return True
    recorded = sidecar[IMAGE_SHA256_KEY]
    actual = file_sha256(image_path)
    if recorded == actual:
        return True
    warnings.warn(
        f"{sidecar_path} does not describe {image_path}: its {IMAGE_SHA256_KEY} "
        f"({str(recorded)[:12]}...) differs from the image's ({actual[:12]}...). "
        "A write was interrupted or two runs wrote the same output, so the "
        "provenance (model, inputs, timing) may belong to another map; run the "
        "command that made this image again.",
        MorWarning,
        stacklevel=stacklevel,
    )
    return False


def read_map_sidecar(path: str | Path | None) -> dict | None:
    """The JSON sidecar describing an image, or None.

    None when there is no path, no sidecar, no JSON object, or when the
    sidecar's ``ImageSHA256`` names another file (an interrupted or concurrent
    write): such provenance describes another map and is never used. The
    mismatch warning is left to the image loader (it warns once).
    """
    if path is None:
        return None
    try:
        content = json.loads(sidecar_path_for(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MorWarning)
        matches = check_sidecar_hash(path, content)
    return content if matches else None
