"""Cohort batch: BIDS-like folder -> per-subject BP_ND and delta-BP maps, on dask.

Per subject: load the dynamic PET (BIDS-PET sidecar timing), optionally bring
it to MNI space (pluggable; ``"identity"`` for data already in MNI space such
as the phantom), take the reference TAC from an MNI-space label image, fit
BP_ND maps in each condition window (:func:`napari_mor.maps.bp_maps`), compute
delta-BP (:func:`napari_mor.maps.delta_bp`), optionally smooth, and write::

    OUT/sub-XX/sub-XX_desc-baseline_bpnd.nii.gz   (+ .json provenance)
    OUT/sub-XX/sub-XX_desc-challenge_bpnd.nii.gz
    OUT/sub-XX/sub-XX_desc-delta_bpnd.nii.gz
    OUT/sub-XX/manifest.json                      input hashes + settings + map hashes

A subject whose input hashes and settings match its manifest, and whose maps
still hash to what the manifest records, is skipped (its outputs are reused),
so a rerun recomputes only what changed. The manifest is removed before a
subject is recomputed and written (sealed, with the maps' SHA-256) only after
its maps, so an interrupted run never leaves maps that look valid. A failing
subject is reported and skipped, the others continue; its earlier maps are
removed and its manifest says ``"status": "failed"``. :func:`load_cohort_maps`
(``group stats``, the group dock) uses only subjects whose maps match a sealed
manifest and lists the others with the reason. No output may replace an input
of the cohort (:func:`~napari_mor.io.outputs.check_outputs`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError
from napari_mor.defaults import DEFAULT_MODEL, DEFAULT_WINDOWS_MIN

__all__ = [
    "REGISTRATIONS",
    "BatchSettings",
    "CohortListing",
    "CohortMaps",
    "SubjectInputs",
    "cohort_atlas_inputs",
    "discover_cohort",
    "load_cohort_maps",
    "process_subject",
    "run_batch",
    "usable_subjects",
]

#: 2: the manifest also records the SHA-256 of every map it vouches for
#: (``outputs``), so stale or half-written maps are never used.
MANIFEST_VERSION = 2
CONDITIONS = ("baseline", "challenge")


def _identity_registration(pet, subject):
    """Data already in MNI space (e.g. the phantom): nothing to do."""
    return pet


def _native_to_mni_registration(pet, subject, with_transform: bool = False):
    """Native-space subject: motion correction, PET->T1, T1->MNI, PET onto MNI.

    Frames are realigned (:func:`napari_mor.registration.correct_motion`), the
    mean PET is coregistered rigidly to the subject's T1w, the T1w is normalised
    (affine) to nilearn's MNI152 template, and every frame is resampled once,
    through the composed MNI -> PET transform, onto the 2 mm template grid.
    """
    from dataclasses import replace

    from napari_mor.io import load_volume
    from napari_mor.registration import (
        compose,
        coregister_pet_to_mr,
        correct_motion,
        normalize_to_mni,
        resample_map,
    )
    from napari_mor.rois import load_mni_template

    if subject.t1w is None:
        raise MorError(
            f"{subject.subject}: MNI registration needs a T1w image "
            "(sub-*/anat/*_T1w.nii.gz); add it or use --registration identity."
        )
    mr = load_volume(subject.t1w)
    corrected = correct_motion(pet).corrected
    mr_to_pet = coregister_pet_to_mr(corrected, mr).transform
    mni_to_mr = normalize_to_mni(mr).transform
    template = load_mni_template(2)
    mni_to_pet = compose(mni_to_mr, mr_to_pet)
    data = resample_map(
        corrected.data,
        corrected.affine,
        mni_to_pet,
        template.data.shape,
        template.affine,
    )
    registered = replace(
        corrected,
        data=data.astype(np.float32, copy=False),
        affine=template.affine,
        nonfinite_mask=None,
    )
    if not with_transform:
        return registered
    from napari_mor.registration.coreg import mean_pet_image

    return registered, _generic(mni_to_pet), mean_pet_image(corrected)


def _check_scan_pair(base, chal, subject) -> None:
    """Two scans of one subject must have the same frames (count and timing)."""
    base_ses, chal_ses = subject.sessions or ("baseline", "challenge")
    where = (
        f"{subject.subject}: the baseline scan (ses-{base_ses}, {subject.pet.name}) "
        f"has {base.n_frames} frames, the challenge scan (ses-{chal_ses}, "
        f"{subject.challenge_pet.name}) {chal.n_frames}"
    )
    if base.n_frames != chal.n_frames:
        raise MorError(
            f"{where}; both scans need the same frame schedule. Reframe one of "
            "them or leave the subject out."
        )
    if not np.allclose(base.timing.frame_start_s, chal.timing.frame_start_s) or not (
        np.allclose(base.timing.frame_duration_s, chal.timing.frame_duration_s)
    ):
        raise MorError(
            f"{where} with different frame times; both scans need the same frame "
            "schedule. Reframe one of them or leave the subject out."
        )


def _identity_pair(base, chal, subject):
    """Two scans already on one (MNI) grid: nothing to do, else a clear error."""
    from napari_mor.io.grid import same_grid

    if not same_grid(base.spatial_shape, base.affine, chal.spatial_shape, chal.affine):
        raise MorError(
            f"{subject.subject}: the challenge scan {subject.challenge_pet.name} "
            f"(grid {chal.spatial_shape}) is not on the baseline scan's grid "
            f"{base.spatial_shape} (or has another affine); use --registration mni "
            "(aligns the challenge scan to the baseline scan and both to MNI) or "
            "resample the scans onto one grid first."
        )
    return base, chal


def _native_to_mni_pair(base, chal, subject):
    """Challenge scan -> baseline scan (rigid, MI), baseline -> T1w -> MNI.

    Both motion-corrected scans are resampled once onto the 2 mm template grid;
    the challenge scan through MNI -> baseline PET -> challenge PET.
    """
    from dataclasses import replace

    from napari_mor.registration import (
        compose,
        coregister_pet_to_mr,
        correct_motion,
        resample_map,
    )

    base_mni, mni_to_base, base_mean = _native_to_mni_registration(base, subject, True)
    corrected = correct_motion(chal).corrected
    base_to_chal = coregister_pet_to_mr(corrected, base_mean).transform
    template_shape = base_mni.spatial_shape
    data = resample_map(
        corrected.data,
        corrected.affine,
        compose(mni_to_base, _generic(base_to_chal)),
        template_shape,
        base_mni.affine,
    )
    chal_mni = replace(
        corrected,
        data=data.astype(np.float32, copy=False),
        affine=base_mni.affine,
        nonfinite_mask=None,
    )
    return base_mni, chal_mni


def _generic(transform):
    """The same matrix with generic space names (chains with any transform)."""
    from dataclasses import replace

    return replace(transform, fixed_space="fixed", moving_space="moving")


#: Two-scan registration by name: ``f(baseline, challenge, subject) ->
#: (baseline, challenge)`` on one (MNI) grid.
PAIR_REGISTRATIONS: dict[str, Callable] = {
    "identity": _identity_pair,
    "mni": _native_to_mni_pair,
}


#: Registration steps by name: ``f(pet: DynamicPET, subject: SubjectInputs) ->
#: DynamicPET`` on the MNI grid. ``identity`` for data already in MNI space (the
#: phantom), ``mni`` for native-space subjects with a T1w.
REGISTRATIONS: dict[str, Callable] = {
    "identity": _identity_registration,
    "mni": _native_to_mni_registration,
}


@dataclass(frozen=True)
class BatchSettings:
    """Per-subject pipeline settings (all recorded in each manifest).

    The fit itself is a :class:`~napari_mor.workflows.fit.FitRequest` built from
    these settings (:meth:`fit_request`), so a subject of the batch gets exactly
    what ``napari-mor fit`` gives for the same options.

    Attributes
    ----------
    model : str
        Map-capable model of :mod:`napari_mor.kinetics` (default: the CLI's).
    windows_min : dict of str to (float, float)
        ``baseline`` and ``challenge`` windows, minutes from injection.
    ref_region : str, int or None
        Reference region name or label (None: the region named like "occipital").
    k2p_region : str, int or None
        High-binding region whose MRTM fit gives k2' (None: the automatic k2' of
        :func:`napari_mor.workflows.fit.shared_k2p`), unless ``model_options``
        holds ``k2p_per_min``.
    fwhm_mm : float
        Gaussian smoothing of the maps, FWHM mm (0: none).
    registration : str
        Key of :data:`REGISTRATIONS`.
    model_options : dict
        ``t_star_min``, ``k2p_per_min``, ``weights``.
    pvc : {"none", "rbv", "iy"}
        Partial-volume correction of the images before the maps (docs/pvc.md).
    psf_fwhm_mm : float, optional
        Scanner PSF FWHM, mm (with ``pvc``).
    """

    model: str = DEFAULT_MODEL
    windows_min: dict = field(default_factory=lambda: dict(DEFAULT_WINDOWS_MIN))
    ref_region: str | int | None = None
    k2p_region: str | int | None = None
    fwhm_mm: float = 0.0
    registration: str = "identity"
    model_options: dict = field(default_factory=dict)
    pvc: str = "none"
    psf_fwhm_mm: float | None = None

    def fit_request(self, two_scans: bool = False):
        """The fit request of one subject.

        Windows baseline, challenge of one scan; with ``two_scans`` each of the
        two scans is fitted whole (the windows do not apply).
        """
        from napari_mor.workflows.fit import FitRequest

        unknown = set(self.model_options) - {"t_star_min", "k2p_per_min", "weights"}
        if unknown:
            raise MorError(
                f"Unknown model options {sorted(unknown)}; use t_star_min, "
                "k2p_per_min or weights."
            )
        return FitRequest(
            model=self.model,
            reference=self.ref_region,
            windows_min=()
            if two_scans
            else tuple(tuple(self.windows_min[c]) for c in CONDITIONS),
            two_scans=two_scans,
            k2p_region=self.k2p_region,
            pvc=self.pvc,
            psf_fwhm_mm=self.psf_fwhm_mm,
            **self.model_options,
        )

    def as_dict(self) -> dict:
        out = asdict(self)
        out["windows_min"] = {k: list(v) for k, v in self.windows_min.items()}
        return out

    def check(self) -> None:
        missing = [c for c in CONDITIONS if c not in self.windows_min]
        if missing:
            raise MorError(
                f"Windows {missing} are missing; give both 'baseline' and "
                "'challenge' windows in minutes, e.g. baseline 10 45, challenge 50 90."
            )
        if self.registration not in REGISTRATIONS:
            raise MorError(
                f"Unknown registration {self.registration!r}; available: "
                f"{sorted(REGISTRATIONS)}."
            )
        if not self.fwhm_mm >= 0:
            raise MorError(f"fwhm_mm must be >= 0; got {self.fwhm_mm!r}.")


#: Words in a session label that mark the baseline / the challenge scan
#: (automatic pairing; a label matching both or neither is ambiguous).
BASELINE_SESSION_WORDS = (
    "baseline",
    "base",
    "bl",
    "pre",
    "placebo",
    "rest",
    "control",
    "ctrl",
    "sham",
    "neutral",
)
CHALLENGE_SESSION_WORDS = (
    "challenge",
    "chal",
    "post",
    "rejection",
    "acceptance",
    "task",
    "drug",
    "pain",
    "stim",
    "stress",
    "active",
    "treatment",
    "amphetamine",
)

#: Designs of a subject: one scan with condition windows, or two scans.
DESIGN_WINDOWS = "windows"
DESIGN_TWO_SCANS = "two-scan"


@dataclass(frozen=True)
class SubjectInputs:
    """What was found for one subject.

    ``design`` is ``"windows"`` (one scan, baseline and challenge windows) or
    ``"two-scan"`` (``pet`` is the baseline scan, ``challenge_pet`` the challenge
    scan, from the sessions named in ``sessions``).
    """

    subject: str
    pet: Path | None
    sidecar: Path | None
    t1w: Path | None
    problems: tuple[str, ...] = ()
    design: str = DESIGN_WINDOWS
    challenge_pet: Path | None = None
    challenge_sidecar: Path | None = None
    sessions: tuple[str, str] | None = None

    @property
    def usable(self) -> bool:
        return self.pet is not None and not self.problems

    @property
    def two_scans(self) -> bool:
        return self.design == DESIGN_TWO_SCANS

    def describe_design(self) -> str:
        """``two scans: baseline ses-A (file), challenge ses-B (file)`` or one scan."""
        if self.two_scans:
            base, chal = self.sessions or ("?", "?")
            return (
                f"two scans: baseline ses-{base} ({self.pet.name}), challenge "
                f"ses-{chal} ({self.challenge_pet.name})"
            )
        return f"one scan, condition windows: PET {self.pet.name}"


@dataclass
class CohortListing:
    """Subjects of a BIDS-like folder and the participants table."""

    root: Path
    subjects: list[SubjectInputs]
    participants: dict
    notes: list[str] = field(default_factory=list)

    @property
    def design(self) -> str:
        """``"two-scan"`` when any subject has two sessions, else ``"windows"``."""
        two = any(s.two_scans for s in self.subjects)
        return DESIGN_TWO_SCANS if two else DESIGN_WINDOWS

    def report(self) -> str:
        """One line per subject: the design detected, or why it is skipped."""
        lines = [f"cohort {self.root}: {len(self.subjects)} subjects"]
        for s in self.subjects:
            if s.usable:
                extra = "" if s.t1w else " (no T1w)"
                lines.append(f"  {s.subject}: {s.describe_design()}{extra}")
            else:
                lines.append(f"  {s.subject}: SKIPPED - {'; '.join(s.problems)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _session_label(name: str | None) -> str | None:
    """``"ses-A"`` or ``"A"`` -> ``"A"``."""
    if name is None:
        return None
    name = str(name).strip()
    return name[4:] if name.startswith("ses-") else name


def _session_kind(label: str) -> str | None:
    """``"baseline"``, ``"challenge"`` or None (unclear) from a session label."""
    import re

    low = label.lower()
    tokens = set(re.split(r"[^a-z]+", low)) - {""}

    def matches(words):
        return any(w in tokens or low.startswith(w) for w in words)

    base, chal = matches(BASELINE_SESSION_WORDS), matches(CHALLENGE_SESSION_WORDS)
    if base == chal:
        return None
    return "baseline" if base else "challenge"


def _how_to_choose(sessions) -> str:
    names = [s for s in sessions if s is not None] or ["BASE", "CHAL"]
    if len(names) < 2:
        names = [*names, "OTHER"]
    return (
        f"name the sessions with --baseline-session {names[0]} --challenge-session "
        f"{names[1]} (or name them ses-baseline / ses-challenge)"
    )


def _found(by_session) -> str:
    parts = []
    for ses, runs in by_session.items():
        where = "pet/" if ses is None else f"ses-{ses}/pet/"
        parts.append(f"{where} {', '.join(r.path.name for r in runs)}")
    return "; ".join(parts)


class _Unclear(Exception):
    """A subject whose scans cannot be paired (message: what was found, what to do)."""

    def __init__(self, design: str, message: str):
        super().__init__(message)
        self.design = design


def _pick_scans(
    by_session: dict,
    two_session_cohort: bool,
    baseline_session: str | None,
    challenge_session: str | None,
) -> tuple[str, tuple]:
    """The design of one subject and its (baseline[, challenge]) runs.

    Raises
    ------
    _Unclear
        With the subject's problem.
    """
    found = _found(by_session)
    two, one = DESIGN_TWO_SCANS, DESIGN_WINDOWS
    sessions = [k for k in by_session if k is not None]
    if baseline_session is not None:
        wanted = (baseline_session, challenge_session)
        missing = ", ".join(f"ses-{s}" for s in wanted if s not in by_session)
        if missing:
            raise _Unclear(
                two,
                f"no session {missing} (found: {found}); add it or leave the "
                "subject out",
            )
        chosen = wanted
    elif None in by_session and sessions:
        raise _Unclear(
            one,
            f"PET both outside and inside session folders (found: {found}); "
            "put each scan in its own ses-* folder",
        )
    elif len(sessions) <= 1:
        runs = by_session[sessions[0] if sessions else None]
        if len(runs) > 1:
            raise _Unclear(
                one,
                f"{len(runs)} PET runs (found: {found}); keep one scan per "
                "subject, or put the baseline and challenge scans in two ses-* folders",
            )
        if two_session_cohort:
            what = "one session only" if sessions else "one scan without sessions"
            raise _Unclear(
                two,
                f"{what} (found: {found}) in a cohort of two-session "
                "subjects; add the missing session or leave the subject out",
            )
        return one, (runs[0],)
    elif len(sessions) > 2:
        raise _Unclear(
            two,
            f"{len(sessions)} sessions (found: {found}); a two-scan study "
            f"pairs one baseline and one challenge session: {_how_to_choose(sessions)}",
        )
    else:
        kinds = {s: _session_kind(s) for s in sessions}
        if sorted(map(str, kinds.values())) != ["baseline", "challenge"]:
            raise _Unclear(
                two,
                f"cannot tell which session is the baseline (found: {found}); "
                f"{_how_to_choose(sessions)}",
            )
        chosen = tuple(
            next(s for s, k in kinds.items() if k == want)
            for want in ("baseline", "challenge")
        )
    for ses in chosen:
        if len(by_session[ses]) != 1:
            raise _Unclear(
                two,
                f"{len(by_session[ses])} PET runs in ses-{ses} (found: {found}); "
                "keep one scan per session",
            )
    return two, tuple(by_session[ses][0] for ses in chosen)


def discover_cohort(
    root: str | Path,
    participants: str | Path | None = None,
    *,
    baseline_session: str | None = None,
    challenge_session: str | None = None,
) -> CohortListing:
    """Find each subject's PET scans (+ sidecars) and T1w, and its design.

    A subject with one PET scan (``sub-XX/pet/`` or one ``ses-*``) is a one-scan
    study fitted in condition windows. Two sessions
    (``sub-XX/ses-A/pet/``, ``sub-XX/ses-B/pet/``) are a two-scan study: the
    baseline session is the one named by ``baseline_session``, or, without
    names, the one whose label says so (``baseline``, ``pre``, ``placebo``,
    ``rest``, ... vs ``challenge``, ``post``, ``task``, ``drug``, ...). Anything
    else (several runs in a session, a subject missing a session in a
    two-session cohort, three sessions, labels that do not tell) is a problem
    of that subject that lists what was found and how to choose; nothing is
    picked silently.

    Parameters
    ----------
    root : str or Path
        BIDS-like dataset folder.
    participants : str or Path, optional
        Participants table (default ``root/participants.tsv``; optional).
    baseline_session, challenge_session : str, optional
        Session labels (``A`` or ``ses-A``) of the baseline and challenge scans;
        give both or neither.

    Returns
    -------
    CohortListing
        Subjects listed in participants.tsv but without a folder, and folders
        without a row, are reported in ``notes`` / ``problems``.
    """
    from napari_mor.io.bids import find_bids_subject, runs_by_session

    baseline_session = _session_label(baseline_session)
    challenge_session = _session_label(challenge_session)
    if (baseline_session is None) != (challenge_session is None):
        raise MorError(
            "Give both --baseline-session and --challenge-session (or neither, to "
            "pair the sessions by their names)."
        )
    if baseline_session is not None and baseline_session == challenge_session:
        raise MorError(
            f"The baseline and challenge sessions are both ses-{baseline_session}; "
            "name two different sessions."
        )
    root = Path(root)
    if not root.is_dir():
        raise MorError(f"{root} is not a folder; give the cohort's BIDS folder.")
    table_path = Path(participants) if participants else root / "participants.tsv"
    table = _read_participants_of(root, participants)
    notes = [] if table else [f"no participants table at {table_path}"]
    folders = sorted(p for p in root.glob("sub-*") if p.is_dir())
    listed = list(table.get("participant_id", []))
    names = sorted({p.name for p in folders} | set(listed))
    if not names:
        raise MorError(
            f"No sub-* folders in {root}; expected sub-XX/pet/sub-XX_pet.nii.gz."
        )
    found: dict[str, tuple] = {}
    for name in names:
        folder = root / name
        if folder.is_dir():
            try:
                listing = find_bids_subject(folder)
            except MorError:
                continue
            found[name] = (runs_by_session(listing.pet_runs), listing.t1w_images)
    two_session_cohort = baseline_session is not None or any(
        len([k for k in by if k is not None]) >= 2 for by, _ in found.values()
    )
    subjects = []
    for name in names:
        folder = root / name
        problems = []
        pet = sidecar = t1w = None
        design, chal, sessions = DESIGN_WINDOWS, None, None
        if not folder.is_dir():
            problems.append("listed in participants.tsv but no folder")
        elif name not in found:
            problems.append("no PET image in pet/")
        else:
            by_session, t1w_images = found[name]
            runs = ()
            try:
                design, runs = _pick_scans(
                    by_session, two_session_cohort, baseline_session, challenge_session
                )
            except _Unclear as unclear:
                design = unclear.design
                problems.append(str(unclear))
            t1w = t1w_images[0] if t1w_images else None
            if runs:
                pet, sidecar = runs[0].path, runs[0].sidecar
                if len(runs) == 2:
                    chal = runs[1]
                    sessions = (runs[0].session, runs[1].session)
                for run in runs:
                    if run.needs_frames_tsv:
                        problems.append(
                            f"{run.path.name} has no JSON sidecar (frame timing)"
                        )
        if listed and name not in listed:
            problems.append("not in participants.tsv")
        subjects.append(
            SubjectInputs(
                name,
                pet,
                sidecar,
                t1w,
                tuple(problems),
                design,
                None if chal is None else chal.path,
                None if chal is None else chal.sidecar,
                sessions,
            )
        )
    return CohortListing(root, subjects, table, notes)


def _sha(path: Path | None) -> str | None:
    from napari_mor.io import file_sha256

    return None if path is None else file_sha256(path)


def _output_paths(out_dir: Path, subject: str) -> dict[str, Path]:
    folder = out_dir / subject
    return {
        c: folder / f"{subject}_desc-{c}_bpnd.nii.gz" for c in (*CONDITIONS, "delta")
    }


def _manifest_inputs(subject: SubjectInputs, labels: Path, mask: Path | None) -> dict:
    from napari_mor.io.volume import find_lut_beside

    return {
        "pet": _sha(subject.pet),
        "sidecar": _sha(subject.sidecar),
        "design": subject.design,
        "challenge_pet": _sha(subject.challenge_pet),
        "challenge_sidecar": _sha(subject.challenge_sidecar),
        "labels": _sha(labels),
        "lut": _sha(find_lut_beside(labels)),
        "mask": _sha(mask),
    }


def _read_manifest(path: Path) -> dict | None:
    """A subject's manifest, or None when missing, unreadable or not an object."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _output_hashes(outputs: Mapping[str, Path]) -> dict:
    """``{condition: {"file": name, "sha256": hex}}`` of maps that exist."""
    from napari_mor.io import file_sha256

    return {
        c: {"file": p.name, "sha256": file_sha256(p)}
        for c, p in outputs.items()
        if p.is_file()
    }


