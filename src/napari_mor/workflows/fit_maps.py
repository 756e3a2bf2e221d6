"""Voxelwise maps of a fit request: plan, run, describe, write.

:func:`plan_maps` checks a request and fixes what every condition shares (mask,
reference TAC, k2'); :func:`iter_fit_maps` runs the fits block by block and is
drained by the dock's worker (progress, cancel between blocks) and by the CLI,
the batch and the demo alike; :func:`map_provenance_of` is the one provenance of
a BP_ND map; :func:`write_fit_maps` writes every map of a run with its sidecar.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.pet import DynamicPET
from napari_mor.kinetics import MapResult
from napari_mor.workflows.fit_data import (
    FitData,
    _map_mask,
    mask_description,
    reference_tac,
)
from napari_mor.workflows.k2p_policy import K2pChoice, shared_k2p
from napari_mor.workflows.request import FitRequest

__all__ = [
    "EXTRA_MAP_TAGS",
    "MapJob",
    "MapPlan",
    "MapProgress",
    "fit_maps_now",
    "iter_fit_maps",
    "map_output_paths",
    "map_provenance_of",
    "plan_maps",
    "write_fit_maps",
]

#: Parameter maps written beside the BP_ND map, by file tag: OUT_<tag>.nii.gz.
EXTRA_MAP_TAGS = {"r1": "R1", "k2_per_min": "k2", "k2p_per_min": "k2p", "dvr": "DVR"}


@dataclass(frozen=True)
class MapJob:
    """One voxelwise fit: a condition on one scan.

    Attributes
    ----------
    condition : str
    pet : DynamicPET
    ref_kbq_ml : ndarray, shape (n_frames,)
    window_min : (float, float) or None
    """

    condition: str
    pet: DynamicPET
    ref_kbq_ml: np.ndarray
    window_min: tuple[float, float] | None


@dataclass(frozen=True)
class MapPlan:
    """The voxelwise fits of a request, with what they share.

    Attributes
    ----------
    request : FitRequest
    data : FitData
    jobs : list of MapJob
    mask : ndarray of bool, shape (x, y, z)
        Voxels fitted.
    mask_description : str
    k2p : K2pChoice
        Shared by every job.
    warnings : tuple of str
        Violated model assumptions found on the mask's mean TAC.
    """

    request: FitRequest
    data: FitData
    jobs: list[MapJob]
    mask: np.ndarray
    mask_description: str
    k2p: K2pChoice
    warnings: tuple[str, ...] = ()

    @property
    def n_voxels(self) -> int:
        """Voxels fitted per condition."""
        return int(self.mask.sum())


class MapProgress(NamedTuple):
    """Progress of :func:`iter_fit_maps`: block ``done`` of ``total`` of a job.

    Attributes
    ----------
    index, n_jobs : int
        Job (condition) being fitted and the number of jobs.
    done, total : int
        Voxels fitted so far in that job, and its voxels.
    condition : str
    """

    index: int
    n_jobs: int
    done: int
    total: int
    condition: str

    @property
    def fraction(self) -> float:
        """Overall fraction done, 0-1."""
        return (self.index + self.done / max(self.total, 1)) / max(self.n_jobs, 1)


def plan_maps(request: FitRequest, data: FitData) -> MapPlan:
    """Check a request for maps and fix its mask, reference TACs and shared k2'.

    Parameters
    ----------
    request : FitRequest
    data : FitData
        From :func:`~napari_mor.workflows.fit.prepare_fit_data` or
        :func:`~napari_mor.workflows.fit.load_fit_data`.

    Returns
    -------
    MapPlan
    """
    from napari_mor.kinetics import MODELS

    if MODELS[request.model].map_solver is None:
        raise MorError(
            f"Model {request.model!r} is fitted per ROI only; for maps choose "
            "'srtm-bf' (basis-function SRTM) or a linear model."
        )
    mask = _map_mask(request, data)
    if not mask.any():
        raise MorError("The map mask has no voxels; choose another brain mask.")
    if request.two_scans:
        jobs = [
            MapJob(condition, scan, reference_tac(data, scan), None)
            for condition, scan in data.scans().items()
        ]
    else:
        ref = reference_tac(data)
        jobs = [
            MapJob(condition, data.pet, ref, request.window_of(condition))
            for condition in request.conditions
        ]
    return MapPlan(
        request=request,
        data=data,
        jobs=jobs,
        mask=mask,
        mask_description=mask_description(request, data),
        k2p=shared_k2p(request, data),
        warnings=_mean_tac_warnings(request, jobs, mask),
    )


def _mean_tac_warnings(request: FitRequest, jobs, mask) -> tuple[str, ...]:
    """Model-validity warnings of the maps, checked on the mask's mean TAC."""
    from napari_mor.rois.tacs import mask_mean_tac
    from napari_mor.workflows.validity import RATIO_DRIFT, ratio_drift

    if request.model != "ratio":
        return ()
    warnings = []
    for job in jobs:
        tac = mask_mean_tac(job.pet, mask, "The map mask")
        timing = job.pet.timing
        used = (
            np.ones(timing.n_frames, bool)
            if job.window_min is None
            else timing.frames_in_window(*job.window_min)
        )
        drift = float(ratio_drift(tac, job.ref_kbq_ml, timing.frame_mid_min, used)[0])
        if abs(drift) > RATIO_DRIFT:
            warnings.append(
                f"Not at equilibrium in {job.condition}: the mean tissue/reference "
                f"ratio changes by {drift:+.0%} across the window (limit "
                f"{RATIO_DRIFT:.0%}), so ratio maps are biased; use Logan or a later "
                "window."
            )
    return tuple(warnings)


