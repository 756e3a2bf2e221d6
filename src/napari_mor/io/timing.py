"""Frame timing of a dynamic PET scan: validation, sidecar and TSV parsing."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.tables import write_rows_tsv

#: BIDS-PET keys that carry frame timing.
TIMING_KEYS = ("FrameTimesStart", "FrameDuration")


@dataclass(frozen=True)
class FrameTiming:
    """Start and duration of each PET frame, seconds from injection.

    Parameters
    ----------
    frame_start_s : ndarray, shape (n_frames,)
        Frame start times, seconds from injection (or from ``TimeZero``).
    frame_duration_s : ndarray, shape (n_frames,)
        Frame durations, seconds.
    """

    frame_start_s: np.ndarray
    frame_duration_s: np.ndarray

    def __post_init__(self) -> None:
        start = np.asarray(self.frame_start_s, dtype=np.float64).ravel()
        duration = np.asarray(self.frame_duration_s, dtype=np.float64).ravel()
        start.flags.writeable = False
        duration.flags.writeable = False
        object.__setattr__(self, "frame_start_s", start)
        object.__setattr__(self, "frame_duration_s", duration)
        validate_frame_timing(start, duration)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.frame_start_s.size)

    @property
    def frame_end_s(self) -> np.ndarray:
        """Frame end times, seconds."""
        return self.frame_start_s + self.frame_duration_s

    @property
    def frame_mid_s(self) -> np.ndarray:
        """Mid-frame times, seconds."""
        return self.frame_start_s + 0.5 * self.frame_duration_s

    @property
    def frame_start_min(self) -> np.ndarray:
        """Frame start times, minutes."""
        return self.frame_start_s / 60.0

    @property
    def frame_end_min(self) -> np.ndarray:
        """Frame end times, minutes."""
        return self.frame_end_s / 60.0

    @property
    def frame_mid_min(self) -> np.ndarray:
        """Mid-frame times, minutes."""
        return self.frame_mid_s / 60.0

    @property
    def frame_duration_min(self) -> np.ndarray:
        """Frame durations, minutes."""
        return self.frame_duration_s / 60.0

    def frames_in_window(self, start_min: float, end_min: float) -> np.ndarray:
        """Boolean mask of frames lying inside a window.

        A frame belongs to the window when its mid-time lies in
        ``[start_min, end_min]``.

        Parameters
        ----------
        start_min, end_min : float
            Window limits, minutes from injection.

        Returns
        -------
        in_window : ndarray of bool, shape (n_frames,)
        """
        if not end_min > start_min:
            raise MorError(
                f"Window {start_min:g}-{end_min:g} min is empty: the end must be "
                "after the start."
            )
        mid = self.frame_mid_min
        return (mid >= start_min) & (mid <= end_min)

    def to_dict(self) -> dict:
        """BIDS-PET style timing dictionary (seconds)."""
        return {
            "FrameTimesStart": self.frame_start_s.tolist(),
            "FrameDuration": self.frame_duration_s.tolist(),
        }


def validate_frame_timing(
    frame_start_s: np.ndarray,
    frame_duration_s: np.ndarray,
    n_volumes: int | None = None,
    source: str = "frame timing",
) -> None:
    """Check frame times and raise :class:`MorError` with a fix when they are wrong.

    Parameters
    ----------
    frame_start_s, frame_duration_s : ndarray, shape (n_frames,)
        Frame starts and durations, seconds.
    n_volumes : int, optional
        Number of volumes in the image; must equal the number of frames.
    source : str
        Where the timing came from, named in messages (e.g. the sidecar path).
    """
    start = np.asarray(frame_start_s, dtype=np.float64)
    duration = np.asarray(frame_duration_s, dtype=np.float64)
    fix = "fix the timing in the JSON sidecar or pass a frames TSV (--frames)."
    if start.ndim != 1 or duration.ndim != 1 or start.size == 0:
        raise MorError(f"{source}: frame times must be non-empty 1-D lists; {fix}")
    if start.size != duration.size:
        raise MorError(
            f"{source}: {start.size} frame start times but {duration.size} "
            f"frame durations; {fix}"
        )
    if n_volumes is not None and start.size != n_volumes:
        raise MorError(
            f"{source}: the image has {n_volumes} frames but the timing lists "
            f"{start.size}; {fix}"
        )
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(duration))):
        raise MorError(f"{source}: frame times contain NaN or Inf; {fix}")
    if np.any(start < 0):
        bad = int(np.flatnonzero(start < 0)[0])
        raise MorError(
            f"{source}: frame {bad} starts at {start[bad]:g} s, before injection "
            f"(negative); {fix}"
        )
    if np.any(duration <= 0):
        bad = int(np.flatnonzero(duration <= 0)[0])
        raise MorError(
            f"{source}: frame {bad} has duration {duration[bad]:g} s; durations "
            f"must be > 0; {fix}"
        )
    if np.any(np.diff(start) <= 0):
        bad = int(np.flatnonzero(np.diff(start) <= 0)[0]) + 1
        raise MorError(
            f"{source}: frame start times are not increasing (frame {bad} starts "
            f"at {start[bad]:g} s, frame {bad - 1} at {start[bad - 1]:g} s); {fix}"
        )
    end = start + duration
    overlap = end[:-1] - start[1:] > 1e-3
    if np.any(overlap):
        bad = int(np.flatnonzero(overlap)[0])
        raise MorError(
            f"{source}: frame {bad} ends at {end[bad]:g} s, after frame {bad + 1} "
            f"starts at {start[bad + 1]:g} s (frames overlap); {fix}"
        )


def read_sidecar(json_path: str | Path) -> dict:
    """Read a BIDS-PET JSON sidecar.

    Raises
    ------
    MorError
        When the file is missing, not valid JSON, or not a JSON object
        (``{...}``; e.g. ``null`` or a list).
    """
    json_path = Path(json_path)
    if not json_path.is_file():
        raise MorError(
            f"No JSON sidecar at {json_path}. Dynamic PET needs frame timing: write "
            f"a BIDS-PET sidecar with {', '.join(TIMING_KEYS)} (seconds), or pass "
            "a frames TSV (--frames FRAMES.tsv, columns frame_start, frame_duration)."
        )
    try:
        content = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MorError(
            f"{json_path} is not valid JSON ({err}); fix or replace the sidecar."
        ) from err
    if not isinstance(content, dict):
        raise MorError(
            f"{json_path} holds a JSON {_json_type(content)}, not an object; a "
            'sidecar is one object of "Key": value pairs, e.g. {"FrameTimesStart": '
            '[0, 30], "FrameDuration": [30, 30], "Units": "kBq/mL"}. Fix or '
            "replace the sidecar."
        )
    return content


#: BIDS-PET keys whose values must be JSON booleans (``true``/``false``).
BIDS_BOOLEAN_KEYS = (
    "ImageDecayCorrected",
    "PlasmaAvail",
    "WholeBloodAvail",
    "MetaboliteAvail",
    "MetaboliteRecoveryCorrectionApplied",
    "DispersionCorrected",
)


def _json_type(value) -> str:
    """The JSON name of a decoded value's type (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _null_error(key: str, source: str) -> MorError:
    return MorError(
        f"{source}: {key} is null, but napari-mor needs a value there; set it or "
        "delete the key from the sidecar."
    )


