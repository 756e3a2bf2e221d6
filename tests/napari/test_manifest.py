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


def test_docks_are_in_napari_layers_menus(make_napari_viewer):
    """npe2 menus: measurement docks under Layers > Measure, registration under
    Layers > Register, the Study dock under File > IO utilities (app-model)."""
    from napari._app_model import get_app_model

    make_napari_viewer()
    app = get_app_model()

    def ours(menu_id):
        items = app.menus.get_menu(menu_id)
        return [i.command.id for i in items if "napari-mor" in i.command.id]

    assert ours("napari/layers/measure") == [
        "napari-mor.roi_widget",
        "napari-mor.fit_widget",
        "napari-mor.delta_widget",
        "napari-mor.group_widget",
    ]
    assert ours("napari/layers/register") == ["napari-mor.registration_widget"]
    assert ours("napari/file/io_utilities") == ["napari-mor.study_widget"]
