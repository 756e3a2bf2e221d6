"""Time-activity curves (TACs) of labelled regions on the PET grid.

Also the Study dock's quick looks: the duration-weighted mean image over a time
range and the TAC of the voxel under a world point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.grid import same_grid
from napari_mor.io.pet import DynamicPET
from napari_mor.io.timing import FrameTiming
from napari_mor.io.volume import LabelImage
from napari_mor.rois.resample import voxel_index, world_to_voxel


@dataclass(frozen=True)
class TacTable:
    """Regional TACs: mean, SD and voxel count per region and frame.

    Parameters
    ----------
    timing : FrameTiming
        Frame timing (seconds).
    labels : ndarray of int, shape (n_regions,)
        Label values.
    names : list of str
        Region names, one per label.
    mean_kbq_ml, sd_kbq_ml : ndarray, shape (n_frames, n_regions)
        Mean and SD of voxel activity, kBq/mL.
    n_voxels : ndarray of int, shape (n_regions,)
        Voxels in each region (on the PET grid, finite voxels only).
    """

    timing: FrameTiming
    labels: np.ndarray
    names: list[str]
    mean_kbq_ml: np.ndarray
    sd_kbq_ml: np.ndarray
    n_voxels: np.ndarray

    def tac(self, name: str) -> np.ndarray:
        """Mean TAC of one region, kBq/mL, shape (n_frames,)."""
        if name not in self.names:
            raise MorError(
                f"No region named {name!r}; regions: {', '.join(self.names)}."
            )
        return self.mean_kbq_ml[:, self.names.index(name)]


def _check_same_grid(pet: DynamicPET, labels: LabelImage) -> None:
    if labels.data.shape != pet.spatial_shape:
        raise MorError(
            f"Label image {labels.path or ''} has shape {labels.data.shape} but the "
            f"PET frames have shape {pet.spatial_shape}; resample the labels to the "
            "PET grid first."
        )
    if not same_grid(labels.data.shape, labels.affine, pet.spatial_shape, pet.affine):
        raise MorError(
            f"Label image {labels.path or ''} and PET have the same shape but "
            "different affines (not the same grid); resample the labels to the PET "
            "grid first."
        )


def mask_mean_tac(
    pet: DynamicPET, mask: np.ndarray, what: str = "Region"
) -> np.ndarray:
    """Mean TAC over a boolean mask on the PET grid, leaving out non-finite voxels.

    Parameters
    ----------
    pet : DynamicPET
        Dynamic PET, kBq/mL. Voxels flagged in ``pet.nonfinite_mask`` (NaN/Inf in
        the file, stored as 0) are excluded.
    mask : ndarray of bool, shape (x, y, z)
    what : str
        Name of the region in the error message.

    Returns
    -------
    tac_kbq_ml : ndarray, shape (n_frames,), float64
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != pet.spatial_shape:
        raise MorError(
            f"{what}: mask shape {mask.shape} differs from the PET grid "
            f"{pet.spatial_shape}; resample it onto the PET grid first."
        )
    if pet.nonfinite_mask is not None:
        mask = mask & ~pet.nonfinite_mask
    if not mask.any():
        raise MorError(
            f"{what} has no (finite) voxels on the PET grid; check the mask or "
            "label value."
        )
    return pet.data[:, mask].astype(np.float64).mean(axis=1)


def extract_tacs(pet: DynamicPET, labels: LabelImage) -> TacTable:
    """Mean, SD and voxel count per label and frame, vectorised over voxels.

    Parameters
    ----------
    pet : DynamicPET
        Dynamic PET, kBq/mL.
    labels : LabelImage
        Labels on the PET grid (same shape and affine). Voxels flagged in
        ``pet.nonfinite_mask`` are left out.

    Returns
    -------
    TacTable
    """
    _check_same_grid(pet, labels)
    label_data = labels.data
    if pet.nonfinite_mask is not None:
        label_data = np.where(pet.nonfinite_mask, 0, label_data)
    present = np.unique(label_data)
    present = present[present != 0]
    if present.size == 0:
        raise MorError(
            "The label image has no labelled voxels inside the PET field of view; "
            "draw or import regions first."
        )
    flat_labels = label_data.ravel()
    inside = flat_labels != 0
    index = np.searchsorted(present, flat_labels[inside])
    frames = _frames_of_voxels(pet.data, np.flatnonzero(inside), label_data.shape)
    n_regions = present.size
    counts = np.bincount(index, minlength=n_regions).astype(np.float64)
    sums = np.stack([np.bincount(index, frame, n_regions) for frame in frames])
    sq_sums = np.stack(
        [np.bincount(index, frame * frame, n_regions) for frame in frames]
    )
    mean = sums / counts
    var = (
        np.maximum(sq_sums / counts - mean**2, 0.0) * counts / np.maximum(counts - 1, 1)
    )
    return TacTable(
        timing=pet.timing,
        labels=present.astype(np.int64),
        names=[labels.name_of(v) for v in present],
        mean_kbq_ml=mean,
        sd_kbq_ml=np.sqrt(var),
        n_voxels=counts.astype(np.int64),
    )


