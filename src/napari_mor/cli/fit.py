"""``napari-mor fit``: argv -> :class:`~napari_mor.workflows.fit.FitRequest` -> fits."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_mor._errors import MorError
from napari_mor.cli._common import add_pet_args, optional_str
from napari_mor.defaults import (
    DEFAULT_MODEL,
    DENOISE_METHODS,
    FIT_MODELS,
    RELEASE_MODEL,
    WEIGHTINGS,
)

#: ``--pvc`` choices (the same as ``workflows.request.PVC_METHODS``; kept here so
#: that ``--help`` imports no numpy).
PVC_CHOICES = ("none", "gtm", "rbv", "iy")


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``fit`` sub-command."""
    fit = commands.add_parser(
        "fit",
        help="fit a reference-region model: BP_ND maps or an ROI table",
        description=(
            "Fit a reference-region kinetic model to dynamic PET. Writes BP_ND maps "
            "(OUT.nii.gz, other parameters as OUT_R1.nii.gz, ...; one map per "
            "condition, OUT_baseline.nii.gz and OUT_challenge.nii.gz, with two "
            "windows or two scans) or, with --rois-only, a TSV with one row per ROI "
            "and condition. Times in minutes from injection. k2' is estimated once, "
            "on the baseline, and shared by every window and scan. Maps use a brain "
            "mask (--mask; default with --labels: all labelled voxels). 'srtm' is "
            "ROI-only; use 'srtm-bf' for maps. 'lpntpet' fits one scan whole: BP_ND "
            "before the challenge onset, after it (OUT_BPchallenge) and the percent "
            "change (OUT_pctdelta; ROI columns pct_delta_BP, p_release). Check what a "
            "method reads on your scan with 'napari-mor check-design'."
        ),
    )
    add_fit_arguments(fit)
    outs = fit.add_mutually_exclusive_group(required=True)
    outs.add_argument("--out", type=Path, help="OUT.nii.gz or OUT.tsv")
    outs.add_argument(
        "--bids-out",
        type=Path,
        metavar="DIR",
        help="BIDS derivatives folder (e.g. DATASET/derivatives/napari-mor): "
        "BEP023 names <source>_model-<MODEL>_meas-<PARAM>[_desc-<condition>]_mimap"
        ".nii.gz, <source>_model-<MODEL>_kinpar.tsv, dataset_description.json",
    )
    fit.set_defaults(run=run)
    return fit


def add_fit_arguments(fit: argparse.ArgumentParser) -> None:
    """The inputs and method options of a fit (shared with ``check-design``)."""
    fit.add_argument(
        "pet", type=Path, nargs="?", help="4D PET NIfTI (JSON sidecar beside it)"
    )
    fit.add_argument(
        "--tacs",
        type=Path,
        metavar="TACS.tsv",
        help="fit a TAC table instead of images (frame_start, frame_end s, one "
        "column per region: napari-mor tacs or BIDS/PETPrep _tacs.tsv); ROI table",
    )
    fit.add_argument(
        "--ref-column",
        metavar="NAME",
        help="with --tacs: the reference region's column (default: named like "
        "'occipital')",
    )
    fit.add_argument(
        "--challenge-pet",
        type=Path,
        help="challenge scan of a two-scan study (same grid and frames as PET)",
    )
    ref = fit.add_mutually_exclusive_group()
    ref.add_argument(
        "--ref-mask", type=Path, help="reference-region mask on the PET grid"
    )
    ref.add_argument("--labels", type=Path, help="label image (ROI set)")
    fit.add_argument("--lut", type=Path, help="lookup table for --labels")
    fit.add_argument(
        "--ref-label",
        metavar="N|NAME",
        help="reference region: label value or name (default: the region named "
        "like 'occipital')",
    )
    fit.add_argument(
        "--model",
        choices=FIT_MODELS,
        default=DEFAULT_MODEL,
        help=f"kinetic model (default {DEFAULT_MODEL}); {RELEASE_MODEL}: the change "
        "inside one scan (BP_ND before and after the challenge onset, "
        "docs/transient.md)",
    )
    fit.add_argument(
        "--challenge-onset",
        type=float,
        metavar="MIN",
        help=f"with --model {RELEASE_MODEL}: the challenge onset, minutes from "
        "injection (default: searched and reported)",
    )
    fit.add_argument(
        "--window",
        nargs=2,
        type=float,
        action="append",
        metavar=("START", "END"),
        help="condition window, minutes (frames by mid-time); repeat for several "
        "windows: two windows are baseline and challenge",
    )
    fit.add_argument(
        "--t-star", type=float, dest="t_star", metavar="MIN", help="t*, minutes"
    )
    k2p = fit.add_mutually_exclusive_group()
    k2p.add_argument(
        "--k2p",
        type=float,
        metavar="VALUE",
        help="k2' (1/min) for logan/mrtm2/srtm2/lpntpet",
    )
    k2p.add_argument(
        "--k2p-region",
        metavar="N|NAME",
        help="high-binding region whose MRTM fit (baseline) gives k2'",
    )
    fit.add_argument(
        "--mask",
        metavar="MASK.nii.gz|uptake",
        help="brain mask for maps (on the PET grid), or 'uptake' for voxels with "
        "mean uptake >= 25%% of the 99th percentile",
    )
    fit.add_argument(
        "--rois-only", action="store_true", help="fit label means, write a TSV"
    )
    add_pet_args(fit)
    fit.add_argument(
        "--weights",
        choices=WEIGHTINGS,
        default="none",
        help="frame weighting (default none)",
    )
    fit.add_argument(
        "--n-theta",
        type=int,
        metavar="N",
        help="basis functions of srtm-bf / srtm2 (default 100)",
    )
    fit.add_argument(
        "--theta-range",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="range of the basis-function rates, 1/min (default 0.01 1)",
    )
    add_pvc_args(fit, PVC_CHOICES)
    add_denoise_args(fit)


