"""The Kinetic fit dock's magicgui forms: model settings and condition windows.

:class:`ModelInputs` and :class:`WindowInputs` are :class:`~.form.InputForm`
dataclasses: their fields carry defaults (from :mod:`napari_mor.defaults`),
ranges, steps and units, build the magicgui containers and give the
:class:`~napari_mor.workflows.fit.FitRequest` fields. :class:`ModelFormWidget`
and :class:`WindowsFormWidget` are the dock sections showing them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from qtpy.QtWidgets import QGroupBox, QVBoxLayout

from napari_mor._errors import MorError
from napari_mor._napari.fit.form import InputForm, form_field
from napari_mor.defaults import (
    DEFAULT_CHALLENGE_ONSET_MIN,
    DEFAULT_MODEL,
    DEFAULT_WINDOWS_MIN,
    DENOISE_METHODS,
    FIT_MODELS,
    RELEASE_MODEL,
    WEIGHTINGS,
)
from napari_mor.workflows.fit import FitRequest

_DISPLAY_NAMES = {
    "logan": "Logan-ref",
    "mrtm": "MRTM",
    "mrtm2": "MRTM2",
    "srtm": "SRTM",
    "srtm2": "SRTM2",
    "srtm-bf": "BF-SRTM",
    "ratio": "Ratio (equilibrium)",
    RELEASE_MODEL: "lp-ntPET (change inside one scan)",
}

#: Partial-volume correction: display name -> request value.
PVC_CHOICES = {
    "none": "none",
    "GTM (ROI TACs)": "gtm",
    "RBV (images, maps)": "rbv",
    "iterative Yang (images, maps)": "iy",
}

#: Display name -> core model name, in the order of :data:`FIT_MODELS`.
MODEL_CHOICES = {_DISPLAY_NAMES.get(name, name.upper()): name for name in FIT_MODELS}

_BASE, _CHAL = (DEFAULT_WINDOWS_MIN[c] for c in ("baseline", "challenge"))

#: Window mode -> its text in the dock.
WINDOW_MODES = {
    "preset": f"Preset: baseline {_BASE[0]:g}-{_BASE[1]:g} / challenge "
    f"{_CHAL[0]:g}-{_CHAL[1]:g} min",
    "custom": "Custom windows (one scan)",
    "whole": "Whole scan (one condition)",
    "two_scans": "Two scans: baseline PET + challenge PET",
}

_MINUTES = {"min": 0.0, "max": 10000.0, "step": 1.0, "decimals": 1, "unit": " min"}
#: Window bounds: the section title gives the unit (two boxes share a line).
_WINDOW_MINUTES = {**_MINUTES, "unit": ""}
_REQUEST_DEFAULTS = {f.name: f.default for f in fields(FitRequest)}


@dataclass(frozen=True)
class ModelInputs(InputForm):
    """Model, t*, k2' and frame weighting of a fit."""

    labels_left = False  # labels on their own line: fits a narrow dock

    model: str = form_field(
        DEFAULT_MODEL, "Model", choices=[(t, m) for t, m in MODEL_CHOICES.items()]
    )
    t_star_auto: bool = form_field(True, "auto", row="t*")
    t_star_min: float = form_field(
        20.0, "t*", row="t*", tooltip="Logan/MRTM start of the linear part", **_MINUTES
    )
    k2p_auto: bool = form_field(True, "auto", row="k2'")
    k2p_per_min: float = form_field(
        0.2,
        "k2'",
        row="k2'",
        min=0.0001,
        max=10.0,
        step=0.01,
        decimals=4,
        unit=" /min",
        tooltip="reference-region efflux; 'auto' estimates it once on the baseline",
    )
    onset_auto: bool = form_field(False, "search", row="onset")
    challenge_onset_min: float = form_field(
        DEFAULT_CHALLENGE_ONSET_MIN,
        "onset",
        row="onset",
        tooltip="lp-ntPET: the challenge onset (min from injection); 'search' "
        "estimates it (less precise under noise)",
        **_MINUTES,
    )
    weights: str = form_field(
        _REQUEST_DEFAULTS["weights"], "Weighting", choices=WEIGHTINGS
    )
    pvc: str = form_field(
        _REQUEST_DEFAULTS["pvc"],
        "Partial-volume correction",
        choices=list(PVC_CHOICES.items()),
        tooltip="GTM corrects ROI TACs; RBV / iterative Yang correct images for "
        "maps (docs/pvc.md)",
    )
    psf_fwhm_mm: float = form_field(
        6.0,
        "PSF FWHM",
        min=0.5,
        max=20.0,
        step=0.5,
        decimals=1,
        unit=" mm",
        tooltip="the scanner's point-spread function (used with PVC)",
    )

    denoise: str = form_field(
        _REQUEST_DEFAULTS["denoise"],
        "Denoise PET (maps)",
        choices=DENOISE_METHODS,
        tooltip="before voxelwise fits; nlm (guided non-local means) is the least "
        "biased (docs/denoise.md); ROI TACs are never filtered",
    )
    denoise_fwhm_mm: float = form_field(
        6.0,
        "Denoise FWHM",
        min=0.5,
        max=20.0,
        step=0.5,
        decimals=1,
        unit=" mm",
    )

    def request_fields(self) -> dict:
        return {
            "model": self.model,
            "t_star_min": None if self.t_star_auto else self.t_star_min,
            "k2p_per_min": None if self.k2p_auto else self.k2p_per_min,
            "weights": self.weights,
            "pvc": self.pvc,
            "psf_fwhm_mm": None if self.pvc == "none" else self.psf_fwhm_mm,
            "challenge_onset_min": self.challenge_onset_min
            if self.model == RELEASE_MODEL and not self.onset_auto
            else None,
            "denoise": self.denoise,
            "denoise_fwhm_mm": None if self.denoise == "none" else self.denoise_fwhm_mm,
        }


