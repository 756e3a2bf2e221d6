"""Cohort state: per-subject manifests (input and map hashes), invalidation."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path

from napari_mor._errors import MorError
from napari_mor.group.design import SubjectInputs

#: 2: the manifest also records the SHA-256 of every map it vouches for
#: (``outputs``), so stale or half-written maps are never used.
MANIFEST_VERSION = 2
CONDITIONS = ("baseline", "challenge")


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