def iter_fit_maps(
    plan: MapPlan, *, block_size: int | None = None
) -> Generator[MapProgress, None, dict[str, MapResult]]:
    """Fit every job of a plan block by block, yielding progress.

    Parameters
    ----------
    plan : MapPlan
    block_size : int, optional
        Voxels per block (see :func:`napari_mor.kinetics.iter_fit_blocks`).

    Yields
    ------
    MapProgress
        After each block; stop iterating to cancel.

    Returns
    -------
    results : dict of str to MapResult
        Per condition (the generator's return value).
    """
    from napari_mor.kinetics import iter_fit_blocks

    request = plan.request
    options = request.model_options(plan.k2p)
    results: dict[str, MapResult] = {}
    for index, job in enumerate(plan.jobs):
        blocks = iter_fit_blocks(
            job.pet.data,
            plan.mask,
            job.ref_kbq_ml,
            job.pet.timing,
            request.model,
            window=job.window_min,
            block_size=block_size,
            **options,
        )
        while True:
            try:
                done, total = next(blocks)
            except StopIteration as stop:
                results[job.condition] = stop.value
                break
            yield MapProgress(index, len(plan.jobs), done, total, job.condition)
    return results


def fit_maps_now(
    plan: MapPlan, *, block_size: int | None = None
) -> dict[str, MapResult]:
    """Drain :func:`iter_fit_maps` (no progress) and return its results."""
    runs = iter_fit_maps(plan, block_size=block_size)
    while True:
        try:
            next(runs)
        except StopIteration as stop:
            return stop.value


