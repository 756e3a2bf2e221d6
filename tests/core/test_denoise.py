"""Denoising before voxelwise fits and percent delta-BP maps under noise.

The phantom (:func:`two_scan_phantom`, also used by benchmarks/bench_denoise.py)
is built here from the independent simulator ``_carfentanil_sim`` (not from
``napari_mor.sample``): spherical regions in a head ellipsoid, each voxel the
region's frame-averaged TAC plus white Gaussian noise, independent between
voxels and frames, with SD ``_carfentanil_sim.noise_sd(tac, timing, cv)``
(SD proportional to sqrt(C exp(lambda t) / duration), scaled so that the SD
relative to the TAC over the last three frames is ``cv``, the "voxel noise").
"""

from __future__ import annotations

import _carfentanil_sim as sim
import numpy as np
import pytest

from napari_mor._errors import MorError
from napari_mor.delta_estimators import (
    PCT_DELTA_ESTIMATORS,
    pct_delta_description,
    pct_delta_map,
)
from napari_mor.denoise import (
    METHODS,
    composite_image,
    denoise_pet,
    denoise_provenance,
    fwhm_to_sigma_vox,
    guided_nlm,
    noise_sd_estimate,
)
from napari_mor.kinetics import fit_maps

VOXEL_MM = 2.0
#: Region -> (centre mm, radius mm, BP_ND, R1, fractional drop in the challenge).
REGIONS = {
    "thalamus": ((40.0, 40.0, 20.0), 9.0, 3.5, 1.15, 0.10),
    "amygdala": ((18.0, 22.0, 20.0), 7.0, 3.0, 0.95, 0.0),
    "vstriatum": ((62.0, 22.0, 20.0), 7.0, 2.4, 1.05, 0.10),
    "pag": ((40.0, 62.0, 24.0), 5.0, 1.8, 1.0, 0.10),
    "insula": ((16.0, 52.0, 18.0), 7.0, 1.2, 1.1, 0.0),
}
#: Everything else in the head: BP_ND, R1 (no drop).
BACKGROUND = (0.6, 1.0)
#: Reference (occipital) sphere: centre mm, radius mm.
REFERENCE = ((62.0, 60.0, 18.0), 10.0)
BACKGROUND_LABEL, REFERENCE_LABEL = 1, 99
K2P = 0.15


def two_scan_phantom(
    noise_cv: float,
    seed: int = 0,
    shape: tuple[int, int, int] = (40, 40, 20),
    regions: dict = REGIONS,
) -> dict:
    """Baseline and challenge scans of a blob phantom (two-scan design).

    Returns
    -------
    dict with ``pet_base``, ``pet_chal`` (t, x, y, z) float32 kBq/mL,
    ``labels`` (x, y, z) int (0 air, 1 background, 2.. regions in order,
    99 reference), ``mask`` (head), ``timing``, ``ref_base``, ``ref_chal``
    (region means of the reference in the noisy images), ``names``, ``truth``
    (name -> (BP_baseline, drop)) and ``clean_base``/``clean_chal`` TACs.
    """
    centre = (np.indices(shape).transpose(1, 2, 3, 0) + 0.5) * VOXEL_MM
    half = np.array(shape) * VOXEL_MM / 2
    head = (((centre - half) / (half * 0.95)) ** 2).sum(-1) < 1
    labels = np.where(head, BACKGROUND_LABEL, 0)
    for j, (cen, radius, *_) in enumerate(regions.values()):
        labels[((centre - cen) ** 2).sum(-1) < radius**2] = j + 2
    labels[((centre - REFERENCE[0]) ** 2).sum(-1) < REFERENCE[1] ** 2] = REFERENCE_LABEL
    lut = np.zeros(REFERENCE_LABEL + 1, int)
    lut[BACKGROUND_LABEL] = 1
    lut[2 : len(regions) + 2] = np.arange(2, len(regions) + 2)
    lut[REFERENCE_LABEL] = len(regions) + 2
    column = lut[labels]
    rng = np.random.default_rng(seed)
    out = {"labels": labels, "mask": head, "names": list(regions)}
    for scan, factor in (("base", 0.0), ("chal", 1.0)):
        bps = {"background": BACKGROUND} | {
            n: (v[2] * (1 - factor * v[4]), v[3]) for n, v in regions.items()
        }
        s = sim.simulate_scan(regions=bps, drop=0.0, t_challenge_min=None)
        clean = np.column_stack([np.zeros(s.clean_ref.size), s.clean_tacs, s.clean_ref])
        pet = clean[:, column]
        if noise_cv > 0:
            sd = sim.noise_sd(np.clip(clean, 1e-6, None), s.timing, noise_cv)
            sd[:, 0] = 0.0  # no noise in air
            pet = pet + sd[:, column] * rng.standard_normal(pet.shape)
        pet = pet.astype(np.float32)
        out[f"pet_{scan}"] = pet
        out[f"ref_{scan}"] = pet[:, labels == REFERENCE_LABEL].mean(axis=1)
        out[f"clean_{scan}"] = clean
        out["timing"] = s.timing
    out["truth"] = {n: (v[2], v[4]) for n, v in regions.items()}
    return out


