"""The release model in the fit use case: ROI fits, their table and their warnings.

``--model lpntpet`` (:data:`napari_mor.defaults.RELEASE_MODEL`) fits one scan
whole with :func:`napari_mor.kinetics.transient.fit_transient`: BP_ND before the
challenge onset, BP_ND after it and ``pct_delta_BP``, with the subject's shared
k2' (estimated on the frames before the onset, see
:func:`napari_mor.workflows.k2p_policy.k2p_window`). The result is a
:class:`~napari_mor.workflows.fit.RoiFitResult` with one condition, ``scan``,
whose fits are :class:`~napari_mor.kinetics.transient.TransientFit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from napari_mor.workflows.fit import RoiFitResult
    from napari_mor.workflows.fit_data import RoiTacs
    from napari_mor.workflows.k2p_policy import K2pChoice
    from napari_mor.workflows.request import FitRequest

__all__ = [
    "RELEASE_COLUMNS",
    "SEARCHED_ONSET_WARNING",
    "fit_release_tacs",
    "release_table_rows",
]

#: Columns of the release model's ROI table (one row per ROI).
RELEASE_COLUMNS = (
    "condition",
    "name",
    "label",
    "model",
    "BP_ND",
    "BP_ND_challenge",
    "pct_delta_BP",
    "onset_min",
    "peak_min",
    "shape",
    "p_release",
    "AIC",
    "AIC_null",
    "k2p",
    "k2p_source",
    "n_frames",
)

#: Said when the onset is searched rather than given.
SEARCHED_ONSET_WARNING = (
    "The challenge onset was searched (no --challenge-onset): the estimate spreads "
    "several times more under noise and k2' comes from the frames before "
    "{start:g} min only; give the known challenge time (docs/transient.md)."
)


def fit_release_tacs(
    request: FitRequest,
    tacs: RoiTacs,
    k2p: K2pChoice,
    reference: str,
    *,
    n_boot: int | None = None,
) -> RoiFitResult:
    """Fit the release model to every ROI TAC of one scan.

    Parameters
    ----------
    request : FitRequest
        With ``model == "lpntpet"`` (``challenge_onset_min`` fixed or None).
    tacs : RoiTacs
        The scan's ROI TACs and reference TAC.
    k2p : K2pChoice
        The subject's shared k2'.
    reference : str
        Reference description.
    n_boot : int, optional
        Bootstrap replicates of the release test (None: the kinetics default;
        0: the nominal F p-value, for simulations).

    Returns
    -------
    RoiFitResult
        One condition, ``"scan"``.
    """
    from napari_mor.kinetics.transient import fit_transient
    from napari_mor.workflows.fit import RoiFitResult
    from napari_mor.workflows.request import RELEASE_SEARCH_START_MIN

    options = request.model_options(k2p)
    if n_boot is not None:
        options["n_boot"] = n_boot
    fits = fit_transient(
        tacs.tacs_kbq_ml, tacs.ref_kbq_ml, tacs.timing, names=tacs.names, **options
    )
    warnings = ()
    if request.challenge_onset_min is None:
        warnings = (SEARCHED_ONSET_WARNING.format(start=RELEASE_SEARCH_START_MIN),)
    return RoiFitResult({"scan": fits}, {"scan": tacs}, k2p, reference, warnings)


def release_table_rows(result: RoiFitResult) -> list[dict]:
    """One row per ROI (columns :data:`RELEASE_COLUMNS`)."""
    rows = []
    for condition, per_roi in result.fits.items():
        for fit, label in zip(per_roi, result.labels, strict=True):
            row = fit.as_row()
            rows.append(
                {
                    **{key: row.get(key, np.nan) for key in RELEASE_COLUMNS},
                    "condition": condition,
                    "label": int(label),
                    "k2p_source": result.k2p.source,
                }
            )
    return rows
