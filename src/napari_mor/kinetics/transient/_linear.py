"""Transient-release fits: the multilinear form, the ROI entry point and maps.

A reference-region model with a time-varying receptor term, fitted by linear
least squares for each response basis function and chosen by the weighted
residual; vectorised over TACs / voxels (batched normal equations, no per-TAC
Python loop). See ``docs/transient.md`` for the equations and the validation.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from napari_mor._errors import MorError
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics._checks import (
    as_tac_matrix,
    check_positive_k2p,
    check_reference,
)
from napari_mor.kinetics.integrate import integration_matrix
from napari_mor.kinetics.results import MapResult
from napari_mor.kinetics.transient._forward import unit_response
from napari_mor.kinetics.weights import frame_weights

__all__ = [
    "DEFAULT_SHAPES",
    "MIN_BASELINE_MIN",
    "MIN_POST_ONSET_FRAMES",
    "TransientFit",
    "fit_transient",
    "iter_fit_transient_blocks",
    "response_basis",
]

#: Earliest allowed onset (minutes): the baseline period the model needs.
MIN_BASELINE_MIN = 10.0
#: First onset of the default onset search (minutes): earlier onsets fit the
#: small misfit of the early, fast frames (see docs/transient.md).
SEARCH_FROM_MIN = 20.0
#: Frames with mid-times after the onset that a fit needs.
MIN_POST_ONSET_FRAMES = 4
#: Default response shapes: sustained rise time constants / gamma peak delays, min.
DEFAULT_SHAPES = (
    ("sustained", 0.0),
    ("sustained", 2.0),
    ("sustained", 5.0),
    ("sustained", 10.0),
    ("gamma", 5.0),
    ("gamma", 10.0),
    ("gamma", 20.0),
)
#: Voxelwise map names.
MAP_PARAMS = (
    "bp_nd",
    "bp_nd_challenge",
    "pct_delta_bp_nd",
    "onset_min",
    "peak_min",
    "p_release",
)


@dataclass(frozen=True)
class TransientFit:
    """Transient-release fit of one TAC.

    Attributes
    ----------
    name : str
    model : str
        ``"lpntpet"``.
    tissue : str
        ``"2t"`` (default, two-tissue target) or ``"1t"`` (Normandin MRTM2 form).
    bp_nd : float
        BP_ND before the onset (baseline receptor availability).
    bp_nd_challenge : float
        BP_ND at the maximum of the response: the plateau of a sustained
        response, the peak (minimum BP_ND) of a transient (gamma) one.
    pct_delta_bp : float
        ``100 (bp_nd - bp_nd_challenge) / bp_nd``; positive = release.
    onset_min, peak_min : float
        Response onset and the time it reaches its maximum (sustained: 95 % of
        the plateau, ``onset + 3 tau``), minutes from injection.
    shape : str
        ``"sustained"`` or ``"gamma"``; ``shape_min`` its rise constant / peak delay.
    p_release : float
        p-value of the release model against the no-release model: the F
        statistic referred to its null distribution (``"nls"``: linearised
        at the no-release fit; ``"linear"``: bootstrap refits; see
        :func:`fit_transient`; the nominal F p-value when ``n_boot=0``).
    p_nominal : float
        Nominal F-distribution p-value (anticonservative; for reference only).
    f_stat : float
    aic, aic_null : float
        AIC (``n ln(WRSS/n) + 2 p``, p counting the searched basis parameters)
        of the release and the no-release model.
    k2p_per_min : float
    n_frames : int
    frame_mid_min, y, fitted, fitted_null, response : ndarray, shape (n_frames,)
        Data, release fit, no-release fit and the unit response ``h(t)``
        (frame means, for plotting the release curve over the TAC).
    method : str
        ``"nls"`` (nonlinear refinement, default for ``tissue="2t"``) or
        ``"linear"`` (the multilinear form only).
    r1 : float
        ``K1/K1'`` of the target (unitless).
    k2_per_min, k3_per_min, k4_per_min : float
        Target rate constants before the onset (1/min); with
        ``delta_k3_per_min`` (the fall of k3 at ``h = 1``, 1/min) they
        re-simulate ``fitted`` through :func:`simulate_target` with this fit's
        onset and shape. NaN when not defined (``tissue="1t"``).
    """

    name: str
    model: str
    tissue: str
    bp_nd: float
    bp_nd_challenge: float
    pct_delta_bp: float
    onset_min: float
    peak_min: float
    shape: str
    shape_min: float
    p_release: float
    p_nominal: float
    f_stat: float
    aic: float
    aic_null: float
    k2p_per_min: float
    n_frames: int
    frame_mid_min: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    fitted_null: np.ndarray = field(repr=False)
    response: np.ndarray = field(repr=False)
    method: str = "linear"
    r1: float = np.nan
    k2_per_min: float = np.nan
    k3_per_min: float = np.nan
    k4_per_min: float = np.nan
    delta_k3_per_min: float = np.nan

    def as_row(self) -> dict[str, float | str | int]:
        """Flat dictionary for a TSV row (columns of the ROI fit table)."""
        return {
            "name": self.name,
            "model": self.model,
            "BP_ND": self.bp_nd,
            "BP_ND_challenge": self.bp_nd_challenge,
            "pct_delta_BP": self.pct_delta_bp,
            "onset_min": self.onset_min,
            "peak_min": self.peak_min,
            "shape": self.shape,
            "p_release": self.p_release,
            "AIC": self.aic,
            "AIC_null": self.aic_null,
            "k2p": self.k2p_per_min,
            "n_frames": self.n_frames,
        }


def response_basis(
    timing: FrameTiming, onset_min: float, shape: str, shape_min: float
) -> tuple[np.ndarray, np.ndarray]:
    """Frame means of a unit response ``h(t)`` and of its derivative.

    Parameters
    ----------
    timing : FrameTiming
    onset_min : float
        Onset, minutes from injection (``h = 0`` before it).
    shape : {"sustained", "gamma"}
        ``"sustained"``: ``1 - exp(-(t - onset)/shape_min)`` (a step when
        ``shape_min`` is 0). ``"gamma"``: gamma variate
        ``u^a exp(a (1 - u))``, ``u = (t - onset)/shape_min``, ``a = 2``,
        peak 1 at ``onset + shape_min``.
    shape_min : float
        Rise time constant (sustained) or peak delay (gamma), minutes.

    Returns
    -------
    h, dh : ndarray, shape (n_frames,)
        Frame-averaged ``h`` (exact for a step, else 64-interval trapezoid
        quadrature within frames) and the
        exact frame average of ``dh/dt`` (``(h(end) - h(start)) / duration``).
    """
    start, end = timing.frame_start_min, timing.frame_end_min
    u = np.linspace(0.0, 1.0, 65)
    t = start[:, None] + (end - start)[:, None] * u[None, :]
    if shape == "sustained" and shape_min <= 0:  # a step: exact frame means
        h = np.clip((end - onset_min) / (end - start), 0.0, 1.0)
    else:
        h = np.trapezoid(unit_response(t, onset_min, shape, shape_min), u, axis=1)
    dh = unit_response(end, onset_min, shape, shape_min) - unit_response(
        start, onset_min, shape, shape_min
    )
    return h, dh / (end - start)


def _peak_min(onset: float, shape: str, shape_min: float) -> float:
    return onset + (3.0 * shape_min if shape == "sustained" else shape_min)


def _check_onsets(timing: FrameTiming, onset_min, onset_step_min) -> np.ndarray:
    end = float(timing.frame_end_min[-1])
    mid = timing.frame_mid_min
    if onset_min is None:
        last = mid[-MIN_POST_ONSET_FRAMES] if mid.size >= MIN_POST_ONSET_FRAMES else 0.0
        grid = np.arange(SEARCH_FROM_MIN, last, float(onset_step_min))
        if grid.size == 0:
            raise MorError(
                f"The scan ({end:g} min) is too short to search for an onset: it "
                f"needs a baseline of >= {MIN_BASELINE_MIN:g} min and then "
                f"{MIN_POST_ONSET_FRAMES} frames; use a longer scan or give "
                "onset_min (--challenge-onset MIN)."
            )
        return grid
    onsets = np.atleast_1d(np.asarray(onset_min, dtype=float))
    for onset in onsets:
        if not (np.isfinite(onset) and 0.0 < onset < end):
            raise MorError(
                f"Challenge onset {onset:g} min is outside the scan (0-{end:g} min); "
                "give the onset in minutes from injection (--challenge-onset MIN)."
            )
        if onset < MIN_BASELINE_MIN:
            raise MorError(
                f"Challenge onset {onset:g} min leaves no baseline period: the model "
                f"needs >= {MIN_BASELINE_MIN:g} min of scan before the challenge to "
                "estimate the baseline BP_ND; start the challenge later, or use a "
                "two-scan design (baseline and challenge scans)."
            )
        n_post = int(np.sum(mid > onset))
        if n_post < MIN_POST_ONSET_FRAMES:
            raise MorError(
                f"Only {n_post} frame(s) have mid-times after the onset at {onset:g} "
                f"min; the release fit needs >= {MIN_POST_ONSET_FRAMES}. Give an "
                "earlier onset or acquire longer after the challenge."
            )
    return onsets


def _check_shapes(shapes) -> tuple[tuple[str, float], ...]:
    out = []
    for item in shapes:
        try:
            shape, value = item
            value = float(value)
        except (TypeError, ValueError):
            raise MorError(
                f"Response shape {item!r} must be a pair (name, minutes), e.g. "
                "('sustained', 5.0) or ('gamma', 10.0)."
            ) from None
        if (
            shape not in ("sustained", "gamma")
            or not np.isfinite(value)
            or (value < 0 or (shape == "gamma" and value <= 0))
        ):
            raise MorError(
                f"Response shape {item!r} is invalid: use 'sustained' with a rise "
                "constant >= 0 min or 'gamma' with a peak delay > 0 min."
            )
        out.append((shape, value))
    if not out:
        raise MorError(
            "No response shapes given; pass at least one, e.g. [('sustained', 0.0)]."
        )
    return tuple(out)


@dataclass
class _Prepared:
    timing: FrameTiming
    ref: np.ndarray
    k2p: float
    tissue: str
    sqrt_w: np.ndarray
    bases: list[tuple[float, str, float, np.ndarray, np.ndarray]]
    n_searched: int
    matrix: np.ndarray
    qr: np.ndarray
    iqr: np.ndarray


def _prepare(
    ref,
    timing,
    k2p_per_min,
    onset_min,
    shapes,
    onset_step_min,
    weights,
    tissue,
    representative,
) -> _Prepared:
    ref = check_reference(ref, timing)
    k2p = check_positive_k2p(k2p_per_min, "lpntpet")
    if tissue not in ("2t", "1t"):
        raise MorError(
            f"tissue={tissue!r} is unknown: use '2t' (two-tissue target, default) "
            "or '1t' (MRTM2 form of Normandin 2012)."
        )
    onsets = _check_onsets(timing, onset_min, onset_step_min)
    shapes = _check_shapes(shapes)
    n_coef = 6 if tissue == "2t" else 3
    n_searched = int(onsets.size > 1) + int(len(shapes) > 1)
    if timing.n_frames - n_coef - n_searched < 3:
        raise MorError(
            f"The scan has {timing.n_frames} frames; the transient model needs at "
            f"least {n_coef + n_searched + 3}."
        )
    w = frame_weights(timing, weights, representative)
    bases = []
    for onset in onsets:
        for shape, value in shapes:
            h, dh = response_basis(timing, float(onset), shape, value)
            bases.append((float(onset), shape, value, h, dh))
    matrix = np.asarray(integration_matrix(timing))
    qr = matrix @ ref + ref / k2p
    return _Prepared(
        timing,
        ref,
        k2p,
        tissue,
        np.sqrt(w),
        bases,
        n_searched,
        matrix,
        qr,
        matrix @ qr,
    )


def _baseline_columns(prep: _Prepared, tac: np.ndarray) -> np.ndarray:
    """No-release design, shape (n_frames, n, p0)."""
    m = prep.matrix
    n = tac.shape[1]
    it = m @ tac
    qr = np.broadcast_to(prep.qr[:, None], (tac.shape[0], n))
    if prep.tissue == "1t":
        return np.stack([qr, it], axis=-1)
    iqr = np.broadcast_to(prep.iqr[:, None], (tac.shape[0], n))
    return np.stack([qr, it, iqr, m @ it], axis=-1)


def _release_columns(prep: _Prepared, tac: np.ndarray, h, dh) -> np.ndarray:
    """Release design for one basis, shape (n_frames, n, p_r)."""
    m = prep.matrix
    if prep.tissue == "1t":
        return (m @ (h[:, None] * tac))[..., None]
    ref = prep.ref
    hr = h * ref
    b1 = m @ (m @ hr) + (m @ (hr - m @ (dh * ref))) / prep.k2p
    b2 = m @ (h[:, None] * tac - m @ (dh[:, None] * tac))
    return np.stack([np.broadcast_to(b1[:, None], tac.shape), b2], axis=-1)


def _derive(prep: _Prepared, beta: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        if prep.tissue == "1t":
            g1, g2, g3 = beta.T
            bp0 = -g1 / g2 - 1.0
            bp1 = -g1 / (g2 + g3) - 1.0
        else:
            p1, p2, p4 = beta[:, 0], beta[:, 1], beta[:, 3]
            k4 = -p4 / p1
            k3 = -p2 - p1 - k4
            delta = -beta[:, 4] / p1
            bp0 = k3 / k4
            bp1 = (k3 - delta) / k4
        pct = 100.0 * (bp0 - bp1) / bp0
    out = {"bp_nd": bp0, "bp_nd_challenge": bp1, "pct_delta_bp_nd": pct}
    if prep.tissue == "2t":
        out.update(k2=p1, k3=k3, k4=k4, delta=delta)
    return out


def _wls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Batched LS: ``x`` (f, n, p), ``y`` (f, n) -> beta (n, p)."""
    g = np.einsum("fni,fnj->nij", x, x)
    r = np.einsum("fni,fn->ni", x, y)
    with np.errstate(all="ignore"):
        return np.linalg.solve(_reg(g), r[..., None])[..., 0]


