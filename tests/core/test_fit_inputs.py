"""Inputs, CLI commands and per-ROI summaries of the fit and delta docks (no Qt)."""

from __future__ import annotations

import argparse
import csv
import shlex

import numpy as np
import pytest

from napari_mor import MorError, kinetics
from napari_mor._cli_kinetics import add_delta_parser, add_fit_parser
from napari_mor._fit_inputs import (
    DEFAULT_WINDOWS_MIN,
    DELTA_COLUMNS,
    FIT_COLUMNS,
    DeltaInputs,
    FitInputs,
    check_same_scan_grid,
    check_windows_in_scan,
    delta_rows_from_fits,
    find_reference_label,
    fit_rois,
    fit_table_rows,
    logan_x_at_t_star,
    map_jobs,
    map_metadata,
    roi_mean_delta,
    roi_tacs,
    symmetric_limits,
    threshold_abs,
    uptake_mask,
    value_at_world,
    write_rows_tsv,
)
from napari_mor.io.pet import DynamicPET
from napari_mor.io.volume import LabelImage
from napari_mor.rois import extract_tacs
from napari_mor.sample import make_sample_study
from napari_mor.sample.phantom import REJECTION_REGIONS

REF = 1  # occipital_ref in the phantom LUT


@pytest.fixture(scope="module")
def two_scans():
    """Baseline and challenge scans (10% drop in the rejection regions)."""
    return make_sample_study(seed=0, separate_scans=True)


@pytest.fixture(scope="module")
def two_scans_noise_free():
    return make_sample_study(seed=0, separate_scans=True, noise_cv=0.0)


def _parser():
    parser = argparse.ArgumentParser(prog="napari-mor")
    sub = parser.add_subparsers(dest="command")
    add_fit_parser(sub)
    add_delta_parser(sub)
    return parser


def test_inputs_validate_model_weights_and_mode():
    with pytest.raises(MorError, match="Unknown model"):
        FitInputs(model="patlak", ref_label=1, ref_name="occ")
    with pytest.raises(MorError, match="weighting"):
        FitInputs(model="logan", ref_label=1, ref_name="occ", weights="poisson")
    with pytest.raises(MorError, match="Two scans"):
        FitInputs(
            model="logan",
            ref_label=1,
            ref_name="occ",
            two_scans=True,
            windows_min=DEFAULT_WINDOWS_MIN,
        )
    assert FitInputs("mrtm", 1, "occ").conditions == ["scan"]
    assert FitInputs("mrtm", 1, "occ", two_scans=True).conditions == [
        "baseline",
        "challenge",
    ]


def test_cli_commands_parse_with_the_real_cli_and_carry_every_option():
    inputs = FitInputs(
        model="mrtm2",
        ref_label=8,
        ref_name="occipital",
        windows_min={"baseline": (5.0, 40.0), "challenge": (45.0, 90.0)},
        t_star_min=12.5,
        k2p_per_min=0.21,
        weights="duration",
        pet_path="/data/sub 01/pet.nii.gz",
        labels_path="/data/labels.nii.gz",
        mask_path="/data/brain.nii.gz",
    )
    commands = inputs.cli_commands("/out/sub01")
    assert len(commands) == 2
    args = _parser().parse_args(shlex.split(commands[1])[1:])
    assert str(args.pet) == "/data/sub 01/pet.nii.gz"  # quoted path survives
    assert args.model == "mrtm2" and args.ref_label == 8
    assert args.window == [45.0, 90.0]
    assert args.t_star == 12.5 and args.k2p == 0.21 and args.weights == "duration"
    assert str(args.mask) == "/data/brain.nii.gz" and not args.rois_only
    assert str(args.out) == "/out/sub01_challenge.nii.gz"
    rois = _parser().parse_args(
        shlex.split(inputs.cli_commands("T", rois_only=True)[0])[1:]
    )
    assert rois.rois_only and str(rois.out) == "T_baseline.tsv" and rois.mask is None


def test_two_scan_commands_name_each_scan_and_no_window():
    inputs = FitInputs(
        "logan", 1, "occ", two_scans=True, pet_path="b.nii", challenge_pet_path="c.nii"
    )
    base, chal = (shlex.split(c) for c in inputs.cli_commands())
    assert base[2] == "b.nii" and chal[2] == "c.nii"
    assert "--window" not in base and "--t-star" not in base


