"""Inputs, equivalent CLI commands and per-ROI summaries for the fit and delta docks.

Qt-free and napari-free: the "Kinetic fit" and "Delta-BP" docks collect their
widget values into :class:`FitInputs` / :class:`DeltaInputs`, call the pure
functions here (which call :mod:`napari_mor.kinetics`, :mod:`napari_mor.rois`
and :mod:`napari_mor.maps`), and only turn the results into layers and tables.
Times are minutes from injection.
"""

from __future__ import annotations

import csv
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.pet import DynamicPET
from napari_mor.io.timing import FrameTiming
from napari_mor.io.volume import LabelImage
from napari_mor.kinetics import MapResult, RoiFit

__all__ = [
    "DEFAULT_WINDOWS_MIN",
    "DeltaInputs",
    "FitInputs",
    "MapJob",
    "RoiTacs",
    "check_same_scan_grid",
    "check_windows_in_scan",
    "delta_rows_from_fits",
    "find_reference_label",
    "fit_rois",
    "fit_table_rows",
    "labels_on_grid",
    "logan_x_at_t_star",
    "map_jobs",
    "map_metadata",
    "roi_mean_delta",
    "roi_tacs",
    "symmetric_limits",
    "threshold_abs",
    "uptake_mask",
    "value_at_world",
    "write_rows_tsv",
]

#: The usual single-scan bolus+infusion split (minutes from injection).
DEFAULT_WINDOWS_MIN: dict[str, tuple[float, float]] = {
    "baseline": (0.0, 45.0),
    "challenge": (45.0, 90.0),
}

#: Columns of the ROI fit table (one row per ROI and condition).
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
    "t_star_min",
    "window_start_min",
    "window_end_min",
    "n_frames",
    "r2",
)

#: Columns of the per-ROI delta-BP table.
DELTA_COLUMNS = (
    "name",
    "label",
    "n_voxels",
    "delta_bp_nd",
    "pct_delta_bp_nd",
    "bp_nd_baseline",
    "bp_nd_challenge",
)

#: Tolerance (min) when checking that a window lies inside the scan.
_WINDOW_TOLERANCE_MIN = 1e-6


