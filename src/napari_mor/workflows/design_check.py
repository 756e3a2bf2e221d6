"""The design-bias check: what the user's method reads on the user's own scan.

From the ROI TACs of one scan, :func:`check_design` fits the no-release
two-tissue reference model to the frames before the challenge onset, simulates
the whole scan on the same frames at the same noise level (a) with no change and
(b) with a planted drop in receptor availability from the onset, runs the
request's method (its model, windows and k2' policy, exactly as ``fit`` runs it)
on every realisation, and reports the %delta-BP each would read. A no-change
reading beyond :data:`NO_CHANGE_LIMIT_PCT` is a warning: the design, not the
brain, would make that much "activation".
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import (
    DEFAULT_CHALLENGE_ONSET_MIN,
    DEFAULT_WINDOWS_MIN,
    RELEASE_MODEL,
    RELEASE_SHAPES,
)

if TYPE_CHECKING:
    from napari_mor.workflows.fit_data import RoiTacs
    from napari_mor.workflows.request import FitRequest

__all__ = [
    "DESIGN_COLUMNS",
    "NO_CHANGE_LIMIT_PCT",
    "DesignCheck",
    "check_design",
    "design_request",
    "design_tacs",
    "iter_check_design",
]

#: Largest acceptable |%delta-BP| read in a simulated scan with no change.
NO_CHANGE_LIMIT_PCT = 2.0

#: Columns of the design-check table (one row per region).
DESIGN_COLUMNS = (
    "name",
    "label",
    "model",
    "design",
    "onset_min",
    "BP_ND_fit",
    "noise_cv",
    "n_sim",
    "no_change_mean_pct",
    "no_change_sd_pct",
    "planted_pct",
    "drop_mean_pct",
    "drop_sd_pct",
    "drop_bias_pct",
)

#: Frames, and minutes, needed before the onset to fit the baseline model.
_MIN_BASELINE_FRAMES = 6
_MIN_BASELINE_MIN = 10.0


@dataclass(frozen=True)
class DesignCheck:
    """Result of :func:`check_design`.

    Attributes
    ----------
    rows : list of dict
        One per region (columns :data:`DESIGN_COLUMNS`).
    request : FitRequest
        The request whose method was run (windows filled in).
    onset_min : float
    warnings : tuple of str
        Regions whose no-change reading exceeds :data:`NO_CHANGE_LIMIT_PCT`.
    """

    rows: list[dict]
    request: FitRequest
    onset_min: float
    warnings: tuple[str, ...]


def design_request(request: FitRequest) -> FitRequest:
    """The request the check runs: one scan; windowed models get the default
    baseline/challenge windows when none are given."""
    if request.two_scans:
        raise MorError(
            "The design check is for one scan with a challenge inside it; a "
            "two-scan study fits each scan at its own steady state (drop "
            "--challenge-pet)."
        )
    if request.model == RELEASE_MODEL or len(request.windows_min) >= 2:
        return request
    if request.windows_min:
        raise MorError(
            "The design check compares a baseline and a challenge window; give two "
            "windows (--window START END twice) or none for the defaults."
        )
    return replace(request, windows_min=tuple(DEFAULT_WINDOWS_MIN.values()))


def design_tacs(request: FitRequest) -> RoiTacs:
    """The ROI TACs the check starts from: of the PET and labels, or a TAC table."""
    from napari_mor.workflows.fit import load_fit_data, roi_tacs, tacs_of_table

    if request.tacs_path:
        return tacs_of_table(request)[0]
    return roi_tacs(load_fit_data(request))


def _onset_of(request: FitRequest, onset_min: float | None) -> float:
    if onset_min is not None:
        return float(onset_min)
    if request.challenge_onset_min is not None:
        return request.challenge_onset_min
    return DEFAULT_CHALLENGE_ONSET_MIN


def check_design(request: FitRequest, tacs: RoiTacs, **options) -> DesignCheck:
    """Run :func:`iter_check_design` to the end (no progress); same arguments."""
    runs = iter_check_design(request, tacs, **options)
    while True:
        try:
            next(runs)
        except StopIteration as stop:
            return stop.value


def iter_check_design(
    request: FitRequest,
    tacs: RoiTacs,
    *,
    onset_min: float | None = None,
    planted_pct: float = 10.0,
    n_sim: int = 50,
    seed: int | None = 0,
) -> Generator[tuple[int, int], None, DesignCheck]:
    """Simulate no change and a planted drop on the user's scan; run the method.

    Parameters
    ----------
    request : FitRequest
        The method: model, windows (none: the defaults), k2' policy, weights.
    tacs : RoiTacs
        The scan's ROI TACs and reference TAC (kBq/mL).
    onset_min : float, optional
        Challenge onset, minutes from injection (default: the request's onset,
        else :data:`~napari_mor.defaults.DEFAULT_CHALLENGE_ONSET_MIN`). The
        baseline model is fitted on the frames that end before it.
    planted_pct : float
        Drop of receptor availability (k3) planted from the onset, percent.
    n_sim : int
        Noisy realisations of each scenario.
    seed : int, optional

    Yields
    ------
    (done, total) : tuple of int
        Simulated scans fitted (stop iterating to cancel).

    Returns
    -------
    DesignCheck
        The generator's return value.
    """
    from napari_mor.workflows.fit import _fit_windows
    from napari_mor.workflows.k2p_policy import shared_k2p_of_tacs

    run = design_request(request)
    onset = _onset_of(run, onset_min)
    _check_check_inputs(tacs, onset, planted_pct, n_sim)
    baseline = _fit_baseline(tacs, onset, run.k2p_per_min)
    clean = {
        "no_change": baseline.simulate(tacs, onset, 0.0),
        "drop": baseline.simulate(tacs, onset, planted_pct / 100.0),
    }
    rng = np.random.default_rng(seed)
    readings = {scenario: [] for scenario in clean}
    for done in range(n_sim):
        for scenario, tac in clean.items():
            noisy = tac + rng.standard_normal(tac.shape) * baseline.noise_sd
            sim = replace(tacs, tacs_kbq_ml=noisy)
            result = _fit_windows(
                run, sim, shared_k2p_of_tacs(run, sim), "measured", n_boot=0
            )
            readings[scenario].append(_pct_delta(result))
        yield done + 1, n_sim
    rows = _rows(run, tacs, onset, baseline, readings, planted_pct)
    warnings = tuple(
        f"{row['name']}: a scan with NO change reads {row['no_change_mean_pct']:+.1f} "
        f"% delta-BP with {run.model} (limit {NO_CHANGE_LIMIT_PCT:g}); the design "
        "makes this much apparent activation."
        for row in rows
        if abs(row["no_change_mean_pct"]) > NO_CHANGE_LIMIT_PCT
    )
    return DesignCheck(rows, run, onset, warnings)


def _check_check_inputs(tacs, onset: float, planted_pct: float, n_sim: int) -> None:
    end_min = float(tacs.timing.frame_end_s[-1]) / 60.0
    if not 0.0 < onset < end_min:
        raise MorError(
            f"The challenge onset {onset:g} min is outside the scan (0-{end_min:g} "
            "min); give --challenge-onset MIN inside it."
        )
    n_before = int(np.sum(tacs.timing.frame_end_s / 60.0 <= onset + 1e-6))
    if onset < _MIN_BASELINE_MIN:
        raise MorError(
            f"The onset at {onset:g} min leaves no baseline period to fit (the check "
            f"needs {_MIN_BASELINE_MIN:g} min before the challenge); give the "
            "challenge onset with --challenge-onset MIN."
        )
    if n_before < _MIN_BASELINE_FRAMES:
        raise MorError(
            f"Only {n_before} frames end before the onset at {onset:g} min; the "
            f"baseline fit needs {_MIN_BASELINE_FRAMES}. Start the challenge later."
        )
    if not (np.isfinite(planted_pct) and 0 < planted_pct < 100):
        raise MorError(f"The planted drop must be 0-100 %; got {planted_pct!r}.")
    if int(n_sim) < 2:
        raise MorError(f"Give at least 2 simulated scans; got {n_sim!r}.")


def _pct_delta(result) -> np.ndarray:
    """%delta-BP per ROI of a fit result (the release model's before/after, or two
    windows): the project's one definition, :func:`delta_rows_from_fits`."""
    from napari_mor.workflows.delta import delta_rows_from_fits

    rows = delta_rows_from_fits(result.fits, result.labels)
    return np.array([row["pct_delta_bp_nd"] for row in rows])


