"""Frame-by-frame rigid motion correction of dynamic PET.

Each frame with enough counts is registered rigidly (Mattes mutual
information, SimpleITK regular-step gradient descent) onto a reference image,
the duration-weighted mean of chosen frames (late frames, 20-90 min, by
default), and resampled through its transform onto the original grid.
Early, low-count or empty frames are left as they are and reported.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from napari_mor._errors import MorError, MorWarning
from napari_mor.io.pet import DynamicPET
from napari_mor.registration import _sitk as S
from napari_mor.registration.coreg import (
    DEFAULT_MEAN_WINDOW_MIN,
    _center_of_mass_mm,
    mean_pet_image,
    run_to_end,
)
from napari_mor.registration.transforms import (
    Transform,
    brain_points_mm,
    resample_map,
)

#: Pyramid for frame registration on the PET grid: (shrink, smoothing mm).
MOTION_LEVELS = ((2, 6.0), (1, 4.0))

#: Half-lives (minutes) used to turn decay-corrected activity back into counts.
HALF_LIFE_MIN = {"C11": 20.38, "F18": 109.77, "O15": 2.037, "N13": 9.965}

#: Status strings of frames in :class:`MotionCorrectionResult`.
REGISTERED = "registered"


@dataclass(frozen=True)
class MotionCorrectionResult:
    """Motion-corrected PET and the per-frame motion trace.

    Parameters
    ----------
    corrected : DynamicPET
        New PET object; registered frames resampled onto the original grid,
        the other frames copied unchanged.
    transforms : tuple of Transform, length n_frames
        Reference world -> frame world (mm); identity for frames left alone.
    status : tuple of str, length n_frames
        ``"registered"``, or ``"skipped: <reason>"`` / ``"failed: <reason>"``.
    translation_mm : ndarray, shape (n_frames, 3)
        Displacement of the reference's centre of mass (x, y, z), mm; NaN for
        frames left alone.
    rotation_deg : ndarray, shape (n_frames, 3)
        Rotations about x, y, z (extrinsic), degrees; NaN for frames left alone.
    displacement_mm : ndarray, shape (n_frames,)
        Mean displacement of brain points (mm); NaN for frames left alone.
    reference_frames : ndarray of bool, shape (n_frames,)
        Frames averaged into the reference image.
    relative_counts : ndarray, shape (n_frames,)
        Counts of each frame relative to the median reference frame.
    center_mm : ndarray, shape (3,)
        Centre of the rotations (reference centre of mass), mm.
    elapsed_s : float
        Wall time, seconds.
    cancelled : bool
        True when stopped early (remaining frames left alone).
    """

    corrected: DynamicPET
    transforms: tuple[Transform, ...]
    status: tuple[str, ...]
    translation_mm: np.ndarray
    rotation_deg: np.ndarray
    displacement_mm: np.ndarray
    reference_frames: np.ndarray
    relative_counts: np.ndarray
    center_mm: np.ndarray
    elapsed_s: float
    cancelled: bool = False

    @property
    def registered(self) -> np.ndarray:
        """Boolean mask of frames that were registered and resampled."""
        return np.array([s == REGISTERED for s in self.status])

    @property
    def left_alone(self) -> dict[int, str]:
        """Frame index -> reason, for frames not corrected."""
        return {i: s for i, s in enumerate(self.status) if s != REGISTERED}

    def trace_columns(self, timing) -> dict[str, list]:
        """The motion trace as columns (one row per frame) for a TSV."""
        columns = {
            "frame": list(range(len(self.status))),
            "frame_start": timing.frame_start_s.tolist(),
            "frame_end": timing.frame_end_s.tolist(),
            "frame_mid_min": np.round(timing.frame_mid_min, 4).tolist(),
        }
        for axis, name in enumerate("xyz"):
            columns[f"t{name}_mm"] = self.translation_mm[:, axis].tolist()
        for axis, name in enumerate("xyz"):
            columns[f"r{name}_deg"] = self.rotation_deg[:, axis].tolist()
        columns["displacement_mm"] = self.displacement_mm.tolist()
        columns["reference"] = self.reference_frames.astype(int).tolist()
        columns["relative_counts"] = np.round(self.relative_counts, 4).tolist()
        columns["status"] = list(self.status)
        return columns


def relative_frame_counts(pet: DynamicPET, reference: np.ndarray) -> np.ndarray:
    """Approximate detected counts per frame, relative to the reference frames.

    Counts ~ summed positive activity x duration x decay factor (when the data
    are decay corrected and the radionuclide is known).

    Returns
    -------
    ndarray, shape (n_frames,)
        1.0 means as many counts as the median reference frame.
    """
    total = np.clip(pet.data, 0, None).reshape(pet.n_frames, -1).sum(axis=1)
    counts = total.astype(np.float64) * pet.timing.frame_duration_s
    half_life = HALF_LIFE_MIN.get(str(pet.radionuclide or "").upper())
    if pet.decay_corrected and half_life:
        counts = counts * np.exp(-np.log(2) / half_life * pet.timing.frame_mid_min)
    scale = float(np.median(counts[reference]))
    return counts / scale if scale > 0 else np.zeros_like(counts)


def apply_frame_transforms(
    pet: DynamicPET, transforms: Sequence[Transform | None]
) -> DynamicPET:
    """Resample every frame through its own transform onto the PET grid.

    Parameters
    ----------
    pet : DynamicPET
    transforms : sequence of Transform or None, length n_frames
        Output world -> frame world (mm); None copies the frame.

    Returns
    -------
    DynamicPET
        A new object (``pet`` is not modified).
    """
    if len(transforms) != pet.n_frames:
        raise MorError(
            f"{len(transforms)} transforms given for {pet.n_frames} PET frames; "
            "give one per frame (None to leave a frame alone)."
        )
    data = np.array(pet.data, dtype=np.float32, copy=True)
    for frame, transform in enumerate(transforms):
        if transform is None:
            continue
        data[frame] = resample_map(
            pet.data[frame], pet.affine, transform, pet.spatial_shape, pet.affine
        )
    return replace(pet, data=data, path=None)


def iter_correct_motion(
    pet: DynamicPET,
    *,
    reference_window_min: tuple[float, float] = DEFAULT_MEAN_WINDOW_MIN,
    min_frame_start_min: float = 2.0,
    min_relative_counts: float = 0.1,
    max_translation_mm: float = 25.0,
    max_rotation_deg: float = 15.0,
    levels: Sequence[tuple[int, float]] = MOTION_LEVELS,
    iterations: int = 100,
    sampling_fraction: float = 0.1,
    seed: int = 0,
    passes: int = 2,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[tuple[int, int], None, MotionCorrectionResult]:
    """Rigid frame-by-frame motion correction (generator form).

    Yields ``(registrations_done, registrations_total)`` after each frame
    registration (``passes`` per frame) and
    returns a :class:`MotionCorrectionResult` (``result = yield from ...``).
    ``should_stop`` (e.g. a Cancel button) is polled between and during frames;
    frames not reached are left alone and reported.

    Parameters
    ----------
    pet : DynamicPET
        Dynamic PET (t, x, y, z), kBq/mL. Not modified.
    reference_window_min : (float, float)
        Frames (by mid-time, minutes) averaged into the reference image.
    min_frame_start_min : float
        Frames starting earlier (minutes) are left alone: low counts and a
        tracer distribution unlike the reference.
    min_relative_counts : float
        Frames with fewer counts than this fraction of the median reference
        frame are left alone.
    max_translation_mm, max_rotation_deg : float
        A registration moving the head further is treated as failed: the
        frame is left alone and a :class:`~napari_mor.MorWarning` is issued.
    levels : sequence of (shrink, smoothing_mm)
        Pyramid on the PET grid.
    iterations : int
        Maximum optimiser iterations per level (SimpleITK regular-step
        gradient descent, relaxation 0.85, minimum step 5e-4).
    sampling_fraction : float
        Fraction of reference voxels (random, seeded) used by the metric.
    seed : int
        Sampling seed.
    passes : int
        1: register to the mean of the uncorrected reference frames. 2
        (default): then rebuild the reference from the corrected frames and
        register again (a sharper reference when the reference frames moved).
    should_stop : callable, optional
        Returning True cancels the run.
    """
    if passes not in (1, 2):
        raise MorError(f"passes must be 1 or 2; got {passes}.")
    if not isinstance(pet, DynamicPET):
        raise MorError(
            f"Motion correction needs a DynamicPET (t, x, y, z); got "
            f"{type(pet).__name__}."
        )
    start_time = time.perf_counter()
    reference = mean_pet_image(pet, reference_window_min)
    S.check_volume(reference.data, reference.affine, "The motion reference image")
    reference_frames = pet.timing.frames_in_window(*reference_window_min)
    relative = relative_frame_counts(pet, reference_frames)
    status = [REGISTERED] * pet.n_frames
    for frame in range(pet.n_frames):
        values = pet.data[frame]
        if not np.any(values):
            status[frame] = "skipped: empty frame (all voxels 0)"
        elif pet.timing.frame_start_min[frame] < min_frame_start_min:
            status[frame] = (
                f"skipped: starts before {min_frame_start_min:g} min "
                "(early frame, tracer distribution unlike the reference)"
            )
        elif relative[frame] < min_relative_counts:
            status[frame] = (
                f"skipped: low counts ({relative[frame]:.2f} of a reference frame "
                f"< {min_relative_counts:g})"
            )
    empty = [i for i, s in enumerate(status) if "empty" in s]
    if empty:
        warnings.warn(
            f"PET frames {empty} are empty (all voxels 0); they were left as they "
            "are. Check the reconstruction of these frames.",
            MorWarning,
            stacklevel=2,
        )
    to_register = [i for i, s in enumerate(status) if s == REGISTERED]
    if not to_register:
        raise MorError(
            "No PET frame qualifies for motion correction (all are early, empty or "
            f"below {min_relative_counts:g} of the reference counts); lower "
            "min_frame_start_min / min_relative_counts or check the data."
        )
    fixed = S.to_sitk(reference.data, reference.affine, "The motion reference")
    center = _center_of_mass_mm(fixed)
    points = brain_points_mm(reference.data, reference.affine)
    specs = [S.LevelSpec(int(s), float(m)) for s, m in levels]
    identity = Transform.identity("PET reference", "PET frame")
    transforms: list[Transform] = [identity] * pet.n_frames
    cancelled = False
    total = passes * len(to_register)
    done = 0
    for pass_index in range(passes):
        if pass_index > 0:
            # reference rebuilt from the frames corrected in the previous pass
            interim = apply_frame_transforms(
                pet,
                [
                    t if st == REGISTERED else None
                    for t, st in zip(transforms, status, strict=True)
                ],
            )
            reference = mean_pet_image(interim, reference_window_min)
            fixed = S.to_sitk(reference.data, reference.affine, "The motion reference")
        previous = np.eye(4)
        for frame in to_register:
            if status[frame] != REGISTERED:
                continue
            if should_stop is not None and should_stop():
                cancelled = True
            if cancelled:
                status[frame] = "skipped: cancelled"
                continue
            start = transforms[frame].matrix if pass_index > 0 else previous
            info = _register_frame(
                fixed,
                pet,
                frame,
                start,
                center,
                specs,
                iterations,
                sampling_fraction,
                seed,
                should_stop,
            )
            done += 1
            if isinstance(info, str):
                status[frame] = info
                continue
            if info.stopped:
                cancelled = True
                status[frame] = "skipped: cancelled"
                continue
            transform = Transform(info.matrix, "PET reference", "PET frame", "rigid")
            params = transform.rigid_parameters(center)
            shift = float(np.linalg.norm(params["translation_mm"]))
            angle = float(np.abs(params["rotation_deg"]).max())
            if shift > max_translation_mm or angle > max_rotation_deg:
                status[frame] = (
                    f"failed: implausible motion ({shift:.1f} mm, {angle:.1f} deg > "
                    f"{max_translation_mm:g} mm / {max_rotation_deg:g} deg)"
                )
                transforms[frame] = identity
            else:
                transforms[frame] = transform
                previous = info.matrix
            yield (done, total)
    failed = {i: s for i, s in enumerate(status) if s.startswith("failed")}
    if failed:
        warnings.warn(
            f"Motion correction failed for frames {sorted(failed)}; they were left "
            f"uncorrected ({next(iter(failed.values()))}).",
            MorWarning,
            stacklevel=2,
        )
    corrected = apply_frame_transforms(
        pet,
        [
            t if s == REGISTERED else None
            for t, s in zip(transforms, status, strict=True)
        ],
    )
    n = pet.n_frames
    translation = np.full((n, 3), np.nan)
    rotation = np.full((n, 3), np.nan)
    displacement = np.full(n, np.nan)
    for frame in range(n):
        if status[frame] != REGISTERED:
            continue
        params = transforms[frame].rigid_parameters(center)
        translation[frame] = params["translation_mm"]
        rotation[frame] = params["rotation_deg"]
        moved = transforms[frame].apply(points)
        displacement[frame] = float(np.linalg.norm(moved - points, axis=1).mean())
    sidecar = {
        **pet.sidecar,
        "MotionCorrection": {
            "Method": "rigid, Mattes mutual information (SimpleITK, RSGD)",
            "ReferenceWindowMin": list(reference_window_min),
            "Passes": passes,
            "FramesRegistered": [i for i, s in enumerate(status) if s == REGISTERED],
            "FramesLeftAlone": {
                str(i): s for i, s in enumerate(status) if s != REGISTERED
            },
        },
    }
    return MotionCorrectionResult(
        corrected=replace(corrected, sidecar=sidecar),
        transforms=tuple(transforms),
        status=tuple(status),
        translation_mm=translation,
        rotation_deg=rotation,
        displacement_mm=displacement,
        reference_frames=reference_frames,
        relative_counts=relative,
        center_mm=np.asarray(center),
        elapsed_s=time.perf_counter() - start_time,
        cancelled=cancelled,
    )


def _register_frame(
    fixed,
    pet,
    frame,
    start,
    center,
    specs,
    iterations,
    sampling_fraction,
    seed,
    should_stop,
):
    """One frame onto the reference: a RunInfo, or a "failed: ..." status."""
    moving = S.to_sitk(pet.data[frame], pet.affine, f"PET frame {frame}")
    runner = S.iter_run(
        fixed,
        moving,
        S.matrix_to_sitk_euler(start, center),
        specs,
        iterations=iterations,
        sampling_fraction=sampling_fraction,
        seed=seed,
        should_stop=should_stop,
        what=f"Motion correction of frame {frame}",
        optimizer="rsgd",
        relaxation=0.85,
        min_step=5e-4,
    )
    try:
        _, info = run_to_end(runner)
    except MorError as err:
        return f"failed: {err}"
    return info


def correct_motion(pet: DynamicPET, **kwargs) -> MotionCorrectionResult:
    """Rigid frame-by-frame motion correction of dynamic PET.

    Parameters are those of :func:`iter_correct_motion`.

    Returns
    -------
    MotionCorrectionResult
        Corrected PET (a new object) and the per-frame motion trace.
    """
    return run_to_end(iter_correct_motion(pet, **kwargs))
