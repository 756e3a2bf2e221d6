"""Bad inputs and faults through every command and the napari reader, table-driven.

Each row of :data:`CASES` builds one broken variant of the sample study in its
own folder, runs one command on it in-process (``napari_mor.cli.main``) or the
napari reader function, and checks what a user would check:

- exit status 2 (the reader: the package's :class:`~napari_mor.MorError`),
- one ``error:`` line on stderr, the last line, naming the problem, and no
  ``Traceback``,
- no file or folder created (no partial output, no temporary file),
- the SHA-256 of every file in the folder unchanged (inputs are never modified).

:data:`ACCEPTED` lists inputs that are accepted with a warning instead, and
why. ``scripts/bad_inputs_table.py`` runs the same lists through the same
runner (:func:`run_case`) and writes ``docs/bad_inputs.md``; a test here checks
that the table lists exactly these cases. Fault tests at the end: a cohort
subject that breaks between runs, and two processes writing one ``fit`` output.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_mor import MorError

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad_inputs.md"
_DROP = object()  # marks a sidecar key to delete


# ----------------------------------------------------------------- base data
def make_base(folder: Path) -> Path:
    """Write every input the cases start from, once; returns ``folder``.

    ``study/``: the noise-free sample phantom on 6 mm voxels (PET + sidecar,
    T1w, labels + LUT, brain mask), a reference mask, a frames TSV, baseline and
    challenge BP_ND maps (``bp_baseline``/``bp_challenge``) and an identity
    transform (``xfm.tfm`` + ``xfm.json``). ``cohort/``: a 3-subject dynamic
    cohort (8 mm). ``maps/``: ``group run`` of that cohort. ``sim/``: a
    4-subject map-level cohort (``group simulate``).
    """
    from napari_mor.cli import main
    from napari_mor.io import write_frames_tsv, write_nifti
    from napari_mor.registration import Transform, save_transform
    from napari_mor.sample import (
        make_sample_study,
        write_bids_cohort,
        write_sample_study,
    )

    study = folder / "study"
    sample = make_sample_study(seed=0, noise_cv=0.0, pet_voxel_mm=6.0, mr_voxel_mm=6.0)
    paths = write_sample_study(sample, study)
    labels = nib.load(str(paths["labels"]))
    write_nifti(
        study / "ref_mask.nii.gz",
        (np.asarray(labels.dataobj) == 1).astype(np.uint8),
        labels.affine,
        dtype=np.uint8,
    )
    write_frames_tsv(sample.pet.timing, study / "frames.tsv")
    save_transform(Transform(np.eye(4), "MR", "PET"), study / "xfm.tfm")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        code = main(
            [
                "fit",
                str(paths["pet"]),
                "--labels",
                str(paths["labels"]),
                "--model",
                "logan",
                "--window",
                "5",
                "40",
                "--window",
                "45",
                "90",
                "--out",
                str(study / "bp.nii.gz"),
            ]
        )
        assert code == 0, quiet.getvalue()
        write_bids_cohort(
            folder / "cohort",
            3,
            seed=1,
            pet_voxel_mm=8.0,
            mr_voxel_mm=8.0,
            noise_cv=0.0,
        )
        code = main(
            [
                "group",
                "run",
                str(folder / "cohort"),
                "--out",
                str(folder / "maps"),
                "--scheduler",
                "sync",
            ]
        )
        assert code == 0, quiet.getvalue()
        code = main(
            [
                "group",
                "simulate",
                "--out",
                str(folder / "sim"),
                "--subjects",
                "4",
                "--voxel-mm",
                "8",
            ]
        )
        assert code == 0, quiet.getvalue()
    return folder


# ------------------------------------------------------------ file helpers
def _edit_json(path: Path, **changes) -> None:
    content = json.loads(path.read_text())
    for key, value in changes.items():
        if value is _DROP:
            content.pop(key, None)
        else:
            content[key] = value
    path.write_text(json.dumps(content))


def _sidecar(**changes) -> Callable[[Path], None]:
    return lambda d: _edit_json(d / "sample_pet.json", **changes)


def _image(path: Path):
    image = nib.load(str(path))
    return np.asarray(image.dataobj), image.affine


def _save(path: Path, data, affine, dtype=None) -> None:
    """Save an edited image; its napari-mor sidecar no longer vouches for it."""
    data = np.asarray(data) if dtype is None else np.asarray(data).astype(dtype)
    image = nib.Nifti1Image(data, affine, dtype=data.dtype)
    nib.save(image, str(path))
    sidecar = path.with_name(path.name.split(".nii")[0] + ".json")
    if sidecar.is_file():
        _edit_json(sidecar, ImageSHA256=_DROP)


def _timing(change: Callable) -> Callable[[Path], None]:
    """Rewrite the PET sidecar's timing: ``change(starts, durations) -> (s, d)``."""

    def apply(d: Path) -> None:
        car = json.loads((d / "sample_pet.json").read_text())
        starts, durations = change(car["FrameTimesStart"], car["FrameDuration"])
        _edit_json(
            d / "sample_pet.json", FrameTimesStart=starts, FrameDuration=durations
        )

    return apply


def _pet_as(transform: Callable) -> Callable[[Path], None]:
    """Replace the PET's voxels by ``transform(data, affine) -> (data, affine)``."""

    def apply(d: Path) -> None:
        path = d / "sample_pet.nii.gz"
        data, affine = transform(*_image(path))
        _save(path, data, affine)

    return apply


def _labels_as(transform: Callable, dtype=None) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        path = d / "sample_labels.nii.gz"
        data, affine = transform(*_image(path))
        _save(path, data, affine, dtype)

    return apply


def _shifted(affine, mm=(12.0, 0.0, 0.0)):
    moved = np.array(affine, dtype=float)
    moved[:3, 3] += mm
    return moved


def _truncate(name: str, fraction: float = 0.5) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: int(len(data) * fraction)])

    return apply


def _write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return apply


def _lying_header(name: str, shape) -> Callable[[Path], None]:
    """A tiny NIfTI whose header claims a giant shape."""

    def apply(d: Path) -> None:
        header = nib.Nifti1Header()
        header.set_data_shape(shape)
        header.set_data_dtype(np.float32)
        header["vox_offset"] = 352
        raw = header.binaryblock + b"\0" * 4 + b"\1" * 1000
        path = d / name
        path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)

    return apply


def _vox_offset_zero(d: Path) -> None:
    data, affine = _image(d / "sample_pet.nii.gz")
    (d / "sample_pet.nii.gz").unlink()
    raw = d / "sample_pet.nii"
    _save(raw, data, affine)
    blob = bytearray(raw.read_bytes())
    blob[108:112] = struct.pack("<f", 0.0)  # vox_offset
    raw.write_bytes(bytes(blob))


def _both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        for step in steps:
            step(d)

    return apply


def _nothing(d: Path) -> None:
    return None


