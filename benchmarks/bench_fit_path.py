"""CPU of the whole ``napari-mor fit`` path as ratios to same-run baselines.

Usage::

    python benchmarks/bench_fit_path.py                  # -> RESULTS_fit_path.md
    python benchmarks/bench_fit_path.py --make DIR       # only write the study
    python benchmarks/bench_fit_path.py --repeat 5 --out FILE.md
    python benchmarks/bench_fit_path.py --src before=/path/to/old/src  # before/after

The study is a 128x128x63 x 29-frame [11C]carfentanil-like PET (float32,
~114 MiB) written to a temporary folder as ``.nii.gz`` and ``.nii`` with a
BIDS-PET sidecar, a brain mask (~450k voxels) and an occipital reference mask.

Every figure is a ratio to a baseline timed in the same run, so the numbers
mean the same on a loaded machine:

- map fits (Logan, MRTM2, SRTM-BF, in-process) over the CPU of **one read pass**
  of the PET array (``pet.sum()``, float32);
- the whole ``napari-mor fit`` process (CPU of a child process, user + system)
  over the same read pass, and over a lean numpy Logan script (load with
  nibabel, mid-frame trapezoid integrals, a closed-form 2x2 fit);
- import times over ``python -c "import numpy, nibabel"`` and
  ``python -c pass`` (best of ``--repeat`` fresh interpreters).

Each figure is the median of ``--repeat`` runs (CPU time: ``time.process_time``
in-process, ``resource.getrusage(RUSAGE_CHILDREN)`` for child processes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Source tree measured (``--src LABEL=DIR`` sets it for the child processes).
SRC = Path(os.environ.get("NAPARI_MOR_BENCH_SRC", ROOT / "src"))
sys.path.insert(0, str(SRC))

SHAPE = (128, 128, 63)
#: (count, minutes): 29 frames, 95 min.
SCHEDULE_MIN = ((6, 0.5), (3, 1.0), (3, 2.0), (2, 4.0), (15, 5.0))
T_STAR_MIN = 20.0
K2P_PER_MIN = 0.2


def make_study(folder: Path, seed: int = 0) -> dict[str, Path]:
    """Write the benchmark study (PET .nii.gz and .nii, masks) into ``folder``.

    Tissue curves are two-tissue responses to a bolus+infusion input (12
    binding levels in an ellipsoidal brain, one-tissue occipital reference),
    frame-averaged on the real frame grid, with 5 % Gaussian noise.
    """
    import nibabel as nib

    from napari_mor.io.pet import DynamicPET, write_pet
    from napari_mor.io.timing import FrameTiming
    from napari_mor.sample.kinetics_sim import (
        bolus_infusion_input,
        fine_time_grid_min,
        frame_average,
        two_tissue_response,
    )

    durations = np.concatenate([[d] * n for n, d in SCHEDULE_MIN])
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    timing = FrameTiming(starts * 60.0, durations * 60.0)
    t = fine_time_grid_min(float(starts[-1] + durations[-1]), 0.05)
    cp = bolus_infusion_input(t)
    k3 = np.r_[0.0, np.linspace(0.02, 0.4, 12)]
    n = k3.size
    ct = two_tissue_response(
        t, cp, np.full(n, 0.3), np.full(n, 0.2), k3, np.full(n, 0.1)
    )
    tacs = frame_average(t, ct, starts, starts + durations).astype(np.float32)

    grid = np.indices(SHAPE, dtype=np.float32)
    centre = (np.array(SHAPE, dtype=np.float32) - 1) / 2
    radius = np.array([60.0, 60.0, 30.0], dtype=np.float32)
    dist = np.sqrt(
        sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius, strict=True))
    )
    brain = dist <= 1.0
    ref = brain & (grid[1] < centre[1] - 0.6 * radius[1])
    level = 1 + np.minimum((dist * 12).astype(np.int64), 11)
    level[ref] = 0
    level = level[brain]
    rng = np.random.default_rng(seed)
    data = np.zeros((timing.n_frames, *SHAPE), np.float32)
    for f in range(timing.n_frames):  # frame by frame to bound memory
        noise = rng.standard_normal(level.size, dtype=np.float32)
        data[f][brain] = tacs[f, level] * (1 + 0.05 * noise)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    pet = DynamicPET(
        data=data,
        affine=affine,
        timing=timing,
        decay_corrected=True,
        radionuclide="C11",
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "pet_gz": folder / "pet.nii.gz",
        "pet_nii": folder / "pet_raw.nii",
        "brain": folder / "brain.nii.gz",
        "ref": folder / "ref.nii.gz",
    }
    write_pet(paths["pet_gz"], pet)
    write_pet(paths["pet_nii"], pet)
    for key, mask in (("brain", brain), ("ref", ref)):
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), paths[key])
    return paths


#: Appended to a child's code: print its own CPU (user, system) and peak RSS.
_RUSAGE_TAIL = """
import json as _j, resource as _r, sys as _s
_u = _r.getrusage(_r.RUSAGE_SELF)
_s.stderr.write(
    "\\nRUSAGE " + _j.dumps([_u.ru_utime, _u.ru_stime, _u.ru_maxrss]) + "\\n"
)
"""

#: A lean numpy Logan script: what a user would write without napari-mor.
LEAN_LOGAN = """
import json, sys
import nibabel as nib, numpy as np
pet_path, ref_path, brain_path, out_path, t_star = sys.argv[1:6]
img = nib.load(pet_path)
data = np.asarray(img.dataobj, dtype=np.float32)  # (x, y, z, t)
side = json.load(open(pet_path.replace(".nii.gz", ".json").replace(".nii", ".json")))
start = np.array(side["FrameTimesStart"]) / 60
mid = start + np.array(side["FrameDuration"]) / 120
brain = np.asarray(nib.load(brain_path).dataobj) > 0
ref = data[np.asarray(nib.load(ref_path).dataobj) > 0].mean(axis=0, dtype=np.float64)
tac = data[brain].astype(np.float64)  # (n, t)
dt = np.diff(np.r_[0.0, mid])
def cumtrapz(y):
    prev = np.concatenate([np.zeros_like(y[..., :1]), y[..., :-1]], axis=-1)
    return np.cumsum(dt * (y + prev) / 2, axis=-1)
