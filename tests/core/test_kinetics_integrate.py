"""Integrals from injection, exponential convolution and frame weights."""

from __future__ import annotations

import numpy as np
import pytest
from _simulate import frame_schedule_min, reference_tac
from scipy.signal import fftconvolve

from napari_mor import MorError
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics import (
    convolve_exponential,
    frame_weights,
    integrate_from_injection,
)

TAU_MIN = 8.0


def _antiderivative(t):
    """Integral from 0 to t of f(s) = s exp(-s/8) + 0.5 (1 - exp(-s/20))."""
    gamma = TAU_MIN**2 * (1.0 - np.exp(-t / TAU_MIN) * (1.0 + t / TAU_MIN))
    return gamma + 0.5 * (t - 20.0 * (1.0 - np.exp(-t / 20.0)))


def _frame_means(starts, durations):
    ends = starts + durations
    return (_antiderivative(ends) - _antiderivative(starts)) / durations


def _trapezoid_mid(values, mid):
    x, y = np.r_[0.0, mid], np.r_[0.0, values]
    return np.cumsum(np.diff(x) * (y[1:] + y[:-1]) / 2)


@pytest.mark.parametrize("with_gaps", [False, True])
def test_integral_matches_analytic_on_uneven_frames(with_gaps):
    starts, durations = frame_schedule_min()
    if with_gaps:  # late start and 1-min gaps between the 5-min frames
        starts = starts + 0.25 + np.maximum(np.arange(starts.size) - 13, 0) * 1.0
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    values = _frame_means(starts, durations)
    mid = starts + durations / 2
    truth = _antiderivative(mid)
    ours = integrate_from_injection(values, timing)
    rel = np.abs(ours / truth - 1.0)[3:]
    assert rel.max() < 0.005
    trap = np.abs(_trapezoid_mid(values, mid) / truth - 1.0)[3:]
    assert rel.max() < trap.max()  # better than the trapezoid over mid-times


def test_integral_of_matrix_is_columnwise():
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    values = _frame_means(starts, durations)
    both = integrate_from_injection(np.stack([values, 2 * values], 1), timing)
    np.testing.assert_allclose(both[:, 1], 2 * both[:, 0])
    np.testing.assert_allclose(both[:, 0], integrate_from_injection(values, timing))


def test_integral_does_not_assume_even_spacing():
    # Same activity on two grids: the integral at a common mid-time agrees.
    coarse = FrameTiming(np.array([0.0, 600.0, 1200.0]), np.full(3, 600.0))
    fine = FrameTiming(np.arange(0.0, 1800.0, 60.0), np.full(30, 60.0))
    const = 2.0
    assert integrate_from_injection(np.full(3, const), coarse)[1] == pytest.approx(
        const * 15.0
    )
    assert integrate_from_injection(np.full(30, const), fine)[14] == pytest.approx(
        const * 14.5
    )


def _fine_grid_convolution(ref, timing, theta, dt=0.0005):
    """Independent check: trapezoid convolution on a fine uniform grid."""
    t = np.arange(0.0, timing.frame_end_min[-1] + dt / 2, dt)
    x = np.interp(t, np.r_[0.0, timing.frame_mid_min], np.r_[0.0, ref])
    kernel = np.exp(-theta * t)
    y = fftconvolve(x, kernel)[: t.size] * dt - 0.5 * dt * (x + x[0] * kernel)
    cumulative = np.r_[0.0, np.cumsum((y[1:] + y[:-1]) / 2 * dt)]
    area = np.interp(timing.frame_end_min, t, cumulative) - np.interp(
        timing.frame_start_min, t, cumulative
    )
    return area / timing.frame_duration_min


@pytest.mark.parametrize("theta", [0.01, 0.1, 1.0])
def test_convolution_matches_fine_uniform_grid(theta):
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    ref = reference_tac()
    ours = convolve_exponential(ref, timing, theta)[:, 0]
    np.testing.assert_allclose(
        ours, _fine_grid_convolution(ref, timing, theta), rtol=1e-5
    )


def test_convolution_is_frame_averaged_not_sampled():
    # Constant input 1 from t=0: y(t) = (1 - exp(-theta t)) / theta exactly, and
    # the frame mean differs from the mid-frame sample in a long first frame.
    timing = FrameTiming(np.array([0.0, 600.0, 1200.0]), np.full(3, 600.0))
    theta = 0.5
    # input piecewise linear through (0,0) and mid-times; check frame 3
    # (constant input there) against the analytic mean of the exact solution.
    ref = np.ones(3)
    conv = convolve_exponential(ref, timing, theta)[:, 0]
    sampled = (1 - np.exp(-theta * 25.0)) / theta
    assert conv[2] == pytest.approx(sampled, rel=1e-3)
    assert conv[0] < (1 - np.exp(-theta * 5.0)) / theta  # ramp-up, not a sample


