"""The "Delta-BP" dock as small sections (one module each).

- :mod:`.inputs` -- BP_ND layer pickers, ROI set and the :class:`DeltaInputs`
  form (min BP_base), the Compute button;
- :mod:`.display` -- sign legend and the :class:`DisplayInputs` form
  (threshold, colour range, opacity, colormap, which map);
- :mod:`.layers` -- adding and styling the delta layers;
- :mod:`.table` -- mean per ROI and the save buttons;
- :mod:`.dock` -- :class:`~.dock.DeltaWidget`, composing them (the equivalent
  command box is the fit dock's :class:`~napari_mor._napari.fit.cli_box.CommandWidget`).
"""