def test_delta_command_parses():
    command = DeltaInputs("base.nii.gz", "chal.nii.gz", min_bp_base=0.2).cli_command(
        "d.nii.gz", "p.nii.gz"
    )
    args = _parser().parse_args(shlex.split(command)[1:])
    assert (str(args.baseline), str(args.challenge)) == ("base.nii.gz", "chal.nii.gz")
    assert str(args.percent) == "p.nii.gz" and args.min_bp_base == 0.2
    assert "BASELINE_BP.nii.gz" in DeltaInputs().cli_command()


def test_reference_found_by_name():
    assert find_reference_label({3: "Amygdala", 8: "Occipital cortex"}) == 8
    assert find_reference_label({1: "thalamus"}) is None


def test_windows_outside_the_scan_are_refused(two_scans):
    timing = two_scans.pet.timing
    check_windows_in_scan(DEFAULT_WINDOWS_MIN, timing)
    with pytest.raises(MorError, match="outside the scan"):
        check_windows_in_scan({"challenge": (45.0, 120.0)}, timing)
    with pytest.raises(MorError, match="empty"):
        check_windows_in_scan({"baseline": (40.0, 40.0)}, timing)


def test_roi_tacs_exclude_the_reference_and_match_extract_tacs(two_scans):
    tacs = roi_tacs(two_scans.pet, two_scans.labels, REF)
    table = extract_tacs(two_scans.pet, two_scans.labels)
    assert "occipital_ref" not in tacs.names and len(tacs.names) == 10
    np.testing.assert_array_equal(tacs.ref_kbq_ml, table.tac("occipital_ref"))
    np.testing.assert_array_equal(tacs.tacs_kbq_ml[:, 0], table.tac(tacs.names[0]))
    with pytest.raises(MorError, match="reference label 42"):
        roi_tacs(two_scans.pet, two_scans.labels, 42)


def test_windowed_fit_is_the_core_fit(two_scans):
    inputs = FitInputs("mrtm", REF, "occipital_ref", windows_min={"b": (10, 45)})
    fits, tacs = fit_rois(inputs, two_scans.pet, two_scans.labels)
    expected = kinetics.fit_roi(
        tacs["b"].tacs_kbq_ml,
        tacs["b"].ref_kbq_ml,
        two_scans.pet.timing,
        "mrtm",
        window=(10, 45),
    )
    assert [f.bp_nd for f in fits["b"]] == [f.bp_nd for f in expected]
    # the window excludes frames on the uneven grid: only mid-times in 10-45 min
    mid = two_scans.pet.timing.frame_mid_min
    assert fits["b"][0].n_frames == int(((mid >= 10) & (mid <= 45)).sum()) < mid.size


def test_two_scans_recover_the_planted_pattern(two_scans_noise_free, two_scans):
    for study, tol in ((two_scans_noise_free, 0.6), (two_scans, 3.5)):
        inputs = FitInputs("logan", REF, "occipital_ref", two_scans=True)
        fits, tacs = fit_rois(inputs, study.pet, study.labels, study.pet_challenge)
        rows = delta_rows_from_fits(fits, tacs["baseline"].labels)
        for row in rows:
            planted = 10.0 if row["name"] in REJECTION_REGIONS else 0.0
            assert row["pct_delta_bp_nd"] == pytest.approx(planted, abs=tol), row
            assert row["delta_bp_nd"] == pytest.approx(
                row["bp_nd_baseline"] - row["bp_nd_challenge"], abs=1e-5
            )


@pytest.mark.parametrize("model", ["logan", "mrtm2"])
def test_one_scan_windows_recover_the_pattern_with_shared_k2p(model):
    """Baseline 0-45 / challenge 45-90 min of one scan, k2' "auto".

    k2' comes once from the baseline window; without it the no-k2' Logan plot is
    biased enough in bolus+infusion windows to flip the sign of delta-BP.
    """
    study = make_sample_study(seed=0, noise_cv=0.0)
    inputs = FitInputs(model, REF, "occipital_ref", windows_min=study.windows_min)
    fits, tacs = fit_rois(inputs, study.pet, study.labels)
    k2p = {fit.k2p_per_min for condition in fits.values() for fit in condition}
    assert len(k2p) == 1 and abs(k2p.pop() - 0.2) < 0.01  # one k2', near the truth
    for row in delta_rows_from_fits(fits, tacs["baseline"].labels):
        if row["name"] in REJECTION_REGIONS:
            assert 7.0 < row["pct_delta_bp_nd"] < 10.5, row  # lags the 10% drop
        else:
            assert abs(row["pct_delta_bp_nd"]) < 1.5, row
    jobs = map_jobs(inputs, study.pet, study.labels)
    assert {job.k2p_per_min for job in jobs} == {fits["baseline"][0].k2p_per_min}


