"""The delta-BP use case: two BP_ND maps -> delta-BP, percent delta-BP, ROI means.

Delta-BP_ND = BP_baseline - BP_challenge; positive = reduced availability during the
challenge (activation, endogenous opioid release). ``napari-mor delta``, the Delta-BP
dock and the demo all call :func:`compute_delta`, so their maps and sidecars agree.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import (
    DEFAULT_PCT_DELTA_ESTIMATOR,
    MIN_BP_BASE,
    PCT_DELTA_ESTIMATORS,
)
from napari_mor.io._nifti import read_map_sidecar
from napari_mor.io.volume import LabelImage
from napari_mor.kinetics import RoiFit

__all__ = [
    "DEFINITION",
    "DELTA_COLUMNS",
    "DeltaRequest",
    "DeltaResult",
    "compute_delta",
    "delta_rows_from_fits",
    "read_map_sidecar",
    "roi_mean_delta",
    "run_delta",
    "write_roi_delta",
]

#: The definition written into every delta sidecar.
DEFINITION = "BP_baseline - BP_challenge (positive = reduced availability)"

#: Fields of the input maps' provenance repeated on the delta map when they agree.
SHARED_FIELDS = (
    "Model",
    "ReferenceRegion",
    "WindowsMin",
    "K2PrimePerMin",
    "K2PrimeSource",
    "Weights",
    "BrainMask",
    "TwoScans",
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


@dataclass(frozen=True)
class DeltaRequest:
    """What ``napari-mor delta`` (and the Delta-BP dock) computes.

    Parameters
    ----------
    baseline_path, challenge_path : str, optional
        BP_ND maps (NIfTI with sidecars); placeholders in the command when unknown.
    out : str, optional
        Delta-BP map file.
    percent_out : str, optional
        Percent delta-BP map file.
    min_bp_base : float
        Minimum baseline BP_ND for percent delta-BP.
    labels_path, lut_path : str, optional
        ROIs (label image, its LUT; default the LUT beside it) for ``rois_out``.
    rois_out : str, optional
        Per-ROI table (``.tsv``, :data:`DELTA_COLUMNS`): delta-BP and percent
        delta-BP from the region means of the two maps (:func:`roi_mean_delta`).
    bids_out : str, optional
        A BIDS derivatives folder: the maps (and ``rois_out`` with labels) get
        BEP023 names there, from the baseline map's BEP023 name
        (``..._meas-deltaBPND_mimap.nii.gz``, ``..._meas-pctdeltaBPND_...``,
        ``..._desc-delta_kinpar.tsv``).
    pct_estimator : {"guided-ratio", "smoothed-ratio", "voxel-ratio"}
        How the percent map is made (:func:`napari_mor.delta_estimators.pct_delta_map`):
        the default regularises numerator and denominator so that region means
        of the map agree with the ratio of region means under noise.
    """

    baseline_path: str | None = None
    challenge_path: str | None = None
    out: str | None = None
    percent_out: str | None = None
    min_bp_base: float = MIN_BP_BASE
    labels_path: str | None = None
    lut_path: str | None = None
    rois_out: str | None = None
    pct_estimator: str = DEFAULT_PCT_DELTA_ESTIMATOR
    bids_out: str | None = None

    def __post_init__(self) -> None:
        if self.pct_estimator not in PCT_DELTA_ESTIMATORS:
            raise MorError(
                f"Unknown percent delta-BP estimator {self.pct_estimator!r}; choose "
                f"one of {', '.join(PCT_DELTA_ESTIMATORS)}."
            )
        if not (np.isfinite(self.min_bp_base) and self.min_bp_base >= 0):
            raise MorError(
                f"The minimum baseline BP_ND must be a number >= 0; got "
                f"{self.min_bp_base!r}."
            )

    def to_argv(self) -> list[str]:
        """The equivalent ``napari-mor delta`` arguments (after the program name)."""
        args = [
            "delta",
            self.baseline_path or "BASELINE_BP.nii.gz",
            self.challenge_path or "CHALLENGE_BP.nii.gz",
        ]
        if self.bids_out:
            args += ["--bids-out", self.bids_out]
        else:
            args += ["--out", self.out or "DELTA.nii.gz"]
        if self.percent_out:
            args += ["--percent", self.percent_out]
        if self.min_bp_base != MIN_BP_BASE:
            args += ["--min-bp-base", f"{self.min_bp_base:g}"]
        if self.labels_path:
            args += ["--labels", self.labels_path]
        if self.lut_path:
            args += ["--lut", self.lut_path]
        if self.rois_out:
            args += ["--rois", self.rois_out]
        if self.pct_estimator != DEFAULT_PCT_DELTA_ESTIMATOR:
            args += ["--pct-estimator", self.pct_estimator]
        return args

    def with_bids_names(self) -> DeltaRequest:
        """This request with its outputs named as BEP023 derivatives in ``bids_out``."""
        from dataclasses import replace

        from napari_mor.io.bids_derivatives import (
            derivative_folder,
            parse_bids_map_name,
        )

        parsed = parse_bids_map_name(self.baseline_path or "")
        if parsed is None or parsed["meas"] != "BPND":
            raise MorError(
                f"--bids-out names the delta maps after the baseline map, which must "
                f"have a BEP023 name (<source>_model-<MODEL>_meas-BPND_desc-baseline_"
                f"mimap.nii.gz, as 'napari-mor fit --bids-out' writes); got "
                f"{self.baseline_path}. Use --out instead."
            )
        folder = derivative_folder(self.bids_out, parsed["stem"])
        base = f"{parsed['stem']}_model-{parsed['model']}"
        return replace(
            self,
            out=str(folder / f"{base}_meas-deltaBPND_mimap.nii.gz"),
            percent_out=str(folder / f"{base}_meas-pctdeltaBPND_mimap.nii.gz"),
            rois_out=str(folder / f"{base}_desc-delta_kinpar.tsv")
            if self.labels_path
            else None,
        )

    def command_line(self) -> str:
        """The equivalent shell command."""
        return shlex.join(["napari-mor", *self.to_argv()])


@dataclass(frozen=True)
class DeltaResult:
    """Delta maps with their provenance.

    Attributes
    ----------
    delta_bp_nd, pct_delta_bp_nd : ndarray, shape (x, y, z), float32
    affine : ndarray, shape (4, 4)
    provenance : dict
        Shared by both maps (add ``Quantity`` per map: :meth:`provenance_of`).
    """

    delta_bp_nd: np.ndarray
    pct_delta_bp_nd: np.ndarray
    affine: np.ndarray
    provenance: dict

    def provenance_of(self, quantity: str) -> dict:
        """Sidecar of one map (``"delta_bp_nd"`` or ``"pct_delta_bp_nd"``)."""
        return {**self.provenance, "Quantity": quantity}


def compute_delta(
    bp_base: np.ndarray,
    bp_chal: np.ndarray,
    affine: np.ndarray,
    challenge_affine: np.ndarray,
    *,
    sources: Mapping[str, str | Path | None] | None = None,
    provenance: Mapping[str, Mapping | None] | None = None,
    min_bp_base: float = MIN_BP_BASE,
    pct_estimator: str = DEFAULT_PCT_DELTA_ESTIMATOR,
) -> DeltaResult:
    """Delta-BP and percent delta-BP of two BP_ND maps on one grid, with provenance.

    Parameters
    ----------
    bp_base, bp_chal : ndarray, shape (x, y, z)
        Baseline and challenge BP_ND (NaN: no value).
    affine, challenge_affine : ndarray, shape (4, 4)
        Their grids (must agree).
    sources : mapping, optional
        ``{"baseline": path, "challenge": path}``: files hashed in provenance
        (missing or None entries are left out).
    provenance : mapping, optional
        ``{"baseline": dict, "challenge": dict}``: the input maps' own provenance
        (default: read from the sidecars of ``sources``).
    min_bp_base : float
        Percent delta is NaN where BP_baseline < this.
    pct_estimator : str
        See :func:`napari_mor.delta_estimators.pct_delta_map` (recorded in the
        provenance as ``PctDeltaEstimator`` and ``PctDeltaDefinition``).

    Returns
    -------
    DeltaResult
    """
    from napari_mor.delta_estimators import pct_delta_description, pct_delta_map
    from napari_mor.io.grid import same_grid
    from napari_mor.maps import delta_bp, map_provenance

    if not same_grid(np.shape(bp_base), affine, np.shape(bp_chal), challenge_affine):
        raise MorError(
            "The baseline and challenge BP_ND maps are not on the same grid (shape "
            f"{np.shape(bp_base)} vs {np.shape(bp_chal)}, or different affines); both "
            "must be on the same PET grid."
        )
    sources = {k: v for k, v in (sources or {}).items() if v and Path(v).is_file()}
    inputs = dict(provenance or {})
    for condition in ("baseline", "challenge"):
        if inputs.get(condition) is None:
            inputs[condition] = read_map_sidecar(sources.get(condition))
    shared = _shared_fields(inputs["baseline"], inputs["challenge"])
    prov = map_provenance(
        input_files=sources,
        **shared,
        Definition=DEFINITION,
        Baseline=inputs["baseline"],
        Challenge=inputs["challenge"],
        MinBPBase=float(min_bp_base),
        **pct_delta_description(pct_estimator),
    )
    pct = pct_delta_map(
        bp_base, bp_chal, affine, estimator=pct_estimator, min_bp_base=min_bp_base
    )
    return DeltaResult(
        delta_bp_nd=delta_bp(bp_base, bp_chal),
        pct_delta_bp_nd=pct,
        affine=np.asarray(affine, dtype=np.float64),
        provenance=prov,
    )


def _shared_fields(base: Mapping | None, chal: Mapping | None) -> dict:
    """Fields both input maps record with the same value (model, reference, ...)."""
    if not base or not chal:
        return {}
    return {
        key: base[key]
        for key in SHARED_FIELDS
        if key in base and key in chal and base[key] == chal[key]
    }


def run_delta(request: DeltaRequest) -> list[Path]:
    """Read two BP_ND maps, compute delta-BP and write the maps with sidecars."""
    from napari_mor.io import load_volume
    from napari_mor.maps import write_map

    if request.baseline_path is None or request.challenge_path is None:
        raise MorError("Give the baseline and the challenge BP_ND maps.")
    if request.bids_out:
        request = request.with_bids_names()
    outs = [p for p in (request.out, request.percent_out) if p]
    if not outs:
        raise MorError("Give an output file (--out DELTA.nii.gz).")
    for out in outs:
        if not str(out).lower().endswith((".nii", ".nii.gz")):
            raise MorError(f"Output {out} must end in .nii.gz or .nii.")
    _check_roi_options(request)
    from napari_mor.io.outputs import check_outputs

    check_outputs(
        {
            "BASELINE": request.baseline_path,
            "CHALLENGE": request.challenge_path,
            "--labels": request.labels_path,
            "--lut": request.lut_path,
        },
        {
            "--out": request.out,
            "--percent": request.percent_out,
            "--rois": request.rois_out,
        },
    )
    base = load_volume(request.baseline_path, keep_nan=True)
    chal = load_volume(request.challenge_path, keep_nan=True)
    result = compute_delta(
        base.data,
        chal.data,
        base.affine,
        chal.affine,
        sources={
            "baseline": request.baseline_path,
            "challenge": request.challenge_path,
        },
        min_bp_base=request.min_bp_base,
        pct_estimator=request.pct_estimator,
    )
    written = []
    if request.out:
        written.append(
            write_map(
                request.out,
                result.delta_bp_nd,
                result.affine,
                result.provenance_of("delta_bp_nd"),
            )
        )
    if request.percent_out:
        written.append(
            write_map(
                request.percent_out,
                result.pct_delta_bp_nd,
                result.affine,
                result.provenance_of("pct_delta_bp_nd"),
            )
        )
    if request.rois_out:
        written.append(write_roi_delta(request, base, chal, result))
    if request.bids_out:
        from napari_mor.io.bids_derivatives import write_dataset_description

        write_dataset_description(request.bids_out)
    return written


def _check_roi_options(request: DeltaRequest) -> None:
    """``--rois`` needs ``--labels``; ``--labels``/``--lut`` need ``--rois``."""
    if request.rois_out and not request.labels_path:
        raise MorError(
            "--rois writes the per-region delta-BP and needs the regions: add "
            "--labels LABELS.nii.gz (and --lut LUT.tsv unless it lies beside it)."
        )
    if (request.labels_path or request.lut_path) and not request.rois_out:
        raise MorError(
            "--labels/--lut are used for the per-region table; add --rois OUT.tsv."
        )
    if request.lut_path and not request.labels_path:
        raise MorError("--lut goes with --labels LABELS.nii.gz; give both.")
    if request.rois_out and not str(request.rois_out).lower().endswith(".tsv"):
        raise MorError(f"--rois {request.rois_out} must end in .tsv.")


def write_roi_delta(request: DeltaRequest, base, chal, result: DeltaResult) -> Path:
    """Write the per-ROI delta table of ``request.rois_out`` (region means).

    The labels are put on the maps' grid (nearest neighbour when they differ);
    percent delta-BP is ``100 (mean base - mean chal) / mean base`` per region
    (:func:`roi_mean_delta` with the BP maps), robust to noisy voxels.
    """
    from napari_mor.io import load_labels
    from napari_mor.io.tables import write_rows_tsv
    from napari_mor.rois import labels_on_grid

    labels = labels_on_grid(
        load_labels(request.labels_path, request.lut_path),
        np.shape(base.data),
        base.affine,
        on_empty="drop",
        target_name="the BP_ND maps",
    )
    rows = roi_mean_delta(
        result.delta_bp_nd,
        result.pct_delta_bp_nd,
        labels,
        base.data,
        chal.data,
        request.min_bp_base,
    )
    return write_rows_tsv(rows, DELTA_COLUMNS, request.rois_out)


def roi_mean_delta(
    delta: np.ndarray,
    pct: np.ndarray,
    labels: LabelImage,
    base: np.ndarray | None = None,
    chal: np.ndarray | None = None,
    min_bp_base: float = MIN_BP_BASE,
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


def delta_rows_from_fits(
    fits: Mapping[str, Sequence[RoiFit]],
    labels: Sequence[int],
    n_voxels: Sequence[int] | None = None,
    min_bp_base: float = MIN_BP_BASE,
) -> list[dict]:
    """Per-ROI delta-BP and percent delta-BP from ROI fits (:data:`DELTA_COLUMNS`).

    Parameters
    ----------
    fits : mapping of str to list of RoiFit
        Must hold ``"baseline"`` and ``"challenge"``, or the release model's
        ``"scan"`` (its BP_ND before and after the onset).
    labels : sequence of int
        ROI label values, in fit order.
    n_voxels : sequence of int, optional
        Voxels per ROI (-1 when unknown).
    min_bp_base : float
        See :func:`napari_mor.maps.pct_delta_bp`.
    """
    from napari_mor.maps import delta_bp, pct_delta_bp

    if "scan" in fits and hasattr(fits["scan"][0], "bp_nd_challenge"):
        per_roi = fits["scan"]  # the release model: BP_ND before and after the onset
        base = np.array([f.bp_nd for f in per_roi])
        chal = np.array([f.bp_nd_challenge for f in per_roi])
    elif "baseline" not in fits or "challenge" not in fits:
        raise MorError(
            f"Delta-BP needs 'baseline' and 'challenge' conditions; the fit has "
            f"{list(fits)}."
        )
    else:
        per_roi = fits["baseline"]
        base = np.array([f.bp_nd for f in per_roi])
        chal = np.array([f.bp_nd for f in fits["challenge"]])
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
            per_roi, labels, counts, delta, pct, base, chal, strict=True
        )
    ]
