"""3D images: MR (T1w), masks and label images with lookup tables."""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError, MorWarning
from napari_mor.io._nifti import affine_of, load_image, read_data, strip_image_suffix


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
    """
    path = Path(path)
    image = load_image(path)
    data = read_data(image, path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise MorError(
            f"{path} has shape {data.shape}; a 3D image (x, y, z) was expected. "
            "For dynamic PET use the PET loader; for a single frame extract it first."
        )
    nonfinite = np.isinf(data) if keep_nan else ~np.isfinite(data)
    if nonfinite.any():
        warnings.warn(
            f"{path}: {int(nonfinite.sum())} NaN/Inf voxels were set to 0.",
            MorWarning,
            stacklevel=2,
        )
        data = np.where(nonfinite, np.float32(0), data)
    return Volume(data=data, affine=affine_of(image, path), path=path)


def load_labels(path: str | Path, lut_path: str | Path | None = None) -> LabelImage:
    """Load an integer label image and its lookup table.

    Parameters
    ----------
    path : str or Path
        Label NIfTI. Values must be whole numbers >= 0.
    lut_path : str or Path, optional
        LUT file (TSV ``index name [color]`` or FreeSurfer LUT). Defaults to a
        ``.tsv`` or ``.txt`` file beside the image with the same stem, if any.
    """
    path = Path(path)
    volume = load_volume(path)
    values = volume.data
    if not np.all(np.equal(np.round(values), values)) or values.min() < 0:
        raise MorError(
            f"{path} holds non-integer or negative values; a label image must hold "
            "whole numbers (0 = background). Round it or convert it to an integer "
            "NIfTI."
        )
    if lut_path is None:
        lut_path = find_lut_beside(path)
    lut, colors = read_lut(lut_path) if lut_path is not None else ({}, {})
    labels = LabelImage(
        data=values.astype(np.int32),
        affine=volume.affine,
        lut=lut,
        colors=colors,
        path=path,
    )
    _check_lut_covers(labels, lut_path)
    return labels


def find_lut_beside(path: str | Path) -> Path | None:
    """The LUT beside an image (same stem, ``.tsv`` or ``.txt``), if any."""
    stem = strip_image_suffix(path)
    for suffix in (".tsv", ".txt"):
        candidate = stem.with_suffix(suffix)
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
        rgb = [int(float(v)) for v in parts[2:5]]
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
    """Write a TSV lookup table (``index``, ``name``, ``color``)."""
    path = Path(path)
    colors = colors or {}
    lines = ["index\tname\tcolor"]
    for index in sorted(lut):
        rgba = colors.get(index)
        color = "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3]) if rgba else ""
        lines.append(f"{index}\t{lut[index]}\t{color}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
