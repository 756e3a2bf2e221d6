"""The Study dock's plot: the clicked voxel's TAC beside the reference TAC."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QWidget

from napari_mor._napari._plot_base import BasePlotDock


class VoxelTacPlotDock(BasePlotDock):
    """TAC of the clicked voxel and, when known, the reference-region TAC."""

    def __init__(self, viewer=None, parent: QWidget | None = None) -> None:
        self.time_min: np.ndarray | None = None
        self.voxel_tac_kbq_ml: np.ndarray | None = None
        self.reference_tac_kbq_ml: np.ndarray | None = None
        self.voxel_label = ""
        self.reference_label = ""
        super().__init__(viewer, parent)

    def set_curves(
        self,
        time_min: np.ndarray,
        voxel_tac_kbq_ml: np.ndarray,
        voxel_label: str,
        reference_tac_kbq_ml: np.ndarray | None = None,
        reference_label: str = "",
    ) -> None:
        """Store the curves (from the core) and redraw."""
        self.time_min = np.asarray(time_min)
        self.voxel_tac_kbq_ml = np.asarray(voxel_tac_kbq_ml)
        self.voxel_label = voxel_label
        self.reference_tac_kbq_ml = reference_tac_kbq_ml
        self.reference_label = reference_label
        self.refresh()

    def draw(self) -> None:
        """Plot the voxel TAC (and reference TAC) against mid-frame time."""
        ax = self.axes
        ax.set_xlabel("time (min)")
        ax.set_ylabel("activity (kBq/mL)")
        if self.voxel_tac_kbq_ml is None:
            ax.set_title("click on the PET to see a voxel TAC", fontsize=9)
            return
        ax.plot(
            self.time_min,
            self.voxel_tac_kbq_ml,
            "o-",
            ms=3,
            color="#f5a623",
            label=self.voxel_label,
            gid="voxel",
        )
        if self.reference_tac_kbq_ml is not None:
            ax.plot(
                self.time_min,
                self.reference_tac_kbq_ml,
                "s--",
                ms=3,
                color="#4a90e2",
                label=self.reference_label,
                gid="reference",
            )
        ax.legend(fontsize=8)

    def line(self, gid: str):
        """The plotted Line2D with a given gid ("voxel" or "reference"), or None."""
        for line in self.axes.get_lines():
            if line.get_gid() == gid:
                return line
        return None
