"""ROI-level fits: one or several TACs, condition windows, baseline/challenge scans."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from napari_mor._errors import MorError, MorWarning
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics._base import Batch, Setup
from napari_mor.kinetics._checks import as_tac_matrix, check_not_flat
from napari_mor.kinetics._linalg import fit_quality
from napari_mor.kinetics._setup import get_model, make_setup
from napari_mor.kinetics.results import RoiFit

__all__ = [
    "estimate_k2p",
    "estimate_k2p_from_rois",
    "fit_roi",
    "fit_scans",
    "fit_two_scans",
    "fit_windows",
]

#: Parameter names every RoiFit reports (NaN when the model lacks them).
_PARAM_NAMES = (
    "bp_nd",
    "r1",
    "k2_per_min",
    "k2p_per_min",
    "k2a_per_min",
    "dvr",
    "intercept_min",
)


def fit_roi(
    tac: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    model: str,
    *,
    names: Sequence[str] | None = None,
    window: tuple[float, float] | None = None,
    t_star_min: float | None = None,
    k2p_per_min: float | None = None,
    weights: str | np.ndarray = "none",
    theta_range_per_min: tuple[float, float] = (0.01, 1.0),
    n_theta: int = 100,
    logan_tolerance: float = 0.10,
) -> list[RoiFit]:
    """Fit a reference-region model to one or more ROI TACs.

    Parameters
    ----------
    tac : ndarray, shape (n_frames,) or (n_frames, n_tacs)
        Frame-averaged tissue activity (e.g. kBq/mL), one column per ROI.
    ref : ndarray, shape (n_frames,)
        Reference-region (occipital cortex) TAC, same unit.
    timing : FrameTiming
        Frame timing; integrals always run from injection over all frames.
    model : {"logan", "mrtm", "mrtm2", "srtm", "srtm2", "srtm-bf", "ratio"}
    names : sequence of str, optional
        ROI names (default ``roi_0``, ``roi_1``, ...).
    window : (float, float), optional
        Condition window, minutes: only frames whose mid-time lies inside are
        fitted.
    t_star_min : float, optional
        Frames with mid-time before t* (min) are not fitted. Logan: found
        automatically per ROI when omitted (:func:`logan_t_star`).
    k2p_per_min : float, optional
        Reference efflux k2' (1/min). Logan: adds the ``Cref/k2'`` term.
        MRTM2/SRTM2: fixed k2'; when omitted it is estimated with MRTM on the
        TAC with the highest MRTM BP_ND (:func:`estimate_k2p`).
    weights : {"none", "duration", "noise"} or ndarray, shape (n_frames,)
        Frame weighting (:func:`frame_weights`); ``"noise"`` uses each ROI's TAC.
    theta_range_per_min, n_theta
        Basis functions for SRTM/SRTM2 (start values) and SRTM-BF.
    logan_tolerance : float
        Linearity tolerance for automatic t*.

    Returns
    -------
    fits : list of RoiFit
        One per column, in order.

    Notes
    -----
    Model equations (``Ct`` tissue, ``Cr`` reference, integrals from injection):

    - Logan: ``int Ct / Ct = DVR (int Cr + Cr/k2') / Ct + b`` for t >= t*,
      ``BP_ND = DVR - 1`` (without k2' the ``Cr/k2'`` term is dropped, the
      usual "no k2'" approximation, valid once ``Ct/Cr`` is nearly constant).
    - MRTM: ``Ct = g1 int Cr + g2 int Ct + g3 Cr``; ``BP_ND = -g1/g2 - 1``,
      ``k2' = g1/g3``, ``R1 = g3``, ``k2 = g1``.
    - MRTM2: ``Ct = g1 (int Cr + Cr/k2') + g2 int Ct``; ``BP_ND = -g1/g2 - 1``,
      ``R1 = g1/k2'``.
    - SRTM: ``Ct = R1 Cr + (k2 - R1 k2a) Cr * exp(-k2a t)``,
      ``k2a = k2 / (1 + BP_ND)``, nonlinear least squares on (R1, k2, BP_ND).
    - SRTM2: SRTM with ``k2 = R1 k2'`` (k2' fixed), parameters (R1, BP_ND).
    - SRTM-BF: SRTM linearised on basis functions ``Cr * exp(-theta t)``.
    - Ratio: ``BP_ND = mean(Ct) / mean(Cr) - 1`` over the window
      (duration-weighted means), valid at equilibrium (bolus+infusion).

    Standard errors: weighted least-squares covariance ``s^2 (X^T W X)^-1`` and
    the delta method (linear models), ``s^2 (J^T J)^-1`` from the Jacobian
    (SRTM, SRTM2); NaN for SRTM-BF and ratio.

    References
    ----------
    Logan J et al. (1996) J Cereb Blood Flow Metab 16:834-840.
    Ichise M et al. (2003) J Cereb Blood Flow Metab 23:1096-1112.
    Lammertsma AA, Hume SP (1996) NeuroImage 4:153-158.
    Gunn RN et al. (1997) NeuroImage 6:279-287.
    Wu Y, Carson RE (2002) J Cereb Blood Flow Metab 22:1440-1452.
    """
    spec = get_model(model)
    tac = as_tac_matrix(tac, timing)
    names = _check_names(names, tac.shape[1])
    if not np.all(np.isfinite(tac)):
        bad = sorted(
            {names[i] for i in np.flatnonzero(~np.all(np.isfinite(tac), axis=0))}
        )
        raise MorError(
            f"TAC(s) {bad} contain NaN/Inf; check the ROI masks (empty or outside "
            "the PET field of view) before fitting."
        )
    for i in range(tac.shape[1]):
        check_not_flat(tac[:, i : i + 1], f"TAC {names[i]!r}")
    options = {
        "window": window,
        "t_star_min": t_star_min,
        "weights": weights,
        "theta_range_per_min": theta_range_per_min,
        "n_theta": n_theta,
        "logan_tolerance": logan_tolerance,
    }
    if spec.k2p == "required" and k2p_per_min is None:
        k2p_per_min = estimate_k2p_from_rois(
            tac, ref, timing, window=window, t_star_min=t_star_min
        )
    per_roi = (model == "logan" and t_star_min is None) or (
        isinstance(weights, str) and weights == "noise"
    )
    if not per_roi:  # one setup for all ROIs: a single batched solve
        setup = make_setup(
            model, tac.mean(axis=1), ref, timing, k2p_per_min=k2p_per_min, **options
        )
        batch = spec.solver(tac, setup, True)
        return [_to_roifit(batch, setup, name, i) for i, name in enumerate(names)]
    fits = []
    for i, name in enumerate(names):  # loop over ROIs: own t* or noise weights
        setup = make_setup(
            model, tac[:, i], ref, timing, k2p_per_min=k2p_per_min, **options
        )
        fits.append(
            _to_roifit(spec.solver(tac[:, i : i + 1], setup, True), setup, name, 0)
        )
    return fits


def _check_names(names, n_tacs: int) -> list[str]:
    if names is None:
        return [f"roi_{i}" for i in range(n_tacs)]
    names = [str(n) for n in names]
    if len(names) != n_tacs:
        raise MorError(
            f"{len(names)} names given for {n_tacs} TAC columns; pass one name "
            "per column."
        )
    return names


def _to_roifit(batch: Batch, setup: Setup, name: str, i: int) -> RoiFit:
    mask = setup.fit_mask
    y, fitted = batch.y[:, i], batch.fitted[:, i]
    r2, aic = fit_quality(
        y[mask, None], fitted[mask, None], setup.w_fit, batch.n_params
    )
    if not batch.ok[i]:
        warnings.warn(
            f"{setup.model} fit of {name!r} failed (singular or non-finite); its "
            "parameters are NaN. Check the TAC and the window.",
            MorWarning,
            stacklevel=3,
        )
    nan = np.full(batch.ok.shape, np.nan)
    params = {k: float(batch.params.get(k, nan)[i]) for k in _PARAM_NAMES}
    if np.isfinite(setup.k2p_per_min):
        params["k2p_per_min"] = setup.k2p_per_min
    se = {k: float(batch.se.get(k, nan)[i]) for k in _PARAM_NAMES}
    return RoiFit(
        model=setup.model,
        name=name,
        bp_nd=params["bp_nd"],
        bp_nd_se=se["bp_nd"],
        params=params,
        se=se,
        t_star_min=setup.t_star_min,
        k2p_per_min=params["k2p_per_min"],
        window_min=setup.window_min,
        frame_mask=mask.copy(),
        n_frames=int(mask.sum()),
        r2=float(r2[0]),
        aic=float(aic[0]),
        x=batch.x[:, i].copy(),
        y=y.copy(),
        fitted=fitted.copy(),
        residuals=np.where(mask, y - fitted, np.nan),
    )


def estimate_k2p(
    tac_high: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    window: tuple[float, float] | None = None,
    t_star_min: float | None = None,
    weights: str | np.ndarray = "none",
) -> float:
    """Reference efflux k2' (1/min) from MRTM on a high-binding TAC.

    Parameters
    ----------
    tac_high : ndarray, shape (n_frames,)
        TAC of a high-binding region (e.g. thalamus or amygdala for carfentanil).
    ref : ndarray, shape (n_frames,)
    timing : FrameTiming
    window, t_star_min, weights
        As in :func:`fit_roi`.

    Returns
    -------
    k2p_per_min : float

    Notes
    -----
    ``k2' = g1 / g3`` of MRTM (Ichise 2003).
    """
    fit = fit_roi(
        tac_high,
        ref,
        timing,
        "mrtm",
        window=window,
        t_star_min=t_star_min,
        weights=weights,
    )[0]
    return _valid_k2p(fit.params["k2p_per_min"], "MRTM on the high-binding TAC")


def _valid_k2p(k2p: float, source: str) -> float:
    if not (np.isfinite(k2p) and k2p > 0):
        raise MorError(
            f"{source} gave k2' = {k2p:g} 1/min, which is not usable (must be > 0); "
            "pass k2' explicitly (--k2p VALUE) or use a higher-binding region."
        )
    return float(k2p)


def estimate_k2p_from_rois(
    tac: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    window: tuple[float, float] | None = None,
    t_star_min: float | None = None,
) -> float:
    """k2' (1/min) from MRTM on the highest-binding of several ROI TACs.

    Parameters
    ----------
    tac : ndarray, shape (n_frames, n_tacs)
        ROI TACs; the one with the highest MRTM BP_ND gives k2'.
    ref : ndarray, shape (n_frames,)
        Reference TAC.
    timing : FrameTiming
    window : (float, float), optional
        Frames used, minutes. For a challenge study use the baseline window:
        binding changes at the challenge, k2' (a reference-region constant) does
        not, and MRTM across the change is biased.
    t_star_min : float, optional
        MRTM t*, minutes.
    """
    fits = fit_roi(tac, ref, timing, "mrtm", window=window, t_star_min=t_star_min)
    bp = np.array([f.bp_nd for f in fits])
    if not np.any(np.isfinite(bp)):
        raise MorError(
            "Could not estimate k2' with MRTM (all fits failed); pass k2' explicitly."
        )
    best = fits[int(np.nanargmax(bp))]
    return _valid_k2p(best.params["k2p_per_min"], f"MRTM on {best.name!r}")


def fit_windows(
    tac: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    model: str,
    windows: Mapping[str, tuple[float, float]],
    **options,
) -> dict[str, list[RoiFit]]:
    """Fit several named condition windows of one scan.

    Parameters
    ----------
    tac, ref, timing, model
        As in :func:`fit_roi`.
    windows : mapping of str to (float, float)
        Condition name to (start, end) minutes, e.g.
        ``{"baseline": (5, 40), "challenge": (45, 90)}``.
    **options
        Passed to :func:`fit_roi` (``t_star_min``, ``k2p_per_min``, ...). For
        models that need k2' (MRTM2, SRTM2) without a given ``k2p_per_min``,
        k2' is estimated once, by :func:`estimate_k2p_from_rois` over the
        *first* window (the baseline), and shared by every window.

    Returns
    -------
    fits : dict of str to list of RoiFit
        Per window, one fit per TAC. Integrals run from injection in every
        window; only the regression frames change.
    """
    if not windows:
        raise MorError(
            "No windows given; pass e.g. {'baseline': (5, 40), 'challenge': (45, 90)}."
        )
    if get_model(model).k2p == "required" and options.get("k2p_per_min") is None:
        options["k2p_per_min"] = estimate_k2p_from_rois(
            as_tac_matrix(tac, timing),
            ref,
            timing,
            window=tuple(next(iter(windows.values()))),
            t_star_min=options.get("t_star_min"),
        )
    return {
        name: fit_roi(tac, ref, timing, model, window=tuple(window), **options)
        for name, window in windows.items()
    }


def fit_scans(
    scans: Mapping[str, tuple[np.ndarray, np.ndarray, FrameTiming]],
    model: str,
    **options,
) -> dict[str, list[RoiFit]]:
    """Fit separate scans of one subject (e.g. baseline and challenge).

    Parameters
    ----------
    scans : mapping of str to (tac, ref, timing)
        Each scan's tissue TACs (n_frames, n_tacs), reference TAC and timing.
    model : str
    **options
        Passed to :func:`fit_roi`.

    Returns
    -------
    fits : dict of str to list of RoiFit
    """
    return {name: fit_roi(*scan, model, **options) for name, scan in scans.items()}


def fit_two_scans(
    baseline: tuple[np.ndarray, np.ndarray, FrameTiming],
    challenge: tuple[np.ndarray, np.ndarray, FrameTiming],
    model: str,
    **options,
) -> dict[str, list[RoiFit]]:
    """Fit a baseline and a challenge scan of one subject.

    Returns ``{"baseline": [RoiFit, ...], "challenge": [RoiFit, ...]}``.

    Delta-BP per ROI is then ``fits["baseline"][i].bp_nd - fits["challenge"][i].bp_nd``
    (see :func:`napari_mor.maps.delta_bp`).
    """
    return fit_scans({"baseline": baseline, "challenge": challenge}, model, **options)
