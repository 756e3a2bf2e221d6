"""Partial-volume correction: GTM ROI TACs, RBV / iterative-Yang images, and the
workflow wiring, on the sample phantom blurred by a known 6 mm FWHM PSF."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor.io.volume import LabelImage
from napari_mor.pvc import blur_psf, gtm_tacs, iterative_yang, psf_sigma_vox, rbv_image
from napari_mor.rois import extract_tacs
from napari_mor.workflows.fit import FitRequest, fit_rois, prepare_fit_data

PSF_MM = 6.0
TARGETS = (
    "ventral_striatum_L",
    "ventral_striatum_R",
    "amygdala_L",
    "amygdala_R",
    "midline_thalamus",
    "PAG",
    "sgACC",
    "pgACC",
    "anterior_insula_L",
    "anterior_insula_R",
)


def complete_labels(study) -> LabelImage:
    """The study's ROIs plus its tissue classes (scalp, skull, GM, WM) as labels
    101-105: a complete segmentation, as PVC assumes (label 0 = air and CSF,
    both without activity in the phantom)."""
    from napari_mor.sample.phantom import _BACKGROUND, classify, world_coordinates

    labels = study.labels
    tissue, regions = classify(world_coordinates(labels.data.shape, labels.affine))
    empty = [i for i, (r1, _, _) in enumerate(_BACKGROUND.values()) if r1 == 0]
    tissue = np.where(np.isin(tissue, empty), 0, tissue)
    data = np.where(regions > 0, regions, np.where(tissue > 0, 100 + tissue, 0))
    lut = {**labels.lut, **{100 + i: n for i, n in enumerate(_BACKGROUND) if i}}
    lut = {k: v for k, v in lut.items() if k in np.unique(data)}
    return LabelImage(data.astype(np.int32), labels.affine, lut)


def blurred(pet, fwhm_mm=PSF_MM):
    data = blur_psf(pet.data, pet.affine, fwhm_mm).astype(np.float32)
    return dataclasses.replace(pet, data=data)


@pytest.fixture(scope="module")
def phantom():
    from napari_mor.sample import make_sample_study

    study = make_sample_study(noise_cv=0.0, separate_scans=True)
    return {
        "study": study,
        "labels": complete_labels(study),
        "pet": blurred(study.pet),
        "challenge": blurred(study.pet_challenge),
    }


def _bp(result, condition):
    fits = result.fits[condition]
    return {fit.name: fit.bp_nd for fit in fits}


def _roi_fit(phantom, **pvc):
    request = FitRequest(two_scans=True, rois_only=True, **pvc)
    data = prepare_fit_data(
        request,
        phantom["pet"],
        labels=phantom["labels"],
        challenge=phantom["challenge"],
    )
    return fit_rois(request, data)


def test_gtm_roi_bp_within_5pct_where_uncorrected_is_biased(phantom):
    truth = phantom["study"].truth["regions"]
    raw = _bp(_roi_fit(phantom), "baseline")
    result = _roi_fit(phantom, pvc="gtm", psf_fwhm_mm=PSF_MM)
    gtm = _bp(result, "baseline")
    gtm_challenge = _bp(result, "challenge")
    for name in TARGETS:
        true_bp = truth[name]["bp_nd_baseline"]
        raw_bias = raw[name] / true_bp - 1
        assert raw_bias < -0.10, (name, raw_bias)  # the blur really biases
        assert abs(gtm[name] / true_bp - 1) < 0.05, (name, gtm[name], true_bp)
        true_chal = truth[name]["bp_nd_challenge"]
        assert abs(gtm_challenge[name] / true_chal - 1) < 0.05, name
    pct = 100 * (gtm["PAG"] - gtm_challenge["PAG"]) / gtm["PAG"]
    assert abs(pct - truth["PAG"]["drop_pct"]) < 1.5, pct


def test_rbv_maps_roi_means_and_pag_delta(phantom):
    from napari_mor.workflows.fit_maps import fit_maps_now, map_provenance_of, plan_maps

    labels = phantom["labels"]
    study = phantom["study"]
    truth = study.truth["regions"]
    ids = {name: labels.label_of(name) for name in TARGETS}
    request = FitRequest(two_scans=True, pvc="rbv", psf_fwhm_mm=PSF_MM)
    data = prepare_fit_data(
        request,
        phantom["pet"],
        labels=labels,
        challenge=phantom["challenge"],
        brain_mask=np.isin(labels.data, list(ids.values())),
    )
    assert data.pvc.images and data.pet is not phantom["pet"]
    plan = plan_maps(request, data)
    maps = fit_maps_now(plan)
    means = {
        condition: {
            name: float(np.nanmean(result.maps["bp_nd"][labels.data == value]))
            for name, value in ids.items()
        }
        for condition, result in maps.items()
    }
    for name in TARGETS:
        true_bp = truth[name]["bp_nd_baseline"]
        assert abs(means["baseline"][name] / true_bp - 1) < 0.08, name
    base, chal = means["baseline"]["PAG"], means["challenge"]["PAG"]
    assert abs(100 * (base - chal) / base - truth["PAG"]["drop_pct"]) < 1.5
    provenance = map_provenance_of(plan, "baseline", maps["baseline"])
    pvc = provenance["PartialVolumeCorrection"]
    assert pvc["Method"] == "RBV" and pvc["PSFFWHMmm"] == [PSF_MM] * 3


def _last_frames(pet, n):
    from napari_mor.io.timing import FrameTiming

    timing = FrameTiming(
        pet.timing.frame_start_s[-n:], pet.timing.frame_duration_s[-n:]
    )
    return dataclasses.replace(pet, data=pet.data[-n:], timing=timing)


def test_iterative_yang_and_rbv_recover_region_means(phantom):
    labels = phantom["labels"]
    pet = _last_frames(phantom["pet"], 4)
    true = extract_tacs(_last_frames(phantom["study"].pet, 4), labels)
    observed = extract_tacs(pet, labels)
    keep = [true.names.index(n) for n in TARGETS]
    for image in (rbv_image(pet, labels, PSF_MM), iterative_yang(pet, labels, PSF_MM)):
        got = extract_tacs(image, labels)
        assert image.data.shape == pet.data.shape and image.data.dtype == np.float32
        ratio = got.mean_kbq_ml[:, keep] / true.mean_kbq_ml[:, keep]
        assert np.all(np.abs(ratio - 1) < 0.03), ratio
    raw = observed.mean_kbq_ml[:, keep] / true.mean_kbq_ml[:, keep]
    assert np.all(raw < 0.9)
    assert np.array_equal(pet.data, phantom["pet"].data[-4:])  # input untouched


# ------------------------------------------------------------- small cases
def _toy(shape=(20, 20, 20), voxel_mm=2.0):
    affine = np.diag([voxel_mm] * 3 + [1.0])
    data = np.zeros(shape, dtype=np.int32)
    data[4:10, 4:16, 4:16] = 1
    data[10:16, 4:16, 4:16] = 2
    labels = LabelImage(data, affine, {1: "left", 2: "right"})
    truth = np.array([0.5, 4.0, 1.0])  # background, left, right
    activity = truth[np.searchsorted([0, 1, 2], data)]
    frames = np.stack([activity, 2 * activity]).astype(np.float32)
    from napari_mor.io.pet import DynamicPET
    from napari_mor.io.timing import FrameTiming

    pet = DynamicPET(
        data=frames,
        affine=affine,
        timing=FrameTiming([0, 60], [60, 60]),
        decay_corrected=True,
    )
    return pet, labels, truth


def test_gtm_exact_on_piecewise_constant_and_per_axis_psf():
    pet, labels, truth = _toy()
    psf = (5.0, 6.0, 7.0)
    blurred_pet = dataclasses.replace(
        pet, data=blur_psf(pet.data, pet.affine, psf).astype(np.float32)
    )
    result = gtm_tacs(blurred_pet, labels, psf)
    assert list(result.region_labels) == [0, 1, 2]
    np.testing.assert_allclose(result.region_values[0], truth, rtol=1e-4)
    np.testing.assert_allclose(result.region_values[1], 2 * truth, rtol=1e-4)
    # labelled regions lose nothing; the background also spills out of the FOV
    np.testing.assert_allclose(result.gtm[1:].sum(axis=1), 1.0, atol=1e-3)
    assert result.gtm[0].sum() < 1.0
    np.testing.assert_allclose(psf_sigma_vox(psf, pet.affine) * 2 * 2.3548, psf, 1e-3)


@pytest.mark.parametrize("psf", [0.0, -2.0, None, (6.0, 0.0, 6.0), (6.0, 6.0)])
def test_bad_psf_is_refused(psf):
    pet, labels, _ = _toy()
    with pytest.raises(MorError, match="PSF"):
        gtm_tacs(pet, labels, psf)


def test_labels_off_the_pet_grid_are_refused():
    pet, labels, _ = _toy()
    shifted = LabelImage(labels.data, labels.affine + np.eye(4) * 0, labels.lut)
    shifted.affine[0, 3] = 1.0
    with pytest.raises(MorError, match="PET grid"):
        gtm_tacs(pet, shifted, 6.0)
    with pytest.raises(MorError, match="PET grid"):
        rbv_image(pet, shifted, 6.0)


def test_a_label_with_no_voxels_is_named():
    pet, labels, _ = _toy()
    with pytest.raises(MorError, match=r"7 \(label_7\)"):
        gtm_tacs(pet, labels, 6.0, regions=[1, 2, 7])


def test_indistinguishable_labels_are_named():
    pet, labels, _ = _toy()
    data = labels.data.copy()
    region = data == 1
    checker = (np.indices(data.shape).sum(axis=0) % 2).astype(bool)
    data[region & checker] = 3  # interleaved with label 1 voxel by voxel
    mixed = LabelImage(data, labels.affine, {**labels.lut, 3: "left_odd"})
    with pytest.raises(MorError, match=r"label 1 \(left\) and label 3 \(left_odd\)"):
        gtm_tacs(pet, mixed, 8.0)


def test_request_pvc_checks():
    with pytest.raises(MorError, match="needs the scanner PSF"):
        FitRequest(pvc="gtm", rois_only=True)
    with pytest.raises(MorError, match="> 0 mm"):
        FitRequest(pvc="rbv", psf_fwhm_mm=-1.0)
    with pytest.raises(MorError, match="without a partial-volume"):
        FitRequest(psf_fwhm_mm=6.0)
    with pytest.raises(MorError, match="GTM corrects regional TACs"):
        FitRequest(pvc="gtm", psf_fwhm_mm=6.0)
    with pytest.raises(MorError, match="Unknown partial-volume"):
        FitRequest(pvc="pvc", psf_fwhm_mm=6.0)
    with pytest.raises(MorError, match="reference mask"):
        FitRequest(pvc="rbv", psf_fwhm_mm=6.0, ref_mask_path="/occ.nii.gz")
    assert FitRequest(pvc="iy", psf_fwhm_mm=[5, 5, 6]).psf_fwhm_mm == (5.0, 5.0, 6.0)


def test_pvc_method_lists_agree():
    from napari_mor import pvc
    from napari_mor.cli.fit import PVC_CHOICES
    from napari_mor.workflows.request import PVC_METHODS

    assert PVC_CHOICES == PVC_METHODS == pvc.PVC_METHODS


def test_pvc_without_labels_is_refused():
    pet, labels, _ = _toy()
    request = FitRequest(pvc="rbv", psf_fwhm_mm=6.0)
    with pytest.raises(MorError, match="needs the ROI set"):
        prepare_fit_data(request, pet, ref_mask=labels.data == 1)


def test_cli_tacs_with_gtm(tmp_path, capsys):
    import nibabel as nib

    from napari_mor.cli import main

    pet, labels, truth = _toy()
    data = blur_psf(pet.data, pet.affine, 6.0).astype(np.float32)
    pet_path = tmp_path / "pet.nii.gz"
    nib.save(nib.Nifti1Image(np.moveaxis(data, 0, -1), pet.affine), pet_path)
    frames = tmp_path / "frames.tsv"
    frames.write_text("frame_start\tframe_duration\n0\t60\n60\t60\n")
    lab_path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(labels.data, labels.affine), lab_path)
    out = tmp_path / "tacs.tsv"
    base = ["tacs", str(pet_path), "--labels", str(lab_path), "--frames", str(frames)]
    assert main([*base, "--pvc", "gtm", "--psf-fwhm", "6", "--out", str(out)]) == 0
    rows = out.read_text().splitlines()
    header = rows[0].split("\t")
    first = dict(zip(header, rows[1].split("\t"), strict=True))
    assert abs(float(first["label_1"]) - truth[1]) < 1e-3
    for bad in (["--pvc", "gtm"], ["--pvc", "gtm", "--psf-fwhm", "0"]):
        assert main([*base, *bad, "--out", str(tmp_path / "bad.tsv")]) == 2
        assert "PSF" in capsys.readouterr().err
