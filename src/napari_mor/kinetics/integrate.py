"""Integrals from injection and exponential convolutions on the real frame grid.

Both operate on frame-averaged activity and never assume even frame spacing.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from napari_mor.io.timing import FrameTiming

__all__ = ["convolve_exponential", "integrate_from_injection", "integration_matrix"]


def _timing_key(timing: FrameTiming) -> tuple[bytes, bytes]:
    return timing.frame_start_s.tobytes(), timing.frame_duration_s.tobytes()


def integration_matrix(timing: FrameTiming) -> np.ndarray:
    """Linear operator giving the integral from injection to each mid-frame time.

    Parameters
    ----------
    timing : FrameTiming
        Frame starts and durations.

    Returns
    -------
    matrix : ndarray, shape (n_frames, n_frames), float64
        ``matrix @ tac`` is ``integral_0^{t_mid,i} C(t) dt`` in activity x minutes
        for a frame-averaged ``tac`` of shape (n_frames, ...). Read-only.

    Notes
    -----
    For frame ``i`` with start ``s_i``, duration ``d_i`` and mean ``C_i``::

        I(t_mid,i) = sum_{j<i} C_j d_j  +  gaps  +  C_i d_i / 2 - S_i d_i^2 / 8

    The first sum is the exact area of the earlier frames (frame means times
    durations). Gaps between frames are filled by linear interpolation between
    the neighbouring frame means; before the first frame, activity rises
    linearly from 0 at injection to the first mean at the first mid-time. The
    last two terms are the area of the first half of frame ``i``, exact when
    ``C`` is linear within the frame; ``S_i`` is the slope estimated by
    second-order finite differences of the frame means over the (uneven)
    mid-times (:func:`numpy.gradient`).
    This is more accurate than the trapezoid rule over mid-times, which
    treats frame means as point values (tested against analytic integrals).
    For many TACs, :func:`integrate_from_injection` gives the same integrals
    in O(n_frames) per TAC instead of this O(n_frames^2) product.
    """
    return _integration_matrix_cached(_timing_key(timing))


@lru_cache(maxsize=32)
def _integration_matrix_cached(key: tuple[bytes, bytes]) -> np.ndarray:
    start = np.frombuffer(key[0]) / 60.0
    duration = np.frombuffer(key[1]) / 60.0
    n = start.size
    mid = start + 0.5 * duration
    end = start + duration
    matrix = np.zeros((n, n))
    # before the first frame: the line from (0, 0) to (first mid-time, first mean)
    matrix[:, 0] += 0.5 * start[0] ** 2 / mid[0]
    gap = start[1:] - end[:-1]
    for i in range(1, n):  # loop over frames (not voxels): area before frame i
        matrix[i, :i] += duration[:i] + 0.5 * gap[:i]
        matrix[i, 1 : i + 1] += 0.5 * gap[:i]
    matrix[np.arange(n), np.arange(n)] += 0.5 * duration
    if n >= 3:
        slope = np.gradient(np.eye(n), mid, axis=0, edge_order=2)
        matrix -= (duration**2 / 8.0)[:, None] * slope
    matrix.flags.writeable = False
    return matrix


def integrate_from_injection(values: np.ndarray, timing: FrameTiming) -> np.ndarray:
    """Integral of frame-averaged activity from injection to each mid-frame time.

    Parameters
    ----------
    values : ndarray, shape (n_frames,) or (n_frames, n_tacs)
        Frame-averaged activity (e.g. kBq/mL).
    timing : FrameTiming
        Frame timing (may be uneven, with gaps).

    Returns
    -------
    integral : ndarray, same shape as ``values``, float64
        Activity x minutes; equal (up to round-off) to
        ``integration_matrix(timing) @ values``.

    Notes
    -----
    Computed in O(n_frames) per TAC rather than with the dense
    (n_frames, n_frames) matrix: a cumulative sum of the areas of the earlier
    frames and the gaps after them, plus a banded term for the first half of
    each frame (the frame mean, the finite-difference slope and the rise from
    injection to the first mid-time). See :func:`integration_matrix` for the
    method.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[0] != timing.n_frames:
        raise ValueError(
            f"values must have shape (n_frames,) or (n_frames, n) with n_frames = "
            f"{timing.n_frames}; got {values.shape}."
        )
    if values.ndim == 1 or values.shape[1] < _DENSE_BELOW or timing.n_frames < 3:
        return integration_matrix(timing) @ values  # a few TACs: one small matmul
    return _integrate_rows(values, _banded_coefficients(_timing_key(timing)))


