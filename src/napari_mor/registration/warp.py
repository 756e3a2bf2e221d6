"""Non-linear (B-spline) refinement of MR -> MNI normalisation, as a dense
displacement field.

Convention (the same "pull" convention as :class:`~.transforms.Transform`): a
:class:`DisplacementField` maps a point ``x`` of the *fixed* world (MNI, RAS mm)
to ``x + d(x)`` in the *moving* world (MR, RAS mm). ``d`` is sampled on a voxel
grid of the fixed space and interpolated trilinearly. The field of
:func:`refine_to_mni` holds the *total* mapping (affine plus the non-linear
residual), so it replaces the affine MNI -> MR transform; it is not added to it.

Only the forward direction (MNI -> MR) is provided: enough to pull MR-grid,
PET-grid or map images into MNI space (:meth:`DisplacementField.resample_through`).
There is no inverse (atlas labels onto PET still use the affine).

Images are handed to SimpleITK in the RAS world directly (see :mod:`._sitk`),
so SimpleITK's displacement vectors are already RAS mm; only the ITK/ANTs warp
file convention (LPS) would need the x and y components negated, and this
module does not write that format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_mor._errors import MorError
from napari_mor.io.volume import Volume
from napari_mor.registration import _sitk as S
from napari_mor.registration.transforms import Transform

#: Written in the JSON sidecar of a saved field.
FIELD_CONVENTION = (
    "displacement d (RAS mm) on the fixed grid: fixed world x -> moving world x + d(x)"
)

_GENERIC_SPACES = {"fixed", "moving"}


def _check_affine(affine, what: str) -> np.ndarray:
    affine = np.array(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise MorError(f"{what} must be a finite 4x4 voxel->world affine.")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise MorError(f"{what} is singular (zero voxel size).")
    return affine


@dataclass(frozen=True)
class DisplacementField:
    """A dense fixed world -> moving world mapping ``x -> x + d(x)`` (RAS mm).

    Parameters
    ----------
    displacement_mm : ndarray, shape (x, y, z, 3), float32
        Displacement (RAS mm) of the fixed-world voxel centres of the grid.
    affine : ndarray, shape (4, 4)
        Voxel->world (mm) affine of that grid (a grid of the fixed space).
    fixed_space, moving_space : str
        Names of the two worlds (``"MNI152"`` -> ``"MR"`` for normalisation).
    metadata : dict
        Provenance (metric, iterations, ...); informational.

    Notes
    -----
    Between grid points the displacement is interpolated trilinearly. Points
    outside the grid take the displacement of the **nearest edge voxel**
    (constant extrapolation), not zero: the field of :func:`refine_to_mni`
    contains the affine part, so zero would send such points to the wrong place.
    """

    displacement_mm: np.ndarray
    affine: np.ndarray
    fixed_space: str = "MNI152"
    moving_space: str = "MR"
    metadata: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        disp = np.asarray(self.displacement_mm)
        if disp.ndim == 5 and disp.shape[3] == 1:  # ITK/NIfTI vector layout
            disp = disp[:, :, :, 0, :]
        if disp.ndim != 4 or disp.shape[-1] != 3:
            raise MorError(
                f"A displacement field must have shape (x, y, z, 3) (one 3-vector, "
                f"mm, per voxel); got shape {disp.shape}."
            )
        if min(disp.shape[:3]) < 1:
            raise MorError(f"The displacement field grid is empty ({disp.shape}).")
        if not np.issubdtype(disp.dtype, np.number):
            raise MorError(f"The displacement field must be numeric; got {disp.dtype}.")
        disp = np.array(disp, dtype=np.float32)
        bad = ~np.isfinite(disp)
        if bad.any():
            raise MorError(
                f"The displacement field has {int(bad.any(axis=-1).sum())} voxel(s) "
                "with non-finite (NaN/inf) vectors; a field must be finite everywhere."
            )
        affine = _check_affine(self.affine, "The displacement field affine")
        disp.flags.writeable = False
        affine.flags.writeable = False
        object.__setattr__(self, "displacement_mm", disp)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "fixed_space", str(self.fixed_space))
        object.__setattr__(self, "moving_space", str(self.moving_space))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the grid (x, y, z)."""
        return tuple(self.displacement_mm.shape[:3])

    @classmethod
    def from_transform(
        cls, transform: Transform, shape, affine: np.ndarray
    ) -> DisplacementField:
        """The field of an affine :class:`Transform` sampled on a grid."""
        shape = tuple(int(n) for n in shape)
        affine = _check_affine(affine, "The grid affine")
        points = _grid_points_mm(shape, affine)
        disp = (transform.apply(points) - points).reshape(*shape, 3)
        return cls(disp, affine, transform.fixed_space, transform.moving_space)

    def apply(self, points_mm: np.ndarray) -> np.ndarray:
        """Map fixed-world points to the moving world.

        Parameters
        ----------
        points_mm : array_like, shape (n, 3) or (3,)
            Fixed-world coordinates (RAS mm).

        Returns
        -------
        ndarray, same shape, float64
            Moving-world coordinates, ``x + d(x)`` (trilinear; nearest edge
            value outside the grid).
        """
        points = np.asarray(points_mm, dtype=np.float64)
        if points.shape[-1:] != (3,) or points.ndim > 2:
            raise MorError(
                f"Points must have shape (n, 3) or (3,); got shape {points.shape}."
            )
        flat = points.reshape(-1, 3)
        if not np.all(np.isfinite(flat)):
            raise MorError("Points to map must be finite.")
        inverse = np.linalg.inv(self.affine)
        index = (flat @ inverse[:3, :3].T + inverse[:3, 3]).T  # (3, n)
        moved = flat.copy()
        for axis in range(3):
            moved[:, axis] += ndimage.map_coordinates(
                self.displacement_mm[..., axis],
                index,
                order=1,
                mode="nearest",
                output=np.float64,
            )
        return moved.reshape(points.shape)

    def resample_through(
        self,
        data: np.ndarray,
        image_affine: np.ndarray,
        reference_shape,
        reference_affine: np.ndarray,
        then: Transform | None = None,
        order: int = 1,
        fill_value: float = 0.0,
    ) -> np.ndarray:
        """Pull an image of the moving world onto a fixed-space reference grid.

        Every reference voxel centre ``x`` (fixed world) is sent to
        ``then(x + d(x))`` and the image is interpolated there.

        Parameters
        ----------
        data : ndarray, shape (x, y, z) or (t, x, y, z)
            Image values (4D: time first, resampled frame by frame).
        image_affine : ndarray, shape (4, 4)
            Voxel->world (mm) affine of ``data``.
        reference_shape : tuple of 3 ints
            Output grid shape (a grid of the fixed space, e.g. MNI 2 mm).
        reference_affine : ndarray, shape (4, 4)
            Voxel->world (mm) affine of the output grid.
        then : Transform, optional
            Moving world -> image world (e.g. MR -> PET from coregistration);
            None when ``data`` is itself in the moving world.
        order : int
            Spline order (1 = trilinear, 0 = nearest for labels).
        fill_value : float
            Value outside the image.

        Returns
        -------
        ndarray, float32, shape reference_shape (or (t, *reference_shape))
            A new array; ``data`` is not modified.
        """
        data = np.asarray(data)
        if data.ndim not in (3, 4):
            raise MorError(
                f"resample_through needs a 3D (x, y, z) or 4D (t, x, y, z) image; "
                f"got shape {data.shape}."
            )
        shape = tuple(int(n) for n in reference_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise MorError(
                f"The reference grid must be 3D with positive sizes; got {shape}."
            )
        reference_affine = _check_affine(reference_affine, "The reference affine")
        image_affine = _check_affine(image_affine, "The image affine")
        if then is not None:
            if not isinstance(then, Transform):
                raise MorError(
                    f"'then' must be a Transform (moving world -> image world); got "
                    f"{type(then).__name__}."
                )
            if (
                then.fixed_space not in _GENERIC_SPACES
                and self.moving_space not in _GENERIC_SPACES
                and then.fixed_space != self.moving_space
            ):
                raise MorError(
                    f"Cannot chain the field {self.fixed_space}->{self.moving_space} "
                    f"with {then.fixed_space}->{then.moving_space}: the spaces do not "
                    "meet. Invert the transform or check its direction."
                )
        points = self.apply(_grid_points_mm(shape, reference_affine))
        if then is not None:
            points = then.apply(points)
        inverse = np.linalg.inv(image_affine)
        index = (points @ inverse[:3, :3].T + inverse[:3, 3]).T.reshape(3, *shape)
        source = np.nan_to_num(data.astype(np.float32, copy=False), nan=0.0)

        def one(volume: np.ndarray) -> np.ndarray:
            return ndimage.map_coordinates(
                volume,
                index,
                order=int(order),
                mode="constant",
                cval=float(fill_value),
                output=np.float32,
            )

        if data.ndim == 3:
            return one(source)
        out = np.empty((data.shape[0], *shape), dtype=np.float32)
        for frame in range(data.shape[0]):
            out[frame] = one(source[frame])
        return out

    def to_dict(self) -> dict:
        """JSON-friendly description (without the vectors)."""
        return {
            "kind": "displacement_field",
            "fixed_space": self.fixed_space,
            "moving_space": self.moving_space,
            "convention": FIELD_CONVENTION,
            "shape": list(self.shape),
            **({"registration": self.metadata} if self.metadata else {}),
        }


def _grid_points_mm(shape, affine: np.ndarray) -> np.ndarray:
    """World (mm) coordinates of all voxel centres, shape (n, 3), C order."""
    index = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    return index @ affine[:3, :3].T + affine[:3, 3]


# ---------------------------------------------------------------- file I/O


def save_displacement_field(field_: DisplacementField, path: str | Path) -> Path:
    """Write a field as a 4D NIfTI (x, y, z, 3; float32, RAS mm) and a JSON sidecar.

    The vectors are RAS mm (napari-mor convention), *not* the LPS vectors of an
    ITK/ANTs warp file; the sidecar says so and records the two spaces.
    """
    from napari_mor.io.writers import write_nifti

    return write_nifti(
        path, field_.displacement_mm, field_.affine, provenance=field_.to_dict()
    )


def load_displacement_field(path: str | Path) -> DisplacementField:
    """Read a field written by :func:`save_displacement_field`.

    Raises
    ------
    MorError
        When the file is missing, unreadable or not a (x, y, z, 3) field.
    """
    from napari_mor.io._nifti import (
        affine_of,
        load_image,
        read_data,
        strip_image_suffix,
    )

    path = Path(path)
    image = load_image(path)
    data = read_data(image, path)
    affine = affine_of(image, path)
    meta: dict = {}
    sidecar = strip_image_suffix(path).with_suffix(".json")
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
    if meta and meta.get("kind") not in (None, "displacement_field"):
        raise MorError(f"{path} is not a napari-mor displacement field.")
    try:
        return DisplacementField(
            data,
            affine,
            str(meta.get("fixed_space", "fixed")),
            str(meta.get("moving_space", "moving")),
            dict(meta.get("registration", {})),
        )
    except MorError as err:
        raise MorError(f"{path}: {err}") from err


# ---------------------------------------------------------------- registration


def field_from_sitk(
    transform,
    template: Volume,
    fixed_space: str = "fixed",
    moving_space: str = "moving",
) -> DisplacementField:
    """Sample any SimpleITK transform (RAS world, see :mod:`._sitk`) on a grid."""
    sitk = S._sitk()
    reference = S.to_sitk(template.data, template.affine, "The template")
    converter = sitk.TransformToDisplacementFieldFilter()
    converter.SetReferenceImage(reference)
    converter.SetOutputPixelType(sitk.sitkVectorFloat64)
    image = converter.Execute(transform)
    # (z, y, x, 3) -> (x, y, z, 3); vectors are already RAS since the sitk world
    # is the RAS world here.
    disp = sitk.GetArrayFromImage(image).transpose(2, 1, 0, 3)
    return DisplacementField(disp, template.affine, fixed_space, moving_space)


def refine_to_mni(
    mr: Volume,
    affine_result_transform: Transform,
    template: Volume | None = None,
    mesh_size: Sequence[int] = (6, 6, 6),
    iterations: int = 30,
    shrink: int = 2,
    should_stop: Callable[[], bool] | None = None,
    *,
    mr_mask: np.ndarray | None = None,
    max_displacement_mm: float = 15.0,
    sampling_fraction: float = 0.25,
    n_bins: int = 32,
    seed: int = 0,
) -> DisplacementField:
    """B-spline refinement of an affine MNI -> MR normalisation.

    A cubic B-spline transform (``mesh_size`` control-point intervals over the
    template) is optimised by Mattes mutual information (SimpleITK, L-BFGS-B) on
    top of the affine, in two pyramid levels (shrink ``2*shrink`` then
    ``shrink``). The total mapping (affine then B-spline residual) is sampled
    on the template grid.

    Parameters
    ----------
    mr : Volume
        T1-weighted MR (moving image).
    affine_result_transform : Transform
        Template world -> MR world from :func:`normalize_to_mni` (``.transform``
        of its result; a ``RegistrationResult`` is accepted too).
    template : Volume, optional
        Fixed image; default the nilearn MNI152 2 mm template.
    mesh_size : 3 ints
        B-spline mesh intervals per axis (6 -> ~30 mm control spacing in MNI).
    iterations : int
        Maximum L-BFGS-B iterations per level.
    shrink : int
        Shrink factor of the finest level (voxels of the template).
    should_stop : callable, optional
        Polled every iteration; True stops the optimiser (the field reached so
        far is returned with ``metadata["cancelled"] = True``).
    mr_mask : ndarray of bool, shape mr.data.shape, optional
        Brain mask of the MR restricting the metric (as in
        :func:`normalize_to_mni`; recommended with the skull-stripped MNI
        template, without it the scalp is pulled onto the brain).
    max_displacement_mm : float
        Bound on every B-spline coefficient (mm, L-BFGS-B box constraint). As
        the cubic B-spline weights sum to 1, each component (x, y, z) of the
        non-linear residual on top of the affine stays within it: a crude guard
        against implausible warps (the B-spline has no other regulariser than
        its mesh spacing).
    sampling_fraction, n_bins, seed
        Metric sampling (random, seeded, fixed per level) and histogram bins.

    Returns
    -------
    DisplacementField
        Template (MNI) world -> MR world on the template grid.
    """
    import time

    transform = getattr(affine_result_transform, "transform", affine_result_transform)
    if not isinstance(transform, Transform):
        raise MorError(
            "refine_to_mni needs the affine Transform (template -> MR) from "
            f"normalize_to_mni; got {type(affine_result_transform).__name__}."
        )
    mesh = tuple(int(m) for m in mesh_size)
    if len(mesh) != 3 or min(mesh) < 1:
        raise MorError(f"mesh_size must be 3 positive integers; got {mesh_size}.")
    if int(iterations) < 1 or int(shrink) < 1:
        raise MorError(
            f"iterations and shrink must be >= 1; got {iterations}, {shrink}."
        )
    if not 0 < sampling_fraction <= 1:
        raise MorError(f"sampling_fraction must be in (0, 1]; got {sampling_fraction}.")
    if not (np.isfinite(max_displacement_mm) and max_displacement_mm > 0):
        raise MorError(
            f"max_displacement_mm must be a positive number; got {max_displacement_mm}."
        )
    if template is None:
        from napari_mor.rois import load_mni_template

        template = load_mni_template(2)
    S.check_volume(template.data, template.affine, "The template")
    S.check_volume(mr.data, mr.affine, "The MR")
    sitk = S._sitk()
    start = time.perf_counter()
    fixed = S.to_sitk(template.data, template.affine, "The template")
    moving = S.to_sitk(mr.data, mr.affine, "The MR")
    affine_sitk = S.matrix_to_sitk_affine(transform.matrix)
    bspline = sitk.BSplineTransformInitializer(fixed, list(mesh), 3)

    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(n_bins))
    if sampling_fraction < 1:
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(float(sampling_fraction), int(seed) + 1)
    if mr_mask is not None:
        if np.shape(mr_mask) != mr.data.shape:
            raise MorError(
                f"mr_mask has shape {np.shape(mr_mask)}; it must match the MR "
                f"{mr.data.shape}."
            )
        method.SetMetricMovingMask(S.mask_to_sitk(mr_mask, mr.affine, "The MR mask"))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsLBFGSB(
        gradientConvergenceTolerance=1e-5,
        numberOfIterations=int(iterations),
        maximumNumberOfCorrections=5,
        maximumNumberOfFunctionEvaluations=4 * int(iterations),
        costFunctionConvergenceFactor=1e7,
        lowerBound=-float(max_displacement_mm),
        upperBound=float(max_displacement_mm),
    )
    s = int(shrink)
    method.SetShrinkFactorsPerLevel([2 * s, s])
    method.SetSmoothingSigmasPerLevel([float(s), 0.5 * s])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    # Full mapping: fixed x -> affine(bspline(x)); only the B-spline is optimised.
    method.SetMovingInitialTransform(affine_sitk)
    method.SetInitialTransform(bspline, inPlace=True)
    stopped = []
    if should_stop is not None:

        def _poll() -> None:
            if should_stop():
                stopped.append(True)
                method.StopRegistration()

        method.AddCommand(sitk.sitkIterationEvent, _poll)
    try:
        method.Execute(fixed, moving)
    except RuntimeError as err:
        raise MorError(S._explain_itk_error(err, "Non-linear MNI refinement")) from err

    composite = sitk.CompositeTransform(3)
    composite.AddTransform(affine_sitk)
    composite.AddTransform(bspline)  # applied first (ITK composite: last in, first)
    result = field_from_sitk(
        composite, template, transform.fixed_space, transform.moving_space
    )
    metadata = {
        "method": "B-spline on affine, Mattes MI, L-BFGS-B (SimpleITK)",
        "mesh_size": list(mesh),
        "shrink_levels": [2 * s, s],
        "max_displacement_mm": float(max_displacement_mm),
        "metric_value": float(method.GetMetricValue()),
        "n_iterations_last_level": int(method.GetOptimizerIteration()),
        "stop_condition": method.GetOptimizerStopConditionDescription(),
        "elapsed_s": round(time.perf_counter() - start, 3),
        "cancelled": bool(stopped),
        "affine": transform.to_dict(),
    }
    return DisplacementField(
        result.displacement_mm,
        result.affine,
        result.fixed_space,
        result.moving_space,
        metadata,
    )
