"""Simplified reference tissue models: SRTM, SRTM2 (nonlinear, ROI) and their
basis-function forms (voxelwise).
"""

from __future__ import annotations

import numpy as np

from napari_mor.kinetics._base import Batch, Setup
from napari_mor.kinetics.integrate import convolve_exponential

__all__ = ["theta_grid"]

#: Parameter bounds for the nonlinear fits: R1, k2 (1/min), BP_ND.
_R1_BOUNDS = (1e-3, 10.0)
_K2_BOUNDS = (1e-4, 10.0)
_BP_BOUNDS = (-0.95, 50.0)

#: Scale-free determinant below which a basis pair counts as collinear.
_SINGULAR = 1e-12


def theta_grid(
    theta_range_per_min: tuple[float, float] = (0.01, 1.0), n_theta: int = 100
) -> np.ndarray:
    """Log-spaced basis-function decay rates.

    Parameters
    ----------
    theta_range_per_min : (float, float)
        Smallest and largest theta, 1/min.
    n_theta : int
        Number of basis functions.

    Returns
    -------
    theta_per_min : ndarray, shape (n_theta,)
    """
    low, high = (float(v) for v in theta_range_per_min)
    return np.geomspace(low, high, int(n_theta))


def _best_theta(quad: np.ndarray) -> np.ndarray:
    """Index of the basis function with the largest explained sum of squares.

    ``quad`` (n_theta, n) holds ``p^T (B^T W B)^-1 p`` per theta; maximising it
    minimises the weighted residual sum of squares ``y^T W y - quad``.
    """
    quad = np.where(np.isfinite(quad), quad, -np.inf)
    return np.argmax(quad, axis=0)


def _finish(tac, setup, full, params, fitted_fn, n_params) -> Batch:
    ok = np.all([np.isfinite(v) for v in params.values()], axis=0)
    batch = Batch(params=params, ok=ok, n_params=n_params)
    if full:
        batch.se = {"bp_nd": np.full(tac.shape[1], np.nan)}
        batch.x = np.broadcast_to(setup.timing.frame_mid_min[:, None], tac.shape).copy()
        batch.y, batch.fitted = tac, fitted_fn()
    return batch