#: Fewer TACs than this are integrated with the dense matrix (fewer numpy calls).
_DENSE_BELOW = 256


def _integrate_rows(c: np.ndarray, coef: _Band) -> np.ndarray:
    """Frame-by-frame running integral of ``c`` (n_frames >= 3, n) in O(n_frames).

    Row ``i`` is the running area of the earlier frames (and gaps, and the rise
    from injection) plus the three-point first-half-frame term. Loops over
    frames, never voxels; each step touches one row of ``n`` values, which
    stays in cache.
    """
    c = np.ascontiguousarray(c)
    n_frames = c.shape[0]
    out = np.empty(c.shape)
    area = c[0] * coef.rise
    step = np.empty(c.shape[1])
    for i in range(n_frames):  # loop over frames, not voxels
        row = out[i]
        if i == 0:
            np.dot(coef.first, c[:3], out=row)
        elif i == n_frames - 1:
            np.dot(coef.last, c[-3:], out=row)
        else:
            np.dot(coef.band[i], c[i - 1 : i + 2], out=row)
        row += area
        if i < n_frames - 1:
            area += np.multiply(c[i], coef.own[i], out=step)
            if coef.has_gaps:
                area += np.multiply(c[i + 1], coef.next[i], out=step)
    return out


class _Band:
    """Per-timing coefficients of :func:`integrate_from_injection` (read-only).

    For ``n >= 3`` frames. ``own`` (n-1,), ``next`` (n-1,): whole-frame and
    gap areas; ``band`` (n, 3): the first-half-frame term of interior row
    ``i`` as weights of frames ``i-1, i, i+1``; ``first``, ``last`` (3,): its
    rows 0 and n-1, which reach two frames to one side (second-order
    one-sided slopes); ``rise``: weight of the first frame mean in every row
    (activity rising from injection).
    """

    def __init__(self, matrix: np.ndarray, start: np.ndarray, duration: np.ndarray):
        n = matrix.shape[0]
        gap = start[1:] - start[:-1] - duration[:-1]
        self.own = duration[:-1] + 0.5 * gap
        self.next = 0.5 * gap
        self.has_gaps = bool(np.any(gap != 0))
        self.rise = 0.5 * start[0] ** 2 / (start[0] + 0.5 * duration[0])
        # the band is what the dense matrix holds beyond the cumulative areas
        band = matrix.copy()
        band[:, 0] -= self.rise
        cumulative = np.zeros((n, n))
        for i in range(1, n):  # loop over frames (not voxels), once per timing
            cumulative[i, :i] += self.own[:i]
            cumulative[i, 1 : i + 1] += self.next[:i]
        band -= cumulative
        # row i of ``band`` (interior rows): weights of frames i-1, i, i+1
        self.band = np.zeros((n, 3))
        for i in range(1, n - 1):  # loop over frames, once per timing
            self.band[i] = band[i, i - 1 : i + 2]
        self.first = band[0, :3].copy()
        self.last = band[-1, -3:].copy()


@lru_cache(maxsize=32)
def _banded_coefficients(key: tuple[bytes, bytes]) -> _Band:
    start = np.frombuffer(key[0]) / 60.0
    duration = np.frombuffer(key[1]) / 60.0
    return _Band(_integration_matrix_cached(key), start, duration)


