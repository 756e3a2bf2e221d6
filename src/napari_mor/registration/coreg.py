"""Rigid/affine registration by Mattes mutual information (SimpleITK), and
PET -> MR coregistration of a mean PET image onto the T1.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.pet import DynamicPET
from napari_mor.io.volume import Volume
from napari_mor.registration import _sitk as S
from napari_mor.registration.transforms import Transform

#: Default frames for the mean PET (minutes from injection): late, high-count.
DEFAULT_MEAN_WINDOW_MIN = (20.0, 90.0)

#: Pyramid of the PET -> MR coregistration: (shrink factor of the MR, smoothing mm).
#: The last level stays at 3 mm smoothing: finer levels add MI interpolation
#: artefacts (a spurious optimum at grid alignment) without adding PET detail.
COREG_LEVELS = ((4, 6.0), (2, 3.0))

INITIALIZERS = ("header", "geometry", "moments")

Progress = tuple[int, int]


@dataclass(frozen=True)
class RegistrationResult:
    """Outcome of one registration.

    Parameters
    ----------
    transform : Transform
        Fixed world -> moving world (mm); resample the moving image through it
        onto the fixed grid.
    metric_value : float
        Final Mattes mutual information (negative; lower is better).
    n_iterations : int
        Optimiser iterations at the last pyramid level.
    converged : bool
        False when the optimiser hit its iteration limit or was cancelled.
    stop_condition : str
        SimpleITK's stop-condition description.
    elapsed_s : float
        Wall time, seconds.
    cancelled : bool
        True when ``should_stop`` stopped the run early.
    """

    transform: Transform
    metric_value: float
    n_iterations: int
    converged: bool
    stop_condition: str
    elapsed_s: float
    cancelled: bool = False

    def summary(self) -> dict:
        """Plain-dict summary for JSON provenance."""
        return {
            **self.transform.to_dict(),
            "metric": "Mattes mutual information (SimpleITK)",
            "metric_value": self.metric_value,
            "n_iterations_last_level": self.n_iterations,
            "converged": self.converged,
            "stop_condition": self.stop_condition,
            "elapsed_s": round(self.elapsed_s, 3),
            "cancelled": self.cancelled,
        }


def mean_pet_image(
    pet: DynamicPET, window_min: tuple[float, float] = DEFAULT_MEAN_WINDOW_MIN
) -> Volume:
    """Duration-weighted mean of the frames whose mid-time lies in a window.

    Parameters
    ----------
    pet : DynamicPET
    window_min : (float, float)
        Start and end, minutes from injection.

    Returns
    -------
    Volume
        Mean activity, kBq/mL, shape (x, y, z), float32, on the PET grid.
    """
    frames = pet.timing.frames_in_window(*window_min)
    if not frames.any():
        raise MorError(
            f"No PET frame has its mid-time within {window_min[0]:g}-"
            f"{window_min[1]:g} min (frames span {pet.timing.frame_start_min[0]:g}-"
            f"{pet.timing.frame_end_min[-1]:g} min); choose a window inside the scan."
        )
    weights = pet.timing.frame_duration_s[frames]
    mean = np.tensordot(weights / weights.sum(), pet.data[frames], axes=(0, 0))
    return Volume(data=mean.astype(np.float32), affine=np.asarray(pet.affine))


def _center_of_mass_mm(image) -> np.ndarray:
    """Intensity-weighted centre (mm) of a SimpleITK image (positive part)."""
    sitk = S._sitk()
    array = np.clip(sitk.GetArrayViewFromImage(image), 0, None)  # (z, y, x)
    total = float(array.sum())
    if total <= 0:
        size = np.asarray(image.GetSize(), dtype=np.float64)
        center_index = (size - 1) / 2
    else:
        grids = np.indices(array.shape, sparse=True)
        center_zyx = [float((array * g).sum()) / total for g in grids]
        center_index = np.asarray(center_zyx[::-1])
    return np.asarray(
        image.TransformContinuousIndexToPhysicalPoint(tuple(map(float, center_index)))
    )


def _initial_rigid(fixed, moving, initialize: str):
    sitk = S._sitk()
    if initialize not in INITIALIZERS:
        raise MorError(
            f"Unknown initialisation {initialize!r}; choose one of {INITIALIZERS}."
        )
    if initialize == "header":
        transform = sitk.Euler3DTransform()
        transform.SetCenter(tuple(map(float, _center_of_mass_mm(fixed))))
        return transform
    mode = (
        sitk.CenteredTransformInitializerFilter.MOMENTS
        if initialize == "moments"
        else sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    return sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), mode
    )


def _check_overlap(fixed: Volume, moving: Volume, matrix: np.ndarray, what: str):
    """Raise when the fixed grid, mapped into the moving world, misses it."""
    from napari_mor.rois.resample import grid_corners_mm

    corners = grid_corners_mm(fixed.data.shape, fixed.affine)
    moved = corners @ matrix[:3, :3].T + matrix[:3, 3]
    inverse = np.linalg.inv(np.asarray(moving.affine, dtype=np.float64))
    voxel = moved @ inverse[:3, :3].T + inverse[:3, 3]
    low, high = voxel.min(axis=0), voxel.max(axis=0)
    upper = np.asarray(moving.data.shape, dtype=np.float64) - 0.5
    if np.any(high < -0.5) or np.any(low > upper):
        fixed_box = _box(corners)
        moving_box = _box(grid_corners_mm(moving.data.shape, moving.affine))
        raise MorError(
            f"{what}: the images do not overlap in world space (fixed spans "
            f"{fixed_box}, moving spans {moving_box} mm). Check that both are in the "
            "same world space, or use initialize='moments' (CLI: --init moments) to "
            "start from their centres of mass."
        )


def _box(corners: np.ndarray) -> str:
    low, high = corners.min(axis=0), corners.max(axis=0)
    spans = [f"{a:.0f}..{b:.0f}" for a, b in zip(low, high, strict=True)]
    return "[" + ", ".join(spans) + "]"


def iter_register(
    fixed: Volume,
    moving: Volume,
    *,
    kind: str = "rigid",
    initialize: str = "header",
    levels: Sequence[tuple[int, float]] = COREG_LEVELS,
    iterations: int = 200,
    sampling_fraction: float = 0.2,
    n_bins: int = 32,
    fixed_mask: np.ndarray | None = None,
    moving_mask: np.ndarray | None = None,
    fixed_space: str = "fixed",
    moving_space: str = "moving",
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
    what: str = "Registration",
    affine_levels: Sequence[tuple[int, float]] | None = None,
    optimizer: str = "rsgd",
) -> Generator[Progress, None, RegistrationResult]:
    """Register ``moving`` onto ``fixed`` by mutual information, level by level.

    A generator: it yields ``(levels_done, levels_total)`` after each pyramid
    level and returns a :class:`RegistrationResult` (``result = yield from
    iter_register(...)``). Use :func:`register` for a plain call.

    Parameters
    ----------
    fixed, moving : Volume
        3D images (x, y, z) with voxel->world (mm) affines.
    kind : {"rigid", "affine"}
        Rigid (6 parameters); affine runs rigid first, then 12 parameters.
    initialize : {"header", "geometry", "moments"}
        Start from the file geometry (identity in world space), from aligned
        grid centres, or from aligned centres of mass.
    levels : sequence of (shrink, smoothing_mm)
        Pyramid, coarse to fine; shrink in voxels of the fixed image.
    iterations : int
        Maximum optimiser iterations per level.
    sampling_fraction : float
        Fraction of fixed voxels sampled (randomly, seeded) by the metric.
    n_bins : int
        Joint-histogram bins of the Mattes metric.
    fixed_mask, moving_mask : ndarray of bool, optional
        Restrict the metric to these voxels (on the fixed/moving grids).
    fixed_space, moving_space : str
        Names stored in the returned transform.
    seed : int
        Sampling seed (repeatable results).
    should_stop : callable, optional
        Polled every iteration; returning True cancels the run.
    what : str
        Name of the registration in messages.
    affine_levels : sequence of (shrink, smoothing_mm), optional
        Pyramid of the affine stage (default: ``levels``).
    optimizer : {"rsgd", "powell"}
        SimpleITK optimiser of the rigid stage: regular-step gradient descent
        or Powell (slower, but robust where the cost is flat in one direction,
        as for PET -> MR). The affine stage always uses regular-step gradient
        descent. Both on Mattes mutual information with physical-shift scales.

    Returns
    -------
    RegistrationResult
        ``transform`` maps fixed world -> moving world (mm).
    """
    if kind not in ("rigid", "affine"):
        raise MorError(f"kind must be 'rigid' or 'affine'; got {kind!r}.")
    S.check_volume(fixed.data, fixed.affine, f"The fixed image ({fixed_space})")
    S.check_volume(moving.data, moving.affine, f"The moving image ({moving_space})")
    if not 0 < sampling_fraction <= 1:
        raise MorError(f"sampling_fraction must be in (0, 1]; got {sampling_fraction}.")
    if iterations < 1:
        raise MorError(f"iterations must be >= 1; got {iterations}.")
    specs = [S.LevelSpec(int(s), float(m)) for s, m in levels]
    if not specs:
        raise MorError("At least one pyramid level is needed.")
    if affine_levels is not None:
        affine_levels = [S.LevelSpec(int(s), float(m)) for s, m in affine_levels]
    sitk = S._sitk()
    fixed_img = S.to_sitk(fixed.data, fixed.affine, f"The fixed image ({fixed_space})")
    moving_img = S.to_sitk(
        moving.data, moving.affine, f"The moving image ({moving_space})"
    )
    masks = {}
    for key, mask, volume in (
        ("fixed_mask", fixed_mask, fixed),
        ("moving_mask", moving_mask, moving),
    ):
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != volume.data.shape or not mask.any():
                raise MorError(
                    f"{key} must be a non-empty boolean array of the image's shape "
                    f"{volume.data.shape}; got shape {mask.shape}."
                )
            masks[key] = S.mask_to_sitk(mask, volume.affine, key)
    initial = _initial_rigid(fixed_img, moving_img, initialize)
    _check_overlap(fixed, moving, S.sitk_to_matrix(initial), what)
    n_affine = len(affine_levels or specs) if kind == "affine" else 0
    total = len(specs) + n_affine
    common = {
        "iterations": iterations,
        "sampling_fraction": sampling_fraction,
        "n_bins": n_bins,
        "seed": seed,
        "should_stop": should_stop,
        "what": what,
        **masks,
    }
    runner = S.iter_run(
        fixed_img,
        moving_img,
        initial,
        specs,
        optimizer=optimizer,
        min_step=1e-2 if optimizer == "powell" else 1e-3,
        **common,
    )
    transform, info = yield from _progress(runner, 0, total)
    elapsed = info.elapsed_s
    if kind == "affine" and not info.stopped:
        affine = sitk.AffineTransform(3)
        affine.SetCenter(transform.GetCenter())
        affine.SetMatrix(transform.GetMatrix())
        affine.SetTranslation(transform.GetTranslation())
        runner = S.iter_run(
            fixed_img,
            moving_img,
            affine,
            affine_levels or specs,
            optimizer="rsgd",
            learning_rate=1.0,
            min_step=1e-3,
            relaxation=0.7,
            **common,
        )
        transform, info = yield from _progress(runner, len(specs), total)
        elapsed += info.elapsed_s
    S.warn_not_converged(info, what, iterations)
    result = RegistrationResult(
        transform=Transform(info.matrix, fixed_space, moving_space, kind),
        metric_value=info.metric_value,
        n_iterations=info.n_iterations,
        converged=info.converged,
        stop_condition=info.stop_condition,
        elapsed_s=elapsed,
        cancelled=info.stopped,
    )
    return result


def _progress(runner, offset: int, total: int):
    while True:
        try:
            done = next(runner)
        except StopIteration as stop:
            return stop.value
        yield (offset + done, total)


def run_to_end(generator: Generator):
    """Exhaust a progress generator and return its value."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def register(fixed: Volume, moving: Volume, **kwargs) -> RegistrationResult:
    """:func:`iter_register` run to the end (same parameters)."""
    return run_to_end(iter_register(fixed, moving, **kwargs))


