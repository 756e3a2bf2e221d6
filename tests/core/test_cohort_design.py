"""Cohort design detection (two sessions vs one scan), ROI statistics in the CLI,
smoothing of group stats, and per-subject errors of badly paired cohorts.

Cohorts come from the package's dynamic BIDS writer at a coarse grid (6 mm) to
stay fast. At 6 mm the PAG has no voxel, so it is not among the tested regions.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor.cli import main
from napari_mor.group.batch import BatchSettings, discover_cohort, run_batch
from napari_mor.sample import write_bids_cohort
from napari_mor.sample.cohort import ACTIVATION_REGIONS


def _read_tsv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _run_and_stats(root: Path, *extra_stats: str) -> list[dict]:
    assert main(["group", "run", str(root), "--out", str(root / "maps")]) == 0
    stats = ["group", "stats", str(root / "maps"), "--out", str(root / "stats")]
    assert main([*stats, "--n-perm", "0", "--atlas", "none", *extra_stats]) == 0
    return _read_tsv(root / "stats" / "roi_tests.tsv")


# ------------------------------------------------------------------ cohorts
@pytest.fixture(scope="module")
def two_session(tmp_path_factory):
    """10 subjects, two scans each, voxel noise 0.10, 10 % drops planted."""
    root = tmp_path_factory.mktemp("two_session")
    write_bids_cohort(
        root,
        n_subjects=10,
        seed=11,
        pet_voxel_mm=6.0,
        mr_voxel_mm=6.0,
        sessions=2,
        noise_cv=0.10,
        trait_slope_pct=3.0,
    )
    return root, _run_and_stats(root)


@pytest.fixture(scope="module")
def no_challenge(tmp_path_factory):
    """The same cohort (seed, noise) with no challenge at all."""
    root = tmp_path_factory.mktemp("no_challenge")
    write_bids_cohort(
        root,
        n_subjects=10,
        seed=11,
        pet_voxel_mm=6.0,
        mr_voxel_mm=6.0,
        sessions=2,
        noise_cv=0.10,
        activation_pct={},
        trait_slope_pct=0.0,
    )
    return root, _run_and_stats(root)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """3 subjects, ses-baseline / ses-challenge, low noise."""
    root = tmp_path_factory.mktemp("small")
    write_bids_cohort(
        root,
        n_subjects=3,
        seed=4,
        pet_voxel_mm=6.0,
        mr_voxel_mm=6.0,
        sessions=2,
        noise_cv=0.05,
        trait_slope_pct=0.0,
    )
    return root


# ---------------------------------------------------------------- detection
def test_two_session_cohort_is_a_two_scan_design(small):
    listing = discover_cohort(small)
    assert [s.subject for s in listing.subjects] == ["sub-01", "sub-02", "sub-03"]
    for s in listing.subjects:
        assert s.usable and s.two_scans and s.sessions == ("baseline", "challenge")
        assert s.pet.parent.parent.name == "ses-baseline"
        assert s.challenge_pet.parent.parent.name == "ses-challenge"
        assert s.t1w is not None
    report = listing.report()
    assert "sub-02: two scans: baseline ses-baseline (sub-02_ses-baseline_pet" in report
    assert "challenge ses-challenge (sub-02_ses-challenge_pet.nii.gz)" in report


def test_one_scan_cohort_stays_a_windows_design(tmp_path):
    for sub in ("sub-01", "sub-02"):
        _fake_run(tmp_path, sub, None)
    listing = discover_cohort(tmp_path)
    assert all(s.usable and not s.two_scans for s in listing.subjects)
    assert "one scan, condition windows: PET sub-01_pet.nii.gz" in listing.report()


def _fake_run(root: Path, sub: str, session: str | None, run: str = "") -> None:
    """An (empty) PET file and sidecar; discovery reads only the names."""
    folder = root / sub / (f"ses-{session}" if session else "") / "pet"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{sub}{f'_ses-{session}' if session else ''}{run}_pet"
    (folder / f"{name}.nii.gz").write_bytes(b"")
    (folder / f"{name}.json").write_text("{}")


@pytest.mark.parametrize(
    ("sessions", "baseline"),
    [
        (("pre", "post"), "pre"),
        (("post", "pre"), "pre"),
        (("placebo", "drug"), "placebo"),
        (("rest", "task"), "rest"),
        (("baseline", "rejection"), "baseline"),
        (("base", "challenge"), "base"),
    ],
)
def test_sessions_paired_by_their_names(tmp_path, sessions, baseline):
    for ses in sessions:
        _fake_run(tmp_path, "sub-01", ses)
    (subject,) = discover_cohort(tmp_path).subjects
    assert subject.usable and subject.two_scans
    assert subject.sessions[0] == baseline
    assert subject.pet.parent.parent.name == f"ses-{baseline}"


@pytest.mark.parametrize("sessions", [("A", "B"), ("1", "2"), ("pre", "preop")])
def test_sessions_whose_names_do_not_tell_are_an_error(tmp_path, sessions):
    for ses in sessions:
        _fake_run(tmp_path, "sub-01", ses)
    (subject,) = discover_cohort(tmp_path).subjects
    assert not subject.usable
    (problem,) = subject.problems
    assert "cannot tell which session is the baseline" in problem
    assert f"ses-{sessions[0]}/pet/" in problem and f"ses-{sessions[1]}/pet/" in problem
    assert "--baseline-session" in problem
    named = discover_cohort(
        tmp_path, baseline_session=sessions[1], challenge_session=f"ses-{sessions[0]}"
    ).subjects[0]
    assert named.usable and named.sessions == (sessions[1], sessions[0])


def test_session_options_must_come_together(tmp_path):
    _fake_run(tmp_path, "sub-01", None)
    with pytest.raises(MorError, match="both --baseline-session and"):
        discover_cohort(tmp_path, baseline_session="A")
    with pytest.raises(MorError, match="both ses-A"):
        discover_cohort(tmp_path, baseline_session="A", challenge_session="ses-A")


def test_ambiguous_subjects_get_their_own_error(tmp_path):
    _fake_run(tmp_path, "sub-01", "baseline")
    _fake_run(tmp_path, "sub-01", "challenge")
    _fake_run(tmp_path, "sub-02", "baseline")  # missing session
    for ses in ("baseline", "challenge", "followup"):  # three sessions
        _fake_run(tmp_path, "sub-03", ses)
    _fake_run(tmp_path, "sub-04", "baseline")
    _fake_run(tmp_path, "sub-04", "challenge")
    _fake_run(tmp_path, "sub-04", "challenge", "_run-2")  # two runs in a session
    _fake_run(tmp_path, "sub-05", None)  # no sessions at all
    _fake_run(tmp_path, "sub-05", None, "_run-2")
    subjects = {s.subject: s for s in discover_cohort(tmp_path).subjects}
    assert subjects["sub-01"].usable
    assert (
        "one session only (found: ses-baseline/pet/ sub-02_ses-baseline_pet"
        in (subjects["sub-02"].problems[0])
    )
    assert "3 sessions" in subjects["sub-03"].problems[0]
    assert "--baseline-session" in subjects["sub-03"].problems[0]
    assert "2 PET runs in ses-challenge" in subjects["sub-04"].problems[0]
    assert "2 PET runs" in subjects["sub-05"].problems[0]
    # named sessions: a third session is no longer ambiguous, a missing one is
    named = {
        s.subject: s
        for s in discover_cohort(
            tmp_path, baseline_session="baseline", challenge_session="challenge"
        ).subjects
    }
    assert named["sub-03"].usable and named["sub-03"].sessions == (
        "baseline",
        "challenge",
    )
    assert "no session ses-challenge" in named["sub-02"].problems[0]


# ---------------------------------------------- pairing right (swapped names)
def _roi_delta(maps: Path, sub: str, labels: Path, regions) -> float:
    from napari_mor.io import load_labels, load_volume

    lab = load_labels(labels)
    delta = load_volume(maps / sub / f"{sub}_desc-delta_bpnd.nii.gz", keep_nan=True)
    ids = [k for k, v in lab.lut.items() if v in regions]
    inside = np.isin(lab.data, ids) & np.isfinite(delta.data)
    return float(delta.data[inside].mean())


def test_baseline_session_option_picks_the_right_scan(small, tmp_path):
    root = tmp_path / "swapped"
    shutil.copytree(small, root)
    for sub in ("sub-01", "sub-02", "sub-03"):  # baseline in ses-2, challenge ses-1
        (root / sub / "ses-baseline").rename(root / sub / "ses-2")
        (root / sub / "ses-challenge").rename(root / sub / "ses-1")
    labels = root / "atlas" / "space-MNI_labels.nii.gz"
    assert all(not s.usable for s in discover_cohort(root).subjects)
    right = ["--baseline-session", "2", "--challenge-session", "1"]
    out = tmp_path / "right"
    assert main(["group", "run", str(root), "--out", str(out), *right]) == 0
    wrong = tmp_path / "wrong"
    options = ["--baseline-session", "1", "--challenge-session", "2"]
    assert main(["group", "run", str(root), "--out", str(wrong), *options]) == 0
    for sub in ("sub-01", "sub-02", "sub-03"):
        good = _roi_delta(out, sub, labels, ACTIVATION_REGIONS)
        bad = _roi_delta(wrong, sub, labels, ACTIVATION_REGIONS)
        assert good > 0.1 and bad < -0.1  # ~10 % of BP ~2 planted
        car = json.loads((out / sub / f"{sub}_desc-delta_bpnd.json").read_text())
        assert "baseline ses-2" in car["Design"]


# ----------------------------------------- ROI statistics: detection and null
def test_roi_tests_find_the_planted_drops(two_session):
    root, rows = two_session
    truth = json.loads((root / "cohort_truth.json").read_text())["drops_pct"]
    by_region = {r["region"]: r for r in rows}
    tested = [r for r in by_region if int(by_region[r]["n"]) >= 3]
    assert "occipital_ref" not in tested  # BP_ND ~0: no percent change
    planted = [r for r in ACTIVATION_REGIONS if r in tested]
    assert len(planted) >= 5  # all but the PAG (no voxel at 6 mm)
    for region in tested:
        row = by_region[region]
        true_mean = np.mean([truth[s][region] for s in truth])
        if region in planted:
            assert abs(float(row["mean_pct_delta"]) - true_mean) < 2.0, region
            assert float(row["p"]) < 0.05 and float(row["t"]) > 0, region
        else:
            assert float(row["p"]) >= 0.01, region
    values = _read_tsv(root / "stats" / "roi_values.tsv")
    assert [v["participant_id"] for v in values] == [
        f"sub-{i:02d}" for i in range(1, 11)
    ]
    pct = np.array([float(v["midline_thalamus"]) for v in values])
    assert np.mean(pct) == pytest.approx(
        float(by_region["midline_thalamus"]["mean_pct_delta"]), abs=1e-4
    )
    base = np.array([float(v["midline_thalamus_bp_baseline"]) for v in values])
    chal = np.array([float(v["midline_thalamus_bp_challenge"]) for v in values])
    np.testing.assert_allclose(
        pct, 100 * (base - chal) / base, rtol=1e-4, atol=2e-3
    )  # TSV: 6 digits


def test_roi_tests_of_a_cohort_without_challenge_find_nothing(no_challenge):
    _root, rows = no_challenge
    tested = [r for r in rows if int(r["n"]) >= 3]
    assert len(tested) >= 9
    for row in tested:
        assert float(row["p"]) >= 0.01, row
        assert abs(float(row["mean_pct_delta"])) < 4.0, row


def test_roi_correlation_columns(two_session, tmp_path):
    root, _rows = two_session
    out = tmp_path / "corr"
    argv = ["group", "stats", str(root / "maps"), "--out", str(out), "--n-perm", "0"]
    argv += ["--atlas", "none", "--test", "pearson", "--covariate", "resiliency"]
    assert main(argv) == 0
    rows = _read_tsv(out / "roi_tests.tsv")
    assert list(rows[0]) == ["region", "n", "mean_pct_delta", "sd_pct_delta", "r", "p"]
    from scipy import stats

    values = _read_tsv(out / "roi_values.tsv")
    trait = json.loads((root / "cohort_truth.json").read_text())
    assert trait["trait_regions"]
    table = {r["participant_id"]: r for r in _read_tsv(root / "participants.tsv")}
    x = [float(v["amygdala_R"]) for v in values]
    y = [float(table[v["participant_id"]]["resiliency"]) for v in values]
    row = next(r for r in rows if r["region"] == "amygdala_R")
    assert float(row["r"]) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-5)


def test_stats_smoothing_is_applied_and_recorded(two_session, tmp_path):
    from napari_mor.io import load_volume

    root, _rows = two_session
    out = tmp_path / "smooth"
    argv = ["group", "stats", str(root / "maps"), "--out", str(out), "--n-perm", "0"]
    assert main([*argv, "--atlas", "none", "--fwhm", "10"]) == 0
    settings = json.loads((out / "group.json").read_text())["settings"]
    assert settings["smoothing_fwhm_mm"] == 10.0
    plain = json.loads((root / "stats" / "group.json").read_text())["settings"]
    assert plain["smoothing_fwhm_mm"] == 0.0
    t_smooth = load_volume(out / "stat-t.nii.gz", keep_nan=True).data
    t_plain = load_volume(root / "stats" / "stat-t.nii.gz", keep_nan=True).data
    both = np.isfinite(t_smooth) & np.isfinite(t_plain)
    # smoothing pools neighbours: fewer extreme voxels, and the maps differ
    assert np.nanstd(t_smooth[both]) != pytest.approx(np.nanstd(t_plain[both]))
    car = json.loads((out / "stat-t.json").read_text())
    assert car["GroupAnalysis"]["smoothing_fwhm_mm"] == 10.0
    # ROI tests use the unsmoothed maps: same table with or without --fwhm
    assert _read_tsv(out / "roi_tests.tsv") == _read_tsv(
        root / "stats" / "roi_tests.tsv"
    )
    assert main([*argv, "--fwhm", "-1"]) == 2


# ------------------------------------------------------- delta --rois (CLI)
def test_delta_rois_table_from_region_means(two_session, tmp_path):
    from napari_mor.io import load_labels, load_volume
    from napari_mor.workflows.delta import roi_mean_delta

    root, _rows = two_session
    maps = root / "maps" / "sub-01"
    base = maps / "sub-01_desc-baseline_bpnd.nii.gz"
    chal = maps / "sub-01_desc-challenge_bpnd.nii.gz"
    labels = root / "atlas" / "space-MNI_labels.nii.gz"
    table = tmp_path / "rois.tsv"
    argv = ["delta", str(base), str(chal), "--out", str(tmp_path / "d.nii.gz")]
    assert main([*argv, "--labels", str(labels), "--rois", str(table)]) == 0
    rows = _read_tsv(table)
    b = load_volume(base, keep_nan=True).data
    c = load_volume(chal, keep_nan=True).data
    expected = roi_mean_delta(b - c, 100 * (b - c) / b, load_labels(labels), b, c)
    assert [r["name"] for r in rows] == [e["name"] for e in expected]
    for row, want in zip(rows, expected, strict=True):
        got = (
            float(row["pct_delta_bp_nd"]) if row["pct_delta_bp_nd"] != "NaN" else np.nan
        )
        np.testing.assert_allclose(got, want["pct_delta_bp_nd"], rtol=1e-4)
    thal = next(r for r in rows if r["name"] == "midline_thalamus")
    mean_b, mean_c = float(thal["bp_nd_baseline"]), float(thal["bp_nd_challenge"])
    assert float(thal["pct_delta_bp_nd"]) == pytest.approx(
        100 * (mean_b - mean_c) / mean_b, rel=1e-4
    )
    with pytest.raises(MorError, match="needs the regions"):
        from napari_mor.workflows.delta import DeltaRequest, run_delta

        run_delta(
            DeltaRequest(
                str(base),
                str(chal),
                str(tmp_path / "e.nii.gz"),
                rois_out=str(tmp_path / "e.tsv"),
            )
        )
    request = DeltaRequest(
        str(base), str(chal), "d.nii.gz", labels_path="l.nii.gz", rois_out="r.tsv"
    )
    assert request.to_argv()[-4:] == ["--labels", "l.nii.gz", "--rois", "r.tsv"]
    assert main([*argv, "--labels", str(labels), "--rois", str(labels)]) == 2


# ------------------------------------------------------- bad cohorts (CLI)
def _copy_subject(root: Path, src: str, dst: str, sessions) -> None:
    for ses in sessions:
        target = root / dst / f"ses-{ses}"
        shutil.copytree(root / src / f"ses-{ses}", target)
        for path in sorted(target.rglob(f"{src}_*")):
            path.rename(path.with_name(path.name.replace(src, dst)))
    with (root / "participants.tsv").open("a") as handle:
        handle.write(f"{dst}\t0.1\t25\tF\n")


def test_bad_subjects_fail_alone_with_clear_errors(small, tmp_path, capsys):
    from napari_mor.io import load_pet, write_pet
    from napari_mor.io.timing import FrameTiming

    root = tmp_path / "cohort"
    shutil.copytree(small, root)
    _copy_subject(root, "sub-01", "sub-04", ["baseline"])  # one session
    _copy_subject(root, "sub-01", "sub-05", ["baseline", "challenge"])
    shutil.copytree(root / "sub-05" / "ses-challenge", root / "sub-05" / "ses-extra")
    _copy_subject(root, "sub-01", "sub-06", ["baseline", "challenge"])
    chal = root / "sub-06" / "ses-challenge" / "pet" / "sub-06_ses-challenge_pet.nii.gz"
    pet = load_pet(chal)
    timing = FrameTiming(
        pet.timing.frame_start_s[:-1], pet.timing.frame_duration_s[:-1]
    )
    write_pet(chal, replace(pet, data=pet.data[:-1], timing=timing))
    _copy_subject(root, "sub-01", "sub-07", ["baseline", "challenge"])
    chal = root / "sub-07" / "ses-challenge" / "pet" / "sub-07_ses-challenge_pet.nii.gz"
    pet = load_pet(chal)
    shifted = pet.affine.copy()
    shifted[:3, 3] += 3.0
    write_pet(chal, replace(pet, affine=shifted))
    capsys.readouterr()
    rc = main(["group", "run", str(root), "--out", str(tmp_path / "maps")])
    captured = capsys.readouterr()
    assert rc == 1
    assert "sub-04: SKIPPED - one session only" in captured.out
    assert "sub-05: SKIPPED - 3 sessions" in captured.out
    report = json.loads((tmp_path / "maps" / "batch_report.json").read_text())
    status = {r["subject"]: r for r in report["subjects"]}
    assert [s for s in status if status[s]["status"] == "computed"] == [
        "sub-01",
        "sub-02",
        "sub-03",
    ]
    err = captured.err
    assert "4 of 7 subjects failed" in err
    assert "sub-04: MorError: one session only" in err
    assert "--baseline-session" in status["sub-05"]["message"]
    assert (
        "the baseline scan (ses-baseline, sub-06_ses-baseline_pet.nii.gz) has"
        in (status["sub-06"]["message"])
    )
    assert f"has {pet.n_frames} frames" in status["sub-06"]["message"]
    assert f"challenge_pet.nii.gz) {pet.n_frames - 1}" in status["sub-06"]["message"]
    assert "not on the baseline scan's grid" in status["sub-07"]["message"]
    assert "--registration mni" in status["sub-07"]["message"]
    # the good subjects' maps are usable by stats
    from napari_mor.group.batch import load_cohort_maps

    maps = load_cohort_maps(tmp_path / "maps")
    assert maps.subjects == ["sub-01", "sub-02", "sub-03"]


# ------------------------------------------------- simulate --sessions 2
def test_simulate_two_sessions_cli(tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["group", "simulate", "--out", str(out), "--level", "dynamic"]
    assert main([*argv, "--sessions", "2", "--subjects", "2", "--voxel-mm", "8"]) == 0
    assert "two scans" in capsys.readouterr().out
    for ses in ("baseline", "challenge"):
        pet = out / "sub-01" / f"ses-{ses}" / "pet" / f"sub-01_ses-{ses}_pet.nii.gz"
        assert pet.is_file() and pet.with_name(pet.name[:-7] + ".json").is_file()
    assert not (out / "sub-01" / "pet").exists()
    subject = discover_cohort(out).subjects[0]
    assert subject.two_scans and subject.t1w is not None
    maps = ["group", "simulate", "--out", str(tmp_path / "m"), "--sessions", "2"]
    assert main(maps) == 2
    with pytest.raises(MorError, match="sessions must be 1 or 2"):
        write_bids_cohort(tmp_path / "x", n_subjects=1, sessions=3)


def test_two_scan_batch_records_both_scans(small, tmp_path):
    out = tmp_path / "maps"
    labels = small / "atlas" / "space-MNI_labels.nii.gz"
    results = run_batch(small, out, BatchSettings(), labels=labels, scheduler="sync")
    assert {r["status"] for r in results} == {"computed"}
    manifest = json.loads((out / "sub-01" / "manifest.json").read_text())
    assert manifest["inputs"]["design"] == "two-scan"
    assert manifest["inputs"]["challenge_pet"] and manifest["inputs"]["pet"]
    car = json.loads((out / "sub-01" / "sub-01_desc-challenge_bpnd.json").read_text())
    assert car.get("TwoScans") is True or "two scans" in car["Design"]
    files = json.dumps(car)
    assert "sub-01_ses-challenge_pet.nii.gz" in files
    again = run_batch(small, out, BatchSettings(), labels=labels, scheduler="sync")
    assert {r["status"] for r in again} == {"cached"}


def test_mni_pair_registration_aligns_the_challenge_to_the_baseline(small, monkeypatch):
    """The challenge scan goes through challenge -> baseline (rigid MI) and the
    baseline's MNI transform; here the baseline step is stubbed (identity, its
    own grid) and motion correction skipped, so the test checks the
    scan-to-scan part quickly."""
    from types import SimpleNamespace

    from napari_mor import registration
    from napari_mor.group import batch
    from napari_mor.group import registration_steps as steps
    from napari_mor.io import load_pet
    from napari_mor.registration import Transform, resample_map
    from napari_mor.registration.coreg import mean_pet_image

    subject = discover_cohort(small).subjects[0]
    base, chal = load_pet(subject.pet), load_pet(subject.challenge_pet)
    moved = chal.affine.copy()
    moved[:3, 3] += (6.0, -4.0, 3.0)  # the challenge scan lies 8 mm off
    chal = replace(chal, affine=moved)

    def baseline_only(pet, subject, with_transform=False):
        identity = Transform(np.eye(4), "fixed", "moving", "identity")
        return pet, identity, mean_pet_image(pet)

    monkeypatch.setattr(steps, "_native_to_mni_registration", baseline_only)
    # no head motion in the phantom: skip the (slow) frame realignment
    monkeypatch.setattr(
        registration, "correct_motion", lambda pet: SimpleNamespace(corrected=pet)
    )
    _reg_base, reg_chal = batch.PAIR_REGISTRATIONS["mni"](base, chal, subject)
    assert reg_chal.data.shape == base.data.shape
    np.testing.assert_allclose(reg_chal.affine, base.affine)
    late_base = base.data[-5:].mean(0)
    inside = late_base > 0.2 * late_base.max()
    unregistered = resample_map(
        chal.data[-5:].mean(0)[None],
        chal.affine,
        Transform(np.eye(4), "fixed", "moving", "identity"),
        base.spatial_shape,
        base.affine,
    )[0]

    def corr(volume):
        return np.corrcoef(late_base[inside], volume[inside])[0, 1]

    aligned = corr(reg_chal.data[-5:].mean(0))
    assert aligned > 0.9 and aligned > corr(unregistered) + 0.1
    with pytest.raises(MorError, match="not on the baseline scan's grid"):
        batch.PAIR_REGISTRATIONS["identity"](base, chal, subject)
