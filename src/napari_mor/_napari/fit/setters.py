"""The Kinetic fit dock's setters: choose layers and settings from code.

Tests, scripts (``scripts/make_screenshots.py``) and the Study dock's windows
drive the dock through these, as a user would through its controls.
"""

from __future__ import annotations

from napari.layers import Image, Labels

from napari_mor._napari import _metadata as md
from napari_mor.defaults import DEFAULT_WINDOWS_MIN


class FitSettersMixin:
    """Setters of :class:`~napari_mor._napari.fit.dock.FitWidget`.

    Expects the dock's sections ``layers_box``, ``model_box``, ``windows_box``.
    """

    def set_pet_layer(self, layer: Image) -> None:
        """Choose the (baseline) PET layer."""
        self.layers_box.pet_combo.setCurrentText(layer.name)

    def set_challenge_layer(self, layer: Image) -> None:
        """Choose the challenge PET layer (two-scan mode)."""
        self.layers_box.challenge_pet_combo.setCurrentText(layer.name)

    def set_labels_layer(self, layer: Labels) -> None:
        """Choose the ROI set (Labels layer with ``metadata["lut"]``)."""
        self.layers_box.labels_combo.setCurrentText(layer.name)
        self.layers_box.refresh_reference_choices()

    def set_reference(self, label: int | None) -> None:
        """Choose the reference ROI by label value (None: no reference)."""
        self.layers_box.set_reference(label)

    def set_model(self, model: str) -> None:
        """Choose the model by core name (``"logan"``, ``"mrtm2"``, ...)."""
        self.model_box.set_model(model)

    def set_window_mode(self, mode: str) -> None:
        """``"preset"``, ``"custom"``, ``"whole"`` or ``"two_scans"``."""
        self.windows_box.set_mode(mode)

    def set_windows(self, windows_min: dict[str, tuple[float, float]]) -> None:
        """Custom baseline/challenge windows, minutes."""
        self.windows_box.set_windows(windows_min)

    def set_t_star(self, minutes: float | None) -> None:
        """t* in minutes (None: automatic)."""
        self.model_box.set_t_star(minutes)

    def set_k2p(self, per_min: float | None) -> None:
        """k2' in 1/min (None: automatic)."""
        self.model_box.set_k2p(per_min)

    def set_mask(self, choice: str) -> None:
        """Map mask: :data:`MASK_ROIS`, :data:`MASK_UPTAKE` or a 3-D layer name."""
        self.layers_box.set_mask(choice)

    def _adopt_study_windows(self) -> None:
        """Follow the PET layer: two scans when it is a baseline scan with a
        challenge scan open, else the windows the Study dock stored on it."""
        layer = self.layers_box.layer(self.layers_box.pet_combo.currentText())
        if layer is not None and layer.metadata.get(md.SCAN) == "baseline":
            challenge = [
                other
                for other in self.viewer.layers
                if other.metadata.get(md.SCAN) == "challenge"
            ]
            if challenge:
                self.set_challenge_layer(challenge[0])
                self.set_window_mode("two_scans")
                return
        stored = (layer.metadata.get(md.WINDOWS_MIN) if layer else None) or {}
        windows = {
            c: tuple(float(v) for v in stored[c])
            for c in DEFAULT_WINDOWS_MIN
            if c in stored
        }
        default = {c: tuple(map(float, w)) for c, w in DEFAULT_WINDOWS_MIN.items()}
        if len(windows) == len(default) and windows != default:
            self.set_windows(windows)