def fit_bp(ph: dict, pet: np.ndarray, scan: str, model: str = "logan") -> np.ndarray:
    """BP_ND map of one (denoised) scan, reference TAC from the noisy image."""
    result = fit_maps(
        pet, ph["mask"], ph[f"ref_{scan}"], ph["timing"], model, k2p_per_min=K2P
    )
    return result.maps["bp_nd"]


def region_means(ph: dict, image: np.ndarray) -> np.ndarray:
    return np.array(
        [np.nanmean(image[ph["labels"] == j + 2]) for j in range(len(ph["names"]))]
    )


@pytest.fixture(scope="module")
def noisy():
    return two_scan_phantom(0.10, seed=3)


# ---------------------------------------------------------------- basics
@pytest.mark.parametrize("method", METHODS)
def test_shape_dtype_and_input_untouched(method):
    rng = np.random.default_rng(0)
    pet = rng.uniform(1, 2, (4, 9, 8, 7)).astype(np.float64)
    before = pet.copy()
    mask = np.zeros(pet.shape[1:], bool)
    mask[1:-1, 1:-1, 1:-1] = True
    out = denoise_pet(pet, (2.0, 2.0, 2.5), method=method, fwhm_mm=5.0, mask=mask)
    assert out.shape == pet.shape and out.dtype == np.float32
    np.testing.assert_array_equal(pet, before)
    assert out is not pet
    # outside the mask the input is kept
    np.testing.assert_allclose(out[:, ~mask], pet[:, ~mask], rtol=1e-6)
    if method != "none":
        assert out[:, mask].std() < pet[:, mask].std()


@pytest.mark.parametrize("method", ["gaussian", "hypr-lr", "nlm"])
def test_constant_stays_constant(method):
    pet = np.full((3, 10, 10, 8), 2.5, np.float32)
    pet[1] = 4.0
    mask = np.zeros(pet.shape[1:], bool)
    mask[2:9, 1:8, 1:7] = True
    pet[:, ~mask] = 100.0  # scalp/air must not bleed into the mask
    out = denoise_pet(pet, 2.0, method=method, fwhm_mm=6.0, mask=mask)
    np.testing.assert_allclose(out[0][mask], 2.5, rtol=1e-5)
    np.testing.assert_allclose(out[1][mask], 4.0, rtol=1e-5)


