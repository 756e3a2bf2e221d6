"""The "Registration" dock: PET motion correction, PET -> MR, MR -> MNI.

A thin widget over :mod:`napari_mor.registration`: it reads the chosen layers
into core objects (main thread), runs the core generator in a napari
``thread_worker`` (progress bar, Cancel), and on success adds the registered
image as a translucent layer over the fixed one, plus a motion-trace plot.
Accept keeps the result layer and stores the transform in its ``metadata``:
``transform_to_<SPACE>`` maps the result layer's world (the fixed space) to the
world of SPACE (e.g. ``transform_to_PET`` on a PET-on-MR overlay), as
:meth:`napari_mor.registration.Transform.to_dict`; motion correction stores
``motion_transforms`` (one per frame) and ``motion_trace``. Undo removes the
result. The input layers are never modified.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

import napari
from napari_mor._errors import MorError
from napari_mor._napari._layers import (
    pet_from_layer,
    pet_layer_data,
    volume_from_layer,
    volume_layer_data,
)
from napari_mor._napari._plot_base import BasePlotDock
from napari_mor.io.volume import Volume

#: Mode label -> core mode.
MODES = {
    "Motion correction (PET frames)": "motion",
    "PET -> MR (rigid, mutual information)": "pet_to_mr",
    "MR -> MNI152 (affine)": "mr_to_mni",
}

#: Fixed-layer choice meaning "nilearn's MNI152 template".
MNI_TEMPLATE = "MNI152 template (nilearn, 2 mm)"


@dataclass
class RegistrationInputs:
    """What the dock collected, as core objects (built in the main thread)."""

    mode: str
    moving_name: str
    fixed_name: str
    moving: object
    fixed: Volume | None
    window_min: tuple[float, float]


@dataclass
class RegistrationOutput:
    """What the worker returns: the core result and arrays ready for layers."""

    mode: str
    inputs: RegistrationInputs
    result: object
    data: np.ndarray
    affine: np.ndarray
    fixed_template: Volume | None = None
    metadata: dict = field(default_factory=dict)


def run_registration(inputs: RegistrationInputs, should_stop=None):
    """Generator run by the worker: yields (done, total), returns the output.

    Qt-free; touches no layer.
    """
    from napari_mor.registration import (
        iter_coregister_pet_to_mr,
        iter_correct_motion,
        iter_normalize_to_mni,
        mean_pet_image,
        mni_template,
        resample_map,
    )

    if inputs.mode == "motion":
        result = yield from iter_correct_motion(
            inputs.moving,
            reference_window_min=inputs.window_min,
            should_stop=should_stop,
        )
        pet = result.corrected
        return RegistrationOutput("motion", inputs, result, pet.data, pet.affine)
    if inputs.mode == "pet_to_mr":
        result = yield from iter_coregister_pet_to_mr(
            inputs.moving,
            inputs.fixed,
            window_min=inputs.window_min,
            should_stop=should_stop,
        )
        mean = inputs.moving
        if not isinstance(mean, Volume):
            mean = mean_pet_image(inputs.moving, inputs.window_min)
        fixed = inputs.fixed
        data = resample_map(
            mean.data, mean.affine, result.transform, fixed.data.shape, fixed.affine
        )
        return RegistrationOutput("pet_to_mr", inputs, result, data, fixed.affine)
    template = inputs.fixed if inputs.fixed is not None else mni_template(2)
    kwargs = {"template": template}
    if inputs.fixed is not None:
        kwargs["template_space"] = inputs.fixed_name
    result = yield from iter_normalize_to_mni(
        inputs.moving, should_stop=should_stop, **kwargs
    )
    mr = inputs.moving
    data = resample_map(
        mr.data, mr.affine, result.transform, template.data.shape, template.affine
    )
    return RegistrationOutput(
        "mr_to_mni",
        inputs,
        result,
        data,
        template.affine,
        fixed_template=template if inputs.fixed is None else None,
    )


class MotionTracePlotDock(BasePlotDock):
    """Per-frame translations (mm) and rotations (deg) against mid-frame time."""

    def __init__(self, viewer=None, parent=None) -> None:
        self.frame_mid_min = np.zeros(0)
        self.translation_mm = np.zeros((0, 3))
        self.rotation_deg = np.zeros((0, 3))
        super().__init__(viewer, parent)

    def set_trace(self, frame_mid_min, translation_mm, rotation_deg) -> None:
        """Plot a motion trace (NaN rows = frames left alone)."""
        self.frame_mid_min = np.asarray(frame_mid_min, dtype=float)
        self.translation_mm = np.asarray(translation_mm, dtype=float)
        self.rotation_deg = np.asarray(rotation_deg, dtype=float)
        self.refresh()

    def draw(self) -> None:
        ax = self.axes
        if self.frame_mid_min.size == 0:
            ax.set_title("Motion trace (run motion correction)")
            return
        for axis, name in enumerate("xyz"):
            ax.plot(
                self.frame_mid_min,
                self.translation_mm[:, axis],
                "o-",
                label=f"t{name} (mm)",
            )
        for axis, name in enumerate("xyz"):
            ax.plot(
                self.frame_mid_min,
                self.rotation_deg[:, axis],
                "s--",
                label=f"r{name} (deg)",
            )
        ax.axhline(0.0, color=self.colors["highlight"], lw=0.8)
        ax.set_xlabel("mid-frame time (min)")
        ax.set_ylabel("motion (mm / deg)")
        ax.set_title("Motion trace (relative to the reference)")
        ax.legend(fontsize="x-small", ncols=2)


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

        self.mode_combo = QComboBox()
        self.mode_combo.addItems(list(MODES))
        self.moving_combo = QComboBox()
        self.fixed_combo = QComboBox()
        self.start_spin = _minutes(20.0)
        self.end_spin = _minutes(90.0)
        window = QHBoxLayout()
        window.addWidget(self.start_spin)
        window.addWidget(QLabel("to"))
        window.addWidget(self.end_spin)
        window.addWidget(QLabel("min"))

        form = QFormLayout()
        form.addRow("Mode", self.mode_combo)
        form.addRow("Moving", self.moving_combo)
        form.addRow("Fixed", self.fixed_combo)
        form.addRow("Reference / mean frames", window)

        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.accept_button = QPushButton("Accept")
        self.undo_button = QPushButton("Undo")
        buttons = QHBoxLayout()
        for button in (
            self.run_button,
            self.cancel_button,
            self.accept_button,
            self.undo_button,
        ):
            buttons.addWidget(button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.trace_plot = MotionTracePlotDock(viewer, self)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(self.trace_plot)

        self.mode_combo.currentIndexChanged.connect(self._refresh_choices)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.accept_button.clicked.connect(self.accept)
        self.undo_button.clicked.connect(self.undo)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self._refresh_choices)
        self._refresh_choices()
        self._set_running(False)

    # ----------------------------------------------------------- choices
    @property
    def mode(self) -> str:
        return MODES[self.mode_combo.currentText()]

    def set_mode(self, mode: str) -> None:
        """Select a mode by its core name (``motion``, ``pet_to_mr``, ``mr_to_mni``)."""
        label = next(k for k, v in MODES.items() if v == mode)
        self.mode_combo.setCurrentText(label)

    def _image_layers(self, ndim: int | None = None) -> list[str]:
        names = []
        for layer in self.viewer.layers:
            if not isinstance(layer, Image) or layer is self.result_layer:
                continue
            if ndim is None or layer.data.ndim == ndim:
                names.append(layer.name)
        return names

    def _refresh_choices(self, event=None) -> None:
        mode = self.mode
        moving_before = self.moving_combo.currentText()
        fixed_before = self.fixed_combo.currentText()
        self.moving_combo.clear()
        self.fixed_combo.clear()
        if mode == "motion":
            self.moving_combo.addItems(self._image_layers(4))
        elif mode == "pet_to_mr":
            self.moving_combo.addItems(self._image_layers(4) + self._image_layers(3))
            self.fixed_combo.addItems(self._image_layers(3))
        else:
            self.moving_combo.addItems(self._image_layers(3))
            self.fixed_combo.addItems([MNI_TEMPLATE, *self._image_layers(3)])
        self.fixed_combo.setEnabled(mode != "motion")
        self.start_spin.setEnabled(mode != "mr_to_mni")
        self.end_spin.setEnabled(mode != "mr_to_mni")
        for combo, before in (
            (self.moving_combo, moving_before),
            (self.fixed_combo, fixed_before),
        ):
            if before and combo.findText(before) >= 0:
                combo.setCurrentText(before)
        same = self.fixed_combo.currentText() == self.moving_combo.currentText()
        if mode == "pet_to_mr" and self.fixed_combo.count() > 1 and same:
            self.fixed_combo.setCurrentIndex(1)  # a fixed image other than moving

    def collect_inputs(self) -> RegistrationInputs:
        """Read the chosen layers into core objects (main thread only)."""
        mode = self.mode
        moving_name = self.moving_combo.currentText()
        if not moving_name:
            raise MorError(
                "No suitable moving layer: open a dynamic PET (motion, PET->MR) or "
                "a 3D MR (MR->MNI) first."
            )
        moving_layer = self.viewer.layers[moving_name]
        window = (self.start_spin.value(), self.end_spin.value())
        if window[1] <= window[0]:
            raise MorError(
                f"The frame window {window[0]:g}-{window[1]:g} min is empty; the end "
                "must be after the start."
            )
        if mode == "motion" or (mode == "pet_to_mr" and moving_layer.data.ndim == 4):
            moving = pet_from_layer(moving_layer)
        else:
            moving = volume_from_layer(moving_layer)
        fixed_name = self.fixed_combo.currentText()
        fixed = None
        if mode == "pet_to_mr":
            if not fixed_name:
                raise MorError("Open a 3D T1 MR layer to register the PET to.")
            if fixed_name == moving_name:
                raise MorError("Moving and fixed are the same layer; pick the MR.")
            fixed = volume_from_layer(self.viewer.layers[fixed_name])
        elif mode == "mr_to_mni" and fixed_name != MNI_TEMPLATE:
            fixed = volume_from_layer(self.viewer.layers[fixed_name])
        return RegistrationInputs(mode, moving_name, fixed_name, moving, fixed, window)

    # ----------------------------------------------------------- running
    def run(self):
        """Start the registration in a worker; returns the worker (or None)."""
        from napari.qt.threading import thread_worker

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

        # errors go to _on_error (a notification), not re-raised in the Qt loop
        @thread_worker(ignore_errors=True)
        def _work():
            output = yield from run_registration(inputs, self._stop.is_set)
            return output

        worker = _work()
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.progress.setRange(0, 0)  # busy until the first chunk is done
        self.status_label.setText(f"Running {self.mode_combo.currentText()} ...")
        self._set_running(True)
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the running registration (between and within chunks)."""
        if self.worker is None:
            return
        self._stop.set()
        self.worker.quit()
        self.status_label.setText("Cancelling ...")

    def _on_progress(self, value) -> None:
        done, total = value
        self.progress.setRange(0, int(total))
        self.progress.setValue(int(done))

    def _on_error(self, err: Exception) -> None:
        if isinstance(err, MorError):
            show_error(str(err))
        else:
            show_error(f"Registration failed: {err!r}")
        self.status_label.setText(f"Failed: {err}")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)
        if self._stop.is_set() and self.result_layer is None:
            self.status_label.setText("Cancelled; nothing was changed.")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        has_result = self.result_layer is not None and not running
        self.accept_button.setEnabled(has_result)
        self.undo_button.setEnabled(has_result)

    # ----------------------------------------------------------- results
    def _on_returned(self, output: RegistrationOutput) -> None:
        if getattr(output.result, "cancelled", False):
            show_info("Registration cancelled; nothing was added.")
            return
        self.last_output = output
        if output.fixed_template is not None:
            data, kwargs, _ = volume_layer_data(output.fixed_template, MNI_TEMPLATE)
            self.template_layer = self.viewer.add_image(data, **kwargs)
        if output.mode == "motion":
            self._add_motion_result(output)
        else:
            self._add_static_result(output)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self._set_running(False)

    def _add_motion_result(self, output: RegistrationOutput) -> None:
        result = output.result
        pet = result.corrected
        data, kwargs, _ = pet_layer_data(
            pet, f"{output.inputs.moving_name} motion-corrected"
        )
        kwargs["opacity"] = 0.6
        kwargs["metadata"] = {
            **kwargs["metadata"],
            "motion_trace": result.trace_columns(pet.timing),
            "registration": {
                "mode": "motion",
                "source_layer": output.inputs.moving_name,
            },
        }
        self.result_layer = self.viewer.add_image(data, **kwargs)
        self.trace_plot.set_trace(
            pet.timing.frame_mid_min, result.translation_mm, result.rotation_deg
        )
        left = result.left_alone
        self.status_label.setText(
            f"{int(result.registered.sum())} of {len(result.status)} frames registered "
            f"in {result.elapsed_s:.1f} s; max mean displacement "
            f"{np.nanmax(result.displacement_mm):.2f} mm. Left alone: "
            + (", ".join(f"{i}" for i in sorted(left)) or "none")
            + ". Accept keeps the corrected PET; Undo removes it."
        )

    def _add_static_result(self, output: RegistrationOutput) -> None:
        result = output.result
        transform = result.transform
        name = f"{output.inputs.moving_name} -> {transform.fixed_space}"
        low, high = np.percentile(output.data, (1.0, 99.5))
        self.result_layer = self.viewer.add_image(
            output.data,
            name=name,
            affine=output.affine,
            colormap="inferno" if output.mode == "pet_to_mr" else "magenta",
            opacity=0.5,
            blending="additive",
            contrast_limits=(float(low), float(max(high, low + 1e-6))),
            metadata={
                "kind": "volume",
                "registration": {
                    **result.summary(),
                    "mode": output.mode,
                    "source_layer": output.inputs.moving_name,
                    "fixed_layer": output.inputs.fixed_name,
                },
            },
        )
        params = transform.rigid_parameters()
        self.status_label.setText(
            f"{transform.fixed_space} -> {transform.moving_space} {transform.kind}: "
            f"translation {_fmt(params['translation_mm'])} mm, rotation "
            f"{_fmt(params['rotation_deg'])} deg, {result.elapsed_s:.1f} s"
            + ("" if result.converged else " (did NOT converge)")
            + ". Accept keeps the overlay; Undo removes it."
        )

    def accept(self) -> None:
        """Keep the result layer; store the transform in its metadata."""
        if self.result_layer is None or self.last_output is None:
            return
        output = self.last_output
        if output.mode == "motion":
            self.result_layer.metadata["motion_transforms"] = [
                t.to_dict() for t in output.result.transforms
            ]
        else:
            transform = output.result.transform
            self.result_layer.metadata[f"transform_to_{transform.moving_space}"] = (
                transform.to_dict()
            )
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


def _minutes(value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 10000.0)
    spin.setDecimals(1)
    spin.setSuffix("")
    spin.setValue(value)
    return spin


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


__all__ = ["MotionTracePlotDock", "RegistrationWidget", "run_registration"]
