"""Internal containers shared by the model solvers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_mor.io.timing import FrameTiming


@dataclass(frozen=True)
class Setup:
    """Everything a solver needs besides the tissue TACs (shared across blocks).

    ``ref``/``ref_int`` have shape (n_frames,); ``weights`` is a full-length
    (n_frames,) vector, only ``fit_mask`` frames are used. Times in minutes.
    """

    model: str
    timing: FrameTiming
    ref: np.ndarray
    ref_int: np.ndarray
    fit_mask: np.ndarray
    weights: np.ndarray
    window_min: tuple[float, float] | None
    t_star_min: float
    k2p_per_min: float
    theta_per_min: np.ndarray | None = None
    ref_conv: np.ndarray | None = None  # (n_frames, n_theta) for basis functions

    @property
    def w_fit(self) -> np.ndarray:
        """Weights of the fitted frames, shape (n_fit,)."""
        return self.weights[self.fit_mask]


@dataclass
class Batch:
    """Solver output for ``n`` TACs.

    ``params``/``se`` map names to arrays of shape (n,); ``x``, ``y``, ``fitted``
    have shape (n_frames, n) and are only filled when ``full=True``.
    """

    params: dict[str, np.ndarray]
    ok: np.ndarray
    n_params: int
    se: dict[str, np.ndarray] | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    fitted: np.ndarray | None = None
