"""The Registration dock's plot: the per-frame motion trace."""

from __future__ import annotations

import numpy as np

from napari_mor._napari._plot_base import BasePlotDock


class MotionTracePlotDock(BasePlotDock):
    """Per-frame translations (mm) and rotations (deg) against mid-frame time."""

    def __init__(self, viewer=None, parent=None) -> None:
        self.frame_mid_min = np.zeros(0)
        self.translation_mm = np.zeros((0, 3))
        self.rotation_deg = np.zeros((0, 3))
        super().__init__(viewer, parent)

    def set_trace(self, frame_mid_min, translation_mm, rotation_deg) -> None:
        """Plot a motion trace (NaN rows = frames left alone)."""
        self.frame_mid_min = np.asarray(frame_mid_min, dtype=float)
        self.translation_mm = np.asarray(translation_mm, dtype=float)
        self.rotation_deg = np.asarray(rotation_deg, dtype=float)
        self.refresh()

    def draw(self) -> None:
        ax = self.axes
        if self.frame_mid_min.size == 0:
            ax.set_title("Motion trace (run motion correction)")
            return
        for axis, name in enumerate("xyz"):
            ax.plot(
                self.frame_mid_min,
                self.translation_mm[:, axis],
                "o-",
                label=f"t{name} (mm)",
            )
        for axis, name in enumerate("xyz"):
            ax.plot(
                self.frame_mid_min,
                self.rotation_deg[:, axis],
                "s--",
                label=f"r{name} (deg)",
            )
        ax.axhline(0.0, color=self.colors["highlight"], lw=0.8)
        ax.set_xlabel("mid-frame time (min)")
        ax.set_ylabel("motion (mm / deg)")
        ax.set_title("Motion trace (relative to the reference)")
        ax.legend(fontsize="x-small", ncols=2)
