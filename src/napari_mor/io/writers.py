"""NIfTI + JSON provenance writers: atomic, umask-honouring, crash-safe pairs.

Every file is written to a temporary file in the target folder (named
``.tmp-napari-mor-<host>-<pid>-<random><suffix>``, created with mode
``0666 & ~umask`` so results get the usual 0644), flushed to disk and renamed
onto the requested path with :func:`os.replace`. A failure removes the
temporary files, keeps any previous file at the path and raises
:class:`~napari_mor.MorError` naming the requested path (not the temporary
one) with a fix. Temporary files left by a killed process are removed by the
next write into the same folder (see :func:`_sweep_stale_temps`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import re
import secrets
import socket
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_mor._errors import MorError
from napari_mor.io._nifti import IMAGE_SHA256_KEY, file_sha256, sidecar_path_for

__all__ = [
    "IMAGE_SHA256_KEY",
    "file_sha256",
    "provenance_base",
    "write_json",
    "write_nifti",
]

_TMP_PREFIX = ".tmp-napari-mor-"
_TMP_NAME = re.compile(r"^\.tmp-napari-mor-([0-9a-f]{8})-(\d+)-[0-9a-f]+")
#: Temporary files of another host (shared folder) count as stale after a day.
_STALE_AFTER_S = 24 * 3600


def _host_tag() -> str:
    """Eight hex digits identifying this machine in temporary file names."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (True when unsure)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _sweep_stale_temps(folder: Path) -> None:
    """Remove napari-mor temporary files in ``folder`` that nobody will finish.

    A temporary file is stale when the process named in it (same host) no
    longer exists, or when it is older than a day (another host, or an unknown
    process). Only names with napari-mor's own prefix are touched; leftovers of
    other programs (or of napari-mor versions before 0.3, ``.tmp-XXXXXXXX``)
    are left alone. Errors are ignored: sweeping is housekeeping, not part of
    the write.
    """
    host, now = _host_tag(), time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _TMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            age_s = now - entry.stat(follow_symlinks=False).st_mtime
            dead = match[1] == host and not _pid_alive(int(match[2]))
            if dead or age_s > _STALE_AFTER_S:
                os.unlink(entry.path)
        except OSError:
            continue


def _temp_suffix(target: Path) -> str:
    """Suffix a writer may need to pick the format (``.nii.gz``, ``.tsv``, ...)."""
    if target.name.lower().endswith(".nii.gz"):
        return ".nii.gz"
    return target.suffix or ".tmp"