def test_gaussian_uses_mm_and_anisotropic_voxels():
    np.testing.assert_allclose(
        fwhm_to_sigma_vox(4.7096, (2.0, 1.0, 4.0)), [1, 2, 0.5], atol=1e-4
    )
    pet = np.zeros((1, 21, 21, 21), np.float32)
    pet[0, 10, 10, 10] = 1.0
    out = denoise_pet(pet, (1.0, 2.0, 2.0), method="gaussian", fwhm_mm=6.0)[0]
    # FWHM 6 mm: along x (1 mm voxels) the profile halves 3 voxels away
    profile = out[:, 10, 10] / out[10, 10, 10]
    assert profile[13] == pytest.approx(0.5, abs=0.03)
    assert out[10, 11, 10] / out[10, 10, 10] == pytest.approx(0.5 ** (4 / 9), abs=0.03)


def test_hypr_lr_keeps_region_means_of_piecewise_constant_phantom():
    # three slabs 40 mm wide (>> the 4 mm low-pass), each with its own TAC
    scan = sim.simulate_scan(drop=0.0, t_challenge_min=None)
    tacs = np.column_stack([scan.clean_tacs[:, 0], scan.clean_tacs[:, 4], scan.ref])
    slab = np.repeat(np.arange(3), 20)
    pet = np.broadcast_to(
        tacs[:, slab][:, :, None, None], (tacs.shape[0], 60, 12, 12)
    ).astype(np.float32)
    rng = np.random.default_rng(4)
    noisy = pet * (1 + 0.1 * rng.standard_normal(pet.shape)).astype(np.float32)
    for data in (pet, noisy):
        out = denoise_pet(
            data,
            VOXEL_MM,
            method="hypr-lr",
            fwhm_mm=4.0,
            frame_duration_s=scan.timing.frame_duration_s,
        )
        for k in range(3):
            rel = out[:, slab == k].mean(axis=(1, 2, 3)) / data[:, slab == k].mean(
                axis=(1, 2, 3)
            )
            assert np.abs(rel - 1).max() < 0.012, (k, rel)
    # noise-free: the slab interiors are reproduced voxel by voxel
    out = denoise_pet(pet, VOXEL_MM, method="hypr-lr", fwhm_mm=4.0)
    np.testing.assert_allclose(out[:, 5:9], pet[:, 5:9], rtol=1e-3)
    # and the noise of the noisy frames is lowered
    out = denoise_pet(noisy, VOXEL_MM, method="hypr-lr", fwhm_mm=4.0)
    assert (out - pet)[:, 3:11].std() < 0.5 * (noisy - pet)[:, 3:11].std()


def test_composite_is_time_weighted():
    pet = np.stack([np.full((2, 2, 2), v, np.float32) for v in (1.0, 4.0)])
    comp = composite_image(pet, [60.0, 180.0])
    np.testing.assert_allclose(comp, 3.25)


def test_noise_sd_estimate_of_white_noise():
    rng = np.random.default_rng(1)
    image = 5.0 + 0.3 * rng.standard_normal((30, 30, 30))
    image[15:] += 10.0  # an edge hardly moves the median
    assert noise_sd_estimate(image) == pytest.approx(0.3, rel=0.05)


def test_guided_nlm_keeps_edges_that_gaussian_blurs():
    rng = np.random.default_rng(2)
    truth = np.where(np.arange(24)[:, None, None] < 12, 1.0, 3.0) * np.ones(
        (24, 16, 16)
    )
    noisy = truth + 0.1 * rng.standard_normal(truth.shape)
    nlm = guided_nlm(noisy, noisy, VOXEL_MM, fwhm_mm=6.0, h=3.0)
    gauss = denoise_pet(noisy[None], VOXEL_MM, method="gaussian", fwhm_mm=6.0)[0]
    edge = slice(10, 14)
    assert (
        np.abs(nlm[edge] - truth[edge]).mean()
        < 0.3 * np.abs(gauss[edge] - truth[edge]).mean()
    )
    assert (nlm - truth)[4:8].std() < 0.35 * (noisy - truth)[4:8].std()


