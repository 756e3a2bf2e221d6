"""Partial-volume-weighted TACs from region fractions on the PET grid."""

from __future__ import annotations

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.grid import same_grid
from napari_mor.io.pet import DynamicPET
from napari_mor.rois.resample import LabelFractions
from napari_mor.rois.tacs import TacTable


def extract_weighted_tacs(pet: DynamicPET, fractions: LabelFractions) -> TacTable:
    """Fraction-weighted mean and SD per region and frame.

    ``mean_r(t) = sum_v w_rv x_v(t) / sum_v w_rv`` with ``w_rv`` the fraction of
    voxel ``v`` covered by region ``r``; one matrix product over voxels.

    Parameters
    ----------
    pet : DynamicPET
        Dynamic PET, kBq/mL.
    fractions : LabelFractions
        From :func:`napari_mor.rois.label_fractions` on the PET grid.

    Returns
    -------
    TacTable
        ``n_voxels`` holds the effective voxel count (sum of fractions, rounded).
    """
    if not same_grid(
        fractions.fractions.shape[1:], fractions.affine, pet.spatial_shape, pet.affine
    ):
        raise MorError(
            f"Region fractions are on grid {fractions.fractions.shape[1:]} but the PET "
            f"is on {pet.spatial_shape} (or the affines differ); compute the fractions "
            "on the PET grid."
        )
    weights = fractions.fractions.reshape(len(fractions.labels), -1).astype(np.float64)
    if pet.nonfinite_mask is not None:
        weights = weights * ~pet.nonfinite_mask.ravel()
    used = np.flatnonzero(weights.any(axis=0))
    weights = weights[:, used]
    total = weights.sum(axis=1)
    if np.any(total <= 0):
        empty = [n for n, t in zip(fractions.names, total, strict=True) if t <= 0]
        raise MorError(f"Regions {empty} have no weight inside the PET field of view.")
    frames = pet.data.reshape(pet.n_frames, -1)[:, used].astype(np.float64)
    mean = (frames @ weights.T) / total
    second = ((frames * frames) @ weights.T) / total
    var = np.maximum(second - mean**2, 0.0)
    return TacTable(
        timing=pet.timing,
        labels=np.asarray(fractions.labels, dtype=np.int64),
        names=list(fractions.names),
        mean_kbq_ml=mean,
        sd_kbq_ml=np.sqrt(var),
        n_voxels=np.round(total).astype(np.int64),
    )
