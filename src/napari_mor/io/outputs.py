"""The one output-path check: never overwrite an input, never write one file twice.

Every command and dock writer calls :func:`check_outputs` with the files it
reads and the files it will write, before computing anything::

    check_outputs(
        inputs={"PET": pet_path, "--labels": labels_path, "--lut": lut_path},
        outputs={"--out": out_path, "--percent": pct_path},
    )

Image outputs bring their JSON sidecar along (``X.nii.gz`` and ``X.nii`` both
write ``X.json``); image inputs are protected together with their sidecar and
the lookup table beside them (``X.tsv``/``X.txt``, when present). Files other
writers add (a label image's LUT, a transform's ``.json``, extra maps such as
``bp_DVR.nii.gz``) are passed as outputs of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from napari_mor._errors import MorError
from napari_mor.io._nifti import is_image_path, sidecar_path_for, strip_image_suffix

__all__ = ["check_outputs", "companion_paths"]

PathLike = str | os.PathLike
Paths = Mapping[str, PathLike | None] | Iterable[PathLike | None]

_DEFAULT_OUTPUT_LABEL = "output path (--out)"


def companion_paths(path: PathLike, include_lut: bool = True) -> list[Path]:
    """Files that belong to an image: its JSON sidecar and lookup tables.

    Parameters
    ----------
    path : str or path-like
        An image path (``.nii``, ``.nii.gz`` or ``.v``), existing or not.
    include_lut : bool
        Also list the lookup tables a label image may have beside it
        (``X.tsv``, ``X.txt``, the names :func:`~napari_mor.io.load_labels`
        looks for).

    Returns
    -------
    list of Path
        ``[X.json]`` (plus ``X.tsv``, ``X.txt``) for an image; ``[]`` for any
        other file, which has no companions.

    Examples
    --------
    >>> [p.name for p in companion_paths("out/bp.nii.gz")]
    ['bp.json', 'bp.tsv', 'bp.txt']
    >>> [p.name for p in companion_paths("out/bp.nii", include_lut=False)]
    ['bp.json']
    """
    if not is_image_path(path):
        return []
    stem = strip_image_suffix(path)
    companions = [sidecar_path_for(path)]
    if include_lut:
        companions += [stem.with_name(stem.name + s) for s in (".tsv", ".txt")]
    return companions


def check_outputs(inputs: Paths, outputs: Paths) -> None:
    """Refuse outputs that would overwrite an input or each other.

    Call it before computing anything, so that nothing is written when it
    raises. Paths are compared after resolving symlinks and ``..`` (realpath),
    by file identity when both exist (hard links, case-insensitive file
    systems, bind mounts), and without regard to case: names that differ only
    in case are the same file on macOS and Windows, where results folders are
    often copied.

    Parameters
    ----------
    inputs : mapping of str to path, iterable of paths, or one path
        Files the command reads. Each is protected together with, for images,
        its JSON sidecar (``X.json``, whether it exists or not: a new one would
        change how the input loads) and the lookup tables beside it
        (``X.tsv``/``X.txt``, when they exist and read as a lookup table).
        With a mapping, the keys name the inputs in messages (e.g.
        ``{"PET": ..., "--labels": ...}``). ``None`` entries are skipped.
    outputs : mapping of str to path, iterable of paths, or one path
        Files the command writes. Each image output also writes its sidecar
        (``X.nii.gz``/``X.nii`` -> ``X.json``); list any other extra file (LUT,
        transform ``.json``, extra maps) as an output of its own. With a
        mapping, the keys name the option to change in messages (e.g.
        ``{"--out": ..., "--percent": ...}``). ``None`` entries are skipped.

    Raises
    ------
    MorError
        When an output (or its sidecar) is an input, an input's sidecar or
        LUT, or another output's file, or when an output is an existing folder.
        The message names both paths and the option to change.

    Examples
    --------
    >>> check_outputs(["pet.nii.gz"], {"--out": "pet.nii"})
    Traceback (most recent call last):
    ...
    MorError: Output pet.nii (--out) would write pet.json, which is the JSON
    sidecar of the input pet.nii.gz. Inputs are never overwritten: choose
    another --out.
    """
    protected = []  # (file, description)
    for label, path in _entries(inputs, "input"):
        protected.append((path, f"the input {_named(path, label)}"))
        for companion in companion_paths(path):
            if companion.suffix == ".json":
                kind = "JSON sidecar"
            elif _looks_like_lut(companion):
                kind = "lookup table"
            else:
                continue
            protected.append(
                (companion, f"the {kind} of the input {_named(path, label)}")
            )
    written = []  # (file, output path, option label, output number)
    for number, (label, path) in enumerate(_entries(outputs, _DEFAULT_OUTPUT_LABEL)):
        if path.is_dir():
            raise MorError(
                f"Output {_named(path, label)} is an existing folder; give a file "
                f"name inside it instead (choose another {label})."
            )
        written.append((path, path, label, number))
        for companion in companion_paths(path, include_lut=False):
            written.append((companion, path, label, number))
    for index, (file, out, label, number) in enumerate(written):
        for other, what in protected:
            why = _same_file(file, other)
            if why is not None:
                writes = "is" if file == out else f"would write {file.name}, which is"
                raise MorError(
                    f"Output {_named(out, label)} {writes} {what}{why}. Inputs are "
                    f"never overwritten: choose another {label}."
                )
        for file_2, out_2, label_2, number_2 in written[index + 1 :]:
            why = None if number_2 == number else _same_file(file, file_2)
            if why is not None:
                raise MorError(
                    f"Outputs {_named(out, label)} and {_named(out_2, label_2)} "
                    f"would both write {file}{why}, so one would replace the "
                    f"other: choose another {label_2}."
                )


def _looks_like_lut(path: Path) -> bool:
    """Whether ``path`` exists and reads as a lookup table (what
    :func:`~napari_mor.io.load_labels` would pick up beside the image).

    A TSV header with ``index`` and ``name`` columns, or a first line starting
    with a label number (FreeSurfer). An earlier output of another kind at that
    name (e.g. a TAC table beside the PET) is not protected; a file that cannot
    be read is, to be safe.
    """
    if not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    header = [h.strip().lower() for h in line.split("\t")]
                    first = line.split()[0].lstrip("+-")
                    return {"index", "name"} <= set(header) or first.isdigit()
    except OSError:
        return True
    return False


def _entries(paths: Paths, default_label: str) -> list[tuple[str, Path]]:
    """(label, path) pairs from a mapping or an iterable, ``None`` skipped."""
    if isinstance(paths, Mapping):
        items = [(str(k), v) for k, v in paths.items()]
    elif isinstance(paths, str | os.PathLike):
        items = [(default_label, paths)]
    else:
        items = [(default_label, v) for v in paths]
    return [(label, Path(p)) for label, p in items if p is not None]


def _named(path: Path, label: str) -> str:
    """``path (label)`` for a real option name, else just the path."""
    if label in ("input", _DEFAULT_OUTPUT_LABEL):
        return str(path)
    return f"{path} ({label})"


def _same_file(a: Path, b: Path) -> str | None:
    """Why ``a`` and ``b`` are one file (text for a message), or None."""
    real_a, real_b = os.path.realpath(a), os.path.realpath(b)
    try:
        identical = os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        identical = False
    if real_a == real_b or identical:
        if os.path.abspath(a) == os.path.abspath(b):
            return ""
        if real_a == real_b:
            return f" (both resolve to {real_a})"
        return " (they are the same file on disk)"
    if real_a.casefold() == real_b.casefold():
        return (
            " (the names differ only in case, which is the same file on macOS "
            "and Windows)"
        )
    return None
