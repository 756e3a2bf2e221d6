"""Family-wise error control by permutation (max-statistic, max cluster size).

Sign-flipping for one-sample / paired tests (errors symmetric about zero under
H0), permutation of subjects for correlations (exchangeable under H0); with
nuisance covariates both are applied to the reduced-model residuals
(Freedman & Lane 1983; Winkler et al. 2014). The first resampling is the
identity (the observed data), as in FSL randomise and nilearn ``permuted_ols``,
so the smallest attainable FWE p is 1 / n_perm.

Resamplings are processed in blocks: the t maps of a block are two matrix
products (see :class:`napari_mor.group.stats._Glm`), and the clusters of a block
are labelled in one ``scipy.ndimage.label`` call. Nothing loops over voxels.

References
----------
Nichols & Holmes (2002) Hum Brain Mapp 15:1-25. Winkler et al. (2014)
NeuroImage 92:381-397.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError
from napari_mor.group.clusters import max_cluster_sizes
from napari_mor.group.stats import (
    Design,
    _as_data,
    _check_design,
    _check_tail,
    _Glm,
    t_threshold,
)

__all__ = ["PermutationNull", "fwe_p", "iter_permutation_blocks", "permutation_null"]

#: Target number of float64 values of one block of t maps (about 160 MB).
_BLOCK_VALUES = 20_000_000


@dataclass
class PermutationNull:
    """Null distributions of the maximum statistic and the largest cluster.

    Attributes
    ----------
    max_stat : ndarray, shape (n_perm,)
        Max |t| (two-sided), max t ("greater") or max -t ("less") per
        resampling; element 0 is the observed data.
    max_cluster : ndarray of int, shape (n_perm,) or None
        Largest suprathreshold cluster (voxels) per resampling; None when no
        cluster-forming threshold was given.
    n_perm : int
    scheme : {"sign-flip", "permute"}
    seed : int or None
    cluster_threshold_t : float or None
        Cluster-forming |t|.
    p_voxel : float or None
        Cluster-forming p.
    connectivity : int
    tail : str
    """

    max_stat: np.ndarray
    max_cluster: np.ndarray | None
    n_perm: int
    scheme: str
    seed: int | None
    cluster_threshold_t: float | None
    p_voxel: float | None
    connectivity: int
    tail: str

    def voxel_threshold(self, alpha: float = 0.05) -> float:
        """t above which a voxel is FWE-significant at ``alpha``."""
        return float(np.quantile(self.max_stat, 1 - alpha, method="higher"))

    def cluster_threshold(self, alpha: float = 0.05) -> int:
        """Cluster size (voxels) that is FWE-significant at ``alpha``."""
        if self.max_cluster is None:
            raise MorError("No cluster null: give a cluster-forming p_voxel.")
        return int(np.quantile(self.max_cluster, 1 - alpha, method="higher")) + 1


def fwe_p(observed: np.ndarray, null_max: np.ndarray) -> np.ndarray:
    """FWE-corrected p: fraction of resamplings whose maximum reaches ``observed``.

    Parameters
    ----------
    observed : ndarray
        Statistic (already oriented: |t|, t or -t) or cluster size.
    null_max : ndarray, shape (n_perm,)
        Null maxima, including the identity resampling.
    """
    null = np.sort(np.asarray(null_max, dtype=np.float64))
    obs = np.asarray(observed, dtype=np.float64)
    count = null.size - np.searchsorted(null, obs, side="left")
    return np.maximum(count, 1) / null.size


def _orient(t: np.ndarray, tail: str) -> np.ndarray:
    if tail == "two-sided":
        return np.abs(t)
    return t if tail == "greater" else -t


def _resamplings(
    rng: np.random.Generator, scheme: str, n: int, count: int, first: bool
) -> np.ndarray:
    """Sign vectors (count, n) or permutations (count, n); identity first."""
    if scheme == "sign-flip":
        out = rng.choice(np.array([-1.0, 1.0]), size=(count, n))
        if first:
            out[0] = 1.0
    else:
        out = rng.permuted(np.tile(np.arange(n), (count, 1)), axis=1)
        if first:
            out[0] = np.arange(n)
    return out


def _block_matrices(glm: _Glm, scheme: str, draws: np.ndarray):
    """Rows (P' a)' and (P' Q)' of each resampling in the block."""
    b, n = draws.shape
    q = glm.q  # (n, k)
    if scheme == "sign-flip":
        p_a = draws * glm.a[None, :]
        p_q = (draws[:, :, None] * q[None]).transpose(0, 2, 1)
        return p_a, p_q
    rows = np.arange(b)[:, None]
    p_a = np.empty((b, n))
    p_a[rows, draws] = glm.a[None, :]
    p_q = np.empty((b, q.shape[1], n))
    for k in range(q.shape[1]):  # k = columns of the design (a handful)
        tmp = np.empty((b, n))
        tmp[rows, draws] = q[None, :, k]
        p_q[:, k] = tmp
    return p_a, p_q


def iter_permutation_blocks(
    y: np.ndarray,
    design: Design,
    *,
    n_perm: int = 1000,
    tail: str = "two-sided",
    p_voxel: float | None = 0.001,
    voxel_index: np.ndarray | None = None,
    shape: tuple[int, int, int] | None = None,
    connectivity: int = 26,
    seed: int | None = 0,
    block_size: int | None = None,
) -> Generator[tuple[int, int], None, PermutationNull]:
    """Build the FWE null distributions, yielding progress after each block.

    Parameters
    ----------
    y : ndarray, shape (n_subjects, n_voxels)
        Data inside the group mask (e.g. delta-BP).
    design : Design
        From :func:`napari_mor.group.make_design`; its ``permutation`` picks
        sign-flipping or permutation of subjects.
    n_perm : int
        Number of resamplings including the identity (>= 20; 1000 or more for
        reporting, 5000 for p near 0.05 with +-0.006 Monte Carlo error).
    tail : {"two-sided", "greater", "less"}
    p_voxel : float or None
        Cluster-forming threshold (uncorrected p); None: voxel FWE only.
    voxel_index, shape
        Flat voxel indices of the columns of ``y`` in a 3-D grid of ``shape``;
        needed for cluster sizes.
    connectivity : {6, 18, 26}
    seed : int or None
        Seed of ``numpy.random.default_rng``; the same seed gives the same null.
    block_size : int, optional
        Resamplings per block (default: ~160 MB of t maps).

    Yields
    ------
    done, total : int
        Resamplings done so far and in total; stop iterating to cancel.

    Returns
    -------
    PermutationNull
        As the generator's return value.
    """
    y = _as_data(y)
    _check_tail(tail)
    _check_design(design, y.shape[0])
    n_perm = int(n_perm)
    if n_perm < 20:
        raise MorError(
            f"n_perm={n_perm} is too few for a 5% FWE level; use at least 20 "
            "(1000+ for reporting)."
        )
    scheme = design.permutation
    if scheme not in ("sign-flip", "permute"):
        raise MorError(f"Unknown resampling scheme {scheme!r}.")
    do_clusters = p_voxel is not None
    if do_clusters and (voxel_index is None or shape is None):
        raise MorError(
            "Cluster-level FWE needs the voxel positions: pass voxel_index and shape "
            "(or p_voxel=None for voxel-level FWE only)."
        )
    glm = _Glm(design)
    thr = t_threshold(p_voxel, glm.df, tail) if do_clusters else None
    fixed, resid, ss = glm.split(y)
    n_vox = y.shape[1]
    if block_size is None:
        block_size = max(1, min(n_perm, _BLOCK_VALUES // max(n_vox * 3, 1)))
    rng = np.random.default_rng(seed)
    max_stat = np.empty(n_perm)
    max_cluster = np.zeros(n_perm, dtype=np.int64) if do_clusters else None
    done = 0
    while done < n_perm:
        count = min(block_size, n_perm - done)
        draws = _resamplings(rng, scheme, glm.n, count, first=done == 0)
        p_a, p_q = _block_matrices(glm, scheme, draws)
        t, _ = glm.t_block(p_a, p_q, fixed, resid, ss)
        max_stat[done : done + count] = _orient(t, tail).max(axis=1)
        if do_clusters:
            max_cluster[done : done + count] = max_cluster_sizes(
                t, voxel_index, shape, thr, tail, connectivity
            )
        done += count
        yield done, n_perm
    return PermutationNull(
        max_stat=max_stat,
        max_cluster=max_cluster,
        n_perm=n_perm,
        scheme=scheme,
        seed=seed,
        cluster_threshold_t=thr,
        p_voxel=p_voxel,
        connectivity=connectivity,
        tail=tail,
    )


def permutation_null(
    y: np.ndarray,
    design: Design,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    **options,
) -> PermutationNull:
    """Run :func:`iter_permutation_blocks` to the end.

    Parameters
    ----------
    y, design, **options
        As in :func:`iter_permutation_blocks`.
    on_progress : callable(done, total), optional
        Called after each block.
    """
    blocks = iter_permutation_blocks(y, design, **options)
    while True:
        try:
            done, total = next(blocks)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(done, total)
