"""A digital [11C]carfentanil bolus+infusion study with known truth.

The head lives in MNI-like world coordinates (mm). Regions sit at the MNI
positions of the mission's regions; each has two-tissue kinetics whose k3 (and so
BP_ND = k3/k4) drops by a chosen percentage at the start of the challenge. The
occipital reference has one-tissue kinetics (no specific binding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor.defaults import DEFAULT_CHALLENGE_ONSET_MIN
from napari_mor.defaults import DEFAULT_WINDOWS_MIN as _DEFAULT_WINDOWS_MIN
from napari_mor.io.pet import DynamicPET, write_pet
from napari_mor.io.timing import FrameTiming
from napari_mor.io.volume import LabelImage, Volume, write_lut
from napari_mor.io.writers import write_json, write_nifti
from napari_mor.sample.kinetics_sim import (
    C11_DECAY_PER_MIN,
    bolus_infusion_input,
    fine_time_grid_min,
    frame_average,
    two_tissue_response,
)

#: Frame schedule, (count, length in minutes): 28 frames, 90 min.
FRAME_SCHEDULE_MIN = ((6, 0.5), (3, 1.0), (3, 2.0), (2, 4.0), (14, 5.0))

#: Condition windows, minutes from injection (the analysis default).
DEFAULT_WINDOWS_MIN = dict(_DEFAULT_WINDOWS_MIN)

#: Regions drop in BP_ND during the challenge (Hsu et al. 2013, rejection).
REJECTION_REGIONS = (
    "ventral_striatum_L",
    "ventral_striatum_R",
    "amygdala_L",
    "amygdala_R",
    "midline_thalamus",
    "PAG",
)

K2_PER_MIN = 0.20
#: Receptor dissociation rate of the sample, 1/min: [11C]carfentanil dissociates
#: slowly (k4 ~0.05-0.1 /min), so targets are far from one-compartment behaviour.
K4_PER_MIN = 0.10
K1_ML_MIN_ML = 0.30
#: Bolus-to-infusion ratio of the sample, minutes: plasma ~flat after ~30 min.
KBOL_MIN = 50.0


@dataclass(frozen=True)
class Region:
    """A labelled region: ellipsoids at MNI positions and its baseline BP_ND."""

    label: int
    name: str
    centers_mm: tuple[tuple[float, float, float], ...]
    radii_mm: tuple[float, float, float]
    bp_nd: float
    r1: float = 1.0
    color: str = "#808080"


REGIONS = (
    Region(1, "occipital_ref", ((0, -88, 6),), (30, 14, 20), 0.0, 1.0, "#4a90d9"),
    Region(2, "ventral_striatum_L", ((-10, 12, -8),), (5, 6, 5), 2.6, 1.05, "#e6194b"),
    Region(3, "ventral_striatum_R", ((10, 12, -8),), (5, 6, 5), 2.6, 1.05, "#f58231"),
    Region(4, "amygdala_L", ((-23, -4, -18),), (6, 7, 6), 2.4, 0.95, "#3cb44b"),
    Region(5, "amygdala_R", ((23, -4, -18),), (6, 7, 6), 2.4, 0.95, "#bfef45"),
    Region(6, "midline_thalamus", ((0, -16, 7),), (6, 9, 7), 3.0, 1.1, "#911eb4"),
    Region(7, "PAG", ((0, -30, -10),), (4.5, 4.5, 4.5), 2.0, 1.0, "#f032e6"),
    Region(8, "sgACC", ((0, 21, -10),), (6, 6, 6), 2.0, 1.0, "#42d4f4"),
    Region(9, "pgACC", ((-8, 41, 5), (8, 41, 5)), (6, 6, 6), 1.7, 1.0, "#469990"),
    Region(10, "anterior_insula_L", ((-36, 16, 2),), (5, 9, 9), 1.6, 1.0, "#ffe119"),
    Region(11, "anterior_insula_R", ((36, 16, 2),), (5, 9, 9), 1.6, 1.0, "#9a6324"),
)

# Background tissue classes: name -> (K1 scale, BP_ND, T1 intensity).
_BACKGROUND = {
    "air": (0.0, 0.0, 0.0),
    "scalp": (0.08, 0.0, 70.0),
    "skull": (0.02, 0.0, 12.0),
    "csf": (0.0, 0.0, 25.0),
    "gray_matter": (1.0, 0.6, 65.0),
    "white_matter": (0.55, 0.15, 105.0),
}
_T1_REGION = 62.0

BRAIN_CENTER_MM = np.array([0.0, -17.0, 14.0])
BRAIN_RADII_MM = np.array([70.0, 88.0, 64.0])


@dataclass(frozen=True)
class SampleStudy:
    """Everything the phantom generates, with the truth."""

    pet: DynamicPET
    mr: Volume
    labels: LabelImage
    brain_mask: np.ndarray
    truth: dict
    windows_min: dict[str, tuple[float, float]]
    pet_challenge: DynamicPET | None = None
    extra: dict = field(default_factory=dict)


def frame_timing(schedule=FRAME_SCHEDULE_MIN) -> FrameTiming:
    """Frame timing of a ``(count, length_min)`` schedule, starting at injection."""
    lengths_min = np.concatenate([np.full(n, length) for n, length in schedule])
    starts_min = np.concatenate([[0.0], np.cumsum(lengths_min)[:-1]])
    return FrameTiming(starts_min * 60.0, lengths_min * 60.0)


def grid_affine(voxel_mm: float, shape, tilt_deg: float = 0.0) -> np.ndarray:
    """Voxel->world affine of a grid centred on the head, tilted about x."""
    angle = np.deg2rad(tilt_deg)
    rotation = np.array(
        [
            [1, 0, 0],
            [0, np.cos(angle), -np.sin(angle)],
            [0, np.sin(angle), np.cos(angle)],
        ]
    )
    linear = rotation * voxel_mm
    center_voxel = (np.asarray(shape) - 1) / 2.0
    head_center = np.array([0.0, -18.0, 18.0])
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = head_center - linear @ center_voxel
    return affine


def world_coordinates(shape, affine: np.ndarray) -> np.ndarray:
    """World (mm) coordinates of every voxel centre, shape (x, y, z, 3)."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    return index @ affine[:3, :3].T + affine[:3, 3]


