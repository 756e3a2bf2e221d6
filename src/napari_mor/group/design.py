"""Cohort discovery: subjects, sessions and the study design (one scan or two)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from napari_mor._errors import MorError

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
