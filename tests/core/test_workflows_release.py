"""The release model (``--model lpntpet``) and the design-bias check, end to end.

TACs come from the independent simulator (tests/core/_carfentanil_sim.py), written
as a TAC table, and go through the CLI exactly as a user's would.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from _carfentanil_sim import simulate_one_scan

from napari_mor import MorError
from napari_mor.cli import main
from napari_mor.defaults import RELEASE_SHAPES
from napari_mor.kinetics.transient import fit_transient
from napari_mor.workflows.design_check import check_design
from napari_mor.workflows.fit import FitRequest, fit_rois_from_table, tacs_of_table
from napari_mor.workflows.release import RELEASE_COLUMNS

REF = "occipital"
K2P = 0.15


def _write_tacs(scan, path):
    """The simulated scan as a BIDS-style TAC table (frame_start/frame_end, s)."""
    names = [*scan.names, REF]
    values = np.column_stack([scan.tacs, scan.ref])
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["frame_start", "frame_end", *names])
        for frame in range(scan.timing.n_frames):
            writer.writerow(
                [
                    f"{scan.timing.frame_start_s[frame]:.6g}",
                    f"{scan.timing.frame_end_s[frame]:.6g}",
                    *(f"{v:.8g}" for v in values[frame]),
                ]
            )
    return path


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.parametrize("k4", [0.05, 0.08, 0.15])
def test_cli_release_model_reads_the_planted_drop(tmp_path, k4):
    """`fit --tacs --model lpntpet --challenge-onset 45`: the ROI table's
    pct_delta_BP within 1 point of a planted 10 % drop, noise-free."""
    scan = simulate_one_scan(0.10, k4_per_min=k4)
    table = _write_tacs(scan, tmp_path / "tacs.tsv")
    out = tmp_path / "release.tsv"
    argv = ["fit", "--tacs", str(table), "--ref-column", REF, "--model", "lpntpet"]
    argv += ["--challenge-onset", "45", "--k2p", str(K2P), "--out", str(out)]
    assert main(argv) == 0
    rows = _read(out)
    assert list(rows[0]) == list(RELEASE_COLUMNS)
    assert [r["name"] for r in rows] == scan.names
    pct = np.array([float(r["pct_delta_BP"]) for r in rows])
    assert np.all(np.abs(pct - 10.0) <= 1.0), pct
    bp = np.array([float(r["BP_ND"]) for r in rows])
    np.testing.assert_allclose(bp, scan.truth["bp_baseline"], rtol=0.03)
    assert {r["onset_min"] for r in rows} == {"45"}
    assert {r["k2p_source"] for r in rows} == {"given"}


def test_release_rows_equal_the_kinetics_fit(tmp_path):
    """The workflow adds names, labels and k2' to exactly the kinetics result,
    and the shared k2' is estimated on the frames before the onset."""
    scan = simulate_one_scan(0.10, k4_per_min=0.08)
    table = _write_tacs(scan, tmp_path / "tacs.tsv")
    request = FitRequest(
        model="lpntpet",
        tacs_path=str(table),
        reference=REF,
        rois_only=True,
        challenge_onset_min=45.0,
    )
    result = fit_rois_from_table(request)
    assert "frames 0-45 min" in result.k2p.source
    assert result.k2p.value == pytest.approx(K2P, rel=0.10)
    direct = fit_transient(
        scan.tacs,
        scan.ref,
        scan.timing,
        k2p_per_min=result.k2p.value,
        onset_min=45.0,
        shapes=RELEASE_SHAPES,
    )
    np.testing.assert_allclose(
        [f.pct_delta_bp for f in result.fits["scan"]],
        [f.pct_delta_bp for f in direct],
        rtol=1e-6,
        atol=1e-6,
    )


def test_searched_onset_is_reported_and_warned(tmp_path):
    scan = simulate_one_scan(0.10, k4_per_min=0.08)
    table = _write_tacs(scan, tmp_path / "tacs.tsv")
    request = FitRequest(
        model="lpntpet", tacs_path=str(table), reference=REF, rois_only=True
    )
    result = fit_rois_from_table(request)
    assert any("onset was searched" in w for w in result.warnings)
    onsets = [f.onset_min for f in result.fits["scan"]]
    assert all(35.0 <= t <= 55.0 for t in onsets), onsets


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "logan", "challenge_onset_min": 45.0}, "release model"),
        ({"model": "lpntpet", "windows_min": ((0, 45), (45, 90))}, "one scan whole"),
        ({"model": "lpntpet", "two_scans": True}, "one scan whole"),
        ({"model": "lpntpet", "challenge_onset_min": -3.0}, "onset must be"),
        ({"model": "nope"}, "lpntpet"),
    ],
)
def test_release_request_errors(kwargs, match):
    with pytest.raises(MorError, match=match):
        FitRequest(**kwargs)


def test_release_request_round_trips_its_command_line():
    from napari_mor.cli import build_parser
    from napari_mor.cli.fit import request_from_args

    request = FitRequest(
        model="lpntpet",
        challenge_onset_min=44.5,
        pet_path="p.nii.gz",
        labels_path="l.nii.gz",
        rois_only=True,
        out="o.tsv",
    )
    argv = request.to_argv()
    assert "--challenge-onset" in argv
    assert request_from_args(build_parser().parse_args(argv)) == request


