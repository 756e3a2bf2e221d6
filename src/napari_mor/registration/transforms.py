"""World->world (mm) transforms: storage, composition and resampling through them.

Convention (the ITK/ANTs "pull" convention): a :class:`Transform` maps a point of
the *fixed* (reference) world to the matching point of the *moving* world. A
registration of ``moving`` onto ``fixed`` returns such a transform, and
resampling ``moving`` onto the fixed grid asks, for every fixed voxel, where it
lands in the moving image. World coordinates are NIfTI world (RAS+, mm).

Use :meth:`Transform.inverse` to go the other way and :func:`compose` to chain
(e.g. MNI -> MR from normalisation, then MR -> PET from coregistration gives the
MNI -> PET transform that pulls PET maps into MNI space; its inverse pulls MNI
atlas labels onto the PET grid).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_mor._errors import MorError

#: Sign flip between NIfTI (RAS) and ITK (LPS) world coordinates.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Transform:
    """An affine map from the fixed world to the moving world (mm).

    Parameters
    ----------
    matrix : ndarray, shape (4, 4)
        Homogeneous matrix: ``moving_mm = matrix @ [fixed_mm, 1]``.
    fixed_space : str
        Name of the fixed (reference) space, e.g. ``"MR"``, ``"MNI152"``.
    moving_space : str
        Name of the moving space, e.g. ``"PET"``.
    kind : str
        ``"rigid"``, ``"affine"`` or ``"identity"`` (informational).
    """

    matrix: np.ndarray
    fixed_space: str = "fixed"
    moving_space: str = "moving"
    kind: str = "affine"

    def __post_init__(self) -> None:
        matrix = np.array(self.matrix, dtype=np.float64)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            raise MorError(
                f"A transform must be a finite 4x4 matrix; got shape {matrix.shape}."
            )
        if not np.allclose(matrix[3], [0, 0, 0, 1]):
            raise MorError(
                f"The last row of a transform must be [0 0 0 1]; got {matrix[3]}."
            )
        if abs(np.linalg.det(matrix[:3, :3])) < 1e-6:
            raise MorError("The transform is singular (determinant ~ 0).")
        matrix.flags.writeable = False
        object.__setattr__(self, "matrix", matrix)

    @classmethod
    def identity(cls, fixed_space: str = "fixed", moving_space: str = "moving"):
        """The identity transform between two spaces."""
        return cls(np.eye(4), fixed_space, moving_space, "identity")

    def inverse(self) -> Transform:
        """The transform from the moving world back to the fixed world."""
        return Transform(
            np.linalg.inv(self.matrix), self.moving_space, self.fixed_space, self.kind
        )

    def apply(self, points_mm: np.ndarray) -> np.ndarray:
        """Map fixed-world points to the moving world.

        Parameters
        ----------
        points_mm : array_like, shape (n, 3) or (3,)
            Fixed-world coordinates, mm.

        Returns
        -------
        ndarray, same shape
            Moving-world coordinates, mm.
        """
        points = np.asarray(points_mm, dtype=np.float64)
        return points @ self.matrix[:3, :3].T + self.matrix[:3, 3]

    def rigid_parameters(self, center_mm=(0.0, 0.0, 0.0)) -> dict[str, np.ndarray]:
        """Translation (mm) of ``center_mm`` and rotation angles (deg, x-y-z).

        Returns
        -------
        dict
            ``translation_mm`` shape (3,), ``rotation_deg`` shape (3,) (extrinsic
            x, then y, then z rotations of the nearest rotation matrix).
        """
        from scipy.spatial.transform import Rotation

        center = np.asarray(center_mm, dtype=np.float64)
        linear = self.matrix[:3, :3]
        u, _, vt = np.linalg.svd(linear)
        rotation = u @ vt
        if np.linalg.det(rotation) < 0:
            u[:, -1] *= -1
            rotation = u @ vt
        angles = Rotation.from_matrix(rotation).as_euler("xyz", degrees=True)
        return {"translation_mm": self.apply(center) - center, "rotation_deg": angles}

    def to_dict(self) -> dict:
        """JSON-friendly description (matrix as nested lists)."""
        return {
            "matrix": self.matrix.tolist(),
            "fixed_space": self.fixed_space,
            "moving_space": self.moving_space,
            "kind": self.kind,
            "convention": "fixed world (RAS mm) -> moving world (RAS mm)",
        }

    @classmethod
    def from_dict(cls, content: dict) -> Transform:
        """Rebuild from :meth:`to_dict` output (e.g. ``layer.metadata``)."""
        try:
            return cls(
                np.asarray(content["matrix"], dtype=np.float64),
                str(content.get("fixed_space", "fixed")),
                str(content.get("moving_space", "moving")),
                str(content.get("kind", "affine")),
            )
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, MorError):
                raise
            raise MorError(f"Not a napari-mor transform description ({err}).") from err


def compose(first: Transform, second: Transform) -> Transform:
    """Chain two transforms: ``first`` (A -> B), then ``second`` (B -> C).

    Raises
    ------
    MorError
        When the spaces do not chain (``first.moving_space`` differs from
        ``second.fixed_space``, both being named).
    """
    generic = {"fixed", "moving"}
    if (
        first.moving_space not in generic
        and second.fixed_space not in generic
        and first.moving_space != second.fixed_space
    ):
        raise MorError(
            f"Cannot chain {first.fixed_space}->{first.moving_space} with "
            f"{second.fixed_space}->{second.moving_space}: the spaces do not meet. "
            "Invert one of them (Transform.inverse) or change the order."
        )
    kind = "rigid" if first.kind in ("rigid", "identity") else first.kind
    if second.kind not in ("rigid", "identity"):
        kind = second.kind
    return Transform(
        second.matrix @ first.matrix, first.fixed_space, second.moving_space, kind
    )


# ---------------------------------------------------------------- file I/O


def save_transform(transform: Transform, path: str | Path) -> Path:
    """Write a transform as an ITK ``.tfm`` (LPS, as ITK/ANTs/Slicer read it) or as
    a 4x4 text matrix (``.txt``/``.mat``, RAS mm, fixed -> moving).

    A JSON file beside it (same stem) records the spaces and the convention.
    """
    from napari_mor.io.writers import _atomic_write, write_json

    path = Path(path)
    name = path.name.lower()
    if name.endswith(".tfm"):
        from napari_mor.registration._sitk import _sitk, matrix_to_sitk_affine

        sitk = _sitk()
        lps = _RAS_TO_LPS @ transform.matrix @ _RAS_TO_LPS
        _atomic_write(
            path, lambda tmp: sitk.WriteTransform(matrix_to_sitk_affine(lps), str(tmp))
        )
    elif name.endswith((".txt", ".mat")):
        header = (
            f"napari-mor transform: {transform.fixed_space} -> "
            f"{transform.moving_space} ({transform.kind}); maps fixed world "
            "(RAS mm) to moving world (RAS mm)"
        )
        _atomic_write(
            path,
            lambda tmp: np.savetxt(tmp, transform.matrix, fmt="%.10g", header=header),
        )
    else:
        raise MorError(
            f"Transform file {path} must end in .tfm (ITK) or .txt/.mat (4x4 text)."
        )
    write_json(path.with_suffix(".json"), transform.to_dict())
    return path


def load_transform(path: str | Path) -> Transform:
    """Read a transform written by :func:`save_transform` (or any affine ITK .tfm).

    Raises
    ------
    MorError
        When the file is missing, unreadable, or not an affine transform.
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise MorError(f"Transform file {path} does not exist.")
    meta = {}
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
    name = path.name.lower()
    if name.endswith(".tfm"):
        from napari_mor.registration._sitk import _sitk, sitk_to_matrix

        sitk = _sitk()
        try:
            itk_transform = sitk.ReadTransform(str(path))
        except RuntimeError as err:
            raise MorError(
                f"{path} is not a readable ITK transform file ({err})."
            ) from err
        if itk_transform.IsLinear() is False:
            raise MorError(
                f"{path} holds a non-linear transform; napari-mor reads affine "
                "(rigid/affine) ITK transforms only."
            )
        matrix = _RAS_TO_LPS @ sitk_to_matrix(itk_transform) @ _RAS_TO_LPS
    elif name.endswith((".txt", ".mat")):
        try:
            matrix = np.loadtxt(path, dtype=np.float64, comments="#")
        except ValueError as err:
            raise MorError(f"{path} is not a 4x4 text matrix ({err}).") from err
        if matrix.shape != (4, 4):
            raise MorError(
                f"{path} holds a {matrix.shape} matrix; a 4x4 matrix was expected."
            )
    else:
        raise MorError(
            f"Transform file {path} must end in .tfm (ITK) or .txt/.mat (4x4 text)."
        )
    return Transform(
        matrix,
        str(meta.get("fixed_space", "fixed")),
        str(meta.get("moving_space", "moving")),
        str(meta.get("kind", "affine")),
    )