def map_provenance_of(
    plan: MapPlan, condition: str, result: MapResult | None, **extra
) -> dict:
    """The provenance of a map of a plan: the ONE schema for CLI, dock, batch, demo.

    Parameters
    ----------
    plan : MapPlan
    condition : str
        Condition of the map.
    result : MapResult or None
        The fit (None for a derived map such as delta-BP).
    **extra
        Further fields (``Quantity``, smoothing, registration, ...).

    Returns
    -------
    provenance : dict
        Model, reference, windows, t*, k2' and its source, mask, weights, the
        input files with their SHA-256 hashes.
    """
    from napari_mor.io.timing import injection_assumed
    from napari_mor.maps import map_provenance
    from napari_mor.workflows.validity import WINDOWED_ONE_SCAN_NOTE

    request = plan.request
    notes = {"Notes": [WINDOWED_ONE_SCAN_NOTE]} if len(request.windows_min) > 1 else {}
    if plan.warnings:
        notes["Warnings"] = list(plan.warnings)
    if plan.data.pet.sidecar and injection_assumed(plan.data.pet.sidecar):
        notes["InjectionStartAssumed"] = (
            "the PET sidecar gives no InjectionStart: frame times are taken from "
            "injection at the scan start"
        )
    windows = (
        dict(zip(request.conditions, request.windows_min, strict=True))
        if request.windows_min
        else None
    )
    files = {
        role: path
        for role, path in plan.data.input_files.items()
        if Path(path).is_file()
    }
    return map_provenance(
        result,
        reference_region=plan.data.reference_description,
        windows=windows,
        input_files=files,
        Condition=condition,
        K2PrimeSource=plan.k2p.source,
        Weights=request.weights,
        BrainMask=plan.mask_description,
        TwoScans=request.two_scans,
        **(
            {"PartialVolumeCorrection": plan.data.pvc.provenance}
            if plan.data.pvc is not None
            else {}
        ),
        **notes,
        **extra,
    )


def map_output_paths(out: str | Path, conditions, tags=()) -> dict:
    """Output paths of a map run: ``{(condition, tag): path}``.

    One condition writes ``OUT.nii.gz``; several write ``OUT_<condition>.nii.gz``.
    ``tag`` None is the BP_ND map; other tags add ``_<tag>``
    (``OUT_baseline_R1.nii.gz``).
    """
    out = Path(out)
    name = out.name
    lower = name.lower()
    if not lower.endswith((".nii", ".nii.gz")):
        raise MorError(
            f"A map output must end in .nii.gz or .nii; got {out} (for an ROI table "
            "use .tsv with --rois-only)."
        )
    suffix = name[-7:] if lower.endswith(".nii.gz") else name[-4:]
    stem = name[: -len(suffix)]
    conditions = list(conditions)
    paths = {}
    for condition in conditions:
        base = stem if len(conditions) == 1 else f"{stem}_{condition}"
        for tag in (None, *tags):
            part = base if tag is None else f"{base}_{tag}"
            paths[(condition, tag)] = out.with_name(part + suffix)
    return paths


def write_fit_maps(
    plan: MapPlan, results: dict[str, MapResult], out: str | Path
) -> list[Path]:
    """Write every condition's BP_ND map and parameter maps with their sidecars.

    A previous run into the same ``out`` (another model, other conditions,
    ``.nii`` instead of ``.nii.gz``) may have left maps this run does not write,
    such as ``OUT_k2p.nii.gz`` of MRTM beside Logan's maps: they are removed
    with their sidecars once the new maps are in place, so the folder holds one
    consistent set. Only maps whose sidecar proves they were written by
    ``fit`` for this ``out`` are removed (``FitOutput`` names the same stem and
    ``ImageSHA256`` matches the file); anything else is left alone.

    Parameters
    ----------
    plan : MapPlan
    results : dict of str to MapResult
        From :func:`iter_fit_maps`.
    out : str or Path
        ``OUT.nii.gz``; see :func:`map_output_paths` for the names.

    Returns
    -------
    paths : list of Path
        Files written (BP_ND maps first per condition).
    """
    from napari_mor.maps import write_map

    affine = plan.data.pet.affine
    paths = map_output_paths(out, results, tuple(EXTRA_MAP_TAGS.values()))
    # read before writing: a .nii/.nii.gz twin shares the sidecar written below
    previous = _previous_fit_maps(Path(out))
    marker = {_FIT_OUTPUT_KEY: Path(out).name}
    written = []
    for condition, result in results.items():
        prov = map_provenance_of(plan, condition, result)
        written.append(
            write_map(
                paths[(condition, None)],
                result.maps["bp_nd"],
                affine,
                {**prov, "Quantity": "bp_nd", **marker},
            )
        )
        for key, tag in EXTRA_MAP_TAGS.items():
            if key in result.maps:
                written.append(
                    write_map(
                        paths[(condition, tag)],
                        result.maps[key],
                        affine,
                        {**prov, "Quantity": key, **marker},
                    )
                )
    _remove_stale_fit_maps(previous, written)
    return written


