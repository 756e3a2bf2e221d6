"""Every contribution of the npe2 manifest loads in a real viewer."""

from __future__ import annotations

import npe2
from qtpy.QtWidgets import QWidget

EXPECTED_DOCKS = [
    "Study",
    "ROIs",
    "Kinetic fit",
    "Delta-BP",
    "Registration",
    "Group study",
]


def test_manifest_lists_readers_writers_samples_and_docks():
    plugins = npe2.PluginManager.instance()
    plugins.discover()
    manifest = plugins.get_manifest("napari-mor")
    contributions = manifest.contributions
    assert [w.display_name for w in contributions.widgets] == EXPECTED_DOCKS
    assert {s.key for s in contributions.sample_data} == {
        "carfentanil_study",
        "carfentanil_two_scans",
    }
    assert contributions.readers[0].filename_patterns == ["*.nii", "*.nii.gz", "*.v"]
    assert {tuple(w.layer_types) for w in contributions.writers} == {
        ("image",),
        ("labels",),
    }


def test_every_dock_opens_from_the_plugins_menu_entry(make_napari_viewer):
    viewer = make_napari_viewer()
    for name in EXPECTED_DOCKS:
        dock, widget = viewer.window.add_plugin_dock_widget("napari-mor", name)
        assert isinstance(widget, QWidget), name
        assert dock.name.endswith(name) or name in dock.name
