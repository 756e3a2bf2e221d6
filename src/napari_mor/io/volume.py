"""3D images: MR (T1w), masks and label images with lookup tables."""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError, MorWarning
from napari_mor.io._nifti import (
    affine_of,
    check_sidecar_hash,
    load_image,
    read_data,
    strip_image_suffix,
)
from napari_mor.io.tables import write_rows_tsv

#: Largest label value a LabelImage (int32) holds.
_MAX_LABEL = np.iinfo(np.int32).max


@dataclass(frozen=True)
class Volume:
    """A 3D image on a voxel grid.

    Parameters
    ----------
    data : ndarray, shape (x, y, z), float32
        Voxel values in NIfTI voxel order.
    affine : ndarray, shape (4, 4)
        Voxel-to-world (mm) transform.
    path : Path or None
        Source file.
    """

    data: np.ndarray
    affine: np.ndarray
    path: Path | None = None

    @property
    def voxel_size_mm(self) -> np.ndarray:
        """Voxel edge lengths, mm."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


@dataclass(frozen=True)
class LabelImage:
    """An integer label image and its lookup table.

    Parameters
    ----------
    data : ndarray, shape (x, y, z), int32
        0 is background; other values index ``lut``.
    affine : ndarray, shape (4, 4)
        Voxel-to-world (mm) transform.
    lut : dict[int, str]
        Label value -> region name.
    colors : dict[int, tuple]
        Label value -> RGBA colour (0-1), where known.
    path : Path or None
        Source file.
    """

    data: np.ndarray
    affine: np.ndarray
    lut: dict[int, str] = field(default_factory=dict)
    colors: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    path: Path | None = None

    def name_of(self, label: int) -> str:
        """Region name of a label (``label_N`` when the LUT lacks it)."""
        return self.lut.get(int(label), f"label_{int(label)}")

    def label_of(self, name: str) -> int:
        """Label value of a region name (case-insensitive)."""
        for label, region in self.lut.items():
            if region.lower() == name.lower():
                return label
        raise MorError(
            f"No region named {name!r} in the lookup table; available: "
            f"{', '.join(sorted(self.lut.values())) or 'none'}."
        )

    @property
    def present_labels(self) -> np.ndarray:
        """Sorted non-zero label values present in the image."""
        values = np.unique(self.data)
        return values[values != 0]


def _read_3d(path: Path, dtype: type | None) -> tuple[np.ndarray, np.ndarray]:
    """Voxel array (a 4D file with one volume counts as 3D) and affine."""
    image = load_image(path)
    data = read_data(image, path, dtype=dtype)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise MorError(
            f"{path} has shape {data.shape}; a 3D image (x, y, z) was expected. "
            "For dynamic PET use the PET loader; for a single frame extract it first."
        )
    return data, affine_of(image, path)


def load_volume(path: str | Path, keep_nan: bool = False) -> Volume:
    """Load a 3D image (MR, mask, parametric map) as float32.

    A 4D file with one volume is accepted as 3D.

    Parameters
    ----------
    path : str or Path
    keep_nan : bool
        Keep NaN voxels (parametric maps mark voxels outside the mask or with a
        failed fit as NaN; reading them as 0 would fake a BP of 0). By default
        NaN/Inf become 0 with a warning (MR, masks).

    Raises
    ------
    MorError
        When the file is not 3D, missing or corrupt.

    Warns
    -----
    MorWarning
        For NaN/Inf voxels set to 0, and when the JSON sidecar beside the image
        records an ``ImageSHA256`` that does not match it (the sidecar then
        describes another map).
    """
    path = Path(path)
    data, affine = _read_3d(path, np.float32)
    nonfinite = np.isinf(data) if keep_nan else ~np.isfinite(data)
    if nonfinite.any():
        warnings.warn(
            f"{path}: {int(nonfinite.sum())} NaN/Inf voxels were set to 0.",
            MorWarning,
            stacklevel=2,
        )
        data = np.where(nonfinite, np.float32(0), data)
    check_sidecar_hash(path)
    return Volume(data=data, affine=affine, path=path)


def load_labels(path: str | Path, lut_path: str | Path | None = None) -> LabelImage:
    """Load an integer label image and its lookup table.

    Values are read in the file's own type, never through float32, so every
    label up to 2^31 - 1 stays exact.

    Parameters
    ----------
    path : str or Path
        Label NIfTI. Values must be whole numbers >= 0.
    lut_path : str or Path, optional
        LUT file (TSV ``index name [color]`` or FreeSurfer LUT). Defaults to a
        ``.tsv`` or ``.txt`` file beside the image with the same stem, if any.

    Raises
    ------
    MorError
        For fractional, negative or too large (> 2^31 - 1) values, and for a
        LUT that cannot be read.

    Warns
    -----
    MorWarning
        For NaN/Inf voxels (read as background), for labels missing from the
        LUT, for a float32 file with values above 2^24 (where float32 skips
        whole numbers) and for a sidecar whose ``ImageSHA256`` does not match.
    """
    path = Path(path)
    values, affine = _read_3d(path, None)
    values = _label_values(values, path)
    check_sidecar_hash(path)
    if lut_path is None:
        lut_path = find_lut_beside(path)
    lut, colors = read_lut(lut_path) if lut_path is not None else ({}, {})
    labels = LabelImage(
        data=values,
        affine=affine,
        lut=lut,
        colors=colors,
        path=path,
    )
    _check_lut_covers(labels, lut_path)
    return labels


def _label_values(values: np.ndarray, path: Path) -> np.ndarray:
    """Label values as int32, checked to be whole, >= 0 and <= 2^31 - 1."""
    if np.issubdtype(values.dtype, np.floating):
        nonfinite = ~np.isfinite(values)
        if nonfinite.any():
            warnings.warn(
                f"{path}: {int(nonfinite.sum())} NaN/Inf voxels were set to 0 "
                "(background).",
                MorWarning,
                stacklevel=3,
            )
            values = np.where(nonfinite, 0, values)
        whole = bool(np.all(np.equal(np.round(values), values)))
    else:
        whole = True
    if values.size == 0:
        return values.astype(np.int32)
    if not whole or values.min() < 0:
        raise MorError(
            f"{path} holds non-integer or negative values; a label image must hold "
            "whole numbers (0 = background). Round it or convert it to an integer "
            "NIfTI."
        )
    if values.max() > _MAX_LABEL:
        raise MorError(
            f"{path} holds label {values.max():.0f}, above the largest supported "
            f"label {_MAX_LABEL}; renumber the labels (and the LUT)."
        )
    if values.dtype == np.float32 and values.max() > 2**24:
        warnings.warn(
            f"{path} stores labels as float32 with values above 16777216, where "
            "float32 cannot hold every whole number: neighbouring labels may have "
            "merged when the file was written. Save label images as int32.",
            MorWarning,
            stacklevel=3,
        )
    return values.astype(np.int32)


def find_lut_beside(path: str | Path) -> Path | None:
    """The LUT beside an image (same stem, ``.tsv`` or ``.txt``), if any."""
    stem = strip_image_suffix(path)
    for suffix in (".tsv", ".txt"):
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def _check_lut_covers(labels: LabelImage, lut_path: str | Path | None) -> None:
    if not labels.lut:
        return
    missing = [int(v) for v in labels.present_labels if int(v) not in labels.lut]
    if missing:
        warnings.warn(
            f"{lut_path} has no names for labels {missing}; they are called "
            "label_N. Add rows for them to the LUT.",
            MorWarning,
            stacklevel=3,
        )


_HEX_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")


def read_lut(path: str | Path) -> tuple[dict[int, str], dict[int, tuple]]:
    """Read a lookup table.

    Two formats are accepted:

    * TSV with a header row holding ``index`` and ``name`` columns and optionally
      ``color`` (``#rrggbb``) (BIDS ``dseg.tsv`` style);
    * FreeSurfer ``ColorLUT`` text: ``index name R G B A`` per line, ``#``
      comments, white-space separated.

    Returns
    -------
    lut : dict[int, str]
        Label -> name.
    colors : dict[int, tuple]
        Label -> RGBA in 0-1.
    """
    path = Path(path)
    if not path.is_file():
        raise MorError(f"Lookup table {path} does not exist; check the path.")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [
        ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise MorError(f"Lookup table {path} is empty; add one row per label.")
    header = [h.strip().lower() for h in lines[0].split("\t")]
    if "index" in header and "name" in header:
        rows = _read_tsv_lut(path)
    elif not lines[0].split()[0].lstrip("+-").isdigit():
        raise MorError(
            f"{path}: the header row {lines[0].split()} lacks the columns 'index' "
            "and 'name'. A TSV lookup table needs a header 'index<TAB>name' "
            "(optionally 'color'); a FreeSurfer LUT has no header, just lines "
            "'index name R G B A'. Fix the LUT."
        )
    else:
        rows = [_parse_freesurfer_row(ln, path) for ln in lines]
    return _rows_to_lut(rows, path)


def _read_tsv_lut(path: Path) -> list[tuple[str, str, str | None]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(
            (ln for ln in handle if not ln.lstrip().startswith("#")), delimiter="\t"
        )
        fields = {f.strip().lower(): f for f in reader.fieldnames or []}
        color_key = fields.get("color")
        return [
            (
                row[fields["index"]],
                row[fields["name"]],
                row.get(color_key) if color_key else None,
            )
            for row in reader
        ]


def _parse_freesurfer_row(line: str, path: Path) -> tuple[str, str, str | None]:
    parts = line.split()
    if len(parts) < 2:
        raise MorError(
            f"{path}: line {line!r} is not 'index name [R G B A]'; fix the LUT."
        )
    color = None
    if len(parts) >= 5:
        try:
            rgb = [min(max(int(float(v)), 0), 255) for v in parts[2:5]]
        except ValueError as err:
            raise MorError(
                f"{path}: line {line!r} has a colour that is not three numbers "
                "0-255 (R G B); fix the LUT."
            ) from err
        color = "#" + "".join(f"{c:02x}" for c in rgb)
    return parts[0], parts[1], color


def _rows_to_lut(
    rows: list[tuple[str, str, str | None]], path: Path
) -> tuple[dict[int, str], dict[int, tuple]]:
    lut: dict[int, str] = {}
    colors: dict[int, tuple] = {}
    for index_text, name, color in rows:
        try:
            index = int(str(index_text).strip())
        except ValueError as err:
            raise MorError(
                f"{path}: label index {index_text!r} is not a whole number; "
                "fix the LUT."
            ) from err
        if name is None or not str(name).strip():
            raise MorError(
                f"{path}: label {index} has no name; every row needs an index and "
                "a name (index<TAB>name). Add the name or delete the row."
            )
        if index in lut:
            raise MorError(
                f"{path}: label {index} appears twice ({lut[index]!r} and {name!r}); "
                "each index must be listed once."
            )
        lut[index] = str(name).strip()
        if color and _HEX_COLOR.match(color.strip()):
            hex_digits = color.strip().lstrip("#")
            rgb = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
            colors[index] = (*rgb, 1.0)
    lut.pop(0, None)
    colors.pop(0, None)
    return lut, colors


def write_lut(
    lut: dict[int, str],
    path: str | Path,
    colors: dict[int, tuple] | None = None,
) -> Path:
    """Write a TSV lookup table (``index``, ``name``, ``color``), atomically.

    Parameters
    ----------
    lut : dict[int, str]
        Label -> name.
    path : str or Path
        Output ``.tsv``.
    colors : dict[int, tuple], optional
        Label -> RGBA in 0-1 (written as ``#rrggbb``).

    Returns
    -------
    Path
        The file written (by :func:`napari_mor.io.tables.write_rows_tsv`).
    """
    colors = colors or {}
    rows = []
    for index in sorted(lut):
        rgba = colors.get(index)
        color = None
        if rgba:
            color = "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])
        rows.append({"index": int(index), "name": lut[index], "color": color})
    return write_rows_tsv(rows, ["index", "name", "color"], path)
