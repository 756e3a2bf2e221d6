"""Forward model of the transient-release fit: a two-tissue target driven by
the measured reference TAC, with ``k3(t) = k3 - Delta h(t)``.

One function, :func:`simulate_target`, used both by the nonlinear fit and by
callers (the design-bias check). Vectorised over parameter sets; the only
Python loop is over the sub-frame time steps of the integrator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.timing import FrameTiming

__all__ = ["MAX_STEP_MIN", "simulate_target"]

#: Largest sub-frame integration step, minutes.
MAX_STEP_MIN = 0.25
#: Gamma-variate sharpness (Normandin 2012 use alpha in 1-4).
GAMMA_ALPHA = 2.0


def unit_response(t: np.ndarray, onset: float, shape: str, shape_min: float):
    """Unit response ``h(t)`` (0 before ``onset``, maximum 1); see response_basis."""
    x = np.clip(t - onset, 0.0, None)
    if shape == "sustained":
        if shape_min <= 0:
            return (t >= onset).astype(float)
        return -np.expm1(-x / shape_min)
    u = x / shape_min
    return u**GAMMA_ALPHA * np.exp(GAMMA_ALPHA * (1.0 - u))


@dataclass(frozen=True)
class _Grid:
    """Sub-frame grid of one frame timing (cached)."""

    t: np.ndarray  # nodes, minutes from injection, shape (n_nodes,)
    step: np.ndarray  # node spacing, shape (n_nodes - 1,)
    t_mid: np.ndarray  # interval mid-points, shape (n_nodes - 1,)
    ref_op: np.ndarray  # frame means -> reference at nodes, (n_nodes, n_frames)
    avg_op: np.ndarray  # node values -> frame means, (n_frames, n_nodes)


def _grid(timing: FrameTiming, max_step_min: float = MAX_STEP_MIN) -> _Grid:
    key = (timing.frame_start_s.tobytes(), timing.frame_duration_s.tobytes())
    return _grid_cached(key, float(max_step_min))


@lru_cache(maxsize=16)
def _grid_cached(key: tuple[bytes, bytes], max_step: float) -> _Grid:
    start = np.frombuffer(key[0]) / 60.0
    end = start + np.frombuffer(key[1]) / 60.0
    mid = 0.5 * (start + end)
    breaks = np.unique(np.concatenate([[0.0], start, mid, end]))
    pieces = [breaks[:1]]
    for a, b in pairwise(breaks):  # loop over intervals
        n = max(int(np.ceil((b - a) / max_step - 1e-9)), 1)
        pieces.append(np.linspace(a, b, n + 1)[1:])
    t = np.concatenate(pieces)
    step = np.diff(t)
    n_frames, n_nodes = start.size, t.size
    # frame means of node values: trapezoid over the nodes inside each frame
    avg = np.zeros((n_frames, n_nodes))
    for i in range(n_frames):  # loop over frames
        lo = int(np.searchsorted(t, start[i] - 1e-9))
        hi = int(np.searchsorted(t, end[i] + 1e-9))
        dt = np.diff(t[lo:hi])
        avg[i, lo : hi - 1] += 0.5 * dt
        avg[i, lo + 1 : hi] += 0.5 * dt
        avg[i] /= end[i] - start[i]
    # reference: piecewise linear through (0, 0) and (mid_i, v_i), constant
    # after the last mid-time, with v chosen so its frame means equal the data
    knots = np.concatenate([[0.0], mid]) if mid[0] > 0 else mid
    eye = np.eye(n_frames)
    values = np.vstack([np.zeros(n_frames), eye]) if mid[0] > 0 else eye
    interp = np.stack(
        [np.interp(t, knots, values[:, j]) for j in range(n_frames)], axis=1
    )
    ref_op = interp @ np.linalg.inv(avg @ interp)
    for arr in (t, step, avg, ref_op):
        arr.flags.writeable = False
    return _Grid(t, step, 0.5 * (t[1:] + t[:-1]), ref_op, avg)


def simulate_target(
    ref_tac: np.ndarray,
    timing: FrameTiming,
    *,
    k2p_per_min: float,
    r1,
    k2_per_min,
    k3_per_min,
    k4_per_min,
    delta_k3_per_min=0.0,
    onset_min: float | None = None,
    shape: str = "sustained",
    shape_min: float = 0.0,
) -> np.ndarray:
    """Frame-mean target TACs of a two-tissue target driven by the reference.

    Parameters
    ----------
    ref_tac : ndarray, shape (n_frames,)
        Frame-mean reference activity (kBq/mL).
    timing : FrameTiming
        Frame timing; the integration starts at injection (t = 0).
    k2p_per_min : float
        Reference efflux k2' (1/min).
    r1 : float or ndarray, shape (n,)
        ``K1/K1'`` (unitless).
    k2_per_min, k3_per_min, k4_per_min : float or ndarray, shape (n,)
        Target rate constants before the onset (1/min).
    delta_k3_per_min : float or ndarray, shape (n,)
        Fall of k3 at ``h = 1`` (1/min); positive = release. Needs ``onset_min``
        when non-zero.
    onset_min : float or None
        Response onset, minutes from injection (``None``: no response).
    shape : {"sustained", "gamma"}
        Response shape (see :func:`response_basis`).
    shape_min : float
        Rise time constant (sustained) or peak delay (gamma), minutes.

    Returns
    -------
    tac : ndarray, shape (n_frames,) or (n_frames, n)
        Frame-mean target activity (kBq/mL); 1-D when all parameters are scalars.

    Notes
    -----
    Plasma is eliminated through the one-tissue reference,
    ``K1 Cp = R1 (C_R' + k2' C_R)``. With ``u = C_1 - R1 C_R`` (free minus the
    delivered reference) the target is::

        u'   = R1 (k2' - k2 - k3(t)) C_R - (k2 + k3(t)) u + k4 C_2
        C_2' = k3(t) (u + R1 C_R) - k4 C_2,        u(0) = C_2(0) = 0
        C_T  = u + R1 C_R + C_2,   k3(t) = max(k3 - Delta h(t), 0)

    (no derivative of the noisy reference is needed). ``C_R`` is the piecewise
    linear curve through ``(0, 0)`` and the mid-frame points whose frame means
    equal ``ref_tac`` exactly. The system is integrated by the trapezoid
    (Crank-Nicolson) rule on a sub-frame grid (steps <= 0.25 min, nodes at
    every frame start, mid and end; ``k3`` taken at the interval centre) and
    frame-averaged with the trapezoid rule over the nodes.
    """
    ref = np.asarray(ref_tac, dtype=np.float64)
    if ref.ndim != 1 or ref.size != timing.n_frames:
        raise MorError(
            f"ref_tac has shape {ref.shape} but the timing lists {timing.n_frames} "
            f"frames; pass one reference value per frame, shape ({timing.n_frames},)."
        )
    params = np.broadcast_arrays(
        *(
            np.asarray(v, dtype=np.float64)
            for v in (r1, k2_per_min, k3_per_min, k4_per_min, delta_k3_per_min)
        )
    )
    if params[0].ndim > 1:
        raise MorError(
            "simulate_target parameters must be floats or 1-D arrays of one "
            f"length; got shape {params[0].shape}."
        )
    scalar = params[0].ndim == 0
    r1_, k2, k3, k4, delta = (np.atleast_1d(p) for p in params)
    grid = _grid(timing)
    if onset_min is None:
        if np.any(delta != 0):
            raise MorError(
                "delta_k3_per_min is non-zero but onset_min is None; give the "
                "response onset in minutes from injection."
            )
        h = np.zeros(grid.t_mid.size)
    else:
        if shape not in ("sustained", "gamma") or (shape == "gamma" and shape_min <= 0):
            raise MorError(
                f"Response shape ({shape!r}, {shape_min:g}) is invalid: use "
                "'sustained' with a rise constant >= 0 min or 'gamma' with a peak "
                "delay > 0 min."
            )
        h = unit_response(grid.t_mid, float(onset_min), shape, float(shape_min))
    out = _integrate(grid, grid.ref_op @ ref, k2p_per_min, r1_, k2, k3, k4, delta, h)
    return out[:, 0] if scalar else out


def _integrate(grid, c_r, k2p, r1, k2, k3, k4, delta, h):
    """Crank-Nicolson on the grid; all parameter arrays shape (n,)."""
    dt = grid.step[:, None]
    k3t = np.maximum(k3[None, :] - delta[None, :] * h[:, None], 0.0)  # (steps, n)
    a00 = -(k2[None, :] + k3t) * dt * 0.5
    a01 = np.broadcast_to(k4[None, :] * dt * 0.5, k3t.shape)
    a10 = k3t * dt * 0.5
    a11 = np.broadcast_to(-k4[None, :] * dt * 0.5, k3t.shape)
    # (I - A dt/2)^-1 and (I + A dt/2)
    det = (1.0 - a00) * (1.0 - a11) - a01 * a10
    i00, i01, i10, i11 = (1.0 - a11) / det, a01 / det, a10 / det, (1.0 - a00) / det
    m00 = i00 * (1.0 + a00) + i01 * a10
    m01 = i00 * a01 + i01 * (1.0 + a11)
    m10 = i10 * (1.0 + a00) + i11 * a10
    m11 = i10 * a01 + i11 * (1.0 + a11)
    drive = r1[None, :] * (c_r[1:] + c_r[:-1])[:, None] * 0.5 * dt  # R1 C_R dt
    b0 = drive * (k2p - k2[None, :] - k3t)
    b1 = drive * k3t
    q0 = i00 * b0 + i01 * b1
    q1 = i10 * b0 + i11 * b1
    n_nodes, n = grid.t.size, k3.size
    u = np.zeros((n_nodes, n))
    c2 = np.zeros((n_nodes, n))
    x0 = np.zeros(n)
    x1 = np.zeros(n)
    for i in range(n_nodes - 1):  # loop over time steps (not voxels)
        x0, x1 = m00[i] * x0 + m01[i] * x1 + q0[i], m10[i] * x0 + m11[i] * x1 + q1[i]
        u[i + 1] = x0
        c2[i + 1] = x1
    tissue = u + c2 + r1[None, :] * c_r[:, None]
    return grid.avg_op @ tissue