# ---------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class FitInputs:
    """What the "Kinetic fit" dock asks for, in core units.

    Parameters
    ----------
    model : str
        One of :data:`napari_mor.kinetics.MODEL_NAMES`.
    ref_label : int
        Label value of the reference region (occipital cortex).
    ref_name : str
        Its name (LUT).
    windows_min : mapping of str to (float, float), optional
        Condition windows of one scan, minutes. ``None``: fit the whole scan
        (``two_scans`` False) or each of the two scans whole (``two_scans`` True).
    two_scans : bool
        Baseline and challenge are separate PET scans.
    t_star_min : float, optional
        t*, minutes (None: automatic for Logan / none).
    k2p_per_min : float, optional
        k2', 1/min (None: estimated where a model needs it).
    weights : {"none", "duration", "noise"}
        Frame weighting.
    pet_path, challenge_pet_path, labels_path, lut_path, mask_path : str, optional
        Source files (for provenance and the equivalent command).
    """

    model: str
    ref_label: int
    ref_name: str
    windows_min: Mapping[str, tuple[float, float]] | None = None
    two_scans: bool = False
    t_star_min: float | None = None
    k2p_per_min: float | None = None
    weights: str = "none"
    pet_path: str | None = None
    challenge_pet_path: str | None = None
    labels_path: str | None = None
    lut_path: str | None = None
    mask_path: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from napari_mor.kinetics import MODEL_NAMES

        if self.model not in MODEL_NAMES:
            raise MorError(
                f"Unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}."
            )
        if self.weights not in ("none", "duration", "noise"):
            raise MorError(
                f"Unknown weighting {self.weights!r}; choose none, duration or noise."
            )
        if self.two_scans and self.windows_min:
            raise MorError(
                "Two scans are fitted whole; do not give condition windows as well."
            )

    @property
    def conditions(self) -> list[str]:
        """Condition names, in order (``["scan"]`` for a whole single scan)."""
        if self.two_scans:
            return ["baseline", "challenge"]
        if self.windows_min:
            return list(self.windows_min)
        return ["scan"]

    def window_of(self, condition: str) -> tuple[float, float] | None:
        """The window (minutes) of a condition, None when the whole scan is used."""
        if self.two_scans or not self.windows_min:
            return None
        return tuple(float(v) for v in self.windows_min[condition])

    def core_options(self) -> dict:
        """Keyword arguments shared by :func:`fit_roi` and :func:`iter_fit_blocks`."""
        return {
            "t_star_min": self.t_star_min,
            "k2p_per_min": self.k2p_per_min,
            "weights": self.weights,
        }

    def cli_commands(self, out_stem: str = "OUT", rois_only: bool = False) -> list[str]:
        """Equivalent ``napari-mor fit`` command lines, one per condition.

        Parameters
        ----------
        out_stem : str
            Output stem; each condition writes ``OUT_<condition>.nii.gz``
            (``.tsv`` with ``rois_only``).
        rois_only : bool
            ROI table instead of maps.

        Returns
        -------
        commands : list of str
            Shell-quoted commands (paths unknown to the dock appear as
            ``PET.nii.gz``, ``LABELS.nii.gz``, ...).
        """
        commands = []
        suffix = ".tsv" if rois_only else ".nii.gz"
        for condition in self.conditions:
            pet = self.pet_path or "PET.nii.gz"
            if self.two_scans and condition == "challenge":
                pet = self.challenge_pet_path or "CHALLENGE_PET.nii.gz"
            args = ["napari-mor", "fit", pet]
            args += ["--labels", self.labels_path or "LABELS.nii.gz"]
            if self.lut_path:
                args += ["--lut", self.lut_path]
            args += ["--ref-label", str(self.ref_label), "--model", self.model]
            window = self.window_of(condition)
            if window is not None:
                args += ["--window", f"{window[0]:g}", f"{window[1]:g}"]
            if self.t_star_min is not None:
                args += ["--t-star", f"{self.t_star_min:g}"]
            if self.k2p_per_min is not None:
                args += ["--k2p", f"{self.k2p_per_min:g}"]
            if self.weights != "none":
                args += ["--weights", self.weights]
            if rois_only:
                args.append("--rois-only")
            elif self.mask_path:
                args += ["--mask", self.mask_path]
            args += ["--out", f"{out_stem}_{condition}{suffix}"]
            commands.append(shlex.join(args))
        return commands


@dataclass(frozen=True)
class DeltaInputs:
    """What the "Delta-BP" dock asks for.

    Parameters
    ----------
    baseline_path, challenge_path : str, optional
        Saved BP_ND maps (placeholders in the command when unknown).
    threshold : float
        Hide ``|delta-BP_ND|`` below this (display only).
    min_bp_base : float
        Minimum baseline BP_ND for percent delta-BP.
    """

    baseline_path: str | None = None
    challenge_path: str | None = None
    threshold: float = 0.0
    min_bp_base: float = 0.1

    def cli_command(
        self, out: str = "DELTA.nii.gz", percent: str | None = "PCT_DELTA.nii.gz"
    ) -> str:
        """The equivalent ``napari-mor delta`` command line."""
        args = [
            "napari-mor",
            "delta",
            self.baseline_path or "BASELINE_BP.nii.gz",
            self.challenge_path or "CHALLENGE_BP.nii.gz",
            "--out",
            out,
        ]
        if percent:
            args += ["--percent", percent]
        if self.min_bp_base != 0.1:
            args += ["--min-bp-base", f"{self.min_bp_base:g}"]
        return shlex.join(args)


