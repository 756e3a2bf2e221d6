"""The "Study" dock's entry point (``napari.yaml``: ``_study_widget:StudyWidget``).

The dock is built from section widgets in :mod:`napari_mor._napari.study`.
"""

from napari_mor._napari.study import StudyWidget, VoxelTacPlotDock

__all__ = ["StudyWidget", "VoxelTacPlotDock"]
