"""Linear reference-region models: Logan plot, MRTM, MRTM2 and equilibrium ratio.

Solvers take ``tac`` of shape (n_frames, n) and a :class:`Setup`; they are
vectorized over the ``n`` columns (ROIs or voxels).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics._base import Batch, Setup
from napari_mor.kinetics._checks import MIN_FIT_FRAMES, fit_frame_mask
from napari_mor.kinetics._linalg import batched_wls, weighted_rss, wls_covariance
from napari_mor.kinetics.integrate import integrate_from_injection

__all__ = ["logan_t_star"]

Derive = Callable[[np.ndarray], dict[str, np.ndarray]]


def _solve_linear(
    columns: list[np.ndarray],
    y: np.ndarray,
    setup: Setup,
    full: bool,
    derive: Derive,
    gradients: Derive,
    x: np.ndarray | None = None,
    sliced: bool = False,
) -> Batch:
    """Weighted LS of ``y`` (n_frames, n) on design ``columns`` over the fit frames.

    Each column has shape (n_frames,) (shared by all TACs) or (n_frames, n).
    ``sliced``: ``columns`` and ``y`` already hold only the fit frames (maps,
    ``full=False``: the other frames are never formed).
    ``derive(beta)`` maps coefficients (n, p) to named parameters (n,);
    ``gradients(beta)`` gives their gradients (n, p) for delta-method SEs.
    """
    mask = setup.fit_mask
    if sliced:
        if full:
            raise ValueError("sliced design columns carry no fitted curves")
        fit_cols, y_fit = columns, y
    else:
        fit_cols, y_fit = [c[mask] for c in columns], y[mask]
    beta, ok, normal = batched_wls(fit_cols, y_fit, setup.w_fit, want_normal=full)
    with np.errstate(divide="ignore", invalid="ignore"):
        params = derive(beta)
    batch = Batch(params=params, ok=ok, n_params=beta.shape[1])
    if full:
        fitted = sum(
            (c if c.ndim == 2 else c[:, None]) * beta[:, k]
            for k, c in enumerate(columns)
        )
        wrss = weighted_rss(y[mask], fitted[mask], setup.w_fit)
        cov = wls_covariance(normal, wrss, int(mask.sum()), ok)
        with np.errstate(divide="ignore", invalid="ignore"):
            grads = gradients(beta)
        batch.se = {
            name: np.sqrt(np.einsum("np,npq,nq->n", grad, cov, grad))
            for name, grad in grads.items()
        }
        mid = np.broadcast_to(setup.timing.frame_mid_min[:, None], y.shape)
        batch.x = mid.copy() if x is None else x
        batch.y, batch.fitted = y, fitted
    return batch


def _logan_xy(
    tac: np.ndarray,
    ref_int: np.ndarray,
    ref: np.ndarray,
    tac_int: np.ndarray,
    k2p: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Logan-plot coordinates (n_frames, n); NaN where the tissue is <= 0."""
    ref_term = ref_int if not np.isfinite(k2p) else ref_int + ref / k2p
    inv = np.full(tac.shape, np.nan)
    np.divide(1.0, tac, out=inv, where=tac > 0)
    return ref_term[:, None] * inv, tac_int * inv


def _basis_vectors(n: int, p: int) -> list[np.ndarray]:
    """Unit gradient rows e_k with shape (n, p)."""
    return [np.broadcast_to(np.eye(p)[k], (n, p)) for k in range(p)]


