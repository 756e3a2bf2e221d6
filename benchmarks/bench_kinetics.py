"""Speed and memory of the kinetics core on a 128x128x63, 28-frame study.

Usage::

    python benchmarks/bench_kinetics.py             # -> benchmarks/RESULTS_kinetics.md
    python benchmarks/bench_kinetics.py --accuracy  # -> tables in docs/kinetics.md

Voxelwise maps are timed (best of ``--repeat`` runs) and their peak traced
memory (``tracemalloc``, numpy allocations included) is compared with the size
of the PET array. A straightforward per-voxel scipy implementation (MRTM with
``np.linalg.lstsq``, SRTM with ``scipy.optimize.least_squares``) runs on a
random subsample of voxels and is extrapolated to the whole mask.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy.integrate import cumulative_trapezoid
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "core"))

from _simulate import (  # noqa: E402
    REF_K2P,
    frame_schedule_min,
    noise_sd,
    reference_tac,
    target_tacs,
)

from napari_mor.io.timing import FrameTiming  # noqa: E402
from napari_mor.kinetics import fit_maps, fit_roi  # noqa: E402

SHAPE = (128, 128, 63)
MAP_MODELS = {
    "logan": {"t_star_min": 20.0, "k2p_per_min": REF_K2P},
    "mrtm": {},
    "mrtm2": {"k2p_per_min": REF_K2P},
    "srtm-bf": {},
    "srtm2": {"k2p_per_min": REF_K2P},
    "ratio": {"window": (40.0, 90.0)},
}
TARGET_S = {"logan": 0.5, "mrtm2": 0.5, "srtm-bf": 3.0}
PEER_NOTE = (
    "Peer packages (checked 2026-11-29 in throwaway venvs): `pip install dynamicpet` "
    "finds no distribution on the package index (not published there), so it was not "
    "timed; `pip install petpal` needs Python >= 3.12 (all releases), so it was "
    "installed into a separate Python 3.12 venv and timed with `--petpal-python`."
)


def make_study(seed: int = 0):
    """Ellipsoidal brain with 12 BP_ND levels (1TC targets), 5 % voxel noise."""
    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    ref = reference_tac()
    levels = np.linspace(0.0, 4.0, 12)
    tacs = target_tacs(levels).astype(np.float32)
    grid = np.indices(SHAPE, dtype=np.float32)
    centre = (np.array(SHAPE, dtype=np.float32) - 1) / 2
    radius = np.array([48.0, 58.0, 27.0], dtype=np.float32)
    dist = np.sqrt(
        sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius, strict=True))
    )
    mask = dist <= 1.0
    level = np.minimum((dist * 12).astype(np.int64), 11)[mask]
    rng = np.random.default_rng(seed)
    pet = np.zeros((timing.n_frames, *SHAPE), np.float32)
    sd = noise_sd(tacs[:, 6], timing.frame_mid_min, timing.frame_duration_min, 0.05)
    for f in range(timing.n_frames):  # frame by frame to bound memory
        noise = rng.standard_normal(level.size, dtype=np.float32) * sd[f]
        pet[f][mask] = tacs[f, level] + noise
    return pet, mask, ref, timing


def _best_time(func, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def _peak_bytes(func) -> int:
    tracemalloc.start()
    func()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def naive_mrtm_per_voxel(tacs: np.ndarray, ref: np.ndarray, timing: FrameTiming):
    """Per-voxel MRTM: trapezoid integrals and np.linalg.lstsq in a Python loop."""
    mid = np.r_[0.0, timing.frame_mid_min]
    ref_int = cumulative_trapezoid(np.r_[0.0, ref], mid, initial=0)[1:]
    out = np.empty(tacs.shape[1])
    for v in range(tacs.shape[1]):
        ct = tacs[:, v]
        ct_int = cumulative_trapezoid(np.r_[0.0, ct], mid, initial=0)[1:]
        g = np.linalg.lstsq(np.column_stack([ref_int, ct_int, ref]), ct, rcond=None)[0]
        out[v] = -g[0] / g[1] - 1
    return out


def naive_srtm_per_voxel(tacs: np.ndarray, ref: np.ndarray, timing: FrameTiming):
    """Per-voxel SRTM: least_squares, 0.1-min grid convolution sampled at mid-frame."""
    dt = 0.1
    t = np.arange(0.0, timing.frame_end_min[-1] + dt, dt)
    ref_fine = np.interp(t, np.r_[0.0, timing.frame_mid_min], np.r_[0.0, ref])
    at_mid = np.searchsorted(t, timing.frame_mid_min)

    def model(p):
        r1, k2, bp = p
        k2a = k2 / (1 + bp)
        conv = np.convolve(ref_fine, np.exp(-k2a * t))[: t.size] * dt
        return r1 * ref + (k2 - r1 * k2a) * conv[at_mid]

    out = np.empty(tacs.shape[1])
    for v in range(tacs.shape[1]):
        fit = least_squares(lambda p, y=tacs[:, v]: model(p) - y, [1.0, 0.2, 1.0],
                            bounds=([0, 0, -0.9], [10, 10, 50]))  # fmt: skip
        out[v] = fit.x[2]
    return out


def run_speed(
    repeat: int, n_naive_mrtm: int, n_naive_srtm: int, petpal_python: Path | None
) -> str:
    pet, mask, ref, timing = make_study()
    n_vox = int(mask.sum())
    rows = []
    for model, options in MAP_MODELS.items():
        seconds = _best_time(
            lambda m=model, o=options: fit_maps(pet, mask, ref, timing, m, **o), repeat
        )
        peak = _peak_bytes(
            lambda m=model, o=options: fit_maps(pet, mask, ref, timing, m, **o)
        )
        target = TARGET_S.get(model)
        rows.append((f"map {model}", seconds, peak / pet.nbytes, target))
    tacs = pet[:, mask]
    roi_tac = tacs[:, :2000].mean(axis=1).astype(np.float64)
    roi_rows = []
    for model, options in {**MAP_MODELS, "srtm": {}}.items():
        seconds = _best_time(
            lambda m=model, o=options: fit_roi(roi_tac, ref, timing, m, **o), 20
        )
        roi_rows.append((f"ROI {model}", seconds, None, 0.010))
    rng = np.random.default_rng(1)
    sub_m = tacs[:, rng.choice(n_vox, n_naive_mrtm, replace=False)].astype(np.float64)
    sub_s = tacs[:, rng.choice(n_vox, n_naive_srtm, replace=False)].astype(np.float64)
    t_mrtm = (
        _best_time(lambda: naive_mrtm_per_voxel(sub_m, ref, timing), 1)
        / n_naive_mrtm
        * n_vox
    )
    t_srtm = (
        _best_time(lambda: naive_srtm_per_voxel(sub_s, ref, timing), 1)
        / n_naive_srtm
        * n_vox
    )
    ours = {name.split()[1]: s for name, s, _, _ in rows}
    naive = [
        ("per-voxel lstsq MRTM", n_naive_mrtm, t_mrtm, "mrtm", ours["mrtm"]),
        (
            "per-voxel least_squares SRTM",
            n_naive_srtm,
            t_srtm,
            "srtm-bf",
            ours["srtm-bf"],
        ),
    ]
    report = _speed_report(rows + roi_rows, pet, n_vox, naive)
    if petpal_python is not None:
        report += "\n" + run_petpal(petpal_python, pet, mask, ref, timing, ours)
        report += "\n" + PEER_NOTE + "\n"
    return report


def _speed_report(rows, pet, n_vox, naive) -> str:
    lines = [
        "# Kinetics benchmark",
        "",
        f"Study: {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} voxels x {pet.shape[0]} frames "
        f"(float32, {pet.nbytes / 1e6:.0f} MB), brain mask {n_vox} voxels, 5 % noise. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at start, OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, Python "
        f"{platform.python_version()}, numpy {np.__version__}. Generated by "
        "`python benchmarks/bench_kinetics.py`. Time = best of repeated runs; peak "
        "= `tracemalloc` peak during one run, as a multiple of the PET array.",
        "",
        "| task | seconds | peak memory / PET | target | met |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name, seconds, peak, target in rows:
        peak_txt = "" if peak is None else f"{peak:.2f}x"
        target_txt = "" if target is None else f"< {target:g} s"
        met = "" if target is None else ("yes" if seconds < target else "NO")
        if peak is not None and peak >= 3:
            met += " (memory NO)"
        lines.append(f"| {name} | {seconds:.4f} | {peak_txt} | {target_txt} | {met} |")
    lines += [
        "",
        "Straightforward per-voxel scipy implementations, timed on a random subsample "
        "and extrapolated to the whole mask:",
        "",
        "| per-voxel implementation | voxels timed | projected s (whole mask) | "
        "napari-mor map | napari-mor s | speed-up |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, n_timed, projected, ours_name, ours_s in naive:
        lines.append(
            f"| {name} | {n_timed} | {projected:.1f} | {ours_name} | {ours_s:.3f} | "
            f"{projected / ours_s:.0f}x |"
        )
    return "\n".join(lines) + "\n"


def run_accuracy() -> str:
    """Markdown tables: noise-free errors and Monte Carlo bias/SD per model."""
    from test_kinetics_montecarlo import MC_MODELS, run_monte_carlo

    starts, durations = frame_schedule_min()
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    ref = reference_tac()
    bps = (1.0, 3.0)
    lines = [
        "Noise-free error of BP_ND (%), 1TC-equivalent and 2TC targets "
        "(k4 = 0.1 /min), 28 uneven frames:",
        "",
        "| model | options | 1TC BP=1 | 1TC BP=3 | 2TC BP=1 | 2TC BP=3 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    cases = [(label, *MC_MODELS[label]) for label in MC_MODELS if "(" not in label]
    cases += [("logan (t* auto, k2')", "logan", {"k2p_per_min": REF_K2P}),
              ("logan (t*=30, no k2')", "logan", {"t_star_min": 30.0}),
              ("mrtm (t*=20)", "mrtm", {"t_star_min": 20.0})]  # fmt: skip
    for label, model, options in cases:
        errs = []
        for kind in ("1tc", "2tc"):
            fits = fit_roi(target_tacs(bps, kind), ref, timing, model, **options)
            errs += [100 * (f.bp_nd / bp - 1) for f, bp in zip(fits, bps, strict=True)]
        opts = ", ".join(f"{k}={v}" for k, v in options.items()) or "-"
        lines.append(
            f"| {label} | {opts} | " + " | ".join(f"{e:+.2f}" for e in errs) + " |"
        )
    lines += [
        "",
        "Monte Carlo, 200 realisations, 1TC-equivalent target, 5 % target / 2 % "
        "reference noise (SD at the 5-min frame at 60 min, "
        "sigma ~ sqrt(C e^{lambda t} / duration)); bias and SD in % of the true "
        "BP_ND; mean SE = mean reported standard error:",
        "",
        "| model | true BP_ND | bias % | SD % | mean SE % | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in run_monte_carlo():
        lines.append(
            f"| {row['model']} | {row['bp_true']:g} | {row['bias_pct']:+.2f} | "
            f"{row['sd_pct']:.2f} | {row['mean_se_pct']:.2f} | {row['n_failed']} |"
        )
    return "\n".join(lines) + "\n"


PETPAL_RUNNER = """
import json, sys, time
import numpy as np
from petpal.kinetic_modeling.parametric_images import (
    apply_mrtm2_to_all_voxels, parametric_refregion_analysis)
