"""Dynamic PET: 4D NIfTI with a BIDS-PET sidecar or frames TSV, and ECAT7."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError, MorWarning
from napari_mor.io._nifti import (
    affine_of,
    check_sidecar_hash,
    load_image,
    read_data,
    sidecar_path_for,
)
from napari_mor.io.timing import (
    BIDS_BOOLEAN_KEYS,
    FrameTiming,
    read_frames_tsv,
    read_sidecar,
    sidecar_bool,
    sidecar_str,
    timing_from_sidecar,
    validate_frame_timing,
)
from napari_mor.io.writers import write_nifti

__all__ = [
    "ACTIVITY_UNIT",
    "UNIT_TO_KBQ_ML",
    "DynamicPET",
    "frames_by_voxel",
    "load_pet",
    "sidecar_path_for",
    "unit_scale_to_kbq_ml",
    "voxel_order",
    "write_pet",
]

#: Factor that turns one unit of activity concentration into kBq/mL.
UNIT_TO_KBQ_ML = {
    "bq/ml": 1e-3,
    "kbq/ml": 1.0,
    "mbq/ml": 1e3,
    # DICOM "Units" (0054,1001) spellings that converters copy into sidecars
    "bqml": 1e-3,
    "kbqml": 1.0,
    "mbqml": 1e3,
    "nci/ml": 0.037,
    "uci/ml": 37.0,
    "µci/ml": 37.0,
    "mci/ml": 37e3,
}

ACTIVITY_UNIT = "kBq/mL"


@dataclass(frozen=True)
class DynamicPET:
    """A dynamic PET scan in kBq/mL.

    Parameters
    ----------
    data : ndarray, shape (t, x, y, z), float32
        Activity concentration, kBq/mL, time first, then NIfTI voxel order.
        From :func:`load_pet` it is the time-first view of the file's
        (x, y, z, t) array, not a transposed copy (x varies fastest in memory;
        read it as (t, n_voxels) with :func:`frames_by_voxel`).
    affine : ndarray, shape (4, 4)
        Voxel-to-world (mm) transform of the spatial axes.
    timing : FrameTiming
        Frame starts and durations, seconds from injection.
    source_units : str
        Unit found in the file (converted to kBq/mL by ``unit_scale``).
    unit_scale : float
        Factor applied to the stored values to get kBq/mL.
    decay_corrected : bool or None
        ``ImageDecayCorrected`` from the sidecar (None when unknown).
    radionuclide : str or None
        ``TracerRadionuclide`` from the sidecar.
    nonfinite_mask : ndarray of bool, shape (x, y, z), or None
        Voxels that held NaN/Inf in any frame (set to 0 in ``data``).
    path : Path or None
        Source image.
    sidecar : dict
        The sidecar as read (empty for ECAT or a frames TSV).
    """

    data: np.ndarray
    affine: np.ndarray
    timing: FrameTiming
    source_units: str = ACTIVITY_UNIT
    unit_scale: float = 1.0
    decay_corrected: bool | None = None
    radionuclide: str | None = None
    nonfinite_mask: np.ndarray | None = None
    path: Path | None = None
    sidecar: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 4:
            raise MorError(
                "Dynamic PET data must be 4D (t, x, y, z); got shape "
                f"{self.data.shape}."
            )
        validate_frame_timing(
            self.timing.frame_start_s,
            self.timing.frame_duration_s,
            n_volumes=self.data.shape[0],
            source=str(self.path or "PET"),
        )

    def require_decay_corrected(self) -> None:
        """Raise :class:`MorError` when the sidecar says "not decay-corrected".

        Reference-region models compare activity over 90 min of a 20-min
        half-life tracer: uncorrected data would bias every parameter. Unknown
        status (no ``ImageDecayCorrected``) is accepted.
        """
        if self.decay_corrected is False:
            raise MorError(
                f"{self.path or 'PET'} is not decay-corrected (ImageDecayCorrected is "
                "false); kinetic models need activity decay-corrected to injection. "
                "Decay-correct the images (or fix the sidecar if they already are)."
            )

    @property
    def units(self) -> str:
        """Unit of ``data`` (always kBq/mL)."""
        return ACTIVITY_UNIT

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.data.shape[0])

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Shape of one frame (x, y, z)."""
        return tuple(int(n) for n in self.data.shape[1:])

    def metadata(self) -> dict:
        """Timing, units and origin as a plain dict (for ``layer.metadata``).

        ``nonfinite_mask`` (bool array) is included only when voxels were masked,
        so that fits on the layer leave them out too.
        """
        extra = {}
        if self.nonfinite_mask is not None and self.nonfinite_mask.any():
            extra["nonfinite_mask"] = self.nonfinite_mask
        return {
            **extra,
            "kind": "dynamic_pet",
            "frame_start_s": self.timing.frame_start_s.tolist(),
            "frame_duration_s": self.timing.frame_duration_s.tolist(),
            "frame_mid_min": np.round(self.timing.frame_mid_min, 4).tolist(),
            "units": ACTIVITY_UNIT,
            "source_units": self.source_units,
            "unit_scale_to_kBq_per_mL": self.unit_scale,
            "decay_corrected": self.decay_corrected,
            "radionuclide": self.radionuclide,
            "source_path": str(self.path) if self.path else None,
            "n_nonfinite_voxels": int(self.nonfinite_mask.sum())
            if self.nonfinite_mask is not None
            else 0,
        }