def write_tacs_tsv(table: TacTable, path: str | Path) -> Path:
    """Write TACs as TSV: ``frame_start``, ``frame_end`` (s), then per region
    ``NAME``, ``NAME_sd``, ``NAME_n`` (kBq/mL, voxels)."""
    from napari_mor.io.tables import write_rows_tsv

    header = ["frame_start", "frame_end"]
    header += [col for name in table.names for col in (name, f"{name}_sd", f"{name}_n")]
    rows = []
    for frame in range(table.timing.n_frames):
        row = {
            "frame_start": float(table.timing.frame_start_s[frame]),
            "frame_end": float(table.timing.frame_end_s[frame]),
        }
        for region, name in enumerate(table.names):
            row[name] = float(table.mean_kbq_ml[frame, region])
            row[f"{name}_sd"] = float(table.sd_kbq_ml[frame, region])
            row[f"{name}_n"] = int(table.n_voxels[region])
        rows.append(row)
    path = write_rows_tsv(rows, header, path)
    return path


def _frames_of_voxels(data: np.ndarray, columns: np.ndarray, shape) -> np.ndarray:
    """Frames x voxels (float64) of the voxels at C-order ``columns``, without a
    copy of the whole scan (the PET may be stored in file, Fortran, order)."""
    from napari_mor.io.pet import frames_by_voxel

    flat, order = frames_by_voxel(data)
    if order == "F":
        columns = np.ravel_multi_index(
            np.unravel_index(columns, shape), shape, order="F"
        )
    return np.take(flat, columns, axis=1).astype(np.float64)


def read_tacs_tsv(path: str | Path) -> TacTable:
    """Read a TAC table: napari-mor's ``tacs`` output or a BIDS/PETPrep ``_tacs.tsv``.

    Columns ``frame_start`` and ``frame_end`` (or ``frame_duration``), seconds,
    then one column per region holding its mean activity (kBq/mL); columns
    ``NAME_sd`` and ``NAME_n`` are read as the region's SD and voxel count when
    present. Regions are numbered 1..n in column order.

    Raises
    ------
    MorError
        For an empty file, a missing time column, a non-numeric cell or no
        region column.
    """
    path = Path(path)
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    except (OSError, UnicodeDecodeError) as err:
        raise MorError(f"Cannot read the TAC table {path}: {err}.") from None
    if len(lines) < 2:
        raise MorError(f"{path} has no TAC rows; a TAC table has a header and frames.")
    header = lines[0].split("\t")
    end_key = "frame_end" if "frame_end" in header else "frame_duration"
    if "frame_start" not in header or end_key not in header:
        raise MorError(
            f"{path} needs columns frame_start and frame_end (or frame_duration), "
            "seconds, then one column per region (mean kBq/mL)."
        )
    try:
        values = np.array(
            [[float(c) for c in ln.split("\t")] for ln in lines[1:]], dtype=np.float64
        )
    except ValueError as err:
        raise MorError(f"{path} holds a cell that is not a number ({err}).") from None
    if values.ndim != 2 or values.shape[1] != len(header):
        raise MorError(f"{path}: every row must have {len(header)} cells.")
    column = {name: i for i, name in enumerate(header)}
    start = values[:, column["frame_start"]]
    ends = values[:, column[end_key]]
    duration = ends - start if end_key == "frame_end" else ends
    skip = {"frame_start", end_key}
    names = [
        n
        for n in header
        if n not in skip and not n.endswith(("_sd", "_n")) and n not in ("frame_end",)
    ]
    if not names:
        raise MorError(f"{path} has no region columns besides the frame times.")

    def companion(suffix, fill):
        cols = [column.get(f"{n}{suffix}") for n in names]
        return np.stack(
            [
                values[:, c] if c is not None else np.full(len(start), fill)
                for c in cols
            ],
            axis=1,
        )

    return TacTable(
        timing=FrameTiming(start, duration),
        labels=np.arange(1, len(names) + 1),
        names=names,
        mean_kbq_ml=np.stack([values[:, column[n]] for n in names], axis=1),
        sd_kbq_ml=companion("_sd", np.nan),
        n_voxels=companion("_n", -1)[0].astype(np.int64),
    )


