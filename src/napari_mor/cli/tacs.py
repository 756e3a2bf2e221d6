"""``napari-mor tacs``: regional TACs as a TSV table."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_mor._errors import MorError
from napari_mor.cli._common import add_pet_args
from napari_mor.cli.fit import add_pvc_args, psf_from_args


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``tacs`` sub-command."""
    tacs = commands.add_parser(
        "tacs",
        help="regional TACs (mean, SD, voxel count per frame) from a label image",
        description=(
            "Mean, SD and voxel count per label and frame. The labels must be on "
            "the PET grid. Output TSV: frame_start, frame_end (s), then NAME, "
            "NAME_sd, NAME_n per region (kBq/mL)."
        ),
    )
    tacs.add_argument(
        "pet", type=Path, help="4D PET NIfTI (sidecar beside it) or ECAT .v"
    )
    tacs.add_argument(
        "--labels", type=Path, required=True, help="label NIfTI on the PET grid"
    )
    tacs.add_argument(
        "--lut", type=Path, help="lookup table (TSV index/name or FreeSurfer)"
    )
    add_pet_args(tacs)
    add_pvc_args(tacs, ("none", "gtm"))
    tacs.add_argument("--out", type=Path, required=True, help="output TSV")
    tacs.set_defaults(run=run)
    return tacs


def run(args: argparse.Namespace) -> int:
    """Write regional TACs as TSV."""
    from napari_mor.io import load_labels, load_pet
    from napari_mor.io.outputs import check_outputs
    from napari_mor.rois import extract_tacs, write_tacs_tsv

    if not args.out.name.lower().endswith(".tsv"):
        raise MorError(
            f"--out {args.out} must end in .tsv: 'tacs' writes a tab-separated "
            "table (one row per frame)."
        )
    check_outputs(
        {
            "PET": args.pet,
            "--labels": args.labels,
            "--lut": args.lut,
            "--frames": args.frames,
        },
        {"--out": args.out},
    )
    pet = load_pet(args.pet, frames_tsv=args.frames, units=args.units)
    labels = load_labels(args.labels, args.lut)
    psf = psf_from_args(args)
    if args.pvc == "none":
        if psf is not None:
            raise MorError(
                "--psf-fwhm goes with --pvc gtm; add --pvc gtm or drop --psf-fwhm."
            )
        table, how = extract_tacs(pet, labels), ""
    else:
        from napari_mor.pvc import gtm_tacs, psf_fwhm_per_axis

        fwhm = psf_fwhm_per_axis(psf)  # MorError when missing or <= 0
        result = gtm_tacs(pet, labels, psf)
        table = result.table
        how = (
            f", GTM partial-volume corrected at PSF "
            f"{'x'.join(f'{v:g}' for v in fwhm)} mm FWHM "
            f"(condition number {result.condition_number:.3g}; SD columns NaN)"
        )
    write_tacs_tsv(table, args.out)
    print(
        f"wrote {args.out}: {pet.n_frames} frames x {len(table.names)} regions "
        f"({', '.join(table.names)}){how}"
    )
    return 0
