"""The "Study" dock, one section widget per module (composed in :mod:`.dock`)."""

from napari_mor._napari.study.dock import StudyWidget
from napari_mor._napari.study.plots import VoxelTacPlotDock

__all__ = ["StudyWidget", "VoxelTacPlotDock"]