def _as_volume(pet, window_min) -> tuple[Volume, list]:
    if isinstance(pet, DynamicPET):
        frames = pet.timing.frames_in_window(*window_min)
        return mean_pet_image(pet, window_min), np.flatnonzero(frames).tolist()
    if isinstance(pet, Volume):
        return pet, []
    raise MorError(
        f"PET must be a DynamicPET or a static Volume; got {type(pet).__name__}."
    )


def iter_coregister_pet_to_mr(
    pet: DynamicPET | Volume,
    mr: Volume,
    *,
    window_min: tuple[float, float] = DEFAULT_MEAN_WINDOW_MIN,
    initialize: str = "header",
    levels: Sequence[tuple[int, float]] = COREG_LEVELS,
    iterations: int = 200,
    sampling_fraction: float = 1.0,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[Progress, None, RegistrationResult]:
    """Rigid PET -> MR coregistration (generator form; see :func:`iter_register`).

    The mean PET of the frames in ``window_min`` (late frames by default) is
    registered rigidly onto the T1 by Mattes mutual information. The returned
    transform maps MR world -> PET world: pass it to
    :func:`~napari_mor.registration.resample_map` to bring PET onto the MR grid,
    or its inverse to bring MR-space labels onto the PET grid.
    """
    moving, _frames = _as_volume(pet, window_min)
    result = yield from iter_register(
        mr,
        moving,
        kind="rigid",
        initialize=initialize,
        levels=levels,
        iterations=iterations,
        sampling_fraction=sampling_fraction,
        fixed_space="MR",
        moving_space="PET",
        seed=seed,
        should_stop=should_stop,
        what="PET-to-MR coregistration",
        optimizer="powell",
    )
    return result


def coregister_pet_to_mr(pet, mr: Volume, **kwargs) -> RegistrationResult:
    """Rigid PET -> MR coregistration by mutual information.

    Parameters
    ----------
    pet : DynamicPET or Volume
        Dynamic PET (its mean over ``window_min`` is used) or a static PET.
    mr : Volume
        T1-weighted MR, the fixed image.
    **kwargs
        ``window_min`` (default 20-90 min), ``initialize``, ``levels``,
        ``iterations``, ``sampling_fraction``, ``seed``, ``should_stop``.

    Returns
    -------
    RegistrationResult
        ``transform``: MR world -> PET world (mm), rigid.
    """
    return run_to_end(iter_coregister_pet_to_mr(pet, mr, **kwargs))
