"""npe2 writers: image and labels layers to NIfTI with the layer affine + JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_mor.io.writers import write_nifti


def _affine_from_meta(meta: dict, ndim: int) -> np.ndarray:
    affine = meta.get("affine")
    matrix = np.eye(ndim + 1) if affine is None else np.asarray(affine, dtype=float)
    if hasattr(affine, "affine_matrix"):
        matrix = np.asarray(affine.affine_matrix, dtype=float)
    return matrix[-4:, -4:]


def _nifti_path(path: str) -> Path:
    path = Path(path)
    if not str(path).lower().endswith((".nii", ".nii.gz")):
        path = path.with_name(path.name + ".nii.gz")
    return path


def write_image_layer(path: str, data, meta: dict) -> list[str]:
    """Write an Image layer as NIfTI float32 on its grid (4D PET: time last)."""
    metadata = dict(meta.get("metadata") or {})
    # A thresholded display (Delta-BP dock) saves the full map, not the holes.
    array = np.asarray(metadata.get("unthresholded", data))
    affine = _affine_from_meta(meta, array.ndim)
    provenance = {
        "LayerName": meta.get("name"),
        **_plain(metadata),
        **_bids_keys(metadata),
    }
    if array.ndim == 4:
        array = np.moveaxis(array, 0, 3)
        if "frame_start_s" in metadata:
            provenance["FrameTimesStart"] = list(metadata["frame_start_s"])
            provenance["FrameDuration"] = list(metadata["frame_duration_s"])
            provenance["Units"] = metadata.get("units", "kBq/mL")
    out = _nifti_path(path)
    _refuse_own_source(metadata, {"image": out})
    out = write_nifti(out, array, affine, provenance)
    return [str(out)]


def write_labels_layer(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer as integer NIfTI plus its LUT (TSV) when known."""
    from napari_mor.io._nifti import strip_image_suffix
    from napari_mor.io.volume import write_lut

    array = np.asarray(data)
    out = _nifti_path(path)
    lut_path = strip_image_suffix(out).with_suffix(".tsv")
    _refuse_own_source(meta.get("metadata") or {}, {"labels": out, "LUT": lut_path})
    out = write_nifti(
        out,
        array,
        _affine_from_meta(meta, array.ndim),
        {"LayerName": meta.get("name")},
        np.int32,
    )
    lut = (meta.get("metadata") or {}).get("lut")
    if lut:
        write_lut({int(k): v for k, v in lut.items()}, lut_path)
    return [str(out)]


def _refuse_own_source(metadata: dict, outputs: dict) -> None:
    """Never write a layer (or its sidecar / LUT) onto the file it was read from."""
    from napari_mor.io.outputs import check_outputs

    source = metadata.get("source_path")
    if source:
        check_outputs({"the layer's source file": source}, outputs)


def _bids_keys(metadata: dict) -> dict:
    """BEP023 keys (ModelName, ReferenceRegion, SoftwareName/Version, CommandLine)
    of a kinetic map layer, from its provenance; nothing for other layers."""
    from napari_mor.io.bids_derivatives import MODEL_LABELS, bids_sidecar_fields

    provenance = metadata.get("provenance")
    if not isinstance(provenance, dict) or provenance.get("Model") not in MODEL_LABELS:
        return {}
    return bids_sidecar_fields(
        provenance["Model"],
        str(provenance.get("ReferenceRegion", "")),
        "napari-mor (napari: File > Save Selected Layers)",
    )


def _plain(metadata: dict) -> dict:
    """Metadata entries that serialise to JSON."""
    plain = {}
    for key, value in metadata.items():
        if isinstance(value, str | int | float | bool | list | dict) or value is None:
            plain[key] = value
    return plain
