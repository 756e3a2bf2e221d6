"""Study dock, "Frames" section: the editable frame table and the current frame.

Rows come from :func:`napari_mor.io.frame_table.frame_table` (minutes, and the
condition window of each frame's mid-time). Editing a start or a duration
validates the whole table with :func:`~napari_mor.io.frame_table.
timing_from_table` and stores the new timing (seconds) in the PET layer's
metadata; an invalid edit is a notification and the table shows the layer's
timing again. Cells left as shown keep their exact value (the table rounds).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_mor._errors import MorError
from napari_mor._napari import _metadata as meta
from napari_mor._napari._dock import notify_errors
from napari_mor._napari.study.files import FilesSection
from napari_mor.io.frame_table import frame_table, timing_from_table
from napari_mor.io.timing import FrameTiming

COLUMNS = ("frame", "start (min)", "end (min)", "duration (min)", "window")
START_COL, DURATION_COL = 1, 3


class FramesSection(QGroupBox):
    """The frame table of the loaded PET and the current frame's mid-time.

    Parameters
    ----------
    files : FilesSection
        Holds the PET layer whose timing is shown and edited.
    windows_min : callable() -> dict
        The condition windows, minutes (the table's last column).

    Attributes
    ----------
    timing_edited : bool
        The timing was edited here since the PET was loaded.
    """

    def __init__(
        self, files: FilesSection, windows_min: Callable[[], dict], parent=None
    ) -> None:
        super().__init__("Frames (edit start or duration, minutes)", parent)
        self._files = files
        self._windows_min = windows_min
        self.viewer = files.viewer
        self.timing_edited = False
        self._filling = False
        self._shown_texts: list[tuple[str, str]] = []
        vbox = QVBoxLayout(self)
        self.frame_label = QLabel("")
        vbox.addWidget(self.frame_label)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.setMinimumHeight(160)
        self.table.itemChanged.connect(self._on_item_changed)
        vbox.addWidget(self.table)
        self.viewer.dims.events.current_step.connect(self.update_frame_label)

    # ------------------------------------------------------------ showing
    def show_new_pet(self) -> None:
        """A PET was loaded: label the time axis, show its frames."""
        self.timing_edited = False
        labels = list(self.viewer.dims.axis_labels)
        if len(labels) == 4:
            labels[0] = "frame"
            self.viewer.dims.axis_labels = labels
        self.fill()

    def clear(self) -> None:
        """Empty the table (no PET)."""
        self._filling = True
        self.table.setRowCount(0)
        self._filling = False

    def fill(self) -> None:
        """Show the PET layer's frames and their windows."""
        rows = frame_table(self._files.timing(), self._windows_min())
        self._filling = True
        self._shown_texts = []
        try:
            self.table.setRowCount(len(rows))
            for r, row in enumerate(rows):
                values = (
                    str(row.frame),
                    f"{row.start_min:.4g}",
                    f"{row.end_min:.4g}",
                    f"{row.duration_min:.4g}",
                    row.window,
                )
                self._shown_texts.append((values[START_COL], values[DURATION_COL]))
                for c, text in enumerate(values):
                    item = QTableWidgetItem(text)
                    if c not in (START_COL, DURATION_COL):
                        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    self.table.setItem(r, c, item)
        finally:
            self._filling = False

    def update_frame_label(self, event=None) -> None:
        """Show the mid-time of the frame on the time slider."""
        layer = self._files.current_pet()
        if layer is None:
            self.frame_label.setText("")
            return
        mids = layer.metadata.get(meta.FRAME_MID_MIN, [])
        if self.viewer.dims.ndim != 4 or not mids:
            return
        frame = int(self.viewer.dims.current_step[0])
        if 0 <= frame < len(mids):
            self.frame_label.setText(
                f"Current frame {frame}: mid-time {mids[frame]:.2f} min"
            )

    # ------------------------------------------------------------ editing
    @notify_errors
    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() not in (START_COL, DURATION_COL):
            return
        try:
            self.apply_table_edits()
        except MorError:
            self.fill()  # restore the previous (layer) values
            raise

    def _table_pairs(self) -> list[tuple[str, str]]:
        return [
            (
                self.table.item(r, START_COL).text(),
                self.table.item(r, DURATION_COL).text(),
            )
            for r in range(self.table.rowCount())
        ]

    def apply_table_edits(self) -> FrameTiming:
        """Validate the table and store its timing in the PET layer's metadata.

        Cells left as displayed keep their exact previous value (the table
        shows rounded minutes).

        Raises
        ------
        MorError
            When the edited timing is invalid; the layer is left unchanged.
        """
        layer = self._files.require_pet()
        old = self._files.timing()
        pairs = self._table_pairs()
        unchanged = np.array(
            [
                (texts[0] == shown[0], texts[1] == shown[1])
                for texts, shown in zip(pairs, self._shown_texts, strict=False)
            ],
            dtype=bool,
        ).reshape(-1, 2)
        if unchanged.shape[0] != len(pairs):
            unchanged = np.zeros((len(pairs), 2), dtype=bool)
        rows = [
            (
                old.frame_start_min[r] if unchanged[r, 0] else start,
                old.frame_duration_min[r] if unchanged[r, 1] else duration,
            )
            for r, (start, duration) in enumerate(pairs)
        ]
        edited = timing_from_table(rows, n_volumes=layer.data.shape[0])
        timing = FrameTiming(
            np.where(unchanged[:, 0], old.frame_start_s, edited.frame_start_s),
            np.where(unchanged[:, 1], old.frame_duration_s, edited.frame_duration_s),
        )
        self.set_frame_timing(timing)
        return timing

    def set_frame_timing(self, timing: FrameTiming) -> None:
        """Store frame timing in the PET layer's metadata and refresh the table."""
        layer = self._files.require_pet()
        if timing.n_frames != layer.data.shape[0]:
            raise MorError(
                f"The PET has {layer.data.shape[0]} frames but the timing lists "
                f"{timing.n_frames}; give one start and duration per frame."
            )
        layer.metadata[meta.FRAME_START_S] = timing.frame_start_s.tolist()
        layer.metadata[meta.FRAME_DURATION_S] = timing.frame_duration_s.tolist()
        layer.metadata[meta.FRAME_MID_MIN] = np.round(timing.frame_mid_min, 4).tolist()
        layer.metadata[meta.TIMING_EDITED] = True
        self.timing_edited = True
        self.fill()
        self.update_frame_label()