def sidecar_bool(sidecar: dict, key: str, source: str) -> bool | None:
    """A BIDS boolean from a sidecar: ``True``/``False``, or None when absent.

    Raises
    ------
    MorError
        When the value is not a JSON boolean (e.g. the string ``"false"``, the
        number ``0`` or ``null``).
    """
    if key not in sidecar:
        return None
    value = sidecar[key]
    if isinstance(value, bool):
        return value
    if value is None:
        raise MorError(
            f"{source}: {key} is null; it must be true or false (a JSON boolean, "
            "no quotes). Set it, or delete the key if the status is unknown."
        )
    guess = {"true": "true", "1": "true", "false": "false", "0": "false"}.get(
        str(value).strip().lower()
    )
    hint = f' (write "{key}": {guess})' if guess else ""
    raise MorError(
        f"{source}: {key} is the {_json_type(value)} {json.dumps(value)}, but BIDS "
        f"needs a JSON boolean: true or false without quotes{hint}. Fix the "
        "sidecar."
    )


def sidecar_str(sidecar: dict, key: str, source: str) -> str | None:
    """A string from a sidecar, or None when absent.

    Raises
    ------
    MorError
        When the value is ``null`` or not a string (e.g. ``"Units": 1000``).
    """
    if key not in sidecar:
        return None
    value = sidecar[key]
    if value is None:
        raise _null_error(key, source)
    if not isinstance(value, str):
        raise MorError(
            f"{source}: {key} is the {_json_type(value)} {json.dumps(value)}, but "
            'it must be a string in quotes (e.g. "Units": "kBq/mL"). Fix the '
            "sidecar."
        )
    return value


