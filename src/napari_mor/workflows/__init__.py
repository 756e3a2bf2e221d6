"""Use cases, Qt-free: requests in, results with provenance out.

The CLI (:mod:`napari_mor.cli`), the docks (:mod:`napari_mor._napari`), the
cohort batch (:mod:`napari_mor.group.batch`) and the demo all go through these
modules, so the same request gives the same maps and the same sidecars:

- :mod:`napari_mor.workflows.fit` -- :class:`~napari_mor.workflows.fit.FitRequest`,
  the reference rule, the one k2' policy, ROI fits;
- :mod:`napari_mor.workflows.fit_maps` -- map plan, the map generator (progress,
  cancel), provenance and map files;
- :mod:`napari_mor.workflows.delta` -- delta-BP from two BP maps;
- :mod:`napari_mor.workflows.session` -- the study state shared by the docks;
- :mod:`napari_mor.workflows.demo` -- the sample study end to end.

Submodules are imported on demand (nothing heavy here).
"""
