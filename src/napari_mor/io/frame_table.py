"""The editable frame table: minutes on screen, seconds in files.

One row per frame (start, end, duration in minutes and the condition window
holding its mid-time); edited rows turn back into a validated
:class:`~napari_mor.io.timing.FrameTiming` in seconds. The default condition
windows are :data:`napari_mor.defaults.DEFAULT_WINDOWS_MIN`. Nothing here
imports napari or Qt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.timing import FrameTiming, validate_frame_timing

__all__ = [
    "FrameRow",
    "frame_table",
    "timing_from_table",
    "validate_windows",
    "window_of",
]


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
    """Name of the first window whose ``[start, end]`` holds a time (or "").

    Parameters
    ----------
    mid_min : float
        Time, minutes from injection (usually a frame's mid-time).
    windows_min : dict[str, (float, float)]
        Condition windows ``(start_min, end_min)``, minutes, in priority order.

    Returns
    -------
    str
        The window's name, "" when no window holds ``mid_min``.
    """
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
        None: no windows (every row's window is "").

    Returns
    -------
    rows : list of FrameRow, length n_frames

    Raises
    ------
    MorError
        When a window is not ``(start, end)`` with end after start.
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
    """Raise :class:`MorError` unless each window is ``(start, end)``, end > start.

    Parameters
    ----------
    windows_min : dict[str, (float, float)]
        Condition windows, minutes from injection.
    """
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
