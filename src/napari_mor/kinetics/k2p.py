"""Robust automatic reference efflux k2' for slowly dissociating tracers.

MRTM's ``k2' = g1/g3`` assumes one-tissue kinetics in the target. For
[11C]carfentanil (k4 ~ 0.05-0.1 /min) high-binding regions are two-tissue and
far from equilibrium during a 45-min baseline, so MRTM k2' is biased low by
15-50 % even without noise. Here k2' is instead the one value shared by several
TACs of *different* binding under the full reference tissue model (FRTM,
two-tissue target, one-tissue reference, ``K1/k2 = K1'/k2'``), written in its
exact integrated linear form with the plasma eliminated through the reference::

    Ct + c int Ct = R1 [Cr + k2' (int Cr - int Ct) + c (int Cr + k2' iint Cr)]
                    - R1 k4 k2' iint Ct

with ``c = k3 + k4`` and ``iint`` the double integral from injection. For a
fixed pair ``(k2', c)`` this is linear in ``R1`` and ``R1 k4``; a grid over
``(k2', c)`` gives each TAC's profile residual as a function of k2', and the
TACs' log-residuals are summed (profile likelihood). A single TAC cannot
separate k2' from ``k3 + k4`` when R1 ~ 1 (both are zeros of the same transfer
function); TACs of different binding share only k2', which makes it
identifiable. Estimate k2' once per subject, from the baseline (the first
window of a one-scan design, or the baseline scan), and share it.

At slow dissociation (k4 ~ 0.05 /min) the profile over k2' is flat when every
TAC has its own ``k3 + k4``: composite noise moves the minimum by +-15 %. k4 is
the tracer-receptor dissociation rate, a property of the ligand and the
receptor rather than of the region, so ``k4="shared"`` fits one k4 for all TACs
(per TAC only R1 and k3 remain) by nonlinear least squares on the same
equation; this halves the spread of k2' at k4 = 0.05 and is the default for
composites of high-binding voxels (:func:`k2p_from_high_binding_voxels`).

All times are minutes from injection, rates 1/min.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import least_squares

from napari_mor._errors import MorError
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics._checks import (
    as_tac_matrix,
    check_reference,
    fit_frame_mask,
    frames_by_voxel,
)
from napari_mor.kinetics.integrate import integration_matrix

__all__ = ["k2p_from_high_binding_voxels", "k2p_from_rois", "k2p_profile"]

#: C-11 half-life, minutes (frame weights ~ duration / (activity * decay)).
_C11_HALF_LIFE_MIN = 20.364


def _frame_weights(tac_mean: np.ndarray, timing: FrameTiming) -> np.ndarray:
    lam = np.log(2.0) / _C11_HALF_LIFE_MIN
    act = np.clip(tac_mean, 1e-3 * max(float(np.max(tac_mean)), 1e-12), None)
    return timing.frame_duration_min / (act * np.exp(lam * timing.frame_mid_min))


def k2p_profile(
    tacs: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    window: tuple[float, float] | None = None,
    k2p_grid_per_min: np.ndarray | None = None,
    c_grid_per_min: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """FRTM profile residual of each TAC as a function of k2'.

    Parameters
    ----------
    tacs : ndarray, shape (n_frames, n_tacs)
        Tissue TACs (kBq/mL) of different binding levels.
    ref : ndarray, shape (n_frames,)
        Reference TAC (kBq/mL).
    timing : FrameTiming
    window : (float, float), optional
        Frames fitted (mid-time inside, minutes). Integrals always run from
        injection; the window should start at injection (the early frames carry
        the k2' information).
    k2p_grid_per_min : ndarray, optional
        Candidate k2' values, 1/min (default 120 log-spaced in 0.02-1).
    c_grid_per_min : ndarray, optional
        Candidate ``k3 + k4``, 1/min (default 120 log-spaced in 0.01-3).

    Returns
    -------
    k2p_grid_per_min : ndarray, shape (n_k,)
    rss : ndarray, shape (n_k, n_tacs)
        Minimum weighted residual sum of squares over ``c`` for each k2'.
    n_fit : int
        Frames fitted.
    """
    tacs = as_tac_matrix(tacs, timing)
    ref = check_reference(ref, timing)
    kg = np.geomspace(0.02, 1.0, 120) if k2p_grid_per_min is None else k2p_grid_per_min
    cg = np.geomspace(0.01, 3.0, 120) if c_grid_per_min is None else c_grid_per_min
    kg = np.asarray(kg, dtype=float)
    cg = np.asarray(cg, dtype=float)
    m = fit_frame_mask(timing, window)
    imat = integration_matrix(timing)
    w = _frame_weights(tacs.mean(axis=1), timing)
    sw = np.sqrt(w / w[m].max())[m][:, None, None]
    ri, t_int = imat @ ref, imat @ tacs
    rii, tii = imat @ ri, imat @ t_int
    r, ri, rii = ref[m][:, None, None], ri[m][:, None, None], rii[m][:, None, None]
    ti, tii, y0 = t_int[m][:, None, :], tii[m][:, None, :], tacs[m][:, None, :]
    k = kg[None, :, None]
    base = r + k * (ri - ti)  # (f, k, t)
    inf_term = ri + k * rii  # (f, k, 1)
    x2 = -k * tii * sw
    a22 = np.einsum("fkt,fkt->kt", x2, x2)
    best = np.full((kg.size, tacs.shape[1]), np.inf)
    for c in cg:  # loop over k3 + k4 candidates (n_c small 2-column solves)
        x1 = (base + c * inf_term) * sw
        y = (y0 + c * ti) * sw
        a11 = np.einsum("fkt,fkt->kt", x1, x1)
        a12 = np.einsum("fkt,fkt->kt", x1, x2)
        b1 = np.einsum("fkt,fkt->kt", x1, y)
        b2 = np.einsum("fkt,fkt->kt", x2, y)
        yy = np.einsum("fkt,fkt->kt", y, y)
        det = a11 * a22 - a12**2
        with np.errstate(divide="ignore", invalid="ignore"):
            p1 = (a22 * b1 - a12 * b2) / det
            p2 = (a11 * b2 - a12 * b1) / det
            rss = yy - p1 * b1 - p2 * b2
        rss = np.where(np.isfinite(rss) & (p1 > 0), rss, np.inf)
        best = np.minimum(best, rss)
    return kg, best, int(m.sum())


def k2p_from_rois(
    tacs: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    names: Sequence[str] | None = None,
    *,
    window: tuple[float, float] | None = None,
    max_rel_se: float = 0.25,
    k2p_range_per_min: tuple[float, float] = (0.02, 1.0),
    n_grid: int = 120,
    k4: str = "shared",
) -> tuple[float, str]:
    """k2' (1/min) shared by several ROI TACs of different binding (FRTM profile).

    Parameters
    ----------
    tacs : ndarray, shape (n_frames, n_tacs)
        At least two ROI TACs (kBq/mL) with different binding, e.g. thalamus,
        amygdala, striatum, insula.
    ref : ndarray, shape (n_frames,)
        Reference (occipital) TAC, kBq/mL.
    timing : FrameTiming
    names : sequence of str, optional
        ROI names for the description.
    window : (float, float), optional
        Baseline frames (minutes), e.g. ``(0, 45)`` for a one-scan design with
        the challenge at 45 min; ``None`` (all frames) for a baseline scan.
    max_rel_se : float
        Largest accepted relative 1-SD profile-likelihood half-width of k2'.
    k2p_range_per_min : (float, float)
        Searched k2' range, 1/min.
    n_grid : int
        Grid points for k2' and for ``k3 + k4`` (``k4="free"``).
    k4 : {"shared", "free"}
        ``"shared"`` (default): one k4 (1/min) for all TACs, per TAC R1 and k3
        (:func:`_fit_shared_k4`, relative SE from the Jacobian); better
        conditioned at slow dissociation (worst k2' error at ROI noise 0.02
        15-21 % instead of 16-98 % across k4 0.05-0.6, docs/kinetics.md);
        assumes one receptor population (k4 is the ligand's dissociation rate).
        ``"free"``: every TAC has its own ``k3 + k4`` and ``k4`` (profile over
        a grid of k2', relative SE from the profile-likelihood interval).

    Returns
    -------
    k2p_per_min : float
    description : str
        How it was obtained (TACs, window, relative SE), for provenance.

    Raises
    ------
    MorError
        Fewer than two TACs, or k2' ill-determined (flat or two-valleyed
        profile, or at the edge of the range).
    """
    tacs = as_tac_matrix(tacs, timing)
    names = [f"roi_{i}" for i in range(tacs.shape[1])] if names is None else names
    names = [str(n) for n in names]
    if tacs.shape[1] < 2:
        raise MorError(
            "k2' from ROIs needs at least two TACs of different binding (one TAC "
            "cannot separate k2' from k3 + k4); add more ROIs (e.g. thalamus, "
            "striatum, insula) or give k2' explicitly."
        )
    low, high = (float(v) for v in k2p_range_per_min)
    if not (0 < low < high):
        raise MorError(
            f"k2' range {low:g}-{high:g} /min is invalid; need 0 < low < high."
        )
    if k4 not in ("free", "shared"):
        raise MorError(f"k4 must be 'free' or 'shared', not {k4!r}.")
    where = (
        "all frames" if window is None else f"frames {window[0]:g}-{window[1]:g} min"
    )
    if k4 == "shared":
        return _k2p_shared_k4(
            tacs, ref, timing, names, window, where, max_rel_se, (low, high)
        )
    kg = np.geomspace(low, high, int(n_grid))
    cg = np.geomspace(0.01, 3.0, int(n_grid))
    kg, rss, n_fit = k2p_profile(
        tacs, ref, timing, window=window, k2p_grid_per_min=kg, c_grid_per_min=cg
    )
    finite = np.all(np.isfinite(rss), axis=0)
    if finite.sum() < 2:
        raise MorError(
            "k2' profile failed for all but one TAC (non-finite fits); check the "
            "TACs and the window, or give k2' explicitly."
        )
    rss = rss[:, finite]
    floor = 1e-12 * np.max(rss[np.isfinite(rss)])
    nll = n_fit * np.log(np.maximum(rss, floor))
    total = nll.sum(axis=1)
    ok_rows = np.isfinite(total)
    total = np.where(ok_rows, total, np.inf)
    i = int(np.argmin(total))
    k2p = _refine(np.log(kg), total, i)
    inside = np.flatnonzero(total <= total[i] + 1.0)  # 1-SD profile interval
    rel_se = 0.5 * (kg[inside[-1]] - kg[inside[0]]) / k2p if inside.size else np.inf
    rel_se = max(rel_se, 0.5 * (kg[1] / kg[0] - 1.0))
    used = ", ".join(n for n, f in zip(names, finite, strict=True) if f)
    if i in (0, kg.size - 1) or not np.isfinite(rel_se) or rel_se > max_rel_se:
        raise MorError(
            f"k2' is ill-determined from {used} ({where}): best {k2p:.3g} /min, "
            f"relative SE {rel_se:.2f} > {max_rel_se:g} or at the edge of "
            f"{low:g}-{high:g} /min. Use a baseline window that starts at "
            "injection, add ROIs of different binding (or larger / smoother "
            "ones), or give k2' explicitly."
        )
    desc = f"FRTM profile shared by {used}, {where} (rel. SE {rel_se:.2f})"
    return float(k2p), desc


#: Results of :func:`_fit_shared_k4` by input digest: the fit is deterministic and
#: takes ~0.5 s, and the dock's live re-fits (t*, model) ask again for the same
#: TACs. A few entries: each is four floats.
_SHARED_K4_MEMO: dict[str, tuple[float, float, float, bool]] = {}
_SHARED_K4_MEMO_SIZE = 32


def _fit_shared_k4(
    tacs: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    window: tuple[float, float] | None = None,
    k2p_range_per_min: tuple[float, float] = (0.02, 1.0),
) -> tuple[float, float, float, bool]:
    """:func:`_solve_shared_k4`, remembered for the same inputs (same result)."""
    import hashlib

    digest = hashlib.sha1()
    for array in (tacs, ref, timing.frame_start_s, timing.frame_duration_s):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        digest.update(repr(np.shape(array)).encode())
    digest.update(repr((window, tuple(k2p_range_per_min))).encode())
    key = digest.hexdigest()
    if key not in _SHARED_K4_MEMO:
        if len(_SHARED_K4_MEMO) >= _SHARED_K4_MEMO_SIZE:
            _SHARED_K4_MEMO.pop(next(iter(_SHARED_K4_MEMO)))
        _SHARED_K4_MEMO[key] = _solve_shared_k4(
            tacs, ref, timing, window=window, k2p_range_per_min=k2p_range_per_min
        )
    return _SHARED_K4_MEMO[key]


def _solve_shared_k4(
    tacs: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    window: tuple[float, float] | None = None,
    k2p_range_per_min: tuple[float, float] = (0.02, 1.0),
) -> tuple[float, float, float, bool]:
    """FRTM fit of several TACs sharing k2' and k4 (nonlinear least squares).

    Parameters
    ----------
    tacs : ndarray, shape (n_frames, n_tacs)
        Tissue TACs (kBq/mL) of different binding.
    ref : ndarray, shape (n_frames,)
        Reference TAC (kBq/mL).
    timing : FrameTiming
    window : (float, float), optional
        Fitted frames (mid-time inside), minutes; integrals from injection.
    k2p_range_per_min : (float, float)
        Bounds of k2', 1/min.

    Returns
    -------
    k2p_per_min : float
    k4_per_min : float
    rel_se : float
        Relative 1-SD error of k2' from the Jacobian (inf if singular).
    at_edge : bool
        k2' within 1 % of a bound.

    Notes
    -----
    Residual of TAC ``j`` (weighted by :func:`_frame_weights`), the module's
    integrated FRTM equation with ``c_j = k3_j + k4``::

        Ct_j - R1_j [Cr + k2' (int Cr - int Ct_j) + c_j (int Cr + k2' iint Cr)
                     - k4 k2' iint Ct_j] + c_j int Ct_j

    Parameters ``log k2'``, ``log k4`` (shared), ``log k3_j``, ``R1_j``;
    deterministic multi-start (18 starts) trust-region least squares.
    """
    tacs = as_tac_matrix(tacs, timing)
    ref = check_reference(ref, timing)
    m = fit_frame_mask(timing, window)
    imat = integration_matrix(timing)
    sw = np.sqrt(_frame_weights(tacs.mean(axis=1), timing)[m])
    sw = sw / sw.max()
    ri, ti = imat @ ref, imat @ tacs
    rii, tii = imat @ ri, imat @ ti
    r, ri, rii = ref[m][:, None], ri[m][:, None], rii[m][:, None]
    ct, ti, tii = tacs[m], ti[m], tii[m]
    scale = float(np.max(np.abs(ct))) or 1.0
    n_t = tacs.shape[1]

    def residuals(p: np.ndarray) -> np.ndarray:
        k2p, k4 = np.exp(p[0]), np.exp(p[1])
        c = np.exp(p[2 : 2 + n_t]) + k4
        r1 = p[2 + n_t :]
        model = r1 * (r + k2p * (ri - ti) + c * (ri + k2p * rii) - k4 * k2p * tii)
        return (((ct + c * ti) - model) * sw[:, None] / scale).ravel()

    lo_k, hi_k = np.log(k2p_range_per_min[0]), np.log(k2p_range_per_min[1])
    lower = np.r_[lo_k, np.log(1e-3), np.full(n_t, np.log(1e-4)), np.full(n_t, 0.01)]
    upper = np.r_[hi_k, np.log(3.0), np.full(n_t, np.log(30.0)), np.full(n_t, 10.0)]
    best = None
    for k2p0 in (0.08, 0.15, 0.3):
        for k40 in (0.03, 0.1, 0.4):
            for bp0 in (1.0, 3.0):
                p0 = np.r_[
                    np.log(k2p0),
                    np.log(k40),
                    np.full(n_t, np.log(bp0 * k40)),
                    np.ones(n_t),
                ]
                p0 = np.clip(p0, lower + 1e-9, upper - 1e-9)
                try:
                    sol = least_squares(
                        residuals, p0, bounds=(lower, upper), x_scale="jac"
                    )
                except ValueError:  # non-finite residuals at the start
                    continue
                if np.isfinite(sol.cost) and (best is None or sol.cost < best.cost):
                    best = sol
    if best is None:
        return np.nan, np.nan, np.inf, True
    k2p, k4 = float(np.exp(best.x[0])), float(np.exp(best.x[1]))
    dof = max(best.fun.size - best.x.size, 1)
    jac = best.jac
    try:
        cov = np.linalg.inv(jac.T @ jac) * (2.0 * best.cost / dof)
        rel_se = float(np.sqrt(cov[0, 0])) if cov[0, 0] > 0 else np.inf
    except np.linalg.LinAlgError:
        rel_se = np.inf
    at_edge = bool(min(best.x[0] - lo_k, hi_k - best.x[0]) < 0.01)
    return k2p, k4, rel_se, at_edge


def _k2p_shared_k4(
    tacs: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    names: list[str],
    window: tuple[float, float] | None,
    where: str,
    max_rel_se: float,
    k2p_range: tuple[float, float],
) -> tuple[float, str]:
    """:func:`k2p_from_rois` with ``k4="shared"``: fit, check, describe."""
    used = ", ".join(names)
    ref = check_reference(ref, timing)
    m = fit_frame_mask(timing, window)
    if not (np.all(np.isfinite(tacs[m])) and np.all(np.isfinite(ref[m]))):
        raise MorError(
            f"k2' fit: the TACs of {used} or the reference have NaN/inf values in "
            f"{where}; remove the non-finite ROIs or voxels, or give k2' explicitly."
        )
    k2p, k4, rel_se, at_edge = _fit_shared_k4(
        tacs, ref, timing, window=window, k2p_range_per_min=k2p_range
    )
    if at_edge or not np.isfinite(rel_se) or rel_se > max_rel_se:
        raise MorError(
            f"k2' is ill-determined from {used} ({where}): best {k2p:.3g} /min, "
            f"relative SE {rel_se:.2f} > {max_rel_se:g} or at the edge of "
            f"{k2p_range[0]:g}-{k2p_range[1]:g} /min. Use a baseline window that "
            "starts at injection, add ROIs of different binding (or larger / "
            "smoother ones), or give k2' explicitly."
        )
    desc = (
        f"FRTM profile shared by {used}, {where}, one k4 for all ({k4:.3g} /min, "
        f"shared k4 fit; rel. SE {rel_se:.2f})"
    )
    return k2p, desc


def _refine(log_k: np.ndarray, total: np.ndarray, i: int) -> float:
    """Parabolic refinement of the minimum in log k2'."""
    if 0 < i < log_k.size - 1 and np.all(np.isfinite(total[i - 1 : i + 2])):
        y0, y1, y2 = total[i - 1 : i + 2]
        denom = y0 - 2.0 * y1 + y2
        if denom > 0:
            step = 0.5 * (y0 - y2) / denom
            h = log_k[i + 1] - log_k[i]
            return float(np.exp(log_k[i] + np.clip(step, -1, 1) * h))
    return float(np.exp(log_k[i]))


def _box_smooth(image: np.ndarray, valid: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^3 box of the valid voxels (NaN-free, numpy only)."""
    if radius <= 0:
        return np.where(valid, image, np.nan)
    num = np.where(valid, image, 0.0).astype(np.float64)
    den = valid.astype(np.float64)
    for axis in range(image.ndim):
        num = _box_1d(num, axis, radius)
        den = _box_1d(den, axis, radius)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, num / den, np.nan)


def _box_1d(a: np.ndarray, axis: int, r: int) -> np.ndarray:
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r + 1, r)
    c = np.cumsum(np.pad(a, pad), axis=axis)
    n = a.shape[axis]
    hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
    lo = np.take(c, np.arange(0, n), axis=axis)
    return hi - lo


def k2p_from_high_binding_voxels(
    pet: np.ndarray,
    mask: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    window: tuple[float, float] | None = None,
    top_fraction: float = 0.25,
    n_bands: int = 4,
    smooth_radius: int = 1,
    min_voxels_per_band: int = 20,
    max_rel_se: float = 0.25,
    k4: str = "shared",
) -> tuple[float, str]:
    """k2' (1/min) for voxelwise maps from composite TACs of high-binding voxels.

    A first-pass binding image (late-frame tissue / reference ratio, the last
    third of the fitted frames, box-smoothed inside the mask) ranks the voxels;
    the top ``top_fraction`` are split by rank into ``n_bands`` equal-count
    bands, each band's mean TAC is a low-noise composite of a different binding
    level, and k2' is the value shared by the composites under the FRTM, with
    one k4 for all composites by default (:func:`k2p_from_rois` with
    ``k4="shared"``). Averaging hundreds of voxels removes voxel noise
    that biases voxelwise MRTM k2' (median voxelwise MRTM reads 0.03-0.08 for a
    true 0.15 /min).

    Parameters
    ----------
    pet : ndarray, shape (t, x, y, z)
        Dynamic PET, kBq/mL (float32). Not modified.
    mask : ndarray of bool, shape (x, y, z)
        Brain mask (exclude the reference region and background).
    ref : ndarray, shape (t,)
        Reference TAC, kBq/mL.
    timing : FrameTiming
    window : (float, float), optional
        Baseline frames, minutes (start at injection), e.g. ``(0, 45)``.
    top_fraction : float
        Fraction of mask voxels (highest first-pass ratio) used.
    n_bands : int
        Composite TACs (binding levels), >= 2.
    smooth_radius : int
        Box radius (voxels) of the ranking image smoothing (0 = none).
    min_voxels_per_band : int
        Fewer voxels per band raises (composites would be too noisy).
    max_rel_se : float
        As in :func:`k2p_from_rois`.
    k4 : {"shared", "free"}
        As in :func:`k2p_from_rois`. ``"free"`` was the default before
        issue 12; at k4 = 0.05 /min and voxel noise 0.10 it missed 10 % in a
        sixth of the seeds (see docs/kinetics.md).

    Returns
    -------
    k2p_per_min : float
    description : str
    """
    pet = np.asarray(pet)
    mask = np.asarray(mask) != 0
    if pet.ndim != 4 or pet.shape[0] != timing.n_frames or mask.shape != pet.shape[1:]:
        raise MorError(
            f"PET {pet.shape} / mask {mask.shape} do not match: need PET (t, x, y, z) "
            f"with t = {timing.n_frames} frames and a mask of shape (x, y, z)."
        )
    ref = check_reference(ref, timing)
    n_bands = int(n_bands)
    if n_bands < 2 or not (0 < top_fraction <= 1):
        raise MorError(
            "Need n_bands >= 2 and 0 < top_fraction <= 1 (defaults 4 and 0.25)."
        )
    fitted = np.flatnonzero(fit_frame_mask(timing, window))
    late = fitted[-max(len(fitted) // 3, 1) :]
    flat, layout = frames_by_voxel(pet)
    idx = np.flatnonzero(mask.ravel())  # C order: ranking and ties as always
    cols = idx  # the same voxels as columns of ``flat``
    if layout == "F":
        cols = np.ravel_multi_index(
            np.unravel_index(idx, mask.shape), mask.shape, order="F"
        )
    dur = timing.frame_duration_min[late]
    ratio_vals = (dur @ flat[late[:, None], cols].astype(np.float64)) / (
        dur @ ref[late]
    )
    good = np.isfinite(ratio_vals)
    ratio = np.full(mask.size, np.nan)
    ratio[idx] = ratio_vals
    valid = np.zeros(mask.size, dtype=bool)
    valid[idx[good]] = True
    ranked = _box_smooth(
        np.nan_to_num(ratio).reshape(mask.shape),
        valid.reshape(mask.shape),
        int(smooth_radius),
    ).ravel()[idx]
    ranked = np.where(good, ranked, -np.inf)
    n_top = round(top_fraction * idx.size)
    if n_top < n_bands * int(min_voxels_per_band):
        raise MorError(
            f"Only {n_top} high-binding voxels ({top_fraction:g} of {idx.size} in "
            f"the mask) for {n_bands} composites of >= {min_voxels_per_band}; use "
            "a larger brain mask or top_fraction, or k2' from ROIs "
            "(k2p_from_rois) or give k2' explicitly."
        )
    order = np.argsort(ranked)[::-1][:n_top]  # positions in idx / cols
    bands = np.array_split(order, n_bands)
    # each band's voxels in memory order: a sequential gather (the mean is the
    # same up to round-off as in rank order, which jumps across the volume)
    comps = np.stack(
        [
            np.take(flat, np.sort(cols[b]), axis=1).astype(np.float64).mean(axis=1)
            for b in bands
        ],
        axis=1,
    )
    names = [
        f"top {100 * top_fraction * k / n_bands:.3g}-"
        f"{100 * top_fraction * (k + 1) / n_bands:.3g} % ({b.size} voxels)"
        for k, b in enumerate(bands)
    ]
    k2p, desc = k2p_from_rois(
        comps, ref, timing, names, window=window, max_rel_se=max_rel_se, k4=k4
    )
    return k2p, desc + " (composites of high-binding voxels ranked by late ratio)"
