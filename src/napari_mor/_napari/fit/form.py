"""Input forms as dataclasses: each field carries its default and its widget options.

The pattern of brainglobe/cellfinder's ``InputContainer``: one small dataclass per
form. Every field is declared with :func:`form_field` (default, label, choices,
range, step, decimals, unit, tooltip, the row it shares), so the class

- builds the magicgui :class:`~magicgui.widgets.Container` of its widgets
  (:meth:`InputForm.create_container`),
- reads a container back into an instance (:meth:`InputForm.from_container`), and
- says which request fields its values fill (:meth:`InputForm.request_fields`,
  e.g. ``FitRequest(**model.request_fields(), **windows.request_fields(), ...)``).

Defaults are the package's (:mod:`napari_mor.defaults`), never literals here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    Slider,
    SpinBox,
)
from magicgui.widgets.bases import ValueWidget
from qtpy.QtWidgets import QComboBox

__all__ = ["FieldSpec", "InputForm", "form_field", "narrow_combo"]

#: Characters a combo box needs at least; longer items are elided, not widened.
_COMBO_MIN_CHARS = 10


@dataclass(frozen=True)
class FieldSpec:
    """How one dataclass field is shown.

    Attributes
    ----------
    label : str
        Text beside (or above) the widget; a check box shows it as its text.
    choices : tuple of (str, value), optional
        Combo-box items: shown text and the value the field takes.
    min, max, step : float, optional
        Range and step of a number.
    decimals : int, optional
        Decimals shown by a float spin box.
    unit : str
        Suffix of a number (``" min"``, ``" /min"``).
    tooltip : str
    row : str, optional
        Consecutive fields with the same ``row`` share one line labelled ``row``.
    slider : bool
        Show an int as a slider instead of a spin box.
    """

    label: str
    choices: tuple[tuple[str, Any], ...] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    decimals: int | None = None
    unit: str = ""
    tooltip: str = ""
    row: str | None = None
    slider: bool = False


def form_field(default, label: str, **options):
    """A dataclass field with its widget options (see :class:`FieldSpec`).

    ``choices`` may be a sequence of values or of ``(text, value)`` pairs.
    """
    choices = options.pop("choices", None)
    if choices is not None:
        choices = tuple(c if isinstance(c, tuple) else (str(c), c) for c in choices)
    spec = FieldSpec(label=label, choices=choices, **options)
    return field(default=default, metadata={"form": spec})


def narrow_combo(combo: QComboBox) -> QComboBox:
    """Let a combo box shrink with the dock (long items are elided)."""
    combo.setSizeAdjustPolicy(
        QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
    )
    combo.setMinimumContentsLength(_COMBO_MIN_CHARS)
    return combo


@dataclass(frozen=True)
class InputForm:
    """Base of the dock forms: a frozen dataclass of :func:`form_field` fields.

    Subclasses list their fields and implement :meth:`request_fields`.
    """

    #: Labels left of the widgets (True) or on a line above them (False).
    labels_left: ClassVar[bool] = True

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Field name -> default value."""
        return {f.name: f.default for f in fields(cls)}

    @classmethod
    def specs(cls) -> dict[str, FieldSpec]:
        """Field name -> :class:`FieldSpec`."""
        return {f.name: f.metadata["form"] for f in fields(cls)}

    @classmethod
    def create_container(cls) -> Container:
        """The magicgui container of this form's widgets, at their defaults.

        Widgets are named after the fields; :meth:`widgets_of` finds them also
        inside the row containers.
        """
        items: list = []
        rows: dict[str, Container] = {}
        for name, spec in cls.specs().items():
            widget = _make_widget(name, spec, cls.defaults()[name])
            if spec.row is None:
                if not (cls.labels_left or isinstance(widget, CheckBox)):
                    items.append(Label(value=spec.label))  # a line above
                items.append(widget)
                continue
            if spec.row not in rows:
                row = Container(
                    layout="horizontal",
                    labels=False,
                    label=spec.row,
                    name=f"_{name}_row",
                )
                row.margins = (0, 0, 0, 0)
                rows[spec.row] = row
                if not cls.labels_left:
                    items.append(Label(value=spec.row))
                items.append(row)
            rows[spec.row].append(widget)
        container = Container(labels=cls.labels_left)
        container.extend(items)  # after construction: aligns the label widths
        container.margins = (0, 0, 0, 0)
        return container

    @classmethod
    def widgets_of(cls, container: Container) -> dict[str, ValueWidget]:
        """Field name -> its widget in a container made by :meth:`create_container`."""
        found: dict[str, ValueWidget] = {}
        names = set(cls.specs())
        stack = list(container)
        while stack:
            widget = stack.pop()
            if isinstance(widget, Container):
                stack.extend(widget)
            elif widget.name in names:
                found[widget.name] = widget
        return found

    @classmethod
    def from_container(cls, container: Container):
        """An instance holding the container's current values."""
        widgets = cls.widgets_of(container)
        return cls(**{name: widgets[name].value for name in cls.specs()})

    def request_fields(self) -> dict[str, Any]:
        """The request fields (``FitRequest``, ``DeltaRequest``) this form fills.

        Display forms fill none.
        """
        return {}


def _make_widget(name: str, spec: FieldSpec, default) -> ValueWidget:
    """One magicgui widget for a field (type from the default and the spec)."""
    common = {"name": name, "tooltip": spec.tooltip or None}
    if isinstance(default, bool):  # a check box shows its label as its text
        return CheckBox(value=default, text=spec.label, **common)
    common["label"] = spec.label
    if spec.choices is not None:
        widget = ComboBox(choices=list(spec.choices), value=default, **common)
        narrow_combo(widget.native)
        return widget
    ranged = {
        key: value
        for key, value in (("min", spec.min), ("max", spec.max), ("step", spec.step))
        if value is not None
    }
    if isinstance(default, int):
        kind = Slider if spec.slider else SpinBox
        return kind(value=default, **ranged, **common)
    widget = FloatSpinBox(**ranged, **common)
    if spec.decimals is not None:  # before the range and value, which it rounds
        widget.native.setDecimals(spec.decimals)
        for key, value in ranged.items():
            setattr(widget, key, value)
    widget.native.setSuffix(spec.unit)
    widget.value = float(default)
    return widget
