"""A simulated [11C]carfentanil group study (Hsu et al. 2013 design) with known truth.

Two levels:

* :func:`simulate_cohort` -- fast, map level: BP_ND baseline and challenge maps
  per subject directly on an MNI-like grid, with between-subject variation,
  a planted activation (BP_ND drop during the challenge) in chosen regions, a
  trait (resiliency) that scales the drop in other chosen regions, and spatially
  smooth measurement noise. For statistics tests and benchmarks.
* :func:`write_bids_cohort` -- full dynamic PET per subject (the digital phantom
  of :func:`napari_mor.sample.make_sample_study` with that subject's regional
  drops), written as a BIDS-like folder with ``participants.tsv``, for the
  batch pipeline.

Delta-BP = BP_baseline - BP_challenge (positive = activation).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_mor._errors import MorError
from napari_mor.io.volume import LabelImage
from napari_mor.sample.phantom import (
    _BACKGROUND,
    REGIONS,
    REJECTION_REGIONS,
    _hex_to_rgba,
    classify,
    grid_affine,
    world_coordinates,
)

__all__ = [
    "ACTIVATION_REGIONS",
    "TRAIT_REGIONS",
    "SimulatedCohort",
    "cohort_grid",
    "read_participants",
    "simulate_cohort",
    "subject_drops_pct",
    "write_bids_cohort",
    "write_participants",
]

#: Regions with a planted activation by default (Hsu et al. 2013, rejection).
ACTIVATION_REGIONS = REJECTION_REGIONS
#: Regions whose drop scales with trait resiliency by default.
TRAIT_REGIONS = ("amygdala_L", "amygdala_R", "PAG", "sgACC")
_REGION_NAMES = tuple(r.name for r in REGIONS)


@dataclass
class SimulatedCohort:
    """Map-level simulated cohort.

    Attributes
    ----------
    bp_baseline, bp_challenge : ndarray, shape (n_subjects, x, y, z), float32
        BP_ND per subject and condition (0 outside the brain).
    affine : ndarray, shape (4, 4)
        Voxel-to-world (MNI-like, mm) affine.
    mask : ndarray of bool, shape (x, y, z)
        Brain mask (gray + white matter and regions).
    labels : LabelImage
        Phantom regions on the same grid.
    participants : dict of str to list
        ``participant_id``, ``resiliency`` (trait, z-scored), ``age``, ``sex``.
    drops_pct : ndarray, shape (n_subjects, n_regions)
        True percentage BP_ND drop per subject and phantom region.
    truth : dict
        Settings and the regions with an activation / trait effect.
    """

    bp_baseline: np.ndarray
    bp_challenge: np.ndarray
    affine: np.ndarray
    mask: np.ndarray
    labels: LabelImage
    participants: dict
    drops_pct: np.ndarray
    truth: dict = field(default_factory=dict)

    @property
    def delta_bp(self) -> np.ndarray:
        """BP_baseline - BP_challenge, shape (n_subjects, x, y, z), float32."""
        return (self.bp_baseline - self.bp_challenge).astype(np.float32)

    @property
    def n_subjects(self) -> int:
        return int(self.bp_baseline.shape[0])

    @property
    def subject_ids(self) -> list[str]:
        return list(self.participants["participant_id"])


def cohort_grid(voxel_mm: float = 3.0) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the phantom's MNI-like grid at ``voxel_mm``."""
    if not 1.0 <= float(voxel_mm) <= 12.0:
        raise MorError(f"voxel_mm must be between 1 and 12 mm; got {voxel_mm!r}.")
    shape = tuple(round(n / voxel_mm) for n in (180, 216, 186))
    return shape, grid_affine(voxel_mm, shape)


def _check_regions(names, what: str) -> None:
    unknown = sorted(set(names) - set(_REGION_NAMES))
    if unknown:
        raise MorError(
            f"Unknown regions {unknown} in {what}; choose from {list(_REGION_NAMES)}."
        )