# ------------------------------------------------------------------- checks
def find_reference_label(lut: Mapping[int, str], hint: str = "occipital") -> int | None:
    """The first label whose name contains ``hint`` (case-insensitive), or None."""
    for label in sorted(int(k) for k in lut):
        if hint.lower() in str(lut[label]).lower():
            return label
    return None


def check_windows_in_scan(
    windows_min: Mapping[str, tuple[float, float]], timing: FrameTiming
) -> None:
    """Raise :class:`MorError` when a condition window is not inside the scan.

    Parameters
    ----------
    windows_min : mapping of str to (float, float)
        Condition windows, minutes from injection.
    timing : FrameTiming
        Frame timing of the scan.
    """
    scan_end = float(timing.frame_end_min[-1])
    for name, (start, end) in windows_min.items():
        if not end > start:
            raise MorError(
                f"Window {name!r} {start:g}-{end:g} min is empty: the end must be "
                "after the start."
            )
        if start < 0 or end > scan_end + _WINDOW_TOLERANCE_MIN:
            raise MorError(
                f"Window {name!r} {start:g}-{end:g} min lies outside the scan "
                f"(0-{scan_end:g} min); choose limits within the scan."
            )


def check_same_scan_grid(base: DynamicPET, chal: DynamicPET) -> None:
    """Raise :class:`MorError` unless two scans share grid and frame timing."""
    if base.data.shape != chal.data.shape:
        raise MorError(
            f"Baseline PET has shape {base.data.shape} but challenge PET has "
            f"{chal.data.shape}; both scans must be on the same grid with the same "
            "frames (resample / reframe one of them first)."
        )
    if not np.allclose(base.affine, chal.affine, atol=1e-3):
        raise MorError(
            "Baseline and challenge PET have different affines; coregister the "
            "challenge scan onto the baseline grid first."
        )


def labels_on_grid(labels: LabelImage, pet: DynamicPET) -> LabelImage:
    """The labels on the PET grid (nearest-neighbour resampling when needed)."""
    from napari_mor.rois import resample_labels

    same = labels.data.shape == pet.spatial_shape and np.allclose(
        labels.affine, pet.affine, atol=1e-3
    )
    if same:
        return labels
    return resample_labels(labels, pet.spatial_shape, pet.affine)


# --------------------------------------------------------------------- ROIs
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


def roi_tacs(pet: DynamicPET, labels: LabelImage, ref_label: int) -> RoiTacs:
    """Mean TACs of every labelled ROI except the reference, plus the reference TAC.

    Parameters
    ----------
    pet : DynamicPET
    labels : LabelImage
        ROI set (any grid; resampled onto the PET grid when needed).
    ref_label : int
        Reference label value.

    Returns
    -------
    RoiTacs
    """
    from napari_mor.rois import extract_tacs

    table = extract_tacs(pet, labels_on_grid(labels, pet))
    present = [int(v) for v in table.labels]
    if int(ref_label) not in present:
        raise MorError(
            f"The reference label {ref_label} has no voxels on the PET grid; pick "
            "another reference ROI or draw it."
        )
    ref_index = present.index(int(ref_label))
    keep = [i for i in range(len(present)) if i != ref_index]
    if not keep:
        raise MorError(
            "The ROI set has no regions besides the reference; add target ROIs."
        )
    return RoiTacs(
        names=[table.names[i] for i in keep],
        labels=np.asarray([present[i] for i in keep], dtype=np.int64),
        tacs_kbq_ml=table.mean_kbq_ml[:, keep],
        ref_kbq_ml=table.mean_kbq_ml[:, ref_index],
        n_voxels=table.n_voxels[keep],
        timing=table.timing,
    )