@dataclass(frozen=True)
class WindowInputs(InputForm):
    """Conditions of a fit: preset, custom or whole-scan windows, or two scans."""

    labels_left = False  # the window rows need the dock's full width

    mode: str = form_field(
        "preset", "Conditions", choices=[(t, k) for k, t in WINDOW_MODES.items()]
    )
    baseline_start_min: float = form_field(
        _BASE[0], "start", row="baseline window", **_WINDOW_MINUTES
    )
    baseline_end_min: float = form_field(
        _BASE[1], "end", row="baseline window", **_WINDOW_MINUTES
    )
    challenge_start_min: float = form_field(
        _CHAL[0], "start", row="challenge window", **_WINDOW_MINUTES
    )
    challenge_end_min: float = form_field(
        _CHAL[1], "end", row="challenge window", **_WINDOW_MINUTES
    )

    def windows(self) -> dict[str, tuple[float, float]]:
        """Condition -> (start, end), minutes from injection."""
        return {
            "baseline": (self.baseline_start_min, self.baseline_end_min),
            "challenge": (self.challenge_start_min, self.challenge_end_min),
        }

    def request_fields(self) -> dict:
        windows = {
            "preset": tuple(DEFAULT_WINDOWS_MIN.values()),
            "custom": tuple(self.windows().values()),
        }.get(self.mode, ())
        return {"windows_min": windows, "two_scans": self.mode == "two_scans"}


#: "auto" check box -> the spin box it disables.
_AUTO_SPINS = {
    "t_star_auto": "t_star_min",
    "k2p_auto": "k2p_per_min",
    "onset_auto": "challenge_onset_min",
}


