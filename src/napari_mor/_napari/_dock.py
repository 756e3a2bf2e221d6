"""Scaffolding shared by the napari-mor docks: layout, tables, buttons, events."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from napari_mor._errors import MorError


def scrolling_sections(dock: QWidget, sections: Iterable[QWidget]) -> QVBoxLayout:
    """Stack ``sections`` in a scroll area filling ``dock``; return their layout.

    Docks are tall; the scroll area keeps them usable on small screens.
    """
    content = QWidget()
    layout = QVBoxLayout(content)
    for section in sections:
        layout.addWidget(section)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(content)
    outer = QVBoxLayout(dock)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return layout


def on_layer_list_change(viewer, callback: Callable) -> None:
    """Call ``callback`` whenever layers are added, removed or replaced."""
    for event in (
        viewer.layers.events.inserted,
        viewer.layers.events.removed,
        viewer.layers.events.changed,
    ):
        event.connect(callback)


def read_only_table(headers, min_height: int = 120) -> QTableWidget:
    """A table users can read and select in, not edit, with resizable columns."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.setMinimumHeight(min_height)
    return table


def button_row(*buttons: tuple[str, Callable]) -> tuple[QHBoxLayout, list[QPushButton]]:
    """A row of push buttons, each ``(text, slot)``; returns the layout and buttons.

    Slots are called without arguments: Qt's ``clicked(checked)`` would otherwise
    be passed on to wrapped slots that accept ``*args``.
    """
    row = QHBoxLayout()
    made = []
    for text, slot in buttons:
        button = QPushButton(text)
        button.clicked.connect(lambda *_, slot=slot: slot())
        row.addWidget(button)
        made.append(button)
    return row, made


def notify_errors(func):
    """Run a handler; show a MorError as a napari notification instead of raising."""

    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        try:
            return func(self, *args, **kwargs)
        except MorError as err:
            show_error(str(err))
            return None

    return wrapper
