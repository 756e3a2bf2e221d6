"""Open napari-mor docks the way a user does: through the plugin manifest."""

from __future__ import annotations

from napari.layers import Layer

from napari_mor._napari._layers import (
    labels_layer_data,
    pet_layer_data,
    volume_layer_data,
)


def open_dock(viewer, display_name: str, cls):
    """Add a napari-mor dock from its npe2 manifest entry and check its class."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-mor", display_name)
    assert isinstance(widget, cls)
    return widget


def add_two_scan_study(viewer, study) -> None:
    """Add T1w, "PET baseline", "PET challenge" and "regions" layers of a study."""
    for data in (
        volume_layer_data(study.mr, "T1w"),
        pet_layer_data(study.pet, "PET baseline"),
        pet_layer_data(study.pet_challenge, "PET challenge"),
        labels_layer_data(study.labels, "regions"),
    ):
        viewer.add_layer(Layer.create(*data))