def add_denoise_args(parser: argparse.ArgumentParser) -> None:
    """``--denoise METHOD --denoise-fwhm MM`` (shared with ``group run``)."""
    parser.add_argument(
        "--denoise",
        choices=DENOISE_METHODS,
        default="none",
        help="denoise the PET before voxelwise fits (the reference and ROI TACs "
        "stay unfiltered): gaussian, hypr-lr (HYPR-LR, Christian 2010) or nlm "
        "(non-local means guided by the summed image: the least biased, "
        "docs/denoise.md) (default none)",
    )
    parser.add_argument(
        "--denoise-fwhm",
        type=float,
        metavar="MM",
        help="denoising kernel FWHM, mm (default: gaussian 4, hypr-lr 6, nlm 6)",
    )


def add_pvc_args(parser: argparse.ArgumentParser, choices) -> None:
    """``--pvc METHOD --psf-fwhm MM [MM MM]`` (shared with ``tacs``)."""
    parser.add_argument(
        "--pvc",
        choices=choices,
        default="none",
        help="partial-volume correction: gtm = geometric transfer matrix on the "
        "regional TACs (ROI fits use it with every method; reference included), "
        "rbv / iy = region-based voxelwise / iterative Yang images for maps; the "
        "labels must be complete (background label 0 is one region). See "
        "docs/pvc.md (default none)",
    )
    parser.add_argument(
        "--psf-fwhm",
        type=float,
        nargs="+",
        metavar="MM",
        help="scanner PSF FWHM in mm, one value (isotropic) or three (x y z); "
        "required with --pvc",
    )


def psf_from_args(args: argparse.Namespace):
    """``--psf-fwhm``: None, one float, or a tuple of three."""
    if args.psf_fwhm is None:
        return None
    values = tuple(args.psf_fwhm)
    if len(values) not in (1, 3):
        raise MorError(
            f"--psf-fwhm takes one value (isotropic) or three (x y z, mm); got "
            f"{len(values)}."
        )
    return values[0] if len(values) == 1 else values


