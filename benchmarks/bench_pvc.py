"""Partial-volume correction: timings and the accuracy tables of docs/pvc.md.

    python benchmarks/bench_pvc.py            # timings + accuracy tables
    python benchmarks/bench_pvc.py --timings  # timings only

Timings: GTM (100 labels x 30 frames, 128x128x63 grid, 2 mm voxels, 6 mm PSF),
RBV and iterative Yang on the same data, as ratios to one same-run baseline
(one 4-D Gaussian blur of the 30 frames). Accuracy: the noise-free two-scan
sample phantom blurred by a 6 mm FWHM PSF, default model (Logan), with the
phantom's tissue classes added as labels (complete segmentation); BP_ND of the
region TACs, uncorrected / GTM / RBV / iY, then GTM with the PSF wrong by
+-1 mm, with the true image shifted 1-2 mm against the labels, and with the
ROIs alone (label 0 = everything else as one region).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))


def _time(fn, repeat=1):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def timings() -> None:
    from napari_mor.io.pet import DynamicPET
    from napari_mor.io.timing import FrameTiming
    from napari_mor.io.volume import LabelImage
    from napari_mor.pvc import blur_psf, gtm_tacs, iterative_yang, rbv_image

    rng = np.random.default_rng(0)
    shape, n_labels, n_frames = (128, 128, 63), 100, 30
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    # 100 random blobs inside an ellipsoid "head", background 0 elsewhere
    grid = np.indices(shape).transpose(1, 2, 3, 0) - (np.array(shape) - 1) / 2
    head = ((grid / (np.array(shape) * 0.45)) ** 2).sum(axis=-1) < 1
    seeds = rng.uniform(-0.35, 0.35, (n_labels, 3)) * np.array(shape)
    labels = np.zeros(shape, np.int32)
    flat = grid[head]
    dist = ((flat[:, None, :] - seeds[None]) ** 2).sum(-1)
    labels[head] = dist.argmin(axis=1) + 1  # Voronoi cells: every label present
    values = rng.uniform(0.5, 5, (n_frames, n_labels + 1))
    data = values[:, labels].astype(np.float32)
    timing = FrameTiming(np.arange(n_frames) * 180.0, np.full(n_frames, 180.0))
    pet = DynamicPET(data=data, affine=affine, timing=timing, decay_corrected=True)
    image = LabelImage(labels, affine, {})
    base, _ = _time(lambda: blur_psf(pet.data, affine, 6.0))
    t_gtm, _ = _time(lambda: gtm_tacs(pet, image, 6.0))
    t_rbv, _ = _time(lambda: rbv_image(pet, image, 6.0))
    t_iy, _ = _time(lambda: iterative_yang(pet, image, 6.0, n_iter=10))
    print(f"\n## Timings ({n_labels} labels x {n_frames} frames, {shape}, 6 mm PSF)\n")
    print("| step | seconds | ratio to one 4-D blur |")
    print("|---|---|---|")
    for name, t in (
        ("one 4-D blur of the 30 frames (baseline)", base),
        ("GTM TACs (`gtm_tacs`)", t_gtm),
        ("RBV image (`rbv_image`)", t_rbv),
        ("iterative Yang, 10 iterations", t_iy),
    ):
        print(f"| {name} | {t:.2f} | {t / base:.2f} |")


def _fit_bp(pet, chal, labels, names, pvc=None, psf=6.0, true_psf=6.0):
    from napari_mor.workflows.fit import FitRequest, fit_rois, prepare_fit_data

    kwargs = {} if pvc is None else {"pvc": pvc, "psf_fwhm_mm": psf}
    request = FitRequest(two_scans=True, rois_only=True, **kwargs)
    data = prepare_fit_data(request, pet, labels=labels, challenge=chal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_rois(request, data)
    out = {}
    for condition in ("baseline", "challenge"):
        bp = {fit.name: fit.bp_nd for fit in result.fits[condition]}
        out[condition] = {n: bp[n] for n in names}
    return out


def _image_bp(pet, chal, labels, names, correct):
    """BP_ND of the region-mean TACs of RBV / iY images."""
    pet_c, chal_c = correct(pet), correct(chal)
    return _fit_bp(pet_c, chal_c, labels, names)


def accuracy() -> None:
    from scipy import ndimage
    from test_pvc import TARGETS, blurred, complete_labels

    from napari_mor.pvc import iterative_yang, rbv_image
    from napari_mor.sample import make_sample_study

    study = make_sample_study(noise_cv=0.0, separate_scans=True)
    truth = study.truth["regions"]
    labels = complete_labels(study)
    pet, chal = blurred(study.pet), blurred(study.pet_challenge)
    rows = {
        "uncorrected": _fit_bp(pet, chal, labels, TARGETS),
        "GTM": _fit_bp(pet, chal, labels, TARGETS, "gtm"),
        "RBV": _image_bp(pet, chal, labels, TARGETS, lambda p: rbv_image(p, labels, 6)),
        "iY (10 it.)": _image_bp(
            pet, chal, labels, TARGETS, lambda p: iterative_yang(p, labels, 6)
        ),
    }

    def bias(bp, name, cond="baseline"):
        true = truth[name][f"bp_nd_{cond}"]
        return 100 * (bp[cond][name] / true - 1)

    def pct_delta(bp, name):
        b, c = bp["baseline"][name], bp["challenge"][name]
        return 100 * (b - c) / b

    print("\n## Recovery: BP_ND bias (%) vs truth, baseline scan, PSF 6 mm known\n")
    print("| region | true BP_ND | " + " | ".join(rows) + " |")
    print("|---|---|" + "---|" * len(rows))
    for name in TARGETS:
        cells = " | ".join(f"{bias(bp, name):+.1f}" for bp in rows.values())
        print(f"| {name} | {truth[name]['bp_nd_baseline']:g} | {cells} |")
    print(
        "| PAG %delta (planted 10) | 10 | "
        + " | ".join(f"{pct_delta(bp, 'PAG'):.2f}" for bp in rows.values())
        + " |"
    )

    cases = {}
    for psf in (5.0, 7.0):
        cases[f"GTM, PSF assumed {psf:g} mm"] = _fit_bp(
            pet, chal, labels, TARGETS, "gtm", psf=psf
        )
    for shift in (1.0, 2.0):  # true activity moved along x against the labels
        vox = shift / 3.0
        moved = [
            dataclasses.replace(
                p,
                data=blurred(
                    dataclasses.replace(
                        p,
                        data=ndimage.shift(p.data, (0, vox, 0, 0), order=1).astype(
                            np.float32
                        ),
                    )
                ).data,
            )
            for p in (study.pet, study.pet_challenge)
        ]
        cases[f"GTM, labels off by {shift:g} mm"] = _fit_bp(
            *moved, labels, TARGETS, "gtm"
        )
    cases["GTM, ROIs only (label 0 one region)"] = _fit_bp(
        pet, chal, study.labels, TARGETS, "gtm"
    )
    print("\n## Sensitivity: BP_ND bias (%) of GTM, baseline scan (true PSF 6 mm)\n")
    print("| region | " + " | ".join(cases) + " |")
    print("|---|" + "---|" * len(cases))
    for name in TARGETS:
        cells = " | ".join(f"{bias(bp, name):+.1f}" for bp in cases.values())
        print(f"| {name} | {cells} |")
    print(
        "| PAG %delta (planted 10) | "
        + " | ".join(f"{pct_delta(bp, 'PAG'):.2f}" for bp in cases.values())
        + " |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timings", action="store_true", help="timings only")
    args = parser.parse_args()
    timings()
    if not args.timings:
        accuracy()


if __name__ == "__main__":
    main()
