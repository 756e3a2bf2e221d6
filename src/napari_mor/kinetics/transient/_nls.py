"""Nonlinear least-squares refinement of the transient-release fit (ROI TACs).

Batched Levenberg-Marquardt over TAC columns (one vectorised forward-model
call per iteration for all columns and all Jacobian perturbations; no loop
over TACs), the no-release fit from several starts, one release fit per
response basis started from the no-release solution, and the calibration of
the release F statistic by its Gauss-Newton-linearised null distribution.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from napari_mor.kinetics.transient._forward import _grid, _integrate, unit_response

#: Parameters: log R1, log k3, log k4 (1/min) and the fractional fall of k3.
N_NULL = 3
#: Bounds of (log r1, log k3, log k4, frac).
LOWER = np.array([np.log(0.05), np.log(1e-5), np.log(1e-4), -3.0])
UPPER = np.array([np.log(10.0), np.log(5.0), np.log(5.0), 1.0])
#: Bases refined by NLS per TAC when more are searched (chosen by score).
MAX_NLS_BASES = 8
#: Columns per forward-model call (memory: ~20 arrays of n_steps x chunk).
CHUNK = 2048


class _Model:
    """Weighted residuals of the forward model for the data columns."""

    def __init__(self, tacs, ref, timing, k2p, sqrt_w):
        self.grid = _grid(timing)
        self.c_r = self.grid.ref_op @ ref
        self.k2p = float(k2p)
        self.sqrt_w = sqrt_w
        self.y = tacs

    def predict(self, theta: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Frame means for parameter rows ``theta`` (m, 4) and response ``h``."""
        r1 = np.exp(theta[:, 0])
        k3 = np.exp(theta[:, 1])
        k4 = np.exp(theta[:, 2])
        out = np.empty((self.y.shape[0], theta.shape[0]))
        for s in range(0, theta.shape[0], CHUNK):  # loop over chunks of columns
            sl = slice(s, s + CHUNK)
            out[:, sl] = _integrate(
                self.grid,
                self.c_r,
                self.k2p,
                r1[sl],
                r1[sl] * self.k2p,
                k3[sl],
                k4[sl],
                theta[sl, 3] * k3[sl],
                h,
            )
        return out

    def resid(self, theta, cols, h):
        return self.sqrt_w[:, None] * (self.predict(theta, h) - self.y[:, cols])


