"""Suprathreshold clusters: labelling, batched max cluster size, cluster tables.

Clusters are connected components of voxels passing the cluster-forming
threshold (``|t| >= t_thr`` per sign for two-sided tests), found with
``scipy.ndimage.label``. Connectivity is 26 (faces, edges and corners; the SPM
and FSL default), 18 (faces and edges) or 6 (faces).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_mor._errors import MorError

__all__ = [
    "CONNECTIVITIES",
    "Cluster",
    "connectivity_structure",
    "find_clusters",
    "max_cluster_sizes",
    "suprathreshold",
]

#: Allowed neighbourhoods and the ``generate_binary_structure`` rank they need.
CONNECTIVITIES = {6: 1, 18: 2, 26: 3}


def connectivity_structure(connectivity: int = 26) -> np.ndarray:
    """3-D structuring element of a 6-, 18- or 26-neighbourhood."""
    if connectivity not in CONNECTIVITIES:
        raise MorError(
            f"connectivity must be 6, 18 or 26 (neighbours of a voxel); got "
            f"{connectivity!r}."
        )
    return ndimage.generate_binary_structure(3, CONNECTIVITIES[connectivity])


def suprathreshold(stat: np.ndarray, threshold: float, tail: str) -> list[np.ndarray]:
    """Boolean maps of suprathreshold voxels, one per sign tested.

    Returns ``[stat >= thr]`` ("greater"), ``[stat <= -thr]`` ("less") or both
    (``"two-sided"``: positive first).
    """
    with np.errstate(invalid="ignore"):
        if tail == "greater":
            return [stat >= threshold]
        if tail == "less":
            return [stat <= -threshold]
        return [stat >= threshold, stat <= -threshold]


@dataclass(frozen=True)
class Cluster:
    """One cluster of the observed map.

    Attributes
    ----------
    index : int
        1-based, clusters sorted by size (largest first).
    sign : int
        +1 (t > 0) or -1.
    size_voxels : int
    peak_voxel : tuple of int
        Voxel (i, j, k) of the largest |t|.
    peak_stat : float
        t at the peak.
    """

    index: int
    sign: int
    size_voxels: int
    peak_voxel: tuple[int, int, int]
    peak_stat: float


def find_clusters(
    stat_map: np.ndarray,
    threshold: float,
    tail: str = "two-sided",
    connectivity: int = 26,
) -> tuple[np.ndarray, list[Cluster]]:
    """Clusters of a 3-D statistic map.

    Parameters
    ----------
    stat_map : ndarray, shape (x, y, z)
        t map (NaN outside the mask).
    threshold : float
        Cluster-forming threshold on |t| (> 0).
    tail : {"two-sided", "greater", "less"}
    connectivity : {6, 18, 26}

    Returns
    -------
    labels : ndarray of int32, shape (x, y, z)
        Cluster index (1 = largest) per voxel, 0 elsewhere.
    clusters : list of Cluster
        Sorted by size, largest first.
    """
    stat_map = np.asarray(stat_map, dtype=np.float64)
    if stat_map.ndim != 3:
        raise MorError(f"stat_map must be 3-D; got shape {stat_map.shape}.")
    structure = connectivity_structure(connectivity)
    found = []
    for supra, sign in zip(
        suprathreshold(stat_map, threshold, tail),
        [1, -1] if tail == "two-sided" else [1 if tail == "greater" else -1],
        strict=True,
    ):
        labels, n = ndimage.label(supra, structure=structure)
        if n == 0:
            continue
        flat = labels.ravel()
        sizes = np.bincount(flat, minlength=n + 1)
        # peak: voxel of maximum signed stat per label, vectorised via sorting
        values = (sign * stat_map).ravel()
        inside = np.flatnonzero(flat)
        order = inside[np.lexsort((-values[inside], flat[inside]))]
        first = np.r_[True, np.diff(flat[order]) != 0]
        for vox in order[first]:
            lab = flat[vox]
            found.append(
                (
                    int(sizes[lab]),
                    sign,
                    np.unravel_index(vox, stat_map.shape),
                    float(stat_map.ravel()[vox]),
                    labels == lab,
                )
            )
    found.sort(key=lambda c: (-c[0], -abs(c[3])))
    out = np.zeros(stat_map.shape, dtype=np.int32)
    clusters = []
    for index, (size, sign, peak, value, member) in enumerate(found, start=1):
        out[member] = index
        clusters.append(Cluster(index, sign, size, tuple(int(i) for i in peak), value))
    return out, clusters


def max_cluster_sizes(
    stat_block: np.ndarray,
    voxel_index: np.ndarray,
    shape: tuple[int, int, int],
    threshold: float,
    tail: str,
    connectivity: int = 26,
) -> np.ndarray:
    """Largest cluster of each row of a block of statistic maps.

    All maps of the block are labelled in one ``scipy.ndimage.label`` call on a
    4-D stack whose structuring element does not connect maps.

    Parameters
    ----------
    stat_block : ndarray, shape (n_maps, n_voxels)
        Statistics at ``voxel_index`` (flat indices into ``shape``).
    voxel_index : ndarray of int, shape (n_voxels,)
    shape : tuple of 3 int
    threshold : float
    tail : {"two-sided", "greater", "less"}
    connectivity : {6, 18, 26}

    Returns
    -------
    max_size : ndarray of int, shape (n_maps,)
        Largest cluster (voxels) of each map, over both signs when two-sided;
        0 when nothing passes the threshold.
    """
    structure3 = connectivity_structure(connectivity)
    structure = np.zeros((3, 3, 3, 3), dtype=bool)
    structure[1] = structure3
    # crop to the bounding box of the voxels (+1 voxel margin is not needed:
    # voxels outside the index are never suprathreshold)
    coords = np.unravel_index(voxel_index, shape)
    lo = [int(c.min()) for c in coords]
    hi = [int(c.max()) + 1 for c in coords]
    sub_shape = tuple(h - lo_ for lo_, h in zip(lo, hi, strict=True))
    sub_index = np.ravel_multi_index(
        tuple(c - lo_ for c, lo_ in zip(coords, lo, strict=True)), sub_shape
    )
    n_maps = stat_block.shape[0]
    best = np.zeros(n_maps, dtype=np.int64)
    n_vol = int(np.prod(sub_shape))
    for supra in suprathreshold(stat_block, threshold, tail):
        if not supra.any():
            continue
        volume = np.zeros((n_maps, n_vol), dtype=bool)
        volume[:, sub_index] = supra
        labels, n = ndimage.label(volume.reshape(n_maps, *sub_shape), structure)
        if n == 0:
            continue
        flat = labels.ravel()
        nz = np.flatnonzero(flat)
        sizes = np.bincount(flat[nz], minlength=n + 1)
        owner = np.zeros(n + 1, dtype=np.int64)
        owner[flat[nz]] = nz // n_vol
        np.maximum.at(best, owner[1:], sizes[1:])
    return best
