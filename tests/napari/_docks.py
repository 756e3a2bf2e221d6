"""Open napari-mor docks the way a user does: through the plugin manifest."""

from __future__ import annotations


def open_dock(viewer, display_name: str, cls):
    """Add a napari-mor dock from its npe2 manifest entry and check its class."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", display_name)
    assert isinstance(widget, cls)
    return widget