def _outputs_problem(manifest: dict, outputs: Mapping[str, Path]) -> str | None:
    """Why a subject's maps cannot be used with its manifest (None: they can).

    The manifest must be sealed (``outputs`` with a SHA-256 per map, written
    after the maps), list the delta map, and every map it lists must exist and
    hash to the recorded value.
    """
    from napari_mor.io import file_sha256

    if manifest.get("status") == "failed":
        return f"failed in the last 'group run' ({manifest.get('message', '')})"
    if manifest.get("version") != MANIFEST_VERSION:
        return (
            f"its manifest is version {manifest.get('version')!r}, not "
            f"{MANIFEST_VERSION}; run 'napari-mor group run' again"
        )
    recorded = manifest.get("outputs")
    if not isinstance(recorded, dict) or "delta" not in recorded:
        return (
            "its manifest records no delta-BP map (the run was interrupted); run "
            "'napari-mor group run' again"
        )
    for condition, entry in recorded.items():
        path = outputs.get(condition)
        if path is None or not isinstance(entry, dict):
            return f"its manifest lists an unknown map {condition!r}"
        if not path.is_file():
            return f"{path.name} is missing"
        try:
            actual = file_sha256(path)
        except OSError as err:
            return f"{path.name} cannot be read ({err.strerror or err})"
        if entry.get("sha256") != actual:
            return (
                f"{path.name} does not match its manifest (changed, damaged or "
                "half-written); run 'napari-mor group run' again"
            )
    return None


