"""SimpleITK plumbing: numpy grids <-> sitk images, and a level-by-level runner.

Images are handed to SimpleITK in the NIfTI world frame (RAS+, mm) directly:
origin, spacing and direction come from the voxel->world affine, so every
transform SimpleITK optimises maps fixed world (RAS mm) to moving world (RAS mm).
Only the ``.tfm`` writer/reader converts to ITK's LPS convention.

The optimiser is SimpleITK's (regular-step gradient descent on Mattes mutual
information); this module only configures it and runs one pyramid level per
``Execute`` call so that callers can report progress and stop between levels.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError, MorWarning

#: Smallest number of voxels along an axis that a 3D registration accepts.
MIN_AXIS_VOXELS = 8


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError as err:
        raise MorError(
            "Registration needs SimpleITK, an optional extra of napari-mor; install "
            "it with 'pip install \"napari-mor[registration]\"' (or "
            "'napari-mor[all]')."
        ) from err
    return sitk


def check_volume(data: np.ndarray, affine: np.ndarray, what: str) -> None:
    """Validate a 3D image for registration, naming it in the message."""
    data = np.asarray(data)
    if data.ndim != 3:
        raise MorError(
            f"{what} has {data.ndim} dimensions (shape {data.shape}); registration "
            "needs a 3D image (x, y, z). For dynamic PET pick frames or use the mean "
            "image; a 2D slice cannot be registered in 3D."
        )
    if min(data.shape) < MIN_AXIS_VOXELS:
        raise MorError(
            f"{what} has shape {data.shape}; registration needs at least "
            f"{MIN_AXIS_VOXELS} voxels along every axis (a single slice or thin "
            "slab cannot be registered in 3D)."
        )
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise MorError(f"{what} needs a finite 4x4 voxel->world affine.")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise MorError(f"{what} has a singular affine (zero voxel size).")
    finite = np.isfinite(data)
    if not finite.any() or np.ptp(data[finite]) <= 0:
        raise MorError(
            f"{what} is empty or constant (all voxels {_first_value(data)}); "
            "registration needs image contrast. Check that the right image/frames "
            "were chosen."
        )


def _first_value(data: np.ndarray) -> str:
    finite = data[np.isfinite(data)]
    return f"{float(finite.flat[0]):g}" if finite.size else "NaN"


def to_sitk(data: np.ndarray, affine: np.ndarray, what: str = "image"):
    """A float32 SimpleITK image of ``data`` (x, y, z) on the grid of ``affine``.

    Raises
    ------
    MorError
        When the affine has shear (SimpleITK grids are orthogonal).
    """
    sitk = _sitk()
    affine = np.asarray(affine, dtype=np.float64)
    linear = affine[:3, :3]
    spacing = np.sqrt((linear**2).sum(axis=0))
    direction = linear / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise MorError(
            f"{what} has a sheared voxel grid (its affine columns are not "
            "orthogonal); reslice it onto an orthogonal grid first."
        )
    array = np.nan_to_num(np.asarray(data, dtype=np.float32), nan=0.0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in direction.ravel()])
    image.SetOrigin([float(v) for v in affine[:3, 3]])
    return image


def mask_to_sitk(mask: np.ndarray, affine: np.ndarray, what: str = "mask"):
    """A uint8 SimpleITK mask image on the grid of ``affine``."""
    sitk = _sitk()
    image = to_sitk(np.asarray(mask, dtype=np.float32), affine, what)
    return sitk.Cast(image > 0.5, sitk.sitkUInt8)


def sitk_to_matrix(transform) -> np.ndarray:
    """The 4x4 matrix of any affine SimpleITK transform (fixed -> moving world).

    Found by transforming the origin and the unit vectors, so composite,
    Euler, similarity and affine transforms are all handled alike.
    """
    points = np.vstack([np.zeros(3), np.eye(3)])
    mapped = np.array([transform.TransformPoint(tuple(map(float, p))) for p in points])
    matrix = np.eye(4)
    matrix[:3, 3] = mapped[0]
    matrix[:3, :3] = (mapped[1:] - mapped[0]).T
    return matrix


def matrix_to_sitk_affine(matrix: np.ndarray, center: Sequence[float] | None = None):
    """A SimpleITK AffineTransform equal to a 4x4 world->world matrix."""
    sitk = _sitk()
    matrix = np.asarray(matrix, dtype=np.float64)
    transform = sitk.AffineTransform(3)
    center = np.zeros(3) if center is None else np.asarray(center, dtype=np.float64)
    linear = matrix[:3, :3]
    offset = matrix[:3, 3]
    transform.SetCenter(tuple(map(float, center)))
    transform.SetMatrix(tuple(map(float, linear.ravel())))
    # y = A (x - c) + c + t  ==  A x + offset  ->  t = offset - c + A c
    transform.SetTranslation(tuple(map(float, offset - center + linear @ center)))
    return transform


def matrix_to_sitk_euler(matrix: np.ndarray, center: Sequence[float]):
    """A SimpleITK Euler3DTransform for a rigid 4x4 matrix about ``center``."""
    sitk = _sitk()
    matrix = np.asarray(matrix, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(map(float, center)))
    transform.SetMatrix(tuple(map(float, _nearest_rotation(matrix[:3, :3]).ravel())))
    linear = transform.GetMatrix()
    linear = np.asarray(linear).reshape(3, 3)
    translation = matrix[:3, 3] - center + linear @ center
    transform.SetTranslation(tuple(map(float, translation)))
    return transform


def _nearest_rotation(linear: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(linear)
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        u[:, -1] *= -1
        rotation = u @ vt
    return rotation


@dataclass(frozen=True)
class LevelSpec:
    """One pyramid level: shrink factor (voxels) and smoothing sigma (mm)."""

    shrink: int
    smooth_mm: float


@dataclass(frozen=True)
class RunInfo:
    """What SimpleITK reported after the last level."""

    matrix: np.ndarray
    metric_value: float
    n_iterations: int
    converged: bool
    stop_condition: str
    elapsed_s: float
    stopped: bool


def iter_run(
    fixed,
    moving,
    initial,
    levels: Sequence[LevelSpec],
    *,
    iterations: int,
    sampling_fraction: float,
    n_bins: int = 32,
    learning_rate: float = 2.0,
    min_step: float = 1e-3,
    relaxation: float = 0.7,
    optimizer: str = "rsgd",
    sampling: str = "random",
    fixed_mask=None,
    moving_mask=None,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
    what: str = "registration",
) -> Generator[int, None, tuple[object, RunInfo]]:
    """Run Mattes-MI registration one pyramid level at a time.

    ``optimizer`` is SimpleITK's regular-step gradient descent (``"rsgd"``)
    or Powell (``"powell"``). ``learning_rate`` is Powell's initial step
    or RSGD's learning rate, ``min_step`` their step tolerance, both in units
    of the physical-shift parameter scales (~mm) and multiplied by the shrink.

    Yields the number of levels done after each level. Returns the optimised
    SimpleITK transform (same type as ``initial``) and a :class:`RunInfo`.
    ``should_stop`` is polled at every optimiser iteration; when it returns
    True the optimiser stops and the remaining levels are skipped.
    """
    sitk = _sitk()
    start = time.perf_counter()
    transform = initial
    info = None
    stopped = False
    for done, level in enumerate(levels, start=1):
        method = sitk.ImageRegistrationMethod()
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=n_bins)
        if sampling_fraction < 1:
            method.SetMetricSamplingStrategy(getattr(method, sampling.upper()))
            # ITK reads a seed of 0 as "seed from the wall clock" (results would
            # change from run to run): shift so that every seed is reproducible.
            method.SetMetricSamplingPercentage(float(sampling_fraction), int(seed) + 1)
        if fixed_mask is not None:
            method.SetMetricFixedMask(fixed_mask)
        if moving_mask is not None:
            method.SetMetricMovingMask(moving_mask)
        method.SetInterpolator(sitk.sitkLinear)
        if optimizer == "rsgd":
            method.SetOptimizerAsRegularStepGradientDescent(
                learningRate=learning_rate * level.shrink,
                minStep=min_step,
                numberOfIterations=int(iterations),
                relaxationFactor=relaxation,
                gradientMagnitudeTolerance=1e-8,
            )
        elif optimizer == "powell":
            method.SetOptimizerAsPowell(
                numberOfIterations=int(iterations),
                maximumLineIterations=100,
                stepLength=learning_rate * level.shrink,
                stepTolerance=min_step,
                valueTolerance=1e-6,
            )
        else:
            raise MorError(f"Unknown optimizer {optimizer!r}; use 'powell' or 'rsgd'.")
        method.SetOptimizerScalesFromPhysicalShift()
        method.SetShrinkFactorsPerLevel([int(level.shrink)])
        method.SetSmoothingSigmasPerLevel([float(level.smooth_mm)])
        method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        method.SetInitialTransform(transform, inPlace=False)
        if should_stop is not None:

            def _poll(method=method) -> None:
                if should_stop():
                    method.StopRegistration()

            method.AddCommand(sitk.sitkIterationEvent, _poll)
        try:
            result = method.Execute(fixed, moving)
        except RuntimeError as err:
            raise MorError(_explain_itk_error(err, what)) from err
        transform = _unwrap(result, type(initial))
        n_iter = int(method.GetOptimizerIteration())
        condition = method.GetOptimizerStopConditionDescription()
        metric = float(method.GetMetricValue())
        info = (metric, n_iter, condition)
        if should_stop is not None and should_stop():
            stopped = True
            break
        yield done
    metric, n_iter, condition = info
    converged = not (
        n_iter >= iterations or "Maximum number of iterations" in condition
    )
    run = RunInfo(
        matrix=sitk_to_matrix(transform),
        metric_value=metric,
        n_iterations=n_iter,
        converged=converged and not stopped,
        stop_condition=condition,
        elapsed_s=time.perf_counter() - start,
        stopped=stopped,
    )
    return transform, run


def _unwrap(result, kind):
    """The optimised transform as ``kind`` (Execute may wrap it in a composite)."""
    sitk = _sitk()
    if isinstance(result, kind):
        return result
    try:
        composite = sitk.CompositeTransform(result)
        if composite.GetNumberOfTransforms() == 1:
            inner = composite.GetNthTransform(0)
            return kind(inner) if not isinstance(inner, kind) else inner
    except (RuntimeError, TypeError):
        pass
    return kind(result)


def _explain_itk_error(err: RuntimeError, what: str) -> str:
    text = str(err)
    if "outside" in text or "Too many samples" in text or "valid points" in text:
        return (
            f"{what} failed: the images do not overlap (SimpleITK: too many samples "
            "map outside the moving image). Check that both images are in the same "
            "world (scanner/MNI mm) space, or start from a centre-of-mass "
            "initialisation."
        )
    last_line = text.strip().splitlines()[-1] if text.strip() else text
    return f"{what} failed in SimpleITK: {last_line}"


def warn_not_converged(info: RunInfo, what: str, iterations: int) -> None:
    """Warn when the optimiser stopped on its iteration limit."""
    if not info.converged and not info.stopped:
        warnings.warn(
            f"{what} did not converge within {iterations} iterations at the last "
            f"level ({info.stop_condition.strip()}); the result may be inaccurate. "
            "Raise the iteration count or check the images.",
            MorWarning,
            stacklevel=3,
        )
