"""The "Study" dock: open a subject, check frame timing, quick looks, study file.

A thin composition of section widgets over the Qt-free core:

- :mod:`.bids` - BIDS discovery (:mod:`napari_mor.io.bids`),
- :mod:`.files` - PET / MR / frames TSV / labels loading (:mod:`napari_mor.io`),
- :mod:`.frames` - the frame table (:mod:`napari_mor.io.frame_table`),
- :mod:`.windows` - the condition windows (magicgui form),
- :mod:`.quicklook` - mean image and clicked-voxel TAC (:mod:`napari_mor.rois`),
- :mod:`.study_file` - the study file (:mod:`napari_mor.workflows.session`).

Layers are aligned in world space through their affines. Every
:class:`~napari_mor.MorError` from a control becomes a napari notification;
the viewer keeps running. The public methods raise it (``_safe`` shows it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QLabel, QWidget

from napari_mor._napari import _metadata as meta
from napari_mor._napari._dock import notify_errors, scrolling_sections
from napari_mor._napari.study.bids import BidsSection
from napari_mor._napari.study.files import FilesSection, pet_summary
from napari_mor._napari.study.frames import FramesSection
from napari_mor._napari.study.quicklook import MeanImageSection, VoxelTacSection
from napari_mor._napari.study.study_file import StudyFileRow
from napari_mor._napari.study.windows import WindowsSection
from napari_mor.io.bids import BidsListing
from napari_mor.io.timing import FrameTiming
from napari_mor.workflows.session import StudyState

if TYPE_CHECKING:
    import napari.viewer

#: Section -> its controls the dock shows as its own attributes (scripts, tests).
SECTION_CONTROLS = {
    "bids": (
        "bids_edit",
        "subject_combo",
        "pet_combo",
        "t1w_combo",
        "load_selected_button",
    ),
    "files": (
        "pet_edit",
        "mr_edit",
        "frames_edit",
        "load_button",
        "load_frames_button",
        "reader_button",
        "sidecar_label",
    ),
    "frames": ("frame_label", "table"),
    "mean": ("mean_start_spin", "mean_end_spin", "mean_button"),
    "voxel_tac": ("tac_checkbox", "tac_plot", "_on_mouse_press"),
}


class StudyWidget(QWidget):
    """Open a subject's PET and MR, fix frame timing and take a first look.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer to add layers to.

    Attributes
    ----------
    fit_settings : dict
        Kinetic-fit settings carried in the study file.
    """

    def __init__(
        self, viewer: napari.viewer.Viewer, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.fit_settings: dict = {}
        self.windows = WindowsSection()
        self.files = FilesSection(viewer, self.windows.windows_min)
        self.bids = BidsSection(self.files.load_subject)
        self.frames = FramesSection(self.files, self.windows.windows_min)
        self.mean = MeanImageSection(self.files)
        self.voxel_tac = VoxelTacSection(self.files)
        self.study_file = StudyFileRow(self.study_state, self._apply_study_state)
        self.info_label = QLabel("No PET loaded.")
        self.info_label.setWordWrap(True)
        sections = (
            self.bids,
            self.files,
            self.info_label,
            self.frames,
            self.windows,
            self.mean,
            self.voxel_tac,
            self.study_file,
        )
        scrolling_sections(self, sections).addStretch(1)
        for section, names in SECTION_CONTROLS.items():
            for name in names:
                setattr(self, name, getattr(getattr(self, section), name))
        self.files.pet_loaded.connect(self._on_pet_loaded)
        self.files.pet_cleared.connect(self.frames.clear)
        self.windows.changed.connect(self._on_windows_changed)

    # ------------------------------------------------------------ wiring
    def _on_pet_loaded(self) -> None:
        self.frames.show_new_pet()
        self.info_label.setText(pet_summary(self.files.require_pet().metadata))
        self.frames.update_frame_label()

    @notify_errors
    def _on_windows_changed(self) -> None:
        layer = self.files.current_pet()
        if layer is None:
            return
        self.frames.fill()
        layer.metadata[meta.WINDOWS_MIN] = self.windows_min()

    @notify_errors
    def _safe(self, func, *args, **kwargs):
        """Run ``func``; show a MorError as a notification instead of raising."""
        return func(*args, **kwargs)

    # ---------------------------------------------------- layers and paths
    @property
    def pet_layer(self):
        """The PET layer the dock loaded (None before one is loaded)."""
        return self.files.pet_layer

    @property
    def mr_layer(self):
        """The MR layer the dock loaded."""
        return self.files.mr_layer

    @property
    def labels_layer(self):
        """The Labels layer the dock loaded."""
        return self.files.labels_layer

    @property
    def frames_tsv_path(self) -> Path | None:
        """The frames TSV the PET's timing came from."""
        return self.files.frames_tsv_path

    @property
    def labels_path(self) -> Path | None:
        """The label image the dock loaded."""
        return self.files.labels_path

    @property
    def lut_path(self) -> Path | None:
        """The label image's LUT."""
        return self.files.lut_path

    @property
    def listing(self) -> BidsListing | None:
        """The BIDS folder's listing."""
        return self.bids.listing

    @property
    def timing_edited(self) -> bool:
        """The frame timing was edited in the dock since the PET was loaded."""
        return self.frames.timing_edited

    # ------------------------------------------------------------ loading
    def load_bids_folder(self, folder: str | Path) -> BidsListing:
        """Fill the subject, PET-run and T1w choices from a BIDS folder."""
        return self.bids.load_bids_folder(folder)

    def load_selected_run(self) -> None:
        """Load the PET run and T1w chosen in the combo boxes."""
        self.bids.load_selected_run()

    def load_subject(self, pet_path, mr_path=None, frames_tsv=None) -> None:
        """Load a PET (and MR) as layers aligned in world space (see FilesSection)."""
        self.files.load_subject(pet_path, mr_path, frames_tsv)

    def load_frames_tsv(self, frames_tsv: str | Path) -> None:
        """Load the PET named in the PET field with frame times from a TSV."""
        self.files.load_frames_tsv(frames_tsv)

    def load_labels(self, labels_path, lut_path=None) -> None:
        """Add a label image (with its LUT) as a Labels layer."""
        self.files.load_labels(labels_path, lut_path)

    # ------------------------------------------------- timing and windows
    def windows_min(self) -> dict[str, tuple[float, float]]:
        """The condition windows in the spin boxes, minutes."""
        return self.windows.windows_min()

    def set_windows_min(self, windows_min: dict) -> None:
        """Set the window spin boxes (names not known to the dock are ignored)."""
        self.windows.set_windows_min(windows_min)

    def apply_table_edits(self) -> FrameTiming:
        """Validate the frame table and store its timing in the PET layer."""
        return self.frames.apply_table_edits()

    def set_frame_timing(self, timing: FrameTiming) -> None:
        """Store frame timing in the PET layer's metadata and refresh the table."""
        self.frames.set_frame_timing(timing)

    # --------------------------------------------------------- quick looks
    def add_mean_image(self, start_min: float | None = None, end_min=None):
        """Add the duration-weighted mean PET over a time range as a new layer."""
        return self.mean.add_mean_image(start_min, end_min)

    def show_tac_at(self, world_position):
        """Plot the TAC of the PET voxel under a world position (x, y, z last)."""
        return self.voxel_tac.show_tac_at(world_position)

    # ---------------------------------------------------------- study file
    def study_state(self) -> StudyState:
        """The dock's current state as a StudyState."""
        layer = self.files.require_pet()
        source = layer.metadata.get(meta.SOURCE_PATH)
        timing = self.files.timing() if self.timing_edited else None
        labels_source = None
        if self.labels_layer is not None and self.labels_layer in self.viewer.layers:
            labels_source = self.labels_path
        mr = None
        if self.mr_layer is not None and self.mr_layer in self.viewer.layers:
            mr = self.mr_layer.metadata.get(meta.SOURCE_PATH)
        return StudyState(
            pet_path=Path(source) if source else None,
            mr_path=Path(mr) if mr else None,
            frames_tsv_path=self.frames_tsv_path,
            frame_start_s=timing.frame_start_s.tolist() if timing else None,
            frame_duration_s=timing.frame_duration_s.tolist() if timing else None,
            windows_min=self.windows_min(),
            labels_path=labels_source,
            lut_path=self.lut_path if labels_source else None,
            mean_window_min=self.mean.window_min(),
            fit_settings=dict(self.fit_settings),
        )

    def save_study(self, path: str | Path) -> Path:
        """Save the study (paths relative to the study file's folder)."""
        return self.study_file.save_study(path)

    def load_study(self, path: str | Path) -> StudyState:
        """Load a study file: layers, frame fixes, windows and settings."""
        return self.study_file.load_study(path)

    def _apply_study_state(self, state: StudyState) -> None:
        self.set_windows_min(state.windows_min)
        self.load_subject(state.pet_path, state.mr_path, state.frames_tsv_path)
        if state.frame_timing is not None and self.pet_layer is not None:
            self.set_frame_timing(state.frame_timing)
        if state.labels_path is not None:
            self.load_labels(state.labels_path, state.lut_path)
        if state.mean_window_min is not None:
            self.mean.set_window_min(*state.mean_window_min)
        self.fit_settings = dict(state.fit_settings)


__all__ = ["StudyWidget"]