def with_shared_k2p(inputs: FitInputs, tacs: RoiTacs) -> FitInputs:
    """Inputs with k2' fixed once for every condition, ROI fits and maps alike.

    k2' "auto" for a model that uses it (Logan, MRTM2, SRTM2) is estimated by
    MRTM on the highest-binding ROI over the first condition (the baseline
    window, or the whole baseline scan): k2' is a reference-region constant,
    while binding changes at the challenge. A given k2' is kept.
    """
    from napari_mor.kinetics import MODELS, estimate_k2p_from_rois

    if inputs.k2p_per_min is not None or MODELS[inputs.model].k2p == "no":
        return inputs
    window = inputs.window_of(inputs.conditions[0])
    k2p = estimate_k2p_from_rois(
        tacs.tacs_kbq_ml,
        tacs.ref_kbq_ml,
        tacs.timing,
        window=window,
        t_star_min=inputs.t_star_min,
    )
    return replace(inputs, k2p_per_min=k2p)


def with_k2p_used(inputs: FitInputs, fits: Mapping[str, Sequence]) -> FitInputs:
    """Inputs whose k2' is the one the fits used (so the CLI line reproduces them).

    ``fits`` maps conditions to RoiFit or MapResult lists (anything with
    ``k2p_per_min``); a single finite k2' across them is written into the inputs.
    """
    if inputs.k2p_per_min is not None:
        return inputs
    used = {f.k2p_per_min for fit_list in fits.values() for f in fit_list}
    used = {k for k in used if np.isfinite(k)}
    return replace(inputs, k2p_per_min=used.pop()) if len(used) == 1 else inputs


def fit_rois(
    inputs: FitInputs,
    pet: DynamicPET,
    labels: LabelImage,
    pet_challenge: DynamicPET | None = None,
) -> tuple[dict[str, list[RoiFit]], dict[str, RoiTacs]]:
    """Fit every ROI in every condition (windows of one scan, or two scans).

    Returns
    -------
    fits : dict of str to list of RoiFit
        Per condition, one fit per ROI (order of ``tacs[condition].names``).
    tacs : dict of str to RoiTacs
        The TACs fitted, per condition.
    """
    from napari_mor import kinetics

    for scan in (pet, pet_challenge):
        if scan is not None:
            scan.require_decay_corrected()
    if inputs.two_scans:
        if pet_challenge is None:
            raise MorError("Two-scan mode needs a challenge PET layer; pick one.")
        check_same_scan_grid(pet, pet_challenge)
        base = roi_tacs(pet, labels, inputs.ref_label)
        chal = roi_tacs(pet_challenge, labels, inputs.ref_label)
        options = with_shared_k2p(inputs, base).core_options()
        fits = kinetics.fit_two_scans(
            (base.tacs_kbq_ml, base.ref_kbq_ml, base.timing),
            (chal.tacs_kbq_ml, chal.ref_kbq_ml, chal.timing),
            inputs.model,
            names=base.names,
            **options,
        )
        return fits, {"baseline": base, "challenge": chal}
    if inputs.windows_min:
        check_windows_in_scan(inputs.windows_min, pet.timing)
    tacs = roi_tacs(pet, labels, inputs.ref_label)
    options = with_shared_k2p(inputs, tacs).core_options()
    if inputs.windows_min:
        fits = kinetics.fit_windows(
            tacs.tacs_kbq_ml,
            tacs.ref_kbq_ml,
            tacs.timing,
            inputs.model,
            dict(inputs.windows_min),
            names=tacs.names,
            **options,
        )
    else:
        fits = {
            "scan": kinetics.fit_roi(
                tacs.tacs_kbq_ml,
                tacs.ref_kbq_ml,
                tacs.timing,
                inputs.model,
                names=tacs.names,
                **options,
            )
        }
    return fits, dict.fromkeys(fits, tacs)


