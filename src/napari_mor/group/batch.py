"""Cohort batch: BIDS-like folder -> per-subject BP_ND and delta-BP maps, on dask.

Per subject: load the dynamic PET (BIDS-PET sidecar timing), optionally bring
it to MNI space (pluggable; ``"identity"`` for data already in MNI space such
as the phantom), take the reference TAC from an MNI-space label image, fit
BP_ND maps in each condition window (:func:`napari_mor.maps.bp_maps`), compute
delta-BP (:func:`napari_mor.maps.delta_bp`), optionally smooth, and write::

    OUT/sub-XX/sub-XX_desc-baseline_bpnd.nii.gz   (+ .json provenance)
    OUT/sub-XX/sub-XX_desc-challenge_bpnd.nii.gz
    OUT/sub-XX/sub-XX_desc-delta_bpnd.nii.gz
    OUT/sub-XX/manifest.json                      input hashes + settings + map hashes

A subject whose input hashes and settings match its manifest, and whose maps
still hash to what the manifest records, is skipped (its outputs are reused),
so a rerun recomputes only what changed. The manifest is removed before a
subject is recomputed and written (sealed, with the maps' SHA-256) only after
its maps, so an interrupted run never leaves maps that look valid. A failing
subject is reported and skipped, the others continue; its earlier maps are
removed and its manifest says ``"status": "failed"``. :func:`load_cohort_maps`
(``group stats``, the group dock) uses only subjects whose maps match a sealed
manifest and lists the others with the reason. No output may replace an input
of the cohort (:func:`~napari_mor.io.outputs.check_outputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from napari_mor._errors import MorError
from napari_mor.defaults import DEFAULT_MODEL, DEFAULT_WINDOWS_MIN, RELEASE_MODEL
from napari_mor.group.cohort_maps import (
    CohortMaps,
    copy_atlas,
    find_region_labels,
    load_cohort_maps,
    usable_subjects,
    write_cohort_maps,
)
from napari_mor.group.design import (
    DESIGN_TWO_SCANS,
    DESIGN_WINDOWS,
    CohortListing,
    SubjectInputs,
    discover_cohort,
)
from napari_mor.group.manifest import (
    CONDITIONS,
    MANIFEST_VERSION,
    _invalidate_subject,
    _load_on_grid,
    _manifest_inputs,
    _output_hashes,
    _output_paths,
    _outputs_problem,
    _read_manifest,
)
from napari_mor.group.registration_steps import (
    PAIR_REGISTRATIONS,
    REGISTRATIONS,
    _check_scan_pair,
)

__all__ = [
    "CONDITIONS",
    "DESIGN_TWO_SCANS",
    "DESIGN_WINDOWS",
    "MANIFEST_VERSION",
    "REGISTRATIONS",
    "BatchSettings",
    "CohortListing",
    "CohortMaps",
    "SubjectInputs",
    "cohort_atlas_inputs",
    "copy_atlas",
    "discover_cohort",
    "find_region_labels",
    "load_cohort_maps",
    "process_subject",
    "run_batch",
    "settings_from_mapping",
    "usable_subjects",
    "write_cohort_maps",
]


@dataclass(frozen=True)
class BatchSettings:
    """Per-subject pipeline settings (all recorded in each manifest).

    The fit itself is a :class:`~napari_mor.workflows.fit.FitRequest` built from
    these settings (:meth:`fit_request`), so a subject of the batch gets exactly
    what ``napari-mor fit`` gives for the same options.

    Attributes
    ----------
    model : str
        Map-capable model of :mod:`napari_mor.kinetics` (default: the CLI's).
    windows_min : dict of str to (float, float)
        ``baseline`` and ``challenge`` windows, minutes from injection.
    ref_region : str, int or None
        Reference region name or label (None: the region named like "occipital").
    k2p_region : str, int or None
        High-binding region whose MRTM fit gives k2' (None: the automatic k2' of
        :func:`napari_mor.workflows.fit.shared_k2p`), unless ``model_options``
        holds ``k2p_per_min``.
    fwhm_mm : float
        Gaussian smoothing of the maps, FWHM mm (0: none).
    registration : str
        Key of :data:`REGISTRATIONS`.
    model_options : dict
        ``t_star_min``, ``k2p_per_min``, ``weights``; ``challenge_onset_min``
        for the release model (``lpntpet``: one-scan cohorts; its BP_ND before
        and after the onset are the baseline and challenge maps).
    pvc : {"none", "rbv", "iy"}
        Partial-volume correction of the images before the maps (docs/pvc.md).
    psf_fwhm_mm : float, optional
        Scanner PSF FWHM, mm (with ``pvc``).
    denoise, denoise_fwhm_mm : str, float or None
        Denoising of each scan before the maps (docs/denoise.md).
    """

    model: str = DEFAULT_MODEL
    windows_min: dict = field(default_factory=lambda: dict(DEFAULT_WINDOWS_MIN))
    ref_region: str | int | None = None
    k2p_region: str | int | None = None
    fwhm_mm: float = 0.0
    registration: str = "identity"
    model_options: dict = field(default_factory=dict)
    pvc: str = "none"
    psf_fwhm_mm: float | None = None
    denoise: str = "none"
    denoise_fwhm_mm: float | None = None

    def fit_request(self, two_scans: bool = False):
        """The fit request of one subject.

        Windows baseline, challenge of one scan; with ``two_scans`` each of the
        two scans is fitted whole (the windows do not apply).
        """
        from napari_mor.workflows.fit import FitRequest

        known = {"t_star_min", "k2p_per_min", "weights", "challenge_onset_min"}
        unknown = set(self.model_options) - known
        if unknown:
            raise MorError(
                f"Unknown model options {sorted(unknown)}; use t_star_min, "
                "k2p_per_min, weights or challenge_onset_min."
            )
        release = self.model == RELEASE_MODEL
        if release and two_scans:
            raise MorError(
                f"The release model ({RELEASE_MODEL}) fits the change inside one "
                "scan; this subject has separate baseline and challenge scans. Use "
                "a reference-region model (e.g. --model logan) for two-scan cohorts."
            )
        return FitRequest(
            model=self.model,
            reference=self.ref_region,
            windows_min=()
            if two_scans or release
            else tuple(tuple(self.windows_min[c]) for c in CONDITIONS),
            two_scans=two_scans,
            k2p_region=self.k2p_region,
            pvc=self.pvc,
            psf_fwhm_mm=self.psf_fwhm_mm,
            denoise=self.denoise,
            denoise_fwhm_mm=self.denoise_fwhm_mm,
            **self.model_options,
        )

    def as_dict(self) -> dict:
        out = asdict(self)
        out["windows_min"] = {k: list(v) for k, v in self.windows_min.items()}
        return out

    def check(self) -> None:
        missing = [c for c in CONDITIONS if c not in self.windows_min]
        if missing:
            raise MorError(
                f"Windows {missing} are missing; give both 'baseline' and "
                "'challenge' windows in minutes, e.g. baseline 10 45, challenge 50 90."
            )
        if self.registration not in REGISTRATIONS:
            raise MorError(
                f"Unknown registration {self.registration!r}; available: "
                f"{sorted(REGISTRATIONS)}."
            )
        if not self.fwhm_mm >= 0:
            raise MorError(f"fwhm_mm must be >= 0; got {self.fwhm_mm!r}.")


#: Words in a session label that mark the baseline / the challenge scan
#: (automatic pairing; a label matching both or neither is ambiguous).
def process_subject(
    subject: SubjectInputs,
    out_dir: str | Path,
    settings: BatchSettings,
    labels_path: str | Path,
    mask_path: str | Path | None = None,
    force: bool = False,
) -> dict:
    """Run the per-subject pipeline (or reuse cached outputs).

    Returns
    -------
    dict
        ``subject``, ``status`` (``"computed"``, ``"cached"``, ``"failed"``),
        ``message``, ``outputs`` (paths by condition).
    """
    from napari_mor.io import load_pet, write_json
    from napari_mor.maps import delta_bp, smooth_map, write_map
    from napari_mor.workflows.fit import prepare_fit_data
    from napari_mor.workflows.fit_maps import fit_maps_now, map_provenance_of, plan_maps

    out_dir = Path(out_dir)
    labels_path = Path(labels_path)
    mask_path = None if mask_path is None else Path(mask_path)
    outputs = _output_paths(out_dir, subject.subject)
    manifest_path = out_dir / subject.subject / "manifest.json"
    status = {
        "subject": subject.subject,
        "outputs": {k: str(v) for k, v in outputs.items()},
    }
    try:
        if not subject.usable:
            raise MorError("; ".join(subject.problems) or "no PET")
        inputs = _manifest_inputs(subject, labels_path, mask_path)
        wanted = {
            "version": MANIFEST_VERSION,
            "inputs": inputs,
            "settings": settings.as_dict(),
        }
        if not force:
            stored = _read_manifest(manifest_path)
            if (
                stored is not None
                and {k: stored.get(k) for k in wanted} == wanted
                and _outputs_problem(stored, outputs) is None
            ):
                return {**status, "status": "cached", "message": "inputs unchanged"}
        # the old manifest no longer vouches for anything: a run stopped while the
        # maps are being replaced must not leave them looking valid
        manifest_path.unlink(missing_ok=True)
        request = settings.fit_request(two_scans=subject.two_scans)
        challenge = None
        if subject.two_scans:
            base_pet, chal_pet = load_pet(subject.pet), load_pet(subject.challenge_pet)
            _check_scan_pair(base_pet, chal_pet, subject)
            pet, challenge = PAIR_REGISTRATIONS[settings.registration](
                base_pet, chal_pet, subject
            )
        else:
            pet = REGISTRATIONS[settings.registration](load_pet(subject.pet), subject)
        shape = pet.spatial_shape
        labels = _load_on_grid(labels_path, shape, pet.affine, "labels")
        if mask_path is not None:
            brain = _load_on_grid(mask_path, shape, pet.affine, "mask").data > 0
        else:
            brain = pet.data.mean(axis=0) > 0
        files = {"pet": subject.pet, "sidecar": subject.sidecar}
        if subject.two_scans:
            files.update(
                challenge_pet=subject.challenge_pet,
                challenge_sidecar=subject.challenge_sidecar,
            )
        data = prepare_fit_data(
            request,
            pet,
            labels=labels,
            brain_mask=brain,
            challenge=challenge,
            input_files=files,
        )
        plan = plan_maps(request, data)
        fits = fit_maps_now(plan)
        bp = _condition_maps(fits)
        bp["delta"] = delta_bp(bp["baseline"], bp["challenge"])
        for c, values in bp.items():
            prov = map_provenance_of(
                plan,
                c,
                None if c == "delta" else fits.get(c, fits.get("scan")),
                Quantity="delta_bp_nd" if c == "delta" else "bp_nd",
                SmoothingFWHMmm=settings.fwhm_mm,
                Registration=settings.registration,
                Design=subject.describe_design(),
            )
            write_map(
                outputs[c],
                smooth_map(values, pet.affine, settings.fwhm_mm),
                pet.affine,
                prov,
            )
        write_json(manifest_path, wanted)
        # sealed: the manifest vouches for exactly these maps (checked by stats)
        write_json(manifest_path, {**wanted, "outputs": _output_hashes(outputs)})
        return {**status, "status": "computed", "message": ""}
    except Exception as err:  # one bad subject is reported, never stops the cohort
        message = f"{type(err).__name__}: {err}"
        _invalidate_subject(outputs, manifest_path, message)
        return {**status, "status": "failed", "message": message}


def _condition_maps(fits: dict) -> dict:
    """Baseline and challenge BP_ND maps of a subject's fits (windows, two scans,
    or the release model's BP_ND before and after the onset)."""
    if "scan" in fits:  # the release model: one fit of the whole scan
        maps = fits["scan"].maps
        return {"baseline": maps["bp_nd"], "challenge": maps["bp_nd_challenge"]}
    return {c: fits[c].maps["bp_nd"] for c in CONDITIONS}


