"""Issue-14 cohort targets, through the CLI as a user runs them.

An 18-subject two-session cohort (``napari_mor.sample.write_bids_cohort``: the
sample phantom per subject, voxel noise 0.10, drops planted in ventral striatum,
amygdala, midline thalamus and PAG, a trait in amygdala/PAG/sgACC) and the same
cohort with NO challenge go through ``group run`` (defaults) and ``group stats``
(ROI tests; voxelwise with smoothing and sign-flip permutations). Prints, per
region: planted mean drop, ``mean_pct_delta``, paired t and p; the planted and
measured trait correlation; the FWE clusters; and the timings.

Usage::

    python benchmarks/cohort_targets.py [--n 18] [--voxel-mm 6] [--n-perm 1000]
        [--fwhm 10] [--out /tmp/cohort_targets]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from napari_mor.cli import main
from napari_mor.sample import write_bids_cohort
from napari_mor.sample.cohort import ACTIVATION_REGIONS, TRAIT_REGIONS


def _tsv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def run_cohort(root: Path, args, planted: bool) -> dict:
    write_bids_cohort(
        root,
        n_subjects=args.n,
        seed=args.seed,
        pet_voxel_mm=args.voxel_mm,
        mr_voxel_mm=args.voxel_mm,
        sessions=2,
        noise_cv=args.noise,
        activation_pct=None if planted else {},
        trait_slope_pct=args.trait_slope if planted else 0.0,
    )
    times = {}
    start = time.perf_counter()
    assert main(["group", "run", str(root), "--out", str(root / "maps")]) == 0
    times["group run"] = time.perf_counter() - start
    stats = ["group", "stats", str(root / "maps"), "--atlas", "none"]
    start = time.perf_counter()
    out = root / "stats"
    argv = [*stats, "--out", str(out), "--n-perm", str(args.n_perm)]
    assert main([*argv, "--fwhm", str(args.fwhm)]) == 0
    times[f"group stats ({args.n_perm} perm.)"] = time.perf_counter() - start
    corr = root / "corr"
    argv = [*stats, "--out", str(corr), "--n-perm", "0", "--test", "pearson"]
    assert main([*argv, "--covariate", "resiliency"]) == 0
    return {
        "roi": {r["region"]: r for r in _tsv(out / "roi_tests.tsv")},
        "corr": {r["region"]: r for r in _tsv(corr / "roi_tests.tsv")},
        "clusters": _tsv(out / "clusters.tsv")
        if (out / "clusters.tsv").is_file()
        else [],
        "truth": json.loads((root / "cohort_truth.json").read_text()),
        "participants": {
            r["participant_id"]: float(r["resiliency"])
            for r in _tsv(root / "participants.tsv")
        },
        "times": times,
    }


def planted_r(result: dict, region: str) -> float:
    """Correlation of the trait with the TRUE drop (what was planted)."""
    drops = result["truth"]["drops_pct"]
    subjects = sorted(drops)
    trait = [result["participants"][s] for s in subjects]
    true = [drops[s][region] for s in subjects]
    return float(np.corrcoef(trait, true)[0, 1]) if np.std(true) > 0 else 0.0


def report(name: str, result: dict) -> None:
    print(f"\n## {name}\n")
    print("| region | planted mean % | mean_pct_delta | t | p | p < 0.01 |")
    print("|---|---|---|---|---|---|")
    drops = result["truth"]["drops_pct"]
    for region, row in result["roi"].items():
        true = np.mean([drops[s].get(region, 0.0) for s in drops])
        p = float(row["p"])
        print(
            f"| {region} | {true:.1f} | {float(row['mean_pct_delta']):.1f} | "
            f"{float(row['t']):.2f} | {p:.2g} | {'yes' if p < 0.01 else ''} |"
        )
    print("\n| trait region | planted r (true drop) | measured r | p |")
    print("|---|---|---|---|")
    for region in TRAIT_REGIONS:
        row = result["corr"].get(region)
        if row is not None:
            print(
                f"| {region} | {planted_r(result, region):.2f} | "
                f"{float(row['r']):.2f} | {float(row['p']):.2g} |"
            )
    fwe = [c for c in result["clusters"] if float(c["p_fwe_cluster"] or 1) < 0.05]
    print(f"\nFWE clusters (p < 0.05): {len(fwe)}")
    for c in fwe[:10]:
        print(
            f"- {c['sign']} {c['size_voxels']} voxels, peak t "
            f"{float(c['peak_t']):.1f}, p_FWE {c['p_fwe_cluster']}, "
            f"{c['region'] or c['atlas_label']}"
        )
    for step, seconds in result["times"].items():
        print(f"{step}: {seconds:.0f} s")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=18)
    parser.add_argument("--voxel-mm", type=float, default=6.0)
    parser.add_argument("--noise", type=float, default=0.10)
    parser.add_argument("--n-perm", type=int, default=1000)
    parser.add_argument("--fwhm", type=float, default=10.0)
    parser.add_argument("--trait-slope", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cohort_targets"))
    args = parser.parse_args()
    print(
        f"{args.n} subjects, two sessions, {args.voxel_mm:g} mm, voxel noise "
        f"{args.noise:g}; planted regions {', '.join(ACTIVATION_REGIONS)}"
    )
    for name, planted in (("planted drops", True), ("no challenge", False)):
        report(name, run_cohort(args.out / name.replace(" ", "_"), args, planted))


if __name__ == "__main__":
    cli()
