"""The frame table (napari_mor.io.frame_table): minutes, windows, validated edits."""

from __future__ import annotations

import numpy as np
import pytest
from _study_helpers import uneven_timing

from napari_mor import MorError
from napari_mor.io.frame_table import FrameRow, frame_table, timing_from_table

WINDOWS = {"baseline": (0.0, 45.0), "challenge": (45.0, 90.0)}


def test_frame_table_rows_in_minutes_with_windows():
    rows = frame_table(uneven_timing(), WINDOWS)
    assert [r.frame for r in rows] == [0, 1, 2, 3, 4]
    assert rows[1].start_min == pytest.approx(1.0)
    assert rows[1].end_min == pytest.approx(3.0)
    assert rows[1].duration_min == pytest.approx(2.0)
    assert [r.window for r in rows] == [
        "baseline",
        "baseline",
        "baseline",
        "challenge",  # mid 47.5 min
        "challenge",  # mid 55 min
    ]
    late = frame_table(uneven_timing(), {"late": (50.0, 60.0)})
    assert [r.window for r in late] == ["", "", "", "", "late"]


def test_timing_from_table_round_trip_and_edit():
    rows = frame_table(uneven_timing(), WINDOWS)
    timing = timing_from_table(rows, n_volumes=5)
    np.testing.assert_allclose(timing.frame_start_s, uneven_timing().frame_start_s)
    edited = [(r.start_min, r.duration_min) for r in rows]
    edited[4] = (50.0, 5.0)
    timing = timing_from_table(edited)
    assert timing.frame_start_s[4] == pytest.approx(3000.0)
    assert timing.frame_duration_s[4] == pytest.approx(300.0)


def test_timing_from_table_rejects_overlap_backwards_and_bad_values():
    rows = [(r.start_min, r.duration_min) for r in frame_table(uneven_timing())]
    overlap = list(rows)
    overlap[1] = (1.0, 10.0)  # ends at 11 min, frame 2 starts at 3 min
    with pytest.raises(MorError, match="overlap"):
        timing_from_table(overlap)
    backwards = list(rows)
    backwards[3] = (2.0, 1.0)  # starts before frame 2
    with pytest.raises(MorError, match="not increasing"):
        timing_from_table(backwards)
    with pytest.raises(MorError, match="duration"):
        timing_from_table([(0.0, 1.0), (1.0, 0.0)])
    with pytest.raises(MorError, match="numbers"):
        timing_from_table([(0.0, 1.0), ("soon", 1.0)])
    with pytest.raises(MorError, match="5 frames"):
        timing_from_table(rows[:4], n_volumes=5)
    with pytest.raises(MorError, match="end must be after"):
        frame_table(uneven_timing(), {"bad": (40.0, 30.0)})


def test_frame_row_is_a_plain_record():
    assert isinstance(FrameRow(0, 0.0, 1.0, 1.0), FrameRow)
