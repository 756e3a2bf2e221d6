"""The one matplotlib base class every napari-mor dock plot subclasses.

Modelled on napari-matplotlib's ``BaseNapariMPLWidget``: the base owns the
``FigureCanvasQTAgg``, the navigation toolbar, a constrained-layout figure and
the napari theme colours (updated when the viewer theme changes). Subclasses
implement :meth:`BasePlotDock.draw` only, drawing on ``self.axes`` from data the
core computed; :meth:`BasePlotDock.refresh` clears, draws, styles and repaints.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import (
    FigureCanvasQTAgg,
    NavigationToolbar2QT,
)
from matplotlib.figure import Figure
from qtpy.QtWidgets import QVBoxLayout, QWidget

_FALLBACK_THEME = {
    "background": "#262930",
    "foreground": "#f0f1f2",
    "canvas": "#000000",
    "highlight": "#6a7177",
    "primary": "#5a626c",
}


def theme_colors(viewer=None) -> dict[str, str]:
    """Colours of the viewer's napari theme (dark theme without a viewer).

    Returns
    -------
    dict
        ``background`` (axes/figure face), ``foreground`` (text, spines, ticks),
        ``highlight`` and ``primary`` (grid lines), as hex strings.
    """
    if viewer is None:
        return dict(_FALLBACK_THEME)
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
    except (KeyError, ValueError, AttributeError):
        return dict(_FALLBACK_THEME)
    return {
        "background": theme.background.as_hex(),
        "foreground": theme.text.as_hex(),
        "canvas": theme.canvas.as_hex(),
        "highlight": theme.highlight.as_hex(),
        "primary": theme.primary.as_hex(),
    }


class BasePlotDock(QWidget):
    """A dock widget holding one matplotlib figure styled like napari.

    Parameters
    ----------
    viewer : napari.viewer.Viewer, optional
        Viewer whose theme the plot follows.
    parent : QWidget, optional
        Parent widget.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
        Figure with constrained layout.
    canvas : FigureCanvasQTAgg
        Qt canvas of ``figure``.
    toolbar : NavigationToolbar2QT
        Zoom/pan/save toolbar.
    axes : matplotlib.axes.Axes
        The plot axes.
    """

    def __init__(self, viewer=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.figure = Figure(figsize=(4, 3), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.toolbar = NavigationToolbar2QT(self.canvas, self)
        self.axes = self.figure.add_subplot()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        self.colors = theme_colors(viewer)
        if viewer is not None:
            viewer.events.theme.connect(self._on_theme_change)
        self.refresh()

    def _on_theme_change(self, event=None) -> None:
        self.colors = theme_colors(self.viewer)
        self.refresh()

    def clear(self) -> None:
        """Clear the axes (subclasses may extend)."""
        self.axes.clear()

    def draw(self) -> None:
        """Draw the plot on ``self.axes``; subclasses implement this."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Clear, draw, apply the theme and repaint the canvas."""
        self.clear()
        self.draw()
        self._apply_theme()
        self.canvas.draw_idle()

    def _apply_theme(self) -> None:
        fg, bg = self.colors["foreground"], self.colors["background"]
        self.figure.set_facecolor(bg)
        ax = self.axes
        ax.set_facecolor(bg)
        for spine in ax.spines.values():
            spine.set_color(fg)
        ax.tick_params(colors=fg, which="both")
        ax.xaxis.label.set_color(fg)
        ax.yaxis.label.set_color(fg)
        ax.title.set_color(fg)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(bg)
            legend.get_frame().set_edgecolor(self.colors["highlight"])
            for text in legend.get_texts():
                text.set_color(fg)
