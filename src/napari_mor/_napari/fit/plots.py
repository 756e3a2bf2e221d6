"""The Kinetic fit dock's plot tabs: TAC + model, residuals, Logan plot.

The plots themselves are :mod:`napari_mor._napari._fit_plots` (one base class,
``draw()`` only); this section stacks them in tabs and shows one ROI's fits.
"""

from __future__ import annotations

from qtpy.QtWidgets import QTabWidget

from napari_mor._napari._fit_plots import (
    FitCurvePlotDock,
    LoganPlotDock,
    ResidualPlotDock,
)
from napari_mor.kinetics import RoiFit
from napari_mor.workflows.fit import RoiTacs


class FitPlotTabsWidget(QTabWidget):
    """Dock section: the three fit plots in tabs."""

    def __init__(self, viewer=None, parent=None) -> None:
        super().__init__(parent)
        self.curve_plot = FitCurvePlotDock(viewer)
        self.residual_plot = ResidualPlotDock(viewer)
        self.logan_plot = LoganPlotDock(viewer)
        self.addTab(self.curve_plot, "TAC + model")
        self.addTab(self.residual_plot, "Residuals")
        self.addTab(self.logan_plot, "Logan plot")
        self.setMinimumHeight(320)

    def show_roi(
        self,
        fits: dict[str, list[RoiFit]],
        tacs: dict[str, RoiTacs],
        roi_index: int,
    ) -> None:
        """Plot the ``roi_index``-th ROI of every condition's fits.

        A Logan fit brings the Logan plot to the front (its model line is there).
        """
        selected = {
            condition: per_roi[roi_index] for condition, per_roi in fits.items()
        }
        for plot in (self.curve_plot, self.residual_plot, self.logan_plot):
            plot.set_fits(selected, tacs, roi_index)
        if next(iter(selected.values())).model == "logan":
            self.setCurrentWidget(self.logan_plot)
