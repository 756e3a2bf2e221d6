"""The Group study dock's scatter: per-subject delta-BP in a cluster or region."""

from __future__ import annotations

import numpy as np

from napari_mor._napari._plot_base import BasePlotDock


class GroupScatterPlotDock(BasePlotDock):
    """Delta-BP (cluster mean per subject) against the covariate or subject."""

    def __init__(self, viewer=None, parent=None) -> None:
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.xlabel = ""
        self.title = ""
        super().__init__(viewer, parent)

    def set_data(self, x, y, xlabel: str, title: str) -> None:
        """Plot ``y`` (delta-BP per subject) against ``x``."""
        self.x, self.y = np.asarray(x, float), np.asarray(y, float)
        self.xlabel, self.title = xlabel, title
        self.refresh()

    def draw(self) -> None:
        ax = self.axes
        if self.x is None:
            ax.set_title("click a cluster", fontsize=9)
            return
        ax.scatter(self.x, self.y, color="#f58231", s=18)
        if self.x.size > 2 and np.ptp(self.x) > 0:
            slope, intercept = np.polyfit(self.x, self.y, 1)
            xs = np.array([self.x.min(), self.x.max()])
            ax.plot(xs, intercept + slope * xs, color=self.colors["foreground"], lw=1)
        ax.axhline(0, color=self.colors["highlight"], lw=0.8)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel("delta-BP_ND (base - chal)")
        ax.set_title(self.title, fontsize=9)
