"""Speed of voxelwise transient-release (lp-ntPET-style) maps.

Usage::

    python benchmarks/bench_transient.py [--shape 128 128 63] [--repeat 1]
    python benchmarks/bench_transient.py --accuracy   # validation tables

A 128x128x63 ellipsoidal brain, 29 frames (the carfentanil schedule of the
independent simulator), voxels drawn from the simulator's regions with voxel
noise 0.05 and a 10 % fall of k3 from 45 min. BLAS runs single-threaded inside
blocks (as in the map fitters); the time is reported as a ratio to a Logan map
fitted in the same run on the same data. No timed asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "core"))

from _carfentanil_sim import simulate_one_scan  # noqa: E402

from napari_mor.kinetics import fit_maps  # noqa: E402
from napari_mor.kinetics.transient import iter_fit_transient_blocks  # noqa: E402

K2P = 0.15


def make_study(shape, noise_cv=0.05, seed=0):
    scan = simulate_one_scan(0.10, k4_per_min=0.08)
    grid = np.indices(shape, dtype=np.float32)
    centre = (np.array(shape, dtype=np.float32) - 1) / 2
    radius = np.array(shape, dtype=np.float32) * np.array([0.38, 0.45, 0.43])
    dist = np.sqrt(
        sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius, strict=True))
    )
    mask = dist <= 1.0
    region = np.minimum((dist * scan.tacs.shape[1]).astype(np.int64), 4)[mask]
    rng = np.random.default_rng(seed)
    tacs = scan.tacs[:, region]
    tacs = tacs * (1 + noise_cv * rng.standard_normal(tacs.shape))
    pet = np.zeros((scan.tacs.shape[0], *shape), np.float32)
    pet[:, mask] = tacs
    return pet, mask, scan.ref, scan.timing


def _run(blocks):
    while True:
        try:
            next(blocks)
        except StopIteration as stop:
            return stop.value


def accuracy(n_real=200, n_boot=None, onset=45.0, method="nls", shapes=None):
    """Bias, SD, false-positive rate and power per noise level and k4 (ROI fits).

    Noise on the targets only (reference noise-free), ``weights="noise"``,
    onset fixed (``onset=None``: searched), ``shapes=None``: the default
    family. Prints a markdown table (ranges over the five regions) and the
    fit time per TAC.
    """
    from napari_mor.kinetics.transient import DEFAULT_SHAPES, fit_transient

    shapes = DEFAULT_SHAPES if shapes is None else shapes
    print(
        f"method {method}, onset "
        f"{'searched' if onset is None else f'fixed {onset:g} min'}, shapes "
        f"{list(shapes)}, {n_real} realisations x 5 regions, n_boot {n_boot}; "
        "ranges over the regions, FPR also pooled over them (in brackets)"
    )
    print(
        "\n| noise | k4 | no change: median %delta | robust SD (no change) | "
        "10 % drop: median | robust SD (drop) | FPR p_release<0.05 | "
        "FPR nominal F | power p_release<0.05 | s per TAC |"
        "\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for cv in (0.01, 0.02, 0.05):
        for k4 in (0.05, 0.08, 0.15, 0.6):
            stats = {}
            sec = 0.0
            for drop in (0.0, 0.10):
                scan = simulate_one_scan(
                    drop,
                    k4_per_min=k4,
                    noise_cv=cv,
                    n_realisations=n_real,
                    seed=int(1000 * cv + 100 * k4 + 10 * drop),
                )
                n_reg = scan.tacs.shape[1]
                t0 = time.perf_counter()
                fits = fit_transient(
                    scan.tacs.reshape(scan.tacs.shape[0], -1),
                    scan.clean_ref,
                    scan.timing,
                    k2p_per_min=K2P,
                    onset_min=onset,
                    shapes=shapes,
                    weights="noise",
                    n_boot=n_boot,
                    onset_step_min=2.5,
                    method=method,
                )
                sec += time.perf_counter() - t0
                pct = np.array([f.pct_delta_bp for f in fits]).reshape(n_reg, -1)
                p = np.array([f.p_release for f in fits]).reshape(n_reg, -1)
                pn = np.array([f.p_nominal for f in fits]).reshape(n_reg, -1)
                q75, q25 = np.nanquantile(pct, [0.75, 0.25], axis=1)
                stats[drop] = (
                    np.nanmedian(pct, axis=1),
                    (q75 - q25) / 1.349,
                    (p < 0.05).mean(1),
                    (pn < 0.05).mean(1),
                )

            def rng(a, fmt="{:.1f}"):
                return f"{fmt.format(a.min())} to {fmt.format(a.max())}"

            def pooled(a):  # range over regions, then all regions pooled
                return f"{a.min():.3f} to {a.max():.3f} ({a.mean():.3f})"

            print(
                f"| {cv:g} | {k4:g} | {rng(stats[0.0][0])} | {rng(stats[0.0][1])} | "
                f"{rng(stats[0.1][0])} | {rng(stats[0.1][1])} | "
                f"{pooled(stats[0.0][2])} | {pooled(stats[0.0][3])} | "
                f"{rng(stats[0.1][2], '{:.2f}')} | "
                f"{sec / (2 * pct.size):.3f} |",
                flush=True,
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(128, 128, 63))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="print the validation tables instead of timing",
    )
    parser.add_argument(
        "--search-onset",
        action="store_true",
        help="with --accuracy: search the onset (default fixed 45)",
    )
    parser.add_argument(
        "--method", default="nls", help="with --accuracy: nls (default) or linear"
    )
    parser.add_argument(
        "--one-shape",
        action="store_true",
        help="with --accuracy: the single shape ('sustained', 2.0)",
    )
    parser.add_argument("--n-real", type=int, default=200)
    parser.add_argument(
        "--skip-search",
        action="store_true",
        help="time only the fixed-onset map (the searched one takes minutes)",
    )
    args = parser.parse_args(argv)
    if args.accuracy:
        accuracy(
            n_real=args.n_real,
            onset=None if args.search_onset else 45.0,
            method=args.method,
            shapes=[("sustained", 2.0)] if args.one_shape else None,
        )
        return
    pet, mask, ref, timing = make_study(tuple(args.shape))
    print(
        f"shape {tuple(args.shape)}, {pet.shape[0]} frames, {int(mask.sum())} "
        f"voxels in the mask, {os.cpu_count()} cores visible"
    )
    rows = []
    t = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        fit_maps(pet, mask, ref, timing, "logan", t_star_min=20.0, k2p_per_min=K2P)
        t.append(time.perf_counter() - t0)
    logan = min(t)
    rows.append(("logan (t* 20 min, k2')", logan))
    maps = [("lpntpet, onset fixed 45 min", 45.0)]
    if not args.skip_search:
        maps.append(("lpntpet, onset searched 20-75 min (2.5 min)", None))
    for label, onset in maps:
        t = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = _run(
                iter_fit_transient_blocks(
                    pet,
                    mask,
                    ref,
                    timing,
                    k2p_per_min=K2P,
                    onset_min=onset,
                    onset_step_min=2.5,
                )
            )
            t.append(time.perf_counter() - t0)
        rows.append((label, min(t)))
        pct = result.maps["pct_delta_bp_nd"]
        print(
            f"{label}: median pct_delta_bp_nd {np.nanmedian(pct):.1f}, "
            f"failed {result.n_failed}/{result.n_voxels}"
        )
    print("\n| map | time (s) | ratio to Logan |\n|---|---:|---:|")
    for label, sec in rows:
        print(f"| {label} | {sec:.2f} | {sec / logan:.1f} |")


if __name__ == "__main__":
    main()
