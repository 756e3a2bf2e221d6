"""Group study dock, section 1: run the cohort batch (BIDS folder -> maps).

:func:`napari_mor.group.batch.run_batch` reports per subject through its
``on_progress`` callback (from dask's threads); :func:`iter_reported_progress`
turns it into a generator for :func:`start_worker`, so the bar moves per subject
and Cancel stops the batch at the next finished subject.
"""

from __future__ import annotations

import threading
from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QProgressBar,
    QWidget,
)

from napari_mor._errors import MorError
from napari_mor._napari._dock import button_row
from napari_mor._napari._workers import (
    iter_reported_progress,
    start_worker,
)
from napari_mor._napari.group._work import batch_progress_text, batch_summary

#: Where the batch writes, inside the cohort folder.
MAPS_SUBFOLDER = Path("derivatives") / "napari-mor"


class BatchSection(QGroupBox):
    """Cohort folder and registration choice; Run batch / Cancel; per-subject bar.

    Emits :attr:`maps_ready` with the maps folder when a batch is done (the
    statistics section then uses it).
    """

    maps_ready = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Cohort batch (BIDS folder -> BP and delta-BP maps)", parent)
        self.worker = None
        self._stop = threading.Event()
        self.cohort_edit = QLineEdit()
        self.cohort_edit.setPlaceholderText("cohort folder: sub-*/pet, sub-*/anat")
        self.registration_combo = QComboBox()
        self.registration_combo.addItems(["identity", "mni"])
        self.registration_combo.setToolTip(
            "identity: PET already in MNI space; mni: motion correction, PET->T1w "
            "and T1w->MNI152 per subject"
        )
        self.baseline_session_edit = QLineEdit()
        self.challenge_session_edit = QLineEdit()
        for edit, role, words in (
            (self.baseline_session_edit, "baseline", "baseline/pre/placebo/rest"),
            (self.challenge_session_edit, "challenge", "challenge/post/task/drug"),
        ):
            edit.setPlaceholderText(f"automatic (a session named like {words})")
            edit.setToolTip(
                f"session label (ses-NAME) of the {role} scan in a two-scan cohort; "
                "give both or neither"
            )
        buttons, (self.batch_button, self.cancel_button) = button_row(
            ("Run batch", self.run_batch), ("Cancel", self.cancel)
        )
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("cohort", self.cohort_edit)
        form.addRow("registration", self.registration_combo)
        form.addRow("baseline session", self.baseline_session_edit)
        form.addRow("challenge session", self.challenge_session_edit)
        form.addRow(buttons)
        form.addRow(self.progress)
        form.addRow(self.status)

    def run_batch(self, cohort: str | Path | None = None):
        """Process a cohort in a worker (dask inside); returns the worker.

        Maps go to ``COHORT/derivatives/napari-mor``, which then becomes the
        folder for the statistics. A failed subject is reported, not fatal.
        Returns None (with a notification) when the folder is not a cohort.
        """
        from napari_mor.group.batch import (
            BatchSettings,
            cohort_atlas_inputs,
            discover_cohort,
            run_batch,
        )

        if self.worker is not None:
            show_error("A batch is already running; wait or press Cancel.")
            return None
        root = Path(cohort or self.cohort_edit.text().strip())
        sessions = self.sessions()
        try:
            listing = discover_cohort(root, **sessions)
            labels, mask = cohort_atlas_inputs(root)
            settings = BatchSettings(registration=self.registration_combo.currentText())
        except (MorError, OSError) as err:
            show_error(str(err))
            return None
        out_dir = root / MAPS_SUBFOLDER
        self.status.setText(listing.report())
        self._stop.clear()
        self.worker = start_worker(
            iter_reported_progress,
            run_batch,
            root,
            out_dir,
            settings,
            labels=labels,
            mask=mask,
            should_stop=self._stop.is_set,
            **sessions,
            desc="Cohort batch",
            on_returned=lambda results: self._done(results, out_dir),
            on_yielded=self._advanced,
            fraction_of=lambda value: value[0] / max(value[1], 1),
            progress_bar=self.progress,
            cancel_button=self.cancel_button,
            run_button=self.batch_button,
            on_finished=self._finished,
            total=len(listing.subjects),
        )
        return self.worker

    def sessions(self) -> dict[str, str | None]:
        """``baseline_session`` / ``challenge_session`` (None: automatic pairing)."""
        return {
            "baseline_session": self.baseline_session_edit.text().strip() or None,
            "challenge_session": self.challenge_session_edit.text().strip() or None,
        }

    def cancel(self) -> None:
        """Stop the batch when the next subject finishes (finished ones are kept)."""
        if self.worker is None:
            return
        self._stop.set()
        self.worker.quit()
        self.status.setText(
            "Cancelling: no new subject starts; subjects already running finish "
            "and are kept (a rerun reuses them)."
        )

    def _advanced(self, value) -> None:
        self.status.setText(batch_progress_text(*value))

    def _done(self, results: list[dict] | None, out_dir: Path) -> None:
        if results is None:  # stopped by Cancel
            self.status.setText(f"Batch cancelled; finished subjects are in {out_dir}.")
            return
        self.status.setText(batch_summary(results, out_dir))
        self.maps_ready.emit(str(out_dir))

    def _finished(self) -> None:
        if self._stop.is_set() and not self.status.text().startswith("Batch"):
            self.status.setText("Batch cancelled; finished subjects are kept.")
        self.worker = None
