"""Label images between voxel grids, through their voxel->world affines.

Nearest-neighbour resampling runs in one :func:`scipy.ndimage.affine_transform`
call; partial-volume fractions supersample each target voxel (``n_sub`` per axis)
in one more call and average the sub-voxels per label with reshapes (no per-voxel
Python loops).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError, MorWarning
from napari_mor.io.volume import LabelImage

#: Warn when more than this fraction of a region's voxels falls outside the grid.
OUTSIDE_WARN_FRACTION = 0.05


def world_to_voxel(points_mm: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Continuous voxel indices of world points.

    Parameters
    ----------
    points_mm : array_like, shape (n, 3) or (3,)
        World coordinates, mm.
    affine : ndarray, shape (4, 4)
        Voxel->world affine of the grid.

    Returns
    -------
    ndarray, same shape as ``points_mm``
        Voxel coordinates (float).
    """
    points = np.asarray(points_mm, dtype=np.float64)
    inverse = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    return points @ inverse[:3, :3].T + inverse[:3, 3]


def voxel_index(world_mm, affine: np.ndarray, shape) -> tuple[int, int, int] | None:
    """Index of the voxel whose centre is nearest a world point, or None outside.

    Parameters
    ----------
    world_mm : sequence of float
        World point, mm; the last three entries are used (napari passes
        ``(t, x, y, z)`` for a 4-D layer).
    affine : ndarray, shape (4, 4)
        Voxel->world affine of the grid.
    shape : sequence of int
        Grid shape; the last three entries are the spatial axes.

    Returns
    -------
    tuple of 3 int, or None
        None when the point lies outside the grid.

    Examples
    --------
    >>> import numpy as np
    >>> voxel_index((2.9, 0.0, 4.0), np.diag([2.0, 2.0, 2.0, 1.0]), (4, 4, 4))
    (1, 0, 2)
    """
    point = np.asarray(world_mm, dtype=np.float64).ravel()[-3:]
    if point.size != 3 or not np.all(np.isfinite(point)):
        raise MorError(f"A world point needs 3 finite coordinates (mm); got {point}.")
    index = np.rint(world_to_voxel(point, affine)).astype(int)
    grid = np.asarray(tuple(shape)[-3:], dtype=int)
    if np.any(index < 0) or np.any(index >= grid):
        return None
    return tuple(int(i) for i in index)


def labels_on_grid(
    labels: LabelImage,
    shape,
    affine: np.ndarray,
    *,
    on_empty: str = "raise",
    target_name: str = "PET",
) -> LabelImage:
    """The labels on a grid: unchanged when already on it, else resampled.

    Parameters
    ----------
    labels : LabelImage
    shape : sequence of int
        Target grid; the last three entries are used (a 4-D PET shape works).
    affine : ndarray, shape (4, 4)
    on_empty, target_name
        As in :func:`resample_labels`.
    """
    from napari_mor.io.grid import same_grid

    spatial = tuple(shape)[-3:]
    if same_grid(labels.data.shape, labels.affine, spatial, affine):
        return labels
    return resample_labels(
        labels, spatial, affine, on_empty=on_empty, target_name=target_name
    )