def _invalidate_subject(
    outputs: Mapping[str, Path], manifest_path: Path, message: str
) -> None:
    """After a failure: the subject's earlier maps must never be used again.

    Its maps (with their sidecars) are removed when napari-mor wrote them (the
    sidecar says so and its ``ImageSHA256`` matches), and the manifest is
    replaced by a ``"status": "failed"`` record that stats reads as "left out".
    Nothing is created for a subject without an output folder. Errors here are
    ignored: the subject is reported as failed either way.
    """
    from napari_mor.io import write_json
    from napari_mor.io._nifti import IMAGE_SHA256_KEY, file_sha256, sidecar_path_for

    if not manifest_path.parent.is_dir():
        return
    try:
        write_json(
            manifest_path,
            {"version": MANIFEST_VERSION, "status": "failed", "message": message},
        )
    except (OSError, MorError):
        with contextlib.suppress(OSError):
            manifest_path.unlink(missing_ok=True)
    for path in outputs.values():
        sidecar = sidecar_path_for(path)
        with contextlib.suppress(OSError, ValueError):
            content = json.loads(sidecar.read_text(encoding="utf-8"))
            if (
                isinstance(content, dict)
                and content.get("Software") == "napari-mor"
                and content.get(IMAGE_SHA256_KEY) == file_sha256(path)
            ):
                path.unlink()
                sidecar.unlink()


