"""Cohort maps on disk: the usable subjects' BP and delta-BP maps, simulated cohorts."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.group.design import _read_participants_of
from napari_mor.group.manifest import (
    CONDITIONS,
    MANIFEST_VERSION,
    _output_hashes,
    _output_paths,
    _outputs_problem,
    _read_manifest,
)


@dataclass
class CohortMaps:
    """Per-subject maps of a maps folder, stacked on one grid.

    ``missing`` lists the subjects left out and ``left_out`` says why (no
    manifest, failed in the last run, maps that do not match the manifest).
    """

    subjects: list[str]
    delta: np.ndarray
    baseline: np.ndarray | None
    challenge: np.ndarray | None
    affine: np.ndarray
    participants: dict
    missing: list[str]
    left_out: dict[str, str] = field(default_factory=dict)

    def covariate(self, name: str) -> np.ndarray:
        """Values of a participants.tsv column, in subject order."""
        if name not in self.participants:
            raise MorError(
                f"participants.tsv has no column {name!r}; columns: "
                f"{sorted(self.participants)}."
            )
        ids = list(self.participants["participant_id"])
        values = []
        for sub in self.subjects:
            if sub not in ids:
                raise MorError(f"{sub} is not in participants.tsv.")
            values.append(self.participants[name][ids.index(sub)])
        if any(v is None or isinstance(v, str) for v in values):
            raise MorError(f"Column {name!r} has missing or non-numeric values.")
        return np.asarray(values, dtype=np.float64)


def usable_subjects(maps_dir: str | Path) -> tuple[list[str], dict[str, str]]:
    """Subjects of a maps folder whose maps may be used, and why others may not.

    A subject is usable when its ``manifest.json`` is sealed (records the
    SHA-256 of its maps, written after them), every map it lists hashes to the
    recorded value, and the last ``group run`` (``batch_report.json``, when
    present) included it and did not report it as failed.

    Returns
    -------
    usable : list of str
        Subject ids (``sub-XX``), sorted.
    left_out : dict of str to str
        Subject id -> reason, for the others.
    """
    maps_dir = Path(maps_dir)
    folders = sorted(p for p in maps_dir.glob("sub-*") if p.is_dir())
    report = _read_manifest(maps_dir / "batch_report.json")
    last_run = None
    if report is not None and isinstance(report.get("subjects"), list):
        last_run = {
            r.get("subject"): r.get("status")
            for r in report["subjects"]
            if isinstance(r, dict)
        }
    usable, left_out = [], {}
    for folder in folders:
        sub = folder.name
        manifest_path = folder / "manifest.json"
        manifest = _read_manifest(manifest_path)
        if last_run is not None and sub not in last_run:
            left_out[sub] = "not part of the last 'group run' (batch_report.json)"
        elif last_run is not None and last_run[sub] == "failed":
            left_out[sub] = "failed in the last 'group run' (batch_report.json)"
        elif manifest is None:
            left_out[sub] = (
                "no readable manifest.json (maps not written by 'napari-mor group "
                "run' or 'group simulate', or the run was interrupted)"
            )
        else:
            problem = _outputs_problem(manifest, _output_paths(maps_dir, sub))
            if problem is None:
                usable.append(sub)
            else:
                left_out[sub] = problem
    return usable, left_out


def load_cohort_maps(
    maps_dir: str | Path, participants: str | Path | None = None
) -> CohortMaps:
    """Stack the subjects' maps written by :func:`run_batch` (or ``group simulate``).

    Only subjects whose maps match their manifest are used (see
    :func:`usable_subjects`); the others are listed in ``missing`` with the
    reason in ``left_out``.

    Raises
    ------
    MorError
        No ``sub-*`` folders, fewer than 3 usable subjects, a map that cannot
        be read, maps on different grids, or an unreadable participants table.
    """
    from napari_mor.io._nifti import affine_of, load_image, read_data
    from napari_mor.io.grid import same_grid

    maps_dir = Path(maps_dir)
    if not maps_dir.is_dir():
        raise MorError(
            f"{maps_dir} is not a folder; give the maps folder written by "
            "'napari-mor group run' (or 'group simulate')."
        )
    if not any(p.is_dir() for p in maps_dir.glob("sub-*")):
        raise MorError(
            f"No sub-* folders in {maps_dir}; run 'napari-mor group run' first."
        )
    usable, left_out = usable_subjects(maps_dir)
    subjects, affine, shape = [], None, None
    stacks = {c: [] for c in (*CONDITIONS, "delta")}
    for sub in usable:
        for c, path in _output_paths(maps_dir, sub).items():
            if not path.is_file():
                continue
            image = load_image(path)
            if len(image.shape) != 3:
                raise MorError(
                    f"{path} has shape {tuple(image.shape)}; a 3D map was expected."
                )
            image_affine = affine_of(image, path)
            if affine is None:
                affine, shape = image_affine, tuple(image.shape)
            elif not same_grid(image.shape, image_affine, shape, affine):
                raise MorError(
                    f"{path.name} is on another grid than the first subject; "
                    "register all subjects to the same MNI grid."
                )
            stacks[c].append(read_data(image, path))
        subjects.append(sub)
    if len(subjects) < 3:
        why = "; ".join(f"{s}: {r}" for s, r in left_out.items())
        raise MorError(
            f"Only {len(subjects)} subjects have usable delta-BP maps in {maps_dir}; "
            "a group test needs at least 3." + (f" Left out: {why}." if why else "")
        )
    table = _read_participants_of(maps_dir, participants)
    full = {
        c: np.stack(v) if len(v) == len(subjects) else None for c, v in stacks.items()
    }
    return CohortMaps(
        subjects,
        full["delta"],
        full["baseline"],
        full["challenge"],
        affine,
        table,
        sorted(left_out),
        left_out,
    )


def write_cohort_maps(cohort, out_dir: str | Path) -> Path:
    """Write a map-level :class:`~napari_mor.sample.SimulatedCohort` as a maps folder.

    Same layout as :func:`run_batch` output, plus ``atlas/`` (phantom labels,
    brain mask) and ``cohort_truth.json``.
    """
    from napari_mor.io import write_json, write_lut, write_nifti
    from napari_mor.sample.cohort import write_participants

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    delta = cohort.delta_bp
    prov = {"Source": "napari-mor simulated cohort (map level)"}
    for i, sub in enumerate(cohort.subject_ids):
        paths = _output_paths(out_dir, sub)
        for c, data in (
            ("baseline", cohort.bp_baseline[i]),
            ("challenge", cohort.bp_challenge[i]),
            ("delta", delta[i]),
        ):
            data = np.where(cohort.mask, data, np.nan)
            write_nifti(paths[c], data, cohort.affine, prov)
        # sealed like a batch manifest, so 'group stats' can check the maps
        write_json(
            out_dir / sub / "manifest.json",
            {
                "version": MANIFEST_VERSION,
                "inputs": {"source": prov["Source"]},
                "settings": {},
                "outputs": _output_hashes(paths),
            },
        )
    write_participants(out_dir / "participants.tsv", cohort.participants)
    atlas = out_dir / "atlas"
    write_nifti(
        atlas / "space-MNI_labels.nii.gz",
        cohort.labels.data,
        cohort.affine,
        prov,
        np.int16,
    )
    write_lut(cohort.labels.lut, atlas / "space-MNI_labels.tsv", cohort.labels.colors)
    write_nifti(
        atlas / "space-MNI_brainmask.nii.gz", cohort.mask, cohort.affine, prov, np.uint8
    )
    truth = dict(cohort.truth)
    truth["drops_pct"] = {
        sub: dict(
            zip(
                truth["region_names"],
                cohort.drops_pct[i].round(4).tolist(),
                strict=True,
            )
        )
        for i, sub in enumerate(cohort.subject_ids)
    }
    write_json(out_dir / "cohort_truth.json", truth)
    return out_dir


def copy_atlas(src_root: str | Path, out_dir: str | Path) -> None:
    """Copy ``atlas/`` (phantom labels / template) of a cohort into a maps folder."""
    src = Path(src_root) / "atlas"
    if src.is_dir():
        shutil.copytree(src, Path(out_dir) / "atlas", dirs_exist_ok=True)


def find_region_labels(folder: str | Path):
    """The phantom region labels of a simulated cohort (``atlas/``), or None."""
    from napari_mor.io import load_labels

    path = Path(folder) / "atlas" / "space-MNI_labels.nii.gz"
    if not path.is_file():
        return None
    return load_labels(path)
