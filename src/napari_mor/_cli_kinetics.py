"""``napari-mor fit`` and ``napari-mor delta``: argument parsers and runners.

Heavy modules (nibabel through ``napari_mor.io``) are imported inside the
runners so that ``napari-mor --help`` stays fast.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError

#: Map names written beside the BP_ND map: OUT_<suffix>.nii.gz.
_EXTRA_MAP_SUFFIX = {"r1": "R1", "k2_per_min": "k2", "k2p_per_min": "k2p", "dvr": "DVR"}

#: Help of the ``--units`` option of the commands that read PET.
UNITS_HELP = (
    "activity unit of the stored values when the file does not say "
    "(Bq/mL, kBq/mL, MBq/mL, nCi/mL, uCi/mL; e.g. for ECAT)"
)

#: Columns of the ``fit --rois-only`` table.
ROI_COLUMNS = (
    "name",
    "label",
    "model",
    "BP_ND",
    "BP_ND_se",
    "R1",
    "k2",
    "k2p",
    "t_star_min",
    "n_frames",
    "r2",
)


def add_fit_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``fit`` sub-command to an argparse sub-parsers object."""
    from napari_mor.kinetics import MODEL_NAMES

    fit = subparsers.add_parser(
        "fit",
        help="fit a reference-region model: BP_ND map or ROI table",
        description=(
            "Fit a reference-region kinetic model to dynamic PET. Writes a BP_ND map "
            "(OUT.nii.gz, other parameters as OUT_R1.nii.gz, OUT_k2.nii.gz, ...) or, "
            "with --rois-only, a TSV with one row per label. Times in minutes from "
            "injection. Maps use a brain mask (--mask; default with --labels: all "
            "labelled voxels). 'srtm' is ROI-only; use 'srtm-bf' for maps."
        ),
    )
    fit.add_argument("pet", type=Path, help="4D PET NIfTI (JSON sidecar beside it)")
    ref = fit.add_mutually_exclusive_group(required=True)
    ref.add_argument(
        "--ref-mask", type=Path, help="reference-region mask on the PET grid"
    )
    ref.add_argument("--labels", type=Path, help="label image on the PET grid")
    fit.add_argument("--lut", type=Path, help="lookup table for --labels")
    fit.add_argument(
        "--ref-label", type=int, help="reference label value (with --labels)"
    )
    fit.add_argument("--model", required=True, choices=MODEL_NAMES)
    fit.add_argument(
        "--window",
        nargs=2,
        type=float,
        metavar=("START", "END"),
        help="condition window, minutes (frames by mid-time)",
    )
    fit.add_argument(
        "--t-star", type=float, dest="t_star", metavar="MIN", help="t*, minutes"
    )
    fit.add_argument(
        "--k2p", type=float, metavar="VALUE", help="k2' (1/min) for mrtm2/srtm2/logan"
    )
    fit.add_argument("--mask", type=Path, help="brain mask for maps (on the PET grid)")
    fit.add_argument(
        "--rois-only", action="store_true", help="fit label means, write a TSV"
    )
    fit.add_argument(
        "--frames", type=Path, help="frames TSV (frame_start, frame_duration, s)"
    )
    fit.add_argument("--units", help=UNITS_HELP)
    fit.add_argument(
        "--weights",
        choices=("none", "duration", "noise"),
        default="none",
        help="frame weighting (default none)",
    )
    fit.add_argument("--out", type=Path, required=True, help="OUT.nii.gz or OUT.tsv")
    fit.set_defaults(run=run_fit)
    return fit


