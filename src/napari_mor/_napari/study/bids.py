"""Study dock, "BIDS folder" section: find a subject's PET runs and T1w images.

A thin form over :func:`napari_mor.io.bids.find_bids_subject`: a folder (one
subject or a whole dataset) fills the subject, PET-run and T1w choices; "Load
selected" hands the chosen files to the Files section's loader.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
)

from napari_mor._errors import MorError
from napari_mor._napari._dock import notify_errors
from napari_mor._napari.study.files import row_of
from napari_mor.io.bids import BidsListing, find_bids_subject


class BidsSection(QGroupBox):
    """BIDS folder, subject, PET run and T1w choices.

    Parameters
    ----------
    load_subject : callable(pet_path, mr_path)
        Loads the chosen PET run and T1w (the Files section's loader).

    Attributes
    ----------
    listing : BidsListing or None
        The folder's listing (all subjects), once a folder was chosen.
    """

    def __init__(self, load_subject: Callable, parent=None) -> None:
        super().__init__("BIDS folder", parent)
        self._load_subject = load_subject
        self.listing: BidsListing | None = None
        form = QFormLayout(self)
        self.bids_edit = QLineEdit()
        self.bids_edit.setPlaceholderText("sub-XX folder or dataset folder")
        self.bids_edit.returnPressed.connect(self._on_folder_entered)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        form.addRow(row_of(self.bids_edit, browse))
        self.subject_combo = QComboBox()
        self.subject_combo.currentIndexChanged.connect(self._on_subject_changed)
        form.addRow("Subject", self.subject_combo)
        self.pet_combo = QComboBox()
        form.addRow("PET run", self.pet_combo)
        self.t1w_combo = QComboBox()
        form.addRow("T1w", self.t1w_combo)
        self.load_selected_button = QPushButton("Load selected")
        self.load_selected_button.clicked.connect(self._on_load_selected_clicked)
        form.addRow(self.load_selected_button)

    def load_bids_folder(self, folder: str | Path) -> BidsListing:
        """Fill the subject, PET-run and T1w choices from a BIDS folder."""
        listing = find_bids_subject(folder)
        self.listing = listing
        self.bids_edit.setText(str(folder))
        self.subject_combo.blockSignals(True)
        self.subject_combo.clear()
        if listing.subjects:
            self.subject_combo.addItem("all subjects", None)
            for subject in listing.subjects:
                self.subject_combo.addItem(subject.name, str(subject))
        self.subject_combo.setEnabled(bool(listing.subjects))
        self.subject_combo.blockSignals(False)
        self._fill_run_combos(listing)
        return listing

    def load_selected_run(self) -> None:
        """Load the PET run and T1w chosen in the combo boxes."""
        pet = self.pet_combo.currentData()
        if not pet:
            raise MorError("No PET run to load; choose a BIDS folder first.")
        self._load_subject(pet, self.t1w_combo.currentData())

    def _fill_run_combos(self, listing: BidsListing) -> None:
        base = self.listing.folder if self.listing is not None else listing.folder
        self.pet_combo.clear()
        for run in listing.pet_runs:
            text = _relative_name(run.path, base)
            if run.needs_frames_tsv:
                text += "  (no sidecar)"
            self.pet_combo.addItem(text, str(run.path))
        self.t1w_combo.clear()
        self.t1w_combo.addItem("(none)", None)
        for path in listing.t1w_images:
            self.t1w_combo.addItem(_relative_name(path, base), str(path))
        if listing.t1w_images:
            self.t1w_combo.setCurrentIndex(1)

    @notify_errors
    def _on_subject_changed(self, index: int) -> None:
        if self.listing is None or index < 0:
            return
        subject = self.subject_combo.itemData(index)
        if subject is None:
            self._fill_run_combos(self.listing)
            return
        self._fill_run_combos(find_bids_subject(subject))

    @notify_errors
    def _on_folder_entered(self) -> None:
        self.load_bids_folder(self.bids_edit.text())

    @notify_errors
    def _on_load_selected_clicked(self, *args) -> None:
        self.load_selected_run()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "BIDS folder")
        if folder:
            self.bids_edit.setText(folder)
            self._on_folder_entered()


def _relative_name(path: Path, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return str(path)
