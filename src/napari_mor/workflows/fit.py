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

from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import RELEASE_MODEL
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics import RoiFit
from napari_mor.workflows.fit_data import (
    FitData,
    RoiTacs,
    _check_windows_in_scan,
    load_fit_data,
    mask_description,
    prepare_fit_data,
    reference_tac,
    resolve_reference,
    roi_tacs,
    uptake_mask,
)
from napari_mor.workflows.k2p_policy import K2pChoice, k2p_window, shared_k2p
from napari_mor.workflows.request import (
    UPTAKE_FRACTION,
    UPTAKE_MASK,
    FitRequest,
    condition_names,
)

__all__ = [
    "FIT_COLUMNS",
    "UPTAKE_FRACTION",
    "UPTAKE_MASK",
    "FitData",
    "FitRequest",
    "K2pChoice",
    "RoiFitResult",
    "RoiTacs",
    "condition_names",
    "fit_rois",
    "fit_rois_from_table",
    "fit_table_rows",
    "k2p_window",
    "load_fit_data",
    "logan_x_at_t_star",
    "mask_description",
    "prepare_fit_data",
    "reference_tac",
    "resolve_reference",
    "roi_tacs",
    "shared_k2p",
    "table_columns",
    "tacs_of_table",
    "uptake_mask",
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


@dataclass(frozen=True)
class RoiFitResult:
    """ROI fits of every condition with the k2' and reference they used.

    Attributes
    ----------
    fits : dict of str to list of RoiFit (or TransientFit)
        Per condition, one fit per ROI (order of ``tacs[condition].names``);
        the release model has one condition, ``scan``, of
        :class:`~napari_mor.kinetics.transient.TransientFit`.
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
    def model(self) -> str:
        """The model fitted."""
        return next(iter(self.fits.values()))[0].model

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
    return _fit_windows(request, roi_tacs(data), k2p, data.reference_description)


def _fit_windows(
    request, scan_tacs, k2p, reference: str, *, n_boot: int | None = None
) -> RoiFitResult:
    """Fit the conditions (windows, or the whole scan) of one scan's TACs.

    ``n_boot``: bootstrap replicates of the release model's test (None: its
    default).
    """
    from napari_mor import kinetics
    from napari_mor.workflows.validity import check_roi_fits

    if request.model == RELEASE_MODEL:
        from napari_mor.workflows.release import fit_release_tacs

        return fit_release_tacs(request, scan_tacs, k2p, reference, n_boot=n_boot)
    options = request.model_options(k2p)
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
    return RoiFitResult(fits, tacs, k2p, reference, check_roi_fits(fits, tacs))


def fit_rois_from_table(request: FitRequest) -> RoiFitResult:
    """ROI fits of a TAC table (``request.tacs_path``): no images needed.

    The reference is the column named by ``request.reference`` (see
    :func:`tacs_of_table`); every other region column is a target. k2' follows
    the same policy as for images
    (:func:`~napari_mor.workflows.k2p_policy.shared_k2p_of_tacs`).

    Parameters
    ----------
    request : FitRequest
        With ``tacs_path`` (ROI fits of one scan: windows or the whole scan).

    Returns
    -------
    RoiFitResult
        Labels are the columns' order (1..n).
    """
    from napari_mor.workflows.k2p_policy import shared_k2p_of_tacs

    tacs, reference = tacs_of_table(request)
    k2p = shared_k2p_of_tacs(request, tacs)
    return _fit_windows(request, tacs, k2p, reference)


def tacs_of_table(request: FitRequest) -> tuple[RoiTacs, str]:
    """The target and reference TACs of a TAC table, and the reference's description.

    The reference is the column named by ``request.reference`` (exact name, or a
    text it contains; default the column named like "occipital").
    """
    from napari_mor.defaults import DEFAULT_REFERENCE_HINT
    from napari_mor.rois.tacs import read_tacs_tsv

    table = read_tacs_tsv(request.tacs_path)
    _check_windows_in_scan(request.windows_min, table.timing)
    text = str(request.reference or DEFAULT_REFERENCE_HINT)
    exact = [n for n in table.names if n.lower() == text.lower()]
    near = [n for n in table.names if text.lower() in n.lower()]
    if not (exact or near):
        raise MorError(
            f"No TAC column named like {text!r} in {request.tacs_path} (columns: "
            f"{', '.join(table.names)}); name the reference with --ref-column."
        )
    ref_name = (exact or near)[0]
    keep = [i for i, n in enumerate(table.names) if n != ref_name]
    if not keep:
        raise MorError("The TAC table has no regions besides the reference.")
    tacs = RoiTacs(
        names=[table.names[i] for i in keep],
        labels=table.labels[keep],
        tacs_kbq_ml=np.ascontiguousarray(table.mean_kbq_ml[:, keep]),
        ref_kbq_ml=table.mean_kbq_ml[:, table.names.index(ref_name)],
        n_voxels=table.n_voxels[keep],
        timing=table.timing,
    )
    return tacs, f"column {ref_name}"


def table_columns(model: str) -> tuple[str, ...]:
    """Columns of the ROI table of a model (:data:`FIT_COLUMNS`, or the release
    model's :data:`~napari_mor.workflows.release.RELEASE_COLUMNS`)."""
    if model == RELEASE_MODEL:
        from napari_mor.workflows.release import RELEASE_COLUMNS

        return RELEASE_COLUMNS
    return FIT_COLUMNS


def fit_table_rows(result: RoiFitResult) -> list[dict]:
    """One row per ROI and condition (columns :func:`table_columns` of the model)."""
    if result.model == RELEASE_MODEL:
        from napari_mor.workflows.release import release_table_rows

        return release_table_rows(result)
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
