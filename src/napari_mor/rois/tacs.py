"""Time-activity curves (TACs) of labelled regions on the PET grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.pet import DynamicPET
from napari_mor.io.timing import FrameTiming
from napari_mor.io.volume import LabelImage


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
    if not np.allclose(labels.affine, pet.affine, atol=1e-3):
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
    frames = pet.data.reshape(pet.n_frames, -1)[:, inside].astype(np.float64)
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
    path = Path(path)
    header = ["frame_start", "frame_end"]
    header += [col for name in table.names for col in (name, f"{name}_sd", f"{name}_n")]
    rows = ["\t".join(header)]
    for frame in range(table.timing.n_frames):
        cells = [
            f"{table.timing.frame_start_s[frame]:.6g}",
            f"{table.timing.frame_end_s[frame]:.6g}",
        ]
        for region in range(len(table.names)):
            cells += [
                f"{table.mean_kbq_ml[frame, region]:.6g}",
                f"{table.sd_kbq_ml[frame, region]:.6g}",
                str(int(table.n_voxels[region])),
            ]
        rows.append("\t".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def read_tacs_tsv(path: str | Path) -> TacTable:
    """Read a TAC TSV written by :func:`write_tacs_tsv`."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    values = np.array([[float(c) for c in ln.split("\t")] for ln in lines[1:]])
    if header[:2] != ["frame_start", "frame_end"] or (len(header) - 2) % 3:
        raise MorError(
            f"{path} is not a napari-mor TAC table (frame_start, frame_end, then "
            "NAME, NAME_sd, NAME_n per region)."
        )
    names = header[2::3]
    start = values[:, 0]
    timing = FrameTiming(start, values[:, 1] - start)
    return TacTable(
        timing=timing,
        labels=np.arange(1, len(names) + 1),
        names=names,
        mean_kbq_ml=values[:, 2::3],
        sd_kbq_ml=values[:, 3::3],
        n_voxels=values[0, 4::3].astype(np.int64),
    )
