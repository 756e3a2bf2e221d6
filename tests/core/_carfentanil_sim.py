"""Independent [11C]carfentanil bolus+infusion simulator with slow dissociation.

Independent of ``napari_mor.sample`` (and of the fitting code): the compartment
ODEs are integrated with classical RK4 on a fine grid (default 0.025 min) with
a time-varying receptor availability k3(t), then frame-averaged exactly on the
fine grid (trapezoid rule over each frame). Only
:class:`napari_mor.io.timing.FrameTiming` is imported, to hand timing objects
to the fitting functions.

Model
-----
- Plasma (metabolite-corrected, decay-corrected), bolus + constant infusion:
  ``Cp(t) = b(t) + (1/Kbol) int_0^t b(s) ds`` with the bolus response
  ``b(t) = (A1 t - A2 - A3) exp(-l1 t) + A2 exp(-l2 t) + A3 exp(-l3 t)``.
  With ``l3 = 1/Kbol`` the plasma is flat once the fast terms have gone
  (~30 min for Kbol = 50 min).
- Reference (occipital): one tissue compartment, ``K1'``, ``k2'``.
- Targets: two tissue compartments, ``K1 = R1 K1'``, ``k2 = R1 k2'`` (same
  non-displaceable distribution volume as the reference), ``k3 = BP_ND k4``.
- Challenge: ``k3(t) = k3 (1 - f s(t))`` with ``s`` a raised-cosine step from
  ``t_challenge`` to ``t_challenge + onset``.

Times are minutes (frame timing in seconds on the output), rates 1/min,
activity kBq/mL. No decay: data are decay-corrected; the noise model still
uses ``exp(lambda t)`` (counts are lower late in the scan).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_mor.io.timing import FrameTiming

#: C-11 half-life, minutes.
HALF_LIFE_MIN = 20.364

#: Region name -> (BP_ND, R1 = K1/K1'). Thalamus is the highest binder.
REGIONS: dict[str, tuple[float, float]] = {
    "thalamus": (3.5, 1.15),
    "amygdala": (3.0, 0.95),
    "vstriatum": (2.4, 1.05),
    "pag": (1.8, 1.0),
    "insula": (1.2, 1.1),
}

#: 29 frames over 90 min: 4x0.25, 4x0.5, 3x1, 2x2, 16x5 min.
FRAME_DURATIONS_MIN = np.array(
    [0.25] * 4 + [0.5] * 4 + [1.0] * 3 + [2.0] * 2 + [5.0] * 16
)


def frame_timing(durations_min: np.ndarray = FRAME_DURATIONS_MIN) -> FrameTiming:
    """Frame timing (seconds) of a contiguous schedule starting at injection."""
    d = np.asarray(durations_min, dtype=float)
    starts = np.concatenate([[0.0], np.cumsum(d)[:-1]])
    return FrameTiming(starts * 60.0, d * 60.0)


def plasma(t_min: np.ndarray, kbol_min: float = 50.0) -> np.ndarray:
    """Bolus+infusion plasma input (kBq/mL) at times ``t_min`` (minutes)."""
    t = np.asarray(t_min, dtype=float)
    a1, a2, a3 = 40.0, 3.0, 1.0
    l1, l2, l3 = 4.0, 0.3, 1.0 / kbol_min
    e1 = np.exp(-l1 * t)
    bolus = (a1 * t - a2 - a3) * e1 + a2 * np.exp(-l2 * t) + a3 * np.exp(-l3 * t)
    integral = (
        a1 * (1.0 - e1 * (1.0 + l1 * t)) / l1**2
        - (a2 + a3) * (1.0 - e1) / l1
        + a2 * (1.0 - np.exp(-l2 * t)) / l2
        + a3 * (1.0 - np.exp(-l3 * t)) / l3
    )
    return bolus + integral / kbol_min


def _smooth_step(t: np.ndarray, start: float, onset: float) -> np.ndarray:
    if onset <= 0:
        return (t >= start).astype(float)
    x = np.clip((t - start) / onset, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


@dataclass
class Scan:
    """One simulated scan.

    Attributes
    ----------
    timing : FrameTiming
        Frame start/duration (seconds from injection).
    frame_start_s, frame_duration_s : ndarray, shape (n_frames,)
    tacs : ndarray, shape (n_frames, n_regions), kBq/mL
        Frame-averaged target TACs (noisy when noise was requested).
    ref : ndarray, shape (n_frames,), kBq/mL
        Reference (occipital) TAC.
    names : list of str
    truth : dict
        ``bp_baseline``, ``bp_challenge`` (arrays per region), ``k2p_per_min``,
        ``k4_per_min``, ``drop``, ``t_challenge_min``, ``r1``.
    clean_tacs, clean_ref : ndarray
        Noise-free versions.
    """

    timing: FrameTiming
    tacs: np.ndarray
    ref: np.ndarray
    names: list[str]
    truth: dict = field(default_factory=dict)
    clean_tacs: np.ndarray | None = None
    clean_ref: np.ndarray | None = None

    @property
    def frame_start_s(self) -> np.ndarray:
        return self.timing.frame_start_s

    @property
    def frame_duration_s(self) -> np.ndarray:
        return self.timing.frame_duration_s


def _simulate_fine(
    t: np.ndarray,
    cp: np.ndarray,
    k1: np.ndarray,
    k2: np.ndarray,
    k3_of_t: np.ndarray,
    k4: np.ndarray,
) -> np.ndarray:
    """RK4 for the 2TC model on grid ``t`` (uniform); k3 is sampled on the
    half-grid as the average of the neighbouring nodes. Returns C1 + C2."""
    dt = t[1] - t[0]
    n = k1.size
    c1, c2 = np.zeros(n), np.zeros(n)
    out = np.zeros((t.size, n))

    def rhs(cpv, k3v, a, b):
        return k1 * cpv - (k2 + k3v) * a + k4 * b, k3v * a - k4 * b

    for i in range(t.size - 1):
        cp0, cp1 = cp[i], cp[i + 1]
        cph = 0.5 * (cp0 + cp1)  # fine grid: linear is plenty for Cp midpoints
        k30, k31 = k3_of_t[i], k3_of_t[i + 1]
        k3h = 0.5 * (k30 + k31)
        a1, b1 = rhs(cp0, k30, c1, c2)
        a2, b2 = rhs(cph, k3h, c1 + 0.5 * dt * a1, c2 + 0.5 * dt * b1)
        a3, b3 = rhs(cph, k3h, c1 + 0.5 * dt * a2, c2 + 0.5 * dt * b2)
        a4, b4 = rhs(cp1, k31, c1 + dt * a3, c2 + dt * b3)
        c1 = c1 + dt / 6 * (a1 + 2 * a2 + 2 * a3 + a4)
        c2 = c2 + dt / 6 * (b1 + 2 * b2 + 2 * b3 + b4)
        out[i + 1] = c1 + c2
    return out


def _frame_average(t: np.ndarray, y: np.ndarray, timing: FrameTiming) -> np.ndarray:
    """Exact-on-grid frame means of ``y`` (fine grid, shape (n_t, n))."""
    cum = np.concatenate(
        [np.zeros((1, *y.shape[1:])), np.cumsum(0.5 * (y[1:] + y[:-1]), 0)], 0
    ) * (t[1] - t[0])
    start, end = timing.frame_start_min, timing.frame_end_min
    c_start = np.array([np.interp(start, t, cum[:, j]) for j in range(y.shape[1])]).T
    c_end = np.array([np.interp(end, t, cum[:, j]) for j in range(y.shape[1])]).T
    return (c_end - c_start) / (end - start)[:, None]


def noise_sd(
    clean: np.ndarray, timing: FrameTiming, cv: float, n_late: int = 3
) -> np.ndarray:
    """Per-frame noise SD ∝ sqrt(C exp(lambda t) / duration), scaled so that the
    SD relative to the TAC, averaged over the last ``n_late`` frames, is ``cv``.

    ``clean`` has shape (n_frames,) or (n_frames, n); the scaling is per column.
    """
    c = np.atleast_2d(np.asarray(clean, dtype=float).T).T
    lam = np.log(2.0) / HALF_LIFE_MIN
    shape = np.sqrt(
        np.clip(c, 1e-6, None)
        * np.exp(lam * timing.frame_mid_min)[:, None]
        / timing.frame_duration_min[:, None]
    )
    rel_late = (shape[-n_late:] / np.clip(c[-n_late:], 1e-6, None)).mean(axis=0)
    sd = cv * shape / rel_late
    return sd.reshape(np.shape(clean))


def simulate_scan(
    *,
    k4_per_min: float = 0.08,
    k2p_per_min: float = 0.15,
    k1p: float = 0.12,
    regions: dict[str, tuple[float, float]] | None = None,
    drop: float = 0.0,
    t_challenge_min: float | None = 45.0,
    onset_min: float = 3.0,
    kbol_min: float = 50.0,
    durations_min: np.ndarray = FRAME_DURATIONS_MIN,
    dt_min: float = 0.025,
    noise_cv: float = 0.0,
    ref_noise_cv: float = 0.0,
    n_realisations: int | None = None,
    seed: int | None = 0,
) -> Scan:
    """Simulate one bolus+infusion scan.

    Parameters
    ----------
    k4_per_min : float
        Receptor dissociation rate (1/min), same in every target region.
    k2p_per_min : float
        Reference efflux k2' (1/min).
    k1p : float
        Reference K1' (mL/min/mL).
    regions : dict, optional
        Name -> (BP_ND baseline, R1). Default :data:`REGIONS`.
    drop : float
        Fractional fall of k3 (receptor availability), e.g. 0.10.
    t_challenge_min : float or None
        Start of the fall (minutes). ``None`` or ``0``: the whole scan has the
        lowered k3 (the challenge scan of a two-scan design).
    onset_min : float
        Duration of the smooth step (minutes).
    kbol_min : float
        Bolus-to-infusion ratio Kbol (minutes).
    durations_min : ndarray
        Frame durations (contiguous from injection).
    dt_min : float
        Integration step (minutes); must divide the frame boundaries.
    noise_cv : float
        Target noise: SD relative to the TAC at the late frames (0 = none).
    ref_noise_cv : float
        Same for the reference TAC.
    n_realisations : int, optional
        With noise: return ``tacs`` of shape (n_frames, n_regions, n_real)
        and ``ref`` (n_frames, n_real) (independent realisations).
    seed : int, optional

    Returns
    -------
    Scan
        ``truth["bp_challenge"]`` is ``bp_baseline * (1 - drop)``.
    """
    regions = dict(REGIONS if regions is None else regions)
    names = list(regions)
    bp = np.array([regions[n][0] for n in names], dtype=float)
    r1 = np.array([regions[n][1] for n in names], dtype=float)
    timing = frame_timing(durations_min)
    t_end = float(timing.frame_end_min[-1])
    t = np.arange(0.0, t_end + 0.5 * dt_min, dt_min)
    cp = plasma(t, kbol_min)
    k4 = np.full(bp.size, float(k4_per_min))
    k3 = bp * k4
    if t_challenge_min is None or t_challenge_min <= 0:
        frac = np.full(t.size, float(drop))
    else:
        frac = drop * _smooth_step(t, float(t_challenge_min), onset_min)
    k3_t = k3[None, :] * (1.0 - frac[:, None])
    fine = _simulate_fine(t, cp, r1 * k1p, r1 * k2p_per_min, k3_t, k4)
    # Reference: 1TC, same integrator (k3 = 0).
    fine_ref = _simulate_fine(
        t,
        cp,
        np.array([k1p]),
        np.array([k2p_per_min]),
        np.zeros((t.size, 1)),
        np.zeros(1),
    )
    clean = _frame_average(t, fine, timing)
    clean_ref = _frame_average(t, fine_ref, timing)[:, 0]
    tacs, ref = clean.copy(), clean_ref.copy()
    rng = np.random.default_rng(seed)
    if n_realisations is not None:
        n = int(n_realisations)
        tacs = np.repeat(clean[:, :, None], n, axis=2)
        ref = np.repeat(clean_ref[:, None], n, axis=1)
        if noise_cv > 0:
            sd = noise_sd(clean, timing, noise_cv)
            tacs = tacs + sd[:, :, None] * rng.standard_normal(tacs.shape)
        if ref_noise_cv > 0:
            sd = noise_sd(clean_ref, timing, ref_noise_cv)
            ref = ref + sd[:, None] * rng.standard_normal(ref.shape)
    else:
        if noise_cv > 0:
            tacs = tacs + noise_sd(clean, timing, noise_cv) * rng.standard_normal(
                tacs.shape
            )
        if ref_noise_cv > 0:
            ref = ref + noise_sd(clean_ref, timing, ref_noise_cv) * (
                rng.standard_normal(ref.shape)
            )
    truth = {
        "bp_baseline": bp.copy(),
        "bp_challenge": bp * (1.0 - drop),
        "k2p_per_min": float(k2p_per_min),
        "k4_per_min": float(k4_per_min),
        "drop": float(drop),
        "t_challenge_min": t_challenge_min,
        "r1": r1,
    }
    return Scan(timing, tacs, ref, names, truth, clean, clean_ref)


def simulate_one_scan(drop: float = 0.10, **kwargs) -> Scan:
    """One-scan design: baseline, then k3 falls by ``drop`` from 45 min."""
    kwargs.setdefault("t_challenge_min", 45.0)
    return simulate_scan(drop=drop, **kwargs)


def simulate_two_scans(drop: float = 0.10, seed: int | None = 0, **kwargs):
    """Two-scan design: a baseline scan (no change) and a challenge scan whose
    k3 is lower by ``drop`` throughout. Returns ``(baseline, challenge)``."""
    base = simulate_scan(drop=0.0, t_challenge_min=None, seed=seed, **kwargs)
    chal = simulate_scan(
        drop=drop,
        t_challenge_min=None,
        seed=None if seed is None else seed + 1,
        **kwargs,
    )
    return base, chal


def voxel_image(
    scan: Scan, realisations: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack realisations into a fake PET image for ``fit_maps``.

    Parameters
    ----------
    scan : Scan
        From :func:`simulate_scan` with ``n_realisations``: ``tacs`` has shape
        (n_frames, n_regions, n_real).

    Returns
    -------
    pet : ndarray, shape (n_frames, n_regions, n_real, 1), float32
    mask : ndarray of bool, shape (n_regions, n_real, 1)
    ref : ndarray, shape (n_frames,)
        The reference TAC (first realisation if the reference is noisy).
    """
    tacs = scan.tacs if realisations is None else realisations
    if tacs.ndim == 2:
        tacs = tacs[:, :, None]
    pet = tacs[..., None].astype(np.float32)
    mask = np.ones(pet.shape[1:], dtype=bool)
    ref = scan.ref if scan.ref.ndim == 1 else scan.ref[:, 0]
    return pet, mask, np.asarray(ref, dtype=float)