from petpal.kinetic_modeling.graphical_analysis import logan_ref_region_analysis
d = np.load(sys.argv[1])
img, mask, ref, mid, k2p = d["img"], d["mask"], d["ref"], d["mid"], float(d["k2p"])
out = {}
small = np.ascontiguousarray(img[:2, :2, :2])
parametric_refregion_analysis(mid, ref, small, 20.0, k2p, logan_ref_region_analysis)
t = time.perf_counter()
parametric_refregion_analysis(mid, ref, img, 20.0, k2p, logan_ref_region_analysis)
out["logan_s_per_voxel"] = (time.perf_counter() - t) / img[..., 0].size
t = time.perf_counter()
apply_mrtm2_to_all_voxels(mid, img, ref, k2p, 0.0, mask.astype(float))
out["mrtm2_s_per_voxel"] = (time.perf_counter() - t) / mask.sum()
print(json.dumps(out))
"""


def run_petpal(python: Path, pet, mask, ref, timing, ours: dict) -> str:
    """Time petpal (separate venv, Python >= 3.12) on a slab of the same study."""
    slab = (slice(40, 80), slice(40, 80), slice(30, 34))  # 6400 voxels, in the brain
    img = np.ascontiguousarray(
        np.moveaxis(pet[(slice(None), *slab)], 0, -1), np.float64
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "slab.npz"
        np.savez(data, img=img, mask=mask[slab], ref=ref, mid=timing.frame_mid_min,
                 k2p=REF_K2P)  # fmt: skip
        script = Path(tmp) / "run_petpal.py"
        script.write_text(PETPAL_RUNNER, encoding="utf-8")
        proc = subprocess.run([str(python), str(script), str(data)],
                              capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        return f"petpal run failed: {proc.stderr.strip().splitlines()[-1:]}\n"
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    version = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                              "print(m.version('petpal'))"], capture_output=True,
                             text=True, check=False).stdout.strip()  # fmt: skip
    n_all, n_mask = pet[0].size, int(mask.sum())
    logan = res["logan_s_per_voxel"] * n_all  # petpal's Logan loops over all voxels
    mrtm2 = res["mrtm2_s_per_voxel"] * n_mask
    return "\n".join([
        f"petpal {version} (separate Python 3.12 venv; petpal needs Python >= 3.12), "
        f"timed on a {img.shape[0]}x{img.shape[1]}x{img.shape[2]} slab of the same "
        "study and extrapolated:",
        "",
        "| petpal function | projected s (whole study) | napari-mor s | speed-up |",
        "|---|---:|---:|---:|",
        f"| parametric_refregion_analysis (Logan ref, numba, all voxels) | {logan:.1f} "
        f"| {ours['logan']:.3f} | {logan / ours['logan']:.0f}x |",
        f"| apply_mrtm2_to_all_voxels (per-voxel loop, mask) | {mrtm2:.1f} | "
        f"{ours['mrtm2']:.3f} | {mrtm2 / ours['mrtm2']:.0f}x |",
    ]) + "\n"  # fmt: skip


def _replace_block(path: Path, marker: str, text: str) -> None:
    content = path.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    path.write_text(
        pattern.sub(lambda _: f"{start}\n{text}{end}", content), encoding="utf-8"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--accuracy", action="store_true", help="write the accuracy tables"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive-mrtm", type=int, default=3000)
    parser.add_argument("--naive-srtm", type=int, default=100)
    parser.add_argument(
        "--petpal-python", type=Path, help="python of a venv with petpal"
    )
    parser.add_argument("--append", action="store_true", help="append to the results")
    args = parser.parse_args()
    if args.accuracy:
        text = run_accuracy()
        print(text)
        _replace_block(ROOT / "docs" / "kinetics.md", "accuracy", text)
        return
    text = run_speed(args.repeat, args.naive_mrtm, args.naive_srtm, args.petpal_python)
    print(text)
    results = ROOT / "benchmarks" / "RESULTS_kinetics.md"
    if args.append and results.is_file():
        text = results.read_text(encoding="utf-8") + "\n" + text.replace("# ", "## ", 1)
    results.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
