"""Batched weighted least squares (one small system per TAC, no Python loop).

Design columns are either shared by all TACs (shape (n_fit,), e.g. the
reference integral) or per TAC (shape (n_fit, n)); normal equations are formed
with BLAS matrix-vector products and solved in closed form (2x2 or 3x3).
"""

from __future__ import annotations

import numpy as np

#: Scale-free determinant ``det(G) / prod(diag(G))`` below which G is singular.
_SINGULAR_DET = 1e-12


def _wdot(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_f w_f a_f b_f`` for shared (n_fit,) or per-TAC (n_fit, n) columns.

    ``einsum`` rather than BLAS: no temporaries, and no thread contention for
    these thin (n_fit x n) reductions.
    """
    if a.ndim == 1 and b.ndim == 1:
        return np.asarray(np.einsum("f,f,f->", w, a, b))
    if a.ndim == 1:
        return np.einsum("f,fn->n", w * a, b)
    if b.ndim == 1:
        return np.einsum("f,fn->n", w * b, a)
    return np.einsum("f,fn,fn->n", w, a, b)


def _gram(columns: list[np.ndarray], w: np.ndarray, n: int) -> list[list[np.ndarray]]:
    p = len(columns)
    gram = [[None] * p for _ in range(p)]
    for i in range(p):
        for j in range(i, p):
            gram[i][j] = gram[j][i] = np.broadcast_to(
                _wdot(columns[i], columns[j], w), (n,)
            )
    return gram


def _solve_closed_form(gram, rhs) -> tuple[np.ndarray, np.ndarray]:
    """Solve the symmetric 2x2 or 3x3 systems; returns beta (n, p) and det (n,)."""
    if len(rhs) == 2:
        (a, b), (_, d) = gram
        det = a * d - b * b
        beta = [d * rhs[0] - b * rhs[1], a * rhs[1] - b * rhs[0]]
    elif len(rhs) == 3:
        (a, b, c), (_, d, e), (_, _, f) = gram
        cof = [
            d * f - e * e,
            c * e - b * f,
            b * e - c * d,
            a * f - c * c,
            b * c - a * e,
        ]
        adj = [
            [cof[0], cof[1], cof[2]],
            [cof[1], cof[3], cof[4]],
            [cof[2], cof[4], a * d - b * b],
        ]
        det = a * cof[0] + b * cof[1] + c * cof[2]
        beta = [sum(adj[i][k] * rhs[k] for k in range(3)) for i in range(3)]
    else:
        raise ValueError(
            f"closed-form solver supports 2 or 3 parameters, not {len(rhs)}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack(beta, axis=1) / det[:, None], det


def batched_wls(
    columns: list[np.ndarray], y: np.ndarray, w: np.ndarray, want_normal: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Solve ``min_b sum_f w_f (y_fn - sum_p b_np X_pf[n])^2`` for every column ``n``.

    Parameters
    ----------
    columns : list of ndarray, each shape (n_fit,) or (n_fit, n)
        Design columns over the fitted frames (2 or 3 of them).
    y : ndarray, shape (n_fit, n)
    w : ndarray, shape (n_fit,)
    want_normal : bool
        Also return ``X^T W X`` with shape (n, p, p) (for covariances).

    Returns
    -------
    beta : ndarray, shape (n, p)
        NaN where the system is singular or not finite.
    ok : ndarray of bool, shape (n,)
    normal : ndarray, shape (n, p, p), or None
    """
    n = y.shape[1]
    gram = _gram(columns, w, n)
    rhs = [_wdot(col, y, w) for col in columns]
    beta, det = _solve_closed_form(gram, rhs)
    diag_prod = np.prod([gram[i][i] for i in range(len(columns))], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (det / diag_prod > _SINGULAR_DET) & np.all(np.isfinite(beta), axis=1)
    beta[~ok] = np.nan
    normal = np.stack([np.stack(row, -1) for row in gram], -2) if want_normal else None
    return beta, ok, normal


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
    resid = y - fitted
    return np.einsum("f,fn,fn->n", w, resid, resid)


def fit_quality(
    y: np.ndarray, fitted: np.ndarray, w: np.ndarray, n_params: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted R^2 and AIC (``n ln(WRSS/n) + 2 p``) for arrays (n_fit, n)."""
    n_fit = y.shape[0]
    wrss = weighted_rss(y, fitted, w)
    mean = w @ y / w.sum()
    wtss = w @ ((y - mean) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - wrss / wtss
        aic = n_fit * np.log(wrss / n_fit) + 2 * n_params
    return r2, aic