def voxel_order(pet: np.ndarray) -> str:
    """Order in which the voxels of ``pet`` (t, x, y, z) lie in memory.

    Returns ``"F"`` when x varies fastest (a time-first view of a NIfTI file's
    (x, y, z, t) array, as :func:`load_pet` returns without a
    transposing copy), else ``"C"`` (z fastest, a C-contiguous array).
    """
    if pet.ndim != 4:
        return "C"
    sx, sy, sz = (abs(s) for s in pet.strides[1:])
    return "F" if sx < sy < sz else "C"


def frames_by_voxel(pet: np.ndarray) -> tuple[np.ndarray, str]:
    """PET (t, x, y, z) as a (t, n_voxels) matrix, without copying when possible.

    Parameters
    ----------
    pet : ndarray, shape (t, x, y, z)

    Returns
    -------
    flat : ndarray, shape (t, x * y * z)
        A view when the spatial axes are contiguous in either order.
    order : {"C", "F"}
        How a voxel's column relates to (x, y, z): ``np.ravel_multi_index``
        with this ``order`` (use ``mask.ravel(order=order)`` and
        ``column.reshape((x, y, z), order=order)``).
    """
    order = voxel_order(pet)
    return pet.reshape((pet.shape[0], -1), order=order), order


def unit_scale_to_kbq_ml(units: str | None, source: str) -> float:
    """Factor turning ``units`` into kBq/mL (``cc`` is read as ``mL``).

    Parameters
    ----------
    units : str or None
        Activity unit (e.g. ``"Bq/mL"``); None means kBq/mL.
    source : str
        Where the unit came from, named in messages.

    Raises
    ------
    MorError
        When the unit is not a string or not a known activity unit.
    """
    if units is None:
        return 1.0
    if not isinstance(units, str):
        raise MorError(
            f'{source}: the activity unit must be a string such as "kBq/mL"; got '
            f"{units!r} ({type(units).__name__}). Set Units in the sidecar (or "
            "--units) to one of Bq/mL, kBq/mL, MBq/mL, nCi/mL, uCi/mL, mCi/mL."
        )
    key = units.strip().lower().replace(" ", "").replace("cc", "ml").replace("mL", "ml")
    key = key.replace("micro", "u").replace("μ", "u")
    if key not in UNIT_TO_KBQ_ML:
        known = "Bq/mL, kBq/mL, MBq/mL, nCi/mL, uCi/mL, mCi/mL"
        raise MorError(
            f"{source}: unknown activity unit {units!r}; set Units in the sidecar "
            "(or pass --units for files without one, e.g. ECAT) "
            f"to one of {known}."
        )
    return UNIT_TO_KBQ_ML[key]


