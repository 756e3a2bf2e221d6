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
        Activity x minutes. See :func:`integration_matrix` for the method.
    """
    return integration_matrix(timing) @ np.asarray(values, dtype=np.float64)


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
