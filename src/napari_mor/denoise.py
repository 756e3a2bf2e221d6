"""Denoising of dynamic PET before voxelwise fits: Gaussian and HYPR-LR.

Voxelwise reference-region fits are biased by noise (Logan BP_ND reads low,
basis-function SRTM high; docs/denoise.md has the measured table). Denoising the
frames before the fit lowers the voxel noise and with it the bias:

- ``"gaussian"``: a 3-D Gaussian of each frame (FWHM in mm), NaN- and
  mask-aware (:func:`napari_mor.maps.smooth_map`). Simple, but it blurs the
  edges of small regions (partial-volume mixing).
- ``"hypr-lr"``: HYPR-LR (Christian et al. 2010): each frame is the summed
  (composite) image times the low-pass ratio of the frame to the composite.
  The composite has many counts and keeps its edges; the time course of each
  voxel comes from the low-passed ratio.

All functions take PET in the package's layout, ``(t, x, y, z)`` float32, and
return a new float32 array; the input is never modified. The work is done
frame by frame (one frame of float64 work space at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import DENOISE_METHODS

__all__ = [
    "METHODS",
    "REFERENCES",
    "composite_image",
    "denoise_pet",
    "denoise_provenance",
    "fwhm_to_sigma_vox",
    "guided_nlm",
    "noise_sd_estimate",
]

#: Denoising methods accepted by :func:`denoise_pet`.
METHODS: tuple[str, ...] = DENOISE_METHODS

#: Reference of each method (for sidecars and docs).
REFERENCES: dict[str, str] = {
    "none": "",
    "gaussian": "3-D Gaussian filter of each frame, NaN/mask-normalised",
    "hypr-lr": (
        "Christian BT, Vandehey NT, Floberg JM, Mistretta CA. Dynamic PET "
        "denoising with HYPR processing. J Nucl Med 2010;51:1147-1154"
    ),
    "nlm": (
        "Non-local means (Buades A, Coll B, Morel JM. Multiscale Model Simul "
        "2005;4:490-530) with weights from the summed image, applied to every "
        "frame (as in Dutta J, Leahy RM, Li Q. PLoS One 2013;8:e81390)"
    ),
}

#: Default FWHM of each method, mm (the low-pass filter of HYPR-LR).
DEFAULT_FWHM_MM: dict[str, float] = {"gaussian": 4.0, "hypr-lr": 6.0, "nlm": 6.0}

#: Default range parameter of the non-local means, in units of the guide's noise SD.
DEFAULT_NLM_H = 3.0

_FWHM_PER_SIGMA = float(np.sqrt(8.0 * np.log(2.0)))


def _voxel_sizes(voxel_size_mm: float | Sequence[float] | np.ndarray) -> np.ndarray:
    sizes = np.asarray(voxel_size_mm, dtype=float)
    if sizes.shape == (4, 4):  # an affine: column norms of its 3x3 part
        sizes = np.sqrt((sizes[:3, :3] ** 2).sum(axis=0))
    sizes = np.broadcast_to(sizes, (3,)) if sizes.ndim == 0 else sizes
    if sizes.shape != (3,) or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise MorError(
            f"voxel_size_mm must be one positive size or three (x, y, z) sizes in "
            f"mm, or the 4x4 PET affine; got {voxel_size_mm!r}."
        )
    return sizes


def fwhm_to_sigma_vox(
    fwhm_mm: float, voxel_size_mm: float | Sequence[float] | np.ndarray
) -> np.ndarray:
    """Gaussian sigma per axis, in voxels, of a filter with FWHM in mm.

    Parameters
    ----------
    fwhm_mm : float
        Full width at half maximum, mm (> 0).
    voxel_size_mm : float, sequence of 3 floats, or ndarray, shape (4, 4)
        Voxel sizes, mm (or the voxel->world affine they are read from).

    Returns
    -------
    sigma_vox : ndarray, shape (3,)
        ``fwhm_mm / (sqrt(8 ln 2) * voxel_size_mm)``.

    Examples
    --------
    >>> fwhm_to_sigma_vox(4.7096, 2.0).round(3).tolist()
    [1.0, 1.0, 1.0]
    """
    fwhm = _check_fwhm(fwhm_mm, "gaussian")
    return fwhm / (_FWHM_PER_SIGMA * _voxel_sizes(voxel_size_mm))


def _check_fwhm(fwhm_mm, method: str) -> float:
    if fwhm_mm is None:
        return DEFAULT_FWHM_MM[method]
    try:
        fwhm = float(fwhm_mm)
    except (TypeError, ValueError):
        fwhm = float("nan")
    if not (np.isfinite(fwhm) and fwhm > 0):
        raise MorError(
            f"The denoising FWHM must be a positive number of mm (e.g. 4 or 6); "
            f"got {fwhm_mm!r}. Use method='none' for no denoising."
        )
    return fwhm


def _check_pet(pet: np.ndarray, mask: np.ndarray | None) -> np.ndarray | None:
    if pet.ndim != 4:
        raise MorError(
            f"Denoising needs dynamic PET of shape (t, x, y, z); got an array of "
            f"shape {pet.shape} ({pet.ndim}-D). A single 3-D image is smoothed with "
            "napari_mor.maps.smooth_map."
        )
    if pet.shape[0] < 1 or min(pet.shape[1:]) < 1:
        raise MorError(f"The PET array is empty (shape {pet.shape}).")
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != pet.shape[1:]:
        raise MorError(
            f"The mask has shape {mask.shape} but the PET frames have shape "
            f"{pet.shape[1:]}; pass a brain mask on the PET grid (resample it with "
            "napari_mor.rois.labels_on_grid or the PET affine)."
        )
    mask = mask.astype(bool)
    if not mask.any():
        raise MorError("The denoising mask has no voxel set; pass a brain mask.")
    return mask


def _smooth(volume: np.ndarray, affine: np.ndarray, fwhm_mm: float) -> np.ndarray:
    """NaN-aware Gaussian of one volume (the package's one: maps.smooth_map)."""
    from napari_mor.maps import smooth_map

    return smooth_map(volume, affine, fwhm_mm)


def composite_image(
    pet: np.ndarray,
    frame_duration_s: Sequence[float] | np.ndarray | None = None,
    frames: Sequence[int] | np.ndarray | slice | None = None,
) -> np.ndarray:
    """Time-weighted mean of the frames (the HYPR composite, summed image).

    Parameters
    ----------
    pet : ndarray, shape (t, x, y, z)
        Dynamic PET, kBq/mL (not modified).
    frame_duration_s : ndarray, shape (t,), optional
        Frame durations, seconds (weights). Default: equal weights.
    frames : sequence of int or slice, optional
        Frames summed (default all).

    Returns
    -------
    composite : ndarray, shape (x, y, z), float32
        ``sum_i d_i f_i / sum_i d_i``, kBq/mL; NaN where a used frame is NaN.
    """
    pet = np.asarray(pet)
    n = pet.shape[0]
    weights = (
        np.ones(n)
        if frame_duration_s is None
        else np.asarray(frame_duration_s, dtype=float)
    )
    if weights.shape != (n,) or np.any(~np.isfinite(weights)) or np.any(weights < 0):
        raise MorError(
            f"frame_duration_s must hold {n} non-negative durations (s), one per "
            f"frame; got shape {weights.shape}."
        )
    index = np.arange(n)[slice(None) if frames is None else frames]
    if index.size == 0 or weights[index].sum() <= 0:
        raise MorError(
            f"The composite needs at least one frame with a positive duration; "
            f"frames {index.tolist()} were selected."
        )
    total = np.zeros(pet.shape[1:], dtype=np.float64)
    for i in index:
        total += weights[i] * pet[i]
    return (total / weights[index].sum()).astype(np.float32)


def denoise_pet(
    pet: np.ndarray,
    voxel_size_mm: float | Sequence[float] | np.ndarray,
    *,
    method: str,
    fwhm_mm: float | None = None,
    mask: np.ndarray | None = None,
    frame_duration_s: Sequence[float] | np.ndarray | None = None,
    composite_frames: Sequence[int] | np.ndarray | slice | None = None,
    nlm_h: float = DEFAULT_NLM_H,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Denoise dynamic PET frame by frame before voxelwise fits.

    Parameters
    ----------
    pet : ndarray, shape (t, x, y, z)
        Dynamic PET, kBq/mL (float32; not modified). NaN marks voxels without
        data; they neither count as zeros nor spread.
    voxel_size_mm : float, sequence of 3 floats, or ndarray, shape (4, 4)
        Voxel sizes, mm, or the PET voxel->world affine.
    method : {"none", "gaussian", "hypr-lr", "nlm"}
        See :data:`METHODS` and the Notes.
    fwhm_mm : float, optional
        FWHM of the Gaussian, mm (default 4 for ``"gaussian"``, 6 for the
        low-pass filter of ``"hypr-lr"`` and the spatial weight of ``"nlm"``).
        Ignored for ``"none"``.
    mask : ndarray of bool, shape (x, y, z), optional
        Brain mask: only voxels inside are filtered and only they enter the
        filter (activity outside, e.g. scalp or air, does not bleed in). Voxels
        outside keep their input values. Default: every voxel.
    frame_duration_s : ndarray, shape (t,), optional
        Frame durations, s: the weights of the HYPR composite (default equal).
    composite_frames : sequence of int or slice, optional
        Frames summed into the HYPR / NLM composite (default all).
    nlm_h : float
        ``"nlm"``: range parameter, in units of the composite's noise SD
        (:func:`guided_nlm`).
    on_progress : callable(done, total), optional
        Called after each frame (``"nlm"``: after each search offset).

    Returns
    -------
    denoised : ndarray, shape (t, x, y, z), float32
        A new array (a float32 copy for ``"none"``).

    Notes
    -----
    Gaussian: ``sigma_vox = fwhm_mm / (sqrt(8 ln 2) voxel_size_mm)`` per axis;
    each frame ``f_i`` becomes ``G*(m f_i) / G*m`` with ``m`` the finite mask.

    HYPR-LR (Christian et al. 2010): with the composite
    ``C = sum_i d_i f_i / sum_i d_i`` (the time-weighted summed image) and a
    low-pass Gaussian ``F``,

    ``H_i = C * (F*f_i) / (F*C)``.

    ``F*f_i / F*C`` carries the time course at low noise, ``C`` the spatial
    detail at the noise of the summed image. Regions wider than the filter keep
    their frame-wise mean; at the edges of smaller regions the time course is a
    blend of the neighbours' (the composite's edges are kept, not the frames').
    Where ``F*C`` is not positive (air, outside the mask) the Gaussian
    ``F*f_i`` is used.

    NLM: the weights of a non-local means on ``log C`` (single-voxel
    patches, Gaussian search window of ``fwhm_mm``, range ``nlm_h`` times the
    composite's noise SD; :func:`guided_nlm`) average every frame, so a voxel
    is averaged with the voxels whose summed image looks alike (same region)
    and edges of the composite are kept. Voxels whose summed image is not
    positive (noisy air) are left as they are and do not enter the averages.

    Memory: the output (one PET array of float32) plus a few float64 volumes.

    References
    ----------
    Christian BT, Vandehey NT, Floberg JM, Mistretta CA (2010). Dynamic PET
    denoising with HYPR processing. J Nucl Med 51:1147-1154.
    Floberg JM, Mistretta CA, Weichert JP, Hall LT, Holden JE, Christian BT
    (2012). Improved kinetic analysis of dynamic PET data with optimized HYPR-LR.
    Med Phys 39:3319-3331.
    """
    if method not in METHODS:
        raise MorError(
            f"Unknown denoising method {method!r}; choose one of {list(METHODS)}."
        )
    pet = np.asarray(pet)
    mask = _check_pet(pet, mask)
    sizes = _voxel_sizes(voxel_size_mm)
    n_frames = pet.shape[0]
    if method == "none":
        out = pet.astype(np.float32, copy=True)
        if on_progress is not None:
            on_progress(n_frames, n_frames)
        return out
    fwhm = _check_fwhm(fwhm_mm, method)
    affine = np.diag([*sizes, 1.0])
    inside = np.ones(pet.shape[1:], bool) if mask is None else mask

    def masked(volume: np.ndarray) -> np.ndarray:
        return np.where(inside, volume, np.nan)

    if method == "nlm":
        composite = composite_image(pet, frame_duration_s, composite_frames)
        return guided_nlm(
            pet,
            _log_guide(composite, inside),
            sizes,
            fwhm_mm=fwhm,
            h=nlm_h,
            mask=inside,
            on_progress=on_progress,
        )
    if method == "hypr-lr":
        composite = composite_image(pet, frame_duration_s, composite_frames)
        low_comp = _smooth(masked(composite), affine, fwhm).astype(np.float64)
        finite_comp = np.isfinite(low_comp)
        usable = finite_comp & (low_comp > 1e-6 * np.nanmax(np.abs(low_comp)))
        scale = np.where(usable, composite / np.where(usable, low_comp, 1.0), np.nan)
    out = np.empty(pet.shape, dtype=np.float32)
    for i in range(n_frames):
        frame = pet[i]
        low = _smooth(masked(frame), affine, fwhm)
        if method == "hypr-lr":
            low = np.where(usable, scale * low, low)
        # Outside the mask, or where the kernel saw too few finite voxels: input.
        keep = ~inside | ~np.isfinite(low)
        out[i] = np.where(keep, frame, low)
        if on_progress is not None:
            on_progress(i + 1, n_frames)
    return out


def denoise_provenance(
    method: str,
    fwhm_mm: float | None = None,
    *,
    composite: str | None = None,
) -> dict:
    """Sidecar fields that say how the PET was denoised before the fit.

    Parameters
    ----------
    method : {"none", "gaussian", "hypr-lr"}
    fwhm_mm : float, optional
        The FWHM used, mm (default: the method's default).
    composite : str, optional
        HYPR-LR: how the composite was formed (default
        ``"duration-weighted mean of all frames"``).

    Returns
    -------
    provenance : dict
        ``{"Denoising": {"Method": ..., "FWHMmm": ..., "Reference": ...}}``;
        ``{"Denoising": {"Method": "none"}}`` without denoising.

    Examples
    --------
    >>> denoise_provenance("gaussian", 6)["Denoising"]["FWHMmm"]
    6.0
    """
    if method not in METHODS:
        raise MorError(
            f"Unknown denoising method {method!r}; choose one of {list(METHODS)}."
        )
    if method == "none":
        return {"Denoising": {"Method": "none"}}
    fields = {
        "Method": method,
        "FWHMmm": _check_fwhm(fwhm_mm, method),
        "Reference": REFERENCES[method],
    }
    if method == "hypr-lr":
        fields["Composite"] = composite or "duration-weighted mean of all frames"
        fields["Formula"] = "H_i = C * (F*f_i) / (F*C), F Gaussian low-pass"
    else:
        fields["Formula"] = "G*(m f_i) / (G*m), m the finite brain mask"
    return {"Denoising": fields}


def _log_guide(composite: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """log of the composite (reconstructed PET noise is about multiplicative:
    its SD grows with the mean, Barrett et al. 1994), NaN where not positive."""
    comp = np.asarray(composite, dtype=np.float64)
    positive = inside & np.isfinite(comp) & (comp > 0)
    if not positive.any():
        raise MorError(
            "The summed PET image has no positive voxel inside the mask; NLM "
            "denoising needs activity (check the mask and the PET units)."
        )
    floor = 1e-3 * np.percentile(comp[positive], 99)
    with np.errstate(invalid="ignore"):
        return np.where(positive, np.log(np.maximum(comp, floor)), np.nan)


def noise_sd_estimate(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Robust SD of white noise in a 3-D image, from neighbour differences.

    Parameters
    ----------
    image : ndarray, shape (x, y, z)
        Image (e.g. the summed PET, kBq/mL, or a BP_ND map); NaN: no value.
    mask : ndarray of bool, shape (x, y, z), optional
        Voxels used (default: the finite ones).

    Returns
    -------
    sd : float
        ``1.4826 median|v(x) - v(x + e)| / sqrt(2)`` over neighbour pairs along
        each axis inside the mask, in the image's unit. Edges between regions
        are a small fraction of the pairs, so the median is the noise's; smooth
        structure inside regions adds a little (an overestimate).
    """
    image = np.asarray(image, dtype=np.float64)
    valid = np.isfinite(image)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    diffs = []
    for axis in range(image.ndim):
        both = np.logical_and(
            np.take(valid, np.arange(1, image.shape[axis]), axis=axis),
            np.take(valid, np.arange(0, image.shape[axis] - 1), axis=axis),
        )
        diffs.append(np.abs(np.diff(np.where(valid, image, 0.0), axis=axis))[both])
    pooled = np.concatenate(diffs) if diffs else np.empty(0)
    if pooled.size == 0:
        raise MorError(
            "Cannot estimate the noise: no two neighbouring voxels with values "
            "inside the mask; pass a larger mask."
        )
    return float(1.4826 * np.median(pooled) / np.sqrt(2.0))


def _pair_slices(offset: np.ndarray, shape: tuple[int, ...]):
    """Slices ``dst``, ``src`` with ``src = dst + offset`` inside the grid."""
    pairs = list(zip(offset, shape, strict=True))
    dst = tuple(slice(max(0, -k), n - max(0, k)) for k, n in pairs)
    src = tuple(slice(max(0, k), n - max(0, -k)) for k, n in pairs)
    return dst, src


def _search_offsets(fwhm_mm: float, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (voxels) within 2 sigma of a Gaussian of FWHM mm, and its weights."""
    sigma = fwhm_mm / (_FWHM_PER_SIGMA * sizes)
    radius = np.maximum(np.floor(2.0 * sigma), 0).astype(int)
    axes = [np.arange(-r, r + 1) for r in radius]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    dist2 = ((grid / sigma) ** 2).sum(axis=1)
    keep = dist2 <= 4.0
    return grid[keep], np.exp(-0.5 * dist2[keep])


def guided_nlm(
    volumes: np.ndarray,
    guide: np.ndarray,
    voxel_size_mm: float | Sequence[float] | np.ndarray,
    *,
    fwhm_mm: float = DEFAULT_FWHM_MM["nlm"],
    h: float = DEFAULT_NLM_H,
    noise_sd: float | None = None,
    patch_radius_vox: int = 0,
    mask: np.ndarray | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Non-local means of one or more volumes with weights from a guide image.

    Parameters
    ----------
    volumes : ndarray, shape (n, x, y, z) or (x, y, z)
        Volumes filtered with the same weights (e.g. the PET frames), any unit;
        not modified.
    guide : ndarray, shape (x, y, z)
        Low-noise image whose patches decide the weights (e.g. the summed PET,
        or the mean of two BP_ND maps).
    voxel_size_mm : float, sequence of 3 floats, or ndarray, shape (4, 4)
        Voxel sizes, mm, or the affine.
    fwhm_mm : float
        FWHM of the Gaussian spatial weight, mm; the search window is its
        2-sigma ellipsoid.
    h : float
        Range parameter in units of the guide's noise SD: a neighbour whose
        patch differs by ``d`` (RMS, beyond noise) gets ``exp(-d^2/(h sd)^2)``.
    noise_sd : float, optional
        Noise SD of the guide (default :func:`noise_sd_estimate`).
    patch_radius_vox : int
        Patch half-width, voxels (0, the default: single voxels, i.e. a joint
        bilateral filter; 1: 3x3x3 patches, which keep less near edges of
        regions only a few voxels wide).
    mask : ndarray of bool, shape (x, y, z), optional
        Only voxels inside are filtered and used (outside: the input).
    on_progress : callable(done, total), optional
        Called after each search offset.

    Returns
    -------
    filtered : ndarray, same shape as ``volumes``, float32

    Notes
    -----
    ``out(x) = sum_o w_o(x) v(x + o) / sum_o w_o(x)`` with
    ``w_o(x) = g(o) exp(-max(D_o(x) - 2 s^2, 0) / (h s)^2)``, ``g`` the spatial
    Gaussian, ``s`` the guide's noise SD and ``D_o(x)`` the mean squared
    difference of the guide's patches at ``x`` and ``x + o`` (Buades et al.
    2005). Voxels of one region (similar guide) are averaged; across an edge
    of the guide the weights vanish, so the edge is kept. Regions whose guide
    values differ by less than about ``h s`` are mixed.
    """
    from scipy import ndimage

    fwhm = _check_fwhm(fwhm_mm, "nlm")
    if not (np.isfinite(h) and h > 0):
        raise MorError(f"The NLM range parameter h must be > 0; got {h!r}.")
    vols = np.asarray(volumes)
    single = vols.ndim == 3
    vols = vols[None] if single else vols
    guide = np.asarray(guide, dtype=np.float64)
    if vols.ndim != 4 or guide.shape != vols.shape[1:]:
        raise MorError(
            f"guided_nlm needs volumes of shape (n, x, y, z) or (x, y, z) and a "
            f"guide of shape (x, y, z) on the same grid; got {np.shape(volumes)} "
            f"and {guide.shape}."
        )
    shape = guide.shape
    inside = np.ones(shape, bool) if mask is None else _check_pet(vols, mask)
    valid = inside & np.isfinite(guide)
    for v in vols:
        valid &= np.isfinite(v)
    if not valid.any():
        raise MorError("guided_nlm: no voxel inside the mask has finite values.")
    sd = noise_sd_estimate(guide, valid) if noise_sd is None else float(noise_sd)
    scale = float(np.nanmax(np.abs(guide[valid]))) or 1.0
    sd = max(sd, 1e-6 * scale)
    g0 = np.where(valid, guide, 0.0)
    offsets, spatial = _search_offsets(fwhm, _voxel_sizes(voxel_size_mm))
    size = 2 * int(patch_radius_vox) + 1
    acc = np.zeros(vols.shape, dtype=np.float32)
    norm = np.zeros(shape, dtype=np.float64)
    for k, (offset, g) in enumerate(zip(offsets, spatial, strict=True)):
        dst, src = _pair_slices(offset, shape)
        pair = np.zeros(shape, dtype=np.float64)
        pair[dst] = valid[dst] & valid[src]
        d2 = np.zeros(shape, dtype=np.float64)
        d2[dst] = (g0[dst] - g0[src]) ** 2 * pair[dst]
        if size > 1:
            count = ndimage.uniform_filter(pair, size, mode="constant")
            d2 = ndimage.uniform_filter(d2, size, mode="constant")
            d2 = d2 / np.maximum(count, 1e-12)
        weight = g * np.exp(-np.maximum(d2 - 2.0 * sd**2, 0.0) / (h * sd) ** 2)
        weight = np.where(pair > 0, weight, 0.0)
        norm += weight
        w_dst = weight[dst].astype(np.float32)
        for i in range(vols.shape[0]):
            acc[i][dst] += w_dst * np.where(valid[src], vols[i][src], 0.0)
        if on_progress is not None:
            on_progress(k + 1, len(offsets))
    ok = valid & (norm > 0)
    safe_norm = np.where(ok, norm, 1.0)
    for i in range(vols.shape[0]):  # in place, one volume at a time
        acc[i] = np.where(ok, acc[i] / safe_norm, vols[i])
    return acc[0] if single else acc
