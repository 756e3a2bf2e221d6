"""BIDS discovery: the PET runs and T1w images of a subject or a dataset.

A NIfTI PET (``*_pet.nii[.gz]``) is listed with its JSON sidecar when there is
one; ECAT files (``*.v``) carry their own frame times. Sessions (``ses-*``)
are searched. Nothing here imports napari or Qt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from napari_mor._errors import MorError
from napari_mor.io.pet import sidecar_path_for

__all__ = ["BidsListing", "PetRun", "find_bids_subject", "runs_by_session"]

_PET_PATTERNS = ("*_pet.nii.gz", "*_pet.nii", "*.v")
_T1W_PATTERNS = ("*_T1w.nii.gz", "*_T1w.nii")


@dataclass(frozen=True)
class PetRun:
    """One PET image found in a BIDS folder.

    Parameters
    ----------
    path : Path
        The image (``*_pet.nii[.gz]`` or ECAT ``*.v``).
    sidecar : Path or None
        The JSON sidecar beside it, None when missing (ECAT files carry their
        own frame times; a NIfTI without sidecar needs a frames TSV).
    """

    path: Path
    sidecar: Path | None

    @property
    def session(self) -> str | None:
        """The BIDS session label (``"baseline"`` of ``ses-baseline/pet/``), or None.

        None for a run directly in ``sub-XX/pet/`` (no session folder).
        """
        folder = self.path.parent.parent.name
        return folder[4:] if folder.startswith("ses-") else None

    @property
    def needs_frames_tsv(self) -> bool:
        """True for a NIfTI PET without a sidecar (no frame timing)."""
        return self.sidecar is None and not self.path.name.lower().endswith(".v")


@dataclass(frozen=True)
class BidsListing:
    """PET runs, T1w images and subjects found in a folder.

    Parameters
    ----------
    folder : Path
        The folder searched.
    pet_runs : tuple of PetRun
        PET images, sorted by path.
    t1w_images : tuple of Path
        T1-weighted MR images, sorted by path.
    subjects : tuple of Path
        ``sub-*`` folders holding PET (empty when ``folder`` is one subject).
    """

    folder: Path
    pet_runs: tuple[PetRun, ...]
    t1w_images: tuple[Path, ...]
    subjects: tuple[Path, ...] = ()


def _datatype_dirs(subject: Path, datatype: str) -> list[Path]:
    """``subject/<datatype>`` and ``subject/ses-*/<datatype>`` folders."""
    dirs = [subject / datatype]
    dirs += sorted(p / datatype for p in subject.glob("ses-*") if p.is_dir())
    return [d for d in dirs if d.is_dir()]


def _glob_all(dirs: Iterable[Path], patterns: Sequence[str]) -> list[Path]:
    found = {p for d in dirs for pattern in patterns for p in d.glob(pattern)}
    return sorted(p for p in found if p.is_file())


def _subject_listing(subject: Path) -> tuple[list[PetRun], list[Path]]:
    pets = _glob_all(_datatype_dirs(subject, "pet"), _PET_PATTERNS)
    runs = []
    for pet in pets:
        sidecar = sidecar_path_for(pet)
        runs.append(PetRun(pet, sidecar if sidecar.is_file() else None))
    t1w = _glob_all(_datatype_dirs(subject, "anat"), _T1W_PATTERNS)
    return runs, t1w


def find_bids_subject(folder: str | Path) -> BidsListing:
    """List the PET runs and T1w images of a BIDS subject (or of a dataset).

    Parameters
    ----------
    folder : str or Path
        A subject folder (``sub-XX`` with ``pet/`` and ``anat/``, optionally
        inside ``ses-*``), or a dataset folder holding ``sub-*`` folders.

    Returns
    -------
    BidsListing
        For a subject: its PET runs (``pet/*_pet.nii[.gz]`` with or without a
        sidecar, ``pet/*.v``) and T1w images (``anat/*_T1w.nii[.gz]``). For a
        dataset: the subjects that hold PET, and all their runs and images.

    Raises
    ------
    MorError
        When the folder does not exist or holds no PET image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MorError(f"{folder} is not a folder; choose a BIDS subject folder.")
    runs, t1w = _subject_listing(folder)
    subjects: list[Path] = []
    if not runs:
        for subject in sorted(p for p in folder.glob("sub-*") if p.is_dir()):
            sub_runs, sub_t1w = _subject_listing(subject)
            if sub_runs:
                subjects.append(subject)
                runs += sub_runs
                t1w += sub_t1w
    if not runs:
        raise MorError(
            f"No PET found in {folder}: expected sub-*/pet/*_pet.nii.gz (or .nii, "
            "or ECAT .v) in a BIDS subject folder, or sub-* folders holding them. "
            "Choose the subject folder or open the PET file directly."
        )
    return BidsListing(folder, tuple(runs), tuple(t1w), tuple(subjects))


def runs_by_session(runs: Iterable[PetRun]) -> dict[str | None, tuple[PetRun, ...]]:
    """PET runs grouped by BIDS session label (None: no ``ses-*`` folder).

    Parameters
    ----------
    runs : iterable of PetRun
        E.g. ``find_bids_subject(subject).pet_runs``.

    Returns
    -------
    dict of str or None to tuple of PetRun
        Sessions in sorted order (None first), runs sorted by path.
    """
    grouped: dict[str | None, list[PetRun]] = {}
    for run in runs:
        grouped.setdefault(run.session, []).append(run)
    keys = sorted(grouped, key=lambda k: (k is not None, k or ""))
    return {k: tuple(sorted(grouped[k], key=lambda r: r.path)) for k in keys}
