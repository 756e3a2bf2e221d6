"""The Kinetic fit dock's "Live re-fit" section: t* and window sliders, debounce.

Sliders move the forms' spin boxes (and follow them), so the request is still
read from the forms. Any change of the model form, the windows form or the
chosen ROI set's voxels (a paint stroke) restarts one single-shot timer; when it
fires, the dock re-fits the ROIs (:meth:`~.dock.FitWidget.live_refit`), but only
after the user pressed Fit ROIs once and while "live" is checked. No science here.
"""

from __future__ import annotations

import contextlib

from napari.layers import Labels
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import QCheckBox, QGridLayout, QGroupBox, QLabel, QSlider

from napari_mor.defaults import DEFAULT_WINDOWS_MIN

#: Debounce of the live re-fit after the last change, ms.
LIVE_DEBOUNCE_MS = 150
#: Slider ticks per minute (0.5 min steps).
TICKS_PER_MIN = 2
#: Slider range before a PET is chosen, minutes.
_DEFAULT_MAX_MIN = 120.0


def _slider(tooltip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, int(_DEFAULT_MAX_MIN * TICKS_PER_MIN))
    slider.setSingleStep(1)
    slider.setPageStep(TICKS_PER_MIN * 5)
    slider.setToolTip(tooltip)
    return slider


class LiveFitWidget(QGroupBox):
    """Dock section: "live" check box, t* slider and window-bound sliders.

    Parameters
    ----------
    t_star_spin : QDoubleSpinBox
        The model form's t* spin box (minutes) the slider drives and follows.
    t_star_auto : QCheckBox
        The model form's t* "auto" box (moving the slider unticks it).
    window_spins : dict of str to [QDoubleSpinBox, QDoubleSpinBox]
        Condition -> the windows form's start / end spin boxes (minutes).
    use_custom_windows : callable()
        Switch the windows form to custom windows (a slider moved in preset mode).

    Signals
    -------
    triggered
        The debounce timer fired: re-fit now (the dock decides whether it may).
    """

    triggered = Signal()

    def __init__(
        self,
        t_star_spin,
        t_star_auto,
        window_spins: dict,
        use_custom_windows,
        parent=None,
    ) -> None:
        super().__init__("Live re-fit", parent)
        self._t_star_spin, self._t_star_auto = t_star_spin, t_star_auto
        self._window_spins = window_spins
        self._use_custom_windows = use_custom_windows
        self._labels: Labels | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(LIVE_DEBOUNCE_MS)
        self.timer.timeout.connect(self.triggered.emit)
        grid = QGridLayout(self)
        self.live_check = QCheckBox("re-fit the ROIs on every change (after Fit ROIs)")
        self.live_check.setChecked(True)
        self.live_check.setToolTip(
            "t*, windows, model or a paint stroke in the ROI set re-fits the ROIs "
            f"{LIVE_DEBOUNCE_MS} ms after the last change"
        )
        grid.addWidget(self.live_check, 0, 0, 1, 3)
        self.t_star_slider = _slider("t* (min): unticks 'auto'")
        self.t_star_slider.valueChanged.connect(self._on_t_star_slider)
        t_star_spin.valueChanged.connect(self._follow_t_star_spin)
        self.t_star_value = QLabel()
        self._add_row(grid, 1, "t*", self.t_star_slider, self.t_star_value)
        #: Condition -> [start, end] sliders.
        self.window_sliders: dict[str, list[QSlider]] = {}
        self._window_values: dict[str, list[QLabel]] = {}
        row = 2
        for condition in DEFAULT_WINDOWS_MIN:
            sliders, values = [], []
            for end, spin in zip(
                ("start", "end"), window_spins[condition], strict=True
            ):
                slider = _slider(f"{condition} window {end} (min)")
                slider.valueChanged.connect(
                    lambda ticks, spin=spin: self._on_window_slider(spin, ticks)
                )
                spin.valueChanged.connect(
                    lambda value, slider=slider: self._follow(slider, value)
                )
                value = QLabel()
                self._add_row(grid, row, f"{condition} {end}", slider, value)
                sliders.append(slider)
                values.append(value)
                row += 1
            self.window_sliders[condition] = sliders
            self._window_values[condition] = values
        grid.setColumnStretch(1, 1)
        self.sync_from_spins()

    @staticmethod
    def _add_row(grid, row: int, text: str, slider, value_label) -> None:
        grid.addWidget(QLabel(text), row, 0)
        grid.addWidget(slider, row, 1)
        value_label.setMinimumWidth(
            value_label.fontMetrics().horizontalAdvance("000.0")
        )
        grid.addWidget(value_label, row, 2)

    # ------------------------------------------------------------ sliders
    def set_max_minutes(self, minutes: float) -> None:
        """Range of every slider: 0 to ``minutes`` (the scan's end)."""
        top = max(1, round(float(minutes) * TICKS_PER_MIN))
        for slider in self.sliders():
            slider.blockSignals(True)
            slider.setMaximum(top)
            slider.blockSignals(False)
        self.sync_from_spins()

    def sliders(self) -> list[QSlider]:
        """The t* slider, then the window sliders."""
        return [self.t_star_slider] + [
            s for pair in self.window_sliders.values() for s in pair
        ]

    def sync_from_spins(self) -> None:
        """Put every slider at its spin box's value."""
        self._follow(self.t_star_slider, self._t_star_spin.value())
        for condition, spins in self._window_spins.items():
            for slider, spin in zip(self.window_sliders[condition], spins, strict=True):
                self._follow(slider, spin.value())

    def set_windows_enabled(self, enabled: bool) -> None:
        """Window sliders apply to preset and custom windows only."""
        for slider in self.sliders()[1:]:
            slider.setEnabled(enabled)

    def _follow(self, slider: QSlider, minutes: float) -> None:
        slider.blockSignals(True)
        slider.setValue(round(float(minutes) * TICKS_PER_MIN))
        slider.blockSignals(False)
        self._show_values()

    def _follow_t_star_spin(self, minutes: float) -> None:
        self._follow(self.t_star_slider, minutes)

    def _on_t_star_slider(self, ticks: int) -> None:
        if self._t_star_auto.isChecked():
            self._t_star_auto.setChecked(False)
        self._t_star_spin.setValue(ticks / TICKS_PER_MIN)  # the form emits changed
        self._show_values()

    def _on_window_slider(self, spin, ticks: int) -> None:
        if not spin.isEnabled():  # preset windows: make them custom first
            self._use_custom_windows()
        spin.setValue(ticks / TICKS_PER_MIN)
        self._show_values()

    def _show_values(self) -> None:
        self.t_star_value.setText(f"{self._t_star_spin.value():g}")
        for condition, spins in self._window_spins.items():
            for label, spin in zip(self._window_values[condition], spins, strict=True):
                label.setText(f"{spin.value():g}")

    # ------------------------------------------------------------ triggers
    def schedule(self, *args) -> None:
        """(Re)start the debounce timer."""
        self.timer.start()

    def watch_labels(self, layer: Labels | None) -> bool:
        """Re-fit after paint strokes (and data replacement) of ``layer``.

        Returns True when ``layer`` is another layer than the one watched.
        """
        if layer is self._labels:
            return False
        if self._labels is not None:
            for emitter in (self._labels.events.paint, self._labels.events.data):
                with contextlib.suppress(TypeError, ValueError, RuntimeError):
                    emitter.disconnect(self.schedule)
        if layer is not None:
            layer.events.paint.connect(self.schedule)
            layer.events.data.connect(self.schedule)
        self._labels = layer
        return True
