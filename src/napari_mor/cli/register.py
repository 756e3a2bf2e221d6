"""``napari-mor register {motion,coreg,normalize,apply}``: parsers and runner.

SimpleITK, nibabel and nilearn are imported inside :func:`run_register` so that
``napari-mor --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_mor._errors import MorError
from napari_mor.cli._common import add_pet_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``register`` and its four sub-commands to argparse sub-parsers."""
    register = subparsers.add_parser(
        "register",
        help="motion correction, PET->MR coregistration, MR->MNI, apply transforms",
        description=(
            "Registration with SimpleITK (mutual information). Transforms map the "
            "fixed world to the moving world (mm) and are written as ITK .tfm (or "
            "4x4 .txt) with a JSON beside them. Times are minutes from injection."
        ),
    )
    modes = register.add_subparsers(dest="register_mode", metavar="MODE", required=True)

    motion = modes.add_parser(
        "motion",
        help="rigid frame-by-frame motion correction of dynamic PET",
        description=(
            "Register each frame rigidly to the mean of the reference frames and "
            "write the corrected PET (NIfTI + sidecar) and a motion trace TSV. "
            "Early and low-count frames are left as they are and reported."
        ),
    )
    motion.add_argument("pet", type=Path, help="4D PET NIfTI (JSON sidecar beside it)")
    motion.add_argument("--out", type=Path, required=True, help="corrected PET .nii.gz")
    motion.add_argument("--trace", type=Path, help="motion trace TSV (one row a frame)")
    motion.add_argument(
        "--reference",
        nargs=2,
        type=float,
        default=(20.0, 90.0),
        metavar=("START", "END"),
        help="reference frames window, minutes (default 20 90)",
    )
    motion.add_argument(
        "--min-start",
        type=float,
        default=2.0,
        metavar="MIN",
        help="leave frames starting before MIN minutes alone (default 2)",
    )
    motion.add_argument(
        "--passes",
        type=int,
        choices=(1, 2),
        default=2,
        help="2 (default): re-register to the mean of the corrected frames",
    )
    add_pet_args(motion)

    coreg = modes.add_parser(
        "coreg",
        help="rigid PET->MR coregistration (mean PET of chosen frames -> T1)",
        description=(
            "Rigid registration of the mean PET (frames whose mid-time lies in "
            "--window START END, minutes) onto the T1. The transform maps MR world "
            "-> PET world: 'register apply PET --transform XFM --reference MR' "
            "brings PET onto the MR grid; add --inverse to bring MR-space labels "
            "onto the PET grid."
        ),
    )
    coreg.add_argument("pet", type=Path, help="4D (or 3D static) PET NIfTI")
    coreg.add_argument("mr", type=Path, help="T1-weighted MR NIfTI")
    coreg.add_argument("--out", type=Path, required=True, help="XFM.tfm or XFM.txt")
    coreg.add_argument(
        "--window",
        nargs=2,
        type=float,
        default=(20.0, 90.0),
        metavar=("START", "END"),
        help="frames averaged for the mean PET, minutes from injection (default 20 90)",
    )
    add_pet_args(coreg)
    coreg.add_argument(
        "--init",
        choices=("header", "geometry", "moments"),
        default="header",
        help="start from the headers (default), grid centres or centres of mass",
    )
    coreg.add_argument(
        "--resliced", type=Path, help="also write the mean PET resliced onto the MR"
    )

    normalize = modes.add_parser(
        "normalize",
        help="affine MR->MNI152 normalisation (nilearn's offline template)",
        description=(
            "Affine (12-parameter) registration of the T1 onto the MNI152 2 mm "
            "template. The transform maps MNI world -> MR world. No non-linear warp."
        ),
    )
    normalize.add_argument("mr", type=Path, help="T1-weighted MR NIfTI")
    normalize.add_argument("--out", type=Path, required=True, help="XFM.tfm or .txt")
    normalize.add_argument(
        "--mask", type=Path, help="brain mask of the MR (recommended)"
    )
    normalize.add_argument(
        "--template", type=Path, help="template NIfTI instead of MNI152 2 mm"
    )
    normalize.add_argument(
        "--resliced", type=Path, help="also write the MR resliced into template space"
    )

    apply = modes.add_parser(
        "apply",
        help="resample an image or label image through a transform",
        description=(
            "Resample IMAGE onto the grid of REFERENCE through a transform that maps "
            "reference world -> image world (use --inverse for the other direction). "
            "Maps are interpolated linearly, label images (--labels) by nearest "
            "neighbour; 4D images frame by frame."
        ),
    )
    apply.add_argument("image", type=Path, help="image to resample (3D or 4D)")
    apply.add_argument("--transform", type=Path, required=True, help=".tfm or .txt")
    apply.add_argument("--reference", type=Path, required=True, help="target grid")
    apply.add_argument("--out", type=Path, required=True, help="output .nii.gz")
    apply.add_argument("--labels", action="store_true", help="nearest neighbour")
    apply.add_argument("--inverse", action="store_true", help="invert the transform")
    register.set_defaults(run=run_register)
    return register


