"""The outputs of a map plan: the one provenance, the file names, the writing.

:func:`map_provenance_of` is the one provenance of a BP_ND map (the dock puts it in
``layer.metadata``, the CLI and batch in the sidecar); :func:`write_fit_maps` writes
every map of a run with its sidecar and removes the stale maps of an earlier run
into the same ``OUT``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari_mor._errors import MorError
from napari_mor.kinetics import MapResult

if TYPE_CHECKING:
    from napari_mor.workflows.fit_maps import MapPlan

#: Parameter maps written beside the BP_ND map, by file tag: OUT_<tag>.nii.gz.
#: The release model's maps: BP_ND after the onset, %delta-BP, onset, peak, p.
EXTRA_MAP_TAGS = {
    "r1": "R1",
    "k2_per_min": "k2",
    "k2p_per_min": "k2p",
    "dvr": "DVR",
    "bp_nd_challenge": "BPchallenge",
    "pct_delta_bp_nd": "pctdelta",
    "onset_min": "onset",
    "peak_min": "peak",
    "p_release": "prelease",
}


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
        **_denoising_of(request),
        **notes,
        **extra,
    )


def _denoising_of(request) -> dict:
    """``{"Denoising": ...}`` when the PET was denoised before the fit."""
    if request.denoise == "none":
        return {}
    from napari_mor.denoise import denoise_provenance

    return denoise_provenance(request.denoise, request.denoise_fwhm_mm)


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
    request = plan.request
    bids = request.bids_out is not None
    paths = fit_output_paths(request, list(results), out)
    # read before writing: a .nii/.nii.gz twin shares the sidecar written below
    previous = [] if bids else _previous_fit_maps(Path(out))
    marker = _bids_fields(plan) if bids else {_FIT_OUTPUT_KEY: Path(out).name}
    written = []
    for condition, result in results.items():
        prov = map_provenance_of(plan, condition, result)
        for key, tag in {"bp_nd": None, **EXTRA_MAP_TAGS}.items():
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
    if bids:
        from napari_mor.io.bids_derivatives import write_dataset_description

        write_dataset_description(request.bids_out)
    return written


def fit_output_paths(request, conditions, out=None) -> dict:
    """Map paths of a fit: ``{(condition, tag): path}``, tag None the BP_ND map.

    :func:`map_output_paths` of ``out`` (default ``request.out``), or with
    ``request.bids_out`` the BEP023 names in that derivatives folder
    (``desc-<condition>`` when there are several conditions).
    """
    tags = tuple(EXTRA_MAP_TAGS.values())
    if request.bids_out is None:
        return map_output_paths(out or request.out, conditions, tags)
    from napari_mor.io.bids_derivatives import (
        bids_map_name,
        derivative_folder,
        source_stem,
    )

    stem = source_stem(request.pet_path or "")
    folder = derivative_folder(request.bids_out, stem)
    conditions = list(conditions)
    quantity_of = {tag: key for key, tag in EXTRA_MAP_TAGS.items()}
    return {
        (condition, tag): folder
        / bids_map_name(
            stem,
            request.model,
            quantity_of.get(tag, "bp_nd"),
            condition if len(conditions) > 1 else None,
        )
        for condition in conditions
        for tag in (None, *tags)
    }


def roi_table_path(request) -> Path:
    """The ROI table of a fit: ``request.out``, or with ``request.bids_out`` the
    BEP023 ``<source>_model-<MODEL>_kinpar.tsv``."""
    if request.bids_out is None:
        return Path(request.out)
    from napari_mor.io.bids_derivatives import kinpar_path, source_stem

    return kinpar_path(
        request.bids_out, source_stem(request.pet_path or ""), request.model
    )


def write_roi_table(request, result) -> Path:
    """Write the ROI table of a fit result (and, for BIDS, its JSON sidecar).

    Parameters
    ----------
    request : FitRequest
    result : RoiFitResult

    Returns
    -------
    path : Path
        The TSV written (:func:`roi_table_path`).
    """
    from napari_mor.io.tables import write_rows_tsv
    from napari_mor.workflows.fit import fit_table_rows, table_columns

    path = roi_table_path(request)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rows_tsv(fit_table_rows(result), table_columns(request.model), path)
    if request.bids_out is not None:
        from napari_mor.io.bids_derivatives import (
            bids_sidecar_fields,
            write_dataset_description,
        )
        from napari_mor.io.writers import write_json

        fields = bids_sidecar_fields(
            request.model, result.reference, request.command_line()
        )
        write_json(
            path.with_suffix(".json"),
            {
                **fields,
                "K2PrimeSource": result.k2p.source,
                "Warnings": list(result.warnings),
            },
        )
        write_dataset_description(request.bids_out)
    return path


def _bids_fields(plan) -> dict:
    from napari_mor.io.bids_derivatives import bids_sidecar_fields

    request = plan.request
    return bids_sidecar_fields(
        request.model, plan.data.reference_description, request.command_line()
    )


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
