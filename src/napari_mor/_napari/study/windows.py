"""Study dock, "Condition windows" section: the windows the frame table marks.

One magicgui row per condition of :data:`napari_mor.defaults.DEFAULT_WINDOWS_MIN`
("baseline", "challenge"), each a
:class:`~napari_mor._napari.study.inputs.TimeRangeInputs` (minutes from
injection). ``changed`` fires when a window is edited.
"""

from __future__ import annotations

from magicgui.widgets import Container, Label
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QFormLayout, QGroupBox

from napari_mor._napari.study.inputs import TimeRangeInputs, set_widget_values
from napari_mor.defaults import DEFAULT_WINDOWS_MIN


class WindowsSection(QGroupBox):
    """Start and end of each condition window, minutes."""

    #: A window was edited (or set with :meth:`set_windows_min`).
    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__("Condition windows (min)", parent)
        #: Condition -> its magicgui widgets (``start_min``, ``end_min``).
        self.inputs: dict[str, dict] = {}
        self._rows: list[Container] = []  # keep the magicgui rows alive
        form = QFormLayout(self)
        for name, (start, end) in DEFAULT_WINDOWS_MIN.items():
            widgets = TimeRangeInputs.make_widgets(start_min=start, end_min=end)
            for widget in widgets.values():
                widget.changed.connect(self._on_edited)
            row = Container(
                widgets=[widgets["start_min"], Label(value="to"), widgets["end_min"]],
                layout="horizontal",
                labels=False,
            )
            row.margins = (0, 0, 0, 0)
            self.inputs[name] = widgets
            self._rows.append(row)
            form.addRow(name, row.native)

    def windows_min(self) -> dict[str, tuple[float, float]]:
        """The condition windows shown, minutes."""
        return {
            name: TimeRangeInputs.from_widgets(widgets).as_tuple()
            for name, widgets in self.inputs.items()
        }

    def set_windows_min(self, windows_min: dict) -> None:
        """Show windows (names not known to the dock are ignored); then ``changed``."""
        for name, (start, end) in windows_min.items():
            if name in self.inputs:
                set_widget_values(
                    self.inputs[name],
                    quiet=True,
                    start_min=float(start),
                    end_min=float(end),
                )
        self.changed.emit()

    def _on_edited(self, value=None) -> None:
        self.changed.emit()
