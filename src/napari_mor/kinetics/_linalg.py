"""Batched weighted least squares (one small system per TAC, no Python loop)."""

from __future__ import annotations

import numpy as np

#: Scale-free determinant below which a normal matrix counts as singular.
_SINGULAR_DET = 1e-12


def batched_wls(
    design: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve ``min_b sum_f w_f (y_nf - X_nf . b_n)^2`` for every ``n`` at once.

    Parameters
    ----------
    design : ndarray, shape (n, n_fit, p)
    y : ndarray, shape (n, n_fit)
    w : ndarray, shape (n_fit,)

    Returns
    -------
    beta : ndarray, shape (n, p)
        NaN where the system is singular or not finite.
    normal : ndarray, shape (n, p, p)
        ``X^T W X`` (for covariances).
    ok : ndarray of bool, shape (n,)
    """
    weighted = design * w[None, :, None]
    normal = np.einsum("nfp,nfq->npq", weighted, design)
    rhs = np.einsum("nfp,nf->np", weighted, y)
    diag = np.sqrt(np.abs(np.einsum("npp->np", normal)))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = normal / (diag[:, :, None] * diag[:, None, :])
        ok = np.all(np.isfinite(scaled), axis=(1, 2)) & np.all(np.isfinite(rhs), axis=1)
    ok &= np.all(diag > 0, axis=1)
    safe = np.where(ok[:, None, None], scaled, np.eye(normal.shape[1]))
    ok &= np.abs(np.linalg.det(safe)) > _SINGULAR_DET
    safe = np.where(ok[:, None, None], safe, np.eye(normal.shape[1]))
    rhs_scaled = np.where(ok[:, None], rhs / np.where(diag > 0, diag, 1.0), 0.0)
    beta = np.linalg.solve(safe, rhs_scaled[:, :, None])[:, :, 0]
    beta = beta / np.where(diag > 0, diag, 1.0)
    beta[~ok] = np.nan
    return beta, normal, ok


def wls_covariance(
    normal: np.ndarray, wrss: np.ndarray, n_fit: int, ok: np.ndarray
) -> np.ndarray:
    """Parameter covariance ``s^2 (X^T W X)^-1`` with ``s^2 = WRSS / (n - p)``.

    Returns ndarray, shape (n, p, p); NaN for failed fits or when n <= p.
    """
    n_params = normal.shape[1]
    dof = n_fit - n_params
    cov = np.full(normal.shape, np.nan)
    if dof <= 0 or not np.any(ok):
        return cov
    cov[ok] = np.linalg.inv(normal[ok]) * (wrss[ok] / dof)[:, None, None]
    return cov


def weighted_rss(y: np.ndarray, fitted: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_f w_f (y - fitted)^2`` over axis 0 for arrays of shape (n_fit, n)."""
    return np.einsum("f,fn->n", w, (y - fitted) ** 2)


def fit_quality(
    y: np.ndarray, fitted: np.ndarray, w: np.ndarray, n_params: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted R^2 and AIC (``n ln(WRSS/n) + 2 p``) for arrays (n_fit, n)."""
    n_fit = y.shape[0]
    wrss = weighted_rss(y, fitted, w)
    mean = np.einsum("f,fn->n", w, y) / w.sum()
    wtss = np.einsum("f,fn->n", w, (y - mean) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - wrss / wtss
        aic = n_fit * np.log(wrss / n_fit) + 2 * n_params
    return r2, aic
