"""Accuracy of the automatic k2' for maps across the carfentanil k4 sweep.

Simulates voxel images with the independent simulator
``tests/core/_carfentanil_sim.py`` (five two-tissue targets, BP_ND 1.2-3.5,
``n_vox`` voxels each, one-tissue reference with k2' = 0.15 /min, reference
noise CV 0.005 in noisy runs, a 10 % fall of k3 from 45 min) and runs
``k2p_from_high_binding_voxels`` on frames 0-45 min with one k4 shared by the
composites (the default, ``k4="shared"``) and with a free k4 per composite
(``k4="free"``, the estimator before issue 12). Prints a markdown table of the
relative error of k2' (%): median |error|, worst |error|, mean, SD and the
fraction within 10 %. A failed estimate (MorError) counts as outside 10 %.

Run: ``.venv/bin/python benchmarks/k2p_accuracy.py [--seeds 24] [--n-vox 1000]``
(about 2 min on one core with the defaults).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))

import _carfentanil_sim as cs  # noqa: E402

from napari_mor._errors import MorError  # noqa: E402
from napari_mor.kinetics.k2p import k2p_from_high_binding_voxels  # noqa: E402

K4S = (0.05, 0.08, 0.15, 0.6)
NOISES = (0.0, 0.05, 0.10)
TRUE_K2P = 0.15
ESTIMATORS = ("shared", "free")


def errors_pct(k4: float, cv: float, seeds: range, n_vox: int) -> dict:
    """Relative k2' error (%) per estimator for each seed (NaN = refused)."""
    out = {e: [] for e in ESTIMATORS}
    for seed in seeds:
        scan = cs.simulate_scan(
            k4_per_min=k4,
            k2p_per_min=TRUE_K2P,
            drop=0.10,
            noise_cv=cv,
            ref_noise_cv=0.005 if cv else 0.0,
            n_realisations=n_vox,
            seed=seed,
        )
        pet, mask, ref = cs.voxel_image(scan)
        for est in ESTIMATORS:
            try:
                k2p, _ = k2p_from_high_binding_voxels(
                    pet, mask, ref, scan.timing, window=(0, 45), k4=est
                )
            except MorError:
                k2p = np.nan
            out[est].append(100.0 * (k2p / TRUE_K2P - 1.0))
    return {e: np.array(v) for e, v in out.items()}


def row(k4: float, cv: float, est: str, err: np.ndarray) -> str:
    """One markdown table row."""
    a = np.abs(err)
    ok = int(np.sum(a <= 10.0))  # NaN (refused) counts as a miss
    return (
        f"| {k4:g} | {cv:g} | {est} | {np.nanmedian(a):.1f} | {np.nanmax(a):.1f} | "
        f"{np.nanmean(err):+.1f} | {np.nanstd(err):.1f} | {ok}/{err.size} |"
    )


def main(argv: list[str] | None = None) -> str:
    """Run the sweep and return the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=24)
    parser.add_argument("--n-vox", type=int, default=1000)
    parser.add_argument("--first-seed", type=int, default=100)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    lines = [
        f"k2' accuracy: {args.seeds} seeds (noise-free: 1), {args.n_vox} voxels per "
        "region, frames 0-45 min, true k2' 0.15 /min; relative error %.",
        "",
        "| k4 (1/min) | voxel noise | k4 in fit | median abs | worst abs | mean | SD "
        "| within 10 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k4 in K4S:
        for cv in NOISES:
            n = 1 if cv == 0 else args.seeds
            seeds = range(args.first_seed, args.first_seed + n)
            errs = errors_pct(k4, cv, seeds, args.n_vox)
            for est in ESTIMATORS:
                lines.append(row(k4, cv, est, errs[est]))
            print(lines[-2], lines[-1], sep="\n", flush=True)
    lines += ["", f"({time.perf_counter() - t0:.0f} s)"]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
