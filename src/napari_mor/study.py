"""The study a user opens first: BIDS discovery, frame table, quick looks, study file.

Qt-free core of the "Study" dock: finding PET runs and T1w images in a BIDS
folder, the editable frame table (minutes in the UI, seconds in files), the
duration-weighted mean image over a time range, the TAC of the voxel under a
world point, and the study file (JSON with paths relative to its folder).
Nothing here imports napari or Qt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.pet import sidecar_path_for
from napari_mor.io.timing import FrameTiming, validate_frame_timing
from napari_mor.rois.resample import world_to_voxel as voxel_coordinates

#: Version of the study-file format written by :func:`save_study`.
STUDY_FORMAT_VERSION = 1

#: Condition windows offered by default, minutes from injection.
DEFAULT_WINDOWS_MIN = {"baseline": (0.0, 45.0), "challenge": (45.0, 90.0)}

#: Key that marks a JSON file as a napari-mor study.
STUDY_FORMAT_KEY = "napari_mor_study"

_PET_PATTERNS = ("*_pet.nii.gz", "*_pet.nii", "*.v")
_T1W_PATTERNS = ("*_T1w.nii.gz", "*_T1w.nii")


# --------------------------------------------------------------------------- BIDS


@dataclass(frozen=True)
class PetRun:
    """One PET image found in a BIDS folder.

    Parameters
    ----------
    path : Path
        The image (``*_pet.nii[.gz]`` or ECAT ``*.v``).
    sidecar : Path or None
        The JSON sidecar beside it, None when missing (ECAT files carry their
        own frame times; a NIfTI without sidecar needs a frames TSV).
    """

    path: Path
    sidecar: Path | None

    @property
    def needs_frames_tsv(self) -> bool:
        """True for a NIfTI PET without a sidecar (no frame timing)."""
        return self.sidecar is None and not self.path.name.lower().endswith(".v")


@dataclass(frozen=True)
class BidsListing:
    """PET runs, T1w images and subjects found in a folder.

    Parameters
    ----------
    folder : Path
        The folder searched.
    pet_runs : tuple of PetRun
        PET images, sorted by path.
    t1w_images : tuple of Path
        T1-weighted MR images, sorted by path.
    subjects : tuple of Path
        ``sub-*`` folders holding PET (empty when ``folder`` is one subject).
    """

    folder: Path
    pet_runs: tuple[PetRun, ...]
    t1w_images: tuple[Path, ...]
    subjects: tuple[Path, ...] = ()


def _datatype_dirs(subject: Path, datatype: str) -> list[Path]:
    """``subject/<datatype>`` and ``subject/ses-*/<datatype>`` folders."""
    dirs = [subject / datatype]
    dirs += sorted(p / datatype for p in subject.glob("ses-*") if p.is_dir())
    return [d for d in dirs if d.is_dir()]


def _glob_all(dirs: Iterable[Path], patterns: Sequence[str]) -> list[Path]:
    found = {p for d in dirs for pattern in patterns for p in d.glob(pattern)}
    return sorted(p for p in found if p.is_file())


def _subject_listing(subject: Path) -> tuple[list[PetRun], list[Path]]:
    pets = _glob_all(_datatype_dirs(subject, "pet"), _PET_PATTERNS)
    runs = []
    for pet in pets:
        sidecar = sidecar_path_for(pet)
        runs.append(PetRun(pet, sidecar if sidecar.is_file() else None))
    t1w = _glob_all(_datatype_dirs(subject, "anat"), _T1W_PATTERNS)
    return runs, t1w


def find_bids_subject(folder: str | Path) -> BidsListing:
    """List the PET runs and T1w images of a BIDS subject (or of a dataset).

    Parameters
    ----------
    folder : str or Path
        A subject folder (``sub-XX`` with ``pet/`` and ``anat/``, optionally
        inside ``ses-*``), or a dataset folder holding ``sub-*`` folders.

    Returns
    -------
    BidsListing
        For a subject: its PET runs (``pet/*_pet.nii[.gz]`` with or without a
        sidecar, ``pet/*.v``) and T1w images (``anat/*_T1w.nii[.gz]``). For a
        dataset: the subjects that hold PET, and all their runs and images.

    Raises
    ------
    MorError
        When the folder does not exist or holds no PET image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MorError(f"{folder} is not a folder; choose a BIDS subject folder.")
    runs, t1w = _subject_listing(folder)
    subjects: list[Path] = []
    if not runs:
        for subject in sorted(p for p in folder.glob("sub-*") if p.is_dir()):
            sub_runs, sub_t1w = _subject_listing(subject)
            if sub_runs:
                subjects.append(subject)
                runs += sub_runs
                t1w += sub_t1w
    if not runs:
        raise MorError(
            f"No PET found in {folder}: expected sub-*/pet/*_pet.nii.gz (or .nii, "
            "or ECAT .v) in a BIDS subject folder, or sub-* folders holding them. "
            "Choose the subject folder or open the PET file directly."
        )
    return BidsListing(folder, tuple(runs), tuple(t1w), tuple(subjects))


# --------------------------------------------------------------------- frame table


@dataclass(frozen=True)
class FrameRow:
    """One row of the frame table, minutes from injection.

    Parameters
    ----------
    frame : int
        Frame index (0-based, as the napari time slider).
    start_min, end_min, duration_min : float
        Frame start, end and length, minutes.
    window : str
        Name of the condition window holding the frame's mid-time ("" if none).
    """

    frame: int
    start_min: float
    end_min: float
    duration_min: float
    window: str = ""


def window_of(mid_min: float, windows_min: Mapping[str, Sequence[float]]) -> str:
    """Name of the first window whose ``[start, end]`` holds ``mid_min`` (or "")."""
    for name, (start, end) in windows_min.items():
        if start <= mid_min <= end:
            return str(name)
    return ""


def frame_table(
    timing: FrameTiming, windows_min: Mapping[str, Sequence[float]] | None = None
) -> list[FrameRow]:
    """Rows of the frame table.

    Parameters
    ----------
    timing : FrameTiming
        Frame starts and durations (seconds).
    windows_min : dict[str, (float, float)], optional
        Condition windows, minutes; a frame is in a window when its mid-time is.

    Returns
    -------
    rows : list of FrameRow, length n_frames
    """
    windows_min = windows_min or {}
    validate_windows(windows_min)
    return [
        FrameRow(
            frame=i,
            start_min=float(start),
            end_min=float(end),
            duration_min=float(duration),
            window=window_of(float(mid), windows_min),
        )
        for i, (start, end, duration, mid) in enumerate(
            zip(
                timing.frame_start_min,
                timing.frame_end_min,
                timing.frame_duration_min,
                timing.frame_mid_min,
                strict=True,
            )
        )
    ]


def timing_from_table(
    rows: Sequence[FrameRow | Sequence[float]], n_volumes: int | None = None
) -> FrameTiming:
    """Frame timing from edited table rows, validated.

    Parameters
    ----------
    rows : sequence of FrameRow or (start_min, duration_min) pairs
        One row per frame; only the start and the duration are read (minutes).
    n_volumes : int, optional
        Number of PET volumes the table must match.

    Returns
    -------
    FrameTiming
        Starts and durations in seconds.

    Raises
    ------
    MorError
        When frames overlap, run backwards, have a non-positive length, start
        before injection, or their number differs from ``n_volumes``.
    """
    try:
        pairs = [
            (row.start_min, row.duration_min) if isinstance(row, FrameRow) else row
            for row in rows
        ]
        start_min = np.array([float(p[0]) for p in pairs], dtype=np.float64)
        duration_min = np.array([float(p[1]) for p in pairs], dtype=np.float64)
    except (TypeError, ValueError, IndexError) as err:
        raise MorError(
            f"Frame table: start and duration must be numbers in minutes ({err}); "
            "re-enter the edited cell."
        ) from err
    start_s, duration_s = start_min * 60.0, duration_min * 60.0
    validate_frame_timing(
        start_s, duration_s, n_volumes, source="Frame table (times shown here in s)"
    )
    return FrameTiming(start_s, duration_s)


def validate_windows(windows_min: Mapping[str, Sequence[float]]) -> None:
    """Raise :class:`MorError` unless each window is ``(start, end)``, end > start."""
    for name, window in windows_min.items():
        if len(window) != 2:
            raise MorError(
                f"Window {name!r} must be (start_min, end_min); got {list(window)}."
            )
        start, end = (float(v) for v in window)
        if not (np.isfinite(start) and np.isfinite(end)) or not end > start:
            raise MorError(
                f"Window {name!r} is {start:g}-{end:g} min; the end must be after "
                "the start. Fix the window limits."
            )


# -------------------------------------------------------------------- quick looks


def _check_pet(pet_data: np.ndarray, timing: FrameTiming | None = None) -> None:
    if pet_data.ndim != 4:
        raise MorError(
            f"PET data must be 4D (t, x, y, z); got shape {tuple(pet_data.shape)}."
        )
    if timing is not None and timing.n_frames != pet_data.shape[0]:
        raise MorError(
            f"PET has {pet_data.shape[0]} frames but the timing lists "
            f"{timing.n_frames}; fix the frame table or load the right frames TSV."
        )


def summed_image(
    pet_data: np.ndarray, timing: FrameTiming, start_min: float, end_min: float
) -> np.ndarray:
    """Duration-weighted mean image over the frames in a time range.

    Parameters
    ----------
    pet_data : ndarray, shape (t, x, y, z)
        Activity, kBq/mL.
    timing : FrameTiming
        Frame timing (seconds).
    start_min, end_min : float
        Time range, minutes from injection; a frame is used when its mid-time
        lies in ``[start_min, end_min]``.

    Returns
    -------
    mean_image : ndarray, shape (x, y, z), float32
        ``sum_i d_i * C_i / sum_i d_i`` over the frames used, kBq/mL.

    Raises
    ------
    MorError
        When no frame's mid-time lies in the range, or the range is empty.
    """
    _check_pet(pet_data, timing)
    in_range = timing.frames_in_window(float(start_min), float(end_min))
    if not in_range.any():
        mids = timing.frame_mid_min
        raise MorError(
            f"No frame has its mid-time in {start_min:g}-{end_min:g} min (frame "
            f"mid-times run {mids.min():.3g}-{mids.max():.3g} min); widen the range."
        )
    weights = timing.frame_duration_s[in_range]
    frames = np.asarray(pet_data)[in_range]
    mean = np.tensordot(weights / weights.sum(), frames, axes=(0, 0))
    return np.asarray(mean, dtype=np.float32)


def world_to_voxel(
    affine: np.ndarray, world_mm: Sequence[float], shape: Sequence[int]
) -> tuple[int, int, int]:
    """Index of the voxel holding a world point (nearest voxel centre).

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        Voxel-to-world (mm) transform.
    world_mm : sequence of 3 floats
        World point, mm.
    shape : sequence of 3 ints
        Grid shape (x, y, z).

    Raises
    ------
    MorError
        When the point lies outside the grid.
    """
    world = np.asarray(world_mm, dtype=np.float64).ravel()
    if world.size != 3 or not np.all(np.isfinite(world)):
        raise MorError(f"A world point needs 3 finite coordinates (mm); got {world}.")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise MorError(f"An affine must be 4x4; got shape {affine.shape}.")
    index = np.rint(voxel_coordinates(world, affine)).astype(int)
    shape = np.asarray(shape[-3:], dtype=int)
    if np.any(index < 0) or np.any(index >= shape):
        raise MorError(
            f"World point ({', '.join(f'{v:.1f}' for v in world)}) mm is outside "
            f"the PET field of view (voxel {tuple(int(i) for i in index)}, grid "
            f"{tuple(int(n) for n in shape)}); click inside the PET."
        )
    return tuple(int(i) for i in index)


def voxel_tac(
    pet_data: np.ndarray, affine: np.ndarray, world_mm: Sequence[float]
) -> np.ndarray:
    """Time-activity curve of the PET voxel holding a world point.

    Parameters
    ----------
    pet_data : ndarray, shape (t, x, y, z)
        Activity, kBq/mL.
    affine : ndarray, shape (4, 4)
        Spatial voxel-to-world (mm) transform of the PET.
    world_mm : sequence of 3 floats
        World point (x, y, z), mm.

    Returns
    -------
    tac : ndarray, shape (t,), float64
        Activity of the nearest voxel in every frame, kBq/mL (a copy).

    Raises
    ------
    MorError
        When the point is outside the PET field of view.
    """
    _check_pet(pet_data)
    i, j, k = world_to_voxel(affine, world_mm, pet_data.shape[1:])
    return np.array(pet_data[:, i, j, k], dtype=np.float64)


def find_label(lut: Mapping[int, str], name_contains: str) -> int | None:
    """First label (lowest value) whose name contains a text, case-insensitive."""
    matches = sorted(
        int(k) for k, v in lut.items() if name_contains.lower() in str(v).lower()
    )
    return matches[0] if matches else None


def region_tac(pet_data: np.ndarray, label_data: np.ndarray, label: int) -> np.ndarray:
    """Mean TAC of one label on the PET grid.

    Parameters
    ----------
    pet_data : ndarray, shape (t, x, y, z)
        Activity, kBq/mL.
    label_data : ndarray, shape (x, y, z), int
        Label image on the PET grid.
    label : int
        Label value.

    Returns
    -------
    tac : ndarray, shape (t,), float64
        Mean activity of the label's voxels per frame, kBq/mL.
    """
    _check_pet(pet_data)
    if tuple(label_data.shape) != tuple(pet_data.shape[1:]):
        raise MorError(
            f"Label image shape {tuple(label_data.shape)} differs from the PET grid "
            f"{tuple(pet_data.shape[1:])}; resample the labels to the PET first."
        )
    mask = np.asarray(label_data) == label
    if not mask.any():
        raise MorError(f"Label {label} has no voxels in the label image.")
    return np.asarray(pet_data)[:, mask].mean(axis=1, dtype=np.float64)


# ---------------------------------------------------------------------- study file


@dataclass
class StudyState:
    """What the Study dock saves and restores.

    Parameters
    ----------
    pet_path : Path or None
        Dynamic PET image.
    mr_path : Path or None
        T1w MR image.
    frames_tsv_path : Path or None
        Frames TSV used instead of the sidecar.
    frame_start_s, frame_duration_s : list of float or None
        Frame timing fixed by hand in the table (seconds); overrides the file
        timing when given.
    windows_min : dict[str, (float, float)]
        Condition windows, minutes.
    labels_path, lut_path : Path or None
        ROI label image and its lookup table.
    mean_window_min : (float, float) or None
        Time range of the last mean image, minutes.
    fit_settings : dict
        Last fit settings (model, reference region, t*, ...), JSON types.
    """

    pet_path: Path | None = None
    mr_path: Path | None = None
    frames_tsv_path: Path | None = None
    frame_start_s: list[float] | None = None
    frame_duration_s: list[float] | None = None
    windows_min: dict[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_WINDOWS_MIN)
    )
    labels_path: Path | None = None
    lut_path: Path | None = None
    mean_window_min: tuple[float, float] | None = None
    fit_settings: dict = field(default_factory=dict)

    @property
    def frame_timing(self) -> FrameTiming | None:
        """The hand-fixed frame timing, or None."""
        if self.frame_start_s is None or self.frame_duration_s is None:
            return None
        return FrameTiming(self.frame_start_s, self.frame_duration_s)


_PATH_FIELDS = ("pet_path", "mr_path", "frames_tsv_path", "labels_path", "lut_path")


def _relative(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    path = Path(path).absolute()
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def save_study(path: str | Path, state: StudyState) -> Path:
    """Write a study file (JSON); paths are stored relative to its folder.

    Parameters
    ----------
    path : str or Path
        Output ``.json`` file.
    state : StudyState
        What to save.

    Returns
    -------
    Path
        The file written.
    """
    from napari_mor.io.writers import provenance_base, write_json

    path = Path(path)
    if path.suffix.lower() != ".json":
        raise MorError(f"A study file must end in .json; got {path.name}.")
    validate_windows(state.windows_min)
    _check_frame_fix(state, str(path))
    base = path.absolute().parent
    content = {
        STUDY_FORMAT_KEY: STUDY_FORMAT_VERSION,
        **{name: _relative(getattr(state, name), base) for name in _PATH_FIELDS},
        "frame_start_s": _float_list(state.frame_start_s),
        "frame_duration_s": _float_list(state.frame_duration_s),
        "windows_min": {
            str(k): [float(v[0]), float(v[1])] for k, v in state.windows_min.items()
        },
        "mean_window_min": _float_list(state.mean_window_min),
        "fit_settings": dict(state.fit_settings),
        "provenance": provenance_base(),
    }
    base.mkdir(parents=True, exist_ok=True)
    return write_json(path, content)


def _float_list(values) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def load_study(path: str | Path) -> StudyState:
    """Read a study file written by :func:`save_study`.

    Relative paths are resolved against the study file's folder, so a study
    folder can be moved or shared as a whole.

    Raises
    ------
    MorError
        When the file is missing, not JSON, not a napari-mor study, of a newer
        format version, or holds invalid windows or frame timing.
    """
    path = Path(path)
    if not path.is_file():
        raise MorError(f"Study file {path} does not exist; check the path.")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MorError(f"{path} is not valid JSON ({err}).") from err
    if not isinstance(content, dict) or STUDY_FORMAT_KEY not in content:
        raise MorError(
            f"{path} is not a napari-mor study file (no {STUDY_FORMAT_KEY!r} "
            "version field); open a study saved by the Study dock."
        )
    version = content[STUDY_FORMAT_KEY]
    if not isinstance(version, int) or version > STUDY_FORMAT_VERSION:
        raise MorError(
            f"{path} has study format version {version!r}; this napari-mor reads "
            f"versions up to {STUDY_FORMAT_VERSION}. Update napari-mor."
        )
    base = path.absolute().parent
    paths = {
        name: (base / content[name]).resolve() if content.get(name) else None
        for name in _PATH_FIELDS
    }
    windows = content.get("windows_min") or {}
    if not isinstance(windows, dict):
        raise MorError(f"{path}: windows_min must map a name to [start, end] min.")
    windows_min = {str(k): (float(v[0]), float(v[1])) for k, v in windows.items()}
    validate_windows(windows_min)
    mean_window = content.get("mean_window_min")
    state = StudyState(
        **paths,
        frame_start_s=_float_list(content.get("frame_start_s")),
        frame_duration_s=_float_list(content.get("frame_duration_s")),
        windows_min=windows_min,
        mean_window_min=tuple(float(v) for v in mean_window) if mean_window else None,
        fit_settings=dict(content.get("fit_settings") or {}),
    )
    _check_frame_fix(state, str(path))
    return state


def _check_frame_fix(state: StudyState, source: str) -> None:
    if (state.frame_start_s is None) != (state.frame_duration_s is None):
        raise MorError(
            f"{source}: frame_start_s and frame_duration_s must be given together."
        )
    if state.frame_start_s is not None:
        validate_frame_timing(
            np.asarray(state.frame_start_s, dtype=np.float64),
            np.asarray(state.frame_duration_s, dtype=np.float64),
            source=source,
        )