def _check(scan, tmp_path, **request_kwargs):
    table = _write_tacs(scan, tmp_path / "tacs.tsv")
    request = FitRequest(
        tacs_path=str(table), reference=REF, rois_only=True, **request_kwargs
    )
    tacs, _ = tacs_of_table(request)
    return check_design(request, tacs, onset_min=45.0, n_sim=3, seed=1)


@pytest.mark.parametrize("k4", [0.05, 0.08])
def test_design_check_predicts_the_no_change_bias_of_windowed_logan(tmp_path, k4):
    """On a scan WITH a 10 % drop, the check (which only uses the frames before
    the onset) predicts what default windowed Logan reads on the same subject's
    scan with NO change, and on its planted drop, within 1 point."""
    observed = simulate_one_scan(0.10, k4_per_min=k4, noise_cv=0.002, seed=3)
    result = _check(observed, tmp_path, k2p_per_min=K2P)
    assert result.request.windows_min == ((20.0, 45.0), (60.0, 90.0))

    def logan_pct(scan):
        fit = fit_rois_from_table(
            FitRequest(
                tacs_path=str(_write_tacs(scan, tmp_path / "truth.tsv")),
                reference=REF,
                rois_only=True,
                k2p_per_min=K2P,
                windows_min=((20.0, 45.0), (60.0, 90.0)),
            )
        )
        base, chal = (np.array([f.bp_nd for f in v]) for v in fit.fits.values())
        return 100 * (base - chal) / base

    truth_none = logan_pct(simulate_one_scan(0.0, k4_per_min=k4))
    truth_drop = logan_pct(simulate_one_scan(0.10, k4_per_min=k4))
    read_none = np.array([r["no_change_mean_pct"] for r in result.rows])
    read_drop = np.array([r["drop_mean_pct"] for r in result.rows])
    print(f"k4={k4}", np.round(truth_none, 2), np.round(read_none, 2))
    np.testing.assert_allclose(read_none, truth_none, atol=1.0)
    np.testing.assert_allclose(read_drop, truth_drop, atol=1.0)
    bp = np.array([r["BP_ND_fit"] for r in result.rows])
    np.testing.assert_allclose(bp, observed.truth["bp_baseline"], rtol=0.15)


def test_design_check_warns_when_no_change_reads_activation(tmp_path):
    """Slow dissociation: windowed fits read a few % in a no-change scan; the
    check says so (warning), and the release model's check does not."""
    observed = simulate_one_scan(0.0, k4_per_min=0.05, noise_cv=0.002, seed=4)
    windowed = _check(observed, tmp_path, k2p_per_min=K2P)
    worst = max(abs(r["no_change_mean_pct"]) for r in windowed.rows)
    assert (worst > 2.0) == bool(windowed.warnings), (worst, windowed.warnings)
    release = _check(observed, tmp_path, k2p_per_min=K2P, model="lpntpet")
    readings = [r["no_change_mean_pct"] for r in release.rows]
    assert max(abs(v) for v in readings) <= 1.5, readings
    assert not release.warnings


def test_design_check_cli(tmp_path, capsys):
    scan = simulate_one_scan(0.10, k4_per_min=0.08, noise_cv=0.01, seed=2)
    table = _write_tacs(scan, tmp_path / "tacs.tsv")
    out = tmp_path / "design.tsv"
    argv = ["check-design", "--tacs", str(table), "--ref-column", REF]
    argv += ["--n-sim", "4", "--out", str(out)]
    assert main(argv) == 0
    rows = _read(out)
    assert [r["name"] for r in rows] == scan.names
    assert {r["design"] for r in rows} == {"windows 20-45, 60-90"}
    assert "no change" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--challenge-onset", "200"], "outside the scan"),
        (["--challenge-onset", "8"], "no baseline period"),
        (["--planted-drop", "150"], "0-100"),
        (["--window", "0", "45"], "two windows"),
    ],
)
def test_design_check_bad_input(tmp_path, capsys, extra, match):
    scan = simulate_one_scan(0.0, k4_per_min=0.08)
    table = _write_tacs(scan, tmp_path / "tacs.tsv")
    argv = ["check-design", "--tacs", str(table), "--ref-column", REF, "--n-sim", "2"]
    assert main([*argv, *extra, "--out", str(tmp_path / "d.tsv")]) == 2
    assert match in capsys.readouterr().err


def test_group_run_release_model_on_one_scan_and_refuses_two_scans(tmp_path, capsys):
    """`group run --model lpntpet`: one-scan subjects get baseline/challenge/delta
    maps from one fit; two-scan subjects fail alone with a message saying why."""
    import json

    from napari_mor.sample import write_bids_cohort

    one = tmp_path / "one"
    write_bids_cohort(one, n_subjects=1, pet_voxel_mm=6.0, noise_cv=0.05)
    argv = ["group", "run", str(one), "--out", str(one / "maps"), "--model"]
    argv += ["lpntpet", "--challenge-onset", "45", "--scheduler", "sync"]
    assert main(argv) == 0
    sidecar = one / "maps" / "sub-01" / "sub-01_desc-challenge_bpnd.json"
    prov = json.loads(sidecar.read_text())
    assert prov["Model"] == "lpntpet" and prov["Options"]["onsets_min"] == [45.0]
    two = tmp_path / "two"
    write_bids_cohort(two, n_subjects=1, pet_voxel_mm=6.0, sessions=2)
    argv[2], argv[4] = str(two), str(two / "maps")
    assert main(argv) != 0
    assert "fits the change inside one scan" in capsys.readouterr().out