def run_register(args: argparse.Namespace) -> int:
    """Run ``napari-mor register MODE`` (bad input: MorError, exit 2 in main)."""
    runner = {
        "motion": _motion,
        "coreg": _coreg,
        "normalize": _normalize,
        "apply": _apply,
    }[args.register_mode]
    runner(args)
    return 0


def _check_transform_name(out: Path) -> None:
    if not out.name.lower().endswith((".tfm", ".txt", ".mat")):
        raise MorError(f"--out {out} must end in .tfm (ITK) or .txt (4x4 matrix).")


def _check_image_name(option: str, path: Path | None) -> None:
    """An image output must be NIfTI (checked before any work is done)."""
    if path is not None and not path.name.lower().endswith((".nii", ".nii.gz")):
        raise MorError(f"{option} {path} must end in .nii.gz or .nii.")


def _check_window(option: str, window) -> None:
    """A window of minutes from injection: finite, 0 <= start < end."""
    import math

    start, end = (float(v) for v in window)
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
        raise MorError(
            f"{option} {start:g} {end:g} is invalid: need 0 <= START < END "
            "(minutes from injection), e.g. 20 90."
        )


def _transform_json(path: Path) -> Path:
    """The JSON summary written beside a transform (``XFM.tfm`` -> ``XFM.json``)."""
    return path.with_suffix(".json")


def _check_paths(inputs: dict, outputs: dict) -> None:
    """The one output check of a register mode: no output is an input (or its
    sidecar, LUT, transform summary) and no two outputs share a file."""
    from napari_mor.io.outputs import check_outputs

    check_outputs(inputs, outputs)


def _provenance(kind: str, inputs: list[Path], extra: dict) -> dict:
    from napari_mor.io import file_sha256

    return {
        "Registration": kind,
        "Library": _library_version(),
        "Inputs": {str(p): file_sha256(p) for p in inputs if p is not None},
        **extra,
    }


def _library_version() -> str:
    from napari_mor.registration._sitk import _sitk

    return f"SimpleITK {_sitk().Version.VersionString()}"


def _motion(args) -> None:
    from napari_mor.io import load_pet, write_pet
    from napari_mor.registration import correct_motion

    _check_image_name("--out", args.out)
    if args.trace is not None and not args.trace.name.lower().endswith(".tsv"):
        raise MorError(f"--trace {args.trace} must end in .tsv (a table).")
    _check_window("--reference", args.reference)
    if not args.min_start >= 0:
        raise MorError(f"--min-start must be >= 0 minutes; got {args.min_start:g}.")
    _check_paths(
        {"PET": args.pet, "--frames": args.frames},
        {"--out": args.out, "--trace": args.trace},
    )
    pet = load_pet(args.pet, frames_tsv=args.frames, units=args.units)
    result = correct_motion(
        pet,
        reference_window_min=tuple(args.reference),
        min_frame_start_min=args.min_start,
        passes=args.passes,
    )
    provenance = _provenance(
        "motion correction (rigid, per frame)",
        [args.pet, args.frames],
        {"ElapsedSeconds": round(result.elapsed_s, 2)},
    )
    write_pet(args.out, result.corrected, provenance)
    if args.trace is not None:
        from napari_mor.io.tables import write_rows_tsv

        columns = result.trace_columns(pet.timing)
        rows = [
            dict(zip(columns, row, strict=True))
            for row in zip(*columns.values(), strict=True)
        ]
        write_rows_tsv(rows, list(columns), args.trace)
    left = result.left_alone
    print(
        f"wrote {args.out}: {int(result.registered.sum())} of {pet.n_frames} frames "
        f"registered in {result.elapsed_s:.1f} s; max mean displacement "
        f"{_nanmax(result.displacement_mm):.2f} mm; left alone: "
        f"{sorted(left) if left else 'none'}"
    )


def _nanmax(values) -> float:
    import numpy as np

    return float(np.nanmax(values)) if np.any(np.isfinite(values)) else 0.0


