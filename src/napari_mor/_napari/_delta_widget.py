"""The "Delta-BP" dock (npe2 entry point); code in :mod:`napari_mor._napari.delta`."""

from __future__ import annotations

from napari_mor._napari.delta.display import (
    DELTA_NAME,
    PCT_NAME,
    SIGN_CONVENTION,
    diverging_colormap,
)
from napari_mor._napari.delta.dock import DeltaWidget

__all__ = [
    "DELTA_NAME",
    "PCT_NAME",
    "SIGN_CONVENTION",
    "DeltaWidget",
    "diverging_colormap",
]
