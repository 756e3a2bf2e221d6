"""Gaussian PSF and the geometric transfer matrix (Rousset et al. 1998)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.pet import DynamicPET
from napari_mor.io.volume import LabelImage
from napari_mor.rois.tacs import TacTable

#: Correction methods: none, GTM (regional TACs), RBV and iterative Yang (images).
PVC_METHODS = ("none", "gtm", "rbv", "iy")

#: Condition number of the GTM above which two regions count as indistinguishable.
MAX_CONDITION = 1e3

#: Gaussian kernels are truncated at this many standard deviations.
_TRUNCATE = 4.0

_FWHM_PER_SIGMA = float(np.sqrt(8.0 * np.log(2.0)))


def psf_fwhm_per_axis(psf_fwhm_mm: float | Sequence[float] | None) -> np.ndarray:
    """The PSF FWHM per axis (x, y, z), mm, checked.

    Parameters
    ----------
    psf_fwhm_mm : float or sequence of 3 floats
        Isotropic FWHM, or one per voxel axis, mm.

    Returns
    -------
    fwhm_mm : ndarray, shape (3,), float64
    """
    if psf_fwhm_mm is None:
        raise MorError(
            "Partial-volume correction needs the scanner PSF; give its FWHM in mm "
            "(--psf-fwhm MM, or three values x y z)."
        )
    fwhm = np.atleast_1d(np.asarray(psf_fwhm_mm, dtype=np.float64)).ravel()
    if fwhm.size == 1:
        fwhm = np.repeat(fwhm, 3)
    if fwhm.size != 3:
        raise MorError(
            f"The PSF FWHM is one value or three (x y z, mm); got {fwhm.size}: "
            f"{fwhm.tolist()}."
        )
    if not (np.all(np.isfinite(fwhm)) and np.all(fwhm > 0)):
        raise MorError(
            f"The PSF FWHM must be > 0 mm on every axis; got {fwhm.tolist()} mm. "
            "Give the scanner resolution (e.g. --psf-fwhm 6)."
        )
    return fwhm


def psf_sigma_vox(psf_fwhm_mm, affine: np.ndarray) -> np.ndarray:
    """Gaussian standard deviation per voxel axis, in voxels.

    ``sigma_vox = fwhm_mm / (sqrt(8 ln 2) * voxel_mm)``, voxel sizes from the
    affine's column norms.

    Returns
    -------
    sigma_vox : ndarray, shape (3,)
    """
    fwhm = psf_fwhm_per_axis(psf_fwhm_mm)
    voxel_mm = np.sqrt((np.asarray(affine, dtype=np.float64)[:3, :3] ** 2).sum(axis=0))
    return fwhm / (_FWHM_PER_SIGMA * voxel_mm)


def blur_psf(data: np.ndarray, affine: np.ndarray, psf_fwhm_mm) -> np.ndarray:
    """Blur a 3-D volume or a 4-D ``(t, x, y, z)`` series by the Gaussian PSF.

    Activity outside the field of view is zero (``mode="constant"``), as in the
    scanner; frames are not mixed.

    Parameters
    ----------
    data : ndarray, shape (x, y, z) or (t, x, y, z)
    affine : ndarray, shape (4, 4)
        Voxel->world (mm) affine, for the voxel sizes.
    psf_fwhm_mm : float or sequence of 3 floats

    Returns
    -------
    blurred : ndarray, same shape, float64
    """
    from scipy import ndimage

    sigma = psf_sigma_vox(psf_fwhm_mm, affine)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 4:
        sigma = (0.0, *sigma)
    return ndimage.gaussian_filter(data, sigma, mode="constant", truncate=_TRUNCATE)


@dataclass(frozen=True)
class GtmResult:
    """GTM-corrected regional TACs.

    Attributes
    ----------
    table : TacTable
        Corrected mean TACs of the labelled regions (label 0 left out), kBq/mL;
        ``sd_kbq_ml`` is NaN (a GTM value has no voxel spread).
    background_kbq_ml : ndarray, shape (n_frames,)
        Corrected TAC of the background (label 0 inside the field of view);
        NaN when every voxel is labelled.
    region_labels : ndarray of int, shape (n_regions,)
        Order of the GTM rows and columns (0 first when present).
    gtm : ndarray, shape (n_regions, n_regions)
        ``gtm[j, i]``: mean over region j of the blurred indicator of region i.
    condition_number : float
    psf_fwhm_mm : tuple of 3 floats
    """

    table: TacTable
    background_kbq_ml: np.ndarray
    region_labels: np.ndarray
    gtm: np.ndarray
    condition_number: float
    psf_fwhm_mm: tuple[float, float, float]

    @property
    def region_values(self) -> np.ndarray:
        """Corrected values of every region, shape (n_frames, n_regions),
        in ``region_labels`` order."""
        if self.region_labels.size and self.region_labels[0] == 0:
            return np.column_stack([self.background_kbq_ml, self.table.mean_kbq_ml])
        return self.table.mean_kbq_ml


def _check_labels(pet: DynamicPET, labels: LabelImage) -> None:
    from napari_mor.io.grid import same_grid

    if not same_grid(labels.data.shape, labels.affine, pet.spatial_shape, pet.affine):
        raise MorError(
            f"Partial-volume correction needs the labels on the PET grid; labels "
            f"{labels.data.shape} and PET {pet.spatial_shape} differ in shape or "
            "affine. Resample the labels to the PET grid first "
            "(napari_mor.rois.labels_on_grid)."
        )


def _region_index(labels: LabelImage, regions: Sequence[int] | None):
    """Region labels (0 first when present) and each voxel's row in them."""
    data = np.asarray(labels.data)
    present = np.unique(data)
    if regions is not None:
        wanted = {int(v) for v in regions}
        missing = sorted(wanted - {int(v) for v in present})
        if missing:
            names = ", ".join(f"{v} ({labels.name_of(v)})" for v in missing)
            raise MorError(
                f"Label(s) {names} have no voxels on the PET grid; partial-volume "
                "correction needs every region drawn. Draw them or drop them from "
                "the ROI set."
            )
    if not np.any(present != 0):
        raise MorError(
            "The label image has no labelled voxels; draw or import regions first."
        )
    index = np.searchsorted(present, data)
    return present.astype(np.int64), index