def solve_srtm_bf(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """Basis-function SRTM (Gunn 1997): ``Ct = R1 Cref + b2 (Cref * e^{-theta t})``.

    For every theta the 2x2 weighted normal matrix of the basis (Cref, conv_theta)
    is shared by all voxels, so all projections come from one matrix product
    (n_theta, n_fit) @ (n_fit, n) and the best theta per voxel from an argmax.
    """
    theta, ref, conv = setup.theta_per_min, setup.ref, setup.ref_conv
    mask, w = setup.fit_mask, setup.w_fit
    r, c = ref[mask], conv[mask]  # (n_fit,), (n_fit, n_theta)
    a, b, d = (w * r) @ r, (w * r) @ c, np.einsum("f,ft,ft->t", w, c, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        det = a * d - b * b
        inv = np.where(det > _SINGULAR * a * d, 1.0 / det, np.nan)  # (n_theta,)
    y = tac[mask]
    p0 = (w * r) @ y  # (n,)
    p1 = (c.T * w) @ y  # (n_theta, n)
    quad = inv[:, None] * (d[:, None] * p0**2 - 2 * b[:, None] * p0 * p1 + a * p1**2)
    idx = _best_theta(quad)
    cols = np.arange(y.shape[1])
    p1_best = p1[idx, cols]
    r1 = inv[idx] * (d[idx] * p0 - b[idx] * p1_best)
    b2 = inv[idx] * (a * p1_best - b[idx] * p0)
    k2 = b2 + r1 * theta[idx]
    params = {
        "bp_nd": k2 / theta[idx] - 1.0,
        "r1": r1,
        "k2_per_min": k2,
        "k2a_per_min": theta[idx],
    }
    return _finish(
        tac, setup, full, params, lambda: r1 * ref[:, None] + b2 * conv[:, idx], 3
    )


def solve_srtm2_bf(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """Basis-function SRTM2: ``Ct = R1 [Cref + (k2' - theta) Cref * e^{-theta t}]``.

    One basis per theta; ``R1 = b^T W y / b^T W b`` for the theta that
    maximises ``(b^T W y)^2 / b^T W b``.
    """
    theta, k2p = setup.theta_per_min, setup.k2p_per_min
    basis = setup.ref[:, None] + (k2p - theta[None, :]) * setup.ref_conv
    mask, w = setup.fit_mask, setup.w_fit
    fit_basis = basis[mask]
    norm = np.einsum("f,ft,ft->t", w, fit_basis, fit_basis)
    proj = (fit_basis.T * w) @ tac[mask]  # (n_theta, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = _best_theta(proj**2 / norm[:, None])
        r1 = proj[idx, np.arange(tac.shape[1])] / norm[idx]
    params = {
        "bp_nd": r1 * k2p / theta[idx] - 1.0,
        "r1": r1,
        "k2_per_min": r1 * k2p,
        "k2a_per_min": theta[idx],
    }
    return _finish(tac, setup, full, params, lambda: r1 * basis[:, idx], 2)


def _srtm_curve(params, ref, timing, k2p=None):
    """SRTM (3 params R1, k2, BP) or SRTM2 (2 params R1, BP; k2 = R1 k2') prediction."""
    if k2p is None:
        r1, k2, bp = params
    else:
        (r1, bp), k2 = params, params[0] * k2p
    k2a = k2 / (1.0 + bp)
    return r1 * ref + (k2 - r1 * k2a) * convolve_exponential(ref, timing, k2a)[:, 0]


def _nlls_column(y, setup: Setup, start: np.ndarray, k2p):
    """One bounded nonlinear fit; returns (params, se, fitted) or NaNs on failure."""
    mask, sqrt_w = setup.fit_mask, np.sqrt(setup.w_fit)
    bounds = (
        [_R1_BOUNDS, _BP_BOUNDS]
        if k2p is not None
        else [_R1_BOUNDS, _K2_BOUNDS, _BP_BOUNDS]
    )
    low, high = np.array(bounds).T
    nan = np.full(low.size, np.nan)
    if not np.all(np.isfinite(y[mask])):
        return nan, nan, np.full(y.shape, np.nan)
    if not np.all(np.isfinite(start)):  # basis-function start failed: generic start
        start = np.array([1.0, 1.0] if k2p is not None else [1.0, 0.2, 1.0])
    x0 = np.clip(start, low + 1e-6, high - 1e-6)

    def residuals(p):
        return sqrt_w * (y[mask] - _srtm_curve(p, setup.ref, setup.timing, k2p)[mask])

    from scipy.optimize import least_squares  # lazy: keeps `napari-mor --help` fast

    fit = least_squares(residuals, x0, bounds=(low, high), x_scale="jac", method="trf")
    return (
        fit.x,
        _jacobian_se(fit, int(mask.sum())),
        _srtm_curve(fit.x, setup.ref, setup.timing, k2p),
    )


def _jacobian_se(fit, n_fit: int) -> np.ndarray:
    """Standard errors ``sqrt(diag(s^2 (J^T J)^-1))``, ``s^2 = WRSS / (n - p)``."""
    n_params = fit.x.size
    if n_fit <= n_params:
        return np.full(n_params, np.nan)
    try:
        cov = np.linalg.inv(fit.jac.T @ fit.jac) * (2.0 * fit.cost / (n_fit - n_params))
    except np.linalg.LinAlgError:
        return np.full(n_params, np.nan)
    return np.sqrt(np.diag(cov))


def _solve_nlls(tac: np.ndarray, setup: Setup, full: bool, k2p) -> Batch:
    start = (solve_srtm_bf if k2p is None else solve_srtm2_bf)(tac, setup, False).params
    names = ["r1", "bp_nd"] if k2p is not None else ["r1", "k2_per_min", "bp_nd"]
    results = [  # loop over ROIs (nonlinear fits are ROI-only)
        _nlls_column(tac[:, i], setup, np.array([start[k][i] for k in names]), k2p)
        for i in range(tac.shape[1])
    ]
    values, errors, fitted = (np.array(v) for v in zip(*results, strict=True))
    params = dict(zip(names, values.T, strict=True))
    se = dict(zip(names, errors.T, strict=True))
    if k2p is not None:
        params["k2_per_min"] = params["r1"] * k2p
        se["k2_per_min"] = se["r1"] * k2p
    params["k2a_per_min"] = params["k2_per_min"] / (1.0 + params["bp_nd"])
    ok = np.all(np.isfinite(values), axis=1)
    batch = Batch(params=params, ok=ok, n_params=len(names))
    if full:
        batch.se = se
        batch.x = np.broadcast_to(setup.timing.frame_mid_min[:, None], tac.shape).copy()
        batch.y, batch.fitted = tac, fitted.T
    return batch


def solve_srtm(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """SRTM (Lammertsma & Hume 1996) by bounded nonlinear least squares per ROI."""
    return _solve_nlls(tac, setup, full, None)


def solve_srtm2(tac: np.ndarray, setup: Setup, full: bool) -> Batch:
    """SRTM2 (Wu & Carson 2002), k2' fixed, by nonlinear least squares per ROI."""
    return _solve_nlls(tac, setup, full, setup.k2p_per_min)
