"""BIDS-PET derivatives (BEP023 draft): the names and keys of kinetic outputs.

Parametric maps are
``<source>_model-<MODEL>_meas-<PARAM>[_desc-<CONDITION>]_mimap.nii.gz`` and
regional results ``<source>_model-<MODEL>_kinpar.tsv``, in
``DIR/sub-<label>[/ses-<label>]/pet/``, where ``<source>`` is the PET file's
name without ``_pet.nii[.gz]`` (``sub-01_ses-baseline_trc-CFN``). Each JSON
sidecar carries ``ModelName``, ``ReferenceRegion``, ``SoftwareName``,
``SoftwareVersion`` and ``CommandLine`` beside napari-mor's own provenance, and
``DIR/dataset_description.json`` names napari-mor under ``GeneratedBy``.

Conditions of windowed fits or two scans are ``desc-baseline`` and
``desc-challenge``; delta maps are ``meas-deltaBPND`` and ``meas-pctdeltaBPND``
(no ``desc``): see :data:`MEAS_LABELS`.
"""

from __future__ import annotations

import re
from pathlib import Path

from napari_mor._errors import MorError

__all__ = [
    "MEAS_LABELS",
    "MODEL_LABELS",
    "bids_map_name",
    "bids_sidecar_fields",
    "derivative_folder",
    "kinpar_path",
    "parse_bids_map_name",
    "source_stem",
    "write_dataset_description",
]

#: napari-mor model -> BEP023 ``model-`` label (letters and digits only).
MODEL_LABELS = {
    "logan": "Logan",
    "mrtm": "MRTM",
    "mrtm2": "MRTM2",
    "srtm": "SRTM",
    "srtm2": "SRTM2",
    "srtm-bf": "SRTMBF",
    "ratio": "Ratio",
    "lpntpet": "lpntPET",
}

#: Map quantity -> BEP023 ``meas-`` label.
MEAS_LABELS = {
    "bp_nd": "BPND",
    "r1": "R1",
    "k2_per_min": "k2",
    "k2p_per_min": "k2prime",
    "dvr": "DVR",
    "bp_nd_challenge": "BPNDchallenge",
    "pct_delta_bp_nd": "pctdeltaBPND",
    "delta_bp_nd": "deltaBPND",
    "onset_min": "onset",
    "peak_min": "peak",
    "p_release": "prelease",
}

_PET_SUFFIX = re.compile(r"_pet\.nii(\.gz)?$", re.IGNORECASE)
_MAP_NAME = re.compile(
    r"^(?P<stem>sub-[A-Za-z0-9]+(?:_[a-z]+-[A-Za-z0-9]+)*?)_model-(?P<model>[A-Za-z0-9]+)"
    r"_meas-(?P<meas>[A-Za-z0-9]+)(?:_desc-(?P<desc>[A-Za-z0-9]+))?_mimap\.nii(\.gz)?$"
)


def source_stem(pet_path: str | Path) -> str:
    """The BIDS entities of a PET file: ``sub-01_ses-b`` of ``sub-01_ses-b_pet.nii.gz``.

    Raises
    ------
    MorError
        For a file that is not named ``sub-<label>[_...]_pet.nii[.gz]``.
    """
    name = Path(pet_path).name
    if not (name.startswith("sub-") and _PET_SUFFIX.search(name)):
        raise MorError(
            f"{name} is not a BIDS PET name (sub-<label>[_ses-<label>]..._pet.nii.gz); "
            "BIDS derivatives (--bids-out) need one. Rename the file or use --out."
        )
    return _PET_SUFFIX.sub("", name)


def derivative_folder(root: str | Path, stem: str) -> Path:
    """``ROOT/sub-<label>[/ses-<label>]/pet`` of a source stem."""
    entities = dict(part.split("-", 1) for part in stem.split("_") if "-" in part)
    folder = Path(root) / f"sub-{entities['sub']}"
    if "ses" in entities:
        folder = folder / f"ses-{entities['ses']}"
    return folder / "pet"


def bids_map_name(
    stem: str, model: str, quantity: str, condition: str | None = None
) -> str:
    """``<stem>_model-<MODEL>_meas-<PARAM>[_desc-<condition>]_mimap.nii.gz``."""
    name = f"{stem}_model-{MODEL_LABELS[model]}_meas-{MEAS_LABELS[quantity]}"
    if condition is not None:
        name += f"_desc-{re.sub(r'[^A-Za-z0-9]', '', condition)}"
    return name + "_mimap.nii.gz"


def parse_bids_map_name(path: str | Path) -> dict | None:
    """``{"stem", "model", "meas", "desc"}`` of a BEP023 map name, or None."""
    match = _MAP_NAME.match(Path(path).name)
    return None if match is None else match.groupdict()


def kinpar_path(root: str | Path, stem: str, model: str) -> Path:
    """``ROOT/sub-../pet/<stem>_model-<MODEL>_kinpar.tsv``."""
    folder = derivative_folder(root, stem)
    return folder / f"{stem}_model-{MODEL_LABELS[model]}_kinpar.tsv"


def bids_sidecar_fields(model: str, reference: str, command_line: str) -> dict:
    """The BEP023 keys of a kinetic output's sidecar."""
    from napari_mor import __version__

    return {
        "ModelName": MODEL_LABELS[model],
        "ReferenceRegion": reference,
        "SoftwareName": "napari-mor",
        "SoftwareVersion": __version__,
        "CommandLine": command_line,
    }


def write_dataset_description(root: str | Path) -> Path:
    """Write ``ROOT/dataset_description.json`` (derivative, GeneratedBy napari-mor).

    An existing file is kept; napari-mor is added to its ``GeneratedBy`` when
    missing.
    """
    import json

    from napari_mor import __version__
    from napari_mor.io.writers import write_json

    path = Path(root) / "dataset_description.json"
    generated = {"Name": "napari-mor", "Version": __version__}
    if path.is_file():
        content = json.loads(path.read_text(encoding="utf-8"))
        by = content.get("GeneratedBy") or []
        if any(entry.get("Name") == "napari-mor" for entry in by):
            return path
        content["GeneratedBy"] = [*by, generated]
    else:
        content = {
            "Name": "napari-mor kinetic modelling derivatives",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [generated],
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, content)