def _load_on_grid(path: Path, shape, affine, what: str):
    """Labels (LUT found beside them) on a grid, resampled when it differs."""
    from napari_mor.io import load_labels
    from napari_mor.rois import labels_on_grid

    return labels_on_grid(
        load_labels(path), shape, affine, on_empty="drop", target_name=f"PET ({what})"
    )


def process_subject(
    subject: SubjectInputs,
    out_dir: str | Path,
    settings: BatchSettings,
    labels_path: str | Path,
    mask_path: str | Path | None = None,
    force: bool = False,
) -> dict:
    """Run the per-subject pipeline (or reuse cached outputs).

    Returns
    -------
    dict
        ``subject``, ``status`` (``"computed"``, ``"cached"``, ``"failed"``),
        ``message``, ``outputs`` (paths by condition).
    """
    from napari_mor.io import load_pet, write_json
    from napari_mor.maps import delta_bp, smooth_map, write_map
    from napari_mor.workflows.fit import prepare_fit_data
    from napari_mor.workflows.fit_maps import fit_maps_now, map_provenance_of, plan_maps

    out_dir = Path(out_dir)
    labels_path = Path(labels_path)
    mask_path = None if mask_path is None else Path(mask_path)
    outputs = _output_paths(out_dir, subject.subject)
    manifest_path = out_dir / subject.subject / "manifest.json"
    status = {
        "subject": subject.subject,
        "outputs": {k: str(v) for k, v in outputs.items()},
    }
    try:
        if not subject.usable:
            raise MorError("; ".join(subject.problems) or "no PET")
        inputs = _manifest_inputs(subject, labels_path, mask_path)
        wanted = {
            "version": MANIFEST_VERSION,
            "inputs": inputs,
            "settings": settings.as_dict(),
        }
        if not force:
            stored = _read_manifest(manifest_path)
            if (
                stored is not None
                and {k: stored.get(k) for k in wanted} == wanted
                and _outputs_problem(stored, outputs) is None
            ):
                return {**status, "status": "cached", "message": "inputs unchanged"}
        # the old manifest no longer vouches for anything: a run stopped while the
        # maps are being replaced must not leave them looking valid
        manifest_path.unlink(missing_ok=True)
        request = settings.fit_request(two_scans=subject.two_scans)
        challenge = None
        if subject.two_scans:
            base_pet, chal_pet = load_pet(subject.pet), load_pet(subject.challenge_pet)
            _check_scan_pair(base_pet, chal_pet, subject)
            pet, challenge = PAIR_REGISTRATIONS[settings.registration](
                base_pet, chal_pet, subject
            )
        else:
            pet = REGISTRATIONS[settings.registration](load_pet(subject.pet), subject)
        shape = pet.spatial_shape
        labels = _load_on_grid(labels_path, shape, pet.affine, "labels")
        if mask_path is not None:
            brain = _load_on_grid(mask_path, shape, pet.affine, "mask").data > 0
        else:
            brain = pet.data.mean(axis=0) > 0
        files = {"pet": subject.pet, "sidecar": subject.sidecar}
        if subject.two_scans:
            files.update(
                challenge_pet=subject.challenge_pet,
                challenge_sidecar=subject.challenge_sidecar,
            )
        data = prepare_fit_data(
            request,
            pet,
            labels=labels,
            brain_mask=brain,
            challenge=challenge,
            input_files=files,
        )
        plan = plan_maps(request, data)
        fits = fit_maps_now(plan)
        bp = {c: fits[c].maps["bp_nd"] for c in CONDITIONS}
        bp["delta"] = delta_bp(bp["baseline"], bp["challenge"])
        for c, values in bp.items():
            prov = map_provenance_of(
                plan,
                c,
                fits.get(c),
                Quantity="delta_bp_nd" if c == "delta" else "bp_nd",
                SmoothingFWHMmm=settings.fwhm_mm,
                Registration=settings.registration,
                Design=subject.describe_design(),
            )
            write_map(
                outputs[c],
                smooth_map(values, pet.affine, settings.fwhm_mm),
                pet.affine,
                prov,
            )
        write_json(manifest_path, wanted)
        # sealed: the manifest vouches for exactly these maps (checked by stats)
        write_json(manifest_path, {**wanted, "outputs": _output_hashes(outputs)})
        return {**status, "status": "computed", "message": ""}
    except Exception as err:  # one bad subject is reported, never stops the cohort
        message = f"{type(err).__name__}: {err}"
        _invalidate_subject(outputs, manifest_path, message)
        return {**status, "status": "failed", "message": message}


