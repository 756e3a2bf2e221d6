"""The "ROIs" dock's entry point (``napari.yaml``: ``_roi_widget:RoiWidget``).

The dock is built from section widgets in :mod:`napari_mor._napari.rois`.
"""

from napari_mor._napari.rois import RoiWidget, TacPlotDock

__all__ = ["RoiWidget", "TacPlotDock"]
