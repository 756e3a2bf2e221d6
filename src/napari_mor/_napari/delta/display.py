"""The Delta-BP dock's display section: sign legend, threshold, range, colours.

:class:`DisplayInputs` is the magicgui form (an
:class:`~napari_mor._napari.fit.form.InputForm`); it changes how the delta
layers look, never the maps (the unthresholded map is what gets saved).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from napari.utils.colormaps import Colormap
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGroupBox, QLabel, QSlider, QVBoxLayout

from napari_mor._napari.fit.form import InputForm, form_field

SIGN_CONVENTION = (
    "ΔBP_ND = BP_baseline − BP_challenge.  Positive (red) = activation: reduced "
    "receptor availability during the challenge (endogenous opioid release). "
    "Negative (blue) = increased availability (deactivation)."
)

#: The click read-out before the first click on the map.
READOUT_HINT = "Click the map: its value at the cursor is shown here."

DELTA_NAME = "delta-BP_ND"
PCT_NAME = "%delta-BP_ND"
COLORMAPS = ("bwr", "RdBu_r", "coolwarm")  # all: positive red, negative blue


def diverging_colormap(name: str = "bwr", fade: bool = True) -> Colormap:
    """A napari colormap sampled from a matplotlib diverging map.

    With ``fade`` the alpha falls to 0 at the centre, so values near 0 let the MR
    show through (the contrast limits are symmetric, so the centre is 0).
    """
    from matplotlib import colormaps

    positions = np.linspace(0.0, 1.0, 33)
    colors = colormaps[name](positions)
    if fade:
        colors[:, 3] = np.clip(np.abs(2 * positions - 1) * 4.0, 0.0, 1.0)
    return Colormap(
        colors=colors,
        controls=positions,
        name=f"mor_{name}{'_fade' if fade else ''}",
        display_name=f"{name}{' (clear at 0)' if fade else ''}",
    )


@dataclass(frozen=True)
class DisplayInputs(InputForm):
    """How the delta layers are shown (display only)."""

    labels_left = False  # labels on their own line: fits a narrow dock

    threshold: float = form_field(
        0.0,
        "hide |ΔBP_ND| below",
        min=0.0,
        max=100.0,
        step=0.05,
        decimals=3,
        tooltip="display only: the saved map is unthresholded",
    )
    colour_range: float = form_field(
        1.0,
        "colour range ±",
        min=0.001,
        max=1000.0,
        step=0.05,
        decimals=3,
        tooltip="contrast limits of the shown layer (ΔBP_ND, or %ΔBP in %): "
        "-range..+range",
    )
    opacity_pct: int = form_field(90, "opacity", min=0, max=100, slider=True)
    colormap: str = form_field("bwr", "colormap", choices=COLORMAPS)
    fade: bool = form_field(True, "clear near 0")
    show: str = form_field(DELTA_NAME, "show", choices=(DELTA_NAME, PCT_NAME))

    def colormap_of(self) -> Colormap:
        """The chosen diverging colormap."""
        return diverging_colormap(self.colormap, self.fade)


class DeltaDisplayWidget(QGroupBox):
    """Dock section: the sign legend and the :class:`DisplayInputs` form.

    Attributes
    ----------
    readout : QLabel
        The value under the last click on the map (napari's status bar is
        overwritten by the next mouse move; this stays).
    threshold_spin, range_spin : QDoubleSpinBox
    opacity_slider : QSlider
    cmap_combo, show_combo : QComboBox
    fade_check : QCheckBox
        The form's Qt widgets.
    """

    def __init__(self, parent=None) -> None:
        super().__init__("Display", parent)
        layout = QVBoxLayout(self)
        self.legend = QLabel(SIGN_CONVENTION)
        self.legend.setWordWrap(True)
        layout.addWidget(self.legend)
        self.readout = QLabel(READOUT_HINT)
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        layout.addWidget(self.readout)
        self.form = DisplayInputs.create_container()
        self.widgets = DisplayInputs.widgets_of(self.form)
        layout.addWidget(self.form.native)
        self.threshold_spin = self.widgets["threshold"].native
        self.range_spin = self.widgets["colour_range"].native
        self.opacity_slider = self.widgets["opacity_pct"].native.findChild(QSlider)
        self.cmap_combo = self.widgets["colormap"].native
        self.fade_check = self.widgets["fade"].native
        self.show_combo = self.widgets["show"].native

    def values(self) -> DisplayInputs:
        """The form's current values."""
        return DisplayInputs.from_container(self.form)

    def on_change(self, threshold, colour_range, style) -> None:
        """Call ``threshold()``, ``colour_range()`` or ``style()`` on changes."""
        self.widgets["threshold"].changed.connect(lambda *_: threshold())
        self.widgets["colour_range"].changed.connect(lambda *_: colour_range())
        for name in ("opacity_pct", "colormap", "fade", "show"):
            self.widgets[name].changed.connect(lambda *_: style())

    def set_range_quietly(self, value: float) -> None:
        """Show ``value`` as the colour range without calling back."""
        self.range_spin.blockSignals(True)
        self.range_spin.setValue(value)
        self.range_spin.blockSignals(False)
