"""The sample study end to end, through the same workflows as the CLI and the docks.

``napari-mor demo`` writes the phantom study (by default a baseline and a challenge
scan; ``--one-scan`` for one scan with the challenge from 45 min), then runs exactly
what a user's ``napari-mor tacs``, ``fit --rois-only``, ``fit`` and ``delta`` would run
on it with the default model, windows and k2' (one
:class:`~napari_mor.workflows.fit.FitRequest`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from napari_mor.workflows.fit import FitRequest

__all__ = ["demo_request", "run_demo"]


def demo_request(paths: dict, windows_min: dict) -> FitRequest:
    """The request the demo fits: defaults for everything but the sample's files.

    Parameters
    ----------
    paths : dict
        Files of the written sample study (``pet``, ``labels``, ``lut``,
        ``brain_mask``, and ``pet_challenge`` for two scans).
    windows_min : dict
        The study's ``baseline`` and ``challenge`` windows, minutes (one scan).
    """
    from napari_mor.workflows.fit import FitRequest

    two_scans = "pet_challenge" in paths
    return FitRequest(
        windows_min=()
        if two_scans
        else (windows_min["baseline"], windows_min["challenge"]),
        two_scans=two_scans,
        challenge_pet_path=str(paths["pet_challenge"]) if two_scans else None,
        pet_path=str(paths["pet"]),
        labels_path=str(paths["labels"]),
        lut_path=str(paths["lut"]),
        mask=str(paths["brain_mask"]),
    )


def run_demo(
    out_dir: str | Path,
    seed: int = 0,
    noise_cv: float | None = None,
    two_scans: bool = True,
) -> str:
    """Write the sample study to ``out_dir``, run the pipeline, return a summary.

    Steps: phantom files -> regional TACs -> ROI fits per condition window (k2'
    by the one policy, shared) -> voxelwise BP_ND maps per window -> delta-BP and
    percent delta-BP maps, each written with provenance.

    Parameters
    ----------
    out_dir : str or Path
        Folder for every output (created).
    seed : int
        Phantom random seed.
    noise_cv : float, optional
        Phantom voxel noise; default the phantom's.
    two_scans : bool
        A baseline and a challenge scan (default), or one scan with the
        challenge from 45 min (windowed fits; they lag the within-scan change).

    Returns
    -------
    str
        A human-readable summary: files written and recovered vs planted drops.
    """
    from napari_mor.io.tables import write_rows_tsv
    from napari_mor.rois import extract_tacs, write_tacs_tsv
    from napari_mor.sample import make_sample_study, write_sample_study
    from napari_mor.workflows.delta import (
        DELTA_COLUMNS,
        DeltaRequest,
        delta_rows_from_fits,
        run_delta,
    )
    from napari_mor.workflows.fit import (
        FIT_COLUMNS,
        fit_rois,
        fit_table_rows,
        load_fit_data,
    )
    from napari_mor.workflows.fit_maps import fit_maps_now, plan_maps, write_fit_maps

    out_dir = Path(out_dir)
    started = time.perf_counter()
    noise = {} if noise_cv is None else {"noise_cv": noise_cv}
    study = make_sample_study(seed=seed, separate_scans=two_scans, **noise)
    paths = write_sample_study(study, out_dir)
    request = demo_request(paths, study.windows_min)
    data = load_fit_data(request)
    paths["tacs"] = write_tacs_tsv(
        extract_tacs(data.pet, data.labels), out_dir / "sample_tacs.tsv"
    )
    rois = fit_rois(replace(request, rois_only=True, mask=None), data)
    paths["roi_fits"] = write_rows_tsv(
        fit_table_rows(rois), FIT_COLUMNS, out_dir / "sample_roi_fits.tsv"
    )
    roi_delta = delta_rows_from_fits(
        rois.fits, rois.labels, next(iter(rois.tacs.values())).n_voxels
    )
    paths["roi_delta"] = write_rows_tsv(
        roi_delta, DELTA_COLUMNS, out_dir / "sample_roi_delta.tsv"
    )
    plan = plan_maps(request, data)
    written = write_fit_maps(plan, fit_maps_now(plan), out_dir / "sample_bp.nii.gz")
    paths["bp_baseline"], paths["bp_challenge"] = (
        out_dir / f"sample_bp_{c}.nii.gz" for c in ("baseline", "challenge")
    )
    delta = DeltaRequest(
        baseline_path=str(paths["bp_baseline"]),
        challenge_path=str(paths["bp_challenge"]),
        out=str(out_dir / "sample_delta_bp.nii.gz"),
        percent_out=str(out_dir / "sample_pct_delta_bp.nii.gz"),
    )
    paths["delta_bp"], paths["pct_delta_bp"] = (Path(p) for p in run_delta(delta))
    region_pct = _region_means(paths["pct_delta_bp"], data.labels)
    return _summary(
        out_dir,
        paths,
        study,
        rois,
        roi_delta,
        region_pct,
        len(written),
        time.perf_counter() - started,
    )


def _region_means(pct_path: Path, labels) -> dict[str, float]:
    from napari_mor.io import load_volume

    pct = load_volume(pct_path, keep_nan=True).data
    means = {}
    for label in labels.present_labels:
        values = pct[labels.data == label]
        values = values[np.isfinite(values)]
        means[labels.name_of(label)] = float(values.mean()) if values.size else np.nan
    return means


def _summary(out_dir, paths, study, rois, roi_delta, region_pct, n_maps, elapsed):
    timing = study.pet.timing
    lines = [f"napari-mor demo: sample study and results in {out_dir.resolve()}"]
    lines += [
        f"  {role:<13} {path.name:<30} {_size(path)}" for role, path in paths.items()
    ]
    lines.append(
        f"  PET {timing.n_frames} frames x {study.pet.spatial_shape} voxels, "
        f"{timing.frame_end_min[-1]:.0f} min; reference {rois.reference}; "
        + (
            f"windows {study.windows_min}"
            if study.pet_challenge is None
            else "baseline and challenge scans"
        )
        + f"; {n_maps} parameter maps"
    )
    model = next(iter(rois.fits.values()))[0].model
    k2p = rois.k2p
    k2p_text = "no k2'" if k2p.value is None else f"k2' = {k2p.value:.3f} /min"
    lines.append(
        f"  {model.upper()} with {k2p_text} ({k2p.source}; "
        f"true {study.truth['k2p_per_min']:.3f})"
    )
    lines.append(
        "  percent delta-BP (positive = activation):"
        f"\n    {'region':<20} {'planted':>8} {'ROI fit':>8} {'voxel mean':>11}"
    )
    for row in roi_delta:
        name = row["name"]
        planted = study.truth["regions"][name]["drop_pct"]
        lines.append(
            f"    {name:<20} {planted:>7.1f}% {row['pct_delta_bp_nd']:>7.1f}% "
            f"{region_pct.get(name, np.nan):>10.1f}%"
        )
    lines += [f"  warning: {text}" for text in rois.warnings]
    if study.pet_challenge is None:
        lines.append(
            "  note: one scan with a challenge at 45 min; windowed fits under-read a "
            "within-scan change (re-equilibration lag, docs/kinetics.md)."
        )
    lines.append(f"  done in {elapsed:.1f} s")
    lines.append(
        f"Open it in napari: napari --plugin napari-mor {paths['mr']} {paths['pet']} "
        f"{paths['labels']} {paths['pct_delta_bp']}  (or napari, then File > Open "
        "Sample > napari-mor)"
    )
    return "\n".join(lines)


def _size(path: Path) -> str:
    size = Path(path).stat().st_size
    return f"{size / 1e6:.1f} MB" if size > 1e5 else f"{size / 1e3:.1f} kB"