class ModelFormWidget(QGroupBox):
    """Dock section: the :class:`ModelInputs` form ("auto" disables its spin box)."""

    def __init__(self, parent=None) -> None:
        super().__init__("Model", parent)
        self.form = ModelInputs.create_container()
        self.widgets = ModelInputs.widgets_of(self.form)
        QVBoxLayout(self).addWidget(self.form.native)
        for auto_name in _AUTO_SPINS:
            self.widgets[auto_name].native.toggled.connect(self._enable_rows)
        self.widgets["model"].changed.connect(self._enable_rows)
        self._enable_rows()

    @property
    def is_release(self) -> bool:
        """The release model (lp-ntPET) is chosen: onset instead of t*, no windows."""
        return self.widgets["model"].value == RELEASE_MODEL

    def _enable_rows(self, *args) -> None:
        """Spin boxes follow their "auto" boxes; the onset row is lp-ntPET's, t* not."""
        release = self.is_release
        for name in ("onset_auto", "challenge_onset_min"):
            self.widgets[name].native.setEnabled(release)
        for name in ("t_star_auto", "t_star_min"):
            self.widgets[name].native.setEnabled(not release)
        for auto_name, spin_name in _AUTO_SPINS.items():
            auto, spin = self.widgets[auto_name].native, self.widgets[spin_name].native
            if auto.isEnabled():
                spin.setEnabled(not auto.isChecked())

    def values(self) -> ModelInputs:
        """The form's current values."""
        return ModelInputs.from_container(self.form)

    def set_model(self, model: str) -> None:
        """Choose the model by core name (``"logan"``, ``"mrtm2"``, ...)."""
        if model not in MODEL_CHOICES.values():
            raise MorError(
                f"Unknown model {model!r}; choose one of {', '.join(FIT_MODELS)}."
            )
        self.widgets["model"].value = model

    def set_onset(self, minutes: float | None) -> None:
        """lp-ntPET challenge onset in minutes (None: searched)."""
        self.widgets["onset_auto"].value = minutes is None
        if minutes is not None:
            self.widgets["challenge_onset_min"].value = minutes

    def set_t_star(self, minutes: float | None) -> None:
        """t* in minutes (None: automatic)."""
        self.widgets["t_star_auto"].value = minutes is None
        if minutes is not None:
            self.widgets["t_star_min"].value = minutes

    def set_k2p(self, per_min: float | None) -> None:
        """k2' in 1/min (None: automatic)."""
        self.widgets["k2p_auto"].value = per_min is None
        if per_min is not None:
            self.widgets["k2p_per_min"].value = per_min


class WindowsFormWidget(QGroupBox):
    """Dock section: the :class:`WindowInputs` form.

    The preset puts the default windows back; the spin boxes are editable in
    "custom" mode only.
    """

    def __init__(self, parent=None) -> None:
        super().__init__("Windows (min from injection)", parent)
        self.form = WindowInputs.create_container()
        self.widgets = WindowInputs.widgets_of(self.form)
        QVBoxLayout(self).addWidget(self.form.native)
        #: Condition -> [start, end] spin boxes (Qt ``QDoubleSpinBox``).
        self.spins = {
            condition: [
                self.widgets[f"{condition}_{end}_min"].native
                for end in ("start", "end")
            ]
            for condition in DEFAULT_WINDOWS_MIN
        }
        self.widgets["mode"].changed.connect(self._on_mode)
        self._on_mode()

    def values(self) -> WindowInputs:
        """The form's current values."""
        return WindowInputs.from_container(self.form)

    @property
    def mode(self) -> str:
        """``"preset"``, ``"custom"``, ``"whole"`` or ``"two_scans"``."""
        return self.widgets["mode"].value

    def set_mode(self, mode: str) -> None:
        """Choose the window mode by key (see :data:`WINDOW_MODES`)."""
        if mode not in WINDOW_MODES:
            known = ", ".join(WINDOW_MODES)
            raise MorError(f"Unknown window mode {mode!r}; choose one of {known}.")
        self.widgets["mode"].value = mode

    def set_windows(self, windows_min: dict[str, tuple[float, float]]) -> None:
        """Custom baseline/challenge windows, minutes."""
        self.set_mode("custom")
        for condition, (start, end) in windows_min.items():
            self.spins[condition][0].setValue(start)
            self.spins[condition][1].setValue(end)

    def _on_mode(self, *args) -> None:
        mode = self.mode
        if mode == "preset":
            for condition, (start, end) in DEFAULT_WINDOWS_MIN.items():
                self.spins[condition][0].setValue(start)
                self.spins[condition][1].setValue(end)
        for spins in self.spins.values():
            for spin in spins:
                spin.setEnabled(mode == "custom")
