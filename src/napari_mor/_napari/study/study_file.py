"""Study dock, study file row: save and load the dock's state as a JSON study file.

The file is :mod:`napari_mor.workflows.session`'s (paths relative to the study
file's folder, frame fixes, windows, labels, mean-image range, fit settings).
The dock says what its state is (``get_state``) and how to restore one
(``apply_state``); this row owns the file and its checks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from napari.utils.notifications import show_info
from qtpy.QtWidgets import QFileDialog, QWidget

from napari_mor._errors import MorError
from napari_mor._napari._dock import button_row, notify_errors
from napari_mor.workflows.session import StudyState, load_study, save_study

STUDY_FILTER = "Study (*.json)"


class StudyFileRow(QWidget):
    """ "Save study…" and "Load study…".

    Parameters
    ----------
    get_state : callable() -> StudyState
        The dock's current state.
    apply_state : callable(StudyState)
        Restores a loaded state in the dock (layers, timing, windows, settings).
    """

    def __init__(
        self,
        get_state: Callable[[], StudyState],
        apply_state: Callable[[StudyState], None],
        parent=None,
    ) -> None:
        super().__init__(parent)
        self._get_state = get_state
        self._apply_state = apply_state
        row, (self.save_button, self.load_button) = button_row(
            ("Save study…", self._browse_save),
            ("Load study…", self._browse_load),
        )
        row.setContentsMargins(0, 0, 0, 0)
        self.setLayout(row)

    def save_study(self, path: str | Path) -> Path:
        """Save the study (paths relative to the study file's folder)."""
        written = save_study(path, self._get_state())
        show_info(f"Study saved to {written}.")
        return written

    def load_study(self, path: str | Path) -> StudyState:
        """Load a study file and restore it: layers, frame fixes, windows, settings."""
        state = load_study(path)
        if state.pet_path is None:
            raise MorError(f"{path} names no PET image; save a study with a PET.")
        missing = [
            str(p)
            for p in (state.pet_path, state.mr_path, state.frames_tsv_path)
            if p is not None and not p.is_file()
        ]
        if missing:
            raise MorError(
                f"{path} refers to files that do not exist: {', '.join(missing)}. "
                "Keep the study file in the same folder tree as its images."
            )
        self._apply_state(state)
        return state

    @notify_errors
    def _save_quietly(self, path: str) -> None:
        self.save_study(path)

    @notify_errors
    def _load_quietly(self, path: str) -> None:
        self.load_study(path)

    def _browse_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save study", "study.json", STUDY_FILTER
        )
        if path:
            self._save_quietly(path)

    def _browse_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load study", "", STUDY_FILTER)
        if path:
            self._load_quietly(path)