def _check_pet(pet_data: np.ndarray, timing: FrameTiming | None = None) -> None:
    if pet_data.ndim != 4:
        raise MorError(
            f"PET data must be 4D (t, x, y, z); got shape {tuple(pet_data.shape)}."
        )
    if timing is not None and timing.n_frames != pet_data.shape[0]:
        raise MorError(
            f"PET has {pet_data.shape[0]} frames but the timing lists "
            f"{timing.n_frames}; fix the frame table or load the right frames TSV."
        )


def summed_image(
    pet_data: np.ndarray, timing: FrameTiming, start_min: float, end_min: float
) -> np.ndarray:
    """Duration-weighted mean image over the frames in a time range.

    Parameters
    ----------
    pet_data : ndarray, shape (t, x, y, z)
        Activity, kBq/mL.
    timing : FrameTiming
        Frame timing (seconds).
    start_min, end_min : float
        Time range, minutes from injection; a frame is used when its mid-time
        lies in ``[start_min, end_min]``.

    Returns
    -------
    mean_image : ndarray, shape (x, y, z), float32
        ``sum_i d_i * C_i / sum_i d_i`` over the frames used, kBq/mL.

    Raises
    ------
    MorError
        When no frame's mid-time lies in the range, or the range is empty.
    """
    _check_pet(pet_data, timing)
    in_range = timing.frames_in_window(float(start_min), float(end_min))
    if not in_range.any():
        mids = timing.frame_mid_min
        raise MorError(
            f"No frame has its mid-time in {start_min:g}-{end_min:g} min (frame "
            f"mid-times run {mids.min():.3g}-{mids.max():.3g} min); widen the range."
        )
    weights = timing.frame_duration_s[in_range]
    frames = np.asarray(pet_data)[in_range]
    mean = np.tensordot(weights / weights.sum(), frames, axes=(0, 0))
    return np.asarray(mean, dtype=np.float32)


def voxel_tac(
    pet_data: np.ndarray, affine: np.ndarray, world_mm: Sequence[float]
) -> np.ndarray:
    """Time-activity curve of the PET voxel holding a world point.

    Parameters
    ----------
    pet_data : ndarray, shape (t, x, y, z)
        Activity, kBq/mL.
    affine : ndarray, shape (4, 4)
        Spatial voxel-to-world (mm) transform of the PET.
    world_mm : sequence of 3 floats
        World point (x, y, z), mm; the voxel is the one with the nearest centre
        (:func:`~napari_mor.rois.voxel_index`).

    Returns
    -------
    tac : ndarray, shape (t,), float64
        Activity of the nearest voxel in every frame, kBq/mL (a copy).

    Raises
    ------
    MorError
        When the point is outside the PET field of view.
    """
    _check_pet(pet_data)
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise MorError(f"An affine must be 4x4; got shape {affine.shape}.")
    index = voxel_index(world_mm, affine, pet_data.shape)
    if index is None:
        world = np.asarray(world_mm, dtype=np.float64).ravel()[-3:]
        nearest = np.rint(world_to_voxel(world, affine)).astype(int)
        raise MorError(
            f"World point ({', '.join(f'{v:.1f}' for v in world)}) mm is outside "
            f"the PET field of view (voxel {tuple(int(i) for i in nearest)}, grid "
            f"{tuple(int(n) for n in pet_data.shape[1:])}); click inside the PET."
        )
    i, j, k = index
    return np.array(pet_data[:, i, j, k], dtype=np.float64)