def test_wrong_sign_is_caught(two_scans_noise_free):
    study = two_scans_noise_free
    inputs = FitInputs("mrtm", REF, "occipital_ref", two_scans=True)
    fits, tacs = fit_rois(inputs, study.pet, study.labels, study.pet_challenge)
    swapped = {"baseline": fits["challenge"], "challenge": fits["baseline"]}
    labels = tacs["baseline"].labels
    right = {r["name"]: r["delta_bp_nd"] for r in delta_rows_from_fits(fits, labels)}
    wrong = {r["name"]: r["delta_bp_nd"] for r in delta_rows_from_fits(swapped, labels)}
    assert right["PAG"] > 0.1 and wrong["PAG"] == pytest.approx(-right["PAG"])


def test_mismatched_scans_are_refused(two_scans):
    cropped = DynamicPET(
        data=two_scans.pet_challenge.data[:, :-2],
        affine=two_scans.pet.affine,
        timing=two_scans.pet.timing,
    )
    with pytest.raises(MorError, match="same grid"):
        check_same_scan_grid(two_scans.pet, cropped)
    inputs = FitInputs("logan", REF, "occipital_ref", two_scans=True)
    with pytest.raises(MorError, match="same grid"):
        fit_rois(inputs, two_scans.pet, two_scans.labels, cropped)
    with pytest.raises(MorError, match="challenge PET"):
        fit_rois(inputs, two_scans.pet, two_scans.labels, None)


def test_fit_table_rows_have_all_columns(two_scans):
    inputs = FitInputs("srtm", REF, "occ", windows_min=DEFAULT_WINDOWS_MIN)
    fits, tacs = fit_rois(inputs, two_scans.pet, two_scans.labels)
    rows = fit_table_rows(fits, tacs["baseline"].labels)
    assert len(rows) == 20 and set(FIT_COLUMNS) <= set(rows[0])
    assert rows[0]["window_end_min"] == 45.0 and rows[-1]["condition"] == "challenge"
    assert np.isfinite(rows[0]["BP_ND_se"]) and np.isfinite(rows[0]["R1_se"])


def test_logan_t_star_line_lies_on_the_plot(two_scans):
    inputs = FitInputs("logan", REF, "occ", t_star_min=20.0)
    fit = fit_rois(inputs, two_scans.pet, two_scans.labels)[0]["scan"][0]
    x_star = logan_x_at_t_star(fit, two_scans.pet.timing)
    mid = two_scans.pet.timing.frame_mid_min
    before, after = fit.x[mid < 20][-1], fit.x[mid >= 20][0]
    assert before <= x_star <= after
    mrtm = fit_rois(FitInputs("mrtm", REF, "occ"), two_scans.pet, two_scans.labels)
    assert np.isnan(logan_x_at_t_star(mrtm[0]["scan"][0], two_scans.pet.timing))


def test_map_jobs_and_metadata(two_scans):
    with pytest.raises(MorError, match="per ROI only"):
        map_jobs(FitInputs("srtm", REF, "occ"), two_scans.pet, two_scans.labels)
    inputs = FitInputs("logan", REF, "occipital_ref", windows_min=DEFAULT_WINDOWS_MIN)
    jobs = map_jobs(inputs, two_scans.pet, two_scans.labels)
    assert [(j.condition, j.window_min) for j in jobs] == [
        ("baseline", (0.0, 45.0)),
        ("challenge", (45.0, 90.0)),
    ]
    mask = two_scans.labels.data == 6
    result = kinetics.fit_maps(**jobs[1].core_kwargs(inputs, mask))
    meta = map_metadata(result, inputs, "challenge", two_scans.pet, "thalamus")
    prov = meta["provenance"]
    assert prov["Model"] == "logan" and prov["WindowMin"] == [45.0, 90.0]
    assert prov["ReferenceRegion"] == "label 1 (occipital_ref)"
    assert prov["TStarMin"] == result.t_star_min and meta["software_version"]
    assert prov["WindowsMin"]["baseline"] == [0.0, 45.0]