def _coreg(args) -> None:
    from napari_mor.io import load_pet, load_volume, write_nifti
    from napari_mor.io._nifti import load_image
    from napari_mor.registration import (
        coregister_pet_to_mr,
        mean_pet_image,
        resample_map,
        save_transform,
    )

    _check_transform_name(args.out)
    _check_image_name("--resliced", args.resliced)
    _check_window("--window", args.window)
    _check_paths(
        {"PET": args.pet, "MR": args.mr, "--frames": args.frames},
        {
            "--out": args.out,
            "--out (its JSON summary)": _transform_json(args.out),
            "--resliced": args.resliced,
        },
    )
    if len(load_image(args.pet).shape) == 4:
        pet = load_pet(args.pet, frames_tsv=args.frames, units=args.units)
        moving = mean_pet_image(pet, tuple(args.window))
    else:
        moving = load_volume(args.pet)
    mr = load_volume(args.mr)
    result = coregister_pet_to_mr(moving, mr, initialize=args.init)
    save_transform(result.transform, args.out)
    from napari_mor.io import write_json

    write_json(
        _transform_json(args.out),
        {
            **result.summary(),
            **_provenance(
                "PET->MR rigid", [args.pet, args.mr], {"WindowMin": list(args.window)}
            ),
        },
    )
    if args.resliced is not None:
        data = resample_map(
            moving.data, moving.affine, result.transform, mr.data.shape, mr.affine
        )
        write_nifti(args.resliced, data, mr.affine, {"Transform": str(args.out)})
    params = result.transform.rigid_parameters()
    print(
        f"wrote {args.out}: MR->PET rigid, translation "
        f"{_fmt(params['translation_mm'])} mm, rotation "
        f"{_fmt(params['rotation_deg'])} deg, {result.elapsed_s:.1f} s"
    )


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def _normalize(args) -> None:
    from napari_mor.io import load_volume, write_json, write_nifti
    from napari_mor.registration import normalize_to_mni, resample_map, save_transform

    _check_transform_name(args.out)
    _check_image_name("--resliced", args.resliced)
    _check_paths(
        {"MR": args.mr, "--mask": args.mask, "--template": args.template},
        {
            "--out": args.out,
            "--out (its JSON summary)": _transform_json(args.out),
            "--resliced": args.resliced,
        },
    )
    mr = load_volume(args.mr)
    mask = None
    if args.mask is not None:
        mask_volume = load_volume(args.mask)
        if mask_volume.data.shape != mr.data.shape:
            raise MorError(
                f"The mask {args.mask} has shape {mask_volume.data.shape} but the MR "
                f"has {mr.data.shape}; give a brain mask on the MR grid."
            )
        mask = mask_volume.data > 0
    template = load_volume(args.template) if args.template else None
    kwargs = {"mr_mask": mask}
    if template is not None:
        kwargs.update(template=template, template_space=args.template.name)
    result = normalize_to_mni(mr, **kwargs)
    save_transform(result.transform, args.out)
    write_json(
        _transform_json(args.out),
        {
            **result.summary(),
            **_provenance(
                "MR->MNI affine",
                [args.mr, args.mask, args.template],
                {"Template": str(args.template or "nilearn MNI152 2 mm")},
            ),
        },
    )
    if args.resliced is not None:
        from napari_mor.registration import mni_template

        grid = template or mni_template(2)
        data = resample_map(
            mr.data, mr.affine, result.transform, grid.data.shape, grid.affine
        )
        write_nifti(args.resliced, data, grid.affine, {"Transform": str(args.out)})
    import numpy as np

    det = float(np.linalg.det(result.transform.matrix[:3, :3]))
    print(
        f"wrote {args.out}: MNI->MR affine (volume ratio {det:.3f}), "
        f"{result.elapsed_s:.1f} s"
    )


def _apply(args) -> None:
    import numpy as np

    from napari_mor.io import write_nifti
    from napari_mor.io._nifti import affine_of, load_image, read_data, sidecar_path_for
    from napari_mor.io.timing import read_sidecar
    from napari_mor.registration import (
        load_transform,
        resample_label_data,
        resample_map,
    )

    _check_image_name("--out", args.out)
    summary = _transform_json(args.transform)
    _check_paths(
        {
            "IMAGE": args.image,
            "--transform": args.transform,
            "--transform (its JSON summary)": summary if summary.is_file() else None,
            "--reference": args.reference,
        },
        {"--out": args.out},
    )
    transform = load_transform(args.transform)
    if args.inverse:
        transform = transform.inverse()
    image = load_image(args.image)
    data = read_data(image, args.image)
    affine = affine_of(image, args.image)
    reference = load_image(args.reference)
    ref_affine = affine_of(reference, args.reference)
    if len(reference.shape) not in (3, 4):
        raise MorError(
            f"--reference {args.reference} has shape {tuple(reference.shape)}; a 3D "
            "image (the target grid) was expected."
        )
    ref_shape = tuple(int(n) for n in reference.shape[:3])
    if data.ndim not in (3, 4):
        raise MorError(
            f"{args.image} has shape {data.shape}; a 3D or 4D image was expected."
        )
    if args.labels and data.ndim != 3:
        raise MorError("--labels needs a 3D label image.")
    # dynamic PET keeps its frame timing: the sidecar is read (strictly) before
    # anything is written, and lands with the image as one pair
    sidecar = sidecar_path_for(args.image)
    timing = read_sidecar(sidecar) if data.ndim == 4 and sidecar.is_file() else {}
    provenance = {
        **timing,
        **_provenance(
            "apply transform",
            [args.image, args.transform, args.reference],
            {"Inverse": bool(args.inverse), "Labels": bool(args.labels)},
        ),
    }
    if args.labels:
        out = resample_label_data(
            np.round(data).astype(np.int32), affine, transform, ref_shape, ref_affine
        )
        write_nifti(args.out, out, ref_affine, provenance, np.int32)
    else:
        moved = data if data.ndim == 3 else np.moveaxis(data, 3, 0)
        out = resample_map(moved, affine, transform, ref_shape, ref_affine)
        if out.ndim == 4:
            out = np.moveaxis(out, 0, 3)
        write_nifti(args.out, out, ref_affine, provenance)
    print(f"wrote {args.out}: shape {out.shape} on the grid of {args.reference}")