def subject_drops_pct(
    n_subjects: int,
    trait: np.ndarray,
    rng: np.random.Generator,
    activation_pct: dict[str, float],
    trait_regions: tuple[str, ...],
    trait_slope_pct: float,
    drop_sd_pct: float,
) -> np.ndarray:
    """True percentage drop per subject and phantom region.

    ``drop = activation_pct[region] + trait_slope_pct * trait (trait regions) +
    N(0, drop_sd_pct)`` in regions with an effect; 0 elsewhere.

    Returns
    -------
    drops_pct : ndarray, shape (n_subjects, n_regions)
        Columns in :data:`napari_mor.sample.REGIONS` order.
    """
    _check_regions(activation_pct, "activation_pct")
    _check_regions(trait_regions, "trait_regions")
    drops = np.zeros((n_subjects, len(REGIONS)))
    for j, name in enumerate(_REGION_NAMES):
        active = name in activation_pct or (name in trait_regions and trait_slope_pct)
        if not active:
            continue
        drops[:, j] = activation_pct.get(name, 0.0)
        if name in trait_regions:
            drops[:, j] += trait_slope_pct * trait
        drops[:, j] += rng.normal(0.0, drop_sd_pct, n_subjects)
    return drops


def _smooth_noise(shape, sigma_vox: float, rng) -> np.ndarray:
    noise = rng.standard_normal(shape)
    if sigma_vox > 0:
        noise = ndimage.gaussian_filter(noise, sigma_vox, mode="constant")
    return noise / noise.std()


def _participants(n: int, rng: np.random.Generator) -> dict:
    trait = rng.standard_normal(n)
    trait = (trait - trait.mean()) / trait.std(ddof=1)
    return {
        "participant_id": [f"sub-{i + 1:02d}" for i in range(n)],
        "resiliency": trait.round(4).tolist(),
        "age": rng.integers(19, 36, n).tolist(),
        "sex": rng.choice(["F", "M"], n).tolist(),
    }


