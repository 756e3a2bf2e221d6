"""Model registry and the shared per-fit setup (window, t*, k2', weights, basis)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics import linear, srtm
from napari_mor.kinetics._base import Batch, Setup
from napari_mor.kinetics._checks import (
    check_positive_k2p,
    check_reference,
    fit_frame_mask,
)
from napari_mor.kinetics.integrate import convolve_exponential, integrate_from_injection
from napari_mor.kinetics.weights import frame_weights


@dataclass(frozen=True)
class ModelSpec:
    """How a model is solved and what it needs.

    ``k2p``: "no", "optional" (Logan) or "required" (MRTM2, SRTM2).
    ``basis``: precompute exponential convolutions of the reference.
    ``map_solver``: solver for voxelwise maps (None: ROI only).
    """

    name: str
    solver: Callable[[np.ndarray, Setup, bool], Batch]
    map_solver: Callable[[np.ndarray, Setup, bool], Batch] | None
    k2p: str
    basis: bool
    map_params: tuple[str, ...]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "logan",
            linear.solve_logan,
            linear.solve_logan,
            "optional",
            False,
            ("bp_nd", "dvr"),
        ),
        ModelSpec(
            "mrtm",
            linear.solve_mrtm,
            linear.solve_mrtm,
            "no",
            False,
            ("bp_nd", "r1", "k2_per_min", "k2p_per_min"),
        ),
        ModelSpec(
            "mrtm2",
            linear.solve_mrtm2,
            linear.solve_mrtm2,
            "required",
            False,
            ("bp_nd", "r1", "k2_per_min"),
        ),
        ModelSpec("srtm", srtm.solve_srtm, None, "no", True, ()),
        ModelSpec(
            "srtm2",
            srtm.solve_srtm2,
            srtm.solve_srtm2_bf,
            "required",
            True,
            ("bp_nd", "r1", "k2_per_min"),
        ),
        ModelSpec(
            "srtm-bf",
            srtm.solve_srtm_bf,
            srtm.solve_srtm_bf,
            "no",
            True,
            ("bp_nd", "r1", "k2_per_min"),
        ),
        ModelSpec(
            "ratio",
            linear.solve_ratio,
            linear.solve_ratio,
            "no",
            False,
            ("bp_nd", "dvr"),
        ),
    )
}


def get_model(model: str) -> ModelSpec:
    """Look up a model by name, with a helpful error."""
    try:
        return MODELS[model]
    except KeyError:
        raise MorError(
            f"Unknown model {model!r}; choose one of {', '.join(MODELS)}."
        ) from None


def make_setup(
    model: str,
    representative_tac: np.ndarray | None,
    ref: np.ndarray,
    timing: FrameTiming,
    *,
    window: tuple[float, float] | None = None,
    t_star_min: float | None = None,
    k2p_per_min: float | None = None,
    weights: str | np.ndarray = "none",
    theta_range_per_min: tuple[float, float] = (0.01, 1.0),
    n_theta: int = 100,
    logan_tolerance: float = 0.10,
) -> Setup:
    """Validate options and precompute what every block of a fit shares.

    ``representative_tac`` (n_frames,) drives automatic t* (Logan) and
    noise-equivalent weights: an ROI TAC, or the brain-mask mean for maps. It
    may be None when neither is used (t* given, weights not ``"noise"``).
    """
    spec = get_model(model)
    ref = check_reference(ref, timing)
    window = _check_window(window)
    k2p = np.nan
    if spec.k2p == "required" or (spec.k2p == "optional" and k2p_per_min is not None):
        k2p = check_positive_k2p(k2p_per_min, model)
    if model == "ratio" and window is None and t_star_min is None:
        raise MorError(
            "The equilibrium ratio needs the frames at equilibrium: give a window "
            "(--window START END, minutes) or t* (--t-star MIN)."
        )
    if model == "logan" and t_star_min is None:
        t_star_min = linear.logan_t_star(
            representative_tac,
            ref,
            timing,
            k2p_per_min=None if np.isnan(k2p) else k2p,
            window=window,
            tolerance=logan_tolerance,
        )
    fit_mask = fit_frame_mask(timing, window, t_star_min)
    theta = conv = None
    if spec.basis:
        theta = _check_theta(theta_range_per_min, n_theta)
        conv = convolve_exponential(ref, timing, theta)
    return Setup(
        model=model,
        timing=timing,
        ref=ref,
        ref_int=integrate_from_injection(ref, timing),
        fit_mask=fit_mask,
        weights=frame_weights(timing, weights, representative_tac),
        window_min=window,
        t_star_min=np.nan if t_star_min is None else float(t_star_min),
        k2p_per_min=k2p,
        theta_per_min=theta,
        ref_conv=conv,
    )


def _check_window(window) -> tuple[float, float] | None:
    if window is None:
        return None
    try:
        start, end = (float(v) for v in window)
    except (TypeError, ValueError):
        raise MorError(
            f"Window {window!r} must be two numbers (start, end), minutes from "
            "injection."
        ) from None
    if not (np.isfinite(start) and np.isfinite(end) and end > start >= 0):
        raise MorError(
            f"Window {start:g}-{end:g} min is invalid: need 0 <= start < end "
            "(minutes from injection), e.g. 45 90."
        )
    return start, end


def _check_theta(theta_range_per_min, n_theta) -> np.ndarray:
    low, high = (float(v) for v in theta_range_per_min)
    if not (0 < low < high and np.isfinite(high)) or int(n_theta) < 2:
        raise MorError(
            f"Basis-function theta range {low:g}-{high:g} /min with {n_theta} "
            "functions is invalid: need 0 < low < high and at least 2 functions "
            "(default 0.01-1 /min, 100)."
        )
    return srtm.theta_grid((low, high), n_theta)
