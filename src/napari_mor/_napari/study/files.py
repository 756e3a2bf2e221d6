"""Study dock, "Files" section: pick and load the PET, MR, frames TSV and labels.

Reads files through :mod:`napari_mor.io` and adds them as layers aligned in
world space through their affines (MR under the PET). A NIfTI PET without a
JSON sidecar and without a frames TSV is not loaded: the section says so and
"Load frames TSV…" loads it with the TSV's frame times. The section keeps the
layers it loaded; signals tell the dock when a PET was loaded (``pet_loaded``)
or dropped for want of timing (``pet_cleared``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from napari_mor._errors import MorError, MorWarning
from napari_mor._napari import _metadata as meta
from napari_mor._napari._dock import button_row, notify_errors
from napari_mor._napari._layers import (
    labels_layer_data,
    pet_layer_data,
    volume_layer_data,
)
from napari_mor._napari._reader import is_default_reader, make_default_reader
from napari_mor._napari._view import set_axial_view, show_as_contours
from napari_mor.io import load_labels, load_pet, load_volume, sidecar_path_for
from napari_mor.io.timing import FrameTiming

IMAGE_FILTER = "Images (*.nii *.nii.gz *.v);;All files (*)"
TSV_FILTER = "TSV (*.tsv);;All files (*)"


class FilesSection(QGroupBox):
    """PET / MR / frames TSV pickers and the layers loaded from them.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Where the layers go.
    windows_min : callable() -> dict
        The condition windows to record in the PET layer's metadata.
    """

    #: A PET layer was added (replacing the previous one).
    pet_loaded = Signal()
    #: The PET was removed: it has no frame timing yet.
    pet_cleared = Signal()

    def __init__(self, viewer, windows_min: Callable[[], dict], parent=None) -> None:
        super().__init__("Files", parent)
        self.viewer = viewer
        self._windows_min = windows_min
        self.pet_layer = None
        self.mr_layer = None
        self.labels_layer = None
        self.frames_tsv_path: Path | None = None
        self.labels_path: Path | None = None
        self.lut_path: Path | None = None
        form = QFormLayout(self)
        self.pet_edit = QLineEdit()
        self.mr_edit = QLineEdit()
        self.frames_edit = QLineEdit()
        self.frames_edit.setPlaceholderText("optional: frame_start, frame_duration (s)")
        for label, edit, caption, filt in (
            ("PET", self.pet_edit, "Dynamic PET", IMAGE_FILTER),
            ("MR", self.mr_edit, "T1w MR", IMAGE_FILTER),
            ("Frames TSV", self.frames_edit, "Frames TSV", "TSV (*.tsv);;All (*)"),
        ):
            browse = QPushButton("Browse…")
            browse.clicked.connect(
                lambda _=False, e=edit, c=caption, f=filt: self._browse(e, c, f)
            )
            form.addRow(label, row_of(edit, browse))
        buttons, (self.load_button, self.load_frames_button) = button_row(
            ("Load", self._on_load_clicked),
            ("Load frames TSV…", self._browse_frames_tsv),
        )
        self.load_frames_button.setToolTip(
            "The PET has no JSON sidecar: pick a TSV with columns frame_start and "
            "frame_duration (seconds)."
        )
        form.addRow(buttons)
        self.reader_button = QPushButton("Open .nii / .nii.gz / .v with napari-mor")
        self.reader_button.setToolTip(
            "napari's builtin reader cannot read NIfTI: make napari-mor napari's "
            "reader for these files (File > Open and drag-and-drop)"
        )
        self.reader_button.clicked.connect(lambda *_: self._make_default_reader())
        self.reader_button.setVisible(not is_default_reader())
        form.addRow(self.reader_button)
        self.sidecar_label = QLabel("")
        self.sidecar_label.setWordWrap(True)
        form.addRow(self.sidecar_label)

    def _make_default_reader(self) -> None:
        patterns = make_default_reader()
        self.reader_button.setVisible(False)
        show_info(f"napari now opens {', '.join(patterns)} with napari-mor.")

    # -------------------------------------------------------------- the PET
    def current_pet(self):
        """The PET layer this section loaded, if still in the viewer (else None)."""
        layer = self.pet_layer
        return layer if layer is not None and layer in self.viewer.layers else None

    def require_pet(self):
        """The PET layer this section loaded (MorError when there is none)."""
        if self.current_pet() is None:
            self.pet_layer = None
            raise MorError("No PET loaded; load a PET in the Study dock first.")
        return self.pet_layer

    def timing(self) -> FrameTiming:
        """The PET layer's frame timing (seconds in its metadata)."""
        metadata = self.require_pet().metadata
        return FrameTiming(
            metadata[meta.FRAME_START_S], metadata[meta.FRAME_DURATION_S]
        )

    # -------------------------------------------------------------- loading
    def load_subject(
        self,
        pet_path: str | Path,
        mr_path: str | Path | None = None,
        frames_tsv: str | Path | None = None,
    ) -> None:
        """Load a PET (and MR) and add them as layers aligned in world space.

        When a NIfTI PET has no sidecar and no frames TSV is given, the MR is
        still loaded and a notification asks for a frames TSV ("Load frames
        TSV…"); nothing is raised.
        """
        pet_path = Path(pet_path)
        self.pet_edit.setText(str(pet_path))
        self.mr_edit.setText(str(mr_path) if mr_path else "")
        self.frames_edit.setText(str(frames_tsv) if frames_tsv else "")
        if mr_path:
            self._load_mr(Path(mr_path))
        needs_tsv = (
            frames_tsv is None
            and not pet_path.name.lower().endswith(".v")
            and pet_path.is_file()
            and not sidecar_path_for(pet_path).is_file()
        )
        if needs_tsv:
            self._remove_layer("pet_layer")
            self.pet_cleared.emit()
            message = (
                f"{pet_path.name} has no JSON sidecar, so its frame times are "
                f"unknown. Click 'Load frames TSV…' and choose a TSV with columns "
                "frame_start and frame_duration (seconds), or add a BIDS-PET "
                f"sidecar {sidecar_path_for(pet_path).name}."
            )
            self.sidecar_label.setText(message)
            self.sidecar_label.setStyleSheet("color: #f5a623;")
            self.load_frames_button.setEnabled(True)
            show_warning(message)
            return
        self._load_pet(pet_path, Path(frames_tsv) if frames_tsv else None)

    def load_frames_tsv(self, frames_tsv: str | Path) -> None:
        """Load the PET named in the PET field with frame times from a TSV."""
        pet = self.pet_edit.text().strip()
        if not pet:
            raise MorError("Choose the PET file before its frames TSV.")
        self.frames_edit.setText(str(frames_tsv))
        self._load_pet(Path(pet), Path(frames_tsv))

    def load_labels(
        self, labels_path: str | Path, lut_path: str | Path | None = None
    ) -> None:
        """Add a label image (with its LUT) as a Labels layer."""
        labels = load_labels(labels_path, lut_path)
        self._remove_layer("labels_layer")
        data, kwargs, _ = labels_layer_data(labels)
        self.labels_layer = self.viewer.add_labels(data, **kwargs)
        show_as_contours(self.labels_layer)  # outlines over the PET / maps
        self.labels_path = Path(labels_path)
        self.lut_path = Path(lut_path) if lut_path else None

    def _load_pet(self, pet_path: Path, frames_tsv: Path | None) -> None:
        pet = _with_warnings_shown(load_pet, pet_path, frames_tsv=frames_tsv)
        self._remove_layer("pet_layer")
        data, kwargs, _ = pet_layer_data(pet)
        kwargs["metadata"][meta.FRAMES_TSV_PATH] = (
            str(frames_tsv) if frames_tsv else None
        )
        kwargs["metadata"][meta.WINDOWS_MIN] = self._windows_min()
        self.pet_layer = self.viewer.add_image(data, **kwargs)
        set_axial_view(self.viewer)  # axial, neurological, stated on the canvas
        self.frames_tsv_path = frames_tsv
        self.sidecar_label.setText(
            f"Frame times from {frames_tsv.name}." if frames_tsv else ""
        )
        self.sidecar_label.setStyleSheet("")
        self.pet_loaded.emit()

    def _load_mr(self, mr_path: Path) -> None:
        volume = _with_warnings_shown(load_volume, mr_path)
        self._remove_layer("mr_layer")
        data, kwargs, _ = volume_layer_data(volume)
        self.mr_layer = self.viewer.add_image(data, **kwargs)
        # keep the MR under the PET
        index = self.viewer.layers.index(self.mr_layer)
        if index != 0:
            self.viewer.layers.move(index, 0)

    def _remove_layer(self, attribute: str) -> None:
        layer = getattr(self, attribute)
        if layer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)
        setattr(self, attribute, None)

    # ------------------------------------------------------------- buttons
    @notify_errors
    def _on_load_clicked(self) -> None:
        pet = self.pet_edit.text().strip()
        if not pet:
            raise MorError("Choose a PET file first (Browse… next to PET).")
        self.load_subject(
            pet,
            self.mr_edit.text().strip() or None,
            self.frames_edit.text().strip() or None,
        )

    @notify_errors
    def _load_frames_tsv_quietly(self, path: str) -> None:
        self.load_frames_tsv(path)

    def _browse(self, edit: QLineEdit, caption: str, file_filter: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, caption, edit.text(), file_filter)
        if path:
            edit.setText(path)

    def _browse_frames_tsv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Frames TSV", "", TSV_FILTER)
        if path:
            self._load_frames_tsv_quietly(path)


def pet_summary(metadata: dict) -> str:
    """One line about a loaded PET: frames, units, decay correction, nuclide."""
    decay = {True: "yes", False: "NO", None: "unknown"}[
        metadata.get(meta.DECAY_CORRECTED)
    ]
    source = metadata.get(meta.SOURCE_UNITS)
    units = metadata.get(meta.UNITS)
    converted = f" (converted from {source})" if source and source != units else ""
    return (
        f"PET: {len(metadata[meta.FRAME_START_S])} frames, units {units}{converted}; "
        f"decay corrected: {decay}; radionuclide: "
        f"{metadata.get(meta.RADIONUCLIDE) or 'unknown'}."
    )


def row_of(*widgets) -> QWidget:
    """Widgets side by side in one form row."""
    holder = QWidget()
    hbox = QHBoxLayout(holder)
    hbox.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        hbox.addWidget(widget)
    return holder


def _with_warnings_shown(load: Callable, *args, **kwargs):
    """Call a loader; show each MorWarning it gives as a napari warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MorWarning)
        result = load(*args, **kwargs)
    for item in caught:
        show_warning(str(item.message))
    return result