def add_delta_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``delta`` sub-command to an argparse sub-parsers object."""
    delta = subparsers.add_parser(
        "delta",
        help="delta-BP = baseline - challenge (positive = activation)",
        description=(
            "Delta-BP_ND = BP_baseline - BP_challenge; positive values mean reduced "
            "receptor availability during the challenge (endogenous opioid release). "
            "--percent writes 100 * delta / BP_baseline (NaN where BP_baseline < "
            "--min-bp-base)."
        ),
    )
    delta.add_argument("baseline", type=Path, help="baseline BP_ND map")
    delta.add_argument("challenge", type=Path, help="challenge BP_ND map")
    delta.add_argument("--out", type=Path, required=True, help="delta-BP map (.nii.gz)")
    delta.add_argument("--percent", type=Path, help="percent delta-BP map (.nii.gz)")
    delta.add_argument(
        "--min-bp-base",
        type=float,
        default=0.1,
        help="minimum baseline BP_ND for percent delta-BP (default 0.1)",
    )
    delta.set_defaults(run=run_delta)
    return delta


def run_fit(args: argparse.Namespace) -> int:
    """Run ``napari-mor fit``; returns the exit status (2 on bad input)."""
    try:
        _fit(args)
    except MorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def run_delta(args: argparse.Namespace) -> int:
    """Run ``napari-mor delta``; returns the exit status (2 on bad input)."""
    try:
        _delta(args)
    except MorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _check_out(out: Path, rois_only: bool) -> None:
    name = out.name.lower()
    if rois_only and not name.endswith(".tsv"):
        raise MorError(f"With --rois-only the output must be a .tsv file; got {out}.")
    if not rois_only and not name.endswith((".nii", ".nii.gz")):
        raise MorError(
            f"A map output must end in .nii.gz or .nii; got {out} (for an ROI table "
            "add --rois-only and use .tsv)."
        )


def _same_grid(image, pet, what: str) -> None:
    if image.data.shape != pet.data.shape[1:] or not np.allclose(
        image.affine, pet.affine, atol=1e-3
    ):
        raise MorError(
            f"{what} ({image.path}) has shape {image.data.shape} and a different grid "
            f"than the PET {pet.data.shape[1:]}; resample it onto the PET grid first."
        )


def _load_inputs(args):
    """PET, reference TAC and description, label image (or None), input files."""
    from napari_mor.io import load_labels, load_pet, load_volume
    from napari_mor.rois import mask_mean_tac

    pet = load_pet(args.pet, frames_tsv=args.frames, units=args.units)
    pet.require_decay_corrected()
    inputs = [args.pet] + [p for p in (args.frames, args.lut, args.mask) if p]
    labels = None
    if args.labels is not None:
        if args.ref_label is None:
            raise MorError(
                "--labels needs --ref-label N (the reference region's label)."
            )
        labels = load_labels(args.labels, args.lut)
        _same_grid(labels, pet, "Label image")
        ref_mask = labels.data == args.ref_label
        ref_name = f"label {args.ref_label} ({labels.name_of(args.ref_label)})"
        inputs.append(args.labels)
    else:
        if args.rois_only:
            raise MorError("--rois-only needs --labels (the ROIs to fit).")
        if args.ref_label is not None or args.lut is not None:
            raise MorError(
                "--ref-label and --lut go with --labels; with --ref-mask the mask "
                "itself is the reference. Drop them or use --labels."
            )
        volume = load_volume(args.ref_mask)
        _same_grid(volume, pet, "Reference mask")
        ref_mask = volume.data > 0
        ref_name = f"mask {args.ref_mask.name}"
        inputs.append(args.ref_mask)
    ref = mask_mean_tac(pet, ref_mask, f"Reference region {ref_name}")
    return pet, ref, ref_name, labels, inputs


def _options(args) -> dict:
    return {
        "window": None if args.window is None else tuple(args.window),
        "t_star_min": args.t_star,
        "k2p_per_min": args.k2p,
        "weights": args.weights,
    }


def _fit(args) -> None:
    _check_out(args.out, args.rois_only)
    if args.rois_only and args.mask is not None:
        raise MorError(
            "--mask restricts voxelwise maps; --rois-only fits the label means. "
            "Drop one of them."
        )
    pet, ref, ref_name, labels, inputs = _load_inputs(args)
    if args.rois_only:
        _fit_rois(args, pet, ref, labels)
    else:
        _fit_map(args, pet, ref, ref_name, labels, inputs)


def _fit_rois(args, pet, ref, labels) -> None:
    from napari_mor.kinetics import fit_roi
    from napari_mor.rois import mask_mean_tac

    roi_labels = [int(v) for v in labels.present_labels if int(v) != args.ref_label]
    if not roi_labels:
        raise MorError(
            "The label image has no labels besides the reference; nothing to fit."
        )
    names = [labels.name_of(v) for v in roi_labels]
    tacs = np.stack(
        [mask_mean_tac(pet, labels.data == v, f"Label {v}") for v in roi_labels], axis=1
    )
    fits = fit_roi(tacs, ref, pet.timing, args.model, names=names, **_options(args))
    rows = [
        {**fit.as_row(), "label": v} for fit, v in zip(fits, roi_labels, strict=True)
    ]
    _write_tsv(args.out, rows)
    print(f"{args.model}: fitted {len(rows)} ROIs -> {args.out}")


def _write_tsv(path: Path, rows: list[dict]) -> None:
    from napari_mor.io.writers import _atomic_write

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(
                handle, ROI_COLUMNS, delimiter="\t", extrasaction="ignore"
            )
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row[k]) for k in ROI_COLUMNS})

    _atomic_write(path, write)


def _fmt(value) -> str:
    if isinstance(value, float):
        return "NaN" if not np.isfinite(value) else f"{value:.6g}"
    return str(value)


def _fit_map(args, pet, ref, ref_name, labels, inputs) -> None:
    from napari_mor.io import load_volume
    from napari_mor.kinetics import fit_maps
    from napari_mor.maps import map_provenance, write_map

    if args.mask is not None:
        volume = load_volume(args.mask)
        _same_grid(volume, pet, "Brain mask")
        mask = volume.data > 0
    elif labels is not None:
        mask = labels.data > 0
    else:
        raise MorError(
            "A map needs a brain mask: pass --mask BRAIN.nii.gz (or --labels, whose "
            "labelled voxels are then used)."
        )
    result = fit_maps(pet.data, mask, ref, pet.timing, args.model, **_options(args))
    prov = map_provenance(result, reference_region=ref_name, input_files=inputs)
    written = [
        write_map(
            args.out, result.maps["bp_nd"], pet.affine, {**prov, "Quantity": "bp_nd"}
        )
    ]
    for name, data in result.maps.items():
        if name in _EXTRA_MAP_SUFFIX:
            path = _extra_map_path(args.out, _EXTRA_MAP_SUFFIX[name])
            written.append(
                write_map(path, data, pet.affine, {**prov, "Quantity": name})
            )
    used = [
        f"{label} = {value:g} {unit}"
        for label, value, unit in (
            ("t*", result.t_star_min, "min"),
            ("k2'", result.k2p_per_min, "/min"),
        )
        if np.isfinite(value)
    ]
    print(
        f"{args.model}: {result.n_voxels} voxels, {result.n_failed} failed"
        + (f"; {', '.join(used)}" if used else "")
        + " -> "
        + ", ".join(str(p) for p in written)
    )


def _extra_map_path(out: Path, tag: str) -> Path:
    """``OUT.nii.gz`` -> ``OUT_<tag>.nii.gz`` (same for ``.nii``)."""
    name = out.name
    suffix = ".nii.gz" if name.lower().endswith(".nii.gz") else ".nii"
    return out.with_name(f"{name[: -len(suffix)]}_{tag}{name[-len(suffix) :]}")


def _read_bp_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A 3-D BP map and its affine, keeping NaN (no value) as NaN."""
    from napari_mor.io import load_volume

    bp_map = load_volume(path, keep_nan=True)
    return bp_map.data, bp_map.affine


