"""Plots of the "Kinetic fit" dock: TAC + model, residuals, Logan plot.

Each subclasses :class:`~napari_mor._napari._plot_base.BasePlotDock` and only
implements ``draw()``; everything drawn comes from the core's
:class:`~napari_mor.kinetics.RoiFit` (``x``, ``y``, ``fitted``, ``residuals``,
``frame_mask``) and :class:`~napari_mor.workflows.fit.RoiTacs`.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Signal

from napari_mor._napari._plot_base import BasePlotDock
from napari_mor.kinetics import RoiFit
from napari_mor.workflows.fit import RoiTacs, logan_x_at_t_star

#: Colour per condition (baseline blue, challenge red, others after).
CONDITION_COLORS = ("#4c9be8", "#e8554c", "#5fd35f", "#e8c14c", "#b07be8")


def condition_color(index: int) -> str:
    """Colour of the ``index``-th condition."""
    return CONDITION_COLORS[index % len(CONDITION_COLORS)]


class _RoiFitPlot(BasePlotDock):
    """Common state: the selected ROI's fits per condition and its TACs."""

    title = ""

    def __init__(self, viewer=None, parent=None) -> None:
        self.fits: dict[str, RoiFit] = {}
        self.tacs: dict[str, RoiTacs] = {}
        self.roi_index: int | None = None
        super().__init__(viewer, parent)

    def set_fits(
        self,
        fits: dict[str, RoiFit],
        tacs: dict[str, RoiTacs] | None = None,
        roi_index: int | None = None,
    ) -> None:
        """Show one ROI's fits (condition -> RoiFit); empty dict clears."""
        self.fits = dict(fits)
        self.tacs = dict(tacs or {})
        self.roi_index = roi_index
        self.refresh()

    def _empty(self, message: str) -> bool:
        if not self.fits:
            self.axes.set_title(message, fontsize="small")
            return True
        return False

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Label -> (x, y) of each drawn line (for tests)."""
        return {
            line.get_label(): (
                np.asarray(line.get_xdata()),
                np.asarray(line.get_ydata()),
            )
            for line in self.axes.get_lines()
            if not line.get_label().startswith("_")
        }


class FitCurvePlotDock(_RoiFitPlot):
    """Tissue TAC (points), reference TAC (dashed) and model curve per condition."""

    def draw(self) -> None:
        ax = self.axes
        ax.set_xlabel("time (min)")
        ax.set_ylabel("activity (kBq/mL)")
        if self._empty("TAC and model: fit ROIs, then pick a row"):
            return
        name = next(iter(self.fits.values())).name
        for k, (condition, fit) in enumerate(self.fits.items()):
            color = condition_color(k)
            tacs = self.tacs.get(condition)
            separate = self._separate_scans()
            if tacs is not None and self.roi_index is not None and (separate or k == 0):
                t = tacs.timing.frame_mid_min
                point_color = color if separate else self.colors["foreground"]
                suffix = f" ({condition} scan)" if separate else ""
                ax.plot(
                    t,
                    tacs.tacs_kbq_ml[:, self.roi_index],
                    "o",
                    color=point_color,
                    markersize=3,
                    alpha=0.6,
                    label=f"{name}{suffix}",
                )
                ax.plot(
                    t,
                    tacs.ref_kbq_ml,
                    "--",
                    color=color if separate else "#9a9a9a",
                    linewidth=1.2,
                    label=f"reference{suffix}",
                )
            if fit.model != "logan":
                mask = fit.frame_mask
                ax.plot(
                    fit.x[mask],
                    fit.fitted[mask],
                    "-",
                    color=color,
                    linewidth=2.0,
                    label=f"{fit.model} fit, {condition}",
                )
            _shade_window(ax, fit, color)
        title = f"{name}: {fit.model.upper()}"
        if fit.model == "logan":
            title += " (model in the Logan plot)"
        ax.set_title(title, fontsize="small")
        ax.set_xlim(left=0)
        ax.legend(fontsize="x-small", loc="best")

    def _separate_scans(self) -> bool:
        values = list(self.tacs.values())
        return len(values) > 1 and values[0] is not values[1]


def _shade_window(ax, fit: RoiFit, color: str) -> None:
    if fit.window_min is not None:
        ax.axvspan(*fit.window_min, color=color, alpha=0.08, linewidth=0)


class ResidualPlotDock(_RoiFitPlot):
    """Residuals ``y - fitted`` on the fitted frames, per condition."""

    def draw(self) -> None:
        ax = self.axes
        ax.set_xlabel("time (min)")
        if self._empty("Residuals: fit ROIs, then pick a row"):
            ax.set_ylabel("residual")
            return
        model = next(iter(self.fits.values())).model
        ax.set_ylabel("residual (Logan y)" if model == "logan" else "residual (kBq/mL)")
        ax.axhline(0.0, color="#9a9a9a", linewidth=0.8)
        for k, (condition, fit) in enumerate(self.fits.items()):
            mid = self._mid(condition, fit)
            mask = np.isfinite(fit.residuals)
            ax.plot(
                mid[mask],
                fit.residuals[mask],
                "o-",
                color=condition_color(k),
                markersize=3,
                linewidth=0.8,
                label=f"{condition} (R² {fit.r2:.3f})",
            )
        ax.set_title(f"{fit.name}: residuals", fontsize="small")
        ax.legend(fontsize="x-small", loc="best")

    def _mid(self, condition: str, fit: RoiFit) -> np.ndarray:
        tacs = self.tacs.get(condition)
        if tacs is not None:
            return tacs.timing.frame_mid_min
        return np.asarray(fit.x)  # non-Logan models regress against mid-time


def t_star_at_logan_x(fit: RoiFit, timing, x_value: float) -> float:
    """Minutes from injection whose Logan abscissa is ``x_value`` (NaN if none).

    The inverse of :func:`~napari_mor.workflows.fit.logan_x_at_t_star` on the
    plotted frames (linear between frame mid-times): where a dragged t* line
    was dropped.
    """
    x = np.asarray(fit.x, dtype=np.float64)
    mid = np.asarray(timing.frame_mid_min, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.sum() < 2 or not np.isfinite(x_value):
        return float("nan")
    order = np.argsort(x[ok])
    return float(np.interp(x_value, x[ok][order], mid[ok][order]))


class LoganPlotDock(_RoiFitPlot):
    """Logan reference plot with the regression line and the t* line per condition.

    Drag a t* line (left button, no toolbar mode) and drop it: ``t_star_picked``
    gives the minutes where it was dropped (the dock sets t* from it).

    Signals
    -------
    t_star_picked(float)
        t* in minutes from injection at the drop position.
    """

    t_star_picked = Signal(float)
    #: How close (pixels) a press must be to a t* line to grab it.
    GRAB_PX = 6

    def __init__(self, viewer=None, parent=None) -> None:
        super().__init__(viewer, parent)
        self._dragging = None
        self.canvas.mpl_connect("button_press_event", self._on_press)
        self.canvas.mpl_connect("motion_notify_event", self._on_motion)
        self.canvas.mpl_connect("button_release_event", self._on_release)

    def t_star_lines(self) -> list:
        """The drawn t* lines (Line2D), one per condition."""
        return [
            line
            for line in self.axes.get_lines()
            if line.get_label().startswith("t* = ")
        ]

    def _on_press(self, event) -> None:
        if event.inaxes is not self.axes or event.button != 1 or self.toolbar.mode:
            return
        for line in self.t_star_lines():
            x_line = line.get_xdata()[0]
            x_px = self.axes.transData.transform((x_line, 0.0))[0]
            if abs(x_px - event.x) <= self.GRAB_PX:
                self._dragging = line
                return

    def _on_motion(self, event) -> None:
        if self._dragging is None or event.inaxes is not self.axes:
            return
        self._dragging.set_xdata([event.xdata, event.xdata])
        self.canvas.draw_idle()

    def _on_release(self, event) -> None:
        line, self._dragging = self._dragging, None
        if line is None or event.xdata is None or not self.fits:
            return
        condition = line.get_label().rsplit("(", 1)[-1].rstrip(")")
        fit = self.fits.get(condition, next(iter(self.fits.values())))
        tacs = self.tacs.get(condition)
        if tacs is None:
            return
        minutes = t_star_at_logan_x(fit, tacs.timing, float(event.xdata))
        if np.isfinite(minutes):
            self.t_star_picked.emit(minutes)

    def draw(self) -> None:
        ax = self.axes
        # plain unicode labels: mathtext parsing costs ~0.3 s per redraw
        ax.set_xlabel("(∫Cref [+ Cref/k2']) / Ct  (min)")
        ax.set_ylabel("∫Ct / Ct  (min)")
        if self._empty("Logan plot: fit ROIs, then pick a row"):
            return
        first = next(iter(self.fits.values()))
        if first.model != "logan":
            ax.set_title(
                f"Logan plot: the model is {first.model.upper()}; choose Logan-ref",
                fontsize="small",
            )
            return
        for k, (condition, fit) in enumerate(self.fits.items()):
            color = condition_color(k)
            mask = fit.frame_mask
            ax.plot(
                fit.x,
                fit.y,
                "o",
                color=color,
                markersize=3,
                alpha=0.5,
                label=f"{condition} frames",
            )
            ax.plot(
                fit.x[mask],
                fit.fitted[mask],
                "-",
                color=color,
                linewidth=2.0,
                label=f"{condition}: DVR {fit.params.get('dvr', np.nan):.3f}",
            )
            tacs = self.tacs.get(condition)
            if tacs is not None:
                x_star = logan_x_at_t_star(fit, tacs.timing)
                if np.isfinite(x_star):
                    ax.axvline(
                        x_star,
                        color=color,
                        linestyle=":",
                        linewidth=1.2,
                        label=f"t* = {fit.t_star_min:g} min ({condition})",
                    )
        ax.set_title(f"{first.name}: Logan reference plot", fontsize="small")
        ax.legend(fontsize="x-small", loc="best")