def _knot_grid(timing: FrameTiming) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Knots (0, frame edges, mid-times) and the knot index of each frame edge."""
    start, end = timing.frame_start_min, timing.frame_end_min
    knots = np.unique(np.concatenate([[0.0], start, end, timing.frame_mid_min]))
    return knots, np.searchsorted(knots, start), np.searchsorted(knots, end)


def convolve_exponential(
    ref: np.ndarray, timing: FrameTiming, theta_per_min: np.ndarray | float
) -> np.ndarray:
    """Frame-averaged convolution ``C_ref(t) * exp(-theta t)``, computed exactly.

    Parameters
    ----------
    ref : ndarray, shape (n_frames,)
        Frame-averaged reference activity.
    timing : FrameTiming
        Frame timing (uneven frames allowed).
    theta_per_min : float or ndarray, shape (n_theta,)
        Decay rates, 1/min, > 0.

    Returns
    -------
    conv : ndarray, shape (n_frames, n_theta), float64
        Frame means of ``integral_0^t C_ref(s) exp(-theta (t - s)) ds``,
        activity x minutes.

    Notes
    -----
    ``C_ref`` is taken as the piecewise-linear curve through ``(0, 0)`` and the
    frame means at mid-frame times (constant after the last mid-time). The
    convolution ``y`` solves ``y' = C_ref - theta y``; over a step ``h`` where
    ``C_ref`` goes linearly from ``x0`` to ``x1`` it is advanced exactly::

        y1 = y0 e^{-theta h} + x0 a + (x1 - x0) b / h,
        a = (1 - e^{-theta h}) / theta,  b = h / theta - a / theta

    and its integral over the step is exact too:
    ``int y = (h (x0 + x1) / 2 - (y1 - y0)) / theta``. Because the recursion is
    exact for piecewise-linear input, the knots (injection, frame edges and
    mid-times) suffice: it equals convolving on an infinitely fine uniform grid,
    with no discretisation error, and frame means are exact integrals divided
    by the duration (not mid-frame samples).
    """
    theta = np.atleast_1d(np.asarray(theta_per_min, dtype=np.float64))[None, :]
    knots, i_start, i_end = _knot_grid(timing)
    x = np.interp(knots, np.r_[0.0, timing.frame_mid_min], np.r_[0.0, ref])[:, None]
    h = np.diff(knots)[:, None]
    decay = np.exp(-theta * h)
    a = -np.expm1(-theta * h) / theta
    b = h / theta - a / theta
    y = _exact_recursion(x[:-1] * a + (x[1:] - x[:-1]) * b / h, decay, knots, theta)
    step_area = (0.5 * h * (x[1:] + x[:-1]) - np.diff(y, axis=0)) / theta
    cumulative = np.vstack(
        [np.zeros((1, theta.shape[1])), np.cumsum(step_area, axis=0)]
    )
    return (cumulative[i_end] - cumulative[i_start]) / timing.frame_duration_min[
        :, None
    ]


#: Largest theta * t for which the closed-form recursion cannot overflow.
_MAX_EXPONENT = 600.0


def _exact_recursion(
    increment: np.ndarray, decay: np.ndarray, knots: np.ndarray, theta: np.ndarray
) -> np.ndarray:
    """Solve ``y[k+1] = y[k] decay[k] + increment[k]`` with ``y[0] = 0``.

    Uses the closed form
    ``y_k = e^{-theta t_k} sum_{j<k} increment_j e^{theta t_{j+1}}``
    (one cumulative sum) when it cannot overflow, else steps through the knots.
    Shapes: ``increment``/``decay`` (n_knots - 1, n_theta); returns (n_knots, n_theta).
    """
    y = np.zeros((knots.size, theta.shape[1]))
    if float(theta.max()) * float(knots[-1]) < _MAX_EXPONENT:
        growth = np.exp(theta * knots[1:, None])
        y[1:] = np.cumsum(increment * growth, axis=0) / growth
        return y
    for k in range(increment.shape[0]):  # loop over time knots, not voxels
        y[k + 1] = y[k] * decay[k] + increment[k]
    return y