def cohort_atlas_inputs(
    root: str | Path, labels: str | Path | None = None, mask: str | Path | None = None
) -> tuple[Path, Path | None]:
    """The MNI label image and brain mask of a cohort (``root/atlas`` defaults).

    Returns
    -------
    labels, mask : Path, Path or None
        ``mask`` is None when neither given nor present.

    Raises
    ------
    MorError
        When no label image is found.
    """
    atlas = Path(root) / "atlas"
    labels = Path(labels) if labels else atlas / "space-MNI_labels.nii.gz"
    mask = Path(mask) if mask else atlas / "space-MNI_brainmask.nii.gz"
    if not labels.is_file():
        raise MorError(
            f"No label image {labels}; give one in MNI space with the reference "
            "region (--labels LABELS.nii.gz, LUT beside it)."
        )
    return labels, (mask if mask.is_file() else None)


def run_batch(
    root: str | Path,
    out_dir: str | Path,
    settings: BatchSettings | None = None,
    *,
    labels: str | Path,
    mask: str | Path | None = None,
    participants: str | Path | None = None,
    scheduler: str = "threads",
    n_workers: int | None = None,
    force: bool = False,
    on_progress: Callable[[int, int, dict], None] | None = None,
    baseline_session: str | None = None,
    challenge_session: str | None = None,
) -> list[dict]:
    """Process every subject of a cohort with dask.

    Parameters
    ----------
    root : str or Path
        BIDS-like cohort folder.
    out_dir : str or Path
        Output folder (per-subject maps + manifests; participants.tsv copied).
    settings : BatchSettings, optional
    labels : str or Path
        Label image in MNI space with the reference region (LUT beside it).
    mask : str or Path, optional
        Brain mask in MNI space (default: voxels with signal).
    participants : str or Path, optional
        Default ``root/participants.tsv``.
    scheduler : str
        ``"threads"`` (default), ``"processes"``, ``"sync"`` or the address of a
        dask.distributed scheduler (``"tcp://host:8786"``).
    n_workers : int, optional
        Local workers (default: dask's).
    force : bool
        Recompute even when cached.
    on_progress : callable(done, total, status), optional
        Called after each subject with its status dict.
    baseline_session, challenge_session : str, optional
        Session labels of a two-scan cohort (default: paired by their names;
        see :func:`discover_cohort`).

    Returns
    -------
    list of dict
        One status per subject (see :func:`process_subject`).
    """
    import dask

    settings = settings or BatchSettings()
    # every setting is checked before anything is written (a bad window, t* or
    # k2' would otherwise fail each subject in turn)
    settings.check()
    settings.fit_request()
    if "://" not in scheduler and scheduler not in (
        "threads",
        "processes",
        "sync",
        "synchronous",
    ):
        raise MorError(
            f"Unknown scheduler {scheduler!r}; use threads, processes, sync or a "
            "dask.distributed address tcp://host:port."
        )
    if n_workers is not None and n_workers < 1:
        raise MorError(f"n_workers must be >= 1; got {n_workers}.")
    listing = discover_cohort(
        root,
        participants,
        baseline_session=baseline_session,
        challenge_session=challenge_session,
    )
    out_dir = Path(out_dir)
    if not Path(labels).is_file():
        raise MorError(
            f"Label image {labels} does not exist; give --labels (MNI space)."
        )
    _check_batch_outputs(root, out_dir, listing, labels, mask, participants)
    out_dir.mkdir(parents=True, exist_ok=True)
    if listing.participants:
        from napari_mor.sample.cohort import write_participants

        write_participants(out_dir / "participants.tsv", listing.participants)
    copy_atlas(root, out_dir)
    tasks = [
        dask.delayed(process_subject, pure=False)(
            s,
            out_dir,
            settings,
            labels,
            mask,
            force,
            dask_key_name=f"subject-{s.subject}",
        )
        for s in listing.subjects
    ]
    total = len(tasks)
    results: list[dict] = []

    def report(status: dict) -> None:
        results.append(status)
        if on_progress is not None:
            on_progress(len(results), total, status)

    if "://" in scheduler:
        from dask.distributed import Client, as_completed

        with Client(scheduler) as client:
            futures = client.compute(tasks)
            for future in as_completed(futures):
                report(future.result())
    else:
        from dask.callbacks import Callback

        class _Progress(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                if isinstance(result, dict) and "status" in result:
                    report(result)

        options = {"num_workers": n_workers} if n_workers else {}
        with _Progress():
            dask.compute(*tasks, scheduler=scheduler, **options)
    order = {s.subject: i for i, s in enumerate(listing.subjects)}
    results.sort(key=lambda r: order[r["subject"]])
    from napari_mor.io import write_json

    write_json(
        out_dir / "batch_report.json",
        {
            "settings": settings.as_dict(),
            "subjects": results,
            "listing": listing.report(),
        },
    )
    return results


def _check_batch_outputs(
    root: str | Path,
    out_dir: Path,
    listing: CohortListing,
    labels: str | Path,
    mask: str | Path | None,
    participants: str | Path | None,
) -> None:
    """Refuse a maps folder whose files would replace cohort inputs.

    The maps folder may live inside the cohort (``derivatives/``), but no file
    the batch writes (participants table, atlas copy, report, per-subject maps,
    their sidecars and manifests) may be an input: a subject's PET or sidecar,
    the labels (and LUT), the mask, the participants table or the atlas.
    """
    from napari_mor.io._nifti import is_image_path, sidecar_path_for
    from napari_mor.io.outputs import check_outputs

    root = Path(root)
    if out_dir.exists() and not out_dir.is_dir():
        raise MorError(
            f"The maps folder {out_dir} is a file; give a folder (--out MAPS)."
        )
    if out_dir.exists() and root.exists() and out_dir.samefile(root):
        raise MorError(
            f"The maps folder {out_dir} is the cohort folder {root}; write the "
            f"maps elsewhere, e.g. --out {root / 'derivatives' / 'napari-mor'}."
        )
    atlas = root / "atlas"
    atlas_files = (
        sorted(p for p in atlas.rglob("*") if p.is_file()) if atlas.is_dir() else []
    )
    table = Path(participants) if participants else root / "participants.tsv"
    inputs = {
        "--labels": labels,
        "--mask": mask,
        "participants table": table if table.is_file() else None,
    }
    for s in listing.subjects:
        inputs.update({f"{s.subject} PET": s.pet, f"{s.subject} sidecar": s.sidecar})
        inputs[f"{s.subject} challenge PET"] = s.challenge_pet
        inputs[f"{s.subject} challenge sidecar"] = s.challenge_sidecar
        inputs[f"{s.subject} T1w"] = s.t1w
    for path in atlas_files:
        inputs[f"cohort atlas {path.name}"] = path
    outputs = {
        "--out (participants table)": out_dir / "participants.tsv",
        "--out (batch report)": out_dir / "batch_report.json",
    }
    sidecars = {sidecar_path_for(p) for p in atlas_files if is_image_path(p)}
    for path in atlas_files:
        if path not in sidecars:  # an image output brings its sidecar along
            outputs[f"--out (atlas copy {path.name})"] = (
                out_dir / "atlas" / path.relative_to(atlas)
            )
    for s in listing.subjects:
        for c, path in _output_paths(out_dir, s.subject).items():
            outputs[f"--out ({s.subject} {c} map)"] = path
        outputs[f"--out ({s.subject} manifest)"] = out_dir / s.subject / "manifest.json"
    check_outputs(inputs, outputs)


@dataclass
class CohortMaps:
    """Per-subject maps of a maps folder, stacked on one grid.

    ``missing`` lists the subjects left out and ``left_out`` says why (no
    manifest, failed in the last run, maps that do not match the manifest).
    """

    subjects: list[str]
    delta: np.ndarray
    baseline: np.ndarray | None
    challenge: np.ndarray | None
    affine: np.ndarray
    participants: dict
    missing: list[str]
    left_out: dict[str, str] = field(default_factory=dict)

    def covariate(self, name: str) -> np.ndarray:
        """Values of a participants.tsv column, in subject order."""
        if name not in self.participants:
            raise MorError(
                f"participants.tsv has no column {name!r}; columns: "
                f"{sorted(self.participants)}."
            )
        ids = list(self.participants["participant_id"])
        values = []
        for sub in self.subjects:
            if sub not in ids:
                raise MorError(f"{sub} is not in participants.tsv.")
            values.append(self.participants[name][ids.index(sub)])
        if any(v is None or isinstance(v, str) for v in values):
            raise MorError(f"Column {name!r} has missing or non-numeric values.")
        return np.asarray(values, dtype=np.float64)


def usable_subjects(maps_dir: str | Path) -> tuple[list[str], dict[str, str]]:
    """Subjects of a maps folder whose maps may be used, and why others may not.

    A subject is usable when its ``manifest.json`` is sealed (records the
    SHA-256 of its maps, written after them), every map it lists hashes to the
    recorded value, and the last ``group run`` (``batch_report.json``, when
    present) included it and did not report it as failed.

    Returns
    -------
    usable : list of str
        Subject ids (``sub-XX``), sorted.
    left_out : dict of str to str
        Subject id -> reason, for the others.
    """
    maps_dir = Path(maps_dir)
    folders = sorted(p for p in maps_dir.glob("sub-*") if p.is_dir())
    report = _read_manifest(maps_dir / "batch_report.json")
    last_run = None
    if report is not None and isinstance(report.get("subjects"), list):
        last_run = {
            r.get("subject"): r.get("status")
            for r in report["subjects"]
            if isinstance(r, dict)
        }
    usable, left_out = [], {}
    for folder in folders:
        sub = folder.name
        manifest_path = folder / "manifest.json"
        manifest = _read_manifest(manifest_path)
        if last_run is not None and sub not in last_run:
            left_out[sub] = "not part of the last 'group run' (batch_report.json)"
        elif last_run is not None and last_run[sub] == "failed":
            left_out[sub] = "failed in the last 'group run' (batch_report.json)"
        elif manifest is None:
            left_out[sub] = (
                "no readable manifest.json (maps not written by 'napari-mor group "
                "run' or 'group simulate', or the run was interrupted)"
            )
        else:
            problem = _outputs_problem(manifest, _output_paths(maps_dir, sub))
            if problem is None:
                usable.append(sub)
            else:
                left_out[sub] = problem
    return usable, left_out


def load_cohort_maps(
    maps_dir: str | Path, participants: str | Path | None = None
) -> CohortMaps:
    """Stack the subjects' maps written by :func:`run_batch` (or ``group simulate``).

    Only subjects whose maps match their manifest are used (see
    :func:`usable_subjects`); the others are listed in ``missing`` with the
    reason in ``left_out``.

    Raises
    ------
    MorError
        No ``sub-*`` folders, fewer than 3 usable subjects, a map that cannot
        be read, maps on different grids, or an unreadable participants table.
    """
    from napari_mor.io._nifti import affine_of, load_image, read_data
    from napari_mor.io.grid import same_grid

    maps_dir = Path(maps_dir)
    if not maps_dir.is_dir():
        raise MorError(
            f"{maps_dir} is not a folder; give the maps folder written by "
            "'napari-mor group run' (or 'group simulate')."
        )
    if not any(p.is_dir() for p in maps_dir.glob("sub-*")):
        raise MorError(
            f"No sub-* folders in {maps_dir}; run 'napari-mor group run' first."
        )
    usable, left_out = usable_subjects(maps_dir)
    subjects, affine, shape = [], None, None
    stacks = {c: [] for c in (*CONDITIONS, "delta")}
    for sub in usable:
        for c, path in _output_paths(maps_dir, sub).items():
            if not path.is_file():
                continue
            image = load_image(path)
            if len(image.shape) != 3:
                raise MorError(
                    f"{path} has shape {tuple(image.shape)}; a 3D map was expected."
                )
            image_affine = affine_of(image, path)
            if affine is None:
                affine, shape = image_affine, tuple(image.shape)
            elif not same_grid(image.shape, image_affine, shape, affine):
                raise MorError(
                    f"{path.name} is on another grid than the first subject; "
                    "register all subjects to the same MNI grid."
                )
            stacks[c].append(read_data(image, path))
        subjects.append(sub)
    if len(subjects) < 3:
        why = "; ".join(f"{s}: {r}" for s, r in left_out.items())
        raise MorError(
            f"Only {len(subjects)} subjects have usable delta-BP maps in {maps_dir}; "
            "a group test needs at least 3." + (f" Left out: {why}." if why else "")
        )
    table = _read_participants_of(maps_dir, participants)
    full = {
        c: np.stack(v) if len(v) == len(subjects) else None for c, v in stacks.items()
    }
    return CohortMaps(
        subjects,
        full["delta"],
        full["baseline"],
        full["challenge"],
        affine,
        table,
        sorted(left_out),
        left_out,
    )


def _read_participants_of(folder: Path, participants=None) -> dict:
    """The participants table given, or the one in a cohort or maps folder.

    ``{}`` when none is given and ``folder`` has none; a table given but
    missing or unreadable (binary, not UTF-8) is a MorError.
    """
    from napari_mor.sample.cohort import read_participants

    table_path = Path(participants) if participants else folder / "participants.tsv"
    if not participants and not table_path.is_file():
        return {}
    try:
        return read_participants(table_path)
    except (UnicodeDecodeError, csv.Error) as err:
        raise MorError(
            f"{table_path} is not a readable participants table ({err}); write it "
            "as UTF-8 text, tab-separated, with a participant_id column."
        ) from err


def write_cohort_maps(cohort, out_dir: str | Path) -> Path:
    """Write a map-level :class:`~napari_mor.sample.SimulatedCohort` as a maps folder.

    Same layout as :func:`run_batch` output, plus ``atlas/`` (phantom labels,
    brain mask) and ``cohort_truth.json``.
    """
    from napari_mor.io import write_json, write_lut, write_nifti
    from napari_mor.sample.cohort import write_participants

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    delta = cohort.delta_bp
    prov = {"Source": "napari-mor simulated cohort (map level)"}
    for i, sub in enumerate(cohort.subject_ids):
        paths = _output_paths(out_dir, sub)
        for c, data in (
            ("baseline", cohort.bp_baseline[i]),
            ("challenge", cohort.bp_challenge[i]),
            ("delta", delta[i]),
        ):
            data = np.where(cohort.mask, data, np.nan)
            write_nifti(paths[c], data, cohort.affine, prov)
        # sealed like a batch manifest, so 'group stats' can check the maps
        write_json(
            out_dir / sub / "manifest.json",
            {
                "version": MANIFEST_VERSION,
                "inputs": {"source": prov["Source"]},
                "settings": {},
                "outputs": _output_hashes(paths),
            },
        )
    write_participants(out_dir / "participants.tsv", cohort.participants)
    atlas = out_dir / "atlas"
    write_nifti(
        atlas / "space-MNI_labels.nii.gz",
        cohort.labels.data,
        cohort.affine,
        prov,
        np.int16,
    )
    write_lut(cohort.labels.lut, atlas / "space-MNI_labels.tsv", cohort.labels.colors)
    write_nifti(
        atlas / "space-MNI_brainmask.nii.gz", cohort.mask, cohort.affine, prov, np.uint8
    )
    truth = dict(cohort.truth)
    truth["drops_pct"] = {
        sub: dict(
            zip(
                truth["region_names"],
                cohort.drops_pct[i].round(4).tolist(),
                strict=True,
            )
        )
        for i, sub in enumerate(cohort.subject_ids)
    }
    write_json(out_dir / "cohort_truth.json", truth)
    return out_dir


def copy_atlas(src_root: str | Path, out_dir: str | Path) -> None:
    """Copy ``atlas/`` (phantom labels / template) of a cohort into a maps folder."""
    src = Path(src_root) / "atlas"
    if src.is_dir():
        shutil.copytree(src, Path(out_dir) / "atlas", dirs_exist_ok=True)


def find_region_labels(folder: str | Path):
    """The phantom region labels of a simulated cohort (``atlas/``), or None."""
    from napari_mor.io import load_labels

    path = Path(folder) / "atlas" / "space-MNI_labels.nii.gz"
    if not path.is_file():
        return None
    return load_labels(path)


def settings_from_mapping(values: Mapping) -> BatchSettings:
    """BatchSettings from a plain mapping (e.g. parsed CLI options)."""
    return BatchSettings(**dict(values))