# ---------------------------------------------------------------- resampling


def _grid_matrix(
    transform: Transform | None, image_affine, reference_affine
) -> np.ndarray:
    """Reference voxel index -> image voxel index (4x4)."""
    matrix = np.eye(4) if transform is None else transform.matrix
    image_affine = np.asarray(image_affine, dtype=np.float64)
    reference_affine = np.asarray(reference_affine, dtype=np.float64)
    for affine, what in ((image_affine, "image"), (reference_affine, "reference")):
        if affine.shape != (4, 4) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise MorError(f"The {what} affine must be an invertible 4x4 matrix.")
    return np.linalg.inv(image_affine) @ matrix @ reference_affine


def _check_reference_shape(reference_shape) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in reference_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise MorError(
            f"The reference grid must be 3D with positive sizes; got {shape}."
        )
    return shape


def resample_map(
    data: np.ndarray,
    image_affine: np.ndarray,
    transform: Transform | None,
    reference_shape,
    reference_affine: np.ndarray,
    *,
    order: int = 1,
    fill_value: float = 0.0,
) -> np.ndarray:
    """Resample a continuous image (map, MR, PET frame) onto a reference grid.

    Parameters
    ----------
    data : ndarray, shape (x, y, z) or (t, x, y, z)
        Image values (a 4D input is resampled frame by frame, time first).
    image_affine : ndarray, shape (4, 4)
        Voxel->world (mm) affine of ``data``.
    transform : Transform or None
        Reference world -> image world (mm); None means identity (same world).
    reference_shape : tuple of 3 ints
        Shape of the reference grid.
    reference_affine : ndarray, shape (4, 4)
        Voxel->world (mm) affine of the reference grid.
    order : int
        Spline order (1 = trilinear).
    fill_value : float
        Value outside the image (0, or NaN to mark missing data).

    Returns
    -------
    ndarray, shape reference_shape (or (t, *reference_shape)), float32
        A new array; ``data`` is not modified.
    """
    data = np.asarray(data)
    shape = _check_reference_shape(reference_shape)
    if data.ndim not in (3, 4):
        raise MorError(
            f"resample_map needs a 3D (x, y, z) or 4D (t, x, y, z) image; got shape "
            f"{data.shape}."
        )
    grid = _grid_matrix(transform, image_affine, reference_affine)
    source = np.nan_to_num(data.astype(np.float32, copy=False), nan=0.0)
    if data.ndim == 3:
        return _affine_one(source, grid, shape, order, fill_value)
    out = np.empty((data.shape[0], *shape), dtype=np.float32)
    for frame in range(data.shape[0]):
        out[frame] = _affine_one(source[frame], grid, shape, order, fill_value)
    return out


