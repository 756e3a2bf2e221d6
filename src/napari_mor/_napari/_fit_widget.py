"""The "Kinetic fit" dock (npe2 entry point); code in :mod:`napari_mor._napari.fit`."""

from __future__ import annotations

from napari_mor._napari.fit.dock import MASK_ROIS, MASK_UPTAKE, MODEL_CHOICES, FitWidget
from napari_mor._napari.fit.inputs_form import WINDOW_MODES

__all__ = ["MASK_ROIS", "MASK_UPTAKE", "MODEL_CHOICES", "WINDOW_MODES", "FitWidget"]
