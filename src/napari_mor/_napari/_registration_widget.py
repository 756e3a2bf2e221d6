"""The "Registration" dock: PET motion correction, PET -> MR, MR -> MNI.

A thin container over :mod:`napari_mor._napari.registration`: the choices
section reads the chosen layers into core objects (main thread),
:func:`~napari_mor._napari._workers.start_worker` runs the core generator
(:func:`~napari_mor._napari.registration._work.run_registration`: progress per
frame or pyramid level, Cancel within a level), and on success the registered
image is added as a translucent layer over the fixed one, plus a motion-trace
plot. Accept keeps the result layer and stores the transform in its
``metadata`` (``transform_to_<SPACE>`` or ``motion_transforms``, see
:mod:`napari_mor._napari.registration.result_layers`). Undo removes the
result. The input layers are never modified.
"""

from __future__ import annotations

import threading

from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

import napari
from napari_mor._errors import MorError
from napari_mor._napari._dock import button_row, scrolling_sections
from napari_mor._napari._workers import start_worker
from napari_mor._napari.registration import (
    MNI_TEMPLATE,
    MODES,
    ChoicesSection,
    MotionTracePlotDock,
    RegistrationInputs,
    RegistrationOutput,
    accepted_metadata,
    add_motion_layer,
    add_static_layer,
    add_template_layer,
    motion_summary,
    run_registration,
    static_summary,
)

__all__ = [
    "MNI_TEMPLATE",
    "MODES",
    "MotionTracePlotDock",
    "RegistrationInputs",
    "RegistrationOutput",
    "RegistrationWidget",
    "run_registration",
]


class RegistrationWidget(QWidget):
    """Dock: choose moving/fixed layers and a mode, run, then Accept or Undo."""

    def __init__(self, viewer: napari.viewer.Viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.worker = None
        self.result_layer = None
        self.template_layer = None
        self.last_output: RegistrationOutput | None = None
        self._stop = threading.Event()
        self._returned = False

        self.choices = ChoicesSection(viewer, excluded=lambda: self.result_layer)
        buttons, made = button_row(
            ("Run", self.run),
            ("Cancel", self.cancel),
            ("Accept", self.accept),
            ("Undo", self.undo),
        )
        self.run_button, self.cancel_button, self.accept_button, self.undo_button = made
        self.progress = QProgressBar()
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        controls = QWidget()
        column = QVBoxLayout(controls)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(buttons)
        column.addWidget(self.progress)
        column.addWidget(self.status_label)
        self.trace_plot = MotionTracePlotDock(viewer, self)
        scrolling_sections(self, [self.choices, controls, self.trace_plot])
        # the controls tests and scripts drive, under their historical names
        self.mode_combo = self.choices.mode_combo
        self.moving_combo = self.choices.moving_combo
        self.fixed_combo = self.choices.fixed_combo
        self.start_spin = self.choices.start_spin
        self.end_spin = self.choices.end_spin
        self._set_running(False)

    # ----------------------------------------------------------- choices
    @property
    def mode(self) -> str:
        """The core mode: ``motion``, ``pet_to_mr`` or ``mr_to_mni``."""
        return self.choices.mode

    def set_mode(self, mode: str) -> None:
        """Select a mode by its core name (``motion``, ``pet_to_mr``, ``mr_to_mni``)."""
        self.choices.set_mode(mode)

    def collect_inputs(self) -> RegistrationInputs:
        """Read the chosen layers into core objects (main thread only)."""
        return self.choices.collect_inputs()

    def _refresh_choices(self, event=None) -> None:
        self.choices.refresh_choices()

    # ----------------------------------------------------------- running
    def run(self):
        """Start the registration in a worker; returns the worker (or None)."""
        if self.worker is not None:
            show_error("A registration is already running; wait or press Cancel.")
            return None
        try:
            inputs = self.collect_inputs()
        except MorError as err:
            show_error(str(err))
            return None
        self._discard_preview()
        self._stop.clear()
        self._returned = False
        self.status_label.setText(f"Running {self.mode_combo.currentText()} ...")
        self._set_running(True)
        self.worker = start_worker(
            run_registration,
            inputs,
            self._stop.is_set,
            desc="Registration",
            on_returned=self._on_returned,
            fraction_of=lambda value: value[0] / max(value[1], 1),
            progress_bar=self.progress,
            cancel_button=self.cancel_button,
            run_button=self.run_button,
            on_aborted=self._on_cancelled,
            on_finished=self._on_finished,
        )
        return self.worker

    def cancel(self) -> None:
        """Stop the running registration (between and within chunks)."""
        if self.worker is None:
            return
        self._stop.set()
        self.worker.quit()
        self.status_label.setText("Cancelling ...")

    def _on_cancelled(self) -> None:
        self.status_label.setText("Cancelled; nothing was changed.")

    def _on_finished(self) -> None:
        self.worker = None
        if not self._returned and not self._stop.is_set():
            self.status_label.setText("Failed; see the notification.")
        elif self._stop.is_set() and self.result_layer is None:
            self._on_cancelled()
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        has_result = self.result_layer is not None and not running
        self.accept_button.setEnabled(has_result)
        self.undo_button.setEnabled(has_result)

    # ----------------------------------------------------------- results
    def _on_returned(self, output: RegistrationOutput) -> None:
        self._returned = True
        if getattr(output.result, "cancelled", False):
            self.progress.setValue(0)
            self.progress.setFormat("cancelled")
            show_info("Registration cancelled; nothing was added.")
            self._on_cancelled()
            return
        self.last_output = output
        self.template_layer = add_template_layer(self.viewer, output)
        if output.mode == "motion":
            self.result_layer = add_motion_layer(self.viewer, output)
            result = output.result
            self.trace_plot.set_trace(
                result.corrected.timing.frame_mid_min,
                result.translation_mm,
                result.rotation_deg,
            )
            self.status_label.setText(motion_summary(result))
        else:
            self.result_layer = add_static_layer(self.viewer, output)
            self.status_label.setText(static_summary(output.result))
        self._set_running(False)

    def accept(self) -> None:
        """Keep the result layer; store the transform in its metadata."""
        if self.result_layer is None or self.last_output is None:
            return
        self.result_layer.metadata.update(accepted_metadata(self.last_output))
        self.status_label.setText(f"Accepted: kept layer {self.result_layer.name!r}.")
        self.result_layer = None
        self.template_layer = None
        self.last_output = None
        self._set_running(False)

    def undo(self) -> None:
        """Remove the result (and a template layer the dock added)."""
        self._discard_preview()
        self.status_label.setText("Undone; the original layers are unchanged.")
        self._set_running(False)

    def _discard_preview(self) -> None:
        for layer in (self.result_layer, self.template_layer):
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.result_layer = None
        self.template_layer = None
        self.last_output = None