def test_convolution_large_theta_uses_stable_path():
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    ref = reference_tac()
    conv = convolve_exponential(ref, timing, np.array([0.5, 20.0]))
    assert np.all(np.isfinite(conv))
    # fast decay: the convolution tends to C_ref / theta
    np.testing.assert_allclose(conv[-5:, 1], ref[-5:] / 20.0, rtol=0.01)


def test_frame_weights_schemes():
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    np.testing.assert_allclose(frame_weights(timing, "none"), 1.0)
    w_dur = frame_weights(timing, "duration")
    np.testing.assert_allclose(w_dur / w_dur[-1], durations / durations[-1])
    assert w_dur.mean() == pytest.approx(1.0)
    activity = reference_tac()
    w_noise = frame_weights(timing, "noise", activity, decay_half_life_min=None)
    floored = np.maximum(activity, 0.05 * activity.max())
    expected = durations / floored
    np.testing.assert_allclose(w_noise, expected / expected.mean())
    w_decay = frame_weights(timing, "noise", activity)
    assert w_decay[-1] / w_decay[14] < w_noise[-1] / w_noise[14]  # decay lowers late


def test_frame_weights_errors():
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    with pytest.raises(MorError, match="Unknown weighting"):
        frame_weights(timing, "poisson")
    with pytest.raises(MorError, match="needs the activity"):
        frame_weights(timing, "noise")
    with pytest.raises(MorError, match="one per frame"):
        frame_weights(timing, np.ones(5))


def _random_timing(rng, n_frames, gaps, late_start):
    durations = rng.uniform(0.25, 6.0, n_frames) * 60.0
    starts = np.r_[0.0, np.cumsum(durations)[:-1]]
    if gaps:  # uneven gaps between some frames
        starts = starts + np.r_[0.0, np.cumsum(rng.uniform(0, 90, n_frames - 1))]
    if late_start:
        starts = starts + 45.0
    return FrameTiming(starts, durations)


@pytest.mark.parametrize("n_frames", [3, 4, 5, 29, 60])
@pytest.mark.parametrize("gaps", [False, True])
@pytest.mark.parametrize("late_start", [False, True])
def test_running_integral_equals_the_dense_matrix(n_frames, gaps, late_start):
    """The O(F) frame-by-frame integral (many TACs) equals ``matrix @ tac``."""
    from napari_mor.kinetics import integration_matrix

    rng = np.random.default_rng(n_frames + 7 * gaps + 13 * late_start)
    timing = _random_timing(rng, n_frames, gaps, late_start)
    tacs = rng.uniform(-1.0, 10.0, (n_frames, 1000))  # above the dense cut-off
    dense = integration_matrix(timing) @ tacs
    fast = integrate_from_injection(tacs, timing)
    scale = np.abs(dense).max()
    np.testing.assert_allclose(fast, dense, rtol=0, atol=1e-13 * scale)
    # a Fortran-ordered or float32 input gives the same numbers
    np.testing.assert_allclose(
        integrate_from_injection(np.asfortranarray(tacs), timing), fast, rtol=1e-15
    )
    f32 = tacs.astype(np.float32)
    np.testing.assert_allclose(
        integrate_from_injection(f32, timing),
        integration_matrix(timing) @ f32.astype(np.float64),
        rtol=0,
        atol=1e-13 * scale,
    )
    # one TAC and a few TACs (dense path) agree with the many-TAC path
    np.testing.assert_allclose(
        integrate_from_injection(tacs[:, 5], timing), fast[:, 5], atol=1e-13 * scale
    )
    np.testing.assert_allclose(
        integrate_from_injection(tacs[:, :3], timing), fast[:, :3], atol=1e-13 * scale
    )


def test_running_integral_is_exact_for_the_analytic_curve_too():
    """Both paths meet the analytic integral equally (uneven frames, gaps)."""
    starts, durations = frame_schedule_min()
    starts = starts + np.r_[0.0, np.cumsum(np.where(durations[1:] == 5.0, 1.0, 0.0))]
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    values = _frame_means(starts, durations)
    many = integrate_from_injection(np.repeat(values[:, None], 512, axis=1), timing)
    np.testing.assert_allclose(many[:, 0], integrate_from_injection(values, timing))
    np.testing.assert_allclose(many[:, -1], many[:, 0], rtol=0, atol=0)


def test_running_integral_rejects_a_wrong_frame_count():
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    with pytest.raises(ValueError, match="n_frames"):
        integrate_from_injection(np.ones((timing.n_frames + 1, 300)), timing)