def load_pet(
    path: str | Path,
    frames_tsv: str | Path | None = None,
    units: str | None = None,
) -> DynamicPET:
    """Load a dynamic PET scan and convert it to kBq/mL.

    Parameters
    ----------
    path : str or Path
        4D NIfTI (``.nii``/``.nii.gz``) with a BIDS-PET JSON sidecar beside it,
        or an ECAT7 file (``.v``, frame times from its subheaders).
    frames_tsv : str or Path, optional
        Frame timing TSV (``frame_start``, ``frame_duration``, seconds) used
        instead of the sidecar's timing.
    units : str, optional
        Activity unit of the stored values when the sidecar does not give one.

    Returns
    -------
    DynamicPET
        A new object; the file is never modified.

    Raises
    ------
    MorError
        For a missing, corrupt or non-4D image, missing or impossible timing, and
        sidecar values of the wrong JSON type: booleans such as
        ``ImageDecayCorrected`` must be ``true``/``false`` (not ``"false"`` or
        ``0``), ``Units`` and ``TracerRadionuclide`` strings, frame times and
        ``InjectionStart`` numbers; ``null`` is refused wherever it is read.

    Warns
    -----
    MorWarning
        When the sidecar lacks ``Units`` (kBq/mL assumed), when voxels hold
        NaN/Inf, or when the sidecar's ``ImageSHA256`` does not match the image
        (it describes another file).
    """
    path = Path(path)
    if path.name.lower().endswith(".v"):
        return _load_ecat(path, frames_tsv, units)
    image = load_image(path)
    if len(image.shape) != 4 or image.shape[3] < 2:
        raise MorError(
            f"{path} has shape {tuple(image.shape)}; dynamic PET must be 4D "
            "(x, y, z, frames) with at least 2 frames. Load a 3D file as MR/static "
            "image instead."
        )
    n_volumes = int(image.shape[3])
    sidecar_file = sidecar_path_for(path)
    source = str(sidecar_file)
    sidecar = read_sidecar(sidecar_file) if sidecar_file.is_file() else {}
    for key in BIDS_BOOLEAN_KEYS:
        sidecar_bool(sidecar, key, source)
    radionuclide = sidecar_str(sidecar, "TracerRadionuclide", source)
    sidecar_units = sidecar_str(sidecar, "Units", source)
    if frames_tsv is not None:
        timing = read_frames_tsv(frames_tsv, n_volumes)
    elif sidecar_file.is_file():
        timing = timing_from_sidecar(sidecar, n_volumes, source)
    else:
        read_sidecar(sidecar_file)  # raises with the keys needed
    source_units = units or sidecar_units
    if source_units is None:
        warnings.warn(
            f"{path}: no activity unit in the sidecar; assuming kBq/mL. Add "
            "'Units' to the sidecar to remove this warning.",
            MorWarning,
            stacklevel=2,
        )
    scale = unit_scale_to_kbq_ml(source_units, source)
    data = np.moveaxis(read_data(image, path), 3, 0)
    data, nonfinite = _scaled_finite(data, scale, path)
    if sidecar:
        check_sidecar_hash(path, sidecar)
    return DynamicPET(
        data=data,
        affine=affine_of(image, path),
        timing=timing,
        source_units=source_units or ACTIVITY_UNIT,
        unit_scale=scale,
        decay_corrected=sidecar_bool(sidecar, "ImageDecayCorrected", source),
        radionuclide=radionuclide,
        nonfinite_mask=nonfinite,
        path=path,
        sidecar=sidecar,
    )