# ----------------------------------------------------------- bias under noise
def test_denoising_reduces_logan_noise_bias(noisy):
    truth = np.array([v[0] for v in noisy["truth"].values()])
    bias, sd = {}, {}
    for method in ("none", "nlm", "hypr-lr"):
        pet = denoise_pet(
            noisy["pet_base"],
            VOXEL_MM,
            method=method,
            fwhm_mm=6.0 if method == "nlm" else 4.0,
            mask=noisy["mask"],
            frame_duration_s=noisy["timing"].frame_duration_s,
        )
        bp = fit_bp(noisy, pet, "base")
        bias[method] = 100 * (region_means(noisy, bp) / truth - 1)
        thal = noisy["labels"] == 2
        sd[method] = np.nanstd(bp[thal])
    # Logan reads low under noise without denoising (measured: -5 to -6 %) ...
    assert bias["none"].mean() < -4.0
    # ... and NLM denoising removes most of it and most of the voxel noise
    assert np.abs(bias["nlm"]).max() < 3.5
    assert np.abs(bias["nlm"]).mean() < 0.5 * np.abs(bias["none"]).mean()
    assert sd["nlm"] < 0.5 * sd["none"]
    assert sd["hypr-lr"] < sd["none"]


def test_pct_delta_estimator_agrees_with_ratio_of_region_means(noisy):
    bb = fit_bp(noisy, noisy["pet_base"], "base")
    bc = fit_bp(noisy, noisy["pet_chal"], "chal")
    affine = np.diag([VOXEL_MM] * 3 + [1.0])
    pct = pct_delta_map(bb, bc, affine, mask=noisy["mask"])
    assert pct.dtype == np.float32 and pct.shape == bb.shape
    ratio = 100 * (1 - region_means(noisy, bc) / region_means(noisy, bb))
    mapped = region_means(noisy, pct)
    np.testing.assert_allclose(mapped, ratio, atol=1.0)
    # the planted drops are found, the unplanted regions read ~0
    drops = np.array([100 * v[1] for v in noisy["truth"].values()])
    np.testing.assert_allclose(mapped, drops, atol=2.5)


def test_voxel_ratio_is_biased_where_the_estimator_is_not():
    ph = two_scan_phantom(0.20, seed=5)
    bb = fit_bp(ph, ph["pet_base"], "base")
    bc = fit_bp(ph, ph["pet_chal"], "chal")
    affine = np.diag([VOXEL_MM] * 3 + [1.0])
    ratio = 100 * (1 - region_means(ph, bc) / region_means(ph, bb))
    errors = {
        e: region_means(ph, pct_delta_map(bb, bc, affine, estimator=e, mask=ph["mask"]))
        - ratio
        for e in ("voxel-ratio", "guided-ratio")
    }
    # the per-voxel ratio reads low (E[c/b] > E[c]/E[b]); the estimator does not
    assert errors["voxel-ratio"].mean() < -1.0
    assert (
        np.abs(errors["guided-ratio"]).mean()
        < 0.5 * np.abs(errors["voxel-ratio"]).mean()
    )


def test_pct_delta_estimators_exact_on_noise_free_uniform_maps():
    base = np.full((12, 12, 12), 2.0)
    chal = np.full((12, 12, 12), 1.8)
    for estimator in PCT_DELTA_ESTIMATORS:
        pct = pct_delta_map(base, chal, np.eye(4), estimator=estimator)
        np.testing.assert_allclose(pct, 10.0, atol=1e-4)
        assert pct_delta_description(estimator)["PctDeltaEstimator"] == estimator


def test_provenance_fields():
    prov = denoise_provenance("hypr-lr", 6)["Denoising"]
    assert prov["Method"] == "hypr-lr" and prov["FWHMmm"] == 6.0
    assert "Christian" in prov["Reference"]
    assert denoise_provenance("none") == {"Denoising": {"Method": "none"}}
    assert (
        "W(BP_baseline" in pct_delta_description("guided-ratio")["PctDeltaDefinition"]
    )


