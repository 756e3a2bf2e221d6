"""The "Kinetic fit" dock as small sections (one module each).

- :mod:`.form` -- the input-form dataclass base (magicgui containers);
- :mod:`.inputs_form` -- model and condition forms (:class:`ModelInputs`,
  :class:`WindowInputs`) and their sections;
- :mod:`.layers_box` -- PET / ROI set / reference / mask layer pickers;
- :mod:`.request` -- sections -> ``FitRequest`` and ``FitData``;
- :mod:`.run_box`, :mod:`.results`, :mod:`.plots`, :mod:`.cli_box` -- run
  controls, ROI tables, fit plots, equivalent command;
- :mod:`.maps` -- the worker's work and the BP_ND map layers;
- :mod:`.dock` -- :class:`~.dock.FitWidget`, composing them.
"""
