"""Independent compartment-model simulator for the kinetics tests.

Nothing here imports ``napari_mor``: the truth is produced by integrating the
compartment ODEs with :func:`scipy.integrate.solve_ivp` against an analytic
bolus+infusion plasma input, and frame averages come from an extra ODE state
holding the running integral of the tissue curve (exact frame means, not
mid-frame samples).

Times are minutes, rate constants 1/min, activity kBq/mL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

#: C-11 half-life, minutes.
C11_HALF_LIFE_MIN = 20.364

#: 28-frame, ~90-min schedule: 6x0.5, 3x1, 3x2, 2x4, 14x5 min.
FRAME_DURATIONS_MIN = np.array(
    [0.5] * 6 + [1.0] * 3 + [2.0] * 3 + [4.0] * 2 + [5.0] * 14
)


def frame_schedule_min() -> tuple[np.ndarray, np.ndarray]:
    """Frame starts and durations (minutes) of the 28-frame schedule."""
    durations = FRAME_DURATIONS_MIN.copy()
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    return starts, durations


def plasma_input(t_min: np.ndarray | float, bolus_to_infusion_min: float = 40.0):
    """Bolus+infusion metabolite-corrected plasma input, kBq/mL.

    The bolus response is a Feng-type curve (rising gamma term plus three
    exponentials); the infusion adds its running integral divided by Kbol.
    """
    t = np.asarray(t_min, dtype=float)
    a1, a2, a3 = 60.0, 2.0, 1.0
    l1, l2, l3 = 4.0, 0.25, 0.02

    def bolus(tt):
        return (
            (a1 * tt - a2 - a3) * np.exp(-l1 * tt)
            + a2 * np.exp(-l2 * tt)
            + a3 * np.exp(-l3 * tt)
        )

    def bolus_integral(tt):
        # integral_0^t of bolus(s) ds, analytic.
        e1 = np.exp(-l1 * tt)
        gamma = a1 * (1.0 - e1 * (1.0 + l1 * tt)) / l1**2
        rest = -(a2 + a3) * (1.0 - e1) / l1
        return (
            gamma
            + rest
            + a2 * (1.0 - np.exp(-l2 * tt)) / l2
            + a3 * (1.0 - np.exp(-l3 * tt)) / l3
        )

    return np.where(t >= 0, bolus(t) + bolus_integral(t) / bolus_to_infusion_min, 0.0)


@dataclass(frozen=True)
class Tissue:
    """Rate constants of a 1TC (k3 = k4 = 0) or 2TC tissue, 1/min (K1 mL/cm3/min)."""

    k1: float
    k2: float
    k3: float = 0.0
    k4: float = 0.0

    @property
    def bp_nd(self) -> float:
        return self.k3 / self.k4 if self.k4 > 0 else 0.0


def one_tc_equivalent(k1: float, k2: float, bp_nd: float) -> Tissue:
    """1TC tissue whose apparent k2 is k2/(1+BP): the case where SRTM/MRTM hold."""
    return Tissue(k1=k1, k2=k2 / (1.0 + bp_nd))


def _rhs(t, state, tissue: Tissue):
    c1, c2, _ = state
    cp = float(plasma_input(t))
    dc1 = tissue.k1 * cp - (tissue.k2 + tissue.k3) * c1 + tissue.k4 * c2
    dc2 = tissue.k3 * c1 - tissue.k4 * c2
    return [dc1, dc2, c1 + c2]


def simulate_frames(
    tissues: list[tuple[float, Tissue]],
    frame_start_min: np.ndarray,
    frame_duration_min: np.ndarray,
) -> np.ndarray:
    """Frame-averaged tissue activity for piecewise-constant rate constants.

    Parameters
    ----------
    tissues : list of (t_from_min, Tissue)
        Rate constants valid from ``t_from_min`` (the first must start at 0).
    frame_start_min, frame_duration_min : ndarray, shape (n_frames,)

    Returns
    -------
    tac : ndarray, shape (n_frames,)
        Frame means, kBq/mL.
    """
    ends = frame_start_min + frame_duration_min
    knots = np.unique(np.concatenate([[0.0], frame_start_min, ends]))
    switch = [t for t, _ in tissues] + [ends[-1]]
    state = np.zeros(3)
    cumulative = {0.0: 0.0}
    for (t_from, tissue), t_to in zip(tissues, switch[1:], strict=True):
        t_eval = knots[(knots >= t_from) & (knots <= t_to)]
        sol = solve_ivp(
            _rhs,
            (t_from, t_to),
            state,
            t_eval=t_eval,
            args=(tissue,),
            method="LSODA",
            rtol=1e-10,
            atol=1e-12,
            max_step=0.05,
        )
        state = sol.y[:, -1]
        cumulative.update(zip(sol.t, sol.y[2], strict=True))
    area = np.array(
        [
            cumulative[e] - cumulative[s]
            for s, e in zip(frame_start_min, ends, strict=True)
        ]
    )
    return area / frame_duration_min


def noise_sd(
    tac: np.ndarray,
    frame_mid_min: np.ndarray,
    frame_duration_min: np.ndarray,
    level: float,
    scale_tac: np.ndarray | None = None,
) -> np.ndarray:
    """Count-statistics SD: sigma proportional to sqrt(C exp(lambda t) / duration).

    ``level`` is the relative SD of ``scale_tac`` (default ``tac``) in its
    5-min frame nearest 60 min (e.g. 0.05 for 5 %).
    """
    lam = np.log(2.0) / C11_HALF_LIFE_MIN
    scale_tac = tac if scale_tac is None else scale_tac
    ref_frame = int(np.argmin(np.abs(frame_mid_min - 60.0)))

    def raw(c):
        return np.sqrt(
            np.clip(c, 0, None) * np.exp(lam * frame_mid_min) / frame_duration_min
        )

    k = level * scale_tac[ref_frame] / raw(scale_tac)[ref_frame]
    return k * raw(tac)


#: Reference region (occipital cortex, no specific binding): K1', k2'.
REF_K1, REF_K2P = 0.10, 0.15
#: Target non-displaceable kinetics (same V_ND as the reference).
TGT_K1, TGT_K2 = 0.12, 0.18
#: Target 2TC dissociation rate k4 (1/min); k3 = BP * k4.
TGT_K4 = 0.10


def reference_tac(starts=None, durations=None) -> np.ndarray:
    """Reference TAC (1TC) on the standard or a given schedule."""
    if starts is None:
        starts, durations = frame_schedule_min()
    return simulate_frames([(0.0, Tissue(REF_K1, REF_K2P))], starts, durations)


def target_tacs(
    bp_values, kind: str = "1tc", starts=None, durations=None
) -> np.ndarray:
    """Target TACs, shape (n_frames, len(bp_values)), 1TC-equivalent or 2TC."""
    if starts is None:
        starts, durations = frame_schedule_min()

    def tissue(bp):
        if kind == "1tc":
            return one_tc_equivalent(TGT_K1, TGT_K2, bp)
        return Tissue(TGT_K1, TGT_K2, bp * TGT_K4, TGT_K4)

    return np.stack(
        [simulate_frames([(0.0, tissue(bp))], starts, durations) for bp in bp_values], 1
    )


def challenge_tac(bp_base: float, bp_chal: float, t_change_min: float = 45.0):
    """1TC-equivalent target whose BP_ND drops from ``bp_base`` at ``t_change_min``."""
    starts, durations = frame_schedule_min()
    return simulate_frames(
        [
            (0.0, one_tc_equivalent(TGT_K1, TGT_K2, bp_base)),
            (t_change_min, one_tc_equivalent(TGT_K1, TGT_K2, bp_chal)),
        ],
        starts,
        durations,
    )