late = mid >= float(t_star)
inv = 1.0 / tac[:, late]
x = cumtrapz(ref)[late] * inv
y = cumtrapz(tac)[:, late] * inv
n = late.sum()
sx, sy = x.sum(1), y.sum(1)
dvr = (n * (x * y).sum(1) - sx * sy) / (n * (x * x).sum(1) - sx * sx)
out = np.full(brain.shape, np.nan, np.float32)
out[brain] = dvr - 1
nib.save(nib.Nifti1Image(out, img.affine), out_path)
"""


def _child(code: str, args: list[str], src: Path) -> dict:
    """Run ``code`` in a fresh interpreter; its CPU s, peak RSS and wall s."""
    env = {**os.environ, "PYTHONPATH": str(src), "NAPARI_MOR_BENCH_SRC": str(src)}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code + _RUSAGE_TAIL, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    tail = [ln for ln in done.stderr.splitlines() if ln.startswith("RUSAGE ")]
    if done.returncode != 0 or not tail:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    user, system, maxrss_kb = json.loads(tail[-1][len("RUSAGE ") :])
    return {"cpu_s": user + system, "peak_bytes": maxrss_kb * 1024, "wall_s": wall}


def _cpu(func, repeat: int) -> float:
    """Median process CPU seconds of ``func()`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        func()
        times.append(time.process_time() - start)
    return statistics.median(times)


def probe(paths: dict[str, Path], repeat: int) -> dict:
    """In-process CPU of the map fits and their baselines (run in a child)."""
    from threadpoolctl import threadpool_limits

    from napari_mor.io import load_pet, load_volume
    from napari_mor.kinetics import fit_maps
    from napari_mor.rois import mask_mean_tac

    pet = load_pet(paths["pet_nii"])
    brain = load_volume(paths["brain"]).data > 0
    ref = mask_mean_tac(pet, load_volume(paths["ref"]).data > 0)
    data = pet.data
    sx, sy, sz = data.strides[1:]
    order = "F" if sx < sy < sz else "C"  # the file's voxel order, or C
    idx = np.flatnonzero(brain.ravel(order=order))
    out = {"pet_bytes": int(data.nbytes), "n_voxels": int(brain.sum())}
    with threadpool_limits(1):
        out["read_pass_s"] = _cpu(lambda: data.sum(), 2 * repeat)
        flat = data.reshape((data.shape[0], -1), order=order)
        out["gather_f64_s"] = _cpu(lambda: flat[:, idx].astype(np.float64), repeat)
        fits = {
            "logan": {"t_star_min": T_STAR_MIN, "k2p_per_min": K2P_PER_MIN},
            "mrtm2": {"k2p_per_min": K2P_PER_MIN},
            "srtm-bf": {},
        }
        for model, options in fits.items():
            out[f"fit_{model}_s"] = _cpu(
                lambda m=model, o=options: fit_maps(
                    data, brain, ref, pet.timing, m, **o
                ),
                repeat,
            )
    return out


def _cli_code(pet: Path, paths: dict[str, Path], out: Path, model: str) -> str:
    argv = [
        "fit", str(pet), "--ref-mask", str(paths["ref"]), "--mask",
        str(paths["brain"]), "--model", model, "--t-star", str(T_STAR_MIN),
        "--out", str(out),
    ]  # fmt: skip
    return f"from napari_mor.cli import main\nmain({argv!r})\n"


def measure(paths: dict[str, Path], src: Path, repeat: int, work: Path) -> dict:
    """Every figure of one source tree (children only: trees never mix)."""
    code = (
        "import json, sys\nfrom pathlib import Path\n"
        "sys.path.insert(0, sys.argv[1])\nimport bench_fit_path as b\n"
        "paths = {k: Path(v) for k, v in json.loads(sys.argv[2]).items()}\n"
        "sys.stdout.write(json.dumps(b.probe(paths, int(sys.argv[3]))))\n"
    )
    env_src = {"NAPARI_MOR_BENCH_SRC": str(src)}
    os.environ.update(env_src)
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "benchmarks"),
         json.dumps({k: str(v) for k, v in paths.items()}), str(repeat)],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)
    runs = {
        "cli_logan_nii": ("napari-mor", paths["pet_nii"], "logan"),
        "cli_logan_gz": ("napari-mor", paths["pet_gz"], "logan"),
        "cli_mrtm2_nii": ("napari-mor", paths["pet_nii"], "mrtm2"),
        "lean_logan_nii": ("lean", paths["pet_nii"], "logan"),
        "lean_logan_gz": ("lean", paths["pet_gz"], "logan"),
    }
    for key, (kind, pet, model) in runs.items():
        samples = []
        for i in range(repeat):
            out = work / f"{key}_{i}" / "bp.nii.gz"
            if kind == "lean":
                out.parent.mkdir(parents=True, exist_ok=True)
                args = [str(pet), str(paths["ref"]), str(paths["brain"]), str(out)]
                samples.append(_child(LEAN_LOGAN, [*args, str(T_STAR_MIN)], src))
            else:
                samples.append(_child(_cli_code(pet, paths, out, model), [], src))
        result[key] = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    imports = {
        "bare": "pass",
        "numpy_nibabel": "import numpy, nibabel",
        "fit_path": "import numpy, nibabel\nimport napari_mor.cli.fit, "
        "napari_mor.workflows.fit, napari_mor.kinetics, napari_mor.rois, "
        "napari_mor.maps, threadpoolctl",
        "help": "from napari_mor.cli import build_parser\n"
        "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        build_parser().parse_args(['--help'])\n"
        "    except SystemExit:\n        pass",
    }
    for key, snippet in imports.items():
        walls = [_child(snippet, [], src)["wall_s"] for _ in range(4 * repeat)]
        result[f"import_{key}_s"] = min(walls)
    return result


def _rows(r: dict) -> list[tuple[str, float, str, str]]:
    """(figure, value, unit, target) from one tree's measurements."""
    read = r["read_pass_s"]
    rows = [
        ("read pass of the PET (CPU s, the baseline)", read, "s", ""),
        ("gather brain voxels to float64 / read pass",
         r["gather_f64_s"] / read, "x", ""),
        ("Logan map fit / read pass", r["fit_logan_s"] / read, "x", "<= 5x"),
        ("MRTM2 map fit / read pass", r["fit_mrtm2_s"] / read, "x", "<= 5x"),
        ("SRTM-BF map fit / read pass", r["fit_srtm-bf_s"] / read, "x", ""),
    ]  # fmt: skip
    for key, label in (
        ("cli_logan_nii", "`napari-mor fit` Logan, .nii"),
        ("cli_logan_gz", "`napari-mor fit` Logan, .nii.gz"),
        ("cli_mrtm2_nii", "`napari-mor fit` MRTM2, .nii"),
    ):
        lean = "lean_logan_gz" if key.endswith("gz") else "lean_logan_nii"
        rows.append(
            (f"{label}: process CPU / read pass", r[key]["cpu_s"] / read, "x", "")
        )
        if "logan" in key:
            rows.append(
                (f"{label}: process CPU / lean numpy Logan script",
                 r[key]["cpu_s"] / r[lean]["cpu_s"], "x", "")
            )  # fmt: skip
        rows.append(
            (f"{label}: peak RSS / PET array",
             r[key]["peak_bytes"] / r["pet_bytes"], "x", "<= 1.5x")
        )  # fmt: skip
    rows += [
        ("lean numpy Logan, .nii: peak RSS / PET array",
         r["lean_logan_nii"]["peak_bytes"] / r["pet_bytes"], "x", ""),
        ("import of the fit path - `import numpy, nibabel` (wall s)",
         r["import_fit_path_s"] - r["import_numpy_nibabel_s"], "s", "<= 0.3 s"),
        ("import of the fit path / `import numpy, nibabel`",
         r["import_fit_path_s"] / r["import_numpy_nibabel_s"], "x", ""),
        ("`napari-mor --help` - bare interpreter (wall s)",
         r["import_help_s"] - r["import_bare_s"], "s", "<= 0.1 s"),
        ("`napari-mor --help` / bare interpreter",
         r["import_help_s"] / r["import_bare_s"], "x", ""),
    ]  # fmt: skip
    return rows


def write_table(results: dict[str, dict], path: Path, repeat: int) -> str:
    labels = list(results)
    first = results[labels[0]]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Fit path benchmark (issue 17)",
        "",
        f"Study: {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} voxels x 29 frames (float32, "
        f"{first['pet_bytes'] / 2**20:.0f} MiB), brain mask {first['n_voxels']} "
        f"voxels, 5 % noise. Machine: {platform.machine()}, {os.cpu_count()} cores "
        f"(shared; load average {load:.1f} at the end), Python "
        f"{platform.python_version()}, numpy {np.__version__}. Generated by "
        "`python benchmarks/bench_fit_path.py"
        + "".join(f" --src {k}=..." for k in labels if k != "after")
        + f"` (median of {repeat} runs; imports: best of {4 * repeat} fresh "
        "interpreters). Every figure is a ratio to a baseline measured in the same "
        "run (one read pass of the PET array, `pet.sum()`, single-threaded; a lean "
        "numpy Logan script; a bare or a `numpy, nibabel` interpreter), so it "
        "holds on a loaded machine. Targets from issue 17.",
        "",
        "| figure | " + " | ".join(labels) + " | target |",
        "|---|" + "---:|" * len(labels) + "---|",
    ]
    all_rows = [_rows(results[k]) for k in labels]
    for i, (name, _value, unit, target) in enumerate(all_rows[0]):
        cells = []
        for rows in all_rows:
            value = rows[i][1]
            cells.append(f"{value:.3f} s" if unit == "s" else f"{value:.2f}x")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {target} |")
    lines += [
        "",
        "Read pass: CPU of `pet.sum()` over the loaded array (the floor of any "
        "fit); fits: `napari_mor.kinetics.fit_maps` in-process on the PET as "
        "`load_pet` returns it, k2' given (0.2 /min), t* 20 min; process CPU: "
        "user + system of a fresh `napari-mor fit` (imports, read, k2' policy, "
        "fit, NIfTI + sidecar writes, hashes), from `getrusage`.",
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--make", type=Path, help="only write the study here")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--src",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also measure another source tree (e.g. before=/tmp/old/src); the "
        "current tree is 'after'",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "RESULTS_fit_path.md"
    )
    parser.add_argument("--study", type=Path, help="reuse a study written by --make")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    if args.make:
        for key, path in make_study(args.make).items():
            print(f"{key}: {path}")
        return 0
    trees = dict(item.split("=", 1) for item in args.src)
    trees["after"] = str(ROOT / "src")
    with tempfile.TemporaryDirectory(prefix="bench_fit_path_") as tmp:
        tmp = Path(tmp)
        if args.study:
            names = ("pet.nii.gz", "pet_raw.nii", "brain.nii.gz", "ref.nii.gz")
            keys = ("pet_gz", "pet_nii", "brain", "ref")
            paths = {k: args.study / n for k, n in zip(keys, names, strict=True)}
        else:
            paths = make_study(tmp / "study")
        results = {}
        for label, src in trees.items():
            print(f"measuring {label} ({src}) ...", flush=True)
            results[label] = measure(paths, Path(src), args.repeat, tmp / label)
        print(write_table(results, args.out, args.repeat))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