def simulate_cohort(
    n_subjects: int = 18,
    seed: int = 0,
    voxel_mm: float = 3.0,
    activation_pct: dict[str, float] | None = None,
    trait_regions: tuple[str, ...] = TRAIT_REGIONS,
    trait_slope_pct: float = 6.0,
    drop_sd_pct: float = 2.0,
    subject_sd: float = 0.12,
    region_sd: float = 0.05,
    noise_cv: float = 0.025,
    noise_fwhm_mm: float = 8.0,
) -> SimulatedCohort:
    """Simulate BP_ND baseline/challenge maps of a cohort in MNI-like space.

    Parameters
    ----------
    n_subjects : int
        Subjects (default 18, as Hsu et al. 2013).
    seed : int
        Random seed; the same seed gives the same cohort.
    voxel_mm : float
        Isotropic grid spacing, mm (grid of the phantom, MNI-like world mm).
    activation_pct : dict of str to float, optional
        Mean percentage BP_ND drop during the challenge per region. Default 10%
        in the rejection regions (ventral striatum, amygdala, midline thalamus,
        PAG). ``{}`` plants no activation.
    trait_regions : tuple of str
        Regions whose drop scales with the trait (default amygdala, PAG, sgACC).
    trait_slope_pct : float
        Extra drop (percentage points) per trait SD; 0 for no correlation.
    drop_sd_pct : float
        Between-subject SD of the drop, percentage points, in regions with an
        effect.
    subject_sd : float
        Between-subject SD of baseline BP_ND (lognormal, fraction; 0.10-0.15 is
        typical of carfentanil).
    region_sd : float
        Extra per-region between-subject SD of baseline BP_ND (fraction).
    noise_cv : float
        Measurement noise SD as a fraction of (1 + BP_ND) per map (BP noise
        grows with tissue counts), after smoothing.
    noise_fwhm_mm : float
        Smoothness (FWHM, mm) of the measurement noise.

    Returns
    -------
    SimulatedCohort
    """
    n = int(n_subjects)
    if n < 3:
        raise MorError(f"n_subjects must be at least 3; got {n_subjects!r}.")
    activation_pct = (
        dict.fromkeys(ACTIVATION_REGIONS, 10.0)
        if activation_pct is None
        else dict(activation_pct)
    )
    trait_regions = tuple(trait_regions)
    rng = np.random.default_rng(seed)
    shape, affine = cohort_grid(voxel_mm)
    tissue, region_label = classify(world_coordinates(shape, affine))
    tissue_bp = np.array([v[1] for v in _BACKGROUND.values()])
    truth_bp = tissue_bp[tissue]
    region_bp = np.array([r.bp_nd for r in REGIONS])
    inside = region_label > 0
    truth_bp[inside] = region_bp[region_label[inside] - 1]
    names = list(_BACKGROUND)
    mask = np.isin(tissue, [names.index("gray_matter"), names.index("white_matter")])
    mask |= inside
    participants = _participants(n, rng)
    trait = np.asarray(participants["resiliency"])
    drops = subject_drops_pct(
        n, trait, rng, activation_pct, trait_regions, trait_slope_pct, drop_sd_pct
    )
    sigma_vox = noise_fwhm_mm / (np.sqrt(8 * np.log(2)) * voxel_mm)
    base = np.zeros((n, *shape), dtype=np.float32)
    chal = np.zeros_like(base)
    for i in range(n):  # per subject: whole-volume array operations
        scale = np.exp(rng.normal(0.0, subject_sd))
        region_scale = np.r_[1.0, 1.0 + rng.normal(0.0, region_sd, len(REGIONS))]
        true_base = truth_bp * scale * region_scale[region_label]
        factor = 1.0 - np.r_[0.0, drops[i]][region_label] / 100.0
        true_chal = true_base * factor
        sd = noise_cv * (1.0 + true_base)
        base[i] = (true_base + sd * _smooth_noise(shape, sigma_vox, rng)) * mask
        chal[i] = (true_chal + sd * _smooth_noise(shape, sigma_vox, rng)) * mask
    labels = LabelImage(
        data=region_label.astype(np.int32),
        affine=affine,
        lut={r.label: r.name for r in REGIONS},
        colors={r.label: _hex_to_rgba(r.color) for r in REGIONS},
    )
    truth = {
        "description": "napari-mor simulated cohort (map level)",
        "seed": seed,
        "n_subjects": n,
        "voxel_mm": voxel_mm,
        "activation_pct": activation_pct,
        "trait": "resiliency",
        "trait_regions": list(trait_regions) if trait_slope_pct else [],
        "trait_slope_pct_per_sd": trait_slope_pct,
        "drop_sd_pct": drop_sd_pct,
        "subject_sd": subject_sd,
        "region_sd": region_sd,
        "noise_cv": noise_cv,
        "noise_fwhm_mm": noise_fwhm_mm,
        "region_names": list(_REGION_NAMES),
    }
    return SimulatedCohort(
        bp_baseline=base,
        bp_challenge=chal,
        affine=affine,
        mask=mask,
        labels=labels,
        participants=participants,
        drops_pct=drops,
        truth=truth,
    )


# ------------------------------------------------------------------ files


def write_participants(path: str | Path, participants: dict) -> Path:
    """Write a BIDS ``participants.tsv`` (one row per subject, ``n/a`` missing)."""
    from napari_mor.io.tables import write_rows_tsv

    keys = list(participants)
    rows = [
        {k: participants[k][i] for k in keys} for i in range(len(participants[keys[0]]))
    ]
    path = write_rows_tsv(rows, keys, path, missing="n/a")
    return path


