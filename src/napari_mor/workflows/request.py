"""The fit request: what to fit, in core units, and its command line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import (
    DEFAULT_MODEL,
    DENOISE_METHODS,
    FIT_MODELS,
    RELEASE_MODEL,
    RELEASE_SHAPES,
    TWO_SCAN_CONDITIONS,
    WEIGHTINGS,
)

#: With the release model and a searched onset, k2' is estimated on the frames
#: before this time (minutes from injection), where the onset search starts.
RELEASE_SEARCH_START_MIN = 20.0

#: Partial-volume corrections (``--pvc``): none; GTM regional TACs; RBV or
#: iterative-Yang images for maps (ROI fits use GTM TACs with every method).
PVC_METHODS = ("none", "gtm", "rbv", "iy")

#: Mask choice for maps: voxels whose mean uptake is >= this fraction of its p99.
UPTAKE_MASK = "uptake"
UPTAKE_FRACTION = 0.25


def condition_names(windows_min: Sequence[tuple[float, float]]) -> tuple[str, ...]:
    """Names of the conditions of windowed fits of one scan.

    Two windows are ``baseline`` and ``challenge``; any other number is named by
    its limits (``win-0to45``); no window is the whole ``scan``.

    Examples
    --------
    >>> condition_names([(0, 45), (45, 90)])
    ('baseline', 'challenge')
    >>> condition_names([(10, 45)])
    ('win-10to45',)
    """
    if not windows_min:
        return ("scan",)
    if len(windows_min) == 2:
        return TWO_SCAN_CONDITIONS
    return tuple(f"win-{start:g}to{end:g}" for start, end in windows_min)


if TYPE_CHECKING:
    from napari_mor.workflows.k2p_policy import K2pChoice


# ------------------------------------------------------------------- request
@dataclass(frozen=True)
class FitRequest:
    """What to fit, in core units; built by argv, dock controls, batch settings.

    Parameters
    ----------
    model : str
        One of :data:`napari_mor.defaults.FIT_MODELS`: a reference-region model,
        or ``"lpntpet"``, the within-scan release model (one scan, no windows).
    reference : int or str, optional
        Reference region: a label value, or a region name (exact LUT name, or a
        text the name contains). None: the region named like "occipital". Ignored
        when ``ref_mask_path`` is given.
    windows_min : tuple of (float, float)
        Condition windows of one scan, minutes from injection (empty: the whole
        scan, or each of two scans whole).
    two_scans : bool
        Baseline and challenge are separate scans (``challenge_pet_path`` or an
        in-memory challenge scan).
    t_star_min : float, optional
        t*, minutes (None: automatic for Logan).
    k2p_per_min : float, optional
        Given k2', 1/min. None: estimated once per subject by :func:`shared_k2p`.
    k2p_region : int or str, optional
        High-binding region (label value or name) whose MRTM fit gives k2'.
    weights : {"none", "duration", "noise"}
        Frame weighting.
    n_theta : int, optional
        Basis functions of SRTM-BF / SRTM2 maps (None: the kinetics default).
    theta_range_per_min : (float, float), optional
        Range of the basis-function rates, 1/min (None: the kinetics default).
    mask : str, optional
        Voxels fitted by maps: None for the labelled voxels, ``"uptake"`` for
        the uptake mask, or the path of a brain mask on the PET grid.
    rois_only : bool
        ROI table instead of maps.
    pet_path, challenge_pet_path, labels_path, lut_path, ref_mask_path,
    frames_path : str, optional
        Source files (read by :func:`load_fit_data`, hashed in provenance).
    units : str, optional
        Activity unit of PET files that do not say.
    tacs_path : str, optional
        A TAC table (``frame_start``, ``frame_end`` s, one column per region) to
        fit instead of images (ROI fits only; the reference is a column).
    out : str, optional
        Output file (``.nii.gz``/``.nii`` maps or ``.tsv`` table).
    pvc : {"none", "gtm", "rbv", "iy"}
        Partial-volume correction (:mod:`napari_mor.pvc`, ``docs/pvc.md``).
        ROI fits use GTM-corrected TACs (reference included) with any method;
        maps use the RBV or iterative-Yang image, so ``"gtm"`` is for ROI fits.
    psf_fwhm_mm : float or (float, float, float), optional
        Scanner PSF FWHM, mm (isotropic or x, y, z); required with ``pvc``.
    challenge_onset_min : float, optional
        Release model only: the challenge onset, minutes from injection (None:
        searched from :data:`RELEASE_SEARCH_START_MIN` and reported).
    denoise : {"none", "gaussian", "hypr-lr", "nlm"}
        Denoising of the PET before voxelwise fits (:mod:`napari_mor.denoise`,
        docs/denoise.md); the reference and ROI TACs come from the original PET.
    denoise_fwhm_mm : float, optional
        Its kernel FWHM, mm (None: the method's default).
    bids_out : str, optional
        A BIDS derivatives folder: outputs get BEP023 names there
        (:mod:`napari_mor.io.bids_derivatives`) instead of ``out``.
    """

    model: str = DEFAULT_MODEL
    reference: int | str | None = None
    windows_min: tuple[tuple[float, float], ...] = ()
    two_scans: bool = False
    t_star_min: float | None = None
    k2p_per_min: float | None = None
    k2p_region: int | str | None = None
    weights: str = "none"
    n_theta: int | None = None
    theta_range_per_min: tuple[float, float] | None = None
    mask: str | None = None
    rois_only: bool = False
    pet_path: str | None = None
    challenge_pet_path: str | None = None
    labels_path: str | None = None
    lut_path: str | None = None
    ref_mask_path: str | None = None
    frames_path: str | None = None
    units: str | None = None
    tacs_path: str | None = None
    out: str | None = None
    pvc: str = "none"
    psf_fwhm_mm: float | tuple | None = None
    challenge_onset_min: float | None = None
    denoise: str = "none"
    denoise_fwhm_mm: float | None = None
    bids_out: str | None = None

    def __post_init__(self) -> None:
        self._check_pvc()
        self._check_release()
        self._check_denoise()
        windows = tuple((float(s), float(e)) for s, e in self.windows_min)
        object.__setattr__(self, "windows_min", windows)
        if self.theta_range_per_min is not None:
            low, high = (float(v) for v in self.theta_range_per_min)
            object.__setattr__(self, "theta_range_per_min", (low, high))
            if not 0 < low < high:
                raise MorError(
                    f"The basis-function range must be 0 < low < high (1/min); got "
                    f"{low:g}-{high:g}."
                )
        if self.n_theta is not None and not (
            isinstance(self.n_theta, int) and self.n_theta >= 2
        ):
            raise MorError(
                f"The number of basis functions must be an integer >= 2; got "
                f"{self.n_theta!r}."
            )
        if self.model not in FIT_MODELS:
            raise MorError(
                f"Unknown model {self.model!r}; choose one of {', '.join(FIT_MODELS)}."
            )
        if self.weights not in WEIGHTINGS:
            raise MorError(
                f"Unknown weighting {self.weights!r}; choose none, duration or noise."
            )
        if self.two_scans and windows:
            raise MorError(
                "Two scans are fitted whole; do not give condition windows as well."
            )
        for name, value in (("t*", self.t_star_min), ("k2'", self.k2p_per_min)):
            if value is not None and not (np.isfinite(value) and value > 0):
                raise MorError(f"{name} must be a number > 0; got {value!r}.")
        if self.tacs_path and (
            not self.rois_only
            or self.two_scans
            or self.pvc != "none"
            or any((self.pet_path, self.labels_path, self.ref_mask_path, self.mask))
        ):
            raise MorError(
                "A TAC table (--tacs) is fitted alone: ROI fits of one scan, the "
                "reference a column (--ref-column); drop the images, masks, PVC and "
                "--challenge-pet."
            )
        if self.rois_only and self.mask is not None:
            raise MorError(
                "A brain mask (--mask) restricts voxelwise maps; ROI fits "
                "(--rois-only) use the label means. Drop one of them."
            )
        if self.k2p_per_min is not None and self.k2p_region is not None:
            raise MorError(
                "Give k2' either as a value or as a region to estimate it from, "
                "not both."
            )
        _check_windows_ordered(windows)

    def _check_denoise(self) -> None:
        if self.denoise not in DENOISE_METHODS:
            raise MorError(
                f"Unknown denoising {self.denoise!r}; choose one of "
                f"{', '.join(DENOISE_METHODS)}."
            )
        if self.rois_only and self.denoise != "none":
            raise MorError(
                "Denoising (--denoise) filters the PET for voxelwise maps; ROI fits "
                "(--rois-only) use the unfiltered region means. Drop one of them."
            )
        fwhm = self.denoise_fwhm_mm
        if fwhm is None:
            return
        if self.denoise == "none":
            raise MorError(
                "A denoising FWHM (--denoise-fwhm) was given without a method; add "
                "--denoise gaussian|hypr-lr|nlm or drop --denoise-fwhm."
            )
        if not (np.isfinite(fwhm) and fwhm > 0):
            raise MorError(f"The denoising FWHM must be > 0 mm; got {fwhm!r}.")
        object.__setattr__(self, "denoise_fwhm_mm", float(fwhm))

    def _check_release(self) -> None:
        onset = self.challenge_onset_min
        if self.model != RELEASE_MODEL:
            if onset is not None:
                raise MorError(
                    f"A challenge onset (--challenge-onset) is for the release model "
                    f"(--model {RELEASE_MODEL}); {self.model} fits condition windows "
                    "(--window START END) instead."
                )
            return
        if self.two_scans or self.windows_min:
            raise MorError(
                f"The release model ({RELEASE_MODEL}) fits one scan whole, the "
                "change inside it; drop --window and --challenge-pet (for two scans "
                "or windows choose a reference-region model such as logan)."
            )
        if onset is not None:
            if not (np.isfinite(onset) and onset > 0):
                raise MorError(
                    f"The challenge onset must be a number of minutes > 0 from "
                    f"injection; got {onset!r}."
                )
            object.__setattr__(self, "challenge_onset_min", float(onset))

    def _check_pvc(self) -> None:
        if self.pvc not in PVC_METHODS:
            raise MorError(
                f"Unknown partial-volume correction {self.pvc!r}; choose one of "
                f"{', '.join(PVC_METHODS)}."
            )
        psf = self.psf_fwhm_mm
        if self.pvc == "none":
            if psf is not None:
                raise MorError(
                    "A PSF (--psf-fwhm) was given without a partial-volume "
                    "correction; add --pvc gtm|rbv|iy or drop --psf-fwhm."
                )
            return
        if psf is None:
            raise MorError(
                f"Partial-volume correction {self.pvc!r} needs the scanner PSF; "
                "give --psf-fwhm MM (FWHM, one value or x y z)."
            )
        try:
            values = tuple(float(v) for v in np.atleast_1d(psf))
        except (TypeError, ValueError):
            values = ()
        if len(values) not in (1, 3) or not all(
            np.isfinite(v) and v > 0 for v in values
        ):
            raise MorError(
                f"The PSF FWHM must be one or three numbers > 0 mm; got {psf!r}."
            )
        object.__setattr__(
            self, "psf_fwhm_mm", values[0] if len(values) == 1 else values
        )
        if self.pvc == "gtm" and not self.rois_only:
            raise MorError(
                "GTM corrects regional TACs only; add --rois-only for an ROI "
                "table, or choose --pvc rbv or iy for voxelwise maps."
            )
        if self.ref_mask_path is not None:
            raise MorError(
                "Partial-volume correction needs the complete ROI set (--labels "
                "with the reference region), not a reference mask (--ref-mask)."
            )

    @property
    def conditions(self) -> tuple[str, ...]:
        """Condition names in order (see :func:`condition_names`)."""
        if self.two_scans:
            return TWO_SCAN_CONDITIONS
        return condition_names(self.windows_min)

    def window_of(self, condition: str) -> tuple[float, float] | None:
        """The window (minutes) of a condition; None when a whole scan is used."""
        if self.two_scans or not self.windows_min:
            return None
        return self.windows_min[self.conditions.index(condition)]

    @property
    def baseline_window(self) -> tuple[float, float] | None:
        """The baseline: the first window, the baseline scan (None), or for the
        release model the frames before the onset (before the onset search)."""
        if self.model == RELEASE_MODEL:
            end = self.challenge_onset_min or RELEASE_SEARCH_START_MIN
            return (0.0, float(end))
        return self.windows_min[0] if self.windows_min else None

    def to_argv(self) -> list[str]:
        """The ``napari-mor fit`` arguments of this request (after the program name).

        Unknown paths appear as placeholders (``PET.nii.gz``, ``LABELS.nii.gz``,
        ``OUT.nii.gz``). ``napari_mor.cli.fit.request_from_args`` reads them back
        into an equal request.
        """
        if self.tacs_path:
            args = ["fit", "--tacs", self.tacs_path]
        else:
            args = ["fit", self.pet_path or "PET.nii.gz"]
        if self.two_scans:
            args += [
                "--challenge-pet",
                self.challenge_pet_path or "CHALLENGE_PET.nii.gz",
            ]
        if self.ref_mask_path:
            args += ["--ref-mask", self.ref_mask_path]
        elif not self.tacs_path:
            args += ["--labels", self.labels_path or "LABELS.nii.gz"]
        if self.lut_path:
            args += ["--lut", self.lut_path]
        if self.reference is not None:
            flag = "--ref-column" if self.tacs_path else "--ref-label"
            args += [flag, str(self.reference)]
        args += ["--model", self.model]
        for start, end in self.windows_min:
            args += ["--window", _number(start), _number(end)]
        if self.challenge_onset_min is not None:
            args += ["--challenge-onset", _number(self.challenge_onset_min)]
        for flag, value in (
            ("--t-star", self.t_star_min),
            ("--k2p", self.k2p_per_min),
        ):
            if value is not None:
                args += [flag, _number(value)]
        if self.k2p_region is not None:
            args += ["--k2p-region", str(self.k2p_region)]
        if self.weights != "none":
            args += ["--weights", self.weights]
        if self.n_theta is not None:
            args += ["--n-theta", str(self.n_theta)]
        if self.theta_range_per_min is not None:
            args += ["--theta-range", *(_number(v) for v in self.theta_range_per_min)]
        if self.mask is not None:
            args += ["--mask", self.mask]
        if self.rois_only:
            args.append("--rois-only")
        if self.frames_path:
            args += ["--frames", self.frames_path]
        if self.units:
            args += ["--units", self.units]
        if self.pvc != "none":
            args += ["--pvc", self.pvc]
        if self.denoise != "none":
            args += ["--denoise", self.denoise]
        if self.denoise_fwhm_mm is not None:
            args += ["--denoise-fwhm", _number(self.denoise_fwhm_mm)]
        if self.psf_fwhm_mm is not None:
            args += [
                "--psf-fwhm",
                *(_number(v) for v in np.atleast_1d(self.psf_fwhm_mm)),
            ]
        if self.bids_out:
            return [*args, "--bids-out", self.bids_out]
        default_out = "OUT.tsv" if self.rois_only else "OUT.nii.gz"
        return [*args, "--out", self.out or default_out]

    def command_line(self) -> str:
        """The equivalent shell command."""
        import shlex

        return shlex.join(["napari-mor", *self.to_argv()])

    def model_options(self, k2p: K2pChoice) -> dict:
        """Keyword arguments for the kinetics fitting functions."""
        if self.model == RELEASE_MODEL:
            return {
                "k2p_per_min": k2p.value,
                "onset_min": self.challenge_onset_min,
                "weights": self.weights,
                "shapes": RELEASE_SHAPES,
            }
        options = {
            "t_star_min": self.t_star_min,
            "k2p_per_min": k2p.value,
            "weights": self.weights,
        }
        if self.n_theta is not None:
            options["n_theta"] = self.n_theta
        if self.theta_range_per_min is not None:
            options["theta_range_per_min"] = self.theta_range_per_min
        return options


def _number(value: float) -> str:
    """A number for a command line: short when exact (``45``), else full precision."""
    short = f"{float(value):g}"
    return short if float(short) == float(value) else repr(float(value))


def _check_windows_ordered(windows: Sequence[tuple[float, float]]) -> None:
    for start, end in windows:
        if not (np.isfinite(start) and np.isfinite(end)) or not end > start:
            raise MorError(
                f"Window {start:g}-{end:g} min is empty: the end must be after the "
                "start (minutes from injection)."
            )
        if start < 0:
            raise MorError(
                f"Window {start:g}-{end:g} min starts before injection; windows are "
                "minutes from injection (>= 0)."
            )


# -------------------------------------------------------------------- inputs
