"""Never overwrite an input, never report stale or half-written results (io level).

Output-path checks, crash-safe map + sidecar pairs (ImageSHA256), atomic
umask-honouring writers with clear errors, and strict sidecar / header checks
in the loaders. One test per MorError message.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_mor import MorError, MorWarning
from napari_mor.io import (
    DynamicPET,
    FrameTiming,
    _nifti,
    file_sha256,
    load_labels,
    load_pet,
    load_volume,
    read_lut,
    write_frames_tsv,
    write_json,
    write_lut,
    write_nifti,
    write_pet,
)
from napari_mor.io.outputs import check_outputs, companion_paths
from napari_mor.io.pet import unit_scale_to_kbq_ml
from napari_mor.io.tables import write_rows_tsv
from napari_mor.io.writers import IMAGE_SHA256_KEY, _atomic_write

TIMING = FrameTiming(np.array([0.0, 30, 60, 120]), np.array([30.0, 30, 60, 60]))


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def _pet_file(folder: Path, **sidecar_changes) -> Path:
    """A 4D NIfTI with a hand-written sidecar (changes applied as given)."""
    path = folder / "scan_pet.nii.gz"
    data = np.random.default_rng(0).uniform(1, 5, (4, 5, 6, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    sidecar = {**TIMING.to_dict(), "Units": "kBq/mL", **sidecar_changes}
    (folder / "scan_pet.json").write_text(json.dumps(sidecar))
    return path


def _touch(*paths: Path) -> None:
    for path in paths:
        path.write_text("x")


# --- check_outputs --------------------------------------------------------------------


def test_companions_of_an_image(tmp_path):
    assert companion_paths(tmp_path / "bp.nii.gz") == [
        tmp_path / "bp.json",
        tmp_path / "bp.tsv",
        tmp_path / "bp.txt",
    ]
    assert companion_paths(tmp_path / "bp_v1.2.nii", include_lut=False) == [
        tmp_path / "bp_v1.2.json"
    ]
    assert companion_paths(tmp_path / "rois.tsv") == []


def test_distinct_outputs_pass(tmp_path):
    pet = tmp_path / "pet.nii.gz"
    _touch(pet, tmp_path / "pet.json")
    check_outputs(
        {"PET": pet},
        {"--out": tmp_path / "bp.nii.gz", "extra": tmp_path / "bp_DVR.nii.gz"},
    )
    check_outputs([pet, None], [tmp_path / "out" / "tacs.tsv", None])


def test_output_equal_to_input_is_refused(tmp_path):
    pet = tmp_path / "pet.nii.gz"
    _touch(pet)
    with pytest.raises(MorError, match=r"pet\.nii\.gz is the input .*pet\.nii\.gz"):
        check_outputs([pet], [pet])
    with pytest.raises(MorError, match=r"choose another --out"):
        check_outputs({"PET": pet}, {"--out": tmp_path / "sub" / ".." / "pet.nii.gz"})


def test_nii_output_beside_nii_gz_input_would_replace_its_sidecar(tmp_path):
    pet = tmp_path / "pet.nii.gz"
    _touch(pet, tmp_path / "pet.json")
    with pytest.raises(
        MorError, match=r"would write pet\.json, which is the JSON sidecar of the input"
    ):
        check_outputs({"PET": pet}, {"--out": tmp_path / "pet.nii"})


def test_sidecar_of_input_is_protected_even_when_missing(tmp_path):
    """A new pet.json would change how the input loads (its frame timing)."""
    pet = tmp_path / "pet.nii.gz"
    _touch(pet)
    with pytest.raises(MorError, match="JSON sidecar of the input"):
        check_outputs([pet], [tmp_path / "pet.json"])


def test_output_that_is_a_symlink_to_an_input_is_refused(tmp_path):
    pet = tmp_path / "data" / "pet.nii.gz"
    pet.parent.mkdir()
    _touch(pet)
    link = tmp_path / "link.nii.gz"
    link.symlink_to(pet)
    with pytest.raises(MorError, match=r"link\.nii\.gz .*both resolve to"):
        check_outputs([pet], [link])
    folder_link = tmp_path / "data_link"
    folder_link.symlink_to(pet.parent)
    with pytest.raises(MorError, match="is the input"):
        check_outputs([pet], [folder_link / "pet.nii.gz"])


def test_two_outputs_that_are_one_file_are_refused(tmp_path):
    out = tmp_path / "d.nii.gz"
    with pytest.raises(
        MorError, match=r"Outputs .*d\.nii\.gz \(--out\) and .*--percent.*--percent"
    ):
        check_outputs([], {"--out": out, "--percent": out})


def test_outputs_sharing_a_sidecar_are_refused(tmp_path):
    with pytest.raises(MorError, match=r"would both write .*d\.json"):
        check_outputs(
            [], {"--out": tmp_path / "d.nii.gz", "--percent": tmp_path / "d.nii"}
        )


def test_output_sidecar_equal_to_another_outputs_file_is_refused(tmp_path):
    with pytest.raises(MorError, match=r"would both write .*bp\.json"):
        check_outputs([], [tmp_path / "bp.nii.gz", tmp_path / "bp.json"])


def test_lut_beside_a_label_input_is_protected(tmp_path):
    labels = tmp_path / "sample_labels.nii.gz"
    _touch(labels)
    write_lut({1: "occipital_ref", 7: "PAG"}, tmp_path / "sample_labels.tsv")
    with pytest.raises(MorError, match="lookup table of the input"):
        check_outputs({"--labels": labels}, {"--out": tmp_path / "sample_labels.tsv"})
    freesurfer = tmp_path / "aseg.nii.gz"
    _touch(freesurfer)
    (tmp_path / "aseg.txt").write_text("# LUT\n0 Unknown 0 0 0 0\n10 Thal 0 1 2 0\n")
    with pytest.raises(MorError, match="lookup table of the input"):
        check_outputs([freesurfer], [tmp_path / "aseg.txt"])
    # X.tsv beside an image that is no LUT (here a TAC table from an earlier
    # run) is an ordinary output name, so a re-run is not refused
    pet = tmp_path / "pet.nii.gz"
    _touch(pet)
    check_outputs([pet], [tmp_path / "pet.tsv"])
    (tmp_path / "pet.tsv").write_text("frame_start\tframe_end\tPAG\n0\t30\t1.5\n")
    check_outputs([pet], [tmp_path / "pet.tsv"])


def test_names_differing_only_in_case_are_one_file(tmp_path):
    pet = tmp_path / "pet.nii.gz"
    _touch(pet)
    with pytest.raises(MorError, match="differ only in case"):
        check_outputs([pet], [tmp_path / "PET.nii.gz"])


def test_output_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "out.tsv").mkdir()
    with pytest.raises(MorError, match="existing folder"):
        check_outputs([], {"--out": tmp_path / "out.tsv"})


# --- map + sidecar pairs --------------------------------------------------------------


def test_sidecar_records_the_hash_of_its_map(tmp_path):
    out = write_nifti(tmp_path / "bp.nii.gz", np.ones((3, 3, 3)), np.eye(4))
    sidecar = json.loads((tmp_path / "bp.json").read_text())
    assert sidecar[IMAGE_SHA256_KEY] == file_sha256(out)
    pet = DynamicPET(np.ones((4, 2, 2, 2), np.float32), np.eye(4), TIMING)
    pet_path = write_pet(tmp_path / "p_pet.nii", pet, {IMAGE_SHA256_KEY: "stale"})
    pet_sidecar = json.loads((tmp_path / "p_pet.json").read_text())
    assert pet_sidecar[IMAGE_SHA256_KEY] == file_sha256(pet_path)
    assert "ImageDecayCorrected" not in pet_sidecar  # unknown: left out, not null
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_pet(pet_path).decay_corrected is None


def test_dotted_stem_keeps_its_own_sidecar(tmp_path):
    write_nifti(tmp_path / "bp_v1.2.nii.gz", np.ones((2, 2, 2)), np.eye(4))
    write_nifti(tmp_path / "bp_v1.3.nii.gz", np.ones((2, 2, 2)), np.eye(4))
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "bp_v1.2.json",
        "bp_v1.3.json",
    ]


def test_mismatched_sidecar_hash_warns_in_every_loader(tmp_path):
    maps = tmp_path / "bp.nii.gz"
    write_nifti(maps, np.ones((3, 3, 3)), np.eye(4), {"Model": "logan"})
    write_nifti(tmp_path / "other.nii.gz", np.zeros((3, 3, 3)), np.eye(4))
    shutil.copy(tmp_path / "other.nii.gz", maps)  # the map changes, the sidecar not
    with pytest.warns(MorWarning, match=r"bp\.json does not describe .*ImageSHA256"):
        load_volume(maps)
    labels = tmp_path / "x_labels.nii.gz"
    write_nifti(labels, np.ones((3, 3, 3)), np.eye(4), dtype=np.int16)
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), np.eye(4)), str(labels))
    with pytest.warns(MorWarning, match="does not describe"):
        load_labels(labels)
    pet = DynamicPET(np.ones((4, 2, 2, 2), np.float32), np.eye(4), TIMING)
    pet_path = write_pet(tmp_path / "p_pet.nii.gz", pet)
    write_pet(tmp_path / "q_pet.nii.gz", pet, {"TracerName": "other"})
    data = np.full((2, 2, 2, 4), 2, np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(pet_path))
    with pytest.warns(MorWarning, match=r"p_pet\.json does not describe"):
        load_pet(pet_path)


def test_umask_is_honoured(tmp_path):
    old = os.umask(0o022)
    try:
        paths = [
            write_nifti(tmp_path / "bp.nii.gz", np.ones((2, 2, 2)), np.eye(4)),
            tmp_path / "bp.json",
            write_json(tmp_path / "summary.json", {"a": 1}),
            write_lut({1: "PAG"}, tmp_path / "lut.tsv"),
            write_frames_tsv(TIMING, tmp_path / "frames.tsv"),
            write_rows_tsv([{"a": 1.0}], ["a"], tmp_path / "rows.tsv"),
        ]
        assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in paths} == {"0o644"}
        os.umask(0o077)
        private = write_json(tmp_path / "private.json", {})
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_failed_write_removes_its_temp_file_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "rows.tsv"
    out.write_text("old\n")

    def broken(tmp: Path) -> None:
        tmp.write_text("half a tab")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError, match="crash while writing"):
        _atomic_write(out, broken)
    assert out.read_text() == "old\n"
    assert _temps(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.ENOSPC, "is full"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
        (errno.ENAMETOOLONG, "too long"),
        (errno.EIO, "Input/output error; check"),
    ],
)
def test_os_errors_name_the_requested_output_and_a_fix(tmp_path, code, message):
    out = tmp_path / "rois.tsv"

    def failing(tmp: Path) -> None:
        raise OSError(code, os.strerror(code), str(tmp))

    with pytest.raises(MorError, match=message) as caught:
        _atomic_write(out, failing)
    text = str(caught.value)
    assert f"Could not write {out}" in text and ".tmp-" not in text
    assert "Nothing was changed" in text
    assert _temps(tmp_path) == []


def test_output_that_is_an_existing_folder_fails_before_writing(tmp_path):
    (tmp_path / "bp.nii.gz").mkdir()
    with pytest.raises(MorError, match=r"bp\.nii\.gz: it is an existing folder"):
        write_nifti(tmp_path / "bp.nii.gz", np.ones((2, 2, 2)), np.eye(4))
    assert _temps(tmp_path) == []


def test_output_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(MorError, match=r"file is a file, not a folder"):
        write_json(tmp_path / "file" / "deep" / "bp.json", {})


def test_unserialisable_provenance_writes_nothing(tmp_path):
    with pytest.raises(TypeError, match="not JSON serialisable"):
        write_nifti(tmp_path / "bp.nii.gz", np.ones((2, 2, 2)), np.eye(4), {"x": {1}})
    assert list(tmp_path.iterdir()) == []


def _run_child(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_kill_between_the_two_renames_is_detected_and_repaired(tmp_path):
    """The sidecar is renamed first; a crash right after it leaves a new sidecar
    beside the old map, which the readers detect by the hash."""
    out = tmp_path / "bp.nii.gz"
    write_nifti(out, np.zeros((4, 4, 4)), np.eye(4), {"Model": "logan"})
    old_map = file_sha256(out)
    child = _run_child(
        """
        import os, sys
        import numpy as np
        from napari_mor.io import write_nifti
        real_replace = os.replace
        def replace_then_die(src, dst):
            real_replace(src, dst)
            os._exit(137)  # like SIGKILL: no cleanup runs
        os.replace = replace_then_die
        write_nifti(sys.argv[1], np.ones((4, 4, 4)), np.eye(4), {"Model": "mrtm"})
        """,
        str(out),
    )
    assert child.wait(timeout=60) == 137
    sidecar = json.loads((tmp_path / "bp.json").read_text())
    assert sidecar["Model"] == "mrtm" and file_sha256(out) == old_map
    assert len(_temps(tmp_path)) == 1  # the new map's temporary file
    with pytest.warns(MorWarning, match="does not describe"):
        load_volume(out)
    write_nifti(out, np.ones((4, 4, 4)), np.eye(4), {"Model": "mrtm"})
    assert _temps(tmp_path) == []  # the dead writer's temp file was swept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_volume(out)


def test_stale_temps_are_swept_only_when_their_writer_is_gone(tmp_path):
    from napari_mor.io.writers import _host_tag

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(done.stdout)
    host = _host_tag()
    dead = tmp_path / f".tmp-napari-mor-{host}-{dead_pid}-0badc0de.nii.gz"
    alive = tmp_path / f".tmp-napari-mor-{host}-{os.getpid()}-0badc0de.json"
    foreign = tmp_path / ".tmp-abcdefgh.json"  # not ours: never touched
    _touch(dead, alive, foreign)
    write_json(tmp_path / "x.json", {})
    assert _temps(tmp_path) == sorted([alive.name, foreign.name])


_KILL_CHILD = """
    import sys
    import numpy as np
    from napari_mor.io import write_nifti
    rng = np.random.default_rng(0)
    maps = [rng.random((64, 64, 48), dtype=np.float32) for _ in range(2)]
    print("ready", flush=True)
    i = 0
    while True:
        write_nifti(sys.argv[1], maps[i % 2], np.eye(4), {"Content": i % 2})
        i += 1
