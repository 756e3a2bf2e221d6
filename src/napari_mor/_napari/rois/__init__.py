"""The "ROIs" dock, one section widget per module (composed in :mod:`.dock`)."""

from napari_mor._napari.rois.dock import RoiWidget
from napari_mor._napari.rois.tacs import TacPlotDock

__all__ = ["RoiWidget", "TacPlotDock"]