def sidecar_number(sidecar: dict, key: str, source: str) -> float | None:
    """A number from a sidecar, or None when absent.

    Raises
    ------
    MorError
        When the value is ``null``, a string (even ``"60"``) or a boolean.
    """
    if key not in sidecar:
        return None
    value = sidecar[key]
    if value is None:
        raise _null_error(key, source)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MorError(
            f"{source}: {key} {value!r} is not a number of seconds (it is a JSON "
            f"{_json_type(value)}); write a plain number without quotes. Fix it in "
            "the sidecar."
        )
    return float(value)


def _number_list(sidecar: dict, key: str, source: str) -> np.ndarray:
    """A required list of JSON numbers (seconds) from a sidecar."""
    values = sidecar[key]
    fix = "Fix the sidecar or pass a frames TSV (--frames)."
    if values is None:
        raise MorError(
            f"{source}: {key} is null; it must list one number per frame. {fix}"
        )
    if not isinstance(values, list):
        raise MorError(
            f"{source}: {key} must be a list of numbers (one per frame, seconds), "
            f"not a JSON {_json_type(values)}. {fix}"
        )
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MorError(
                f"{source}: {key}[{index}] is the {_json_type(value)} "
                f"{json.dumps(value)}; FrameTimesStart/FrameDuration must be lists "
                f"of numbers (seconds, no quotes). {fix}"
            )
    return np.asarray(values, dtype=np.float64)


def timing_from_sidecar(
    sidecar: dict, n_volumes: int | None = None, source: str = "sidecar"
) -> FrameTiming:
    """Frame timing from a BIDS-PET sidecar dictionary.

    ``TimeZero``/``InjectionStart`` are honoured: when ``InjectionStart`` (seconds
    relative to ``TimeZero``) is given, frame starts are shifted so that they
    count from injection. Without it (dcm2niix no longer writes it) injection is
    taken to be at the scan start (:func:`injection_assumed`).

    Raises
    ------
    MorError
        When timing keys are missing, hold anything but JSON numbers (strings
        such as ``"30"`` and ``null`` included), or describe impossible frames.
    """
    missing = [key for key in TIMING_KEYS if key not in sidecar]
    if missing:
        raise MorError(
            f"{source} lacks {', '.join(missing)}. Dynamic PET needs "
            f"{' and '.join(TIMING_KEYS)} (seconds); add them or pass a frames TSV "
            "(--frames FRAMES.tsv, columns frame_start, frame_duration)."
        )
    start = _number_list(sidecar, "FrameTimesStart", source)
    duration = _number_list(sidecar, "FrameDuration", source)
    injection_start_s = sidecar_number(sidecar, "InjectionStart", source) or 0.0
    start = start - injection_start_s
    validate_frame_timing(start, duration, n_volumes, source)
    return FrameTiming(start, duration)


def injection_assumed(sidecar: dict) -> bool:
    """True when a sidecar gives no ``InjectionStart``: injection at scan start."""
    return sidecar.get("InjectionStart") is None


def read_frames_tsv(tsv_path: str | Path, n_volumes: int | None = None) -> FrameTiming:
    """Frame timing from a TSV with columns ``frame_start`` and ``frame_duration`` (s).

    Parameters
    ----------
    tsv_path : str or Path
        Tab-separated file with a header row.
    n_volumes : int, optional
        Number of image volumes the timing must match.
    """
    tsv_path = Path(tsv_path)
    if not tsv_path.is_file():
        raise MorError(f"Frames file {tsv_path} does not exist.")
    try:
        with tsv_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except UnicodeDecodeError as err:
        raise MorError(
            f"{tsv_path} is not a UTF-8 text file ({err}); save it as tab-separated "
            "text."
        ) from err
    needed = {"frame_start", "frame_duration"}
    if not rows or not needed <= set(rows[0]):
        raise MorError(
            f"{tsv_path} must be tab-separated with a header row naming columns "
            "frame_start and frame_duration (seconds), one row per frame."
        )
    try:
        start = np.array([float(row["frame_start"]) for row in rows])
        duration = np.array([float(row["frame_duration"]) for row in rows])
    except (TypeError, ValueError) as err:
        raise MorError(f"{tsv_path}: non-numeric frame time ({err}).") from err
    validate_frame_timing(start, duration, n_volumes, str(tsv_path))
    return FrameTiming(start, duration)


def write_frames_tsv(timing: FrameTiming, tsv_path: str | Path) -> Path:
    """Write frame timing as a TSV (``frame_start``, ``frame_duration``, seconds).

    Written atomically by :func:`napari_mor.io.tables.write_rows_tsv`.
    """
    rows = [
        {"frame_start": start, "frame_duration": duration}
        for start, duration in zip(
            timing.frame_start_s, timing.frame_duration_s, strict=True
        )
    ]
    return write_rows_tsv(rows, ["frame_start", "frame_duration"], tsv_path)