def _affine_one(source, grid, shape, order, fill_value) -> np.ndarray:
    return ndimage.affine_transform(
        source,
        grid[:3, :3],
        offset=grid[:3, 3],
        output_shape=shape,
        order=order,
        mode="constant",
        cval=float(fill_value),
        output=np.float32,
    )


def resample_label_data(
    labels: np.ndarray,
    image_affine: np.ndarray,
    transform: Transform | None,
    reference_shape,
    reference_affine: np.ndarray,
) -> np.ndarray:
    """Resample an integer label array (nearest neighbour) onto a reference grid.

    Parameters
    ----------
    labels : ndarray of int, shape (x, y, z)
        Label values (0 = background).
    image_affine : ndarray, shape (4, 4)
        Voxel->world (mm) affine of ``labels``.
    transform : Transform or None
        Reference world -> label-image world (mm); None means identity.
    reference_shape : tuple of 3 ints
    reference_affine : ndarray, shape (4, 4)

    Returns
    -------
    ndarray of int32, shape reference_shape
        Labels on the reference grid (0 outside the label image).
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise MorError(f"A label image must be 3D; got shape {labels.shape}.")
    if labels.dtype.kind == "f" and not np.all(np.equal(np.round(labels), labels)):
        raise MorError(
            "The label image holds non-integer values; resample it as a map "
            "(linear) or round it to whole labels first."
        )
    shape = _check_reference_shape(reference_shape)
    grid = _grid_matrix(transform, image_affine, reference_affine)
    return ndimage.affine_transform(
        labels.astype(np.int32, copy=False),
        grid[:3, :3],
        offset=grid[:3, 3],
        output_shape=shape,
        order=0,
        mode="constant",
        cval=0,
        output=np.int32,
    )


def resample_label_image(
    labels,
    transform: Transform | None,
    reference_shape,
    reference_affine: np.ndarray,
):
    """A :class:`~napari_mor.io.LabelImage` moved onto a reference grid (nearest).

    ``transform`` maps reference world -> label-image world. The LUT and colours
    are kept; the result has the reference affine.
    """
    data = resample_label_data(
        labels.data, labels.affine, transform, reference_shape, reference_affine
    )
    return replace(labels, data=data, affine=np.asarray(reference_affine), path=None)


def mean_displacement_mm(
    transform: Transform, points_mm: np.ndarray, truth: Transform | None = None
) -> float:
    """Mean distance (mm) between where ``transform`` and ``truth`` send points.

    With ``truth`` None the distance to the identity (head motion magnitude).

    Parameters
    ----------
    points_mm : ndarray, shape (n, 3)
        Fixed-world points, mm (e.g. brain voxel centres).
    """
    points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    target = points if truth is None else truth.apply(points)
    return float(np.linalg.norm(transform.apply(points) - target, axis=1).mean())


def brain_points_mm(
    data: np.ndarray, affine: np.ndarray, fraction: float = 0.3, max_points=20000
) -> np.ndarray:
    """World coordinates (mm) of voxels above ``fraction`` of the 99th percentile.

    A deterministic subsample (every k-th voxel) keeps at most ``max_points``.
    """
    data = np.asarray(data, dtype=np.float32)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        raise MorError("The image has no finite voxels.")
    threshold = fraction * float(np.percentile(finite, 99))
    index = np.argwhere(data > threshold)
    if index.shape[0] == 0:
        raise MorError("No voxel is above the brain threshold; is the image empty?")
    step = max(1, index.shape[0] // max_points)
    index = index[::step]
    affine = np.asarray(affine, dtype=np.float64)
    return index @ affine[:3, :3].T + affine[:3, 3]