def test_uptake_mask_covers_the_brain(two_scans):
    mask = uptake_mask(two_scans.pet)
    brain = two_scans.brain_mask
    assert (mask & brain).sum() / brain.sum() > 0.9
    assert mask.sum() < mask.size / 2
    with pytest.raises(MorError, match="fraction"):
        uptake_mask(two_scans.pet, 1.5)


def test_threshold_and_limits_leave_input_alone():
    values = np.array([-0.3, -0.05, 0.0, 0.02, 0.4, np.nan], dtype=np.float32)
    kept = values.copy()
    out = threshold_abs(values, 0.1)
    np.testing.assert_array_equal(values, kept)
    assert np.isnan(out[[1, 2, 3, 5]]).all() and out[0] == -0.3
    low, high = symmetric_limits(values, 100)
    assert low == -high == pytest.approx(-0.4)
    with pytest.raises(MorError, match="Threshold"):
        threshold_abs(values, -1)


def test_roi_mean_delta_ignores_nan_voxels():
    labels = np.zeros((4, 3, 2), np.int32)
    labels[0] = 2
    labels[1] = 5
    delta = np.full(labels.shape, 9.0)
    delta[0] = 0.2
    delta[0, 0, 0] = np.nan
    delta[1] = -0.1
    pct = delta * 10
    rows = roi_mean_delta(
        delta, pct, LabelImage(labels, np.eye(4), {2: "PAG", 5: "sgACC"})
    )
    assert [r["name"] for r in rows] == ["PAG", "sgACC"]
    assert rows[0]["n_voxels"] == 5 and rows[0]["delta_bp_nd"] == pytest.approx(0.2)
    assert rows[1]["pct_delta_bp_nd"] == pytest.approx(-1.0)
    with pytest.raises(MorError, match="shape"):
        roi_mean_delta(delta[:2], pct[:2], LabelImage(labels, np.eye(4)))


def test_value_at_world_uses_the_affine():
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = (-10, 20, 5)
    value, index = value_at_world(data, affine, (-7.0, 26.0, 14.0))
    assert index == (1, 2, 3) and value == data[1, 2, 3]
    assert value_at_world(data, affine, (100, 0, 0))[1] is None


def test_tsv_round_trip(tmp_path):
    rows = [{name: 1.5 for name in DELTA_COLUMNS} | {"name": "PAG"}]
    rows[0]["pct_delta_bp_nd"] = float("nan")
    path = write_rows_tsv(rows, DELTA_COLUMNS, tmp_path / "t.tsv")
    with path.open() as handle:
        read = list(csv.DictReader(handle, delimiter="\t"))
    assert read[0]["name"] == "PAG" and read[0]["pct_delta_bp_nd"] == "NaN"
    with pytest.raises(MorError, match=r"\.tsv"):
        write_rows_tsv(rows, DELTA_COLUMNS, tmp_path / "t.csv")


def test_roi_percent_is_the_change_of_the_roi_means():
    labels = np.zeros((4, 3, 2), np.int32)
    labels[0] = 1  # reference-like: BP_base ~ 0
    labels[1] = 2
    base = np.where(labels == 2, 2.0, 0.01)
    base[1, 0, 0] = 3.0
    chal = base * 0.9
    chal[labels == 1] = -0.02
    from napari_mor.maps import delta_bp, pct_delta_bp

    delta, pct = delta_bp(base, chal), pct_delta_bp(base, chal)
    rows = roi_mean_delta(
        delta, pct, LabelImage(labels, np.eye(4), {1: "occ", 2: "PAG"}), base, chal
    )
    assert np.isnan(rows[0]["pct_delta_bp_nd"])  # mean baseline below 0.1
    assert rows[1]["pct_delta_bp_nd"] == pytest.approx(10.0, rel=1e-5)
    assert rows[1]["bp_nd_baseline"] == pytest.approx(13.0 / 6)
