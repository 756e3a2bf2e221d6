"""Group-study benchmark: batch fits, permutation timing, detection and FPR.

Run: python benchmarks/bench_group.py [--quick] > benchmarks/RESULTS_group.md
Timings are wall-clock on the machine it runs on (noisy on shared cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats


def _timed(label, rows, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    rows.append((label, time.perf_counter() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fpr-cohorts", type=int, default=200)
    parser.add_argument("--fpr-perms", type=int, default=500)
    parser.add_argument("--timing-only", action="store_true")
    args = parser.parse_args()
    from napari_mor.group import run_group_stats
    from napari_mor.group.batch import BatchSettings, load_cohort_maps, run_batch
    from napari_mor.sample import simulate_cohort, write_bids_cohort

    n_sub = 6 if args.quick else 18
    rows: list[tuple[str, float]] = []
    print("# Group-study benchmark\n")
    print(
        f"- machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores visible; Python {platform.python_version()}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = _timed(
            f"simulate {n_sub} dynamic PET subjects, 3 mm (not counted)",
            rows,
            write_bids_cohort,
            tmp / "bids",
            n_subjects=n_sub,
            seed=0,
            pet_voxel_mm=3.0,
        )
        settings = BatchSettings()
        _timed(
            f"batch: {n_sub} subjects, MRTM BP maps x 2 windows + delta "
            "(dask threads, 2 workers)",
            rows,
            run_batch,
            tmp / "bids",
            tmp / "maps",
            settings,
            labels=paths["labels"],
            mask=paths["brain_mask"],
            n_workers=2,
        )
        _timed(
            f"batch rerun, all {n_sub} cached",
            rows,
            run_batch,
            tmp / "bids",
            tmp / "maps",
            settings,
            labels=paths["labels"],
            mask=paths["brain_mask"],
        )
        maps = _timed("load maps", rows, load_cohort_maps, tmp / "maps")
        import nibabel as nib

        mask = np.asarray(nib.load(str(paths["brain_mask"])).dataobj) > 0
        res = _timed(
            "paired t + 1000 sign flips + clusters, 3 mm grid",
            rows,
            run_group_stats,
            maps.baseline,
            maps.affine,
            test="paired",
            challenge_maps=maps.challenge,
            mask=mask,
            n_perm=1000,
            atlas=None,
            subjects=maps.subjects,
        )
        n3 = res.settings["n_voxels"]
    cohort2 = _timed(
        "simulate 18-subject map cohort, 2 mm (not counted)",
        rows,
        simulate_cohort,
        18,
        0,
        2.0,
    )
    res2 = _timed(
        "one-sample t + 1000 sign flips, voxel FWE only, 2 mm",
        rows,
        run_group_stats,
        cohort2.delta_bp,
        cohort2.affine,
        mask=cohort2.mask,
        n_perm=1000,
        atlas=None,
    )
    res2 = _timed(
        "one-sample t + 1000 sign flips + cluster FWE, 2 mm",
        rows,
        run_group_stats,
        cohort2.delta_bp,
        cohort2.affine,
        mask=cohort2.mask,
        n_perm=1000,
        p_voxel=0.001,
        atlas=None,
    )
    _timed(
        "Pearson + 1000 label permutations + cluster FWE, 2 mm",
        rows,
        run_group_stats,
        cohort2.delta_bp,
        cohort2.affine,
        mask=cohort2.mask,
        test="pearson",
        covariate=cohort2.participants["resiliency"],
        n_perm=1000,
        atlas=None,
    )
    n2 = res2.settings["n_voxels"]
    print("## Timing (wall clock, s)\n")
    print(f"3 mm grid: {n3} voxels in mask; 2 mm grid: {n2} voxels.\n")
    print("| step | seconds |\n|---|---:|")
    for label, sec in rows:
        print(f"| {label} | {sec:.1f} |")

    if args.timing_only:
        return
    # ---------------------------------------------------------- detection
    print("\n## Detection on the default 18-subject cohort (3 mm, 1000 perms)\n")
    print("| seed | test | FWE-cluster < 0.05 clusters (region: voxels, p) |")
    print("|---|---|---|")
    for seed in range(3):
        c = simulate_cohort(18, seed, 3.0)
        for test, tail in (("one-sample", "greater"), ("pearson", "two-sided")):
            r = run_group_stats(
                c.delta_bp,
                c.affine,
                mask=c.mask,
                test=test,
                tail=tail,
                covariate=c.participants["resiliency"],
                n_perm=1000,
                seed=seed,
                atlas=None,
                region_labels=c.labels,
            )
            hits = [
                f"{x['region'] or '(none)'}: {x['size_voxels']}, "
                f"{x['p_fwe_cluster']:.3f}"
                for x in r.clusters
                if x["p_fwe_cluster"] < 0.05
            ]
            print(f"| {seed} | {test} ({tail}) | {'; '.join(hits)} |")

    # ---------------------------------------------------------- FPR
    n_c = 20 if args.quick else args.fpr_cohorts
    n_p = 100 if args.quick else args.fpr_perms
    print(
        f"\n## Family-wise false-positive rate: {n_c} null cohorts x {n_p} "
        "resamplings (18 subjects, 6 mm grid, alpha 0.05)\n"
    )
    print("| test | voxel-FWE rate | 95% CI | cluster-FWE rate | 95% CI |")
    print("|---|---:|---|---:|---|")
    start = time.perf_counter()
    for test in ("one-sample", "pearson", "spearman"):
        vh = ch = 0
        for seed in range(n_c):
            c = simulate_cohort(
                18, 5000 + seed, 6.0, activation_pct={}, trait_slope_pct=0.0
            )
            r = run_group_stats(
                c.delta_bp,
                c.affine,
                mask=c.mask,
                test=test,
                covariate=c.participants["resiliency"],
                n_perm=n_p,
                seed=seed,
                atlas=None,
            )
            vh += np.nanmin(r.maps["p_fwe_voxel"]) < 0.05
            ch += any(x["p_fwe_cluster"] < 0.05 for x in r.clusters)
        cis = [stats.binomtest(int(h), n_c).proportion_ci() for h in (vh, ch)]
        print(
            f"| {test} | {vh / n_c:.3f} | [{cis[0].low:.3f}, {cis[0].high:.3f}] "
            f"| {ch / n_c:.3f} | [{cis[1].low:.3f}, {cis[1].high:.3f}] |"
        )
    print(f"\n(FPR study took {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