# ------------------------------------------------------------------ errors
def test_bad_inputs_raise_mor_error():
    pet = np.ones((3, 6, 6, 6), np.float32)
    with pytest.raises(MorError, match=r"Unknown denoising method 'median'.*gaussian"):
        denoise_pet(pet, 2.0, method="median")
    with pytest.raises(MorError, match=r"FWHM must be a positive number of mm.*-1"):
        denoise_pet(pet, 2.0, method="gaussian", fwhm_mm=-1)
    with pytest.raises(MorError, match="FWHM must be a positive"):
        denoise_pet(pet, 2.0, method="hypr-lr", fwhm_mm=0)
    with pytest.raises(MorError, match=r"shape \(t, x, y, z\).*3-D.*smooth_map"):
        denoise_pet(pet[0], 2.0, method="gaussian")
    with pytest.raises(MorError, match=r"mask has shape \(6, 6\).*\(6, 6, 6\)"):
        denoise_pet(pet, 2.0, method="gaussian", mask=np.ones((6, 6), bool))
    with pytest.raises(MorError, match="no voxel set"):
        denoise_pet(pet, 2.0, method="gaussian", mask=np.zeros((6, 6, 6), bool))
    with pytest.raises(MorError, match="voxel_size_mm must be"):
        denoise_pet(pet, (2.0, 0.0, 2.0), method="gaussian")
    with pytest.raises(MorError, match="3 non-negative durations"):
        denoise_pet(pet, 2.0, method="hypr-lr", frame_duration_s=[60.0, 60.0])
    with pytest.raises(MorError, match="no positive voxel"):
        denoise_pet(np.zeros_like(pet), 2.0, method="nlm")
    with pytest.raises(MorError, match="Unknown denoising method"):
        denoise_provenance("bm4d")


def test_pct_delta_bad_inputs():
    base = np.ones((5, 5, 5))
    with pytest.raises(MorError, match="Unknown percent delta-BP estimator 'mean'"):
        pct_delta_map(base, base, np.eye(4), estimator="mean")
    with pytest.raises(MorError, match="FWHM must be a positive number of mm"):
        pct_delta_map(base, base, np.eye(4), fwhm_mm=0)
    with pytest.raises(MorError, match=r"same .PET. grid"):
        pct_delta_map(base, base[:4], np.eye(4))
    with pytest.raises(MorError, match="need 3-D BP_ND maps"):
        pct_delta_map(base[0], base[0], np.eye(4))
    with pytest.raises(MorError, match="mask has shape"):
        pct_delta_map(base, base, np.eye(4), mask=np.ones((4, 4, 4), bool))


def test_progress_and_nan_voxels():
    rng = np.random.default_rng(6)
    pet = rng.uniform(1, 2, (5, 8, 8, 8)).astype(np.float32)
    pet[:, 3, 3, 3] = np.nan
    for method in ("gaussian", "hypr-lr", "nlm"):
        calls: list[tuple[int, int]] = []
        out = denoise_pet(
            pet, 2.0, method=method, on_progress=lambda d, t, c=calls: c.append((d, t))
        )
        assert calls and calls[-1][0] == calls[-1][1]
        # NaN neither spreads nor counts as zero
        assert np.isnan(out[:, 3, 3, 3]).all()
        assert np.isfinite(np.delete(out.reshape(5, -1), 3 * 64 + 3 * 8 + 3, 1)).all()
        assert out[:, 3, 3, 4].min() > 0.9


def test_guided_nlm_bad_inputs():
    vol = np.ones((6, 6, 6))
    with pytest.raises(MorError, match="range parameter h must be > 0"):
        guided_nlm(vol, vol, 2.0, h=0)
    with pytest.raises(MorError, match="same grid"):
        guided_nlm(vol, vol[:5], 2.0)