def gtm_matrix(
    labels: LabelImage,
    psf_fwhm_mm,
    regions: Sequence[int] | None = None,
    max_condition: float = MAX_CONDITION,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The geometric transfer matrix of a label set at a Gaussian PSF.

    One blur per labelled region, on the region's bounding box padded by the
    kernel radius (equal to a whole-volume blur); the background column
    follows from linearity, ``blur(1_FOV) - sum_i blur(1_i)``.

    Parameters
    ----------
    labels : LabelImage
        Label image, shape (x, y, z); 0 inside the field of view is background.
    psf_fwhm_mm : float or sequence of 3 floats
        PSF FWHM, mm.
    regions : sequence of int, optional
        Labels that must be present (a missing one is an error).
    max_condition : float
        Above this condition number the GTM is refused.

    Returns
    -------
    region_labels : ndarray of int, shape (n_regions,)
    gtm : ndarray, shape (n_regions, n_regions)
        ``gtm[j, i]`` = mean over region j of the blurred indicator of region i.
    condition_number : float

    Notes
    -----
    Observed regional means ``o_j = sum_i gtm[j, i] * t_i`` for piecewise-constant
    true activity ``t`` blurred by the PSF (Rousset et al. 1998).
    """
    from scipy import ndimage

    sigma = psf_sigma_vox(psf_fwhm_mm, labels.affine)
    region_labels, index = _region_index(labels, regions)
    n = region_labels.size
    counts = np.bincount(index.ravel(), minlength=n).astype(np.float64)
    pad = np.ceil(_TRUNCATE * sigma).astype(int) + 1
    shape = np.asarray(index.shape)
    objects = ndimage.find_objects(index + 1)  # slice of every row's voxels
    gtm = np.zeros((n, n))
    has_background = region_labels[0] == 0
    for row in range(1 if has_background else 0, n):
        box = objects[row]
        lo = np.maximum([s.start for s in box] - pad, 0)
        hi = np.minimum([s.stop for s in box] + pad, shape)
        sub = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        sub_index = index[sub]
        blurred = ndimage.gaussian_filter(
            (sub_index == row).astype(np.float64),
            sigma,
            mode="constant",
            truncate=_TRUNCATE,
        )
        gtm[:, row] = np.bincount(sub_index.ravel(), blurred.ravel(), minlength=n)
    if has_background:
        whole = ndimage.gaussian_filter(
            np.ones(index.shape), sigma, mode="constant", truncate=_TRUNCATE
        )
        fov = np.bincount(index.ravel(), whole.ravel(), minlength=n)
        gtm[:, 0] = fov - gtm[:, 1:].sum(axis=1)
    gtm /= counts[:, None]
    condition = float(np.linalg.cond(gtm))
    if not np.isfinite(condition) or condition > max_condition:
        _raise_ill_conditioned(gtm, region_labels, labels, condition, psf_fwhm_mm)
    return region_labels, gtm, condition


def _raise_ill_conditioned(gtm, region_labels, labels, condition, psf_fwhm_mm):
    _, _, vt = np.linalg.svd(gtm)
    weakest = np.argsort(np.abs(vt[-1]))[::-1][:2]
    pair = " and ".join(
        f"label {int(region_labels[i])} ({_name(labels, region_labels[i])})"
        for i in sorted(weakest)
    )
    fwhm = ", ".join(f"{v:g}" for v in psf_fwhm_per_axis(psf_fwhm_mm))
    raise MorError(
        f"The GTM is ill-conditioned (condition number {condition:.3g}): {pair} "
        f"are indistinguishable at a PSF of {fwhm} mm FWHM. Merge them into one "
        "region or drop one of them."
    )


def _name(labels: LabelImage, value) -> str:
    return "background" if int(value) == 0 else labels.name_of(int(value))


def gtm_tacs(
    pet: DynamicPET,
    labels: LabelImage,
    psf_fwhm_mm,
    *,
    regions: Sequence[int] | None = None,
    max_condition: float = MAX_CONDITION,
) -> GtmResult:
    """GTM partial-volume-corrected TACs of every region (Rousset et al. 1998).

    Parameters
    ----------
    pet : DynamicPET
        Dynamic PET, shape (t, x, y, z), kBq/mL.
    labels : LabelImage
        Labels on the PET grid; every label is a region and label 0 (the rest
        of the field of view) is the background region.
    psf_fwhm_mm : float or sequence of 3 floats
        Gaussian PSF FWHM, mm (isotropic or x, y, z).
    regions : sequence of int, optional
        Labels that must have voxels (e.g. the LUT of the ROI set).
    max_condition : float
        Largest accepted GTM condition number.

    Returns
    -------
    GtmResult
        ``table`` has the corrected TACs of the labelled regions.

    Notes
    -----
    Solves ``GTM @ true = observed`` for all frames at once by least squares,
    where ``observed`` are the regional means of the PET (non-finite voxels
    left out of the means; the GTM is computed on all voxels).

    References
    ----------
    Rousset OG, Ma Y, Evans AC (1998). Correction for partial volume effects
    in PET: principle and validation. J Nucl Med 39:904-911.
    """
    _check_labels(pet, labels)
    region_labels, gtm, condition = gtm_matrix(
        labels, psf_fwhm_mm, regions=regions, max_condition=max_condition
    )
    observed = _region_means(pet, labels, region_labels)
    true, *_ = np.linalg.lstsq(gtm, observed.T, rcond=None)
    true = true.T  # (n_frames, n_regions)
    keep = region_labels != 0
    counts = np.array([np.count_nonzero(labels.data == v) for v in region_labels])
    table = TacTable(
        timing=pet.timing,
        labels=region_labels[keep],
        names=[labels.name_of(v) for v in region_labels[keep]],
        mean_kbq_ml=np.ascontiguousarray(true[:, keep]),
        sd_kbq_ml=np.full((pet.n_frames, int(keep.sum())), np.nan),
        n_voxels=counts[keep].astype(np.int64),
    )
    background = true[:, 0] if not keep[0] else np.full(pet.n_frames, np.nan)
    return GtmResult(
        table=table,
        background_kbq_ml=background,
        region_labels=region_labels,
        gtm=gtm,
        condition_number=condition,
        psf_fwhm_mm=tuple(float(v) for v in psf_fwhm_per_axis(psf_fwhm_mm)),
    )


def _region_means(
    pet: DynamicPET, labels: LabelImage, region_labels: np.ndarray
) -> np.ndarray:
    """Observed mean of each region per frame, shape (n_frames, n_regions)."""
    index = np.searchsorted(region_labels, labels.data).ravel()
    finite = np.ones(index.shape, dtype=bool)
    if pet.nonfinite_mask is not None:
        finite = ~pet.nonfinite_mask.ravel()
    index = index[finite]
    n = region_labels.size
    counts = np.bincount(index, minlength=n).astype(np.float64)
    empty = [int(v) for v, c in zip(region_labels, counts, strict=True) if c == 0]
    if empty:
        raise MorError(
            f"Label(s) {empty} have no finite PET voxels; partial-volume correction "
            "needs a value in every region. Check the PET or drop those labels."
        )
    frames = pet.data.reshape(pet.n_frames, -1)[:, finite]
    sums = np.stack(
        [np.bincount(index, frame.astype(np.float64), n) for frame in frames]
    )
    return sums / counts