def _jacobian(model, theta, cols, h, r, free):
    """Forward-difference Jacobian (f, m, q) at ``theta`` (m, 4), residuals ``r``."""
    m, q = theta.shape[0], len(free)
    step = 1e-6 * np.maximum(1.0, np.abs(theta[:, free]))  # (m, q)
    big = np.repeat(theta[None], q, axis=0)  # (q, m, 4)
    for j, p in enumerate(free):  # loop over parameters
        big[j, :, p] += step[:, j]
    rj = model.resid(big.reshape(q * m, 4), np.tile(cols, q), h).reshape(-1, q, m)
    return (rj - r[:, None, :]).transpose(0, 2, 1) / step[None]


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched ``a x = b`` (m, q, q) x (m, q); NaN rows where ``a`` is not usable."""
    good = np.all(np.isfinite(a), axis=(1, 2)) & np.all(np.isfinite(b), axis=1)
    a = np.where(good[:, None, None], a, np.eye(a.shape[1])[None])
    b = np.where(good[:, None], b, 0.0)
    try:
        x = np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:  # an exactly singular system: pseudo-inverse
        x = np.einsum("mij,mj->mi", np.linalg.pinv(a), b)
    x[~good] = np.nan
    return x


def levenberg_marquardt(model, theta, cols, h, free, n_iter=60, tol=1e-9):
    """Bounded LM on every row of ``theta`` (m, 4) at once; returns (theta, r, rss)."""
    theta = np.clip(theta.copy(), LOWER, UPPER)
    r = model.resid(theta, cols, h)
    rss = np.einsum("fm,fm->m", r, r)
    lam = np.full(theta.shape[0], 1e-3)
    active = np.isfinite(rss)
    free = list(free)
    eye = np.eye(len(free))
    for _ in range(n_iter):  # loop over iterations (all columns at once)
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        jac = _jacobian(model, theta[idx], cols[idx], h, r[:, idx], free)
        g = np.einsum("fmi,fm->mi", jac, r[:, idx])
        hess = np.einsum("fmi,fmj->mij", jac, jac)
        diag = np.einsum("mii->mi", hess) + 1e-12
        lhs = hess + (lam[idx, None] * diag)[:, :, None] * eye
        with np.errstate(all="ignore"):
            step = np.nan_to_num(-_solve(lhs, g))
            # decrease of the RSS predicted by a full Gauss-Newton step
            gn = _solve(hess + (1e-10 * diag)[:, :, None] * eye, g)
            predicted = np.nan_to_num(np.einsum("mi,mi->m", g, gn), nan=np.inf)
        trial = theta[idx].copy()
        trial[:, free] += step
        trial = np.clip(trial, LOWER, UPPER)
        rt = model.resid(trial, cols[idx], h)
        rss_t = np.einsum("fm,fm->m", rt, rt)
        ok = np.isfinite(rss_t) & (rss_t < rss[idx])
        gain = np.where(ok, rss[idx] - rss_t, 0.0)
        acc = idx[ok]
        theta[acc], r[:, acc], rss[acc] = trial[ok], rt[:, ok], rss_t[ok]
        lam[acc] = np.maximum(lam[acc] * 0.2, 1e-9)
        lam[idx[~ok]] *= 8.0
        small = tol * rss[idx]
        done = (ok & (gain <= small)) | (predicted <= small) | (lam[idx] > 1e10)
        active[idx[done]] = False
    return theta, r, rss


def _starts(tacs, ref, lin):
    """Start rows (n_starts, n, 4): the linear fit and two generic starts."""
    n = tacs.shape[1]
    late = slice(-3, None)
    ratio = np.mean(tacs[late] / np.maximum(ref[late, None], 1e-12), axis=0)
    bp_guess = np.clip(ratio - 1.0, 0.1, 20.0)
    out = []
    with np.errstate(all="ignore"):
        k2, k3, k4 = lin["k2"], lin["k3"], lin["k4"]
        valid = (k2 > 0) & (k3 > 0) & (k4 > 0) & np.isfinite(k2 + k3 + k4)
        lin_row = np.stack(
            [
                np.log(np.where(valid, k2 / lin["k2p"], 1.0)),
                np.log(np.where(valid, k3, 0.1 * bp_guess)),
                np.log(np.where(valid, k4, 0.1)),
                np.zeros(n),
            ],
            axis=1,
        )
    out.append(lin_row)
    for k4g in (0.04, 0.2):
        out.append(
            np.stack(
                [
                    np.zeros(n),
                    np.log(bp_guess * k4g),
                    np.full(n, np.log(k4g)),
                    0 * bp_guess,
                ],
                axis=1,
            )
        )
    return np.stack(out)


def fit_nls(tacs, ref, timing, k2p, sqrt_w, bases, lin, n_draws, rng):
    """NLS no-release and release fits of all columns; see fit_transient."""
    model = _Model(tacs, ref, timing, k2p, sqrt_w)
    n = tacs.shape[1]
    cols = np.arange(n)
    h0 = np.zeros(model.grid.t_mid.size)
    starts = _starts(tacs, ref, lin)  # (s, n, 4)
    s = starts.shape[0]
    th, _, rss = levenberg_marquardt(
        model, starts.reshape(s * n, 4), np.tile(cols, s), h0, range(N_NULL)
    )
    best = np.argmin(np.where(np.isfinite(rss), rss, np.inf).reshape(s, n), axis=0)
    theta0 = th.reshape(s, n, 4)[best, cols]
    r0 = model.resid(theta0, cols, h0)
    rss0 = np.einsum("fn,fn->n", r0, r0)
    # release fits from the no-release solution, for every basis or (many
    # bases, e.g. a searched onset) for the MAX_NLS_BASES with the largest
    # score statistic (v_k' r0)^2 of each TAC
    hs = [unit_response(model.grid.t_mid, b[0], b[1], b[2]) for b in bases]
    q0, v = _release_directions(model, theta0, cols, h0, hs, r0)
    if len(hs) > MAX_NLS_BASES:
        score = np.einsum("nfk,fn->nk", v, r0) ** 2
        top = np.argsort(-score, axis=1)[:, :MAX_NLS_BASES]
        chosen = np.zeros((n, len(hs)), dtype=bool)
        chosen[cols[:, None], top] = True
    else:
        chosen = np.ones((n, len(hs)), dtype=bool)
    rss1 = np.full(n, np.inf)
    theta1 = theta0.copy()
    best_k = np.zeros(n, dtype=np.int64)
    for k, h in enumerate(hs):  # loop over the response bases
        c = np.flatnonzero(chosen[:, k])
        if c.size == 0:
            continue
        th, _, rss_k = levenberg_marquardt(model, theta0[c], c, h, range(4))
        better = np.isfinite(rss_k) & (rss_k < rss1[c])
        rss1[c[better]], theta1[c[better]], best_k[c[better]] = (
            rss_k[better],
            th[better],
            k,
        )
    n_eff = int(np.sum(sqrt_w > 0))
    n_searched = int(len({b[0] for b in bases}) > 1) + int(
        len({(b[1], b[2]) for b in bases}) > 1
    )
    d1 = 1 + n_searched
    d2 = n_eff - 4 - n_searched
    with np.errstate(divide="ignore", invalid="ignore"):
        f_stat = np.maximum(rss0 - rss1, 0.0) / d1 / (rss1 / d2)
    p_nominal = stats.f.sf(f_stat, d1, d2)
    p_release = p_nominal
    if n_draws > 0:
        f_null = _linearised_null(q0, v, model.sqrt_w, n_draws, rng, d1, d2)
        with np.errstate(invalid="ignore"):
            exceed = ~(f_null < f_stat[:, None])
        p_release = np.where(
            np.isfinite(f_stat), (1.0 + exceed.sum(1)) / (n_draws + 1.0), np.nan
        )
    fitted = np.empty_like(tacs)
    for k in np.unique(best_k):  # loop over the chosen bases
        c = np.flatnonzero(best_k == k)
        fitted[:, c] = model.predict(theta1[c], hs[k])
    return {
        "theta0": theta0,
        "theta1": theta1,
        "rss0": rss0,
        "rss1": rss1,
        "basis_index": best_k,
        "f_stat": f_stat,
        "p_nominal": p_nominal,
        "p_release": p_release,
        "aic": n_eff * np.log(rss1 / n_eff) + 2 * (4 + n_searched),
        "aic_null": n_eff * np.log(rss0 / n_eff) + 2 * N_NULL,
        "fitted": fitted,
        "fitted_null": model.predict(theta0, h0),
    }


def _release_directions(model, theta0, cols, h0, hs, r0):
    """Orthonormal no-release Jacobian ``q0`` (n, f, 3) and the unit release
    directions ``v`` (n, f, K) orthogonal to it, at the no-release fit."""
    j0 = _jacobian(model, theta0, cols, h0, r0, range(N_NULL))  # (f, n, 3)
    q0, _ = np.linalg.qr(np.nan_to_num(j0.transpose(1, 0, 2)))
    eps = 1e-4
    th = theta0.copy()
    th[:, 3] = eps
    v = np.empty((theta0.shape[0], r0.shape[0], len(hs)))
    for k, h in enumerate(hs):  # loop over bases: derivative in the fraction at 0
        v[:, :, k] = np.nan_to_num((model.resid(th, cols, h) - r0) / eps).T
    v -= q0 @ (q0.transpose(0, 2, 1) @ v)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
    return q0, v


def _linearised_null(q0, v, sqrt_w, n_draws, rng, d1, d2, chunk=64):
    """Null F statistics (n, n_draws) of the Gauss-Newton-linearised model.

    Around the no-release fit the weighted model is ``y = J0 b + sum_k g_k v_k
    + e``; under the null (``e`` white in the weighted metric) the release fit
    of basis ``k`` removes ``(v_k' e)^2`` from RSS0, with ``v_k`` the release
    direction of basis ``k`` made orthogonal to ``J0`` and normalised. The
    largest over the bases gives the null of the searched F statistic.
    """
    n = q0.shape[0]
    live = (sqrt_w > 0).astype(float)
    noise = rng.standard_normal((n_draws, live.size)) * live  # shared draws
    total = np.einsum("bf,bf->b", noise, noise)
    out = np.empty((n, n_draws))
    for s in range(0, n, chunk):  # loop over chunks of TACs
        sl = slice(s, s + chunk)
        proj0 = np.einsum("bf,mfi->mbi", noise, q0[sl])
        rss0 = total[None] - np.einsum("mbi,mbi->mb", proj0, proj0)
        gmax = (np.einsum("bf,mfk->mbk", noise, v[sl]) ** 2).max(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[sl] = (gmax / d1) / (np.maximum(rss0 - gmax, 1e-300) / d2)
    return out
