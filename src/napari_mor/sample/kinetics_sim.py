"""Plasma input and compartment kinetics used to generate the sample study.

The tests validate the kinetic models with their own, independent solver; this
module only makes realistic data.
"""

from __future__ import annotations

import numpy as np

#: C-11 decay constant, 1/min (half-life 20.38 min).
C11_DECAY_PER_MIN = np.log(2.0) / 20.38

#: Input of the functional form of Feng et al. (1993): amplitudes (kBq/mL) and
#: rates (1/min); the slower rates are chosen so that plasma under infusion settles
#: within ~40 min, as for [11C]carfentanil.
_FENG_A = (851.1225, 21.8798, 20.8113)
_FENG_L = (4.133859, 0.3, 0.04)


def fine_time_grid_min(scan_end_min: float, step_min: float = 0.01) -> np.ndarray:
    """Uniform time grid from injection to the scan end, minutes."""
    n_steps = int(np.ceil(scan_end_min / step_min))
    return np.arange(n_steps + 1) * step_min


def bolus_infusion_input(
    t_min: np.ndarray, kbol_min: float = 40.0, peak_kbq_ml: float = 6.0
) -> np.ndarray:
    """Arterial plasma input for a bolus plus constant infusion.

    The bolus response follows Feng et al. (1993); the infusion is that response
    integrated over time and divided by ``kbol_min`` (the bolus equals
    ``kbol_min`` minutes of infusion).

    Parameters
    ----------
    t_min : ndarray, shape (n,)
        Uniform times from 0, minutes.
    kbol_min : float
        Bolus-to-infusion ratio, minutes (Carson 1993).
    peak_kbq_ml : float
        Peak of the bolus component, kBq/mL.

    Returns
    -------
    cp_kbq_ml : ndarray, shape (n,)
    """
    a1, a2, a3 = _FENG_A
    l1, l2, l3 = _FENG_L
    bolus = (a1 * t_min - a2 - a3) * np.exp(-l1 * t_min)
    bolus += a2 * np.exp(-l2 * t_min) + a3 * np.exp(-l3 * t_min)
    bolus = np.clip(bolus, 0.0, None)
    bolus *= peak_kbq_ml / bolus.max()
    step = t_min[1] - t_min[0]
    cumulative = np.concatenate(
        [[0.0], np.cumsum(0.5 * (bolus[1:] + bolus[:-1]) * step)]
    )
    return bolus + cumulative / kbol_min


def two_tissue_response(
    t_min: np.ndarray,
    cp: np.ndarray,
    k1: np.ndarray,
    k2: np.ndarray,
    k3_before: np.ndarray,
    k4: np.ndarray,
    k3_after: np.ndarray | None = None,
    change_min: float = np.inf,
) -> np.ndarray:
    """Total tissue activity of a two-tissue model, for many tissues at once.

    ``k3`` may change at ``change_min`` (a change in available receptors). The
    system is stepped exactly over each uniform step with the input held at the
    step's mean; the one-tissue model is ``k3 = 0``.

    Parameters
    ----------
    t_min : ndarray, shape (n,)
        Uniform times from 0, minutes.
    cp : ndarray, shape (n,)
        Plasma input, kBq/mL.
    k1 : ndarray, shape (m,)
        mL/min/mL. ``k2, k3, k4`` in 1/min, each shape (m,).

    Returns
    -------
    ct : ndarray, shape (n, m)
        C_free + C_bound, kBq/mL.
    """
    k3_after = k3_before if k3_after is None else k3_after
    step = t_min[1] - t_min[0]
    cp_mid = 0.5 * (cp[1:] + cp[:-1])
    propagate_before, gain_before = _exact_step(k1, k2, k3_before, k4, step)
    propagate_after, gain_after = _exact_step(k1, k2, k3_after, k4, step)
    state = np.zeros((k1.size, 2))
    ct = np.zeros((t_min.size, k1.size))
    for i, c_in in enumerate(cp_mid):
        after = t_min[i] >= change_min
        propagate = propagate_after if after else propagate_before
        gain = gain_after if after else gain_before
        state = np.einsum("mij,mj->mi", propagate, state) + gain * c_in
        ct[i + 1] = state.sum(axis=1)
    return ct


def _exact_step(k1, k2, k3, k4, step):
    """Matrix exponential step and input gain of the 2TC system, per tissue."""
    from scipy.linalg import expm

    m = k1.size
    rates = np.zeros((m, 2, 2))
    rates[:, 0, 0] = -(k2 + k3)
    rates[:, 0, 1] = k4
    rates[:, 1, 0] = k3
    rates[:, 1, 1] = -k4
    propagate = np.stack([expm(r * step) for r in rates])
    # gain = integral_0^step expm(A s) ds @ [k1, 0], via the augmented matrix.
    gain = np.zeros((m, 2))
    for j in range(m):
        augmented = np.zeros((3, 3))
        augmented[:2, :2] = rates[j]
        augmented[0, 2] = k1[j]
        gain[j] = expm(augmented * step)[:2, 2]
    return propagate, gain


def frame_average(
    t_min: np.ndarray,
    curves: np.ndarray,
    frame_start_min: np.ndarray,
    frame_end_min: np.ndarray,
) -> np.ndarray:
    """Average fine-grid curves over each frame (trapezoid on the fine grid).

    Returns
    -------
    ndarray, shape (n_frames, m)
    """
    step = t_min[1] - t_min[0]
    cumulative = np.concatenate(
        [
            np.zeros((1, curves.shape[1])),
            np.cumsum(0.5 * (curves[1:] + curves[:-1]) * step, axis=0),
        ]
    )
    starts = np.stack(
        [np.interp(frame_start_min, t_min, c) for c in cumulative.T], axis=1
    )
    ends = np.stack([np.interp(frame_end_min, t_min, c) for c in cumulative.T], axis=1)
    return (ends - starts) / (frame_end_min - frame_start_min)[:, None]