def _label_or_name(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


def request_from_args(args: argparse.Namespace):
    """The :class:`~napari_mor.workflows.fit.FitRequest` of parsed ``fit`` arguments."""
    from napari_mor.workflows.fit import FitRequest

    if args.challenge_pet is not None and args.window:
        raise MorError("Two scans are fitted whole; drop --window or --challenge-pet.")
    if (args.pet is None) == (args.tacs is None):
        raise MorError(
            "Give a PET image or a TAC table (--tacs TACS.tsv), one of them."
        )
    if args.pet is not None and args.labels is None and args.ref_mask is None:
        raise MorError(
            "Give --labels LABELS.nii.gz (with the reference region) or --ref-mask."
        )
    if args.ref_column is not None and (args.tacs is None or args.ref_label):
        raise MorError("--ref-column goes with --tacs (use --ref-label for labels).")
    return FitRequest(
        model=args.model,
        reference=args.ref_column
        if args.tacs is not None
        else _label_or_name(args.ref_label),
        tacs_path=optional_str(args.tacs),
        windows_min=tuple(tuple(w) for w in args.window or ()),
        two_scans=args.challenge_pet is not None,
        t_star_min=args.t_star,
        k2p_per_min=args.k2p,
        k2p_region=_label_or_name(args.k2p_region),
        weights=args.weights,
        n_theta=args.n_theta,
        theta_range_per_min=None
        if args.theta_range is None
        else tuple(args.theta_range),
        mask=args.mask,
        rois_only=args.rois_only or args.tacs is not None,
        pet_path=optional_str(args.pet),
        challenge_pet_path=optional_str(args.challenge_pet),
        labels_path=optional_str(args.labels),
        lut_path=optional_str(args.lut),
        ref_mask_path=optional_str(args.ref_mask),
        frames_path=optional_str(args.frames),
        units=args.units,
        out=optional_str(args.out),
        pvc=args.pvc,
        psf_fwhm_mm=psf_from_args(args),
        challenge_onset_min=args.challenge_onset,
        denoise=args.denoise,
        denoise_fwhm_mm=args.denoise_fwhm,
        bids_out=optional_str(getattr(args, "bids_out", None)),
    )


def _check_out(out: str, rois_only: bool) -> None:
    name = out.lower()
    if rois_only and not name.endswith(".tsv"):
        raise MorError(f"With --rois-only the output must be a .tsv file; got {out}.")
    if not rois_only and not name.endswith((".nii", ".nii.gz")):
        raise MorError(
            f"A map output must end in .nii.gz or .nii; got {out} (for an ROI table "
            "add --rois-only and use .tsv)."
        )


def _check_not_inputs(request) -> None:
    """Refuse any output (map, parameter map, sidecar) that is one of the inputs."""
    from napari_mor.io.outputs import check_outputs
    from napari_mor.workflows.map_outputs import fit_output_paths, roi_table_path

    inputs = {
        "PET": request.pet_path,
        "--challenge-pet": request.challenge_pet_path,
        "--labels": request.labels_path,
        "--lut": request.lut_path,
        "--ref-mask": request.ref_mask_path,
        "--frames": request.frames_path,
        "--tacs": request.tacs_path,
        "--mask": None if request.mask == "uptake" else request.mask,
    }
    flag = "--bids-out" if request.bids_out else "--out"
    if request.rois_only:
        outputs = {flag: roi_table_path(request)}
    else:
        paths = fit_output_paths(request, request.conditions)
        outputs = {
            f"{flag} ({c} {tag or 'BP_ND'} map)": path
            for (c, tag), path in paths.items()
        }
    check_outputs(inputs, outputs)
    if request.bids_out:
        _check_bids_out_not_raw(request)


def _check_bids_out_not_raw(request) -> None:
    """Derivatives go beside the raw data (``derivatives/``), never into it."""
    root = Path(request.bids_out).resolve()
    for path in (request.pet_path, request.challenge_pet_path, request.labels_path):
        if path and root in Path(path).resolve().parents:
            raise MorError(
                f"--bids-out {request.bids_out} holds the input {path}; write "
                "derivatives to their own folder, e.g. DATASET/derivatives/napari-mor."
            )


def run(args: argparse.Namespace) -> int:
    """Fit ROIs (``--rois-only``) or maps and print what was used and written."""
    from napari_mor.workflows.fit import load_fit_data

    request = request_from_args(args)
    if request.bids_out is None:
        _check_out(request.out, request.rois_only)
    _check_not_inputs(request)
    if request.tacs_path:
        from napari_mor.workflows.fit import fit_rois_from_table

        _write_roi_table(request, fit_rois_from_table(request))
        return 0
    data = load_fit_data(request)
    if request.rois_only:
        _fit_rois(request, data)
    else:
        _fit_maps(request, data)
    return 0


def _fit_rois(request, data) -> None:
    from napari_mor.workflows.fit import fit_rois

    _write_roi_table(request, fit_rois(request, data))


def _write_roi_table(request, result) -> None:
    from napari_mor.workflows.map_outputs import write_roi_table

    _warn(result.warnings)
    _note_windowed_one_scan(request)
    path = write_roi_table(request, result)
    print(
        f"{request.model}: fitted {len(result.labels)} ROIs x "
        f"{len(result.fits)} condition(s); reference {result.reference}; "
        f"{_k2p_text(result.k2p)} -> {path}"
    )


def _note_windowed_one_scan(request) -> None:
    """Say what windowed fits of one scan assume (and what to use instead)."""
    import sys

    from napari_mor.workflows.validity import WINDOWED_ONE_SCAN_NOTE

    if len(request.windows_min) > 1:
        print(f"napari-mor fit: note: {WINDOWED_ONE_SCAN_NOTE}", file=sys.stderr)


def _warn(warnings) -> None:
    import sys

    for text in warnings:
        print(f"napari-mor fit: warning: {text}", file=sys.stderr)


def _k2p_text(k2p) -> str:
    if k2p.value is None:
        return "no k2'"
    return f"k2' = {k2p.value:.4g} /min ({k2p.source})"


def _fit_maps(request, data) -> None:
    import numpy as np

    from napari_mor.workflows.fit_maps import fit_maps_now, plan_maps, write_fit_maps

    plan = plan_maps(request, data)
    _warn(plan.warnings)
    _note_windowed_one_scan(request)
    results = fit_maps_now(plan)
    written = write_fit_maps(plan, results, request.out)
    t_stars = {r.t_star_min for r in results.values() if np.isfinite(r.t_star_min)}
    failed = sum(r.n_failed for r in results.values())
    used = [_k2p_text(plan.k2p)]
    if t_stars:
        used.append("t* = " + ", ".join(f"{t:g}" for t in sorted(t_stars)) + " min")
    print(
        f"{request.model}: {plan.n_voxels} voxels x {len(results)} condition(s), "
        f"{failed} failed; reference {data.reference_description}; "
        + "; ".join(used)
        + " -> "
        + ", ".join(str(p) for p in written)
    )
