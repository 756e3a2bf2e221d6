"""Dock inputs as small dataclasses that own their defaults, ranges and units.

The cellfinder ``napari/input_container.py`` pattern: a section whose controls
are a plain form of numbers and choices is described by a frozen dataclass; each
field says its default, range, step and unit (:func:`number`, :func:`choice`,
:func:`text`). :meth:`InputContainer.make_widgets` builds the magicgui widgets
from the fields and :meth:`InputContainer.from_widgets` reads them back into the
dataclass the dock passes on. Nothing here knows a dock or does science.

The base is shared by the Study and ROIs docks (``rois.spheres`` imports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from magicgui.widgets import ComboBox, FloatSpinBox, LineEdit
from magicgui.widgets.bases import ValueWidget

__all__ = [
    "InputContainer",
    "MeanImageInputs",
    "TimeRangeInputs",
    "choice",
    "number",
    "set_widget_values",
    "text",
]


def number(
    default: float,
    *,
    min: float,
    max: float,
    step: float = 1.0,
    decimals: int = 1,
    unit: str = "",
    label: str = "",
    tooltip: str = "",
):
    """A float field shown as a spin box with a range, a step and a unit suffix."""
    spec = {"widget": "number", "min": min, "max": max, "step": step}
    spec.update(decimals=decimals, unit=unit, label=label, tooltip=tooltip)
    return field(default=default, metadata=spec)


def choice(default: str, choices, *, label: str = "", tooltip: str = ""):
    """A string field shown as a drop-down of ``choices``."""
    spec = {"widget": "choice", "choices": tuple(choices), "label": label}
    spec["tooltip"] = tooltip
    return field(default=default, metadata=spec)


def text(default: str = "", *, placeholder: str = "", label: str = "", tooltip=""):
    """A free-text field shown as a line edit with a placeholder."""
    spec = {"widget": "text", "placeholder": placeholder, "label": label}
    spec["tooltip"] = tooltip
    return field(default=default, metadata=spec)


@dataclass(frozen=True)
class InputContainer:
    """Base of the dock input dataclasses (fields made by :func:`number` & co)."""

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Default value of every field, by name."""
        return {f.name: f.default for f in fields(cls)}

    @classmethod
    def make_widgets(cls, **values) -> dict[str, ValueWidget]:
        """One magicgui widget per field, showing ``values`` or the defaults."""
        initial = {**cls.defaults(), **values}
        return {f.name: _widget(f, initial[f.name]) for f in fields(cls)}

    @classmethod
    def from_widgets(cls, widgets: dict[str, ValueWidget]):
        """The dataclass holding the widgets' current values."""
        return cls(**{f.name: widgets[f.name].value for f in fields(cls)})


def set_widget_values(widgets: dict[str, ValueWidget], quiet=False, **values) -> None:
    """Show ``values`` in ``widgets``; ``quiet`` blocks their ``changed`` signals."""
    for name, value in values.items():
        widget = widgets[name]
        if quiet:
            with widget.changed.blocked():
                widget.value = value
        else:
            widget.value = value


def _widget(spec_field, value) -> ValueWidget:
    spec = spec_field.metadata
    common = {"label": spec["label"] or spec_field.name, "tooltip": spec["tooltip"]}
    kind = spec["widget"]
    if kind == "number":
        widget = FloatSpinBox(min=spec["min"], max=spec["max"], step=spec["step"])
        widget.native.setDecimals(spec["decimals"])
        if spec["unit"]:
            widget.native.setSuffix(f" {spec['unit']}")
    elif kind == "choice":
        widget = ComboBox(choices=spec["choices"])
    elif kind == "text":
        widget = LineEdit()
        widget.native.setPlaceholderText(spec["placeholder"])
    else:  # pragma: no cover - a field made without number/choice/text
        raise TypeError(f"Field {spec_field.name!r} has no widget spec.")
    widget.label = common["label"]
    widget.tooltip = common["tooltip"] or None
    widget.value = value
    return widget


#: Minutes from injection as the Study dock shows them.
_MINUTES = {"min": 0.0, "max": 1000.0, "step": 5.0, "decimals": 1, "unit": "min"}


@dataclass(frozen=True)
class TimeRangeInputs(InputContainer):
    """A time range, minutes from injection (e.g. a condition window).

    Parameters
    ----------
    start_min, end_min : float
        Start and end, minutes from injection (0-1000, steps of 5, 0.1 shown).
    """

    start_min: float = number(0.0, **_MINUTES, label="from")
    end_min: float = number(90.0, **_MINUTES, label="to")

    def as_tuple(self) -> tuple[float, float]:
        """``(start_min, end_min)``."""
        return (self.start_min, self.end_min)


@dataclass(frozen=True)
class MeanImageInputs(TimeRangeInputs):
    """The mean image's time range; by default the late (challenge) frames."""

    start_min: float = number(40.0, **_MINUTES, label="from")
    end_min: float = number(90.0, **_MINUTES, label="to")
