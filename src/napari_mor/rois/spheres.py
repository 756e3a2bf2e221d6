"""Spherical ROIs at world (MNI) coordinates on any voxel grid.

A voxel belongs to a sphere when its centre lies within ``radius_mm`` of the
sphere centre in world space, so oblique and anisotropic grids are handled
through the affine. Only the voxel block that can touch the sphere is computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.volume import LabelImage
from napari_mor.rois.resample import (
    _check_affine,
    _check_shape,
    inside_grid,
    voxel_to_world,
    world_to_voxel,
)


@dataclass(frozen=True)
class SpherePreset:
    """A named sphere ROI (one or more centres sharing one label).

    Parameters
    ----------
    name : str
        Region name.
    centers_mm : tuple of (x, y, z)
        MNI coordinates of the centre(s), mm.
    radius_mm : float
        Radius, mm.
    note : str
        Where the coordinate comes from / caveats.
    """

    name: str
    centers_mm: tuple[tuple[float, float, float], ...]
    radius_mm: float
    note: str = ""


#: Sphere presets for the mission's regions (MNI152 mm). Radii are defaults;
#: the PAG is not in any shipped atlas, so a 4.5 mm sphere is the usual choice.
SPHERE_PRESETS: dict[str, SpherePreset] = {
    p.name: p
    for p in (
        SpherePreset("PAG", ((0, -30, -10),), 4.5, "periaqueductal gray; in no atlas"),
        SpherePreset("sgACC", ((0, 21, -10),), 6.0, "subgenual anterior cingulate"),
        SpherePreset(
            "pgACC", ((-8, 41, 5), (8, 41, 5)), 6.0, "pregenual ACC, bilateral"
        ),
        SpherePreset("pgACC_L", ((-8, 41, 5),), 6.0, "pregenual ACC, left"),
        SpherePreset("pgACC_R", ((8, 41, 5),), 6.0, "pregenual ACC, right"),
        SpherePreset("ventral_striatum_L", ((-10, 12, -8),), 5.0, "ventral striatum"),
        SpherePreset("ventral_striatum_R", ((10, 12, -8),), 5.0, "ventral striatum"),
        SpherePreset("amygdala_L", ((-23, -4, -18),), 6.0, "amygdala"),
        SpherePreset("amygdala_R", ((23, -4, -18),), 6.0, "amygdala"),
        SpherePreset("midline_thalamus", ((0, -16, 7),), 6.0, "midline thalamus"),
        SpherePreset("anterior_insula_L", ((-36, 16, 2),), 6.0, "anterior insula"),
        SpherePreset("anterior_insula_R", ((36, 16, 2),), 6.0, "anterior insula"),
        SpherePreset(
            "occipital_ref",
            ((0, -88, 6),),
            12.0,
            "occipital reference (calcarine/occipital pole); an atlas occipital "
            "region is preferable on real data",
        ),
    )
}


def sphere_volume_ml(radius_mm: float) -> float:
    """Analytic sphere volume 4/3 pi r^3, mL."""
    return 4.0 / 3.0 * np.pi * float(radius_mm) ** 3 / 1000.0


def _check_sphere(center_mm, radius_mm) -> tuple[np.ndarray, float]:
    center = np.asarray(center_mm, dtype=np.float64).ravel()
    if center.shape != (3,) or not np.all(np.isfinite(center)):
        raise MorError(
            f"A sphere centre must be 3 finite world coordinates (x, y, z) in mm; "
            f"got {center_mm!r}."
        )
    radius = float(radius_mm)
    if not np.isfinite(radius) or radius <= 0:
        raise MorError(f"Sphere radius must be > 0 mm; got {radius_mm!r}.")
    return center, radius


def sphere_mask(
    shape,
    affine: np.ndarray,
    center_mm,
    radius_mm: float,
    *,
    target_name: str = "PET",
) -> np.ndarray:
    """Boolean mask of the voxels whose centres lie within a world-space sphere.

    Parameters
    ----------
    shape : tuple of 3 int
        Grid shape (x, y, z).
    affine : ndarray, shape (4, 4)
        Voxel->world affine, mm (oblique allowed).
    center_mm : array_like, shape (3,)
        Sphere centre, world mm (MNI for MNI-space grids).
    radius_mm : float
        Radius, mm.

    Returns
    -------
    mask : ndarray of bool, shape ``shape``

    Raises
    ------
    MorError
        Bad centre/radius, the centre outside the field of view, or no voxel
        centre inside the sphere (radius too small for the voxel size).
    """
    shape = _check_shape(shape, target_name)
    affine = _check_affine(affine, target_name)
    center, radius = _check_sphere(center_mm, radius_mm)
    center_vox = world_to_voxel(center, affine)
    if not inside_grid(center_vox, shape):
        raise MorError(
            f"Sphere centre {center.tolist()} mm lies outside the {target_name} field "
            f"of view (voxel {np.round(center_vox, 1).tolist()} of grid "
            f"{list(shape)}). "
            "MNI coordinates only apply to images in MNI space; check the space or "
            "the coordinate."
        )
    # Voxel-space half-extent of the sphere along each axis: r * ||row of inv(A)||.
    inverse = np.linalg.inv(affine[:3, :3])
    half = radius * np.sqrt((inverse**2).sum(axis=1))
    lo = np.maximum(np.floor(center_vox - half).astype(int), 0)
    hi = np.minimum(np.ceil(center_vox + half).astype(int) + 1, shape)
    index = np.stack(
        np.meshgrid(
            *[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"
        ),
        axis=-1,
    )
    dist2 = ((voxel_to_world(index, affine) - center) ** 2).sum(axis=-1)
    mask = np.zeros(shape, dtype=bool)
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = dist2 <= radius * radius
    if not mask.any():
        voxel = np.round(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)), 2).tolist()
        raise MorError(
            f"A sphere of radius {radius} mm at {center.tolist()} holds no voxel "
            f"centre of the {target_name} grid (voxel size {voxel} mm); increase "
            "the radius."
        )
    return mask


def sphere_fraction(
    shape, affine: np.ndarray, center_mm, radius_mm: float, n_sub: int = 3
) -> np.ndarray:
    """Fraction (0-1) of each voxel inside a sphere, by ``n_sub**3`` supersampling.

    Returns
    -------
    fraction : ndarray, shape ``shape``, float32
    """
    shape = _check_shape(shape, "PET")
    affine = _check_affine(affine, "PET")
    center, radius = _check_sphere(center_mm, radius_mm)
    if int(n_sub) != n_sub or n_sub < 1:
        raise MorError(f"n_sub must be a whole number >= 1; got {n_sub!r}.")
    n_sub = int(n_sub)
    sub = np.diag([1.0 / n_sub] * 3 + [1.0])
    sub[:3, 3] = -(n_sub - 1) / (2.0 * n_sub)
    fine_shape = tuple(n * n_sub for n in shape)
    fine = sphere_mask(fine_shape, affine @ sub, center, radius)
    blocks = fine.reshape(shape[0], n_sub, shape[1], n_sub, shape[2], n_sub)
    return blocks.mean(axis=(1, 3, 5), dtype=np.float32)


def add_sphere(
    labels: LabelImage,
    center_mm,
    radius_mm: float,
    name: str,
    *,
    label: int | None = None,
    color: tuple[float, float, float, float] | None = None,
    overwrite: bool = True,
) -> LabelImage:
    """A new LabelImage with a sphere ROI added (inputs are not modified).

    Parameters
    ----------
    labels : LabelImage
        Current ROI set on the PET grid.
    center_mm : array_like, shape (3,) or (n, 3)
        Centre(s), world mm. Several centres share one label (e.g. bilateral).
    radius_mm : float
        Radius, mm.
    name : str
        Region name (must be new unless ``label`` names an existing region).
    label : int, optional
        Label value; default: the next free value.
    overwrite : bool
        When False, voxels already labelled keep their label.

    Raises
    ------
    MorError
        Empty name, name already used by another label, or sphere errors.
    """
    name = str(name).strip()
    if not name:
        raise MorError("A sphere ROI needs a name; type one in the Name box.")
    centers = np.atleast_2d(np.asarray(center_mm, dtype=np.float64))
    if label is None:
        label = next_free_label(labels)
    label = int(label)
    if label <= 0:
        raise MorError(f"Label values must be >= 1; got {label}.")
    for other, other_name in labels.lut.items():
        if other != label and other_name.lower() == name.lower():
            raise MorError(
                f"An ROI named {name!r} already exists (label {other}); pick another "
                "name or delete it first."
            )
    mask = np.zeros(labels.data.shape, dtype=bool)
    for center in centers:
        mask |= sphere_mask(labels.data.shape, labels.affine, center, radius_mm)
    if not overwrite:
        mask &= labels.data == 0
    data = labels.data.copy()
    data[mask] = label
    lut = {**labels.lut, label: name}
    colors = dict(labels.colors)
    if color is not None:
        colors[label] = tuple(float(c) for c in color)
    return LabelImage(data=data, affine=labels.affine, lut=lut, colors=colors)


def add_preset(
    labels: LabelImage, preset: str, radius_mm: float | None = None
) -> LabelImage:
    """Add a sphere preset (see :data:`SPHERE_PRESETS`) to an ROI set."""
    if preset not in SPHERE_PRESETS:
        raise MorError(
            f"No sphere preset named {preset!r}; presets: {', '.join(SPHERE_PRESETS)}."
        )
    spec = SPHERE_PRESETS[preset]
    radius = spec.radius_mm if radius_mm is None else radius_mm
    return add_sphere(labels, spec.centers_mm, radius, spec.name)


def next_free_label(labels: LabelImage) -> int:
    """Smallest label value above every value in the image and the LUT."""
    used = [int(labels.data.max(initial=0)), *[int(k) for k in labels.lut]]
    return max(used, default=0) + 1