def fit_table_rows(
    fits: Mapping[str, Sequence[RoiFit]], labels: Sequence[int]
) -> list[dict]:
    """One row per ROI and condition (columns :data:`FIT_COLUMNS`)."""
    rows = []
    for condition, per_roi in fits.items():
        for fit, label in zip(per_roi, labels, strict=True):
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
                    "t_star_min": fit.t_star_min,
                    "window_start_min": float(window[0]),
                    "window_end_min": float(window[1]),
                    "n_frames": fit.n_frames,
                    "r2": fit.r2,
                }
            )
    return rows


def delta_rows_from_fits(
    fits: Mapping[str, Sequence[RoiFit]],
    labels: Sequence[int],
    n_voxels: Sequence[int] | None = None,
    baseline: str = "baseline",
    challenge: str = "challenge",
    min_bp_base: float = 0.1,
) -> list[dict]:
    """Per-ROI delta-BP and percent delta-BP from ROI fits (:data:`DELTA_COLUMNS`).

    Uses :func:`napari_mor.maps.delta_bp` / :func:`napari_mor.maps.pct_delta_bp`;
    positive = reduced availability during the challenge.
    """
    from napari_mor.maps import delta_bp, pct_delta_bp

    if baseline not in fits or challenge not in fits:
        raise MorError(
            f"Delta-BP needs {baseline!r} and {challenge!r} conditions; the fit has "
            f"{list(fits)}."
        )
    base = np.array([f.bp_nd for f in fits[baseline]])
    chal = np.array([f.bp_nd for f in fits[challenge]])
    delta = delta_bp(base, chal)
    pct = pct_delta_bp(base, chal, min_bp_base)
    counts = np.full(base.size, -1) if n_voxels is None else np.asarray(n_voxels)
    return [
        {
            "name": fit.name,
            "label": int(label),
            "n_voxels": int(n),
            "delta_bp_nd": float(d),
            "pct_delta_bp_nd": float(p),
            "bp_nd_baseline": float(b),
            "bp_nd_challenge": float(c),
        }
        for fit, label, n, d, p, b, c in zip(
            fits[baseline], labels, counts, delta, pct, base, chal, strict=True
        )
    ]


def logan_x_at_t_star(fit: RoiFit, timing: FrameTiming) -> float:
    """Logan-plot abscissa at t* (for drawing the t* line); NaN when undefined."""
    if fit.model != "logan" or not np.isfinite(fit.t_star_min):
        return float("nan")
    x = np.asarray(fit.x, dtype=np.float64)
    mid = timing.frame_mid_min
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return float("nan")
    return float(np.interp(fit.t_star_min, mid[ok], x[ok]))


# --------------------------------------------------------------------- maps
@dataclass(frozen=True)
class MapJob:
    """One voxelwise fit: a condition on one scan, with the shared k2'."""

    condition: str
    pet: DynamicPET
    ref_kbq_ml: np.ndarray
    window_min: tuple[float, float] | None
    k2p_per_min: float | None = None

    def core_kwargs(self, inputs: FitInputs, mask: np.ndarray) -> dict:
        """Arguments for :func:`napari_mor.kinetics.iter_fit_blocks`."""
        return {
            "pet": self.pet.data,
            "mask": mask,
            "ref": self.ref_kbq_ml,
            "timing": self.pet.timing,
            "model": inputs.model,
            "window": self.window_min,
            **inputs.core_options(),
            "k2p_per_min": self.k2p_per_min,
        }


def _ref_tac(pet: DynamicPET, labels: LabelImage, ref_label: int) -> np.ndarray:
    from napari_mor.rois import mask_mean_tac

    ref_mask = labels_on_grid(labels, pet).data == int(ref_label)
    return mask_mean_tac(
        pet, ref_mask, f"The reference label {ref_label} (pick another reference ROI)"
    )


