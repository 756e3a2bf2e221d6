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
    _RoiFitPlot,
)
from napari_mor.defaults import RELEASE_MODEL
from napari_mor.kinetics import RoiFit
from napari_mor.workflows.fit import RoiTacs


class ReleasePlotDock(_RoiFitPlot):
    """lp-ntPET: the tissue TAC, the release fit, the no-release fit and the onset.

    The fitted release curve is drawn over the TAC; the gap between the two fits
    after the onset is the change the model attributes to the challenge.
    """

    def draw(self) -> None:
        ax = self.axes
        ax.set_xlabel("time (min)")
        ax.set_ylabel("activity (kBq/mL)")
        if self._empty("lp-ntPET fit: fit ROIs, then pick a row"):
            return
        fit = next(iter(self.fits.values()))
        t = fit.frame_mid_min
        ax.plot(t, fit.y, "o", ms=3, color="#4c9be8", label=f"{fit.name} TAC")
        ax.plot(t, fit.fitted, "-", color="#e8554c", label="release fit")
        ax.plot(t, fit.fitted_null, "--", color="#999999", label="no-release fit")
        ax.axvline(fit.onset_min, color="#e8c14c", lw=1, label="_onset")
        ax.set_title(
            f"{fit.name}: {fit.pct_delta_bp:+.1f} % ΔBP from {fit.onset_min:g} min "
            f"(p = {fit.p_release:.3g})",
            fontsize="small",
        )
        ax.legend(fontsize="x-small")


class FitPlotTabsWidget(QTabWidget):
    """Dock section: the fit plots in tabs (the release plot for lp-ntPET)."""

    def __init__(self, viewer=None, parent=None) -> None:
        super().__init__(parent)
        self.curve_plot = FitCurvePlotDock(viewer)
        self.residual_plot = ResidualPlotDock(viewer)
        self.logan_plot = LoganPlotDock(viewer)
        self.addTab(self.curve_plot, "TAC + model")
        self.addTab(self.residual_plot, "Residuals")
        self.addTab(self.logan_plot, "Logan plot")
        self.release_plot = ReleasePlotDock(viewer)
        self.addTab(self.release_plot, "Release (lp-ntPET)")
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
        release = next(iter(selected.values())).model == RELEASE_MODEL
        self.release_plot.set_fits(selected if release else {}, tacs, roi_index)
        for plot in (self.curve_plot, self.residual_plot, self.logan_plot):
            plot.set_fits({} if release else selected, tacs, roi_index)
        if release:
            self.setCurrentWidget(self.release_plot)
        elif next(iter(selected.values())).model == "logan":
            self.setCurrentWidget(self.logan_plot)
