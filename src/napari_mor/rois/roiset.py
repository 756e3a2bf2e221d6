"""ROI sets: a label image on the PET grid plus names and colours.

Operations return new :class:`~napari_mor.io.LabelImage` objects; inputs are
never modified.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io._nifti import strip_image_suffix
from napari_mor.io.grid import same_grid
from napari_mor.io.volume import LabelImage, load_labels, write_lut
from napari_mor.io.writers import write_nifti
from napari_mor.rois.resample import grid_corners_mm

#: MNI152 brain bounding box (mm), approximately, for the MNI-space check.
MNI_BRAIN_BOX_MM = np.array([[-72.0, -108.0, -72.0], [72.0, 74.0, 86.0]])


def empty_roi_set(shape, affine: np.ndarray) -> LabelImage:
    """An empty ROI set (all zeros, int32) on a grid."""
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise MorError(f"An ROI set needs a 3D grid; got shape {shape}.")
    return LabelImage(
        data=np.zeros(shape, dtype=np.int32),
        affine=np.asarray(affine, dtype=np.float64),
    )


def _check_label(labels: LabelImage, label: int) -> int:
    label = int(label)
    if label <= 0:
        raise MorError(f"Label values must be >= 1; got {label}.")
    if label not in labels.lut and not np.any(labels.data == label):
        raise MorError(
            f"No ROI with label {label}; labels present: "
            f"{sorted(set(labels.lut) | set(int(v) for v in labels.present_labels))}."
        )
    return label


def rename_roi(labels: LabelImage, label: int, name: str) -> LabelImage:
    """Rename the ROI ``label``.

    Raises
    ------
    MorError
        Unknown label, empty name, or a name used by another ROI.
    """
    label = _check_label(labels, label)
    name = str(name).strip()
    if not name:
        raise MorError("An ROI name cannot be empty.")
    if any(c in name for c in "\t\n"):
        raise MorError(f"ROI name {name!r} holds a tab or newline; remove it.")
    for other, other_name in labels.lut.items():
        if other != label and other_name.lower() == name.lower():
            raise MorError(
                f"ROI name {name!r} is already used by label {other}; choose another."
            )
    return LabelImage(
        data=labels.data,
        affine=labels.affine,
        lut={**labels.lut, label: name},
        colors=dict(labels.colors),
        path=labels.path,
    )


def delete_roi(labels: LabelImage, label: int) -> LabelImage:
    """Remove the ROI ``label`` (voxels set to 0, LUT entry dropped)."""
    label = _check_label(labels, label)
    data = np.where(labels.data == label, 0, labels.data).astype(np.int32)
    return LabelImage(
        data=data,
        affine=labels.affine,
        lut={k: v for k, v in labels.lut.items() if k != label},
        colors={k: v for k, v in labels.colors.items() if k != label},
        path=labels.path,
    )


def merge_rois(
    labels: LabelImage, merge: list[int], name: str | None = None
) -> LabelImage:
    """Merge several ROIs into the first one listed.

    Parameters
    ----------
    merge : list of int
        Labels to merge (at least two); the result keeps ``merge[0]``.
    name : str, optional
        Name of the merged ROI (default: the names joined with ``+``).
    """
    merge = [_check_label(labels, v) for v in merge]
    if len(set(merge)) < 2:
        raise MorError(f"Select at least two different ROIs to merge; got {merge}.")
    target = merge[0]
    data = np.where(np.isin(labels.data, merge), target, labels.data).astype(np.int32)
    name = name or "+".join(labels.name_of(v) for v in merge)
    lut = {k: v for k, v in labels.lut.items() if k not in merge[1:]}
    colors = {k: v for k, v in labels.colors.items() if k not in merge[1:]}
    merged = LabelImage(data=data, affine=labels.affine, lut=lut, colors=colors)
    return rename_roi(merged, target, name)


def add_label_image(base: LabelImage, other: LabelImage) -> LabelImage:
    """Add every region of ``other`` (same grid) to ``base`` with new label values.

    Regions of ``other`` overwrite ``base`` where they overlap. Names already in
    ``base`` get a ``_2`` (``_3``...) suffix.
    """
    if not same_grid(other.data.shape, other.affine, base.data.shape, base.affine):
        raise MorError(
            "The regions to add are not on the ROI set's grid (shape "
            f"{other.data.shape} vs {base.data.shape}); resample them first."
        )
    data = base.data.copy()
    lut = dict(base.lut)
    colors = dict(base.colors)
    next_label = max([int(base.data.max(initial=0)), *lut], default=0) + 1
    used = {v.lower() for v in lut.values()}
    for value in other.present_labels:
        value = int(value)
        name = other.name_of(value)
        candidate, n = name, 2
        while candidate.lower() in used:
            candidate, n = f"{name}_{n}", n + 1
        used.add(candidate.lower())
        data[other.data == value] = next_label
        lut[next_label] = candidate
        if value in other.colors:
            colors[next_label] = other.colors[value]
        next_label += 1
    return LabelImage(data=data, affine=base.affine, lut=lut, colors=colors)


@dataclass(frozen=True)
class RoiInfo:
    """One row of the ROI table."""

    label: int
    name: str
    n_voxels: int
    volume_ml: float


def roi_table(labels: LabelImage) -> list[RoiInfo]:
    """Label, name, voxel count and volume (mL) of every ROI present or named.

    Volumes are voxel counts times the voxel volume ``|det(A[:3, :3])|``.
    """
    data = np.asarray(labels.data)
    flat = data.ravel()
    counts = np.bincount(flat[flat > 0]) if np.any(flat > 0) else np.zeros(1, int)
    voxel_ml = abs(np.linalg.det(np.asarray(labels.affine)[:3, :3])) / 1000.0
    values = sorted(set(int(v) for v in np.nonzero(counts)[0]) | set(labels.lut))
    rows = []
    for value in values:
        n = int(counts[value]) if value < counts.size else 0
        rows.append(RoiInfo(value, labels.name_of(value), n, n * voxel_ml))
    return rows


def roi_volumes_ml(labels: LabelImage) -> dict[str, float]:
    """ROI name -> volume, mL, on the label image's grid."""
    return {row.name: row.volume_ml for row in roi_table(labels)}


