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
from napari_mor.kinetics.integrate import integrate_from_injection, integration_matrix

__all__ = ["logan_t_star"]

Derive = Callable[[np.ndarray], tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


def _solve_linear(
    design: np.ndarray,
    y: np.ndarray,
    setup: Setup,
    full: bool,
    derive: Derive,
    x: np.ndarray | None = None,
) -> Batch:
    """Weighted LS of ``y`` (n_frames, n) on ``design`` (n_frames, n, p) over fit frames.

    ``derive(beta)`` maps coefficients (n, p) to named parameters and their
    gradients with respect to ``beta`` (n, p), used for delta-method SEs.
    """
    mask = setup.fit_mask
    beta, normal, ok = batched_wls(np.moveaxis(design[mask], 1, 0), y[mask].T, setup.w_fit)
    with np.errstate(divide="ignore", invalid="ignore"):
        params, grads = derive(beta)
    batch = Batch(params=params, ok=ok, n_params=beta.shape[1])
    if full:
        fitted = np.einsum("fnp,np->fn", design, beta)
        wrss = weighted_rss(y[mask], fitted[mask], setup.w_fit)
        cov = wls_covariance(normal, wrss, int(mask.sum()), ok)
        batch.se = {
            name: np.sqrt(np.einsum("np,npq,nq->n", grad, cov, grad))
            for name, grad in grads.items()
        }
        mid = np.broadcast_to(setup.timing.frame_mid_min[:, None], y.shape)
        batch.x = mid.copy() if x is None else x
        batch.y, batch.fitted = y, fitted
    return batch


def _columns(*cols: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Stack (n_frames,) or (n_frames, n) columns into a design (n_frames, n, p)."""
    return np.stack([np.broadcast_to(c if c.ndim == 2 else c[:, None], like.shape) for c in cols], -1)


def _logan_xy(
    tac: np.ndarray, ref_int: np.ndarray, ref: np.ndarray, tac_int: np.ndarray, k2p: float
) -> tuple[np.ndarray, np.ndarray]:
    """Logan-plot coordinates (n_frames, n); NaN where the tissue is <= 0."""
    ref_term = ref_int if not np.isfinite(k2p) else ref_int + ref / k2p
    safe = np.where(tac > 0, tac, np.nan)
    return ref_term[:, None] / safe, tac_int / safe


def solve_logan(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """Logan reference plot: ``int Ct / Ct = DVR x + b`` for frames after t*."""
    tac_int = integration_matrix(setup.timing) @ tac
    x, y = _logan_xy(tac, setup.ref_int, setup.ref, tac_int, setup.k2p_per_min)
    design = np.stack([x, np.ones_like(x)], axis=-1)

    def derive(beta):
        one, zero = np.ones(len(beta)), np.zeros(len(beta))
        grad = np.stack([one, zero], axis=1)
        params = {"bp_nd": beta[:, 0] - 1.0, "dvr": beta[:, 0], "intercept_min": beta[:, 1]}
        return params, {"bp_nd": grad, "dvr": grad}

    return _solve_linear(design, y, setup, full, derive, x=x)


def solve_mrtm(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """MRTM: ``Ct = g1 int Cref + g2 int Ct + g3 Cref``."""
    tac_int = integration_matrix(setup.timing) @ tac
    design = _columns(setup.ref_int, tac_int, setup.ref, like=tac)

    def derive(beta):
        g1, g2, g3 = beta.T
        zero, one = np.zeros_like(g1), np.ones_like(g1)
        params = {
            "bp_nd": -g1 / g2 - 1.0,
            "r1": g3,
            "k2_per_min": g1,
            "k2p_per_min": g1 / g3,
            "k2a_per_min": -g2,
        }
        grads = {
            "bp_nd": np.stack([-1.0 / g2, g1 / g2**2, zero], 1),
            "r1": np.stack([zero, zero, one], 1),
            "k2_per_min": np.stack([one, zero, zero], 1),
            "k2p_per_min": np.stack([1.0 / g3, zero, -g1 / g3**2], 1),
            "k2a_per_min": np.stack([zero, -one, zero], 1),
        }
        return params, grads

    return _solve_linear(design, tac, setup, full, derive)


def solve_mrtm2(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """MRTM2: ``Ct = g1 (int Cref + Cref / k2') + g2 int Ct`` with k2' fixed."""
    k2p = setup.k2p_per_min
    tac_int = integration_matrix(setup.timing) @ tac
    design = _columns(setup.ref_int + setup.ref / k2p, tac_int, like=tac)

    def derive(beta):
        g1, g2 = beta.T
        zero, one = np.zeros_like(g1), np.ones_like(g1)
        params = {
            "bp_nd": -g1 / g2 - 1.0,
            "r1": g1 / k2p,
            "k2_per_min": g1,
            "k2a_per_min": -g2,
        }
        grads = {
            "bp_nd": np.stack([-1.0 / g2, g1 / g2**2], 1),
            "r1": np.stack([one / k2p, zero], 1),
            "k2_per_min": np.stack([one, zero], 1),
            "k2a_per_min": np.stack([zero, -one], 1),
        }
        return params, grads

    return _solve_linear(design, tac, setup, full, derive)


def solve_ratio(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """Equilibrium ratio: time-weighted mean tissue / mean reference - 1 in the window."""
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
        tac[:, None], integrate_from_injection(ref, timing), ref,
        integrate_from_injection(tac, timing)[:, None], k2p,
    )
    x, y = x[:, 0], y[:, 0]
    candidates = np.flatnonzero(fit_frame_mask(timing, window) & np.isfinite(x) & np.isfinite(y))
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