def map_jobs(
    inputs: FitInputs,
    pet: DynamicPET,
    labels: LabelImage,
    pet_challenge: DynamicPET | None = None,
) -> list[MapJob]:
    """The voxelwise fits to run, validated (windows inside the scan, grids)."""
    from napari_mor.kinetics import MODELS

    for scan in (pet, pet_challenge):
        if scan is not None:
            scan.require_decay_corrected()
    if MODELS[inputs.model].map_solver is None:
        raise MorError(
            f"Model {inputs.model!r} is fitted per ROI only; for maps choose "
            "'srtm-bf' (basis-function SRTM) or a linear model."
        )
    if inputs.two_scans:
        if pet_challenge is None:
            raise MorError("Two-scan mode needs a challenge PET layer; pick one.")
        check_same_scan_grid(pet, pet_challenge)
    elif inputs.windows_min:
        check_windows_in_scan(inputs.windows_min, pet.timing)
    k2p = _shared_k2p_for_maps(inputs, pet, labels)
    if inputs.two_scans:
        return [
            MapJob("baseline", pet, _ref_tac(pet, labels, inputs.ref_label), None, k2p),
            MapJob(
                "challenge",
                pet_challenge,
                _ref_tac(pet_challenge, labels, inputs.ref_label),
                None,
                k2p,
            ),
        ]
    ref = _ref_tac(pet, labels, inputs.ref_label)
    return [MapJob(c, pet, ref, inputs.window_of(c), k2p) for c in inputs.conditions]


def _shared_k2p_for_maps(
    inputs: FitInputs, pet: DynamicPET, labels: LabelImage
) -> float | None:
    """k2' for maps: given, or from the ROIs (as for ROI fits) when there are any."""
    from napari_mor.kinetics import MODELS

    if inputs.k2p_per_min is not None or MODELS[inputs.model].k2p == "no":
        return inputs.k2p_per_min
    try:
        tacs = roi_tacs(pet, labels, inputs.ref_label)
    except MorError:  # only the reference is drawn: the core estimates from voxels
        return None
    return with_shared_k2p(inputs, tacs).k2p_per_min


def uptake_mask(pet: DynamicPET, fraction: float = 0.25) -> np.ndarray:
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


def map_metadata(
    result: MapResult,
    inputs: FitInputs,
    condition: str,
    pet: DynamicPET,
    mask_name: str,
) -> dict:
    """Layer metadata / sidecar provenance of one BP_ND map.

    Includes model, reference region, window, t*, k2', software version and the
    source PET path (hashed when it exists on disk).
    """
    from napari_mor.io.writers import provenance_base
    from napari_mor.maps import map_provenance

    source = str(pet.path) if pet.path else None
    files = [source] if source and Path(source).is_file() else []
    prov = map_provenance(
        result,
        reference_region=f"label {inputs.ref_label} ({inputs.ref_name})",
        windows=dict(inputs.windows_min) if inputs.windows_min else None,
        input_files=files,
        Quantity="bp_nd",
        Condition=condition,
        Weights=inputs.weights,
        BrainMask=mask_name,
        TwoScans=inputs.two_scans,
    )
    base = provenance_base()
    return {
        "kind": "bp_map",
        "condition": condition,
        "model": result.model,
        "source_path": source,
        "software_version": base["SoftwareVersion"],
        "provenance": prov,
    }


# -------------------------------------------------------------------- delta
def symmetric_limits(
    values: np.ndarray, percentile: float = 99.0
) -> tuple[float, float]:
    """Contrast limits ``(-m, m)`` centred at 0; ``m`` a percentile of ``|values|``."""
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return -1.0, 1.0
    m = float(np.percentile(finite, percentile))
    m = m if m > 0 else float(finite.max()) or 1.0
    return -m, m