#: Sidecar key of the maps written by :func:`write_fit_maps`: the ``out`` name of
#: the run, so that a later run into the same ``out`` knows which maps are its own.
_FIT_OUTPUT_KEY = "FitOutput"


def _previous_fit_maps(out: Path) -> list[tuple[Path, str]]:
    """Maps of earlier ``fit`` runs into ``out`` (same stem): ``(path, sha256)``.

    A map counts only when its sidecar says ``Software: napari-mor``, names an
    ``out`` with the same stem under :data:`_FIT_OUTPUT_KEY`, records the map's
    own SHA-256, and the file name is the one :func:`map_output_paths` gives for
    the sidecar's ``Condition`` and ``Quantity``.
    """
    import json

    from napari_mor.io._nifti import (
        IMAGE_SHA256_KEY,
        file_sha256,
        sidecar_path_for,
        strip_image_suffix,
    )

    stem = strip_image_suffix(out).name
    tags = {"bp_nd": None, **EXTRA_MAP_TAGS}
    try:
        entries = sorted(out.parent.iterdir())
    except OSError:
        return []
    found = []
    for path in entries:
        lower = path.name.lower()
        if not lower.endswith((".nii", ".nii.gz")) or not path.is_file():
            continue
        own_stem = strip_image_suffix(path).name
        if own_stem != stem and not own_stem.startswith(stem + "_"):
            continue
        try:
            sidecar = json.loads(sidecar_path_for(path).read_text(encoding="utf-8"))
            if not isinstance(sidecar, dict):
                continue
            claimed = sidecar.get(_FIT_OUTPUT_KEY)
            quantity, condition = sidecar.get("Quantity"), sidecar.get("Condition")
            if (
                sidecar.get("Software") != "napari-mor"
                or not isinstance(claimed, str)
                or strip_image_suffix(claimed).name != stem
                or quantity not in tags
                or not isinstance(condition, str)
            ):
                continue
            names = set()
            for base in (stem, f"{stem}_{condition}"):
                tag = tags[quantity]
                names.add(base if tag is None else f"{base}_{tag}")
            if own_stem not in names:
                continue
            sha = file_sha256(path)
        except (OSError, ValueError):
            continue
        if sidecar.get(IMAGE_SHA256_KEY) == sha:
            found.append((path, sha))
    return found


def _remove_stale_fit_maps(previous: list[tuple[Path, str]], written: list[Path]):
    """Remove the earlier maps this run did not write again, with their sidecars.

    A map is removed only while it still holds the content its sidecar
    described (a concurrent run may have replaced it); a sidecar only while it
    still describes that map and no map of this run uses it.
    """
    import contextlib
    import json
    import warnings

    from napari_mor._errors import MorWarning
    from napari_mor.io._nifti import IMAGE_SHA256_KEY, file_sha256, sidecar_path_for

    kept = {Path(p).absolute() for p in written}
    kept_sidecars = {sidecar_path_for(p).absolute() for p in written}
    for path, sha in previous:
        if path.absolute() in kept:
            continue
        sidecar = sidecar_path_for(path)
        try:
            if file_sha256(path) != sha:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            warnings.warn(
                f"Could not remove {path}, a map of an earlier run into the same "
                f"output ({err.strerror or err}); delete it by hand so it is not "
                "mistaken for a result of this run.",
                MorWarning,
                stacklevel=3,
            )
            continue
        if sidecar.absolute() in kept_sidecars:
            continue
        with contextlib.suppress(OSError, ValueError):
            content = json.loads(sidecar.read_text(encoding="utf-8"))
            if isinstance(content, dict) and content.get(IMAGE_SHA256_KEY) == sha:
                sidecar.unlink()