def _sidecar_of(path: Path) -> dict | None:
    """The provenance sidecar of an input map (model, reference, windows, ...)."""
    import json

    from napari_mor.io._nifti import strip_image_suffix

    sidecar = strip_image_suffix(path).with_suffix(".json")
    try:
        return json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _delta(args) -> None:
    from napari_mor.maps import delta_bp, map_provenance, pct_delta_bp, write_map

    for out in (args.out, args.percent):
        if out is not None and not out.name.lower().endswith((".nii", ".nii.gz")):
            raise MorError(f"Output {out} must end in .nii.gz or .nii.")
    base, base_affine = _read_bp_map(args.baseline)
    chal, chal_affine = _read_bp_map(args.challenge)
    if not np.allclose(base_affine, chal_affine, atol=1e-3):
        raise MorError(
            f"{args.baseline} and {args.challenge} have different affines (grids); "
            "both BP maps must be on the same PET grid."
        )
    prov = map_provenance(
        input_files=[args.baseline, args.challenge],
        Definition="BP_baseline - BP_challenge (positive = reduced availability)",
        Baseline=_sidecar_of(args.baseline),
        Challenge=_sidecar_of(args.challenge),
    )
    write_map(
        args.out,
        delta_bp(base, chal),
        base_affine,
        {**prov, "Quantity": "delta_bp_nd"},
    )
    if args.percent is not None:
        pct = pct_delta_bp(base, chal, args.min_bp_base)
        write_map(
            args.percent,
            pct,
            base_affine,
            {**prov, "Quantity": "pct_delta_bp_nd", "MinBPBase": args.min_bp_base},
        )
    print(
        f"delta-BP -> {args.out}"
        + (f", percent -> {args.percent}" if args.percent else "")
    )