@dataclass(frozen=True)
class _Baseline:
    """The no-release fit of each region on the frames before the onset."""

    k2p_per_min: float
    rates: np.ndarray  # (3, n_rois): r1, k3, k4 (k2 = r1 k2')
    noise_sd: np.ndarray  # (n_frames, n_rois), kBq/mL

    def simulate(self, tacs, onset: float, drop: float) -> np.ndarray:
        from napari_mor.kinetics.transient import simulate_target

        r1, k3, k4 = self.rates
        shape, shape_min = RELEASE_SHAPES[0]
        return np.asarray(
            simulate_target(
                tacs.ref_kbq_ml,
                tacs.timing,
                k2p_per_min=self.k2p_per_min,
                r1=r1,
                k2_per_min=r1 * self.k2p_per_min,
                k3_per_min=k3,
                k4_per_min=k4,
                delta_k3_per_min=drop * k3,
                onset_min=onset,
                shape=shape,
                shape_min=shape_min,
            ),
            dtype=np.float64,
        ).reshape(tacs.tacs_kbq_ml.shape)


def _fit_baseline(tacs, onset: float, k2p_given: float | None) -> _Baseline:
    """Fit R1, k3, k4 (two-tissue target, k2 = R1 k2') to the frames before the onset.

    k2' is the given one, else the FRTM profile of the ROIs on those frames.
    The noise of each region is its weighted residual SD scaled per frame by the
    counting-statistics weights (:func:`napari_mor.kinetics.frame_weights`).
    """
    from scipy.optimize import least_squares

    from napari_mor.kinetics import frame_weights
    from napari_mor.kinetics.k2p import k2p_from_rois
    from napari_mor.kinetics.transient import simulate_target

    timing = tacs.timing
    before = timing.frame_end_s / 60.0 <= onset + 1e-6
    if k2p_given is None:
        k2p, _how = k2p_from_rois(
            tacs.tacs_kbq_ml, tacs.ref_kbq_ml, timing, tacs.names, window=(0.0, onset)
        )
    else:
        k2p = float(k2p_given)
    n_rois = tacs.tacs_kbq_ml.shape[1]
    rates = np.empty((3, n_rois))
    noise_sd = np.empty_like(tacs.tacs_kbq_ml, dtype=np.float64)
    for roi in range(n_rois):
        tac = tacs.tacs_kbq_ml[:, roi].astype(np.float64)
        root_w = np.sqrt(frame_weights(timing, "noise", tac))

        def residuals(p, tac=tac, root_w=root_w):
            model = simulate_target(
                tacs.ref_kbq_ml,
                timing,
                k2p_per_min=k2p,
                r1=p[0],
                k2_per_min=p[0] * k2p,
                k3_per_min=p[1],
                k4_per_min=p[2],
            )
            return ((np.ravel(model) - tac) * root_w)[before]

        fit = least_squares(
            residuals,
            x0=[1.0, 0.2, 0.08],
            bounds=([0.05, 0.0, 0.005], [5.0, 3.0, 1.0]),
            x_scale=[1.0, 0.1, 0.05],
        )
        rates[:, roi] = fit.x
        dof = max(int(before.sum()) - 3, 1)
        sigma = float(np.sqrt(np.sum(fit.fun**2) / dof))
        noise_sd[:, roi] = sigma / root_w
    return _Baseline(k2p, rates, noise_sd)