def _new_temp(target: Path) -> Path:
    """Create an empty temporary file beside ``target`` (mode 0666 & ~umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = (
            f"{_TMP_PREFIX}{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"
            f"{_temp_suffix(target)}"
        )
        tmp = target.with_name(name)
        try:
            os.close(os.open(tmp, flags, 0o666))
        except FileExistsError:
            continue
        return tmp


def _fsync(path: Path, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # folders cannot be opened on Windows; nothing to flush
            return
        raise
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EBADF):  # fs without fsync
            raise
    finally:
        os.close(fd)


class _Staging:
    """Temporary files beside their targets, renamed onto them by :meth:`commit`.

    Used as a context manager: on any error the temporary files are removed and
    an :class:`OSError` becomes a :class:`MorError` naming ``targets[0]``.
    """

    def __init__(self, *targets: Path) -> None:
        self.targets = [Path(t) for t in targets]
        self.temps: list[Path] = []
        self.renamed: list[Path] = []

    def __enter__(self) -> _Staging:
        try:
            for target in self.targets:
                _prepare_folder(target)
            for folder in dict.fromkeys(t.parent for t in self.targets):
                _sweep_stale_temps(folder)
            for target in self.targets:
                self.temps.append(_new_temp(target))
        except BaseException as err:
            self.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def commit(self, order: Sequence[int] | None = None) -> None:
        """Flush every temporary file, then rename them in ``order`` (indices)."""
        order = range(len(self.targets)) if order is None else order
        for tmp in self.temps:
            _fsync(tmp)
        for index in order:
            os.replace(self.temps[index], self.targets[index])
            self.renamed.append(self.targets[index])
        for folder in dict.fromkeys(t.parent for t in self.targets):
            # the files are in place; flushing the folder is best effort
            with contextlib.suppress(OSError):
                _fsync(folder, directory=True)

    def __exit__(self, exc_type, exc, traceback) -> None:
        for tmp in self.temps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(self.targets, exc, self.renamed) from exc


def _prepare_folder(target: Path) -> None:
    """Create the target's folder; refuse a target that is an existing folder."""
    if target.is_dir():
        raise MorError(
            f"Cannot write {target}: it is an existing folder. Give a file name "
            f"(e.g. {target / 'result'}{_temp_suffix(target)}) as the output."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        blocker = next(
            (p for p in (target.parent, *target.parent.parents) if p.is_file()),
            target.parent,
        )
        raise MorError(
            f"Cannot write {target}: {blocker} is a file, not a folder; check the "
            "path or choose another output path (--out)."
        ) from err


def _write_error(targets: list[Path], err: OSError, renamed: list[Path]) -> MorError:
    """A MorError for a failed write, naming the requested path and a fix."""
    path = targets[0]
    what = str(path)
    if len(targets) > 1:
        what += f" (and {', '.join(str(t) for t in targets[1:])})"
    folder = path.parent
    code = err.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        reason = (
            f"the disk holding {folder} is full (or your quota is used up); free "
            "some space or choose another output folder (--out)"
        )
    elif code == errno.EROFS:
        reason = (
            f"{folder} is on a read-only file system; choose a writable output "
            "folder (--out)"
        )
    elif code in (errno.EACCES, errno.EPERM):
        reason = (
            f"permission denied in {folder}; choose a folder you can write to "
            "(--out) or fix its permissions"
        )
    elif code == errno.ENAMETOOLONG:
        reason = "the file name is too long; choose a shorter output name (--out)"
    else:
        reason = (
            f"{err.strerror or err}; check {folder} and its permissions, or choose "
            "another output path (--out)"
        )
    if renamed:
        state = (
            f"{', '.join(p.name for p in renamed)} was already replaced but not "
            "the rest, so readers will warn about a mismatch: run the command "
            "again."
        )
    else:
        state = "Nothing was changed: any previous file there is intact."
    return MorError(f"Could not write {what}: {reason}. {state}")


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, then move the result onto ``path`` atomically.

    Parameters
    ----------
    path : Path
        Requested output. Its folder is created if needed.
    write : callable
        Writes the complete file to the temporary path it is given (same folder
        and suffix as ``path``, already created, empty).

    Raises
    ------
    MorError
        On any OS error (disk full, read-only folder, permission, ...), naming
        ``path``; the temporary file is removed and a previous ``path`` is kept.
    """
    with _Staging(Path(path)) as staging:
        write(staging.temps[0])
        staging.commit()


def provenance_base() -> dict:
    """Fields every written file records: software, version and time."""
    from napari_mor import __version__

    return {
        "Software": "napari-mor",
        "SoftwareVersion": __version__,
        "Created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _json_text(content: dict) -> str:
    return json.dumps(content, indent=2, default=_json_default) + "\n"


def write_json(path: str | Path, content: dict) -> Path:
    """Write a JSON file atomically (NumPy values converted to plain types).

    Parameters
    ----------
    path : str or Path
        Output ``.json``.
    content : dict
        JSON-serialisable content (NumPy arrays and scalars, paths allowed).

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    text = _json_text(content)
    _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_nifti(
    path: str | Path,
    data: np.ndarray,
    affine: np.ndarray,
    provenance: dict | None = None,
    dtype: type = np.float32,
) -> Path:
    """Write an image as NIfTI with its JSON sidecar, as one crash-safe pair.

    Parameters
    ----------
    path : str or Path
        Output ``.nii`` or ``.nii.gz``.
    data : ndarray, shape (x, y, z) or (x, y, z, t)
        Voxel values; for dynamic data pass time last.
    affine : ndarray, shape (4, 4)
        Voxel-to-world (mm) transform.
    provenance : dict, optional
        Extra sidecar fields (model, inputs, ...). Software, version, date and
        the image's SHA-256 (``ImageSHA256``) are always added. ``None`` and
        ``{}`` still write a sidecar.
    dtype : numpy dtype
        Stored type (float32 for maps, int16/int32 for labels).

    Returns
    -------
    Path
        The image path; the sidecar is beside it (``X.nii.gz`` -> ``X.json``).

    Raises
    ------
    MorError
        For a bad path or affine (nothing written), or when writing fails
        (disk full, read-only folder, ...; the previous pair is kept).

    Notes
    -----
    Order of operations: (1) the image is written to a temporary file in the
    target folder and hashed; (2) the sidecar, holding that hash as
    ``ImageSHA256``, is written to a second temporary file; (3) both are
    flushed to disk; (4) the sidecar is renamed onto ``X.json``; (5) the image
    onto ``X.nii.gz``; (6) the folder is flushed. Each rename is atomic, so a
    kill before (4) leaves the old pair untouched and after (5) the new pair.
    A kill between (4) and (5) leaves the new sidecar beside the old image:
    the sidecar's hash then names an image that is not there, which every
    napari-mor reader detects (:func:`~napari_mor.io._nifti.check_sidecar_hash`
    warns). Renaming the image first would instead leave the new image with
    the old sidecar, undetectable when that sidecar predates ``ImageSHA256``.
    """
    path = Path(path)
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        raise MorError(f"Output {path} must end in .nii or .nii.gz.")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise MorError(f"An affine must be 4x4; got shape {affine.shape}.")
    image = nib.Nifti1Image(np.asarray(data).astype(dtype, copy=False), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    sidecar = {**(provenance or {}), **provenance_base()}
    _json_text(sidecar)  # fail on unserialisable provenance before writing
    sidecar_path = sidecar_path_for(path)
    with _Staging(path, sidecar_path) as staging:
        tmp_image, tmp_sidecar = staging.temps
        nib.save(image, str(tmp_image))
        sidecar[IMAGE_SHA256_KEY] = file_sha256(tmp_image)
        tmp_sidecar.write_text(_json_text(sidecar), encoding="utf-8")
        staging.commit(order=(1, 0))
    return path
