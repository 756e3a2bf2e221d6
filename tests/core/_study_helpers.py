"""Shared by the Study-core tests: a BIDS subject from the sample study, an
uneven frame grid."""

from __future__ import annotations

import shutil

from napari_mor.io import FrameTiming


def make_bids_subject(sample_files, root, subject="sub-01", sidecar=True):
    """Copy the sample study into a BIDS subject layout."""
    pet_dir = root / subject / "pet"
    anat_dir = root / subject / "anat"
    pet_dir.mkdir(parents=True)
    anat_dir.mkdir(parents=True)
    pet = pet_dir / f"{subject}_task-rejection_pet.nii.gz"
    shutil.copy(sample_files["pet"], pet)
    if sidecar:
        shutil.copy(
            sample_files["pet"].with_name("sample_pet.json"),
            pet.with_suffix("").with_suffix(".json"),
        )
    t1w = anat_dir / f"{subject}_T1w.nii.gz"
    shutil.copy(sample_files["mr"], t1w)
    return pet, t1w


def uneven_timing():
    """Five uneven frames: mids 0.5, 2, 5.5, 47.5, 55 min."""
    return FrameTiming(
        [0.0, 60.0, 180.0, 2700.0, 3000.0], [60.0, 120.0, 300.0, 300.0, 600.0]
    )