def read_participants(path: str | Path) -> dict[str, list]:
    """Read ``participants.tsv``: column -> values (numbers where numeric, None: n/a).

    Raises
    ------
    MorError
        Missing file or no ``participant_id`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise MorError(
            f"No participants table at {path}; write a BIDS participants.tsv "
            "(tab-separated, column participant_id, one row per subject)."
        )
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or "participant_id" not in rows[0]:
        raise MorError(
            f"{path} has no 'participant_id' column; the first line must hold the "
            "column names, tab-separated."
        )
    table: dict[str, list] = {}
    for key in rows[0]:
        values = [(row.get(key) or "").strip() for row in rows]
        missing = {"", "n/a", "na", "nan"}
        try:
            table[key] = [None if v.lower() in missing else float(v) for v in values]
        except ValueError:
            table[key] = [None if v.lower() in missing else v for v in values]
        if key == "participant_id":
            table[key] = [v if v.startswith("sub-") else f"sub-{v}" for v in values]
    return table


def write_bids_cohort(
    out_dir: str | Path,
    n_subjects: int = 18,
    seed: int = 0,
    pet_voxel_mm: float = 3.0,
    mr_voxel_mm: float = 1.5,
    activation_pct: dict[str, float] | None = None,
    trait_regions: tuple[str, ...] = TRAIT_REGIONS,
    trait_slope_pct: float = 6.0,
    drop_sd_pct: float = 2.0,
    noise_cv: float = 0.10,
    subject_sd: float = 0.12,
    sessions: int = 1,
    session_names: tuple[str, str] = ("baseline", "challenge"),
) -> dict:
    """Write a BIDS-like cohort of dynamic PET studies (digital phantom).

    Each subject is :func:`napari_mor.sample.make_sample_study` with
    ``seed = seed * 1000 + i`` and its own regional drops (activation + trait +
    between-subject SD, as in :func:`simulate_cohort`). Layout::

        out_dir/participants.tsv               participant_id, resiliency, age, sex
        out_dir/dataset_description.json
        out_dir/sub-XX/pet/sub-XX_pet.nii.gz   + sub-XX_pet.json (BIDS-PET timing)
        out_dir/sub-XX/anat/sub-XX_T1w.nii.gz
        out_dir/atlas/space-MNI_labels.nii.gz  + .tsv (phantom regions, PET grid)
        out_dir/atlas/space-MNI_brainmask.nii.gz
        out_dir/cohort_truth.json              drops per subject and region

    With ``sessions=2`` each subject has two 90-min scans,
    ``sub-XX/ses-<baseline>/pet/sub-XX_ses-<baseline>_pet.nii.gz`` and
    ``sub-XX/ses-<challenge>/pet/...`` (``session_names``; the challenge binding
    throughout the second scan, ``make_sample_study(separate_scans=True)``),
    and the T1w in ``ses-<baseline>/anat/``.

    The phantom already lives in MNI-like space, so registration is identity.
    Subjects differ by their drops, their noise and their baseline BP_ND: every
    region's BP_ND is scaled by ``exp(N(0, subject_sd))`` per subject (the
    phantom's ``bp_scale``), the usual 10-15% between-subject SD.

    sessions : {1, 2}
        One scan per subject (challenge from 45 min, condition windows) or two
        scans (baseline, challenge).
    session_names : (str, str)
        Session labels of the baseline and the challenge scan (``sessions=2``).

    Returns
    -------
    dict
        Paths by role (``participants``, ``labels``, ``lut``, ``brain_mask``,
        ``truth``, ``subjects``: list of subject folders).
    """
    from napari_mor.io import write_json, write_lut, write_nifti, write_pet
    from napari_mor.sample.phantom import make_sample_study

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = int(n_subjects)
    if n < 1:
        raise MorError(f"n_subjects must be at least 1; got {n_subjects!r}.")
    if sessions not in (1, 2):
        raise MorError(f"sessions must be 1 or 2; got {sessions!r}.")
    session_names = tuple(str(v) for v in session_names)
    if sessions == 2 and (
        len(session_names) != 2
        or session_names[0] == session_names[1]
        or not all(v.isalnum() for v in session_names)
    ):
        raise MorError(
            f"session_names must be two different alphanumeric labels; got "
            f"{session_names!r}."
        )
    activation_pct = (
        dict.fromkeys(ACTIVATION_REGIONS, 10.0)
        if activation_pct is None
        else dict(activation_pct)
    )
    rng = np.random.default_rng(seed)
    participants = _participants(n, rng)
    trait = np.asarray(participants["resiliency"])
    drops = subject_drops_pct(
        n,
        trait,
        rng,
        activation_pct,
        tuple(trait_regions),
        trait_slope_pct,
        drop_sd_pct,
    )
    bp_scales = np.exp(rng.normal(0.0, subject_sd, n))
    subjects = []
    study = None
    for i, sub in enumerate(participants["participant_id"]):
        drop_pct = {
            r.name: float(drops[i, j]) for j, r in enumerate(REGIONS) if drops[i, j]
        }
        study = make_sample_study(
            seed=seed * 1000 + i,
            pet_voxel_mm=pet_voxel_mm,
            mr_voxel_mm=mr_voxel_mm,
            drop_pct=drop_pct,
            noise_cv=noise_cv,
            bp_scale=float(bp_scales[i]),
            separate_scans=sessions == 2,
        )
        folder = out_dir / sub
        prov = {"Source": "napari-mor simulated cohort", "Seed": seed * 1000 + i}
        anat = folder / "anat" / f"{sub}_T1w.nii.gz"
        if sessions == 2:
            base, chal = session_names
            for label, scan in ((base, study.pet), (chal, study.pet_challenge)):
                pet = folder / f"ses-{label}" / "pet" / f"{sub}_ses-{label}_pet.nii.gz"
                write_pet(pet, scan, prov)
            anat = folder / f"ses-{base}" / "anat" / f"{sub}_ses-{base}_T1w.nii.gz"
        else:
            write_pet(folder / "pet" / f"{sub}_pet.nii.gz", study.pet, prov)
        write_nifti(
            anat,
            study.mr.data,
            study.mr.affine,
            prov,
            np.int16,
        )
        subjects.append(folder)
    atlas = out_dir / "atlas"
    prov = {"Source": "napari-mor simulated cohort (phantom regions, MNI-like)"}
    paths = {
        "participants": write_participants(out_dir / "participants.tsv", participants),
        "labels": write_nifti(
            atlas / "space-MNI_labels.nii.gz",
            study.labels.data,
            study.labels.affine,
            prov,
            np.int16,
        ),
        "lut": write_lut(
            study.labels.lut, atlas / "space-MNI_labels.tsv", study.labels.colors
        ),
        "brain_mask": write_nifti(
            atlas / "space-MNI_brainmask.nii.gz",
            study.brain_mask,
            study.pet.affine,
            prov,
            np.uint8,
        ),
        "template": write_nifti(
            atlas / "space-MNI_T1w.nii.gz",
            study.mr.data,
            study.mr.affine,
            prov,
            np.int16,
        ),
    }
    write_json(
        out_dir / "dataset_description.json",
        {
            "Name": "napari-mor simulated cohort",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
        },
    )
    paths["truth"] = write_json(
        out_dir / "cohort_truth.json",
        {
            "seed": seed,
            "activation_pct": activation_pct,
            "trait_regions": list(trait_regions) if trait_slope_pct else [],
            "trait_slope_pct_per_sd": trait_slope_pct,
            "drop_sd_pct": drop_sd_pct,
            "noise_cv": noise_cv,
            "pet_voxel_mm": pet_voxel_mm,
            "sessions": sessions,
            "session_names": list(session_names) if sessions == 2 else [],
            "drops_pct": {
                sub: dict(zip(_REGION_NAMES, drops[i].round(4).tolist(), strict=True))
                for i, sub in enumerate(participants["participant_id"])
            },
        },
    )
    paths["subjects"] = subjects
    return paths
