"""BIDS discovery (napari_mor.io.bids): PET runs, sidecars, T1w, subjects."""

from __future__ import annotations

import pytest
from _study_helpers import make_bids_subject

from napari_mor import MorError
from napari_mor.io.bids import find_bids_subject


def test_bids_subject_lists_pet_runs_and_t1w(sample_files, tmp_path):
    pet, t1w = make_bids_subject(sample_files, tmp_path)
    # a second run without sidecar and an ECAT file; noise that must be ignored
    bare = pet.with_name("sub-01_task-acceptance_pet.nii")
    bare.write_bytes(b"not read here")
    ecat = pet.with_name("sub-01_task-pain_pet.v")
    ecat.write_bytes(b"")
    (pet.parent / "sub-01_task-rejection_blood.tsv").write_text("x\n")
    (t1w.parent / "sub-01_T2w.nii.gz").write_bytes(b"")
    listing = find_bids_subject(tmp_path / "sub-01")
    assert [r.path for r in listing.pet_runs] == sorted([pet, bare, ecat])
    by_path = {r.path: r for r in listing.pet_runs}
    assert by_path[pet].sidecar is not None and not by_path[pet].needs_frames_tsv
    assert by_path[bare].sidecar is None and by_path[bare].needs_frames_tsv
    assert not by_path[ecat].needs_frames_tsv  # ECAT carries its frame times
    assert listing.t1w_images == (t1w,)
    assert listing.subjects == ()


def test_bids_dataset_lists_subjects_with_pet(sample_files, tmp_path):
    pet1, _ = make_bids_subject(sample_files, tmp_path, "sub-01")
    pet2, _ = make_bids_subject(sample_files, tmp_path, "sub-02")
    (tmp_path / "sub-03" / "anat").mkdir(parents=True)  # no PET: not listed
    listing = find_bids_subject(tmp_path)
    assert listing.subjects == (tmp_path / "sub-01", tmp_path / "sub-02")
    assert [r.path for r in listing.pet_runs] == [pet1, pet2]
    assert len(listing.t1w_images) == 2


def test_bids_sessions_are_searched(sample_files, tmp_path):
    root = tmp_path / "sub-07"
    make_bids_subject(sample_files, root, "ses-baseline")
    listing = find_bids_subject(root)
    assert listing.pet_runs[0].path.parent == root / "ses-baseline" / "pet"


def test_bids_without_pet_raises(tmp_path):
    (tmp_path / "sub-01" / "anat").mkdir(parents=True)
    with pytest.raises(MorError, match="No PET found"):
        find_bids_subject(tmp_path)
    with pytest.raises(MorError, match="not a folder"):
        find_bids_subject(tmp_path / "missing")