def cohort_atlas_inputs(
    root: str | Path, labels: str | Path | None = None, mask: str | Path | None = None
) -> tuple[Path, Path | None]:
    """The MNI label image and brain mask of a cohort (``root/atlas`` defaults).

    Returns
    -------
    labels, mask : Path, Path or None
        ``mask`` is None when neither given nor present.

    Raises
    ------
    MorError
        When no label image is found.
    """
    atlas = Path(root) / "atlas"
    labels = Path(labels) if labels else atlas / "space-MNI_labels.nii.gz"
    mask = Path(mask) if mask else atlas / "space-MNI_brainmask.nii.gz"
    if not labels.is_file():
        raise MorError(
            f"No label image {labels}; give one in MNI space with the reference "
            "region (--labels LABELS.nii.gz, LUT beside it)."
        )
    return labels, (mask if mask.is_file() else None)


def run_batch(
    root: str | Path,
    out_dir: str | Path,
    settings: BatchSettings | None = None,
    *,
    labels: str | Path,
    mask: str | Path | None = None,
    participants: str | Path | None = None,
    scheduler: str = "threads",
    n_workers: int | None = None,
    force: bool = False,
    on_progress: Callable[[int, int, dict], None] | None = None,
    baseline_session: str | None = None,
    challenge_session: str | None = None,
) -> list[dict]:
    """Process every subject of a cohort with dask.

    Parameters
    ----------
    root : str or Path
        BIDS-like cohort folder.
    out_dir : str or Path
        Output folder (per-subject maps + manifests; participants.tsv copied).
    settings : BatchSettings, optional
    labels : str or Path
        Label image in MNI space with the reference region (LUT beside it).
    mask : str or Path, optional
        Brain mask in MNI space (default: voxels with signal).
    participants : str or Path, optional
        Default ``root/participants.tsv``.
    scheduler : str
        ``"threads"`` (default), ``"processes"``, ``"sync"`` or the address of a
        dask.distributed scheduler (``"tcp://host:8786"``).
    n_workers : int, optional
        Local workers (default: dask's).
    force : bool
        Recompute even when cached.
    on_progress : callable(done, total, status), optional
        Called after each subject with its status dict.
    baseline_session, challenge_session : str, optional
        Session labels of a two-scan cohort (default: paired by their names;
        see :func:`discover_cohort`).

    Returns
    -------
    list of dict
        One status per subject (see :func:`process_subject`).

    Notes
    -----
    A ``tcp://`` scheduler needs the ``distributed`` extra
    (``pip install napari-mor[distributed]``); every worker must have
    napari-mor installed and see ``root``, ``out_dir`` and the atlas at the
    same paths (a shared file system). Each subject is one task, so results
    equal the threaded run's. On an HPC queue, start workers with
    dask-jobqueue (``pip install napari-mor[cluster]``) and pass the
    scheduler's address::

        from dask_jobqueue import SLURMCluster  # or PBSCluster, SGECluster

        cluster = SLURMCluster(cores=2, memory="8GB", walltime="01:00:00")
        cluster.scale(jobs=10)  # 10 queued jobs, one worker each
        run_batch(root, out, labels=atlas, scheduler=cluster.scheduler_address)

    or from a shell: ``dask scheduler`` on one node, ``dask worker
    tcp://HOST:8786`` in each job, then ``napari-mor group run ... --scheduler
    tcp://HOST:8786``.
    """
    import dask

    settings = settings or BatchSettings()
    # every setting is checked before anything is written (a bad window, t* or
    # k2' would otherwise fail each subject in turn)
    settings.check()
    settings.fit_request()
    if "://" not in scheduler and scheduler not in (
        "threads",
        "processes",
        "sync",
        "synchronous",
    ):
        raise MorError(
            f"Unknown scheduler {scheduler!r}; use threads, processes, sync or a "
            "dask.distributed address tcp://host:port."
        )
    if n_workers is not None and n_workers < 1:
        raise MorError(f"n_workers must be >= 1; got {n_workers}.")
    listing = discover_cohort(
        root,
        participants,
        baseline_session=baseline_session,
        challenge_session=challenge_session,
    )
    out_dir = Path(out_dir)
    if not Path(labels).is_file():
        raise MorError(
            f"Label image {labels} does not exist; give --labels (MNI space)."
        )
    _check_batch_outputs(root, out_dir, listing, labels, mask, participants)
    out_dir.mkdir(parents=True, exist_ok=True)
    if listing.participants:
        from napari_mor.sample.cohort import write_participants

        write_participants(out_dir / "participants.tsv", listing.participants)
    copy_atlas(root, out_dir)
    tasks = [
        dask.delayed(process_subject, pure=False)(
            s,
            out_dir,
            settings,
            labels,
            mask,
            force,
            dask_key_name=f"subject-{s.subject}",
        )
        for s in listing.subjects
    ]
    total = len(tasks)
    results: list[dict] = []

    def report(status: dict) -> None:
        results.append(status)
        if on_progress is not None:
            on_progress(len(results), total, status)

    if "://" in scheduler:
        try:
            from dask.distributed import Client, as_completed
        except ImportError as err:
            raise MorError(
                f"Scheduler {scheduler} is a dask.distributed address, but "
                f"dask.distributed is not installed ({err}); install it with "
                "pip install 'napari-mor[distributed]', or use --scheduler threads."
            ) from err

        with Client(scheduler) as client:
            futures = client.compute(tasks)
            for future in as_completed(futures):
                report(future.result())
    else:
        from dask.callbacks import Callback

        class _Progress(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                if isinstance(result, dict) and "status" in result:
                    report(result)

        options = {"num_workers": n_workers} if n_workers else {}
        with _Progress():
            dask.compute(*tasks, scheduler=scheduler, **options)
    order = {s.subject: i for i, s in enumerate(listing.subjects)}
    results.sort(key=lambda r: order[r["subject"]])
    from napari_mor.io import write_json

    write_json(
        out_dir / "batch_report.json",
        {
            "settings": settings.as_dict(),
            "subjects": results,
            "listing": listing.report(),
        },
    )
    return results


def _check_batch_outputs(
    root: str | Path,
    out_dir: Path,
    listing: CohortListing,
    labels: str | Path,
    mask: str | Path | None,
    participants: str | Path | None,
) -> None:
    """Refuse a maps folder whose files would replace cohort inputs.

    The maps folder may live inside the cohort (``derivatives/``), but no file
    the batch writes (participants table, atlas copy, report, per-subject maps,
    their sidecars and manifests) may be an input: a subject's PET or sidecar,
    the labels (and LUT), the mask, the participants table or the atlas.
    """
    from napari_mor.io._nifti import is_image_path, sidecar_path_for
    from napari_mor.io.outputs import check_outputs

    root = Path(root)
    if out_dir.exists() and not out_dir.is_dir():
        raise MorError(
            f"The maps folder {out_dir} is a file; give a folder (--out MAPS)."
        )
    if out_dir.exists() and root.exists() and out_dir.samefile(root):
        raise MorError(
            f"The maps folder {out_dir} is the cohort folder {root}; write the "
            f"maps elsewhere, e.g. --out {root / 'derivatives' / 'napari-mor'}."
        )
    atlas = root / "atlas"
    atlas_files = (
        sorted(p for p in atlas.rglob("*") if p.is_file()) if atlas.is_dir() else []
    )
    table = Path(participants) if participants else root / "participants.tsv"
    inputs = {
        "--labels": labels,
        "--mask": mask,
        "participants table": table if table.is_file() else None,
    }
    for s in listing.subjects:
        inputs.update({f"{s.subject} PET": s.pet, f"{s.subject} sidecar": s.sidecar})
        inputs[f"{s.subject} challenge PET"] = s.challenge_pet
        inputs[f"{s.subject} challenge sidecar"] = s.challenge_sidecar
        inputs[f"{s.subject} T1w"] = s.t1w
    for path in atlas_files:
        inputs[f"cohort atlas {path.name}"] = path
    outputs = {
        "--out (participants table)": out_dir / "participants.tsv",
        "--out (batch report)": out_dir / "batch_report.json",
    }
    sidecars = {sidecar_path_for(p) for p in atlas_files if is_image_path(p)}
    for path in atlas_files:
        if path not in sidecars:  # an image output brings its sidecar along
            outputs[f"--out (atlas copy {path.name})"] = (
                out_dir / "atlas" / path.relative_to(atlas)
            )
    for s in listing.subjects:
        for c, path in _output_paths(out_dir, s.subject).items():
            outputs[f"--out ({s.subject} {c} map)"] = path
        outputs[f"--out ({s.subject} manifest)"] = out_dir / s.subject / "manifest.json"
    check_outputs(inputs, outputs)


def settings_from_mapping(values: Mapping) -> BatchSettings:
    """BatchSettings from a plain mapping (e.g. parsed CLI options)."""
    return BatchSettings(**dict(values))
