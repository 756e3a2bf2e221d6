"""The study session the docks share, and the study file that saves it.

:class:`StudyState` holds what the Study dock opened and fixed (PET, MR,
frames TSV, hand-fixed frame timing, condition windows, ROI labels, the last
mean-image range, fit settings). :func:`save_study` writes it as JSON with
paths relative to the file's folder, so a study folder can be moved or shared
as a whole; :func:`load_study` reads it back. Nothing here imports napari or Qt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import DEFAULT_WINDOWS_MIN
from napari_mor.io.frame_table import validate_windows
from napari_mor.io.timing import FrameTiming, validate_frame_timing

__all__ = [
    "STUDY_FORMAT_KEY",
    "STUDY_FORMAT_VERSION",
    "StudyState",
    "load_study",
    "save_study",
]

#: Version of the study-file format written by :func:`save_study`.
STUDY_FORMAT_VERSION = 1

#: Key that marks a JSON file as a napari-mor study.
STUDY_FORMAT_KEY = "napari_mor_study"


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
        Condition windows, minutes (default
        :data:`napari_mor.defaults.DEFAULT_WINDOWS_MIN`).
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

    Raises
    ------
    MorError
        When the file does not end in ``.json``, or the state holds invalid
        windows or frame timing.
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

    Parameters
    ----------
    path : str or Path
        The study ``.json`` file.

    Returns
    -------
    StudyState

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
