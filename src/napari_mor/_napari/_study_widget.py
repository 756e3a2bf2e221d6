"""The "Study" dock: open a subject, check frame timing, quick looks, study file.

A thin Qt layer over the Qt-free core: BIDS discovery
(:mod:`napari_mor.io.bids`), the frame table (:mod:`napari_mor.io.frame_table`),
quick looks (:func:`napari_mor.rois.summed_image`,
:func:`napari_mor.rois.voxel_tac`) and the study file
(:mod:`napari_mor.workflows.session`). It reads files through
:mod:`napari_mor.io`, adds layers aligned in world space through their affines,
and shows core results (frame table, mean image, voxel TAC). Every
:class:`~napari_mor.MorError` becomes a napari notification; the viewer keeps
running.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_mor._errors import MorError, MorWarning
from napari_mor._napari._dock import scrolling_sections
from napari_mor._napari._layers import (
    labels_layer_data,
    pet_from_layer,
    pet_layer_data,
    spatial_affine_of,
    volume_layer_data,
)
from napari_mor._napari._plot_base import BasePlotDock
from napari_mor.defaults import DEFAULT_REFERENCE_HINT, DEFAULT_WINDOWS_MIN
from napari_mor.io import load_labels, load_pet, load_volume, sidecar_path_for
from napari_mor.io.bids import BidsListing, find_bids_subject
from napari_mor.io.frame_table import frame_table, timing_from_table
from napari_mor.io.grid import same_grid
from napari_mor.io.timing import FrameTiming
from napari_mor.rois import (
    find_label,
    mask_mean_tac,
    summed_image,
    voxel_index,
    voxel_tac,
)
from napari_mor.workflows.session import StudyState, load_study, save_study

if TYPE_CHECKING:
    import napari.viewer

_COLUMNS = ("frame", "start (min)", "end (min)", "duration (min)", "window")
_START_COL, _DURATION_COL = 1, 3
_IMAGE_FILTER = "Images (*.nii *.nii.gz *.v);;All files (*)"


class VoxelTacPlotDock(BasePlotDock):
    """TAC of the clicked voxel and, when known, the reference-region TAC."""

    def __init__(self, viewer=None, parent: QWidget | None = None) -> None:
        self.time_min: np.ndarray | None = None
        self.voxel_tac_kbq_ml: np.ndarray | None = None
        self.reference_tac_kbq_ml: np.ndarray | None = None
        self.voxel_label = ""
        self.reference_label = ""
        super().__init__(viewer, parent)

    def set_curves(
        self,
        time_min: np.ndarray,
        voxel_tac_kbq_ml: np.ndarray,
        voxel_label: str,
        reference_tac_kbq_ml: np.ndarray | None = None,
        reference_label: str = "",
    ) -> None:
        """Store the curves (from the core) and redraw."""
        self.time_min = np.asarray(time_min)
        self.voxel_tac_kbq_ml = np.asarray(voxel_tac_kbq_ml)
        self.voxel_label = voxel_label
        self.reference_tac_kbq_ml = reference_tac_kbq_ml
        self.reference_label = reference_label
        self.refresh()

    def draw(self) -> None:
        """Plot the voxel TAC (and reference TAC) against mid-frame time."""
        ax = self.axes
        ax.set_xlabel("time (min)")
        ax.set_ylabel("activity (kBq/mL)")
        if self.voxel_tac_kbq_ml is None:
            ax.set_title("click on the PET to see a voxel TAC", fontsize=9)
            return
        ax.plot(
            self.time_min,
            self.voxel_tac_kbq_ml,
            "o-",
            ms=3,
            color="#f5a623",
            label=self.voxel_label,
            gid="voxel",
        )
        if self.reference_tac_kbq_ml is not None:
            ax.plot(
                self.time_min,
                self.reference_tac_kbq_ml,
                "s--",
                ms=3,
                color="#4a90e2",
                label=self.reference_label,
                gid="reference",
            )
        ax.legend(fontsize=8)

    def line(self, gid: str):
        """The plotted Line2D with a given gid ("voxel" or "reference"), or None."""
        for line in self.axes.get_lines():
            if line.get_gid() == gid:
                return line
        return None


class StudyWidget(QWidget):
    """Open a subject's PET and MR, fix frame timing and take a first look.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer to add layers to.
    """

    def __init__(
        self, viewer: napari.viewer.Viewer, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.pet_layer = None
        self.mr_layer = None
        self.labels_layer = None
        self.listing: BidsListing | None = None
        self.frames_tsv_path: Path | None = None
        self.labels_path: Path | None = None
        self.lut_path: Path | None = None
        self.fit_settings: dict = {}
        self.timing_edited = False
        self._filling_table = False
        self._shown_texts: list[tuple[str, str]] = []
        self._tac_callback_connected = False

        self.info_label = QLabel("No PET loaded.")
        self.info_label.setWordWrap(True)
        sections = (
            self._build_bids_box(),
            self._build_files_box(),
            self.info_label,
            self._build_frames_box(),
            self._build_windows_box(),
            self._build_mean_box(),
            self._build_tac_box(),
        )
        layout = scrolling_sections(self, sections)
        layout.addLayout(self._build_study_row())
        layout.addStretch(1)

        viewer.dims.events.current_step.connect(self._update_frame_label)
        callbacks, on_press = viewer.mouse_drag_callbacks, self._on_mouse_press
        self.destroyed.connect(
            lambda *_: callbacks.remove(on_press) if on_press in callbacks else None
        )

    # ------------------------------------------------------------------ building

    def _build_bids_box(self) -> QGroupBox:
        box = QGroupBox("BIDS folder")
        form = QFormLayout(box)
        self.bids_edit = QLineEdit()
        self.bids_edit.setPlaceholderText("sub-XX folder or dataset folder")
        self.bids_edit.returnPressed.connect(
            lambda: self._safe(self.load_bids_folder, self.bids_edit.text())
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_bids)
        form.addRow(_row(self.bids_edit, browse))
        self.subject_combo = QComboBox()
        self.subject_combo.currentIndexChanged.connect(self._on_subject_changed)
        form.addRow("Subject", self.subject_combo)
        self.pet_combo = QComboBox()
        form.addRow("PET run", self.pet_combo)
        self.t1w_combo = QComboBox()
        form.addRow("T1w", self.t1w_combo)
        self.load_selected_button = QPushButton("Load selected")
        self.load_selected_button.clicked.connect(
            lambda: self._safe(self.load_selected_run)
        )
        form.addRow(self.load_selected_button)
        return box

    def _build_files_box(self) -> QGroupBox:
        box = QGroupBox("Files")
        form = QFormLayout(box)
        self.pet_edit = QLineEdit()
        self.mr_edit = QLineEdit()
        self.frames_edit = QLineEdit()
        self.frames_edit.setPlaceholderText("optional: frame_start, frame_duration (s)")
        for label, edit, caption, filt in (
            ("PET", self.pet_edit, "Dynamic PET", _IMAGE_FILTER),
            ("MR", self.mr_edit, "T1w MR", _IMAGE_FILTER),
            ("Frames TSV", self.frames_edit, "Frames TSV", "TSV (*.tsv);;All (*)"),
        ):
            browse = QPushButton("Browse…")
            browse.clicked.connect(
                lambda _=False, e=edit, c=caption, f=filt: self._browse_file(e, c, f)
            )
            form.addRow(label, _row(edit, browse))
        buttons = QHBoxLayout()
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(lambda: self._safe(self._load_from_edits))
        self.load_frames_button = QPushButton("Load frames TSV…")
        self.load_frames_button.setToolTip(
            "The PET has no JSON sidecar: pick a TSV with columns frame_start and "
            "frame_duration (seconds)."
        )
        self.load_frames_button.clicked.connect(self._browse_frames_tsv)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.load_frames_button)
        form.addRow(buttons)
        self.sidecar_label = QLabel("")
        self.sidecar_label.setWordWrap(True)
        form.addRow(self.sidecar_label)
        return box

    def _build_frames_box(self) -> QGroupBox:
        box = QGroupBox("Frames (edit start or duration, minutes)")
        vbox = QVBoxLayout(box)
        self.frame_label = QLabel("")
        vbox.addWidget(self.frame_label)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.setMinimumHeight(160)
        self.table.itemChanged.connect(self._on_table_item_changed)
        vbox.addWidget(self.table)
        return box

    def _build_windows_box(self) -> QGroupBox:
        box = QGroupBox("Condition windows (min)")
        form = QFormLayout(box)
        self.window_spins: dict[str, tuple[QDoubleSpinBox, QDoubleSpinBox]] = {}
        for name, (start, end) in DEFAULT_WINDOWS_MIN.items():
            start_spin, end_spin = _minutes_spin(start), _minutes_spin(end)
            for spin in (start_spin, end_spin):
                spin.valueChanged.connect(self._on_windows_changed)
            self.window_spins[name] = (start_spin, end_spin)
            form.addRow(name, _row(start_spin, QLabel("to"), end_spin))
        return box

    def _build_mean_box(self) -> QGroupBox:
        box = QGroupBox("Mean image")
        hbox = QHBoxLayout(box)
        self.mean_start_spin = _minutes_spin(40.0)
        self.mean_end_spin = _minutes_spin(90.0)
        self.mean_button = QPushButton("Add mean image")
        self.mean_button.clicked.connect(lambda: self._safe(self.add_mean_image))
        for widget in (self.mean_start_spin, QLabel("to"), self.mean_end_spin):
            hbox.addWidget(widget)
        hbox.addWidget(QLabel("min"))
        hbox.addWidget(self.mean_button)
        return box

    def _build_tac_box(self) -> QGroupBox:
        box = QGroupBox("Voxel TAC")
        vbox = QVBoxLayout(box)
        self.tac_checkbox = QCheckBox("Show the TAC of the clicked voxel")
        self.tac_checkbox.toggled.connect(self._on_tac_toggled)
        vbox.addWidget(self.tac_checkbox)
        self.tac_plot = VoxelTacPlotDock(self.viewer, self)
        vbox.addWidget(self.tac_plot)
        return box

    def _build_study_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        save = QPushButton("Save study…")
        save.clicked.connect(self._browse_save_study)
        load = QPushButton("Load study…")
        load.clicked.connect(self._browse_load_study)
        row.addWidget(save)
        row.addWidget(load)
        return row

    # --------------------------------------------------------------- file dialogs

    def _browse_file(self, edit: QLineEdit, caption: str, file_filter: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, caption, edit.text(), file_filter)
        if path:
            edit.setText(path)

    def _browse_bids(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "BIDS folder")
        if folder:
            self.bids_edit.setText(folder)
            self._safe(self.load_bids_folder, folder)

    def _browse_frames_tsv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Frames TSV", "", "TSV (*.tsv);;All files (*)"
        )
        if path:
            self._safe(self.load_frames_tsv, path)

    def _browse_save_study(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save study", "study.json", "Study (*.json)"
        )
        if path:
            self._safe(self.save_study, path)

    def _browse_load_study(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load study", "", "Study (*.json)")
        if path:
            self._safe(self.load_study, path)

    def _safe(self, func, *args, **kwargs):
        """Run ``func``; show a MorError as a notification instead of raising."""
        try:
            return func(*args, **kwargs)
        except MorError as err:
            show_error(str(err))
            return None

    # --------------------------------------------------------------------- BIDS

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

    def _on_subject_changed(self, index: int) -> None:
        if self.listing is None or index < 0:
            return
        subject = self.subject_combo.itemData(index)
        if subject is None:
            self._fill_run_combos(self.listing)
            return
        listing = self._safe(find_bids_subject, subject)
        if listing is not None:
            self._fill_run_combos(listing)

    def load_selected_run(self) -> None:
        """Load the PET run and T1w chosen in the combo boxes."""
        pet = self.pet_combo.currentData()
        if not pet:
            raise MorError("No PET run to load; choose a BIDS folder first.")
        self.load_subject(pet, self.t1w_combo.currentData())

    # -------------------------------------------------------------------- loading

    def _load_from_edits(self) -> None:
        pet = self.pet_edit.text().strip()
        if not pet:
            raise MorError("Choose a PET file first (Browse… next to PET).")
        self.load_subject(
            pet,
            self.mr_edit.text().strip() or None,
            self.frames_edit.text().strip() or None,
        )

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
            self._clear_table()
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

    def _load_pet(self, pet_path: Path, frames_tsv: Path | None) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MorWarning)
            pet = load_pet(pet_path, frames_tsv=frames_tsv)
        for item in caught:
            show_warning(str(item.message))
        self._remove_layer("pet_layer")
        data, kwargs, _ = pet_layer_data(pet)
        kwargs["metadata"]["frames_tsv_path"] = str(frames_tsv) if frames_tsv else None
        kwargs["metadata"]["windows_min"] = self.windows_min()
        self.pet_layer = self.viewer.add_image(data, **kwargs)
        self.frames_tsv_path = frames_tsv
        self.timing_edited = False
        self.sidecar_label.setText(
            f"Frame times from {frames_tsv.name}." if frames_tsv else ""
        )
        self.sidecar_label.setStyleSheet("")
        self._label_time_axis()
        self._fill_table()
        self._update_info_label()
        self._update_frame_label()

    def _load_mr(self, mr_path: Path) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MorWarning)
            volume = load_volume(mr_path)
        for item in caught:
            show_warning(str(item.message))
        self._remove_layer("mr_layer")
        data, kwargs, _ = volume_layer_data(volume)
        self.mr_layer = self.viewer.add_image(data, **kwargs)
        # keep the MR under the PET
        index = self.viewer.layers.index(self.mr_layer)
        if index != 0:
            self.viewer.layers.move(index, 0)

    def load_labels(
        self, labels_path: str | Path, lut_path: str | Path | None = None
    ) -> None:
        """Add a label image (with its LUT) as a Labels layer."""
        labels = load_labels(labels_path, lut_path)
        self._remove_layer("labels_layer")
        data, kwargs, _ = labels_layer_data(labels)
        self.labels_layer = self.viewer.add_labels(data, **kwargs)
        self.labels_path = Path(labels_path)
        self.lut_path = Path(lut_path) if lut_path else None

    def _remove_layer(self, attribute: str) -> None:
        layer = getattr(self, attribute)
        if layer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)
        setattr(self, attribute, None)

    def _pet_layer(self):
        """The PET layer this dock loaded (MorError when there is none)."""
        if self.pet_layer is None or self.pet_layer not in self.viewer.layers:
            self.pet_layer = None
            raise MorError("No PET loaded; load a PET in the Study dock first.")
        return self.pet_layer

    def _timing(self) -> FrameTiming:
        meta = self._pet_layer().metadata
        return FrameTiming(meta["frame_start_s"], meta["frame_duration_s"])

    def _update_info_label(self) -> None:
        meta = self._pet_layer().metadata
        decay = {True: "yes", False: "NO", None: "unknown"}[meta.get("decay_corrected")]
        source = meta.get("source_units")
        units = meta.get("units")
        converted = f" (converted from {source})" if source and source != units else ""
        self.info_label.setText(
            f"PET: {len(meta['frame_start_s'])} frames, units {units}{converted}; "
            f"decay corrected: {decay}; radionuclide: "
            f"{meta.get('radionuclide') or 'unknown'}."
        )

    def _label_time_axis(self) -> None:
        labels = list(self.viewer.dims.axis_labels)
        if len(labels) == 4:
            labels[0] = "frame"
            self.viewer.dims.axis_labels = labels

    def _update_frame_label(self, event=None) -> None:
        if self.pet_layer is None or self.pet_layer not in self.viewer.layers:
            self.frame_label.setText("")
            return
        mids = self.pet_layer.metadata.get("frame_mid_min", [])
        if self.viewer.dims.ndim != 4 or not mids:
            return
        frame = int(self.viewer.dims.current_step[0])
        if 0 <= frame < len(mids):
            self.frame_label.setText(
                f"Current frame {frame}: mid-time {mids[frame]:.2f} min"
            )

    # ---------------------------------------------------------------- frame table

    def windows_min(self) -> dict[str, tuple[float, float]]:
        """The condition windows in the spin boxes, minutes."""
        return {
            name: (start.value(), end.value())
            for name, (start, end) in self.window_spins.items()
        }

    def set_windows_min(self, windows_min: dict) -> None:
        """Set the window spin boxes (names not known to the dock are ignored)."""
        for name, (start, end) in windows_min.items():
            if name in self.window_spins:
                start_spin, end_spin = self.window_spins[name]
                for spin in (start_spin, end_spin):
                    spin.blockSignals(True)
                start_spin.setValue(float(start))
                end_spin.setValue(float(end))
                for spin in (start_spin, end_spin):
                    spin.blockSignals(False)
        self._on_windows_changed()

    def _on_windows_changed(self, value=None) -> None:
        if self.pet_layer is None or self.pet_layer not in self.viewer.layers:
            return
        try:
            self._fill_table()
        except MorError as err:
            show_error(str(err))
            return
        self.pet_layer.metadata["windows_min"] = self.windows_min()

    def _clear_table(self) -> None:
        self._filling_table = True
        self.table.setRowCount(0)
        self._filling_table = False

    def _fill_table(self) -> None:
        rows = frame_table(self._timing(), self.windows_min())
        self._filling_table = True
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
                self._shown_texts.append((values[_START_COL], values[_DURATION_COL]))
                for c, text in enumerate(values):
                    item = QTableWidgetItem(text)
                    if c not in (_START_COL, _DURATION_COL):
                        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    self.table.setItem(r, c, item)
        finally:
            self._filling_table = False

    def _table_pairs(self) -> list[tuple[str, str]]:
        return [
            (
                self.table.item(r, _START_COL).text(),
                self.table.item(r, _DURATION_COL).text(),
            )
            for r in range(self.table.rowCount())
        ]

    def _on_table_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling_table or item.column() not in (_START_COL, _DURATION_COL):
            return
        try:
            self.apply_table_edits()
        except MorError as err:
            show_error(str(err))
            self._fill_table()  # restore the previous (layer) values

    def apply_table_edits(self) -> FrameTiming:
        """Validate the table and store its timing in the PET layer's metadata.

        Cells left as displayed keep their exact previous value (the table
        shows rounded minutes).

        Raises
        ------
        MorError
            When the edited timing is invalid; the layer is left unchanged.
        """
        layer = self._pet_layer()
        old = self._timing()
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
        layer = self._pet_layer()
        if timing.n_frames != layer.data.shape[0]:
            raise MorError(
                f"The PET has {layer.data.shape[0]} frames but the timing lists "
                f"{timing.n_frames}; give one start and duration per frame."
            )
        layer.metadata["frame_start_s"] = timing.frame_start_s.tolist()
        layer.metadata["frame_duration_s"] = timing.frame_duration_s.tolist()
        layer.metadata["frame_mid_min"] = np.round(timing.frame_mid_min, 4).tolist()
        layer.metadata["timing_edited_in_study_dock"] = True
        self.timing_edited = True
        self._fill_table()
        self._update_frame_label()

    # ----------------------------------------------------------------- mean image

    def add_mean_image(
        self, start_min: float | None = None, end_min: float | None = None
    ):
        """Add the duration-weighted mean PET over a time range as a new layer."""
        layer = self._pet_layer()
        start = self.mean_start_spin.value() if start_min is None else float(start_min)
        end = self.mean_end_spin.value() if end_min is None else float(end_min)
        self.mean_start_spin.setValue(start)
        self.mean_end_spin.setValue(end)
        timing = self._timing()
        mean = summed_image(np.asarray(layer.data), timing, start, end)
        used = timing.frames_in_window(start, end)
        return self.viewer.add_image(
            mean,
            name=f"{layer.name} mean {start:g}-{end:g} min",
            affine=spatial_affine_of(layer),
            colormap="inferno",
            blending="additive",
            metadata={
                "kind": "mean_image",
                "units": layer.metadata.get("units", "kBq/mL"),
                "window_min": [start, end],
                "frames_used": np.flatnonzero(used).tolist(),
                "source_layer": layer.name,
            },
        )

    # ------------------------------------------------------------------ voxel TAC

    def _on_tac_toggled(self, checked: bool) -> None:
        callbacks = self.viewer.mouse_drag_callbacks
        if checked and not self._tac_callback_connected:
            callbacks.append(self._on_mouse_press)
            self._tac_callback_connected = True
        elif not checked and self._tac_callback_connected:
            if self._on_mouse_press in callbacks:
                callbacks.remove(self._on_mouse_press)
            self._tac_callback_connected = False

    def _on_mouse_press(self, viewer, event) -> None:
        """Mouse callback: plot the TAC under a click (not while dragging)."""
        if event.type != "mouse_press":
            return
        self._safe(self.show_tac_at, event.position)

    def show_tac_at(self, world_position) -> np.ndarray:
        """Plot the TAC of the PET voxel under a world position.

        Parameters
        ----------
        world_position : sequence of float
            Viewer world coordinates; the last three are x, y, z in mm (a
            leading time coordinate, as in ``event.position`` with a 4D PET,
            is ignored).

        Returns
        -------
        tac : ndarray, shape (n_frames,)
            The voxel's activity, kBq/mL.
        """
        layer = self._pet_layer()
        position = np.asarray(world_position, dtype=np.float64)
        if position.size < 3:
            raise MorError(
                f"Click position {tuple(position)} has fewer than 3 coordinates; "
                "use a 3D (x, y, z) world position."
            )
        world_mm = position[-3:]
        affine = spatial_affine_of(layer)
        data = np.asarray(layer.data)
        tac = voxel_tac(data, affine, world_mm)
        voxel = voxel_index(world_mm, affine, data.shape)
        reference, reference_name = self._reference_tac(layer)
        self.tac_plot.set_curves(
            np.asarray(layer.metadata["frame_mid_min"]),
            tac,
            f"voxel {voxel}",
            reference,
            reference_name,
        )
        return tac

    def _reference_tac(self, pet_layer) -> tuple[np.ndarray | None, str]:
        """Mean TAC of an 'occipital' label on the PET grid, if a layer has one.

        The mean leaves out non-finite PET voxels, as every regional TAC does
        (:func:`napari_mor.rois.mask_mean_tac`).
        """
        pet_affine = spatial_affine_of(pet_layer)
        for layer in self.viewer.layers:
            if not isinstance(layer, Labels) or layer.data.ndim != 3:
                continue
            lut = layer.metadata.get("lut") or {}
            label = find_label(lut, DEFAULT_REFERENCE_HINT)
            if label is None or not same_grid(
                layer.data.shape,
                spatial_affine_of(layer),
                pet_layer.data.shape,
                pet_affine,
            ):
                continue
            name = str(lut.get(label, lut.get(str(label))))
            tac = mask_mean_tac(
                pet_from_layer(pet_layer), np.asarray(layer.data) == label, name
            )
            return tac, f"{name} (reference)"
        return None, ""

    # ----------------------------------------------------------------- study file

    def study_state(self) -> StudyState:
        """The dock's current state as a StudyState."""
        layer = self._pet_layer()
        source = layer.metadata.get("source_path")
        timing = self._timing() if self.timing_edited else None
        labels_source = None
        if self.labels_layer is not None and self.labels_layer in self.viewer.layers:
            labels_source = self.labels_path
        mr = None
        if self.mr_layer is not None and self.mr_layer in self.viewer.layers:
            mr = self.mr_layer.metadata.get("source_path")
        return StudyState(
            pet_path=Path(source) if source else None,
            mr_path=Path(mr) if mr else None,
            frames_tsv_path=self.frames_tsv_path,
            frame_start_s=timing.frame_start_s.tolist() if timing else None,
            frame_duration_s=timing.frame_duration_s.tolist() if timing else None,
            windows_min=self.windows_min(),
            labels_path=labels_source,
            lut_path=self.lut_path if labels_source else None,
            mean_window_min=(self.mean_start_spin.value(), self.mean_end_spin.value()),
            fit_settings=dict(self.fit_settings),
        )

    def save_study(self, path: str | Path) -> Path:
        """Save the study (paths relative to the study file's folder)."""
        written = save_study(path, self.study_state())
        show_info(f"Study saved to {written}.")
        return written

    def load_study(self, path: str | Path) -> StudyState:
        """Load a study file: layers, frame fixes, windows and settings."""
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
        self.set_windows_min(state.windows_min)
        self.load_subject(state.pet_path, state.mr_path, state.frames_tsv_path)
        if state.frame_timing is not None and self.pet_layer is not None:
            self.set_frame_timing(state.frame_timing)
        if state.labels_path is not None:
            self.load_labels(state.labels_path, state.lut_path)
        if state.mean_window_min is not None:
            self.mean_start_spin.setValue(state.mean_window_min[0])
            self.mean_end_spin.setValue(state.mean_window_min[1])
        self.fit_settings = dict(state.fit_settings)
        return state


def _row(*widgets) -> QWidget:
    holder = QWidget()
    hbox = QHBoxLayout(holder)
    hbox.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        hbox.addWidget(widget)
    return holder


def _minutes_spin(value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 1000.0)
    spin.setDecimals(1)
    spin.setSingleStep(5.0)
    spin.setSuffix(" min")
    spin.setValue(value)
    return spin


def _relative_name(path: Path, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return str(path)