def _scaled_finite(
    data: np.ndarray, scale: float, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Scale to kBq/mL; zero and report NaN/Inf voxels.

    No transposing copy: ``data`` is the time-first view of the file's
    (x, y, z, t) array and keeps its memory order (x fastest; see
    :func:`frames_by_voxel`). For an uncompressed
    float32 ``.nii`` without NaN and in kBq/mL it stays the copy-on-write
    memory map nibabel reads, so the scan is never copied; otherwise the
    scaled or cleaned array is new. The caller's array is never modified.
    """
    voxel_bad = np.zeros(data.shape[1:], dtype=bool)
    for frame in data:  # loop over frames: one frame-sized temporary, not 4D
        voxel_bad |= ~np.isfinite(frame)
    if voxel_bad.any():
        nonfinite = ~np.isfinite(data)
        warnings.warn(
            f"{path}: {int(voxel_bad.sum())} voxels hold NaN/Inf in some frame; they "
            "were set to 0 and are excluded from fits (nonfinite_mask).",
            MorWarning,
            stacklevel=3,
        )
        data = np.where(nonfinite, np.float32(0), data)
    if scale != 1.0:
        data = data * np.float32(scale)
    return np.asarray(data, dtype=np.float32), voxel_bad  # plain ndarray view


def _load_ecat(
    path: Path, frames_tsv: str | Path | None, units: str | None
) -> DynamicPET:
    image = load_image(path)
    data = read_data(image, path)
    if data.ndim == 3:
        data = data[..., np.newaxis]
    n_volumes = int(data.shape[3])
    if frames_tsv is not None:
        timing = read_frames_tsv(frames_tsv, n_volumes)
    else:
        timing = _ecat_timing(image, path)
    if n_volumes < 2:
        raise MorError(
            f"{path} holds a single frame; dynamic PET needs at least 2 frames."
        )
    header_units = str(image.header["data_units"].item(), "latin-1").strip("\x00 ")
    source_units = units or header_units or None
    scale = unit_scale_to_kbq_ml(source_units, str(path))
    data, nonfinite = _scaled_finite(np.moveaxis(data, 3, 0), scale, path)
    return DynamicPET(
        data=data,
        affine=affine_of(image, path),
        timing=timing,
        source_units=source_units or ACTIVITY_UNIT,
        unit_scale=scale,
        decay_corrected=None,
        radionuclide=None,
        nonfinite_mask=nonfinite,
        path=path,
    )


def _ecat_timing(image, path: Path) -> FrameTiming:
    """Frame start/duration (s) from ECAT7 subheaders (stored in ms)."""
    subheaders = image.get_subheaders().subheaders
    start_ms = np.array([float(sh["frame_start_time"].item()) for sh in subheaders])
    duration_ms = np.array([float(sh["frame_duration"].item()) for sh in subheaders])
    order = np.argsort(start_ms, kind="stable")
    if not np.array_equal(order, np.arange(order.size)):
        raise MorError(
            f"{path}: ECAT frames are stored out of time order; re-export the file "
            "or pass --frames FRAMES.tsv."
        )
    start_s, duration_s = start_ms / 1000.0, duration_ms / 1000.0
    validate_frame_timing(start_s, duration_s, len(subheaders), str(path))
    return FrameTiming(start_s, duration_s)


def write_pet(
    path: str | Path, pet: DynamicPET, extra_sidecar: dict | None = None
) -> Path:
    """Write dynamic PET as 4D NIfTI (x, y, z, t) plus a BIDS-PET sidecar.

    Parameters
    ----------
    path : str or Path
        Output ``.nii.gz`` or ``.nii``; the sidecar is ``X.json`` beside it.
    pet : DynamicPET
        Scan to write (kBq/mL, time first).
    extra_sidecar : dict, optional
        Further sidecar fields (provenance); they override the scan's.

    Returns
    -------
    Path
        The image path.

    Notes
    -----
    The sidecar holds ``FrameTimesStart``, ``FrameDuration`` (s), ``Units``
    (kBq/mL), decay-correction fields, provenance and ``ImageSHA256``; it is
    written with the image as one crash-safe pair (see
    :func:`~napari_mor.io.write_nifti`). Unknown decay status or radionuclide
    are left out rather than written as ``null``, which the loader refuses.
    """
    sidecar = {
        **pet.sidecar,
        **pet.timing.to_dict(),
        "Units": ACTIVITY_UNIT,
        "TimeZero": pet.sidecar.get("TimeZero", "00:00:00"),
        "InjectionStart": 0,
        "ImageDecayCorrected": pet.decay_corrected,
        "TracerRadionuclide": pet.radionuclide,
        **(extra_sidecar or {}),
    }
    for key in ("ImageDecayCorrected", "TracerRadionuclide"):
        if sidecar[key] is None:
            del sidecar[key]
    return write_nifti(path, np.moveaxis(pet.data, 0, 3), pet.affine, sidecar)
