"""Scaffolding shared by the napari-mor docks: scrolling layout, layer events."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


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