def default_color(label: int) -> tuple[float, float, float, float]:
    """A distinct RGBA colour for a label value (golden-ratio hues)."""
    hue = (int(label) * 0.618033988749895) % 1.0
    return (*colorsys.hsv_to_rgb(hue, 0.75, 0.95), 1.0)


def save_roi_set(labels: LabelImage, path: str | Path) -> tuple[Path, Path]:
    """Write an ROI set as an int16/int32 label NIfTI + LUT TSV beside it.

    Returns
    -------
    (image_path, lut_path)
    """
    path = Path(path)
    if not str(path).lower().endswith((".nii", ".nii.gz")):
        raise MorError(f"ROI set file {path} must end in .nii.gz or .nii.")
    if not labels.present_labels.size:
        raise MorError("The ROI set is empty; draw or import regions before saving.")
    dtype = np.int16 if labels.data.max(initial=0) < 32768 else np.int32
    lut = {int(v): labels.name_of(v) for v in labels.present_labels}
    lut.update({k: v for k, v in labels.lut.items() if k in lut})
    image = write_nifti(
        path,
        labels.data,
        labels.affine,
        {"Description": "napari-mor ROI set", "Labels": lut},
        dtype=dtype,
    )
    lut_path = write_lut(
        lut,
        strip_image_suffix(path).with_suffix(".tsv"),
        {k: v for k, v in labels.colors.items() if k in lut},
    )
    return image, lut_path


def load_roi_set(
    path: str | Path,
    lut_path: str | Path | None = None,
    *,
    shape=None,
    affine: np.ndarray | None = None,
) -> LabelImage:
    """Load an ROI set (label NIfTI + LUT) and, given a grid, put it on that grid.

    When ``shape``/``affine`` are given and differ from the file's grid, the
    labels are resampled (nearest neighbour) onto it.
    """
    labels = load_labels(path, lut_path)
    if shape is None or affine is None:
        return labels
    from napari_mor.rois.resample import labels_on_grid

    return labels_on_grid(labels, shape, affine)


def find_label(lut: Mapping[int, str], name_contains: str) -> int | None:
    """The lowest label whose name contains a text (case-insensitive), or None.

    Examples
    --------
    >>> find_label({8: "occipital_ref", 3: "amygdala_L"}, "Occipital")
    8
    """
    text = name_contains.lower()
    matches = sorted(int(k) for k, v in lut.items() if text in str(v).lower())
    return matches[0] if matches else None


def mni_space_warning(shape, affine: np.ndarray) -> str | None:
    """A warning text when a grid's world extent does not look like MNI space.

    The check is a heuristic: the grid must cover most of the MNI152 brain
    bounding box (x -72..72, y -108..74, z -72..86 mm). Native scanner space
    usually sits elsewhere (e.g. centred on the scanner isocentre).

    Returns
    -------
    str or None
        None when the grid looks like MNI space.
    """
    corners = grid_corners_mm(shape, affine)
    lo = np.maximum(corners.min(0), MNI_BRAIN_BOX_MM[0])
    hi = np.minimum(corners.max(0), MNI_BRAIN_BOX_MM[1])
    box = np.prod(MNI_BRAIN_BOX_MM[1] - MNI_BRAIN_BOX_MM[0])
    covered = float(np.prod(np.clip(hi - lo, 0, None)) / box)
    if covered >= 0.6:
        return None
    return (
        f"The PET grid covers only {100 * covered:.0f}% of the MNI152 brain box; it "
        "does not look like MNI space. Atlas regions and MNI spheres are placed by "
        "MNI coordinates and only apply to PET normalised to MNI space. Native-space "
        "PET needs the MNI->native transform of the registration step (not "
        "available yet): draw ROIs by hand instead."
    )
