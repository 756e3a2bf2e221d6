"""Result containers for ROI and voxelwise fits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["MapResult", "RoiFit"]


@dataclass(frozen=True)
class RoiFit:
    """Fit of one reference-region model to one TAC.

    Attributes
    ----------
    model : str
        Model name (``"logan"``, ``"mrtm"``, ``"mrtm2"``, ``"srtm"``, ``"srtm2"``,
        ``"srtm-bf"``, ``"ratio"``).
    name : str
        TAC (ROI) name.
    bp_nd, bp_nd_se : float
        Binding potential and its standard error (NaN when not available).
    params, se : dict of str to float
        All parameters (``bp_nd``, ``r1``, ``k2_per_min``, ``k2p_per_min``,
        ``dvr``, ...) and their standard errors (NaN where not available).
    t_star_min : float
        t* used (minutes; NaN when the model has none).
    k2p_per_min : float
        k2' used or estimated (1/min; NaN when not applicable).
    window_min : tuple of float or None
        Condition window (start, end), minutes.
    frame_mask : ndarray of bool, shape (n_frames,)
        Frames used in the fit.
    n_frames : int
        Number of frames used.
    r2, aic : float
        Weighted coefficient of determination and AIC
        (``n ln(WRSS / n) + 2 p``) over the fitted frames.
    x, y, fitted, residuals : ndarray, shape (n_frames,)
        What was regressed (``y`` against the model ``fitted``; for Logan
        ``x``/``y`` are the Logan-plot coordinates, otherwise ``x`` is the
        mid-frame time, min, and ``y`` the tissue TAC). ``residuals = y - fitted``
        on fitted frames, NaN elsewhere.
    """

    model: str
    name: str
    bp_nd: float
    bp_nd_se: float
    params: dict[str, float]
    se: dict[str, float]
    t_star_min: float
    k2p_per_min: float
    window_min: tuple[float, float] | None
    frame_mask: np.ndarray
    n_frames: int
    r2: float
    aic: float
    x: np.ndarray
    y: np.ndarray
    fitted: np.ndarray
    residuals: np.ndarray

    def as_row(self) -> dict[str, float | str | int]:
        """Flat dictionary for a TSV row (``BP_ND``, ``BP_ND_se``, ``R1``, ...)."""
        return {
            "name": self.name,
            "model": self.model,
            "BP_ND": self.bp_nd,
            "BP_ND_se": self.bp_nd_se,
            "R1": self.params.get("r1", np.nan),
            "k2": self.params.get("k2_per_min", np.nan),
            "k2p": self.k2p_per_min,
            "t_star_min": self.t_star_min,
            "n_frames": self.n_frames,
            "r2": self.r2,
        }


@dataclass
class MapResult:
    """Voxelwise fit result.

    Attributes
    ----------
    maps : dict of str to ndarray, shape (x, y, z), float32
        ``"bp_nd"`` plus model-specific maps (``"r1"``, ``"k2_per_min"``,
        ``"dvr"``, ``"k2p_per_min"``); NaN outside the mask and where the fit failed.
    model : str
    n_voxels : int
        Voxels in the mask.
    n_failed : int
        Masked voxels whose fit failed (singular, non-finite or BP_ND outside
        the sane range).
    t_star_min, k2p_per_min : float
        Values used (NaN when not applicable).
    window_min : tuple of float or None
    info : dict
        Extra provenance (weighting, theta grid, ...).
    """

    maps: dict[str, np.ndarray]
    model: str
    n_voxels: int
    n_failed: int
    t_star_min: float
    k2p_per_min: float
    window_min: tuple[float, float] | None
    info: dict = field(default_factory=dict)