def _rows(run, tacs, onset, baseline, readings, planted_pct) -> list[dict]:
    no_change = np.asarray(readings["no_change"])  # (n_sim, n_rois)
    drop = np.asarray(readings["drop"])
    k3, k4 = baseline.rates[1:]
    mean_tac = np.mean(np.abs(tacs.tacs_kbq_ml), axis=0)
    design = "release model" if run.model == RELEASE_MODEL else _windows_text(run)
    rows = []
    for roi, name in enumerate(tacs.names):
        rows.append(
            {
                "name": name,
                "label": int(tacs.labels[roi]),
                "model": run.model,
                "design": design,
                "onset_min": onset,
                "BP_ND_fit": float(k3[roi] / k4[roi]),
                "noise_cv": float(
                    np.mean(baseline.noise_sd[:, roi]) / max(mean_tac[roi], 1e-12)
                ),
                "n_sim": no_change.shape[0],
                "no_change_mean_pct": float(np.nanmean(no_change[:, roi])),
                "no_change_sd_pct": float(np.nanstd(no_change[:, roi], ddof=1)),
                "planted_pct": float(planted_pct),
                "drop_mean_pct": float(np.nanmean(drop[:, roi])),
                "drop_sd_pct": float(np.nanstd(drop[:, roi], ddof=1)),
                "drop_bias_pct": float(np.nanmean(drop[:, roi]) - planted_pct),
            }
        )
    return rows


def _windows_text(run) -> str:
    return "windows " + ", ".join(f"{s:g}-{e:g}" for s, e in run.windows_min)
