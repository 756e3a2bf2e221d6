"""Denoising before voxelwise fits and percent delta-BP maps (docs/denoise.md tables).

    python benchmarks/bench_denoise.py               # all tables (~3 min, 1 core)
    python benchmarks/bench_denoise.py --seeds 1     # quicker, noisier tables
    python benchmarks/bench_denoise.py --timings     # timings and memory only

Phantom: ``two_scan_phantom`` of tests/core/test_denoise.py (independent
simulator tests/core/_carfentanil_sim.py; 40x40x20 voxels of 2 mm; spheres
thalamus r 9 mm BP 3.5, amygdala 7 mm 3.0, ventral striatum 7 mm 2.4, PAG 5 mm
1.8, insula 7 mm 1.2 in a background of BP 0.6, occipital reference sphere
10 mm; k4 0.08 /min, k2' 0.15 /min; a two-scan design with a 10 % drop in
thalamus, ventral striatum and PAG and none elsewhere). Voxel noise: white
Gaussian, independent between voxels and frames, SD from
``_carfentanil_sim.noise_sd`` scaled to ``cv`` relative to the TAC over the
last three frames. The reference TAC is the mean of the reference sphere of the
noisy (not denoised) image. Models: Logan (the default; k2' = the true 0.15
/min, t* automatic) and basis-function SRTM.

Bias: region mean of the voxelwise BP_ND map against the true BP_ND, averaged
over the seeds; "noise-free" is the same pipeline on noise-free data (what the
denoising costs in resolution). Voxel SD: SD of BP_ND over the voxels of a
region, relative to the true BP_ND (mean over the five regions).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))

from test_denoise import (
    BACKGROUND_LABEL,
    VOXEL_MM,
    fit_bp,
    region_means,
    two_scan_phantom,
)

from napari_mor.delta_estimators import PCT_DELTA_ESTIMATORS, pct_delta_map
from napari_mor.denoise import denoise_pet

#: (label in the tables, method, FWHM mm)
PIPELINES = (
    ("none", "none", None),
    ("gaussian 4 mm", "gaussian", 4.0),
    ("gaussian 6 mm", "gaussian", 6.0),
    ("hypr-lr 4 mm", "hypr-lr", 4.0),
    ("hypr-lr 6 mm", "hypr-lr", 6.0),
    ("nlm 6 mm", "nlm", 6.0),
)
MODELS = ("logan", "srtm-bf")
NOISES = (0.05, 0.10, 0.20)
AFFINE = np.diag([VOXEL_MM] * 3 + [1.0])


def _denoise(ph: dict, scan: str, method: str, fwhm: float | None) -> np.ndarray:
    return denoise_pet(
        ph[f"pet_{scan}"],
        VOXEL_MM,
        method=method,
        fwhm_mm=fwhm,
        mask=ph["mask"],
        frame_duration_s=ph["timing"].frame_duration_s,
    )


def _fits(ph: dict, method: str, fwhm: float | None, model: str):
    base = fit_bp(ph, _denoise(ph, "base", method, fwhm), "base", model)
    chal = fit_bp(ph, _denoise(ph, "chal", method, fwhm), "chal", model)
    return base, chal


def _bias_sd(ph: dict, bp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    truth = np.array([v[0] for v in ph["truth"].values()])
    bias = 100 * (region_means(ph, bp) / truth - 1)
    sd = np.array([np.nanstd(bp[ph["labels"] == j + 2]) for j in range(len(truth))])
    return bias, 100 * sd / truth


def _pct_rows(ph: dict, base: np.ndarray, chal: np.ndarray) -> dict:
    """Region means of each %delta map and the ratio of region means, per region
    (targets then background)."""
    labels = [j + 2 for j in range(len(ph["names"]))] + [BACKGROUND_LABEL]

    def means(image):
        return np.array([np.nanmean(image[ph["labels"] == k]) for k in labels])

    rows = {"ratio of means": 100 * (1 - means(chal) / means(base))}
    for estimator in PCT_DELTA_ESTIMATORS:
        rows[estimator] = means(
            pct_delta_map(base, chal, AFFINE, estimator=estimator, mask=ph["mask"])
        )
    return rows


def tables(n_seeds: int) -> None:
    names = None
    clean = two_scan_phantom(0.0)
    names = clean["names"]
    planted = np.array([100 * v[1] for v in clean["truth"].values()] + [0.0])
    noise_free = {}
    for _label, method, fwhm in PIPELINES:
        for model in MODELS:
            base, _ = _fits(clean, method, fwhm, model)
            noise_free[method, fwhm, model] = _bias_sd(clean, base)[0]
    bias_rows, pct_rows = [], {}
    for cv in NOISES:
        phantoms = [two_scan_phantom(cv, seed=100 + s) for s in range(n_seeds)]
        for label, method, fwhm in PIPELINES:
            for model in MODELS:
                biases, sds, pcts = [], [], []
                for ph in phantoms:
                    base, chal = _fits(ph, method, fwhm, model)
                    bias, sd = _bias_sd(ph, base)
                    biases.append(bias)
                    sds.append(sd)
                    if method in ("none", "nlm", "hypr-lr") and fwhm != 4.0:
                        pcts.append(_pct_rows(ph, base, chal))
                bias = np.mean(biases, axis=0)
                bias_rows.append(
                    (
                        cv,
                        model,
                        label,
                        bias,
                        noise_free[method, fwhm, model],
                        np.mean(sds, axis=0),
                    )
                )
                if pcts:
                    pct_rows[cv, model, label] = {
                        k: np.mean([p[k] for p in pcts], axis=0) for k in pcts[0]
                    }
        print(f"# noise {cv} done", file=sys.stderr)

    print(f"## BP_ND: region-mean bias and voxel SD ({n_seeds} seeds)\n")
    print(
        "| voxel noise | model | denoising | bias, mean (min..max) % | "
        "of which noise-free % (mean) | voxel SD % of BP_ND |"
    )
    print("|---|---|---|---|---|---|")
    for cv, model, label, bias, nf, sd in bias_rows:
        print(
            f"| {cv:.2f} | {model} | {label} | {bias.mean():+.1f} "
            f"({bias.min():+.1f}..{bias.max():+.1f}) | {nf.mean():+.1f} | "
            f"{sd.mean():.1f} |"
        )
    print("\nPer region (noise 0.10, bias %):\n")
    print("| model | denoising | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for cv, model, label, bias, _nf, _sd in bias_rows:
        if cv == 0.10:
            cells = " | ".join(f"{b:+.1f}" for b in bias)
            print(f"| {model} | {label} | {cells} |")

    print("\n## Percent delta-BP: region mean of the map vs ratio of region means\n")
    print(
        "Planted: "
        + ", ".join(f"{n} {p:g}" for n, p in zip(names, planted, strict=False))
        + ", background 0.\n"
    )
    print(
        "| voxel noise | model | BP maps from | estimator | max abs diff to ratio "
        "of means (points) | mean diff | " + " | ".join([*names, "background"]) + " |"
    )
    print("|---|---|---|---|---|---|" + "---|" * (len(names) + 1))
    for (cv, model, label), rows in pct_rows.items():
        ref = rows["ratio of means"]
        for estimator, values in rows.items():
            diff = values - ref
            cells = " | ".join(f"{v:.1f}" for v in values)
            stats = (
                "(reference) | |"
                if estimator == "ratio of means"
                else f"{np.abs(diff).max():.1f} | {diff.mean():+.1f} |"
            )
            print(f"| {cv:.2f} | {model} | {label} | {estimator} | {stats} {cells} |")


def timings() -> None:
    """Denoising time and peak memory on a 96x96x48 x 29-frame PET (2 mm)."""
    rng = np.random.default_rng(0)
    shape = (29, 96, 96, 48)
    pet = rng.uniform(0.5, 5.0, shape).astype(np.float32)
    grid = np.indices(shape[1:]).transpose(1, 2, 3, 0) - (np.array(shape[1:]) - 1) / 2
    mask = ((grid / (np.array(shape[1:]) * 0.45)) ** 2).sum(axis=-1) < 1
    durations = np.full(shape[0], 180.0)
    print(
        f"\n## Timings and memory (PET {shape}, float32, {pet.nbytes / 1e6:.0f} MB)\n"
    )
    for _label, method, fwhm in PIPELINES:  # warm up (lazy imports, caches)
        denoise_pet(pet[:2, :8, :8, :8], 2.0, method=method, fwhm_mm=fwhm)
    print("| method | FWHM mm | time s | peak memory (output included) / PET array |")
    print("|---|---|---|---|")
    for _label, method, fwhm in PIPELINES:
        if fwhm == 4.0 and method != "gaussian":
            continue
        tracemalloc.start()
        start = time.perf_counter()
        denoise_pet(
            pet, 2.0, method=method, fwhm_mm=fwhm, mask=mask, frame_duration_s=durations
        )
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"| {method} | {fwhm or '-'} | {elapsed:.1f} | {peak / pet.nbytes:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--timings", action="store_true", help="timings only")
    args = parser.parse_args()
    if not args.timings:
        tables(args.seeds)
    timings()


if __name__ == "__main__":
    main()
