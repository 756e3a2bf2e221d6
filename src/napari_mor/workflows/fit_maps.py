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
    "denoised_pet",
    "fit_maps_now",
    "iter_fit_maps",
    "map_output_paths",
    "map_provenance_of",
    "model_has_maps",
    "plan_maps",
    "write_fit_maps",
]

# The outputs of a plan (provenance, file names, writing) live in map_outputs.


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


def model_has_maps(model: str) -> bool:
    """Whether a model has a voxelwise fit (``srtm`` is ROI-only)."""
    from napari_mor.defaults import RELEASE_MODEL
    from napari_mor.kinetics import MODELS

    return model == RELEASE_MODEL or MODELS[model].map_solver is not None


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
    if not model_has_maps(request.model):
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


#: Said with every voxelwise release-model fit (measured in docs/transient.md).
RELEASE_MAP_WARNING = (
    "Voxelwise lp-ntPET uses the linear estimator, which is strongly biased by voxel "
    "noise (BP_ND and %delta-BP off by tens of percent at voxel noise 0.08, many "
    "voxels failed); read the change from ROI fits (Fit ROIs / --rois-only), or "
    "denoise first (--denoise nlm) and treat the maps as qualitative."
)


def _mean_tac_warnings(request: FitRequest, jobs, mask) -> tuple[str, ...]:
    """Model-validity warnings of the maps, checked on the mask's mean TAC."""
    from napari_mor.defaults import RELEASE_MODEL
    from napari_mor.rois.tacs import mask_mean_tac
    from napari_mor.workflows.validity import RATIO_DRIFT, ratio_drift

    if request.model == RELEASE_MODEL:
        return (RELEASE_MAP_WARNING,)
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
    results: dict[str, MapResult] = {}
    for index, job in enumerate(plan.jobs):
        blocks = _job_blocks(plan, job, block_size)
        while True:
            try:
                done, total = next(blocks)
            except StopIteration as stop:
                results[job.condition] = stop.value
                break
            yield MapProgress(index, len(plan.jobs), done, total, job.condition)
    return results


def _job_blocks(plan: MapPlan, job: MapJob, block_size: int | None):
    """The block generator of one job: the model's voxelwise fit."""
    from napari_mor.defaults import RELEASE_MODEL
    from napari_mor.kinetics import iter_fit_blocks

    request = plan.request
    options = request.model_options(plan.k2p)
    pet = denoised_pet(request, job.pet, plan.mask)
    if request.model == RELEASE_MODEL:
        from napari_mor.kinetics.transient import iter_fit_transient_blocks

        sizes = {} if block_size is None else {"block_size": block_size}
        return iter_fit_transient_blocks(
            pet, plan.mask, job.ref_kbq_ml, job.pet.timing, **options, **sizes
        )
    return iter_fit_blocks(
        pet,
        plan.mask,
        job.ref_kbq_ml,
        job.pet.timing,
        request.model,
        window=job.window_min,
        block_size=block_size,
        **options,
    )


def denoised_pet(request: FitRequest, pet: DynamicPET, mask: np.ndarray) -> np.ndarray:
    """The PET array a map job fits: denoised inside the map mask when asked.

    Parameters
    ----------
    request : FitRequest
        ``denoise`` and ``denoise_fwhm_mm``.
    pet : DynamicPET
    mask : ndarray of bool, shape (x, y, z)
        Voxels filtered (and used by the filter); others keep their values.

    Returns
    -------
    data : ndarray, shape (t, x, y, z), float32
        ``pet.data`` itself without denoising (never modified), else a new array.
    """
    if request.denoise == "none":
        return pet.data
    from napari_mor.denoise import denoise_pet

    return denoise_pet(
        pet.data,
        pet.affine,
        method=request.denoise,
        fwhm_mm=request.denoise_fwhm_mm,
        mask=mask,
        frame_duration_s=pet.timing.frame_duration_s,
    )


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


from napari_mor.workflows.map_outputs import (  # noqa: E402  (the public API)
    EXTRA_MAP_TAGS,
    map_output_paths,
    map_provenance_of,
    write_fit_maps,
)