# ------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One bad input: how to build it and what the command must say.

    Attributes
    ----------
    id : str
        Unique name (folder name of the case).
    cls : str
        Class of fault (shape, timing, units, corrupt, grid, labels/LUT,
        window, t*, k2', option, path, output==input, cohort).
    command : str
        ``tacs``, ``fit``, ``fit --rois-only``, ``delta``, ``register MODE``,
        ``group STEP``, ``demo`` or ``reader``.
    args : tuple of str
        Arguments after the command; ``{d}`` is the case folder.
    expect : str
        Text the error message must contain (case-insensitive).
    setup : callable(Path), optional
        Breaks the copy of the inputs in the case folder.
    data : str
        Which base folder is copied: ``study``, ``cohort``, ``cohort+maps``,
        ``maps`` or ``sim``.
    exit : int
        Expected exit status (2; the reader: MorError).
    """

    id: str
    cls: str
    command: str
    args: tuple[str, ...]
    expect: str
    setup: Callable[[Path], None] = _nothing
    data: str = "study"
    exit: int = 2
    marks: tuple = field(default=(), compare=False)


P, L, LUT = "{d}/sample_pet.nii.gz", "{d}/sample_labels.nii.gz", "{d}/sample_labels.tsv"
MR, BRAIN = "{d}/sample_T1w.nii.gz", "{d}/sample_brainmask.nii.gz"
BASE, CHAL = "{d}/bp_baseline.nii.gz", "{d}/bp_challenge.nii.gz"
TACS = (P, "--labels", L, "--out", "{d}/out/tacs.tsv")
FIT = (P, "--labels", L, "--ref-label", "1", "--model", "logan")
FIT_MAP = (*FIT, "--out", "{d}/out/bp.nii.gz")
ROIS = (P, "--labels", L, "--ref-label", "1", "--model", "mrtm", "--rois-only")
ROIS_OUT = (*ROIS, "--out", "{d}/out/rois.tsv")
MRTM2 = (P, "--labels", L, "--ref-label", "1", "--model", "mrtm2")


def _cases() -> list[Case]:
    # fmt: off
    c = []
    add = c.append
    # ---------------------------------------------------------------- shape
    three_d = _pet_as(lambda a, aff: (a[..., 0], aff))
    add(Case("pet_3d", "shape", "tacs", TACS, "must be 4D", three_d))
    add(Case("pet_3d", "shape", "fit", FIT_MAP, "must be 4D", three_d))
    add(Case("pet_3d", "shape", "register motion",
             (P, "--out", "{d}/out/mc.nii.gz"), "must be 4D", three_d))
    five_d = _pet_as(lambda a, aff: (a[..., None], aff))
    add(Case("pet_5d", "shape", "fit --rois-only", ROIS_OUT, "must be 4D", five_d))
    add(Case("pet_5d", "shape", "reader", (P,), "reads 3D images and 4D", five_d))
    two_d = _pet_as(lambda a, aff: (a[:, :, 0, 0], aff))
    add(Case("pet_2d", "shape", "tacs", TACS, "must be 4D", two_d))
    add(Case("pet_2d", "shape", "reader", (P,), "reads 3D images and 4D", two_d))
    labels_4d = _labels_as(lambda a, aff: (np.stack([a, a], axis=-1), aff))
    add(Case("labels_4d", "shape", "tacs", TACS, "3D image", labels_4d))
    add(Case("labels_4d_no_sidecar", "shape", "reader", (L,),
             "looks like a label image",
             _both(labels_4d, lambda d: (d / "sample_labels.json").unlink())))
    # weak message: the reader takes a 4D image with a sidecar for PET
    add(Case("labels_4d", "shape", "reader", (L,), "lacks FrameTimesStart",
             labels_4d))
    # --------------------------------------------------------------- timing
    short = _timing(lambda s, u: (s[:27], u[:27]))
    add(Case("frames_count_mismatch", "timing", "tacs", TACS, "timing lists 27",
             short))
    add(Case("frames_count_mismatch", "timing", "reader", (P,), "timing lists 27",
             short))
    add(Case("frames_not_increasing", "timing", "fit", FIT_MAP, "not increasing",
             _timing(lambda s, u: ([s[0], s[2], s[1], *s[3:]], u))))
    add(Case("frames_overlap", "timing", "fit --rois-only", ROIS_OUT, "overlap",
             _timing(lambda s, u: (s, [u[0] * 1.5, *u[1:]]))))
    add(Case("duration_negative", "timing", "tacs", TACS, "duration",
             _timing(lambda s, u: (s, [-u[0], *u[1:]]))))
    add(Case("duration_zero", "timing", "fit", FIT_MAP, "duration",
             _timing(lambda s, u: (s, [0.0, *u[1:]]))))
    add(Case("start_before_injection", "timing", "tacs", TACS, "before injection",
             _timing(lambda s, u: ([v - 30 for v in s], u))))
    add(Case("frame_time_null", "timing", "fit", FIT_MAP, "FrameDuration",
             _timing(lambda s, u: (s, [None, *u[1:]]))))
    add(Case("frame_times_words", "timing", "tacs", TACS, "FrameTimesStart",
             _timing(lambda s, u: (["sixty", *s[1:]], u))))
    add(Case("frame_times_numeric_strings", "timing", "fit --rois-only", ROIS_OUT,
             "FrameTimesStart", _timing(lambda s, u: ([str(v) for v in s], u))))
    add(Case("injection_start_clock", "timing", "fit", FIT_MAP, "InjectionStart",
             _sidecar(InjectionStart="00:01:00")))
    add(Case("sidecar_missing", "timing", "tacs", TACS, "No JSON sidecar",
             lambda d: (d / "sample_pet.json").unlink()))
    add(Case("sidecar_missing", "timing", "reader", (P,), "No JSON sidecar",
             lambda d: (d / "sample_pet.json").unlink()))
    add(Case("sidecar_not_json", "timing", "fit", FIT_MAP, "not valid JSON",
             _write("sample_pet.json", "{FrameTimesStart: [0, 30]")))
    add(Case("sidecar_null", "timing", "tacs", TACS, "not an object",
             _write("sample_pet.json", "null")))
    add(Case("sidecar_null", "timing", "reader", (P,), "not an object",
             _write("sample_pet.json", "null")))
    add(Case("sidecar_list", "timing", "fit --rois-only", ROIS_OUT, "not an object",
             _write("sample_pet.json", "[1, 2]")))
    def frames_tsv_short(d):
        car = json.loads((d / "sample_pet.json").read_text())
        rows = zip(car["FrameTimesStart"][:20], car["FrameDuration"][:20], strict=True)
        text = "frame_start\tframe_duration\n" + "".join(f"{a}\t{b}\n" for a, b in rows)
        (d / "short.tsv").write_text(text)

    add(Case("frames_tsv_short", "timing", "fit", (*FIT_MAP, "--frames",
             "{d}/short.tsv"), "timing lists 20", frames_tsv_short))
    add(Case("frames_tsv_columns", "timing", "tacs", (*TACS, "--frames",
             "{d}/cols.tsv"), "frame_start", _write("cols.tsv", "a\tb\n0\t30\n")))
    add(Case("frames_tsv_missing", "timing", "tacs", (*TACS, "--frames",
             "{d}/nosuch.tsv"), "does not exist"))
    add(Case("decay_false_string", "timing", "fit", FIT_MAP, "ImageDecayCorrected",
             _sidecar(ImageDecayCorrected="false")))
    add(Case("decay_false_string", "timing", "reader", (P,), "ImageDecayCorrected",
             _sidecar(ImageDecayCorrected="false")))
    add(Case("decay_number", "timing", "tacs", TACS, "ImageDecayCorrected",
             _sidecar(ImageDecayCorrected=0)))
    add(Case("not_decay_corrected", "timing", "fit --rois-only", ROIS_OUT,
             "not decay-corrected", _sidecar(ImageDecayCorrected=False)))
    # ---------------------------------------------------------------- units
    add(Case("units_unknown", "units", "tacs", TACS, "unknown activity unit",
             _sidecar(Units="counts")))
    add(Case("units_number", "units", "fit", FIT_MAP, "Units",
             _sidecar(Units=1000)))
    add(Case("units_number", "units", "reader", (P,), "Units", _sidecar(Units=1000)))
    add(Case("units_option_unknown", "units", "tacs", (*TACS, "--units", "furlong"),
             "unit", _sidecar(Units=_DROP)))
    # -------------------------------------------------------------- corrupt
    add(Case("pet_truncated_gz", "corrupt", "tacs", TACS, "truncated or corrupt",
             _truncate("sample_pet.nii.gz")))
    add(Case("pet_truncated_gz", "corrupt", "reader", (P,), "truncated or corrupt",
             _truncate("sample_pet.nii.gz")))
    add(Case("pet_garbage", "corrupt", "fit", FIT_MAP, "could not be read",
             _write("sample_pet.nii.gz", os.urandom(4000))))
    add(Case("pet_empty", "corrupt", "fit --rois-only", ROIS_OUT,
             "could not be read", _write("sample_pet.nii.gz", b"")))
    add(Case("pet_empty", "corrupt", "reader", (P,), "could not be read",
             _write("sample_pet.nii.gz", b"")))
    huge = _both(lambda d: (d / "sample_pet.json").rename(d / "huge.json"),
                 _lying_header("huge.nii", (4000, 4000, 4000, 28)))
    add(Case("header_huge_nii", "corrupt", "tacs",
             ("{d}/huge.nii", "--labels", L, "--out", "{d}/out/t.tsv"), "header",
             huge))
    huge_gz = _both(lambda d: (d / "sample_pet.json").rename(d / "huge.json"),
                    _lying_header("huge.nii.gz", (2000, 2000, 2000, 28)))
    add(Case("header_huge_gz", "corrupt", "fit",
             ("{d}/huge.nii.gz", "--labels", L, "--ref-label", "1", "--out",
              "{d}/out/bp.nii.gz"), "header", huge_gz))
    add(Case("header_huge_gz", "corrupt", "reader", ("{d}/huge.nii.gz",), "header",
             huge_gz))
    add(Case("vox_offset_zero", "corrupt", "fit",
             ("{d}/sample_pet.nii", "--labels", L, "--ref-label", "1", "--out",
              "{d}/out/bp.nii.gz"), "vox_offset", _vox_offset_zero))
    add(Case("vox_offset_zero", "corrupt", "reader", ("{d}/sample_pet.nii",),
             "vox_offset", _vox_offset_zero))
    add(Case("pet_is_json", "corrupt", "tacs",
             ("{d}/sample_pet.json", "--labels", L, "--out", "{d}/out/t.tsv"),
             "not a NIfTI"))
    add(Case("pet_missing", "path", "tacs",
             ("{d}/nosuch_pet.nii.gz", "--labels", L, "--out", "{d}/out/t.tsv"),
             "does not exist"))
    add(Case("labels_missing", "path", "fit",
             (P, "--labels", "{d}/nosuch.nii.gz", "--ref-label", "1", "--out",
              "{d}/out/bp.nii.gz"), "does not exist"))
    add(Case("baseline_missing", "path", "delta",
             ("{d}/nosuch.nii.gz", CHAL, "--out", "{d}/out/d.nii.gz"),
             "does not exist"))
    add(Case("labels_truncated", "corrupt", "fit --rois-only", ROIS_OUT,
             "truncated or corrupt", _truncate("sample_labels.nii.gz", 0.6)))
    add(Case("bp_map_garbage", "corrupt", "delta",
             (BASE, CHAL, "--out", "{d}/out/d.nii.gz"), "could not be read",
             _write("bp_challenge.nii.gz", os.urandom(500))))
    # ---------------------------------------------------------------- grids
    smaller = _labels_as(lambda a, aff: (a[:-2], aff), np.int16)
    add(Case("labels_other_shape", "grid", "tacs", TACS, "shape", smaller))
    moved = _labels_as(lambda a, aff: (a, _shifted(aff)), np.int16)
    add(Case("labels_other_affine", "grid", "tacs", TACS, "grid", moved))


    def brain_small(d):
        data, aff = _image(d / "sample_brainmask.nii.gz")
        _save(d / "sample_brainmask.nii.gz", data[2:], aff, np.uint8)

    add(Case("mask_other_grid", "grid", "fit", (*FIT, "--mask", BRAIN, "--out",
             "{d}/out/bp.nii.gz"), "grid", brain_small))

    def challenge_pet(transform):
        def apply(d):
            shutil.copy(d / "sample_pet.json", d / "chal_pet.json")
            data, aff = transform(*_image(d / "sample_pet.nii.gz"))
            _save(d / "chal_pet.nii.gz", data, aff)

        return apply

    add(Case("challenge_pet_other_grid", "grid", "fit",
             (*FIT, "--challenge-pet", "{d}/chal_pet.nii.gz", "--out",
              "{d}/out/bp.nii.gz"), "grid",
             challenge_pet(lambda a, aff: (a, _shifted(aff)))))

    def challenge_fewer_frames(d):
        challenge_pet(lambda a, aff: (a[..., :20], aff))(d)
        car = json.loads((d / "chal_pet.json").read_text())
        _edit_json(d / "chal_pet.json", FrameTimesStart=car["FrameTimesStart"][:20],
                   FrameDuration=car["FrameDuration"][:20])

    add(Case("challenge_pet_other_frames", "grid", "fit --rois-only",
             (*ROIS, "--challenge-pet", "{d}/chal_pet.nii.gz", "--out",
              "{d}/out/rois.tsv"), "frame count", challenge_fewer_frames))

    def bp_map(transform):
        def apply(d):
            data, aff = transform(*_image(d / "bp_challenge.nii.gz"))
            _save(d / "bp_challenge.nii.gz", data, aff, np.float32)

        return apply

    add(Case("delta_other_shape", "grid", "delta",
             (BASE, CHAL, "--out", "{d}/out/d.nii.gz"), "same",
             bp_map(lambda a, aff: (a[:-3], aff))))
    add(Case("delta_other_affine", "grid", "delta",
             (BASE, CHAL, "--out", "{d}/out/d.nii.gz", "--percent",
              "{d}/out/p.nii.gz"), "affine",
             bp_map(lambda a, aff: (a, _shifted(aff)))))
    add(Case("delta_4d_map", "shape", "delta",
             (BASE, CHAL, "--out", "{d}/out/d.nii.gz"), "3D image",
             bp_map(lambda a, aff: (np.stack([a, a], -1), aff))))
    add(Case("ref_mask_empty", "grid", "fit",
             (P, "--ref-mask", "{d}/ref_mask.nii.gz", "--mask", BRAIN, "--out",
              "{d}/out/bp.nii.gz"), "no",
             lambda d: _save(d / "ref_mask.nii.gz",
                             np.zeros(_image(d / "ref_mask.nii.gz")[0].shape),
                             _image(d / "ref_mask.nii.gz")[1], np.uint8)))
    # ----------------------------------------------------------- labels/LUT
    add(Case("labels_fractional", "labels/LUT", "tacs", TACS, "whole numbers",
             _labels_as(lambda a, aff: (a + 0.5, aff), np.float32)))
    add(Case("labels_negative", "labels/LUT", "fit", FIT_MAP, "negative",
             _labels_as(lambda a, aff: (np.where(a == 3, -3, a), aff), np.int16)))
    add(Case("labels_negative", "labels/LUT", "reader", (L,), "negative",
             _labels_as(lambda a, aff: (np.where(a == 3, -3, a), aff), np.int16)))
    add(Case("labels_above_int32", "labels/LUT", "tacs", TACS,
             "above the largest supported label",
             _labels_as(lambda a, aff: (np.where(a == 3, 2**40, a.astype(np.int64)),
                                        aff), np.int64)))

    def lut_edit(text):
        return _write("sample_labels.tsv", text)

    add(Case("lut_duplicate_index", "labels/LUT", "tacs", TACS, "1",
             lut_edit("index\tname\n1\tocc\n1\tocc_again\n2\tvs\n")))
    add(Case("lut_wrong_columns", "labels/LUT", "fit --rois-only", ROIS_OUT,
             "index", lut_edit("id\tlabel_name\n1\tocc\n")))
    add(Case("lut_missing", "labels/LUT", "tacs", (*TACS, "--lut", "{d}/no.tsv"),
             "does not exist"))
    add(Case("lut_binary", "labels/LUT", "fit", FIT_MAP, "sample_labels.tsv",
             _write("sample_labels.tsv", bytes(range(256)) * 4)))
    add(Case("ref_label_absent", "labels/LUT", "fit --rois-only",
             (P, "--labels", L, "--ref-label", "99", "--rois-only", "--out",
              "{d}/out/rois.tsv"), "99"))
    add(Case("ref_label_unknown_name", "labels/LUT", "fit",
             (P, "--labels", L, "--ref-label", "cerebellum", "--out",
              "{d}/out/bp.nii.gz"), "cerebellum"))
    add(Case("ref_label_without_lut", "labels/LUT", "fit",
             (P, "--labels", L, "--out", "{d}/out/bp.nii.gz"), "named like 'occipital'",
             lambda d: (d / "sample_labels.tsv").unlink()))
    add(Case("k2p_region_unknown", "k2'", "fit",
             (*MRTM2, "--k2p-region", "nucleus_x", "--out", "{d}/out/bp.nii.gz"),
             "nucleus_x"))
    # -------------------------------------------------------------- windows
    add(Case("window_outside_scan", "window", "fit",
             (*FIT_MAP, "--window", "200", "300"), "outside the scan"))
    add(Case("window_too_few_frames", "window", "fit --rois-only",
             (*ROIS_OUT, "--window", "44", "46"), "at least"))
    add(Case("window_reversed", "window", "fit", (*FIT_MAP, "--window", "45", "10"),
             "window"))
    add(Case("window_negative", "window", "fit --rois-only",
             (*ROIS_OUT, "--window", "-5", "40"), "before injection"))
    add(Case("window_zero_length", "window", "fit", (*FIT_MAP, "--window", "30",
             "30"), "window"))
    add(Case("window_nan", "window", "fit", (*FIT_MAP, "--window", "nan", "45"),
             "window"))
    add(Case("window_inf", "window", "fit --rois-only",
             (*ROIS_OUT, "--window", "10", "inf"), "window"))
    add(Case("window_with_challenge_pet", "window", "fit",
             (*FIT_MAP, "--window", "5", "40", "--challenge-pet", P),
             "--challenge-pet"))
    add(Case("window_not_a_number", "window", "fit",
             (*FIT_MAP, "--window", "five", "40"), "invalid float"))
    # ------------------------------------------------------------------- t*
    add(Case("t_star_negative", "t*", "fit", (*FIT_MAP, "--t-star", "-5"),
             "t* must be a number > 0"))
    add(Case("t_star_negative", "t*", "fit --rois-only",
             (*ROIS_OUT, "--t-star", "-5"), "t* must be a number > 0"))
    add(Case("t_star_zero", "t*", "fit", (*FIT_MAP, "--t-star", "0"),
             "t* must be a number > 0"))
    add(Case("t_star_nan", "t*", "fit --rois-only", (*ROIS_OUT, "--t-star", "nan"),
             "t* must be a number > 0"))
    add(Case("t_star_inf", "t*", "fit", (*FIT_MAP, "--t-star", "inf"),
             "t* must be a number > 0"))
    add(Case("t_star_after_scan", "t*", "fit", (*FIT_MAP, "--t-star", "500"),
             "last frame"))
    add(Case("t_star_text", "t*", "fit", (*FIT_MAP, "--t-star", "abc"),
             "invalid float"))
    # ------------------------------------------------------------------ k2'
    add(Case("k2p_zero", "k2'", "fit", (*MRTM2, "--k2p", "0", "--out",
             "{d}/out/bp.nii.gz"), "k2' must be a number > 0"))
    add(Case("k2p_negative", "k2'", "fit --rois-only",
             (*MRTM2, "--k2p", "-0.1", "--rois-only", "--out", "{d}/out/r.tsv"),
             "k2' must be a number > 0"))
    add(Case("k2p_nan", "k2'", "fit", (*MRTM2, "--k2p", "nan", "--out",
             "{d}/out/bp.nii.gz"), "k2' must be a number > 0"))
    add(Case("k2p_inf", "k2'", "fit --rois-only",
             (*MRTM2, "--k2p", "inf", "--rois-only", "--out", "{d}/out/r.tsv"),
             "k2' must be a number > 0"))
    add(Case("k2p_and_region", "k2'", "fit",
             (*MRTM2, "--k2p", "0.2", "--k2p-region", "midline_thalamus", "--out",
              "{d}/out/bp.nii.gz"), "not allowed with"))
    # --------------------------------------------------------------- option
    add(Case("srtm_map", "option", "fit",
             (P, "--labels", L, "--ref-label", "1", "--model", "srtm", "--out",
              "{d}/out/bp.nii.gz"), "ROI"))
    add(Case("model_unknown", "option", "fit",
             (P, "--labels", L, "--model", "ftm", "--out", "{d}/out/bp.nii.gz"),
             "invalid choice"))
    add(Case("map_out_not_nifti", "option", "fit",
             (*FIT, "--out", "{d}/out/bp.txt"), ".nii.gz"))
    add(Case("rois_out_not_tsv", "option", "fit --rois-only",
             (*ROIS, "--out", "{d}/out/rois.nii.gz"), ".tsv"))
    add(Case("tacs_out_not_tsv", "option", "tacs",
             (P, "--labels", L, "--out", "{d}/out/tacs.nii.gz"), ".tsv"))
    add(Case("mask_with_rois_only", "option", "fit --rois-only",
             (*ROIS_OUT, "--mask", BRAIN), "--mask"))
    add(Case("mask_missing", "option", "fit",
             (*FIT, "--mask", "{d}/nosuch_mask.nii.gz", "--out",
              "{d}/out/bp.nii.gz"), "does not exist"))
    add(Case("ref_mask_and_labels", "option", "fit",
             (P, "--labels", L, "--ref-mask", "{d}/ref_mask.nii.gz", "--out",
              "{d}/out/bp.nii.gz"), "not allowed with"))
    add(Case("onset_without_release_model", "option", "fit",
             (*FIT_MAP, "--challenge-onset", "45"), "release model"))
    add(Case("release_model_with_windows", "option", "fit --rois-only",
             (P, "--labels", L, "--model", "lpntpet", "--window", "0", "45",
              "--window", "45", "90", "--rois-only", "--out", "{d}/out/r.tsv"),
             "one scan whole"))
    add(Case("release_onset_outside_scan", "window", "fit --rois-only",
             (P, "--labels", L, "--model", "lpntpet", "--challenge-onset", "300",
              "--rois-only", "--out", "{d}/out/r.tsv"), "onset"))
    add(Case("denoise_fwhm_without_method", "option", "fit",
             (*FIT_MAP, "--denoise-fwhm", "4"), "without a method"))
    add(Case("denoise_with_rois_only", "option", "fit --rois-only",
             (*ROIS_OUT, "--denoise", "nlm"), "unfiltered region means"))
    add(Case("bids_out_not_a_bids_name", "option", "fit",
             (*FIT, "--bids-out", "{d}/out/derivatives"), "not a BIDS PET name"))
    add(Case("bids_out_and_out", "option", "fit",
             (*FIT_MAP, "--bids-out", "{d}/out/derivatives"), "not allowed with"))
    add(Case("delta_bids_out_plain_names", "option", "delta",
             (BASE, CHAL, "--bids-out", "{d}/out/derivatives"), "BEP023 name"))
    add(Case("pct_estimator_unknown", "option", "delta",
             (BASE, CHAL, "--out", "{d}/out/d.nii.gz", "--pct-estimator", "mean"),
             "invalid choice"))
    add(Case("check_design_onset_too_early", "window", "check-design",
             (P, "--labels", L, "--challenge-onset", "5", "--n-sim", "2", "--out",
              "{d}/out/c.tsv"), "no baseline period"))
    add(Case("check_design_two_scans", "option", "check-design",
             (P, "--labels", L, "--challenge-pet", P, "--n-sim", "2", "--out",
              "{d}/out/c.tsv"), "one scan with a challenge"))
    add(Case("check_design_out_not_tsv", "option", "check-design",
             (P, "--labels", L, "--n-sim", "2", "--out", "{d}/out/c.nii.gz"), ".tsv"))
    # ------------------------------------------------------- output == input
    add(Case("out_is_pet", "output==input", "fit", (*FIT, "--out", P),
             "never overwritten"))
    add(Case("out_nii_beside_pet_nii_gz", "output==input", "fit",
             (*FIT, "--out", "{d}/sample_pet.nii"), "JSON sidecar"))
    add(Case("out_is_lut", "output==input", "fit --rois-only", (*ROIS, "--out", LUT),
             "lookup table"))
    add(Case("out_is_lut", "output==input", "tacs",
             (P, "--labels", L, "--out", LUT), "lookup table"))
    add(Case("out_is_labels", "output==input", "fit", (*FIT, "--out", L),
             "never overwritten"))
    add(Case("out_is_baseline", "output==input", "delta", (BASE, CHAL, "--out", BASE),
             "never overwritten"))
    add(Case("percent_is_out", "output==input", "delta",
             (BASE, CHAL, "--out", "{d}/out/d.nii.gz", "--percent",
              "{d}/out/d.nii.gz"), "both write"))
    add(Case("percent_shares_sidecar", "output==input", "delta",
             (BASE, CHAL, "--out", "{d}/out/d.nii.gz", "--percent",
              "{d}/out/d.nii"), "both write"))
    add(Case("out_nii_beside_baseline", "output==input", "delta",
             (BASE, CHAL, "--out", "{d}/bp_baseline.nii"), "JSON sidecar"))
    add(Case("out_symlink_to_pet", "output==input", "fit",
             (*FIT, "--out", "{d}/link.nii.gz"), "resolve",
             lambda d: (d / "link.nii.gz").symlink_to(d / "sample_pet.nii.gz")))
    add(Case("out_in_symlinked_folder", "output==input", "fit",
             (*FIT, "--out", "{d}/again/sample_pet.nii.gz"), "resolve",
             lambda d: (d / "again").symlink_to(d, target_is_directory=True)))
    add(Case("out_case_variant_of_lut", "output==input", "tacs",
             (P, "--labels", L, "--out", "{d}/SAMPLE_labels.tsv"), "case"))
    add(Case("out_companion_is_mask", "output==input", "fit",
             (*FIT, "--mask", "{d}/res_DVR.nii.gz", "--out", "{d}/res.nii.gz"),
             "never overwritten",
             lambda d: shutil.copy(d / "sample_brainmask.nii.gz",
                                   d / "res_DVR.nii.gz")))
    add(Case("out_condition_map_is_challenge_pet", "output==input", "fit",
             (*FIT, "--challenge-pet", "{d}/scan_challenge.nii.gz", "--out",
              "{d}/scan.nii.gz"), "never overwritten",
             lambda d: (shutil.copy(d / "sample_pet.nii.gz",
                                    d / "scan_challenge.nii.gz"),
                        shutil.copy(d / "sample_pet.json",
                                    d / "scan_challenge.json"))))
    add(Case("out_is_frames_tsv", "output==input", "tacs",
             (P, "--labels", L, "--frames", "{d}/frames.tsv", "--out",
              "{d}/frames.tsv"), "never overwritten"))
    add(Case("out_is_folder", "path", "tacs",
             (P, "--labels", L, "--out", "{d}/outdir.tsv"), "folder",
             lambda d: (d / "outdir.tsv").mkdir()))
    add(Case("out_under_a_file", "path", "fit",
             (*FIT, "--out", "{d}/sample_truth.json/bp.nii.gz"), "not a folder"))
    # ----------------------------------------------------------- register
    add(Case("coreg_out_json_is_pet_sidecar", "output==input", "register coreg",
             (P, MR, "--out", "{d}/sample_pet.tfm"), "JSON sidecar"))
    add(Case("coreg_out_not_tfm", "option", "register coreg",
             (P, MR, "--out", "{d}/x.nii.gz"), ".tfm"))
    add(Case("coreg_resliced_shares_json", "output==input", "register coreg",
             (P, MR, "--out", "{d}/x.tfm", "--resliced", "{d}/x.nii.gz"),
             "both write"))
    add(Case("coreg_resliced_is_mr", "output==input", "register coreg",
             (P, MR, "--out", "{d}/x.tfm", "--resliced", MR), "never overwritten"))
    add(Case("coreg_window_negative", "window", "register coreg",
             (P, MR, "--out", "{d}/x.tfm", "--window", "-5", "40"), "START"))
    add(Case("motion_out_nii_beside_pet", "output==input", "register motion",
             (P, "--out", "{d}/sample_pet.nii"), "JSON sidecar"))
    add(Case("motion_trace_is_frames", "output==input", "register motion",
             (P, "--frames", "{d}/frames.tsv", "--out", "{d}/mc.nii.gz", "--trace",
              "{d}/frames.tsv"), "never overwritten"))
    add(Case("motion_reference_reversed", "window", "register motion",
             (P, "--out", "{d}/mc.nii.gz", "--reference", "90", "20"), "START"))
    add(Case("motion_min_start_nan", "option", "register motion",
             (P, "--out", "{d}/mc.nii.gz", "--min-start", "nan"), "--min-start"))
    add(Case("normalize_out_not_tfm", "option", "register normalize",
             (MR, "--out", "{d}/mni.nii.gz"), ".tfm"))
    add(Case("normalize_resliced_is_mr", "output==input", "register normalize",
             (MR, "--out", "{d}/mni.tfm", "--resliced", MR), "never overwritten"))
    add(Case("normalize_mask_other_shape", "grid", "register normalize",
             (MR, "--mask", BRAIN, "--out", "{d}/mni.tfm"), "shape"))
    add(Case("apply_out_is_image", "output==input", "register apply",
             (P, "--transform", "{d}/xfm.tfm", "--reference", MR, "--out", P),
             "never overwritten"))
    add(Case("apply_out_sidecar_is_transform_json", "output==input",
             "register apply",
             (BASE, "--transform", "{d}/xfm.tfm", "--reference", MR, "--out",
              "{d}/xfm.nii.gz"), "never overwritten"))
    add(Case("apply_transform_missing", "path", "register apply",
             (BASE, "--transform", "{d}/none.tfm", "--reference", MR, "--out",
              "{d}/o.nii.gz"), "does not exist"))
    add(Case("apply_out_not_nifti", "option", "register apply",
             (BASE, "--transform", "{d}/xfm.tfm", "--reference", MR, "--out",
              "{d}/o.txt"), ".nii"))
    add(Case("apply_labels_4d", "shape", "register apply",
             (P, "--transform", "{d}/xfm.tfm", "--reference", MR, "--labels",
              "--out", "{d}/o.nii.gz"), "3D label"))
    add(Case("apply_pet_sidecar_broken", "timing", "register apply",
             (P, "--transform", "{d}/xfm.tfm", "--reference", MR, "--out",
              "{d}/o.nii.gz"), "not valid JSON",
             _write("sample_pet.json", "{broken")))
    # -------------------------------------------------------------- group
    add(Case("simulate_out_is_file", "path", "group simulate",
             ("--out", "{d}/sample_truth.json"), "is a file"))
    add(Case("simulate_zero_subjects", "option", "group simulate",
             ("--out", "{d}/sim", "--subjects", "0"), "--subjects"))
    add(Case("simulate_voxel_nan", "option", "group simulate",
             ("--out", "{d}/sim", "--voxel-mm", "nan"), "--voxel-mm"))
    add(Case("simulate_voxel_negative", "option", "group simulate",
             ("--out", "{d}/sim", "--voxel-mm", "-3"), "--voxel-mm"))
    add(Case("run_cohort_missing", "path", "group run",
             ("{d}/nosuch", "--out", "{d}/m"), "not a folder", data="cohort"))
    add(Case("run_out_is_cohort", "output==input", "group run",
             ("{d}", "--out", "{d}"), "cohort folder", data="cohort"))
    add(Case("run_out_is_file", "path", "group run",
             ("{d}", "--out", "{d}/participants.tsv"), "is a file", data="cohort"))
    add(Case("run_labels_in_out_atlas", "output==input", "group run",
             ("{d}", "--out", "{d}/maps", "--labels",
              "{d}/maps/atlas/space-MNI_labels.nii.gz"), "never overwritten",
             data="cohort+maps"))
    add(Case("run_window_reversed", "window", "group run",
             ("{d}", "--out", "{d}/m", "--baseline", "40", "10"), "window",
             data="cohort"))
    add(Case("run_window_negative", "window", "group run",
             ("{d}", "--out", "{d}/m", "--challenge", "-45", "90"),
             "before injection", data="cohort"))
    add(Case("run_k2p_negative", "k2'", "group run",
             ("{d}", "--out", "{d}/m", "--k2p", "-1"), "k2'", data="cohort"))
    add(Case("run_fwhm_nan", "option", "group run",
             ("{d}", "--out", "{d}/m", "--fwhm", "nan"), "fwhm", data="cohort"))
    add(Case("run_scheduler_unknown", "option", "group run",
             ("{d}", "--out", "{d}/m", "--scheduler", "slurm"), "scheduler",
             data="cohort"))
    add(Case("run_workers_zero", "option", "group run",
             ("{d}", "--out", "{d}/m", "--workers", "0"), "--workers",
             data="cohort"))
    add(Case("run_labels_missing", "path", "group run",
             ("{d}", "--out", "{d}/m", "--labels", "{d}/none.nii.gz"), "label",
             data="cohort"))
    stats = ("{d}", "--out", "{d}/st", "--test", "one-sample", "--n-perm", "0",
             "--atlas", "none")
    add(Case("stats_maps_missing", "path", "group stats",
             ("{d}/nosuch", *stats[1:]), "not a folder", data="maps"))
    add(Case("stats_one_corrupt_map", "cohort", "group stats", stats,
             "does not match its manifest",
             _write("sub-02/sub-02_desc-delta_bpnd.nii.gz", os.urandom(100)),
             data="maps"))
    add(Case("stats_maps_without_manifests", "cohort", "group stats", stats,
             "manifest",
             lambda d: [p.unlink() for p in d.glob("sub-*/manifest.json")],
             data="maps"))
    add(Case("stats_map_replaced", "cohort", "group stats", stats,
             "does not match its manifest",
             lambda d: shutil.copy(d / "sub-01/sub-01_desc-delta_bpnd.nii.gz",
                                   d / "sub-03/sub-03_desc-delta_bpnd.nii.gz"),
             data="maps"))

    def failed_in_report(d):
        report = json.loads((d / "batch_report.json").read_text())
        report["subjects"][0]["status"] = "failed"
        (d / "batch_report.json").write_text(json.dumps(report))

    add(Case("stats_subject_failed_in_report", "cohort", "group stats", stats,
             "failed in the last", failed_in_report, data="maps"))
    add(Case("stats_pearson_no_covariate", "option", "group stats",
             ("{d}", "--out", "{d}/st", "--test", "pearson", "--n-perm", "0"),
             "--covariate", data="sim"))
    add(Case("stats_covariate_unknown", "option", "group stats",
             ("{d}", "--out", "{d}/st", "--test", "pearson", "--covariate", "grit",
              "--n-perm", "0", "--atlas", "none"), "no column", data="sim"))
    add(Case("stats_p_voxel_out_of_range", "option", "group stats",
             (*stats, "--p-voxel", "2"), "--p-voxel", data="sim"))
    add(Case("stats_n_perm_negative", "option", "group stats",
             ("{d}", "--out", "{d}/st", "--n-perm", "-5"), "--n-perm", data="sim"))
    add(Case("stats_out_is_file", "path", "group stats",
             ("{d}", "--out", "{d}/participants.tsv", "--n-perm", "0"), "is a file",
             data="sim"))
    add(Case("stats_mask_other_shape", "grid", "group stats",
             (*stats, "--mask", "{d}/small_mask.nii.gz"), "shape",
             lambda d: _save(d / "small_mask.nii.gz", np.ones((5, 5, 5)), np.eye(4),
                             np.uint8), data="sim"))
    add(Case("stats_mask_corrupt", "corrupt", "group stats", stats,
             "could not be read",
             _write("atlas/space-MNI_brainmask.nii.gz", os.urandom(300)),
             data="sim"))
    add(Case("stats_out_mask_is_input_mask", "output==input", "group stats",
             ("{d}", "--out", "{d}/atlas", "--mask", "{d}/atlas/mask.nii.gz",
              "--test", "one-sample", "--n-perm", "0", "--atlas", "none"),
             "never overwritten",
             lambda d: shutil.copy(d / "atlas/space-MNI_brainmask.nii.gz",
                                   d / "atlas/mask.nii.gz"), data="sim"))
    add(Case("stats_participants_binary", "corrupt", "group stats",
             ("{d}", "--out", "{d}/st", "--test", "pearson", "--covariate",
              "resiliency", "--n-perm", "0", "--atlas", "none"), "participants",
             _write("participants.tsv", bytes(range(128, 256)) * 8), data="sim"))
    add(Case("stats_participants_missing", "path", "group stats",
             (*stats, "--participants", "{d}/none.tsv"), "participants",
             data="sim"))
    # ---------------------------------------------------------------- demo
    add(Case("demo_out_is_file", "path", "demo", ("--out", "{d}/sample_truth.json"),
             "file exists"))
    add(Case("demo_noise_negative", "option", "demo",
             ("--out", "{d}/demo", "--noise", "-1"), "--noise"))
    add(Case("demo_noise_nan", "option", "demo",
             ("--out", "{d}/demo", "--noise", "nan"), "--noise"))
    # fmt: on
    return c


CASES = _cases()


@dataclass(frozen=True)
class Accepted:
    """An odd input accepted with a warning (exit 0), and why."""

    id: str
    command: str
    args: tuple[str, ...]
    warning: str
    why: str
    setup: Callable[[Path], None] = _nothing
    data: str = "study"


def _labels_moved(d: Path) -> None:
    data, aff = _image(d / "sample_labels.nii.gz")
    _save(d / "sample_labels.nii.gz", data, _shifted(aff), np.int16)


def _labels_smaller(d: Path) -> None:
    data, aff = _image(d / "sample_labels.nii.gz")
    _save(d / "sample_labels.nii.gz", data[:-2], aff, np.int16)


def _ref_mask_moved(d: Path) -> None:
    data, aff = _image(d / "ref_mask.nii.gz")
    _save(d / "ref_mask.nii.gz", data, _shifted(aff, (6.0, 0.0, 0.0)), np.uint8)


def _nan_voxels(d: Path) -> None:
    data, aff = _image(d / "sample_pet.nii.gz")
    data = data.astype(np.float32)
    data[5, 5, 5, 3] = np.nan
    data[6, 6, 6, 4] = np.inf
    _save(d / "sample_pet.nii.gz", data, aff)


_RESAMPLED = (
    "By design of the fit workflow (prepare_fit_data): labels and masks on "
    "another grid are resampled (nearest neighbour, in world mm) onto the PET "
    "grid, as MR-space atlases need; 'tacs' still requires labels on the PET "
    "grid. No warning is printed; the provenance records the inputs."
)

ACCEPTED = [
    Accepted("labels_other_affine", "fit", FIT_MAP, "", _RESAMPLED, _labels_moved),
    Accepted(
        "labels_other_shape",
        "fit --rois-only",
        ROIS_OUT,
        "",
        _RESAMPLED,
        _labels_smaller,
    ),
    Accepted(
        "ref_mask_other_grid",
        "fit",
        (
            P,
            "--ref-mask",
            "{d}/ref_mask.nii.gz",
            "--mask",
            BRAIN,
            "--out",
            "{d}/out/bp.nii.gz",
        ),
        "",
        _RESAMPLED,
        _ref_mask_moved,
    ),
    Accepted(
        "pet_nan_voxels",
        "fit",
        FIT_MAP,
        "NaN",
        "A few non-finite voxels are common after reconstruction; they are "
        "set to 0, excluded from fits and reported, instead of refusing the "
        "whole scan.",
        _nan_voxels,
    ),
    Accepted(
        "units_missing",
        "tacs",
        TACS,
        "assuming kBq/mL",
        "BIDS-PET requires Units, but converters often omit it; kBq/mL is "
        "the common unit of dynamic PET and the warning says how to make it "
        "explicit (or pass --units).",
        _sidecar(Units=_DROP),
    ),
    Accepted(
        "lut_missing_names",
        "tacs",
        TACS,
        "label_N",
        "Labels without a LUT row are still regions; they are named label_N "
        "and the warning lists them.",
        _write("sample_labels.tsv", "index\tname\n1\toccipital_ref\n"),
    ),
    Accepted(
        "sidecar_hash_mismatch",
        "reader",
        (BASE,),
        "does not describe",
        "The map itself is intact; its sidecar belongs to another write "
        "(interrupted or concurrent run). The reader shows the map without "
        "that provenance and tells the user to run the command again.",
        lambda d: _edit_json(d / "bp_baseline.json", ImageSHA256="0" * 64),
    ),
    Accepted(
        "stats_one_subject_left_out",
        "group stats",
        (
            "{d}",
            "--out",
            "{d}/st",
            "--test",
            "one-sample",
            "--n-perm",
            "0",
            "--atlas",
            "none",
        ),
        "left out sub-02",
        "With enough subjects left, a subject whose maps no longer match its "
        "manifest is left out and named (n is printed and recorded); the "
        "rest of the group is still valid. With fewer than 3 left it is an "
        "error.",
        _write("sub-02/sub-02_desc-delta_bpnd.nii.gz", b"x"),
        data="sim",
    ),
]


# ------------------------------------------------------------------ runner
@dataclass
class Outcome:
    """What a case did: exit (int or "MorError"/"ok"), stderr, file changes."""

    exit: int | str
    stderr: str
    stdout: str
    traceback: bool
    created: list[str]
    changed: list[str]
    seconds: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "error:" in line]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``: relative path -> SHA-256 / kind."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            path = Path(root, name)
            seen[str(path.relative_to(folder))] = (
                "symlink" if path.is_symlink() else "dir"
            )
        for name in files:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            try:
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                seen[rel] = "unreadable"
    return seen


def prepare(case, base: Path, folder: Path) -> Path:
    """Copy the inputs of a case into ``folder`` and break them."""
    kinds = {
        "study": [("study", "")],
        "cohort": [("cohort", "")],
        "cohort+maps": [("cohort", ""), ("maps", "maps")],
        "maps": [("maps", "")],
        "sim": [("sim", "")],
    }[case.data]
    for source, target in kinds:
        shutil.copytree(base / source, folder / target, dirs_exist_ok=True)
    case.setup(folder)
    return folder


def run_case(case, base: Path, folder: Path) -> Outcome:
    """Build a case in ``folder``, run it in-process, report what happened."""
    from napari_mor.cli import main

    prepare(case, base, folder)
    args = [a.replace("{d}", str(folder)) for a in case.args]
    before = _snapshot(folder)
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    traceback = False
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        if case.command == "reader":
            code = _run_reader(args[0], err)
            traceback = code == "traceback"
        else:
            try:
                code = main([*case.command.split()[:1], *_sub(case.command), *args])
            except SystemExit as exit_:  # argparse
                code = exit_.code
            except Exception as exc:  # what would reach the terminal
                code, traceback = 1, True
                print(f"Traceback (most recent call last): {exc!r}", file=err)
    seconds = time.perf_counter() - start
    for item in caught:  # what Python prints on stderr outside pytest
        err.write(f"{item.category.__name__}: {item.message}\n")
    after = _snapshot(folder)
    created = sorted(set(after) - set(before))
    changed = sorted(k for k in before if after.get(k) != before[k])
    return Outcome(
        code, err.getvalue(), out.getvalue(), traceback, created, changed, seconds
    )


def _sub(command: str) -> list[str]:
    """``fit --rois-only`` -> [] (the option is in args); ``group run`` -> [run]."""
    words = command.split()
    return words[1:] if words[0] in ("register", "group") else []


def _run_reader(path: str, err) -> str:
    """The napari reader as napari calls it: MorError is the designed outcome."""
    from napari_mor._napari import _reader

    shown = []
    original = _reader._show_warnings
    _reader._show_warnings = lambda caught: shown.extend(str(w.message) for w in caught)
    try:
        reader = _reader.napari_get_reader(path)
        if reader is None:
            print("reader: not recognised", file=err)
            return "None"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader(path)
    except MorError as exc:
        print(f"reader: error: {exc}", file=err)
        return "MorError"
    except Exception as exc:
        print(f"Traceback (most recent call last): {exc!r}", file=err)
        return "traceback"
    finally:
        _reader._show_warnings = original
    for message in shown:
        print(f"reader: warning: {message}", file=err)
    return "ok"


def _case_id(case) -> str:
    return f"{case.command.replace(' ', '-')}:{case.id}"


# ------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("bad_inputs_base"))


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 80
    assert len({_case_id(c) for c in CASES}) == len(CASES)
    commands = {c.command for c in CASES}
    for command in (
        "tacs",
        "fit",
        "fit --rois-only",
        "delta",
        "register motion",
        "register coreg",
        "register normalize",
        "register apply",
        "group simulate",
        "group run",
        "group stats",
        "demo",
        "reader",
    ):
        assert command in commands, command
    options = " ".join(" ".join(c.args) for c in CASES if c.command.startswith("fit"))
    for option in (
        "--window",
        "--challenge-pet",
        "--k2p",
        "--k2p-region",
        "--mask",
        "--ref-mask",
        "--ref-label",
        "--t-star",
        "--frames",
    ):
        assert option in options, option


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=_case_id(c), marks=c.marks) for c in CASES]
)
def test_bad_input_is_refused_cleanly(case, base, tmp_path):
    result = run_case(case, base, tmp_path / "case")
    assert not result.traceback, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if case.command == "reader":
        assert result.exit == "MorError", result.stderr
    else:
        assert result.exit == case.exit, (result.stdout, result.stderr)
    lines = result.error_lines
    assert len(lines) == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == lines[0], result.stderr
    assert case.expect.lower() in lines[0].lower(), lines[0]
    assert result.created == [], f"output left: {result.created}"
    assert result.changed == [], f"inputs changed: {result.changed}"


@pytest.mark.parametrize("case", ACCEPTED, ids=[a.id for a in ACCEPTED])
def test_accepted_inputs_warn_and_leave_inputs_alone(case, base, tmp_path):
    result = run_case(case, base, tmp_path / "case")
    assert not result.traceback, result.stderr
    assert result.exit in (0, "ok"), result.stderr
    assert case.warning.lower() in (result.stderr + result.stdout).lower()
    assert result.changed == [], f"inputs changed: {result.changed}"


SUBPROCESS = [
    "fit:t_star_negative",
    "tacs:sidecar_null",
    "group-stats:stats_one_corrupt_map",
    "register-coreg:coreg_out_json_is_pet_sidecar",
    "fit:header_huge_gz",
]


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("napari-mor")
    if script.is_file():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from napari_mor.cli import main; sys.exit(main())",
    ]


@pytest.mark.parametrize("name", SUBPROCESS)
def test_no_traceback_reaches_the_terminal(name, base, tmp_path):
    """The same cases through the installed command, as a user runs them."""
    case = next(c for c in CASES if _case_id(c) == name)
    folder = prepare(case, base, tmp_path / "case")
    before = _snapshot(folder)
    args = [a.replace("{d}", str(folder)) for a in case.args]
    done = subprocess.run(
        [*_cli(), *case.command.split()[:1], *_sub(case.command), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and case.expect.lower() in lines[0].lower(), done.stderr
    assert _snapshot(folder) == before


def test_doc_table_lists_exactly_these_cases():
    """docs/bad_inputs.md is generated from CASES (scripts/bad_inputs_table.py)."""
    text = DOC.read_text(encoding="utf-8")
    rows = [
        line.split("|")[1:4]
        for line in text.splitlines()
        if line.startswith("| `") and line.count("|") == 8
    ]
    listed = [(case.strip(" `"), command.strip(" `")) for case, command, _ in rows]
    expected = [(c.id, c.command) for c in CASES]
    expected += [(a.id, a.command) for a in ACCEPTED]
    assert listed == expected, "regenerate: python scripts/bad_inputs_table.py"


# ------------------------------------------------------------------ faults
def test_subject_failing_in_a_rerun_is_invalidated_and_left_out(base, tmp_path, capsys):
    """group run: 0 only when all succeed; a failed subject's maps are never used."""
    from napari_mor.cli import main
    from napari_mor.group.batch import load_cohort_maps

    cohort, maps = tmp_path / "cohort", tmp_path / "maps"
    shutil.copytree(base / "cohort", cohort)
    shutil.copytree(base / "maps", maps)
    pet = cohort / "sub-01" / "pet" / "sub-01_pet.nii.gz"
    good = pet.read_bytes()
    pet.write_bytes(good[: len(good) // 2])
    assert (
        main(["group", "run", str(cohort), "--out", str(maps), "--scheduler", "sync"])
        == 1
    )
    captured = capsys.readouterr()
    assert "1 of 3 subjects failed: sub-01" in captured.err
    assert "Traceback" not in captured.err
    folder = maps / "sub-01"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]
    assert json.loads((folder / "manifest.json").read_text())["status"] == "failed"
    with pytest.raises(MorError, match="sub-01: failed in the last"):
        load_cohort_maps(maps)
    # repaired: computed again, the others cached, exit 0
    pet.write_bytes(good)
    assert (
        main(["group", "run", str(cohort), "--out", str(maps), "--scheduler", "sync"])
        == 0
    )
    out = capsys.readouterr().out
    assert "sub-01: computed" in out and out.count(": cached") == 2
    assert load_cohort_maps(maps).subjects == ["sub-01", "sub-02", "sub-03"]


_CONCURRENT = """
import sys
from napari_mor.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_two_processes_writing_one_fit_output_leave_a_consistent_pair(base, tmp_path):
    """Both finish; the map on disk is the one its sidecar describes; no mix."""
    from napari_mor.io import file_sha256

    study = tmp_path / "study"
    shutil.copytree(base / "study", study)
    out = tmp_path / "out" / "bp.nii.gz"
    common = [
        "fit",
        str(study / "sample_pet.nii.gz"),
        "--labels",
        str(study / "sample_labels.nii.gz"),
        "--ref-label",
        "1",
    ]
    for _round in range(2):
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CONCURRENT,
                    *common,
                    "--model",
                    model,
                    "--out",
                    str(out),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for model in ("logan", "mrtm")
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        sidecar = json.loads(out.with_name("bp.json").read_text())
        assert sidecar["ImageSHA256"] == file_sha256(out)
        for extra in out.parent.glob("bp_*.nii.gz"):
            car = json.loads(extra.with_name(extra.name[:-7] + ".json").read_text())
            assert car["ImageSHA256"] == file_sha256(extra), extra.name
        assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")]


def test_rerun_with_another_model_removes_the_previous_companion_maps(base, tmp_path):
    """MRTM then Logan into one OUT: no OUT_k2p.nii.gz of MRTM is left beside."""
    from napari_mor.cli import main

    study = tmp_path / "study"
    shutil.copytree(base / "study", study)
    out = tmp_path / "out" / "bp.nii.gz"
    keep = tmp_path / "out" / "bp_notes.nii.gz"  # not written by fit: kept
    fit = [
        "fit",
        str(study / "sample_pet.nii.gz"),
        "--labels",
        str(study / "sample_labels.nii.gz"),
        "--ref-label",
        "1",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*fit, "--model", "mrtm", "--out", str(out)]) == 0
        _save(keep, np.zeros((2, 2, 2)), np.eye(4), np.float32)
        names = sorted(p.name for p in out.parent.iterdir())
        assert "bp_k2p.nii.gz" in names and "bp_R1.json" in names
        assert main([*fit, "--model", "logan", "--out", str(out)]) == 0
        assert sorted(p.name for p in out.parent.iterdir()) == [
            "bp.json",
            "bp.nii.gz",
            "bp_DVR.json",
            "bp_DVR.nii.gz",
            "bp_notes.nii.gz",
        ]
        # two windows: the single-condition maps go, the condition maps stay
        assert (
            main(
                [
                    *fit,
                    "--model",
                    "logan",
                    "--window",
                    "5",
                    "40",
                    "--window",
                    "45",
                    "90",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        names = sorted(p.name for p in out.parent.iterdir())
        assert "bp.nii.gz" not in names and "bp_DVR.nii.gz" not in names
        assert "bp_baseline.nii.gz" in names and "bp_challenge_DVR.json" in names
        # .nii into the same stem: the .nii.gz twins (sharing bp_*.json) go
        assert (
            main(
                [
                    *fit,
                    "--model",
                    "mrtm",
                    "--window",
                    "5",
                    "40",
                    "--window",
                    "45",
                    "90",
                    "--out",
                    str(out.with_name("bp.nii")),
                ]
            )
            == 0
        )
        names = sorted(p.name for p in out.parent.iterdir())
        assert not [n for n in names if n.endswith(".nii.gz") and n != keep.name]
        assert "bp_baseline_k2p.nii" in names and "bp_challenge_DVR.json" not in names
