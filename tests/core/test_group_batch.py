"""Cohort batch (dask), caching, failure reporting, cohort files and the CLI."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor.group.batch import (
    BatchSettings,
    discover_cohort,
    load_cohort_maps,
    run_batch,
)
from napari_mor.maps import smooth_map
from napari_mor.sample import REGIONS, read_participants, write_bids_cohort


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    paths = write_bids_cohort(
        root, n_subjects=3, seed=5, pet_voxel_mm=6.0, mr_voxel_mm=6.0, noise_cv=0.03
    )
    return root, paths


def test_bids_cohort_layout(bids):
    root, _paths = bids
    table = read_participants(root / "participants.tsv")
    assert table["participant_id"] == ["sub-01", "sub-02", "sub-03"]
    assert len(table["resiliency"]) == 3
    for sub in table["participant_id"]:
        assert (root / sub / "pet" / f"{sub}_pet.nii.gz").is_file()
        assert (root / sub / "pet" / f"{sub}_pet.json").is_file()
        assert (root / sub / "anat" / f"{sub}_T1w.nii.gz").is_file()


def test_batch_runs_caches_and_reports_failures(bids, tmp_path):
    import shutil

    from napari_mor.io import load_pet
    from napari_mor.kinetics import estimate_k2p
    from napari_mor.maps import bp_maps

    src, _paths = bids
    root = tmp_path / "cohort"
    shutil.copytree(src, root)
    # a 4th subject listed without PET, to be reported and skipped
    with (root / "participants.tsv").open("a") as handle:
        handle.write("sub-04\t0.5\t30\tF\n")
    listing = discover_cohort(root)
    assert "sub-04: SKIPPED - listed in participants.tsv but no folder" in (
        listing.report()
    )
    out = tmp_path / "maps"
    labels = root / "atlas" / "space-MNI_labels.nii.gz"
    mask = root / "atlas" / "space-MNI_brainmask.nii.gz"
    seen = []
    settings = BatchSettings(fwhm_mm=0.0)
    results = run_batch(
        root,
        out,
        settings,
        labels=labels,
        mask=mask,
        on_progress=lambda d, n, s: seen.append((d, n, s["status"])),
    )
    status = {r["subject"]: r["status"] for r in results}
    assert status == {
        "sub-01": "computed",
        "sub-02": "computed",
        "sub-03": "computed",
        "sub-04": "failed",
    }
    assert sorted(d for d, _, _ in seen) == [1, 2, 3, 4] and seen[0][1] == 4
    # the written delta equals the kinetics core run directly
    pet = load_pet(root / "sub-02" / "pet" / "sub-02_pet.nii.gz")
    from napari_mor.io import load_labels

    lab = load_labels(labels)
    from napari_mor.rois import mask_mean_tac

    ref = mask_mean_tac(pet, lab.data == lab.label_of("occipital_ref"))
    import nibabel as nib

    brain = np.asarray(nib.load(str(mask)).dataobj) > 0
    high = mask_mean_tac(pet, lab.data == lab.label_of("midline_thalamus"))
    k2p = estimate_k2p(high, ref, pet.timing, window=settings.windows_min["baseline"])
    fits = bp_maps(
        pet.data, brain, ref, pet.timing, "mrtm2", settings.windows_min, k2p_per_min=k2p
    )
    expected = fits["baseline"].maps["bp_nd"] - fits["challenge"].maps["bp_nd"]
    written = np.asarray(
        nib.load(str(out / "sub-02" / "sub-02_desc-delta_bpnd.nii.gz")).dataobj
    )
    np.testing.assert_allclose(written, expected, rtol=1e-5, equal_nan=True)
    # science: regional delta-BP tracks the planted drops (subject mean of the
    # regional means; 6 mm voxels, noise 0.03: a few voxels per region)
    truth = json.loads((root / "cohort_truth.json").read_text())["drops_pct"]
    regions = {r.name: r for r in REGIONS}
    subs = ("sub-01", "sub-02", "sub-03")
    deltas = [
        np.asarray(nib.load(str(out / s / f"{s}_desc-delta_bpnd.nii.gz")).dataobj)
        for s in subs
    ]
    for name in ("midline_thalamus", "amygdala_L", "amygdala_R", "sgACC", "pgACC"):
        region = lab.data == lab.label_of(name)
        measured = np.mean([np.nanmean(d[region]) for d in deltas])
        true = np.mean([regions[name].bp_nd * truth[s][name] / 100 for s in subs])
        assert measured == pytest.approx(true, abs=0.1), (name, measured, true)
    # rerun: cached; touch one subject's PET -> only it recomputes
    again = run_batch(root, out, settings, labels=labels, mask=mask, scheduler="sync")
    assert [r["status"] for r in again[:3]] == ["cached"] * 3
    pet_path = root / "sub-03" / "pet" / "sub-03_pet.nii.gz"
    pet3 = load_pet(pet_path)
    from napari_mor.io import write_pet

    pet3.data[...] *= 1.01
    write_pet(pet_path, pet3)
    third = run_batch(root, out, settings, labels=labels, mask=mask)
    assert [r["status"] for r in third[:3]] == ["cached", "cached", "computed"]
    # changed settings (smoothing) -> all recompute
    smooth = run_batch(
        root,
        out,
        BatchSettings(fwhm_mm=8.0),
        labels=labels,
        mask=mask,
        scheduler="processes",
        n_workers=2,
    )
    assert [r["status"] for r in smooth[:3]] == ["computed"] * 3
    maps = load_cohort_maps(out)
    assert maps.subjects == ["sub-01", "sub-02", "sub-03"] and maps.delta.shape[0] == 3
    assert maps.covariate("resiliency").shape == (3,)
    with pytest.raises(MorError, match="no column"):
        maps.covariate("grit")


def test_smooth_map_fwhm():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    impulse = np.zeros((41, 41, 41))
    impulse[20, 20, 20] = 1.0
    out = smooth_map(impulse, affine, 8.0)
    profile = out[:, 20, 20] / out[20, 20, 20]
    # half maximum at +-2 voxels (4 mm) from the centre
    assert profile[18] == pytest.approx(0.5, abs=0.03)


def test_batch_errors(tmp_path):
    with pytest.raises(MorError, match="not a folder"):
        discover_cohort(tmp_path / "nothing")
    with pytest.raises(MorError, match="No sub-"):
        discover_cohort(tmp_path)
    with pytest.raises(MorError, match="registration"):
        BatchSettings(registration="ants").check()


def test_cli_simulate_and_stats(tmp_path, capsys):
    from napari_mor.cli.group import add_parser

    parser = argparse.ArgumentParser(prog="napari-mor")
    add_parser(parser.add_subparsers(dest="command", required=True))

    def run(*argv):
        args = parser.parse_args(list(argv))
        return args.run(args)

    maps = tmp_path / "maps"
    assert (
        run(
            "group",
            "simulate",
            "--out",
            str(maps),
            "--subjects",
            "10",
            "--voxel-mm",
            "6",
        )
        == 0
    )
    res = tmp_path / "res"
    assert (
        run(
            "group",
            "stats",
            str(maps),
            "--out",
            str(res),
            "--test",
            "paired",
            "--n-perm",
            "50",
            "--atlas",
            "none",
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "paired (two-sided), n=10, df=9" in text
    for name in (
        "stat-t.nii.gz",
        "stat-p_fwe_voxel.nii.gz",
        "clusters.tsv",
        "group.json",
    ):
        assert (res / name).is_file()
    from napari_mor.group import load_group_result

    loaded = load_group_result(res)
    assert loaded.settings["n_perm"] == 50 and loaded.data.shape[0] == 10
    with pytest.raises(MorError, match="covariate"):
        run("group", "stats", str(maps), "--out", str(res), "--test", "pearson")


def test_group_core_is_qt_free():
    code = (
        "import sys, napari_mor.group, napari_mor.group.batch, "
        "napari_mor.sample.cohort, napari_mor.cli.group; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt6', 'magicgui', 'nilearn', 'dask')]; "
        "print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mni_registration_puts_a_subject_on_the_template_grid(bids):
    """Motion correction + PET->T1w + T1w->MNI152, frames resampled once."""
    from dataclasses import replace

    from napari_mor.group.batch import REGISTRATIONS
    from napari_mor.io import load_pet
    from napari_mor.rois import load_mni_template

    root, _paths = bids
    subject = next(s for s in discover_cohort(root).subjects if s.subject == "sub-01")
    pet = load_pet(subject.pet)
    registered = REGISTRATIONS["mni"](pet, subject)
    template = load_mni_template(2)
    assert registered.data.shape == (pet.n_frames, *template.data.shape)
    np.testing.assert_allclose(registered.affine, template.affine)
    np.testing.assert_array_equal(
        registered.timing.frame_start_s, pet.timing.frame_start_s
    )

    def late_activity(world_mm):
        voxel = np.linalg.solve(registered.affine, [*world_mm, 1.0])[:3]
        i, j, k = np.round(voxel).astype(int)
        return registered.data[-5:, i - 1 : i + 2, j - 1 : j + 2, k - 1 : k + 2].mean()

    # High-binding midline thalamus vs the occipital reference, at MNI positions.
    assert late_activity((0.0, -16.0, 7.0)) > 1.5 * late_activity((0.0, -88.0, 6.0))
    with pytest.raises(MorError, match="needs a T1w"):
        REGISTRATIONS["mni"](pet, replace(subject, t1w=None))