def threshold_abs(values: np.ndarray, threshold: float) -> np.ndarray:
    """A float32 copy with NaN where ``|value| < threshold`` (input unchanged)."""
    if not np.isfinite(threshold) or threshold < 0:
        raise MorError(f"Threshold must be a number >= 0; got {threshold!r}.")
    out = np.array(values, dtype=np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        out[np.abs(out) < threshold] = np.nan
    return out


def roi_mean_delta(
    delta: np.ndarray,
    pct: np.ndarray,
    labels: LabelImage,
    base: np.ndarray | None = None,
    chal: np.ndarray | None = None,
    min_bp_base: float = 0.1,
) -> list[dict]:
    """Mean delta-BP_ND and percent delta-BP_ND per ROI (finite voxels only).

    Parameters
    ----------
    delta, pct : ndarray, shape (x, y, z)
        Delta-BP_ND and percent delta-BP_ND maps.
    labels : LabelImage
        ROIs on the same grid (same shape).
    base, chal : ndarray, shape (x, y, z), optional
        BP_ND maps. When given, the percent column is the percent change of the
        ROI means, ``100 (mean base - mean chal) / mean base`` (NaN where the
        mean baseline BP_ND is below ``min_bp_base``, e.g. the reference), which
        is robust to noisy voxels; without them it is the mean of ``pct``.
    min_bp_base : float
        See :func:`napari_mor.maps.pct_delta_bp`.

    Returns
    -------
    rows : list of dict
        Columns :data:`DELTA_COLUMNS`; ``n_voxels`` counts finite delta voxels.
    """
    from napari_mor.maps import pct_delta_bp

    delta = np.asarray(delta, dtype=np.float64)
    if labels.data.shape != delta.shape:
        raise MorError(
            f"ROI labels have shape {labels.data.shape} but the delta-BP map has "
            f"{delta.shape}; use an ROI set on the PET grid."
        )
    lab = labels.data.ravel()
    present = labels.present_labels

    def means(values):
        if values is None:
            return np.full(present.size, np.nan), None
        flat = np.asarray(values, dtype=np.float64).ravel()
        ok = np.isfinite(flat) & (lab != 0)
        index = np.searchsorted(present, lab[ok])
        counts = np.bincount(index, minlength=present.size)
        sums = np.bincount(index, flat[ok], minlength=present.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), counts

    mean_delta, counts = means(delta)
    mean_pct, _ = means(pct)
    mean_base, _ = means(base)
    mean_chal, _ = means(chal)
    if base is not None and chal is not None:
        mean_pct = pct_delta_bp(mean_base, mean_chal, min_bp_base)
    return [
        {
            "name": labels.name_of(v),
            "label": int(v),
            "n_voxels": int(counts[i]),
            "delta_bp_nd": float(mean_delta[i]),
            "pct_delta_bp_nd": float(mean_pct[i]),
            "bp_nd_baseline": float(mean_base[i]),
            "bp_nd_challenge": float(mean_chal[i]),
        }
        for i, v in enumerate(present)
    ]


def value_at_world(
    data: np.ndarray, affine: np.ndarray, world_mm: Sequence[float]
) -> tuple[float, tuple[int, ...] | None]:
    """Value of a 3-D map at a world point (nearest voxel) and that voxel index.

    Returns ``(nan, None)`` outside the grid.
    """
    point = np.asarray(world_mm, dtype=np.float64)[-3:]
    voxel = np.linalg.solve(affine, np.append(point, 1.0))[:3]
    index = tuple(int(v) for v in np.round(voxel))
    if any(i < 0 or i >= n for i, n in zip(index, data.shape, strict=True)):
        return float("nan"), None
    return float(data[index]), index


# --------------------------------------------------------------------- TSV
def write_rows_tsv(rows: Sequence[Mapping], columns: Sequence[str], path) -> Path:
    """Write table rows as TSV (NaN as ``NaN``, floats with 6 significant digits)."""
    path = Path(path)
    if path.suffix.lower() != ".tsv":
        raise MorError(f"Tables are written as .tsv; got {path.name}.")

    def fmt(value) -> str:
        if isinstance(value, float | np.floating):
            return "NaN" if not np.isfinite(value) else f"{float(value):.6g}"
        return str(value)

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([fmt(row.get(c, "")) for c in columns])
    return path
