"""The cohort targets: an 18-subject two-session cohort through the CLI defaults.

As Hsu et al. 2013 (n = 18): voxel noise 0.10, 3 mm, drops of ~10 % planted in
ventral striatum, amygdala, midline thalamus and PAG, a trait in amygdala, PAG and
sgACC; and the same cohort with NO challenge. ``group run`` with no options, then
``group stats`` (ROI tests; voxelwise with 10 mm smoothing and sign flips).
benchmarks/cohort_targets.py prints the same numbers as tables.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from napari_mor.cli import main
from napari_mor.sample import write_bids_cohort
from napari_mor.sample.cohort import ACTIVATION_REGIONS, TRAIT_REGIONS

N_PERM = 200


def _tsv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _cohort(root: Path, planted: bool) -> dict:
    write_bids_cohort(
        root,
        n_subjects=18,
        seed=11,
        pet_voxel_mm=3.0,
        mr_voxel_mm=3.0,
        sessions=2,
        noise_cv=0.10,
        activation_pct=None if planted else {},
        trait_slope_pct=3.0 if planted else 0.0,
    )
    assert main(["group", "run", str(root), "--out", str(root / "maps")]) == 0
    stats = ["group", "stats", str(root / "maps"), "--atlas", "none"]
    argv = [*stats, "--out", str(root / "stats"), "--n-perm", str(N_PERM)]
    assert main([*argv, "--fwhm", "10"]) == 0
    argv = [*stats, "--out", str(root / "corr"), "--n-perm", "0", "--test", "pearson"]
    assert main([*argv, "--covariate", "resiliency"]) == 0
    return {
        "roi": {r["region"]: r for r in _tsv(root / "stats" / "roi_tests.tsv")},
        "corr": {r["region"]: r for r in _tsv(root / "corr" / "roi_tests.tsv")},
        "clusters": _tsv(root / "stats" / "clusters.tsv"),
        "drops": json.loads((root / "cohort_truth.json").read_text())["drops_pct"],
        "trait": {
            r["participant_id"]: float(r["resiliency"])
            for r in _tsv(root / "participants.tsv")
        },
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _cohort(tmp_path_factory.mktemp("planted"), planted=True)


@pytest.fixture(scope="module")
def null(tmp_path_factory):
    return _cohort(tmp_path_factory.mktemp("null"), planted=False)


def _fwe_regions(result) -> set[str]:
    return {
        c["region"] or c["atlas_label"]
        for c in result["clusters"]
        if c["p_fwe_cluster"] and float(c["p_fwe_cluster"]) < 0.05
    }


def test_planted_regions_found_within_two_points_and_nothing_else(planted):
    drops = planted["drops"]
    for region, row in planted["roi"].items():
        if region == "occipital_ref":
            continue
        true_mean = np.mean([drops[s].get(region, 0.0) for s in drops])
        p = float(row["p"])
        if region in ACTIVATION_REGIONS:
            assert p < 0.01 and float(row["t"]) > 0, (region, p)
            assert abs(float(row["mean_pct_delta"]) - true_mean) <= 2.0, region
        else:
            assert p >= 0.01, (region, p)
    assert {"ventral_striatum_R", "midline_thalamus"} <= _fwe_regions(planted)


def test_trait_correlation_found_near_its_planted_value(planted):
    """The ROI correlation r within 0.2 of the planted correlation (the trait vs
    the subjects' TRUE drops)."""
    drops, trait = planted["drops"], planted["trait"]
    subjects = sorted(drops)
    for region in TRAIT_REGIONS:
        truth = np.corrcoef(
            [trait[s] for s in subjects], [drops[s][region] for s in subjects]
        )[0, 1]
        measured = float(planted["corr"][region]["r"])
        assert truth > 0.5, (region, truth)
        assert abs(measured - truth) <= 0.2, (region, measured, truth)
        assert float(planted["corr"][region]["p"]) < 0.05, region


def test_no_challenge_finds_nothing(null):
    tested = [r for r in null["roi"].values() if int(r["n"]) >= 3]
    assert len(tested) == 10
    for row in tested:
        assert float(row["p"]) >= 0.01, row
        assert abs(float(row["mean_pct_delta"])) < 2.0, row
    assert not _fwe_regions(null)
