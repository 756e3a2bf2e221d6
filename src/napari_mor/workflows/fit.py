"""The fit use case: request, inputs, reference rule, k2' policy and ROI fits.

Every entry point (``napari-mor fit``, the Kinetic fit dock, the cohort batch and
the demo) builds a :class:`FitRequest`, gets its inputs as :class:`FitData`
(:func:`load_fit_data` from files, :func:`prepare_fit_data` from arrays already in
memory) and calls :func:`fit_rois` here or the map functions of
:mod:`napari_mor.workflows.fit_maps`. The reference region is chosen by one rule
(:func:`resolve_reference`) and k2' by one policy (:func:`shared_k2p`), so the same
request gives the same numbers wherever it comes from. Times are minutes from
injection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import (
    DEFAULT_MODEL,
    DEFAULT_REFERENCE_HINT,
    MODEL_NAMES,
    TWO_SCAN_CONDITIONS,
    WEIGHTINGS,
)
from napari_mor.io.pet import DynamicPET
from napari_mor.io.timing import FrameTiming
from napari_mor.io.volume import LabelImage
from napari_mor.kinetics import RoiFit

__all__ = [
    "FIT_COLUMNS",
    "FitData",
    "FitRequest",
    "K2pChoice",
    "RoiFitResult",
    "RoiTacs",
    "condition_names",
    "fit_rois",
    "fit_table_rows",
    "load_fit_data",
    "logan_x_at_t_star",
    "prepare_fit_data",
    "resolve_reference",
    "roi_tacs",
    "shared_k2p",
]

#: Columns of the ROI fit table, one row per ROI and condition (CLI and dock).
FIT_COLUMNS = (
    "condition",
    "name",
    "label",
    "model",
    "BP_ND",
    "BP_ND_se",
    "R1",
    "R1_se",
    "k2",
    "k2_se",
    "k2p",
    "k2p_source",
    "t_star_min",
    "window_start_min",
    "window_end_min",
    "n_frames",
    "r2",
)

#: Mask choice for maps: voxels whose mean uptake is >= this fraction of its p99.
UPTAKE_MASK = "uptake"
UPTAKE_FRACTION = 0.25

#: Tolerance (min) when checking that a window lies inside the scan.
_WINDOW_TOLERANCE_MIN = 1e-6


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


# ------------------------------------------------------------------- request
@dataclass(frozen=True)
class FitRequest:
    """What to fit, in core units; built by argv, dock controls, batch settings.

    Parameters
    ----------
    model : str
        One of :data:`napari_mor.defaults.MODEL_NAMES`.
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
    out : str, optional
        Output file (``.nii.gz``/``.nii`` maps or ``.tsv`` table).
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
    out: str | None = None

    def __post_init__(self) -> None:
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
        if self.model not in MODEL_NAMES:
            raise MorError(
                f"Unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}."
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
        """Frames k2' is estimated on: the first window, or the baseline scan."""
        return self.windows_min[0] if self.windows_min else None

    def to_argv(self) -> list[str]:
        """The ``napari-mor fit`` arguments of this request (after the program name).

        Unknown paths appear as placeholders (``PET.nii.gz``, ``LABELS.nii.gz``,
        ``OUT.nii.gz``). ``napari_mor.cli.fit.request_from_args`` reads them back
        into an equal request.
        """
        args = ["fit", self.pet_path or "PET.nii.gz"]
        if self.two_scans:
            args += [
                "--challenge-pet",
                self.challenge_pet_path or "CHALLENGE_PET.nii.gz",
            ]
        if self.ref_mask_path:
            args += ["--ref-mask", self.ref_mask_path]
        else:
            args += ["--labels", self.labels_path or "LABELS.nii.gz"]
        if self.lut_path:
            args += ["--lut", self.lut_path]
        if self.reference is not None:
            args += ["--ref-label", str(self.reference)]
        args += ["--model", self.model]
        for start, end in self.windows_min:
            args += ["--window", _number(start), _number(end)]
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
        default_out = "OUT.tsv" if self.rois_only else "OUT.nii.gz"
        return [*args, "--out", self.out or default_out]

    def command_line(self) -> str:
        """The equivalent shell command."""
        import shlex

        return shlex.join(["napari-mor", *self.to_argv()])

    def model_options(self, k2p: K2pChoice) -> dict:
        """Keyword arguments for the kinetics fitting functions."""
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
@dataclass(frozen=True)
class FitData:
    """The loaded, checked inputs of a fit (all on the PET grid).

    Attributes
    ----------
    pet : DynamicPET
        The (baseline) scan.
    challenge : DynamicPET or None
        The challenge scan of a two-scan fit.
    labels : LabelImage or None
        ROI set on the PET grid.
    ref_mask : ndarray of bool, shape (x, y, z)
        Reference-region voxels.
    ref_label : int or None
        Reference label value (None for a mask file).
    reference_description : str
        How the reference was defined, e.g. ``"label 8 (occipital_ref)"``.
    brain_mask : ndarray of bool or None
        Voxels for maps (None: decided by the request's ``mask``).
    input_files : dict of str to str
        Source files by role (``pet``, ``labels``, ...), for provenance.
    """

    pet: DynamicPET
    challenge: DynamicPET | None
    labels: LabelImage | None
    ref_mask: np.ndarray
    ref_label: int | None
    reference_description: str
    brain_mask: np.ndarray | None = None
    input_files: dict = field(default_factory=dict)

    def scans(self) -> dict[str, DynamicPET]:
        """The scan each condition of a two-scan fit uses."""
        return dict(zip(TWO_SCAN_CONDITIONS, (self.pet, self.challenge), strict=True))


def resolve_reference(labels: LabelImage, reference: int | str | None) -> int:
    """The label value of the reference region: the ONE rule.

    Parameters
    ----------
    labels : LabelImage
        ROI set (its LUT names the regions).
    reference : int, str or None
        A label value; a region name (exact, case-insensitive) or a text the
        name contains; None for the region named like "occipital".

    Returns
    -------
    label : int
        Present in ``labels``.
    """
    from napari_mor.rois import find_label

    present = {int(v) for v in labels.present_labels}
    if isinstance(reference, str) and reference.strip().isdigit():
        reference = int(reference)  # "8" is label 8, as on the command line
    if isinstance(reference, int | np.integer) and not isinstance(reference, bool):
        label = int(reference)
    else:
        text = DEFAULT_REFERENCE_HINT if reference is None else str(reference)
        exact = [k for k, v in labels.lut.items() if str(v).lower() == text.lower()]
        label = exact[0] if exact else find_label(labels.lut, text)
        if label is None:
            names = ", ".join(labels.name_of(v) for v in sorted(present)) or "none"
            raise MorError(
                f"No region named like {text!r} in the ROI set (regions: {names}); "
                "choose the reference region (occipital cortex) by name or label."
            )
    if label not in present:
        raise MorError(
            f"The reference label {label} ({labels.name_of(label)}) has no voxels on "
            "the PET grid; pick another reference ROI or draw it."
        )
    return int(label)


def _check_same_scan_grid(base: DynamicPET, chal: DynamicPET) -> None:
    from napari_mor.io.grid import same_grid

    if base.data.shape != chal.data.shape or not same_grid(
        base.spatial_shape, base.affine, chal.spatial_shape, chal.affine
    ):
        raise MorError(
            f"Baseline PET {base.data.shape} and challenge PET {chal.data.shape} are "
            "not on the same grid with the same frame count; coregister / reframe "
            "the challenge scan onto the baseline first."
        )


def _check_windows_in_scan(windows: Sequence[tuple[float, float]], timing) -> None:
    scan_end = float(timing.frame_end_min[-1])
    for start, end in windows:
        if end > scan_end + _WINDOW_TOLERANCE_MIN:
            raise MorError(
                f"Window {start:g}-{end:g} min lies outside the scan (0-{scan_end:g} "
                "min); choose limits within the scan."
            )


def _on_pet_grid(mask: np.ndarray, pet: DynamicPET, what: str) -> np.ndarray:
    mask = np.asarray(mask) > 0
    if mask.shape != pet.spatial_shape:
        raise MorError(
            f"{what} has shape {mask.shape} but the PET volume is {pet.spatial_shape}; "
            "use one on the PET grid."
        )
    return mask


def prepare_fit_data(
    request: FitRequest,
    pet: DynamicPET,
    *,
    labels: LabelImage | None = None,
    ref_mask: np.ndarray | None = None,
    ref_mask_name: str | None = None,
    challenge: DynamicPET | None = None,
    brain_mask: np.ndarray | None = None,
    input_files: Mapping[str, str | Path] | None = None,
    on_empty: str = "raise",
) -> FitData:
    """Check the inputs of a request and put them on the PET grid.

    Parameters
    ----------
    request : FitRequest
    pet : DynamicPET
        The (baseline) scan, decay-corrected.
    labels : LabelImage, optional
        ROI set on any grid (resampled nearest-neighbour onto the PET grid).
    ref_mask : ndarray of bool, shape (x, y, z), optional
        Reference mask on the PET grid (instead of a reference label).
    ref_mask_name : str, optional
        How to name the mask in provenance.
    challenge : DynamicPET, optional
        Challenge scan (two-scan requests), same grid and frames as ``pet``.
    brain_mask : ndarray, optional
        Voxels for maps, on the PET grid.
    input_files : mapping of str to path, optional
        Source files by role, for provenance.
    on_empty : {"raise", "drop"}
        Regions that vanish when resampling the labels.

    Returns
    -------
    FitData
    """
    from napari_mor.rois import labels_on_grid

    for scan in (pet, challenge):
        if scan is not None:
            scan.require_decay_corrected()
    if request.two_scans:
        if challenge is None:
            raise MorError(
                "A two-scan fit needs the challenge PET; give it (--challenge-pet, "
                "or pick the challenge layer)."
            )
        _check_same_scan_grid(pet, challenge)
    elif challenge is not None:
        raise MorError(
            "A challenge scan was given but the request is not a two-scan fit; "
            "choose two scans or drop the challenge PET."
        )
    _check_windows_in_scan(request.windows_min, pet.timing)
    if labels is not None:
        labels = labels_on_grid(
            labels, pet.spatial_shape, pet.affine, on_empty=on_empty
        )
    if ref_mask is not None:
        ref = _on_pet_grid(ref_mask, pet, "The reference mask")
        ref_label, description = None, f"mask {ref_mask_name or 'reference mask'}"
    elif labels is not None:
        ref_label = resolve_reference(labels, request.reference)
        ref = labels.data == ref_label
        description = f"label {ref_label} ({labels.name_of(ref_label)})"
    else:
        raise MorError(
            "No reference region: give an ROI set with the reference (occipital "
            "cortex) or a reference mask."
        )
    if request.rois_only and labels is None:
        raise MorError("ROI fits need an ROI set (labels); give --labels.")
    if brain_mask is not None:
        brain_mask = _on_pet_grid(brain_mask, pet, "The brain mask")
    return FitData(
        pet=pet,
        challenge=challenge,
        labels=labels,
        ref_mask=ref,
        ref_label=ref_label,
        reference_description=description,
        brain_mask=brain_mask,
        input_files={k: str(v) for k, v in (input_files or {}).items() if v},
    )


def load_fit_data(request: FitRequest) -> FitData:
    """Read the files a request names and prepare them (:func:`prepare_fit_data`)."""
    from napari_mor.io import load_labels, load_pet, load_volume

    if request.pet_path is None:
        raise MorError("No PET file given; pass the 4D PET NIfTI.")
    if request.labels_path is None and request.ref_mask_path is None:
        raise MorError(
            "Give --labels LABELS.nii.gz (with the reference region) or --ref-mask."
        )
    if request.ref_mask_path and (request.lut_path or request.reference is not None):
        raise MorError(
            "--ref-label and --lut go with --labels; with --ref-mask the mask itself "
            "is the reference. Drop them or use --labels."
        )

    def pet_file(path):
        return load_pet(path, frames_tsv=request.frames_path, units=request.units)

    pet = pet_file(request.pet_path)
    challenge = pet_file(request.challenge_pet_path) if request.two_scans else None
    labels = (
        load_labels(request.labels_path, request.lut_path)
        if request.labels_path
        else None
    )
    ref_mask = (
        load_volume(request.ref_mask_path).data > 0 if request.ref_mask_path else None
    )
    brain = None
    if request.mask not in (None, UPTAKE_MASK):
        brain = load_volume(request.mask).data > 0
    files = {
        "pet": request.pet_path,
        "challenge_pet": request.challenge_pet_path if request.two_scans else None,
        "frames": request.frames_path,
        "labels": request.labels_path,
        "lut": request.lut_path,
        "ref_mask": request.ref_mask_path,
        "mask": request.mask if brain is not None else None,
    }
    return prepare_fit_data(
        request,
        pet,
        labels=labels,
        ref_mask=ref_mask,
        ref_mask_name=Path(request.ref_mask_path).name
        if request.ref_mask_path
        else None,
        challenge=challenge,
        brain_mask=brain,
        input_files=files,
    )


# --------------------------------------------------------------- ROI TACs
@dataclass(frozen=True)
class RoiTacs:
    """TACs of the target ROIs and the reference of one scan.

    Attributes
    ----------
    names : list of str
    labels : ndarray of int, shape (n_rois,)
    tacs_kbq_ml : ndarray, shape (n_frames, n_rois)
    ref_kbq_ml : ndarray, shape (n_frames,)
    n_voxels : ndarray of int, shape (n_rois,)
    timing : FrameTiming
    """

    names: list[str]
    labels: np.ndarray
    tacs_kbq_ml: np.ndarray
    ref_kbq_ml: np.ndarray
    n_voxels: np.ndarray
    timing: FrameTiming


def reference_tac(data: FitData, pet: DynamicPET | None = None) -> np.ndarray:
    """Mean reference TAC of a scan (non-finite voxels left out), kBq/mL."""
    from napari_mor.rois import mask_mean_tac

    return mask_mean_tac(
        data.pet if pet is None else pet,
        data.ref_mask,
        f"The reference region {data.reference_description}",
    )


def roi_tacs(data: FitData, pet: DynamicPET | None = None) -> RoiTacs:
    """Mean TACs of every labelled ROI except the reference, and the reference TAC.

    Parameters
    ----------
    data : FitData
        With an ROI set.
    pet : DynamicPET, optional
        The scan (default ``data.pet``; the challenge scan of a two-scan fit).
    """
    from napari_mor.rois import extract_tacs

    pet = data.pet if pet is None else pet
    if data.labels is None:
        raise MorError("ROI fits need an ROI set (labels).")
    table = extract_tacs(pet, data.labels)
    present = [int(v) for v in table.labels]
    keep = [i for i, v in enumerate(present) if v != data.ref_label]
    if not keep:
        raise MorError(
            "The ROI set has no regions besides the reference; add target ROIs."
        )
    return RoiTacs(
        names=[table.names[i] for i in keep],
        labels=np.asarray([present[i] for i in keep], dtype=np.int64),
        tacs_kbq_ml=np.ascontiguousarray(table.mean_kbq_ml[:, keep]),
        ref_kbq_ml=(
            table.mean_kbq_ml[:, present.index(data.ref_label)]
            if data.ref_label in present
            else reference_tac(data, pet)
        ),
        n_voxels=table.n_voxels[keep],
        timing=table.timing,
    )


# ------------------------------------------------------------------- k2'
@dataclass(frozen=True)
class K2pChoice:
    """The k2' every condition of a subject shares, and where it came from.

    Attributes
    ----------
    value : float or None
        k2', 1/min (None: the model does not use it).
    source : str
        e.g. ``"given"``, ``"MRTM on 'midline_thalamus' (label 5), window
        0-45 min"``.
    """

    value: float | None
    source: str


def _model_uses_k2p(model: str) -> bool:
    from napari_mor.kinetics import MODELS

    return MODELS[model].k2p != "no"


def _window_text(window: tuple[float, float] | None) -> str:
    return "baseline scan" if window is None else f"frames {window[0]:g}-{window[1]:g}"


def k2p_window(request: FitRequest) -> tuple[float, float] | None:
    """Frames k2' is estimated on: injection to the end of the baseline window.

    The whole baseline scan for two scans (None). Early frames carry most of
    the information on k2' and precede any challenge, so a baseline window that
    starts late (e.g. 20-45 min) still estimates k2' from 0-45 min.
    """
    window = request.baseline_window
    return None if window is None else (0.0, float(window[1]))


def shared_k2p(request: FitRequest, data: FitData) -> K2pChoice:
    """The ONE k2' policy: one value per subject, from the baseline, for all conditions.

    k2' belongs to the reference region and does not change with the challenge,
    so it is fixed once, on the baseline (:func:`k2p_window`: injection to the
    end of the first window, or the whole baseline scan), and shared by every
    window and scan:

    1. a given ``k2p_per_min``;
    2. ``k2p_region``: MRTM on that region's mean TAC (Ichise 2003; biased low
       for slowly dissociating tracers, see docs/kinetics.md);
    3. automatic: the k2' that the ROI TACs share under the full reference
       tissue model (:func:`napari_mor.kinetics.k2p.k2p_from_rois`); with fewer
       than two target ROIs, the same on composite TACs of the high-binding
       voxels of the map mask
       (:func:`napari_mor.kinetics.k2p.k2p_from_high_binding_voxels`).

    Models without k2' (MRTM, SRTM, SRTM-BF, ratio) get ``value=None``.
    """
    from napari_mor import kinetics
    from napari_mor.kinetics.k2p import k2p_from_high_binding_voxels, k2p_from_rois
    from napari_mor.rois import mask_mean_tac

    if not _model_uses_k2p(request.model):
        return K2pChoice(None, "not used by the model")
    if request.k2p_per_min is not None:
        return K2pChoice(float(request.k2p_per_min), "given")
    window = k2p_window(request)
    where = _window_text(window)
    ref = reference_tac(data)
    if request.k2p_region is not None:
        if data.labels is None:
            raise MorError("A k2' region needs an ROI set (labels) to find it in.")
        label = _region_label(data.labels, request.k2p_region)
        name = data.labels.name_of(label)
        tac = mask_mean_tac(data.pet, data.labels.data == label, f"k2' region {name}")
        value = kinetics.estimate_k2p(
            tac, ref, data.pet.timing, window=window, t_star_min=request.t_star_min
        )
        return K2pChoice(value, f"MRTM on {name!r} (label {label}), {where}")
    if data.labels is not None and len(data.labels.present_labels) > 2:
        tacs = roi_tacs(data)
        value, how = k2p_from_rois(
            tacs.tacs_kbq_ml, tacs.ref_kbq_ml, tacs.timing, tacs.names, window=window
        )
        return K2pChoice(value, how)
    mask = _map_mask(request, data) & ~data.ref_mask
    value, how = k2p_from_high_binding_voxels(
        data.pet.data, mask, ref, data.pet.timing, window=window
    )
    return K2pChoice(value, how)


def _region_label(labels: LabelImage, region: int | str) -> int:
    try:
        return resolve_reference(labels, region)
    except MorError as err:
        raise MorError(
            f"k2' region {region!r}: {err} Choose a high-binding region that is in "
            "the ROI set."
        ) from None


def _map_mask(request: FitRequest, data: FitData) -> np.ndarray:
    """Voxels fitted by maps: a brain mask, the uptake mask or the labelled voxels."""
    if data.brain_mask is not None:
        return data.brain_mask
    if request.mask == UPTAKE_MASK:
        return uptake_mask(data.pet, UPTAKE_FRACTION)
    if request.mask is not None:
        raise MorError(
            f"The brain mask {request.mask!r} was not loaded; give a mask image on "
            "the PET grid."
        )
    if data.labels is None:
        raise MorError(
            "A map needs a brain mask: pass --mask BRAIN.nii.gz (or --labels, whose "
            "labelled voxels are then used)."
        )
    return data.labels.data > 0


def uptake_mask(pet: DynamicPET, fraction: float = UPTAKE_FRACTION) -> np.ndarray:
    """Voxels whose mean activity is at least ``fraction`` of its 99th percentile.

    A quick head/brain mask for voxelwise maps when no brain mask is loaded.

    Parameters
    ----------
    pet : DynamicPET
    fraction : float
        Threshold as a fraction (0-1) of the 99th percentile of the
        duration-weighted mean image.

    Returns
    -------
    mask : ndarray of bool, shape (x, y, z)
    """
    if not 0 < fraction < 1:
        raise MorError(f"Mask fraction must be between 0 and 1; got {fraction!r}.")
    weights = pet.timing.frame_duration_s / pet.timing.frame_duration_s.sum()
    mean = np.tensordot(weights, np.nan_to_num(pet.data.astype(np.float64)), axes=1)
    return mean >= fraction * np.percentile(mean, 99)


def mask_description(request: FitRequest, data: FitData) -> str:
    """How the map voxels were chosen (for provenance)."""
    if data.brain_mask is not None:
        return f"mask {Path(request.mask).name}" if request.mask else "brain mask"
    if request.mask == UPTAKE_MASK:
        return f"PET uptake >= {UPTAKE_FRACTION:.0%} of p99"
    return "labelled voxels"


# ------------------------------------------------------------------ ROI fits
@dataclass(frozen=True)
class RoiFitResult:
    """ROI fits of every condition with the k2' and reference they used.

    Attributes
    ----------
    fits : dict of str to list of RoiFit
        Per condition, one fit per ROI (order of ``tacs[condition].names``).
    tacs : dict of str to RoiTacs
        The TACs fitted, per condition.
    k2p : K2pChoice
    reference : str
        Reference description.
    warnings : tuple of str
        Violated model assumptions (:mod:`napari_mor.workflows.validity`).
    """

    fits: dict[str, list[RoiFit]]
    tacs: dict[str, RoiTacs]
    k2p: K2pChoice
    reference: str
    warnings: tuple[str, ...] = ()

    @property
    def labels(self) -> list[int]:
        """ROI label values, in fit order."""
        return [int(v) for v in next(iter(self.tacs.values())).labels]


def fit_rois(request: FitRequest, data: FitData) -> RoiFitResult:
    """Fit every ROI in every condition (windows of one scan, or two scans).

    Parameters
    ----------
    request : FitRequest
    data : FitData
        With an ROI set (:func:`prepare_fit_data`).

    Returns
    -------
    RoiFitResult
    """
    from napari_mor import kinetics
    from napari_mor.workflows.validity import check_roi_fits

    k2p = shared_k2p(request, data)
    options = request.model_options(k2p)
    if request.two_scans:
        tacs = {c: roi_tacs(data, scan) for c, scan in data.scans().items()}
        fits = {
            c: kinetics.fit_roi(
                t.tacs_kbq_ml,
                t.ref_kbq_ml,
                t.timing,
                request.model,
                names=t.names,
                **options,
            )
            for c, t in tacs.items()
        }
        return RoiFitResult(
            fits, tacs, k2p, data.reference_description, check_roi_fits(fits, tacs)
        )
    scan_tacs = roi_tacs(data)
    fits = {
        condition: kinetics.fit_roi(
            scan_tacs.tacs_kbq_ml,
            scan_tacs.ref_kbq_ml,
            scan_tacs.timing,
            request.model,
            names=scan_tacs.names,
            window=request.window_of(condition),
            **options,
        )
        for condition in request.conditions
    }
    tacs = dict.fromkeys(fits, scan_tacs)
    return RoiFitResult(
        fits, tacs, k2p, data.reference_description, check_roi_fits(fits, tacs)
    )


def fit_table_rows(result: RoiFitResult) -> list[dict]:
    """One row per ROI and condition (columns :data:`FIT_COLUMNS`)."""
    rows = []
    for condition, per_roi in result.fits.items():
        for fit, label in zip(per_roi, result.labels, strict=True):
            window = fit.window_min or (np.nan, np.nan)
            rows.append(
                {
                    "condition": condition,
                    "name": fit.name,
                    "label": int(label),
                    "model": fit.model,
                    "BP_ND": fit.bp_nd,
                    "BP_ND_se": fit.bp_nd_se,
                    "R1": fit.params.get("r1", np.nan),
                    "R1_se": fit.se.get("r1", np.nan),
                    "k2": fit.params.get("k2_per_min", np.nan),
                    "k2_se": fit.se.get("k2_per_min", np.nan),
                    "k2p": fit.k2p_per_min,
                    "k2p_source": result.k2p.source,
                    "t_star_min": fit.t_star_min,
                    "window_start_min": float(window[0]),
                    "window_end_min": float(window[1]),
                    "n_frames": fit.n_frames,
                    "r2": fit.r2,
                }
            )
    return rows


def logan_x_at_t_star(fit: RoiFit, timing: FrameTiming) -> float:
    """Logan-plot abscissa at t* (for drawing the t* line); NaN when undefined."""
    if fit.model != "logan" or not np.isfinite(fit.t_star_min):
        return float("nan")
    x = np.asarray(fit.x, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return float("nan")
    return float(np.interp(fit.t_star_min, timing.frame_mid_min[ok], x[ok]))