def _inside(world: np.ndarray, center, radii) -> np.ndarray:
    scaled = (world - np.asarray(center, dtype=float)) / np.asarray(radii, dtype=float)
    return (scaled**2).sum(axis=-1) <= 1.0


def classify(world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Background tissue class and region label of each world point.

    Returns
    -------
    tissue : ndarray of int, shape world.shape[:-1]
        Index into ``_BACKGROUND`` order.
    region_label : ndarray of int
        Region label (0 outside every region).
    """
    names = list(_BACKGROUND)
    tissue = np.zeros(world.shape[:-1], dtype=np.int16)
    tissue[_inside(world, BRAIN_CENTER_MM, BRAIN_RADII_MM + 14)] = names.index("scalp")
    tissue[_inside(world, BRAIN_CENTER_MM, BRAIN_RADII_MM + 8)] = names.index("skull")
    brain = _inside(world, BRAIN_CENTER_MM, BRAIN_RADII_MM + 2)
    tissue[brain] = names.index("csf")
    tissue[_inside(world, BRAIN_CENTER_MM, BRAIN_RADII_MM)] = names.index("gray_matter")
    tissue[_inside(world, BRAIN_CENTER_MM, BRAIN_RADII_MM * 0.8)] = names.index(
        "white_matter"
    )
    for side in (-1, 1):
        ventricle = _inside(world, (12 * side, -10, 18), (5, 24, 7))
        tissue[ventricle] = names.index("csf")
    region_label = np.zeros(world.shape[:-1], dtype=np.int16)
    cortex = _inside(world, BRAIN_CENTER_MM, BRAIN_RADII_MM)
    for region in REGIONS:
        for center in region.centers_mm:
            region_label[_inside(world, center, region.radii_mm) & cortex] = (
                region.label
            )
    return tissue, region_label


def _compartments(
    drop_pct: dict[str, float], bp_scale: float = 1.0, k4_per_min: float = K4_PER_MIN
):
    """Kinetic parameters per compartment (backgrounds, then regions).

    ``bp_scale`` multiplies every baseline BP_ND (between-subject variation);
    ``k3 = BP_ND * k4``.
    """
    names, k1, k3_base, k3_chal = [], [], [], []
    for name, (k1_scale, bp_nd, _) in _BACKGROUND.items():
        names.append(name)
        k1.append(K1_ML_MIN_ML * k1_scale)
        k3_base.append(bp_nd * k4_per_min)
        k3_chal.append(bp_nd * k4_per_min)
    for region in REGIONS:
        names.append(region.name)
        k1.append(K1_ML_MIN_ML * region.r1)
        k3_base.append(region.bp_nd * bp_scale * k4_per_min)
        factor = 1.0 - drop_pct.get(region.name, 0.0) / 100.0
        k3_chal.append(region.bp_nd * bp_scale * k4_per_min * factor)
    k1 = np.asarray(k1)
    k2 = np.where(k1 > 0, K2_PER_MIN * k1 / K1_ML_MIN_ML, K2_PER_MIN)
    # Non-displaceable volume stays K1'/k2' everywhere (R1 changes k2 too).
    return names, k1, k2, np.asarray(k3_base), np.asarray(k3_chal)


def simulate_compartment_tacs(
    timing: FrameTiming,
    drop_pct: dict[str, float],
    change_min: float,
    kbol_min: float = KBOL_MIN,
    bp_scale: float = 1.0,
    k4_per_min: float = K4_PER_MIN,
) -> tuple[list[str], np.ndarray, dict]:
    """Noise-free frame-averaged TACs of every compartment, kBq/mL.

    Returns
    -------
    names : list of str
    tacs : ndarray, shape (n_frames, n_compartments)
    params : dict
        K1, k2, k3 (baseline, challenge), k4 per compartment.
    """
    names, k1, k2, k3_base, k3_chal = _compartments(drop_pct, bp_scale, k4_per_min)
    t_min = fine_time_grid_min(timing.frame_end_min[-1])
    cp = bolus_infusion_input(t_min, kbol_min=kbol_min)
    k4 = np.full_like(k1, k4_per_min)
    fine = two_tissue_response(t_min, cp, k1, k2, k3_base, k4, k3_chal, change_min)
    tacs = frame_average(t_min, fine, timing.frame_start_min, timing.frame_end_min)
    params = {
        "K1": k1,
        "k2": k2,
        "k3_baseline": k3_base,
        "k3_challenge": k3_chal,
        "k4": k4,
    }
    return names, tacs, params


def _noisy_frames(
    tacs_per_voxel: np.ndarray, timing: FrameTiming, noise_cv: float, rng
) -> np.ndarray:
    """Add Gaussian noise with SD ~ sqrt(activity x decay / duration).

    ``noise_cv`` is the coefficient of variation of a 5-min frame at 60 min for
    5 kBq/mL (a typical carfentanil voxel), so noise scales like real counts.
    """
    decay = np.exp(C11_DECAY_PER_MIN * timing.frame_mid_min)
    ref_sd = noise_cv * 5.0
    ref_scale = np.sqrt(5.0 * np.exp(C11_DECAY_PER_MIN * 60.0) / 5.0)
    scale = ref_sd / ref_scale
    variance = (
        np.clip(tacs_per_voxel, 0, None) * (decay / timing.frame_duration_min)[:, None]
    )
    sd = scale * np.sqrt(variance)
    noise = rng.standard_normal(tacs_per_voxel.shape, dtype=np.float32)
    return tacs_per_voxel + sd.astype(np.float32) * noise


def _make_pet(
    tissue, region_label, affine, timing, drop_pct, change_min, noise_cv, rng, kinetics
) -> tuple[DynamicPET, list[str], np.ndarray]:
    names, tacs, _ = simulate_compartment_tacs(timing, drop_pct, change_min, **kinetics)
    compartment = tissue.astype(np.int32)
    compartment = np.where(
        region_label > 0, len(_BACKGROUND) + region_label - 1, compartment
    )
    voxel_tacs = tacs[:, compartment.ravel()].astype(np.float32)
    if noise_cv > 0:
        voxel_tacs = _noisy_frames(voxel_tacs, timing, noise_cv, rng)
    data = voxel_tacs.reshape((timing.n_frames, *tissue.shape))
    sidecar = {
        "Modality": "PT",
        "TracerName": "carfentanil",
        "TracerRadionuclide": "C11",
        "ModeOfAdministration": "bolus-infusion",
        "BolusToInfusionRatioMin": kinetics["kbol_min"],
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0,
        "Units": "kBq/mL",
        "TimeZero": "00:00:00",
        "InjectionStart": 0,
    }
    pet = DynamicPET(
        data=np.ascontiguousarray(data, dtype=np.float32),
        affine=affine,
        timing=timing,
        decay_corrected=True,
        radionuclide="C11",
        sidecar=sidecar,
    )
    return pet, names, tacs


def _make_mr(mr_voxel_mm: float, tilt_deg: float, rng) -> Volume:
    shape = tuple(round(n / mr_voxel_mm) for n in (176, 212, 180))
    affine = grid_affine(mr_voxel_mm, shape, tilt_deg)
    tissue, region_label = classify(world_coordinates(shape, affine))
    intensity = np.array([v[2] for v in _BACKGROUND.values()], dtype=np.float32)
    t1 = intensity[tissue]
    t1[region_label > 0] = _T1_REGION
    t1 += rng.normal(0, 2.0, t1.shape).astype(np.float32) * (t1 > 0)
    return Volume(data=np.clip(t1, 0, None), affine=affine)


def make_sample_study(
    seed: int = 0,
    pet_voxel_mm: float = 3.0,
    mr_voxel_mm: float = 1.5,
    mr_tilt_deg: float = 8.0,
    drop_pct: dict[str, float] | None = None,
    noise_cv: float = 0.08,
    separate_scans: bool = False,
    windows_min: dict[str, tuple[float, float]] | None = None,
    bp_scale: float = 1.0,
    k4_per_min: float = K4_PER_MIN,
    kbol_min: float = KBOL_MIN,
    challenge_onset_min: float = DEFAULT_CHALLENGE_ONSET_MIN,
) -> SampleStudy:
    """Generate the sample study in memory.

    Parameters
    ----------
    seed : int
        Random seed; the same seed gives the same study.
    pet_voxel_mm, mr_voxel_mm : float
        Isotropic voxel sizes, mm. The MR grid is also tilted by ``mr_tilt_deg``.
    drop_pct : dict[str, float], optional
        Percentage drop of BP_ND during the challenge per region name. Defaults
        to 10% in the rejection regions of Hsu et al. (2013).
    noise_cv : float
        Voxel noise, coefficient of variation of a 5-min frame at 60 min; 0 for
        noise-free data.
    separate_scans : bool
        When True, ``pet`` is a whole 90-min baseline scan and ``pet_challenge`` a
        second 90-min scan with the challenge binding throughout.
    windows_min : dict, optional
        Condition windows in minutes recorded with the study (default
        :data:`napari_mor.defaults.DEFAULT_WINDOWS_MIN`).
    bp_scale : float
        Multiplies every region's baseline BP_ND (a subject with more or fewer
        receptors); the truth records the scaled values.
    k4_per_min : float
        Receptor dissociation rate of every target, 1/min (carfentanil-like
        0.05-0.1; 0.6 behaves like one tissue compartment).
    kbol_min : float
        Bolus-to-infusion ratio, minutes.
    challenge_onset_min : float
        Start of the challenge in the one-scan design, minutes from injection.

    Returns
    -------
    SampleStudy
    """
    rng = np.random.default_rng(seed)
    drop_pct = dict.fromkeys(REJECTION_REGIONS, 10.0) if drop_pct is None else drop_pct
    unknown = set(drop_pct) - {r.name for r in REGIONS}
    if unknown:
        from napari_mor._errors import MorError

        raise MorError(
            f"Unknown regions {sorted(unknown)} in drop_pct; choose from "
            f"{[r.name for r in REGIONS]}."
        )
    windows_min = dict(windows_min or DEFAULT_WINDOWS_MIN)
    timing = frame_timing()
    shape = tuple(round(n / pet_voxel_mm) for n in (180, 216, 186))
    affine = grid_affine(pet_voxel_mm, shape)
    tissue, region_label = classify(world_coordinates(shape, affine))
    change_min = np.inf if separate_scans else float(challenge_onset_min)
    kinetics = {"kbol_min": kbol_min, "bp_scale": bp_scale, "k4_per_min": k4_per_min}
    pet, names, tacs = _make_pet(
        tissue,
        region_label,
        affine,
        timing,
        drop_pct,
        change_min,
        noise_cv,
        rng,
        kinetics,
    )
    pet_challenge = None
    if separate_scans:
        pet_challenge, _, _ = _make_pet(
            tissue, region_label, affine, timing, drop_pct, 0.0, noise_cv, rng, kinetics
        )
    labels = LabelImage(
        data=region_label.astype(np.int32),
        affine=affine,
        lut={r.label: r.name for r in REGIONS},
        colors={r.label: _hex_to_rgba(r.color) for r in REGIONS},
    )
    brain_tissues = [
        list(_BACKGROUND).index(n) for n in ("gray_matter", "white_matter")
    ]
    brain_mask = np.isin(tissue, brain_tissues) | (region_label > 0)
    truth = _truth(
        drop_pct,
        windows_min,
        seed,
        noise_cv,
        separate_scans,
        names,
        tacs,
        timing,
        {**kinetics, "challenge_onset_min": None if separate_scans else change_min},
    )
    return SampleStudy(
        pet=pet,
        mr=_make_mr(mr_voxel_mm, mr_tilt_deg, rng),
        labels=labels,
        brain_mask=brain_mask,
        truth=truth,
        windows_min=windows_min,
        pet_challenge=pet_challenge,
    )


def _hex_to_rgba(color: str) -> tuple[float, float, float, float]:
    digits = color.lstrip("#")
    return (*(int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)), 1.0)


def _truth(
    drop_pct, windows_min, seed, noise_cv, separate_scans, names, tacs, timing, kinetics
):
    bp_scale, k4_per_min = kinetics["bp_scale"], kinetics["k4_per_min"]
    regions = {}
    for region in REGIONS:
        drop = drop_pct.get(region.name, 0.0)
        regions[region.name] = {
            "label": region.label,
            "mni_centers_mm": [list(c) for c in region.centers_mm],
            "radii_mm": list(region.radii_mm),
            "R1": region.r1,
            "k2_per_min": K2_PER_MIN * region.r1,
            "k4_per_min": k4_per_min,
            "bp_nd_baseline": region.bp_nd * bp_scale,
            "bp_nd_challenge": region.bp_nd * bp_scale * (1 - drop / 100.0),
            "drop_pct": drop,
            "noise_free_tac_kbq_ml": tacs[:, names.index(region.name)]
            .round(5)
            .tolist(),
        }
    return {
        "description": "napari-mor digital [11C]carfentanil bolus+infusion phantom",
        "reference_region": "occipital_ref",
        "k2p_per_min": K2_PER_MIN,
        "windows_min": {k: list(v) for k, v in windows_min.items()},
        "separate_scans": separate_scans,
        "seed": seed,
        "noise_cv": noise_cv,
        "bp_scale": bp_scale,
        "kbol_min": kinetics["kbol_min"],
        "challenge_onset_min": kinetics["challenge_onset_min"],
        "frame_start_s": timing.frame_start_s.tolist(),
        "frame_duration_s": timing.frame_duration_s.tolist(),
        "regions": regions,
        "notes": (
            "BP_ND = k3/k4 of a two-tissue target model; the occipital reference is "
            "one-tissue. k3 drops by drop_pct at the challenge start, so BP_ND "
            "estimated over a challenge window lags the true value until the "
            "tissue re-equilibrates."
        ),
    }


def write_sample_study(study: SampleStudy, out_dir: str | Path) -> dict[str, Path]:
    """Write the sample study as NIfTI + JSON files; return the paths by role."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance = {"Source": "napari-mor sample phantom", "Seed": study.truth["seed"]}
    paths = {
        "pet": write_pet(out_dir / "sample_pet.nii.gz", study.pet, provenance),
        "mr": write_nifti(
            out_dir / "sample_T1w.nii.gz",
            study.mr.data,
            study.mr.affine,
            provenance,
            np.int16,
        ),
        "labels": write_nifti(
            out_dir / "sample_labels.nii.gz",
            study.labels.data,
            study.labels.affine,
            provenance,
            np.int16,
        ),
        "lut": write_lut(
            study.labels.lut, out_dir / "sample_labels.tsv", study.labels.colors
        ),
        "brain_mask": write_nifti(
            out_dir / "sample_brainmask.nii.gz",
            study.brain_mask,
            study.pet.affine,
            provenance,
            np.uint8,
        ),
        "truth": write_json(out_dir / "sample_truth.json", study.truth),
    }
    if study.pet_challenge is not None:
        paths["pet_challenge"] = write_pet(
            out_dir / "sample_challenge_pet.nii.gz", study.pet_challenge, provenance
        )
    return paths