def _predict(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return np.einsum("fni,ni->fn", x, beta)


def _solve_block(prep: _Prepared, tac: np.ndarray, full: bool) -> dict:
    """Fit all columns of ``tac`` (n_frames, n): best basis by weighted RSS."""
    sw = prep.sqrt_w[:, None, None]
    sw2 = prep.sqrt_w[:, None]
    y = sw2 * tac
    n = tac.shape[1]
    a0 = sw * _baseline_columns(prep, tac)
    g00 = np.einsum("fni,fnj->nij", a0, a0)
    with np.errstate(all="ignore"):
        g00_inv = np.linalg.pinv(g00, hermitian=True)
    beta0 = np.einsum("nij,nj->ni", g00_inv, np.einsum("fni,fn->ni", a0, y))
    resid0 = y - _predict(a0, beta0)
    rss0 = np.einsum("fn,fn->n", resid0, resid0)
    best_gain = np.full(n, -np.inf)
    best_k = np.zeros(n, dtype=np.int64)
    for k, (_, _, _, h, dh) in enumerate(prep.bases):  # loop over basis functions
        ab = sw * _release_columns(prep, tac, h, dh)
        g0b = np.einsum("fni,fnj->nij", a0, ab)
        gbb = np.einsum("fni,fnj->nij", ab, ab)
        u = np.einsum("fni,fn->ni", ab, resid0)
        s = gbb - np.einsum("nij,nik,nkl->njl", g0b, g00_inv, g0b)
        with np.errstate(all="ignore"):
            gain = np.einsum(
                "ni,ni->n", u, np.linalg.solve(_reg(s), u[..., None])[..., 0]
            )
        better = np.isfinite(gain) & (gain > best_gain)
        best_gain[better] = gain[better]
        best_k[better] = k
    # solve the chosen basis of each column (grouped by basis)
    p = a0.shape[2] + (1 if prep.tissue == "1t" else 2)
    beta = np.full((n, p), np.nan)
    fitted = np.zeros_like(tac)
    for k in np.unique(best_k):  # loop over the (few) chosen bases
        cols = np.flatnonzero(best_k == k)
        _, _, _, h, dh = prep.bases[k]
        x = np.concatenate(
            [a0[:, cols], sw * _release_columns(prep, tac[:, cols], h, dh)], axis=-1
        )
        beta[cols] = _wls(x, y[:, cols])
        fitted[:, cols] = _predict(x, beta[cols]) / sw2
    resid1 = y - sw2 * fitted
    rss1 = np.einsum("fn,fn->n", resid1, resid1)
    out = _derive(prep, beta)
    n_fit = tac.shape[0]
    d1 = (p - a0.shape[2]) + prep.n_searched
    d2 = n_fit - p - prep.n_searched
    with np.errstate(divide="ignore", invalid="ignore"):
        f_stat = np.maximum(rss0 - rss1, 0.0) / d1 / (rss1 / d2)
        out["p_release"] = stats.f.sf(f_stat, d1, d2)
        out["f_stat"] = f_stat
        out["aic"] = n_fit * np.log(rss1 / n_fit) + 2 * (p + prep.n_searched)
        out["aic_null"] = n_fit * np.log(rss0 / n_fit) + 2 * a0.shape[2]
    onset = np.array([b[0] for b in prep.bases])[best_k]
    peak = np.array([_peak_min(b[0], b[1], b[2]) for b in prep.bases])[best_k]
    out["onset_min"], out["peak_min"], out["basis_index"] = onset, peak, best_k
    out["fitted_null"] = _predict(a0, beta0) / sw2
    out["sigma"] = np.sqrt(rss0 / (n_fit - a0.shape[2]))
    if full:
        out["fitted"] = fitted
    return out


def _null_f(
    prep: _Prepared,
    fitted_null: np.ndarray,
    sigma: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    chunk: int = 4096,
) -> np.ndarray:
    """F statistics of ``n_boot`` parametric-bootstrap null replicates per column.

    Replicates are the no-release fit plus Gaussian noise with the fitted
    weighted residual SD (``sigma / sqrt(w_f)`` per frame); each is refitted
    with the same basis search. Returns shape (n, n_boot).
    """
    n = fitted_null.shape[1]
    sd = sigma[None, :, None] / prep.sqrt_w[:, None, None]
    reps = fitted_null[:, :, None] + sd * rng.standard_normal(
        (*fitted_null.shape, n_boot)
    )
    reps = reps.reshape(fitted_null.shape[0], n * n_boot)
    f_null = np.empty(n * n_boot)
    for start in range(0, reps.shape[1], chunk):  # loop over chunks of replicates
        block = reps[:, start : start + chunk]
        f_null[start : start + block.shape[1]] = _solve_block(prep, block, False)[
            "f_stat"
        ]
    return f_null.reshape(n, n_boot)


def _boot_p(f_stat: np.ndarray, f_null: np.ndarray) -> np.ndarray:
    """``(1 + #{F* >= F}) / (B + 1)`` row-wise (NaN-safe: NaN F* count as >=)."""
    with np.errstate(invalid="ignore"):
        exceed = ~(f_null < f_stat[:, None])
    p = (1.0 + exceed.sum(axis=1)) / (f_null.shape[1] + 1.0)
    return np.where(np.isfinite(f_stat), p, np.nan)


def _reg(g: np.ndarray) -> np.ndarray:
    """Tiny ridge relative to the diagonal (plus an absolute floor, for all-zero
    voxels), so singular systems give finite output; non-finite systems become
    the identity (their solution is then 0 and the voxel fails on its BP_ND)."""
    d = np.einsum("nii->ni", g)
    eye = np.eye(g.shape[1])[None]
    out = g + (1e-13 * np.abs(d) + 1e-300)[:, :, None] * eye
    bad = ~np.all(np.isfinite(out), axis=(1, 2))
    if np.any(bad):
        out[bad] = eye[0]
    return out


def fit_transient(
    tac: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    k2p_per_min: float,
    onset_min: float | Sequence[float] | None = None,
    shapes: Sequence[tuple[str, float]] = DEFAULT_SHAPES,
    onset_step_min: float = 1.0,
    weights: str | np.ndarray = "none",
    tissue: str = "2t",
    names: Sequence[str] | None = None,
    n_boot: int | None = None,
    seed: int | None = 0,
    method: str = "auto",
) -> list[TransientFit]:
    """Fit a transient (within-scan) change in receptor availability.

    Parameters
    ----------
    tac : ndarray, shape (n_frames,) or (n_frames, n_tacs)
        Target TACs (kBq/mL), frame means.
    ref : ndarray, shape (n_frames,)
        Reference TAC (kBq/mL).
    timing : FrameTiming
        Frame timing (uneven frames allowed); integrals run from injection.
    k2p_per_min : float
        Reference efflux k2' (1/min), estimated once per subject and shared.
    onset_min : float, sequence of float or None
        Challenge onset (minutes from injection). ``None``: searched on a grid
        from 20 min (step ``onset_step_min``) to the last onset that leaves
        4 frames; a sequence: searched over those values.
    shapes : sequence of (str, float)
        Response shapes searched: ``("sustained", tau_min)`` (``tau = 0``: a
        step) and ``("gamma", peak_delay_min)``. See :func:`response_basis`.
    onset_step_min : float
        Step of the onset grid when ``onset_min`` is None.
    weights : {"none", "duration", "noise"} or ndarray, shape (n_frames,)
        Frame weights (see :func:`napari_mor.kinetics.frame_weights`).
    tissue : {"2t", "1t"}
        Target model: ``"2t"`` (default) a two-tissue target with a
        time-varying k3 (needed for slowly dissociating tracers such as
        [11C]carfentanil); ``"1t"`` the MRTM2 form of lp-ntPET (Normandin 2012).
    names : sequence of str, optional
        TAC names (default ``tac0``, ``tac1``...).
    n_boot : int or None
        Null replicates for ``p_release`` (0: the nominal F distribution).
        ``method="nls"``: draws of the linearised null distribution (cheap;
        default 1999). ``method="linear"``: parametric-bootstrap refits
        (default 99; anticonservative, see docs/transient.md).
    seed : int or None
        Seed of the null draws (reproducible p-values).
    method : {"auto", "nls", "linear"}
        ``"nls"``: the linear fit refined by nonlinear least squares of the
        operational model (:func:`simulate_target`), unbiased under ROI noise;
        ``"linear"``: the multilinear fit only (fast, biased under noise).
        ``"auto"`` (default): ``"nls"`` for ``tissue="2t"``, ``"linear"``
        for ``"1t"``.

    Returns
    -------
    fits : list of TransientFit
        One per TAC column. ``pct_delta_bp`` is positive for a release.

    Notes
    -----
    ``"1t"`` (lp-ntPET, MRTM2 form), with ``Q(t) = int C_R + C_R / k2'``::

        C_T(t) = g1 Q(t) + g2 int C_T - gamma int h C_T

    so the apparent efflux is ``k2a + gamma h(t)``; ``BP_ND = -g1/g2 - 1``
    before the onset and ``-g1/(g2 - gamma) - 1`` at ``h = 1``.

    ``"2t"``: a two-tissue target with ``k3(t) = k3 - Delta h(t)`` and a
    one-tissue reference (``K1 Cp = R1 (C_R' + k2' C_R)``); eliminating the
    plasma and the free compartment and integrating twice gives, exactly::

        C_T = k2 Q - (k2 + k3 + k4) int C_T + k2 (k3 + k4) int Q
              - k2 k4 iint C_T - Delta k2 B1 + Delta B2,
        B1 = iint h (C_R + C_R'/k2'),   B2 = int (h C_T - int h' C_T),

    linear in six coefficients (the two release coefficients are fitted
    freely). ``BP_ND = k3/k4``, ``BP_ND_challenge = (k3 - Delta)/k4`` and
    ``pct_delta_bp = 100 Delta / k3``; ``Delta = -coef(B1)/coef(Q)``.

    For each basis ``h`` the release model is solved through the Schur
    complement of the no-release normal equations (one batched 2x2 solve
    per basis), and the basis with the smallest weighted RSS is kept.

    F-test: ``F = ((RSS0 - RSS1)/d1) / (RSS1/d2)`` with ``d1 = p_r + s`` and
    ``d2 = n - p - s``, where ``p_r`` is the number of release coefficients,
    ``p`` all coefficients and ``s`` the number of searched basis
    parameters (1 for a searched onset, 1 for more than one shape);
    ``p_nominal`` refers it to ``F(d1, d2)``. With ``method="linear"``,
    ``p_release`` comes from ``n_boot`` parametric-bootstrap refits of the
    no-release linear fit, which is biased under noise, so it is not
    calibrated (docs/transient.md).

    ``method="nls"`` (default): the parameters ``R1``, ``k3``, ``k4`` (with
    ``k2 = R1 k2'``, the shared non-displaceable volume the linear form also
    assumes) and the fractional fall ``f = Delta/k3`` are fitted by weighted
    nonlinear least squares of :func:`simulate_target` to the TACs (batched
    Levenberg-Marquardt over TACs, log-rates, bounds), the no-release model
    from the linear fit and two generic starts, the release model once per
    basis from the no-release solution; the basis with the smallest RSS is
    kept. ``F`` as above with ``p_r = 1`` (one release parameter) and ``p = 4``.
    ``p_release`` refers F to its null distribution under the Gauss-Newton
    linearisation at the no-release fit (the largest over the bases of the
    squared projection of white noise on each release direction made
    orthogonal to the no-release Jacobian), ``n_boot`` draws; with one basis
    this is the F(1, n - 4) distribution. With more than 8 bases (a searched
    onset) only the 8 with the largest score statistic per TAC are refitted.
    False-positive rates and power by simulation: ``docs/transient.md``.

    References
    ----------
    Normandin MD, Schiffer WK, Morris ED (2012). A linear model for estimation
    of neurotransmitter response profiles from dynamic PET data. NeuroImage
    59:2689-2699. Ichise M et al. (2003) J Cereb Blood Flow Metab 23:1096.
    """
    if method not in ("auto", "nls", "linear"):
        raise MorError(
            f"method={method!r} is unknown: use 'nls' (nonlinear refinement, "
            "default for tissue='2t'), 'linear' or 'auto'."
        )
    if method == "auto":
        method = "nls" if tissue == "2t" else "linear"
    if method == "nls" and tissue != "2t":
        raise MorError(
            f"method='nls' needs tissue='2t' (got {tissue!r}); use method='linear' "
            "for the one-tissue (MRTM2) form."
        )
    prep = _prepare(
        ref,
        timing,
        k2p_per_min,
        onset_min,
        shapes,
        onset_step_min,
        weights,
        tissue,
        tac,
    )
    tacs = as_tac_matrix(tac, timing)
    if names is None:
        names = [f"tac{i}" for i in range(tacs.shape[1])]
    if len(names) != tacs.shape[1]:
        raise MorError(
            f"{len(names)} names given for {tacs.shape[1]} TACs; give one per column."
        )
    out = _solve_block(prep, tacs, full=True)
    rng = np.random.default_rng(seed)
    if method == "nls":
        n_boot = 1999 if n_boot is None else int(n_boot)
        return _nls_fits(prep, tacs, names, out, n_boot, rng)
    n_boot = 99 if n_boot is None else int(n_boot)
    p_release = out["p_release"]
    if n_boot > 0:
        f_null = _null_f(prep, out["fitted_null"], out["sigma"], n_boot, rng)
        p_release = _boot_p(out["f_stat"], f_null)
    nan = np.full(tacs.shape[1], np.nan)
    fits = []
    for j, name in enumerate(names):
        onset, shape, value, h, _ = prep.bases[out["basis_index"][j]]
        fits.append(
            TransientFit(
                name=str(name),
                model="lpntpet",
                tissue=prep.tissue,
                bp_nd=float(out["bp_nd"][j]),
                bp_nd_challenge=float(out["bp_nd_challenge"][j]),
                pct_delta_bp=float(out["pct_delta_bp_nd"][j]),
                onset_min=onset,
                peak_min=_peak_min(onset, shape, value),
                shape=shape,
                shape_min=value,
                p_release=float(p_release[j]),
                p_nominal=float(out["p_release"][j]),
                f_stat=float(out["f_stat"][j]),
                aic=float(out["aic"][j]),
                aic_null=float(out["aic_null"][j]),
                k2p_per_min=prep.k2p,
                n_frames=timing.n_frames,
                frame_mid_min=timing.frame_mid_min.copy(),
                y=tacs[:, j].copy(),
                fitted=out["fitted"][:, j].copy(),
                fitted_null=out["fitted_null"][:, j].copy(),
                response=h.copy(),
                method="linear",
                r1=float(out.get("k2", nan)[j] / prep.k2p),
                k2_per_min=float(out.get("k2", nan)[j]),
                k3_per_min=float(out.get("k3", nan)[j]),
                k4_per_min=float(out.get("k4", nan)[j]),
                delta_k3_per_min=float(out.get("delta", nan)[j]),
            )
        )
    return fits


def _nls_fits(prep, tacs, names, lin, n_boot, rng) -> list[TransientFit]:
    """Refine the linear fits by NLS (see :func:`fit_transient`)."""
    from napari_mor.kinetics.transient._nls import fit_nls

    res = fit_nls(
        tacs,
        prep.ref,
        prep.timing,
        prep.k2p,
        prep.sqrt_w,
        prep.bases,
        {**lin, "k2p": prep.k2p},
        n_boot,
        rng,
    )
    fits = []
    for j, name in enumerate(names):
        k = int(res["basis_index"][j])
        onset, shape, value, h, _ = prep.bases[k]
        lr1, lk3, lk4, frac = res["theta1"][j]
        k3, k4 = float(np.exp(lk3)), float(np.exp(lk4))
        fits.append(
            TransientFit(
                name=str(name),
                model="lpntpet",
                tissue=prep.tissue,
                bp_nd=k3 / k4,
                bp_nd_challenge=k3 * (1.0 - frac) / k4,
                pct_delta_bp=100.0 * float(frac),
                onset_min=onset,
                peak_min=_peak_min(onset, shape, value),
                shape=shape,
                shape_min=value,
                p_release=float(res["p_release"][j]),
                p_nominal=float(res["p_nominal"][j]),
                f_stat=float(res["f_stat"][j]),
                aic=float(res["aic"][j]),
                aic_null=float(res["aic_null"][j]),
                k2p_per_min=prep.k2p,
                n_frames=prep.timing.n_frames,
                frame_mid_min=prep.timing.frame_mid_min.copy(),
                y=tacs[:, j].copy(),
                fitted=res["fitted"][:, j].copy(),
                fitted_null=res["fitted_null"][:, j].copy(),
                response=h.copy(),
                method="nls",
                r1=float(np.exp(lr1)),
                k2_per_min=float(np.exp(lr1)) * prep.k2p,
                k3_per_min=k3,
                k4_per_min=k4,
                delta_k3_per_min=float(frac) * k3,
            )
        )
    return fits


def iter_fit_transient_blocks(
    pet: np.ndarray,
    mask: np.ndarray,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    k2p_per_min: float,
    onset_min: float | Sequence[float] | None = None,
    shapes: Sequence[tuple[str, float]] = DEFAULT_SHAPES,
    onset_step_min: float = 1.0,
    weights: str | np.ndarray = "none",
    tissue: str = "2t",
    block_size: int = 8192,
    bp_range: tuple[float, float] = (-1.0, 50.0),
) -> Generator[tuple[int, int], None, MapResult]:
    """Voxelwise transient-release maps, block by block (progress, cancel).

    Parameters
    ----------
    pet : ndarray, shape (t, x, y, z)
        Dynamic PET (kBq/mL). Not modified.
    mask : ndarray of bool, shape (x, y, z)
    ref : ndarray, shape (t,)
    timing : FrameTiming
    k2p_per_min, onset_min, shapes, onset_step_min, weights, tissue
        As in :func:`fit_transient` (noise weights use the mask-mean TAC).
    block_size : int
        Voxels fitted together.
    bp_range : (float, float)
        Voxels with baseline BP_ND outside ``(low, high]`` are failed (NaN).

    Returns
    -------
    blocks : generator
        Inputs are validated when called (bad input raises :class:`MorError`
        at once); yields ``(done, total)`` voxels after each block (stop
        iterating to cancel) and returns a :class:`MapResult` with maps
        ``bp_nd``, ``bp_nd_challenge``, ``pct_delta_bp_nd``, ``onset_min``,
        ``peak_min``, ``p_release`` (float32, shape (x, y, z), NaN outside
        the mask / failed).
    """
    from napari_mor.kinetics.voxelwise import _check_pet_mask

    indices = _check_pet_mask(pet, mask, timing)
    flat = pet.reshape(pet.shape[0], -1)
    mean_tac = None
    if isinstance(weights, str) and weights == "noise":
        mean_tac = np.nanmean(flat[:, indices].astype(np.float64), axis=1)
    prep = _prepare(
        ref,
        timing,
        k2p_per_min,
        onset_min,
        shapes,
        onset_step_min,
        weights,
        tissue,
        mean_tac,
    )
    return _transient_blocks(flat, pet.shape[1:], indices, prep, block_size, bp_range)


def _transient_blocks(flat, spatial_shape, indices, prep, block_size, bp_range):
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController()
    out = {k: np.full(flat.shape[1], np.nan, np.float32) for k in MAP_PARAMS}
    n_failed = 0
    low, high = bp_range
    block_size = max(int(block_size), 1)
    for start in range(0, indices.size, block_size):  # loop over blocks of voxels
        idx = indices[start : start + block_size]
        with blas.limit(limits=1, user_api="blas"):
            res = _solve_block(prep, flat[:, idx].astype(np.float64), full=False)
        with np.errstate(invalid="ignore"):
            good = (res["bp_nd"] > low) & (res["bp_nd"] <= high)
        good &= np.all([np.isfinite(res[k]) for k in MAP_PARAMS], axis=0)
        n_failed += int(idx.size - good.sum())
        for k in MAP_PARAMS:
            out[k][idx[good]] = res[k][good]
        yield start + idx.size, indices.size
    return MapResult(
        maps={k: v.reshape(spatial_shape) for k, v in out.items()},
        model="lpntpet",
        n_voxels=int(indices.size),
        n_failed=n_failed,
        t_star_min=np.nan,
        k2p_per_min=prep.k2p,
        window_min=None,
        info={
            "tissue": prep.tissue,
            "n_bases": len(prep.bases),
            "onsets_min": sorted({b[0] for b in prep.bases}),
            "shapes": sorted({(b[1], b[2]) for b in prep.bases}),
            "bp_range": tuple(bp_range),
        },
    )
