"""Registration benchmark: seconds and accuracy on the sample phantom.

Usage
-----
    python benchmarks/bench_registration.py [--out benchmarks/RESULTS_registration.md]
        [--cases DIR] [--repeats 1]

writes a Markdown table (seconds per registration, accuracy against the known
misalignment). ``--cases DIR`` also writes the PET->MR test cases as NIfTI
(fixed MR, misaligned mean PETs, truth matrices) so that other libraries can be
compared on the same data in another environment:

    python benchmarks/bench_registration.py --compare DIR

runs ANTsPy and dipy (if importable) on those files, prints a table and appends
it to ``--out``; it needs only numpy, nibabel and the libraries compared (no
napari-mor import).
Timings depend on the machine and on concurrent load: the numbers are honest
wall times of single runs, not minima.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

#: The PET->MR misalignments: 6 mm translation + 5 deg rotation (random axes).
N_COREG_CASES = 3


def _rigid(center, shift, rotvec_deg):
    from scipy.spatial.transform import Rotation

    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_rotvec(np.deg2rad(rotvec_deg)).as_matrix()
    matrix[:3, 3] = center - matrix[:3, :3] @ center + shift
    return matrix


def coreg_cases(center, seed=1):
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(N_COREG_CASES):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        shift = rng.normal(size=3)
        shift *= 6.0 / np.linalg.norm(shift)
        cases.append(_rigid(center, shift, 5.0 * axis))
    return cases


def angle_deg(a, b):
    delta = np.linalg.inv(a) @ b
    return float(
        np.rad2deg(np.arccos(np.clip((np.trace(delta[:3, :3]) - 1) / 2, -1, 1)))
    )


def mean_error_mm(found, truth, points):
    moved = points @ found[:3, :3].T + found[:3, 3]
    target = points @ truth[:3, :3].T + truth[:3, 3]
    return float(np.linalg.norm(moved - target, axis=1).mean())


def run_simpleitk(out: Path, cases_dir: Path | None) -> list[dict]:
    import SimpleITK as sitk

    from napari_mor.registration import (
        Transform,
        apply_frame_transforms,
        brain_points_mm,
        coregister_pet_to_mr,
        correct_motion,
        mean_displacement_mm,
        mean_pet_image,
        normalize_to_mni,
        resample_map,
    )
    from napari_mor.sample import make_sample_study
    from napari_mor.sample.phantom import BRAIN_CENTER_MM, REGIONS

    center = np.asarray(BRAIN_CENTER_MM, dtype=float)
    study = make_sample_study(seed=0)
    rows = []
    points_mr = brain_points_mm(study.mr.data, study.mr.affine)

    # --- motion correction: 28 frames, drift up to ~6.8 mm / 4 deg until 60 min
    pet = study.pet
    truth = []
    for mid in pet.timing.frame_mid_min:
        f = float(np.clip((mid - 3) / 40, 0, 1)) if mid < 60 else 0.0
        jump = 1.5 if 30 < mid < 60 else 0.0
        from scipy.spatial.transform import Rotation

        matrix = np.eye(4)
        rot = Rotation.from_euler("xyz", np.array([3.0, -2.0, 2.5]) * f, degrees=True)
        matrix[:3, :3] = rot.as_matrix()
        matrix[:3, 3] = (
            center - matrix[:3, :3] @ center + np.array([4.0, -3.0, 3.0]) * f + jump
        )
        truth.append(Transform(matrix))
    moved = apply_frame_transforms(pet, [t.inverse() for t in truth])
    points_pet = brain_points_mm(study.brain_mask.astype(float), pet.affine)
    for window, passes in (((60.0, 90.0), 2), ((20.0, 90.0), 2), ((20.0, 90.0), 1)):
        start = time.perf_counter()
        result = correct_motion(moved, reference_window_min=window, passes=passes)
        seconds = time.perf_counter() - start
        registered = np.flatnonzero(result.registered)
        if window == (60.0, 90.0):
            errors = [
                mean_displacement_mm(result.transforms[i], points_pet, truth[i])
                for i in registered
            ]
            angles = [
                angle_deg(result.transforms[i].matrix, truth[i].matrix)
                for i in registered
            ]
            note = "absolute error vs simulated motion (reference frames still)"
        else:
            # reference = mean of moving frames: accuracy up to a common offset
            residual = [
                np.linalg.inv(truth[i].matrix) @ result.transforms[i].matrix
                for i in registered
            ]
            common = residual[-1]
            errors = [mean_error_mm(r, common, points_pet) for r in residual]
            angles = [angle_deg(r, common) for r in residual]
            note = (
                "frames aligned to each other (relative to the last frame; the "
                "reference frames moved)"
            )
        rows.append(
            {
                "task": f"motion correction, 28 frames, reference {window[0]:g}-"
                f"{window[1]:g} min, {passes} pass(es) ({len(registered)} registered)",
                "seconds": seconds,
                "error_mm_mean": float(np.mean(errors)),
                "error_mm_max": float(np.max(errors)),
                "angle_deg_max": float(np.max(angles)),
                "note": note,
            }
        )

    # --- PET -> MR: 6 mm + 5 deg, three random axes
    from dataclasses import replace

    mean = mean_pet_image(pet)
    for k, matrix in enumerate(coreg_cases(center)):
        misaligned = replace(pet, affine=matrix @ pet.affine)
        start = time.perf_counter()
        result = coregister_pet_to_mr(misaligned, study.mr)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "task": f"PET->MR rigid, 6 mm + 5 deg (case {k + 1})",
                "seconds": seconds,
                "error_mm_mean": mean_error_mm(
                    result.transform.matrix, matrix, points_mr
                ),
                "error_mm_max": float("nan"),
                "angle_deg_max": angle_deg(result.transform.matrix, matrix),
                "note": "mean displacement of brain points",
            }
        )
        if cases_dir is not None:
            import nibabel as nib

            cases_dir.mkdir(parents=True, exist_ok=True)
            nib.save(
                nib.Nifti1Image(mean.data, matrix @ pet.affine),
                cases_dir / f"pet_mean_case{k + 1}.nii.gz",
            )
            np.savetxt(cases_dir / f"truth_case{k + 1}.txt", matrix)
    if cases_dir is not None:
        import nibabel as nib

        nib.save(
            nib.Nifti1Image(study.mr.data, study.mr.affine), cases_dir / "mr.nii.gz"
        )
        np.savetxt(cases_dir / "brain_points_mm.txt", points_mr[::4])

    # --- MR -> template: known affine of the phantom MR; then the real MNI152
    from napari_mor.io import Volume

    linear = Rotation.from_euler("xyz", [6, -4, 3], degrees=True).as_matrix()
    affine_truth = np.eye(4)
    affine_truth[:3, :3] = linear @ np.diag([1.08, 0.95, 1.04])
    affine_truth[:3, 3] = center - affine_truth[:3, :3] @ center + [5.0, -4.0, 6.0]
    grid = np.array(
        [[2.0, 0, 0, -98], [0, 2.0, 0, -134], [0, 0, 2.0, -72], [0, 0, 0, 1]]
    )
    template = Volume(
        resample_map(
            study.mr.data, study.mr.affine, Transform(affine_truth), (99, 117, 95), grid
        ),
        grid,
    )
    centers = np.array([c for r in REGIONS for c in r.centers_mm], dtype=float)
    start = time.perf_counter()
    result = normalize_to_mni(study.mr, template=template)
    seconds = time.perf_counter() - start
    found = result.transform.apply(centers)
    target = Transform(affine_truth).apply(centers)
    errors = np.linalg.norm(found - target, axis=1)
    rows.append(
        {
            "task": "MR->template affine, known 12-parameter transform",
            "seconds": seconds,
            "error_mm_mean": float(errors.mean()),
            "error_mm_max": float(errors.max()),
            "angle_deg_max": float("nan"),
            "note": "error on the 12 region centroids",
        }
    )
    start = time.perf_counter()
    result = normalize_to_mni(study.mr)
    seconds = time.perf_counter() - start
    det = float(np.linalg.det(result.transform.matrix[:3, :3]))
    rows.append(
        {
            "task": "MR->MNI152 (nilearn 2 mm) affine, phantom head",
            "seconds": seconds,
            "error_mm_mean": float("nan"),
            "error_mm_max": float("nan"),
            "angle_deg_max": float("nan"),
            "note": f"no truth (phantom is no brain); volume ratio {det:.3f}",
        }
    )
    header = [
        f"# Registration benchmark (SimpleITK {sitk.Version.VersionString()})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other "
        "jobs: wall times are noisy), Python "
        f"{platform.python_version()}, SimpleITK threads "
        f"{sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}. Generated by "
        "`python benchmarks/bench_registration.py` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "Targets: motion correction of 28 frames < 60 s; coregistration < 20 s; "
        "accuracy 1 mm / 0.5 deg (PET), 3 mm on centroids (MR->template).",
        "",
        "| task | seconds | error mean (mm) | error max (mm) | angle max (deg) | "
        "note |",
        "|---|---|---|---|---|---|",
    ]
    lines = header + [
        f"| {r['task']} | {r['seconds']:.1f} | {_fmt(r['error_mm_mean'])} | "
        f"{_fmt(r['error_mm_max'])} | {_fmt(r['angle_deg_max'])} | {r['note']} |"
        for r in rows
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return rows


def _fmt(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.2f}"


def compare(cases_dir: Path, out: Path | None = None) -> None:
    """ANTsPy and dipy on the PET->MR cases written by ``--cases``.

    The table is printed and, when ``out`` exists, appended to it.
    """
    import nibabel as nib

    points = np.loadtxt(cases_dir / "brain_points_mm.txt")
    mr_img = nib.load(cases_dir / "mr.nii.gz")
    cases = sorted(cases_dir.glob("pet_mean_case*.nii.gz"))
    rows = []
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    try:
        import ants

        fixed = ants.image_read(str(cases_dir / "mr.nii.gz"))
        for case in cases:
            k = case.name.split("case")[1].split(".")[0]
            truth = np.loadtxt(cases_dir / f"truth_case{k}.txt")
            moving = ants.image_read(str(case))
            start = time.perf_counter()
            reg = ants.registration(
                fixed, moving, type_of_transform="Rigid", aff_metric="mattes"
            )
            seconds = time.perf_counter() - start
            tx = ants.read_transform(reg["fwdtransforms"][0])
            base = np.vstack([np.zeros(3), np.eye(3)])
            mapped = np.array([tx.apply_to_point(tuple(p)) for p in base])
            lps = np.eye(4)
            lps[:3, 3] = mapped[0]
            lps[:3, :3] = (mapped[1:] - mapped[0]).T
            found = flip @ lps @ flip
            rows.append(("ANTsPy Rigid (mattes)", k, seconds, found, truth))
    except ImportError:
        print("ANTsPy not importable; skipped")
    try:
        from dipy.align.imaffine import AffineRegistration, MutualInformationMetric
        from dipy.align.transforms import RigidTransform3D

        static = np.asarray(mr_img.dataobj, dtype=np.float32)
        for case in cases:
            k = case.name.split("case")[1].split(".")[0]
            truth = np.loadtxt(cases_dir / f"truth_case{k}.txt")
            moving_img = nib.load(case)
            moving = np.asarray(moving_img.dataobj, dtype=np.float32)
            start = time.perf_counter()
            registration = AffineRegistration(
                metric=MutualInformationMetric(nbins=32, sampling_proportion=None),
                level_iters=[200, 100],
                sigmas=[2.0, 1.0],
                factors=[4, 2],
                verbosity=0,
            )
            mapping = registration.optimize(
                static,
                moving,
                RigidTransform3D(),
                None,
                static_grid2world=mr_img.affine,
                moving_grid2world=moving_img.affine,
                starting_affine=np.eye(4),
            )
            seconds = time.perf_counter() - start
            rows.append(
                ("dipy RigidTransform3D (MI)", k, seconds, mapping.affine, truth)
            )
    except ImportError:
        print("dipy not importable; skipped")
    lines = [
        "",
        "## Other libraries on the same PET->MR cases",
        "",
        "`python benchmarks/bench_registration.py --compare DIR` (run in a separate "
        "venv with antspyx and dipy; ANTsPy `Rigid` with its defaults, dipy MI rigid "
        "with factors 4,2 and sigmas 2,1 voxels) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| library | case | seconds | error mean (mm) | angle (deg) |",
        "|---|---|---|---|---|",
    ]
    for name, k, seconds, found, truth in rows:
        error = mean_error_mm(found, truth, points)
        lines.append(
            f"| {name} | {k} | {seconds:.1f} | {error:.2f} | "
            f"{angle_deg(found, truth):.2f} |"
        )
    print("\n".join(lines))
    if out is not None and out.is_file():
        with out.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    (cases_dir / "compare.json").write_text(
        json.dumps(
            [
                {
                    "library": n,
                    "case": k,
                    "seconds": s,
                    "error_mm": mean_error_mm(f, t, points),
                    "angle_deg": angle_deg(f, t),
                }
                for n, k, s, f, t in rows
            ],
            indent=1,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("RESULTS_registration.md")
    )
    parser.add_argument("--cases", type=Path, help="also write PET->MR cases here")
    parser.add_argument("--compare", type=Path, help="compare ANTsPy/dipy on cases")
    args = parser.parse_args()
    if args.compare is not None:
        compare(args.compare, args.out)
        return
    run_simpleitk(args.out, args.cases)


if __name__ == "__main__":
    main()