def solve_logan(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """Logan reference plot: ``int Ct / Ct = DVR x + b`` for frames after t*."""
    tac_int = integrate_from_injection(tac, setup.timing)
    # maps need the plot only on the fit frames (after t*): form just those
    rows = slice(None) if full else setup.fit_mask
    x, y = _logan_xy(
        tac[rows], setup.ref_int[rows], setup.ref[rows], tac_int[rows],
        setup.k2p_per_min,
    )  # fmt: skip

    def derive(beta):
        return {
            "bp_nd": beta[:, 0] - 1.0,
            "dvr": beta[:, 0],
            "intercept_min": beta[:, 1],
        }

    def gradients(beta):
        e_dvr, e_b = _basis_vectors(len(beta), 2)
        return {"bp_nd": e_dvr, "dvr": e_dvr, "intercept_min": e_b}

    columns = [x, np.ones(x.shape[0])]
    return _solve_linear(
        columns, y, setup, full, derive, gradients, x=x, sliced=not full
    )


def _bp_gradient(g1: np.ndarray, g2: np.ndarray, p: int) -> np.ndarray:
    """Gradient of ``BP = -g1/g2 - 1`` with respect to (g1, g2, [g3])."""
    cols = [-1.0 / g2, g1 / g2**2] + [np.zeros_like(g1)] * (p - 2)
    return np.stack(cols, axis=1)


def solve_mrtm(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """MRTM: ``Ct = g1 int Cref + g2 int Ct + g3 Cref``."""
    tac_int = integrate_from_injection(tac, setup.timing)

    def derive(beta):
        g1, g2, g3 = beta.T
        return {
            "bp_nd": -g1 / g2 - 1.0,
            "r1": g3,
            "k2_per_min": g1,
            "k2p_per_min": g1 / g3,
            "k2a_per_min": -g2,
        }

    def gradients(beta):
        g1, _, g3 = beta.T
        e1, e2, e3 = _basis_vectors(len(beta), 3)
        k2p_grad = np.stack([1.0 / g3, np.zeros_like(g1), -g1 / g3**2], 1)
        return {
            "bp_nd": _bp_gradient(g1, beta[:, 1], 3),
            "r1": e3,
            "k2_per_min": e1,
            "k2p_per_min": k2p_grad,
            "k2a_per_min": -e2,
        }

    columns = [setup.ref_int, tac_int, setup.ref]
    return _solve_linear(columns, tac, setup, full, derive, gradients)


def solve_mrtm2(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """MRTM2: ``Ct = g1 (int Cref + Cref / k2') + g2 int Ct`` with k2' fixed."""
    k2p = setup.k2p_per_min
    tac_int = integrate_from_injection(tac, setup.timing)

    def derive(beta):
        g1, g2 = beta.T
        return {
            "bp_nd": -g1 / g2 - 1.0,
            "r1": g1 / k2p,
            "k2_per_min": g1,
            "k2a_per_min": -g2,
        }

    def gradients(beta):
        e1, e2 = _basis_vectors(len(beta), 2)
        return {
            "bp_nd": _bp_gradient(beta[:, 0], beta[:, 1], 2),
            "r1": e1 / k2p,
            "k2_per_min": e1,
            "k2a_per_min": -e2,
        }

    columns = [setup.ref_int + setup.ref / k2p, tac_int]
    return _solve_linear(columns, tac, setup, full, derive, gradients)


def solve_ratio(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """Equilibrium ratio: time-weighted mean tissue / mean reference - 1."""
    mask = setup.fit_mask
    duration = setup.timing.frame_duration_min[mask]
    ref_mean = duration @ setup.ref[mask] / duration.sum()
    tac_mean = duration @ tac[mask] / duration.sum()
    ratio = tac_mean / ref_mean
    ok = np.isfinite(ratio)
    batch = Batch(params={"bp_nd": ratio - 1.0, "dvr": ratio}, ok=ok, n_params=1)
    if full:
        nan = np.full(tac.shape[1], np.nan)
        batch.se = {"bp_nd": nan, "dvr": nan}
        batch.x = np.broadcast_to(setup.timing.frame_mid_min[:, None], tac.shape).copy()
        batch.y, batch.fitted = tac, setup.ref[:, None] * ratio[None, :]
    return batch


def logan_t_star(
    tac: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    k2p_per_min: float | None = None,
    window: tuple[float, float] | None = None,
    tolerance: float = 0.10,
    min_points: int = MIN_FIT_FRAMES,
) -> float:
    """Earliest t* from which the Logan plot is linear.

    Parameters
    ----------
    tac : ndarray, shape (n_frames,)
        Tissue TAC (an ROI mean; for maps the mean over the brain mask).
    ref : ndarray, shape (n_frames,)
        Reference TAC.
    timing : FrameTiming
    k2p_per_min : float, optional
        k2' (1/min) for the Logan variant with the ``Cref/k2'`` term.
    window : (float, float), optional
        Condition window, minutes; only its frames are candidates.
    tolerance : float
        Maximum relative residual ``|y - y_fit| / |y_fit|`` allowed (0.10 = 10 %).
    min_points : int
        Minimum number of frames in the linear part (>= 3).

    Returns
    -------
    t_star_min : float
        Mid-time (minutes) of the first frame of the linear part.

    Notes
    -----
    For each candidate first frame ``k`` (in time order), a line is fitted by
    ordinary least squares to the Logan points of frames ``k..end``; t* is the
    mid-time of the earliest ``k`` for which every point deviates from the line
    by less than ``tolerance`` relative to the line (PMOD / kinfitr style).
    """
    tac = np.asarray(tac, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64)
    k2p = np.nan if k2p_per_min is None else float(k2p_per_min)
    x, y = _logan_xy(
        tac[:, None],
        integrate_from_injection(ref, timing),
        ref,
        integrate_from_injection(tac, timing)[:, None],
        k2p,
    )
    x, y = x[:, 0], y[:, 0]
    candidates = np.flatnonzero(
        fit_frame_mask(timing, window) & np.isfinite(x) & np.isfinite(y)
    )
    for k in range(max(candidates.size - max(min_points, MIN_FIT_FRAMES) + 1, 0)):
        idx = candidates[k:]
        slope, intercept = np.polyfit(x[idx], y[idx], 1)
        line = slope * x[idx] + intercept
        if np.max(np.abs(y[idx] - line) / np.abs(line)) < tolerance:
            return float(timing.frame_mid_min[idx[0]])
    raise MorError(
        f"The Logan plot never becomes linear within {100 * tolerance:g} % (tested "
        f"{candidates.size} frames{'' if window is None else f' in window {window}'}); "
        "pass t* explicitly (--t-star MIN), raise the tolerance, or check the TACs."
    )
