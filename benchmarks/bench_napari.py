"""napari benchmark: what a user waits for in the docks, on the sample study.

Usage
-----
    xvfb-run -a python benchmarks/bench_napari.py [--out benchmarks/RESULTS_napari.md]

Times, in one napari viewer (Qt offscreen or Xvfb): Open Sample (first and
second time in this process), Fit ROIs (the button), the live ROI re-fit after a
t* slider move and after a paint stroke (from the change to the refilled table,
with and without the debounce), the voxelwise re-fit of the sample (Fit maps,
worker to the added layers), and a Harvard-Oxford atlas import into an ROI set
(first, then the same regions again, from the cache). Prints a Markdown table
and writes it to ``--out``. Wall times of single runs on a possibly loaded
machine, not minima; there are no timed asserts (see the issue's targets).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

#: The issue's targets, seconds (quiet machine).
TARGETS_S = {
    "open_first": 15.0,
    "open_second": 3.0,
    "fit_rois": 0.2,
    "t_star": 0.2,
    "paint": 0.2,
    "voxelwise": 2.0,
    "atlas_second": 3.0,
}
ATLAS_REGIONS = ["Left_Amygdala", "Right_Amygdala", "Left_Thalamus", "Right_Thalamus"]


def _wait(app, done, timeout_s: float = 600.0) -> float:
    """Process Qt events until ``done()``; returns the seconds waited."""
    start = time.perf_counter()
    while not done():
        app.processEvents()
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("benchmark step did not finish")
        time.sleep(0.001)
    return time.perf_counter() - start


def _timed(func, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = func(*args, **kwargs)
    return time.perf_counter() - start, value


def run() -> list[tuple[str, str, float, str]]:
    """Run every step; rows of (task, target key, seconds, note)."""
    from napari.layers import Labels
    from qtpy.QtWidgets import QApplication

    import napari
    from napari_mor._cache import CACHE_DIR_ENV
    from napari_mor._napari.fit.live_box import LIVE_DEBOUNCE_MS, TICKS_PER_MIN
    from napari_mor.rois import atlases

    rows = []
    os.environ[CACHE_DIR_ENV] = tempfile.mkdtemp()  # an empty cache: a real first
    viewer = napari.Viewer(show=False)
    app = QApplication.instance()
    seconds, _ = _timed(viewer.open_sample, "napari-mor", "carfentanil_study")
    rows.append(("Open Sample (first: builds the study)", "open_first", seconds, ""))
    viewer.layers.clear()
    seconds, _ = _timed(viewer.open_sample, "napari-mor", "carfentanil_study")
    rows.append(("Open Sample (second: user cache)", "open_second", seconds, ""))
    app.processEvents()

    _, fit = viewer.window.add_plugin_dock_widget("napari-mor", "Kinetic fit")
    labels = next(layer for layer in viewer.layers if isinstance(layer, Labels))
    fit.set_labels_layer(labels)
    fit.set_model("logan")
    app.processEvents()
    seconds, _ = _timed(fit.fit_rois_button.click)
    n_rois = len(fit.roi_labels)
    rows.append(
        (
            f"Fit ROIs (Logan, {n_rois} ROIs × {len(fit.fits)} windows)",
            "fit_rois",
            seconds,
            "button click to filled table and plots",
        )
    )
    app.processEvents()

    before = fit.n_live_refits
    start = time.perf_counter()
    fit.live_box.t_star_slider.setValue(25 * TICKS_PER_MIN)
    _wait(app, lambda: fit.n_live_refits > before)
    latency = time.perf_counter() - start
    rows.append(
        (
            "ROI re-fit after a t* slider move",
            "t_star",
            latency - LIVE_DEBOUNCE_MS / 1e3,
            f"{latency:.3f} s including the {LIVE_DEBOUNCE_MS} ms debounce",
        )
    )

    labels.data = np.asarray(labels.data).copy()  # never paint the sample's arrays
    _wait(app, lambda: not fit.live_box.timer.isActive())
    app.processEvents()
    before = fit.n_live_refits
    labels.brush_size = 1
    voxels = np.argwhere(np.asarray(labels.data) == 1)[:30]  # a stroke: 30 voxels
    start = time.perf_counter()
    for voxel in voxels:
        labels.paint(tuple(int(v) for v in voxel), 6, refresh=False)
    labels.refresh()
    _wait(app, lambda: fit.n_live_refits > before)
    latency = time.perf_counter() - start
    rows.append(
        (
            "BP_ND update after a paint stroke (30 voxels)",
            "paint",
            latency - LIVE_DEBOUNCE_MS / 1e3,
            f"{latency:.3f} s including the {LIVE_DEBOUNCE_MS} ms debounce",
        )
    )

    start = time.perf_counter()
    worker = fit.fit_maps()
    _wait(app, lambda: fit.worker is None and bool(fit.map_layers))
    seconds = time.perf_counter() - start
    del worker
    n_vox = max(r.n_voxels for r in fit.map_results.values())
    rows.append(
        (
            "Voxelwise re-fit of the sample (Logan, ROI-voxel mask)",
            "voxelwise",
            seconds,
            f"worker to added layers; {len(fit.map_results)} map(s), "
            f"{n_vox} voxels each",
        )
    )

    from napari_mor._napari.fit.layers_box import MASK_UPTAKE

    fit.set_mask(MASK_UPTAKE)
    fit.map_layers.clear()
    start = time.perf_counter()
    fit.fit_maps()
    _wait(app, lambda: fit.worker is None and bool(fit.map_layers))
    seconds = time.perf_counter() - start
    n_vox = max(r.n_voxels for r in fit.map_results.values())
    rows.append(
        (
            "Voxelwise re-fit of the sample (Logan, head uptake mask)",
            "voxelwise",
            seconds,
            f"worker to added layers; {len(fit.map_results)} map(s), "
            f"{n_vox} voxels each",
        )
    )

    with tempfile.TemporaryDirectory() as cache:
        os.environ[CACHE_DIR_ENV] = cache  # an honest first import
        atlases.clear_atlas_cache()
        _, rois = viewer.window.add_plugin_dock_widget("napari-mor", "ROIs")
        for which in ("first", "second"):
            rois.new_roi_set(f"atlas {which}")
            seconds, _ = _timed(rois.import_atlas, "harvard_oxford", ATLAS_REGIONS)
            note = "decompress, resample, store" if which == "first" else "cache"
            rows.append(
                (
                    f"Harvard-Oxford import, {len(ATLAS_REGIONS)} regions ({which})",
                    "atlas_second" if which == "second" else "",
                    seconds,
                    note,
                )
            )
        atlases.clear_atlas_cache()  # a new session: the disk cache
        rois.new_roi_set("atlas third")
        seconds, _ = _timed(rois.import_atlas, "harvard_oxford", ATLAS_REGIONS)
        rows.append(
            (
                "Harvard-Oxford import (new session, disk cache)",
                "atlas_second",
                seconds,
                "",
            )
        )
        atlases.clear_atlas_cache()
    viewer.close()
    return rows


def markdown(rows) -> str:
    lines = [
        "| task | seconds | target (s) | note |",
        "|---|---|---|---|",
    ]
    for task, key, seconds, note in rows:
        target = f"<= {TARGETS_S[key]:g}" if key in TARGETS_S else "-"
        lines.append(f"| {task} | {seconds:.3f} | {target} | {note} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("RESULTS_napari.md")
    )
    args = parser.parse_args()
    import napari

    rows = run()
    table = markdown(rows)
    print(table)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"# napari benchmark (napari {napari.__version__})\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other "
        f"jobs: wall times are noisy), Python {platform.python_version()}. "
        f"Generated by `xvfb-run -a python benchmarks/bench_napari.py` on {stamp}.\n\n"
        "Live re-fits are timed from the change (slider move, end of the paint "
        "stroke) to the refilled table; the seconds column leaves the debounce "
        "out, the note gives the full latency.\n\n"
    )
    args.out.write_text(header + table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