def voxel_to_world(index: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World coordinates (mm) of voxel indices, shape ``(..., 3)``."""
    index = np.asarray(index, dtype=np.float64)
    affine = np.asarray(affine, dtype=np.float64)
    return index @ affine[:3, :3].T + affine[:3, 3]


def inside_grid(voxel: np.ndarray, shape) -> np.ndarray:
    """True where continuous voxel coordinates fall inside a grid of ``shape``.

    A voxel centre at index ``i`` covers ``[i - 0.5, i + 0.5)``.
    """
    voxel = np.asarray(voxel, dtype=np.float64)
    upper = np.asarray(shape, dtype=np.float64) - 0.5
    return np.all((voxel >= -0.5) & (voxel < upper), axis=-1)


def grid_corners_mm(shape, affine: np.ndarray) -> np.ndarray:
    """World coordinates of the 8 outer corners of a grid, shape (8, 3)."""
    lo = np.full(3, -0.5)
    hi = np.asarray(shape, dtype=np.float64) - 0.5
    corners = np.array(
        [
            [(lo, hi)[i][0], (lo, hi)[j][1], (lo, hi)[k][2]]
            for i in (0, 1)
            for j in (0, 1)
            for k in (0, 1)
        ]
    )
    return voxel_to_world(corners, affine)


def _check_affine(affine: np.ndarray, what: str) -> np.ndarray:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise MorError(f"The {what} affine must be 4x4; got shape {affine.shape}.")
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise MorError(
            f"The {what} affine is singular or not finite; check the image header "
            "(qform/sform)."
        )
    return affine


def _check_shape(shape, what: str) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise MorError(f"The {what} grid must be 3D with positive sizes; got {shape}.")
    return shape


def grids_overlap(shape_a, affine_a, shape_b, affine_b) -> bool:
    """True when the world bounding boxes of two grids intersect."""
    box_a = grid_corners_mm(shape_a, affine_a)
    box_b = grid_corners_mm(shape_b, affine_b)
    lo = np.maximum(box_a.min(0), box_b.min(0))
    hi = np.minimum(box_a.max(0), box_b.max(0))
    return bool(np.all(hi > lo))


def _target_to_source(source_affine, target_affine) -> np.ndarray:
    return np.linalg.inv(source_affine) @ target_affine


def resample_labels(
    labels: LabelImage,
    shape,
    affine: np.ndarray,
    *,
    on_empty: str = "raise",
    target_name: str = "PET",
) -> LabelImage:
    """Nearest-neighbour resampling of a label image onto another grid.

    Each target voxel centre is mapped into the source voxel grid through
    ``inv(source_affine) @ target_affine`` and takes the label of the nearest
    source voxel (0 outside the source). One ``affine_transform`` call.

    Parameters
    ----------
    labels : LabelImage
        Source labels (any grid, oblique affines allowed).
    shape : tuple of 3 int
        Target grid shape (x, y, z).
    affine : ndarray, shape (4, 4)
        Target voxel->world affine, mm.
    on_empty : {"raise", "drop"}
        What to do with a region that has no voxel on the target grid: raise a
        :class:`MorError` or leave it out of the returned LUT (with a warning).
    target_name : str
        Name of the target grid in messages.

    Returns
    -------
    LabelImage
        Labels on the target grid (int32), LUT and colours of the regions kept.

    Raises
    ------
    MorError
        When the grids do not overlap, or (``on_empty="raise"``) a region is
        empty after resampling.
    """
    shape = _check_shape(shape, target_name)
    affine = _check_affine(affine, target_name)
    source_affine = _check_affine(labels.affine, "label image")
    if on_empty not in ("raise", "drop"):
        raise MorError(f"on_empty must be 'raise' or 'drop'; got {on_empty!r}.")
    _check_overlap(labels, shape, affine, target_name)
    mapping = _target_to_source(source_affine, affine)
    from scipy import ndimage  # lazy: ~0.15 s, only when grids differ

    data = ndimage.affine_transform(
        np.asarray(labels.data, dtype=np.int32),
        mapping[:3, :3],
        offset=mapping[:3, 3],
        output_shape=shape,
        order=0,
        mode="constant",
        cval=0,
    )
    out = LabelImage(
        data=data.astype(np.int32, copy=False),
        affine=affine.copy(),
        lut=dict(labels.lut),
        colors=dict(labels.colors),
    )
    return _handle_empty(labels, out, on_empty, target_name)


def _check_overlap(labels: LabelImage, shape, affine, target_name: str) -> None:
    if not grids_overlap(labels.data.shape, labels.affine, shape, affine):
        src = grid_corners_mm(labels.data.shape, labels.affine)
        dst = grid_corners_mm(shape, affine)
        raise MorError(
            f"The label image {labels.path or ''} does not overlap the {target_name} "
            f"grid: labels span {_fmt_box(src)} mm, {target_name} spans "
            f"{_fmt_box(dst)} mm (world). Check that both are in the same space "
            "(e.g. MNI) or register them first."
        )


def _fmt_box(corners: np.ndarray) -> str:
    lo, hi = corners.min(0), corners.max(0)
    return " ".join(
        f"{axis}[{a:.0f},{b:.0f}]" for axis, a, b in zip("xyz", lo, hi, strict=True)
    )


def _handle_empty(
    source: LabelImage, out: LabelImage, on_empty: str, target_name: str
) -> LabelImage:
    source_labels = set(int(v) for v in source.present_labels)
    kept = set(int(v) for v in out.present_labels)
    missing = sorted(source_labels - kept)
    if not missing:
        return out
    names = [source.name_of(v) for v in missing]
    if on_empty == "raise":
        raise MorError(
            f"Regions {names} are empty after resampling to the {target_name} grid "
            f"(voxel size {np.round(_voxel_mm(out.affine), 2).tolist()} mm): they lie "
            f"outside the {target_name} field of view or are smaller than a voxel. "
            "Use a larger region, check the space, or drop them."
        )
    warnings.warn(
        f"Regions {names} are empty on the {target_name} grid and were dropped.",
        MorWarning,
        stacklevel=3,
    )
    lut = {k: v for k, v in out.lut.items() if k not in missing}
    colors = {k: v for k, v in out.colors.items() if k not in missing}
    return LabelImage(data=out.data, affine=out.affine, lut=lut, colors=colors)


def _voxel_mm(affine: np.ndarray) -> np.ndarray:
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def fraction_outside(labels: LabelImage, shape, affine: np.ndarray) -> dict[int, float]:
    """Fraction of each region's source voxels whose centres fall outside a grid.

    Returns
    -------
    dict[int, float]
        Label -> fraction in [0, 1].
    """
    data = np.asarray(labels.data)
    index = np.argwhere(data != 0)
    if index.size == 0:
        return {}
    values = data[tuple(index.T)]
    target = world_to_voxel(voxel_to_world(index, labels.affine), affine)
    outside = ~inside_grid(target, shape)
    present, inverse = np.unique(values, return_inverse=True)
    n_out = np.bincount(inverse, weights=outside.astype(float), minlength=present.size)
    n_all = np.bincount(inverse, minlength=present.size)
    return {int(v): float(o / n) for v, o, n in zip(present, n_out, n_all, strict=True)}


def check_inside_fov(
    labels: LabelImage, shape, affine: np.ndarray, target_name: str = "PET"
) -> None:
    """Raise when a region lies wholly outside a grid; warn when partly outside.

    Raises
    ------
    MorError
        A region has no voxel inside the target field of view.
    """
    fractions = fraction_outside(labels, shape, affine)
    outside = [labels.name_of(k) for k, f in fractions.items() if f >= 1.0]
    if outside:
        raise MorError(
            f"Regions {outside} lie outside the {target_name} field of view; check "
            "that the regions and the PET are in the same space (MNI coordinates "
            "only apply to PET in MNI space)."
        )
    partial = {
        labels.name_of(k): round(100 * f, 1)
        for k, f in fractions.items()
        if f > OUTSIDE_WARN_FRACTION
    }
    if partial:
        warnings.warn(
            f"Regions partly outside the {target_name} field of view (% of voxels "
            f"cut): {partial}.",
            MorWarning,
            stacklevel=2,
        )


@dataclass(frozen=True)
class LabelFractions:
    """Partial-volume fractions of each region on a grid.

    Parameters
    ----------
    fractions : ndarray, shape (n_regions, x, y, z), float32
        Fraction (0-1) of each target voxel covered by each region.
    labels : ndarray of int, shape (n_regions,)
        Label values.
    names : list of str
        Region names.
    affine : ndarray, shape (4, 4)
        Target voxel->world affine.
    """

    fractions: np.ndarray
    labels: np.ndarray
    names: list[str]
    affine: np.ndarray

    def volumes_ml(self) -> np.ndarray:
        """Region volumes, mL (sum of fractions x voxel volume)."""
        voxel_ml = abs(np.linalg.det(self.affine[:3, :3])) / 1000.0
        return self.fractions.reshape(len(self.labels), -1).sum(axis=1) * voxel_ml


def label_fractions(
    labels: LabelImage,
    shape,
    affine: np.ndarray,
    n_sub: int = 3,
    target_name: str = "PET",
) -> LabelFractions:
    """Partial-volume fractions of each region on a target grid by supersampling.

    Every target voxel is split into ``n_sub**3`` sub-voxels; each sub-voxel
    centre takes the nearest source label (one ``affine_transform`` call on the
    supersampled grid); the fraction of a region in a voxel is the share of its
    sub-voxels carrying the region's label.

    Parameters
    ----------
    labels : LabelImage
        Source labels (any grid).
    shape : tuple of 3 int
        Target grid shape.
    affine : ndarray, shape (4, 4)
        Target voxel->world affine, mm.
    n_sub : int
        Sub-voxels per axis (3 gives 27 per voxel).

    Returns
    -------
    LabelFractions

    Raises
    ------
    MorError
        Grids do not overlap, ``n_sub`` < 1, or a region gets no coverage.
    """
    shape = _check_shape(shape, target_name)
    affine = _check_affine(affine, target_name)
    source_affine = _check_affine(labels.affine, "label image")
    if int(n_sub) != n_sub or n_sub < 1:
        raise MorError(f"n_sub must be a whole number >= 1; got {n_sub!r}.")
    n_sub = int(n_sub)
    _check_overlap(labels, shape, affine, target_name)
    sub = np.diag([1.0 / n_sub] * 3 + [1.0])
    sub[:3, 3] = -(n_sub - 1) / (2.0 * n_sub)
    sub_affine = affine @ sub
    mapping = _target_to_source(source_affine, sub_affine)
    from scipy import ndimage  # lazy: ~0.15 s

    fine = ndimage.affine_transform(
        np.asarray(labels.data, dtype=np.int32),
        mapping[:3, :3],
        offset=mapping[:3, 3],
        output_shape=tuple(n * n_sub for n in shape),
        order=0,
        mode="constant",
        cval=0,
    )
    present = np.array(
        sorted(set(int(v) for v in labels.present_labels)), dtype=np.int64
    )
    fractions = _block_fractions(fine, shape, n_sub, present)
    empty = [
        labels.name_of(v)
        for v, f in zip(present, fractions, strict=True)
        if not f.any()
    ]
    if empty:
        raise MorError(
            f"Regions {empty} are empty after resampling to the {target_name} grid; "
            f"they lie outside the {target_name} field of view or are far smaller "
            "than a voxel."
        )
    return LabelFractions(
        fractions=fractions,
        labels=present,
        names=[labels.name_of(v) for v in present],
        affine=affine.copy(),
    )


def _block_fractions(fine: np.ndarray, shape, n_sub: int, present: np.ndarray):
    """Share of each label among the ``n_sub**3`` sub-voxels of every voxel.

    One ``bincount`` over (voxel, label) pairs, restricted to voxels holding
    any label.
    """
    n_vox, n_cell = int(np.prod(shape)), n_sub**3
    cells = (
        fine.reshape(shape[0], n_sub, shape[1], n_sub, shape[2], n_sub)
        .transpose(0, 2, 4, 1, 3, 5)
        .reshape(n_vox, n_cell)
    )
    occupied = np.flatnonzero(cells.any(axis=1))
    lookup = np.zeros(int(fine.max(initial=0)) + 1, dtype=np.int64)
    lookup[present] = np.arange(1, present.size + 1)
    slot = lookup[cells[occupied]]  # (n_occupied, n_cell), 0 = background
    n_slots = present.size + 1
    pair = np.arange(occupied.size)[:, None] * n_slots + slot
    counts = np.bincount(pair.ravel(), minlength=occupied.size * n_slots)
    counts = counts.reshape(occupied.size, n_slots)[:, 1:]
    fractions = np.zeros((present.size, n_vox), dtype=np.float32)
    fractions[:, occupied] = counts.T / np.float32(n_cell)
    return fractions.reshape(present.size, *shape)