"""


def test_sigkill_at_random_moments_never_leaves_an_undetected_mix(tmp_path):
    """A writer alternating two maps is SIGKILLed at random moments: the pair on
    disk is always whole and either consistent (hash matches) or, if the kill
    fell between the two renames, detected by the reader; stale temporary files
    go with the next successful write."""
    out = tmp_path / "bp.nii.gz"
    write_nifti(out, np.zeros((64, 64, 48)), np.eye(4), {"Content": "initial"})
    rng = random.Random(1)
    states, contents, interrupted = [], set(), 0
    for _ in range(6):
        child = _run_child(_KILL_CHILD, str(out))
        assert child.stdout.readline().strip() == "ready"
        try:
            child.wait(timeout=rng.uniform(0.0, 0.6))
        except subprocess.TimeoutExpired:
            child.kill()
        child.wait()
        interrupted += bool(_temps(tmp_path))  # killed in the middle of a write
        sidecar = json.loads((tmp_path / "bp.json").read_text())  # always whole
        contents.add(sidecar["Content"])
        image = nib.load(str(out))
        assert image.get_fdata().shape == (64, 64, 48)  # always a complete map
        if sidecar[IMAGE_SHA256_KEY] == file_sha256(out):
            states.append("pair")
        else:  # killed between the two renames: detected, never silent
            with pytest.warns(MorWarning, match="does not describe"):
                load_volume(out)
            states.append("detected")
    assert "pair" in states and interrupted >= 1 and len(contents) > 1
    write_nifti(out, np.zeros((64, 64, 48)), np.eye(4))
    assert _temps(tmp_path) == []


# --- full and read-only file systems (real tmpfs) -------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 512 KiB tmpfs (root only); skipped where mounting is not allowed."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: the disk-full test needs a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({done.stderr.strip()}); needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_keeps_the_previous_pair_and_names_the_output(small_tmpfs):
    out = small_tmpfs / "bp.nii.gz"
    write_nifti(out, np.ones((4, 4, 4)), np.eye(4), {"Model": "logan"})
    before = {p.name: file_sha256(p) for p in (out, small_tmpfs / "bp.json")}
    filler = os.open(small_tmpfs / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(filler, b"\0" * 4096)
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(filler)
    big = np.random.default_rng(0).random((64, 64, 16), dtype=np.float32)
    with pytest.raises(MorError, match=rf"Could not write {out} .*is full") as caught:
        write_nifti(out, big, np.eye(4), {"Model": "mrtm"})
    assert ".tmp-" not in str(caught.value)
    assert {p.name: file_sha256(p) for p in (out, small_tmpfs / "bp.json")} == before
    assert _temps(small_tmpfs) == []


def test_read_only_folder_names_the_output(small_tmpfs):
    out = small_tmpfs / "rois.tsv"
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    with pytest.raises(MorError, match=rf"Could not write {out}: .*read-only"):
        write_rows_tsv([{"a": 1}], ["a"], out)


# --- strict sidecars ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("false", r'ImageDecayCorrected is the string "false".*: false\)'),
        (0, r"ImageDecayCorrected is the number 0.*: false\)"),
        (None, r"ImageDecayCorrected is null; it must be true or false"),
    ],
)
def test_decay_corrected_must_be_a_json_boolean(tmp_path, value, message):
    with pytest.raises(MorError, match=message):
        load_pet(_pet_file(tmp_path, ImageDecayCorrected=value))


def test_other_bids_booleans_are_checked(tmp_path):
    with pytest.raises(MorError, match=r'PlasmaAvail is the string "yes".*boolean'):
        load_pet(_pet_file(tmp_path, PlasmaAvail="yes"))


def test_decay_status_is_read_as_a_boolean(tmp_path):
    assert load_pet(_pet_file(tmp_path, ImageDecayCorrected=True)).decay_corrected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"FrameTimesStart": ["0", "30", "60", "120"]},
            r"FrameTimesStart\[0\] is the string",
        ),
        ({"FrameDuration": [30, 30, None, 60]}, r"FrameDuration\[2\] is the null"),
        ({"FrameDuration": [30, True, 60, 60]}, r"FrameDuration\[1\] is the boolean"),
        ({"FrameTimesStart": None}, "FrameTimesStart is null"),
        ({"FrameTimesStart": 0}, "must be a list of numbers"),
        ({"InjectionStart": None}, "InjectionStart is null"),
        ({"InjectionStart": "60"}, "InjectionStart '60' is not a number"),
    ],
)
def test_frame_times_must_be_json_numbers(tmp_path, changes, message):
    with pytest.raises(MorError, match=message):
        load_pet(_pet_file(tmp_path, **changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Units": 1000}, r"Units is the number 1000, but it must be a string"),
        ({"Units": None}, "Units is null"),
        ({"TracerRadionuclide": 11}, "TracerRadionuclide is the number 11"),
    ],
)
def test_string_fields_must_be_strings(tmp_path, changes, message):
    with pytest.raises(MorError, match=message):
        load_pet(_pet_file(tmp_path, **changes))


def test_unit_given_as_a_number_is_a_mor_error():
    with pytest.raises(MorError, match="activity unit must be a string"):
        unit_scale_to_kbq_ml(1000, "--units")


@pytest.mark.parametrize(("text", "kind"), [("null", "null"), ("[1, 2]", "array")])
def test_sidecar_must_be_a_json_object(tmp_path, text, kind):
    path = _pet_file(tmp_path)
    (tmp_path / "scan_pet.json").write_text(text)
    with pytest.raises(MorError, match=f"holds a JSON {kind}, not an object"):
        load_pet(path)


# --- headers that lie about the data --------------------------------------------------


def _lying_nii(path: Path, shape: tuple[int, ...]) -> Path:
    """A tiny single-file NIfTI whose header claims ``shape``."""
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), str(path))
    raw = bytearray(path.read_bytes())
    raw[40:56] = struct.pack("<8h", len(shape), *shape, *[1] * (7 - len(shape)))
    path.write_bytes(bytes(raw))
    return path


def test_header_claiming_more_data_than_the_file_holds(tmp_path):
    path = _lying_nii(tmp_path / "big_pet.nii", (4000, 4000, 4000, 28))
    with pytest.raises(
        MorError, match=r"4000x4000x4000x28 .*file holds only \d+ bytes"
    ):
        load_volume(path)


def test_gzip_header_claiming_impossible_data(tmp_path):
    raw = _lying_nii(tmp_path / "big.nii", (2000, 2000, 2000, 28))
    packed = tmp_path / "big_pet.nii.gz"
    packed.write_bytes(gzip.compress(raw.read_bytes()))
    with pytest.raises(MorError, match="far more than gzip can compress"):
        load_volume(packed)


def test_data_larger_than_free_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = write_nifti(tmp_path / "mr.nii.gz", np.ones((8, 8, 8)), np.eye(4))
    monkeypatch.setattr(_nifti, "_available_memory_bytes", lambda: 1024)
    with pytest.raises(MorError, match=r"needs about 0\.0 GiB of memory but only"):
        load_volume(path)


def test_invalid_vox_offset_is_an_error_not_shifted_data(tmp_path):
    path = tmp_path / "mr.nii"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), str(path))
    raw = bytearray(path.read_bytes())
    raw[108:112] = struct.pack("<f", 0.0)
    path.write_bytes(bytes(raw))
    with pytest.raises(MorError, match=r"vox_offset is 0.*from byte 352"):
        load_volume(path)


# --- labels and LUTs ------------------------------------------------------------------


def test_labels_above_2_pow_24_stay_exact(tmp_path):
    data = np.zeros((3, 3, 3), np.int32)
    data[0, 0, 0], data[1, 1, 1] = 2**24, 2**24 + 1
    path = tmp_path / "big_labels.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    labels = load_labels(path)
    assert labels.present_labels.tolist() == [2**24, 2**24 + 1]
    assert labels.data.dtype == np.int32


def test_labels_above_int32_are_refused(tmp_path):
    data = np.zeros((2, 2, 2), np.int64)
    data[0, 0, 0] = 2**31
    path = tmp_path / "huge_labels.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4), dtype=np.int64), str(path))
    with pytest.raises(MorError, match="above the largest supported label"):
        load_labels(path)


def test_float32_labels_above_2_pow_24_warn(tmp_path):
    data = np.zeros((2, 2, 2), np.float32)
    data[0, 0, 0] = 2**25
    path = tmp_path / "f_labels.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    with pytest.warns(MorWarning, match="float32 cannot hold every whole number"):
        assert load_labels(path).present_labels.tolist() == [2**25]


def test_lut_row_without_a_name(tmp_path):
    lut = tmp_path / "lut.tsv"
    lut.write_text("index\tname\n1\n2\tPAG\n")
    with pytest.raises(MorError, match="label 1 has no name"):
        read_lut(lut)


def test_lut_without_index_and_name_columns(tmp_path):
    lut = tmp_path / "lut.tsv"
    lut.write_text("id\tlabel_name\n1\tPAG\n")
    with pytest.raises(MorError, match="lacks the columns 'index' and 'name'"):
        read_lut(lut)


def test_freesurfer_lut_with_a_bad_colour(tmp_path):
    lut = tmp_path / "lut.txt"
    lut.write_text("10 Left-Thalamus red 118 14 0\n")
    with pytest.raises(MorError, match="colour that is not three numbers"):
        read_lut(lut)
