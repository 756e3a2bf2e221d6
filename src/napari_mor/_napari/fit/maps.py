"""BP_ND map layers of the Kinetic fit dock: the worker's work, the layers, the files.

:func:`drain_map_fits` is what the dock's worker runs (the workflow's
:func:`~napari_mor.workflows.fit_maps.iter_fit_maps`, yielding its
:class:`~napari_mor.workflows.fit_maps.MapProgress`); :func:`add_map_layers`
turns the results into image layers on the GUI thread (affine, provenance);
:func:`save_map_layers` writes them as NIfTI + JSON sidecar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_mor._napari import _metadata as md
from napari_mor._napari._layers import bp_map_metadata, viewer_sources
from napari_mor.kinetics import MapResult
from napari_mor.workflows.fit_maps import MapPlan, iter_fit_maps

#: Upper contrast limit of a BP_ND layer: this percentile of its finite voxels.
_UPPER_PERCENTILE = 99.5


def drain_map_fits(plan: MapPlan, block_size: int | None):
    """Drain :func:`iter_fit_maps`, yielding its progress; returns the results."""
    return (yield from iter_fit_maps(plan, block_size=block_size))


def map_layer_name(condition: str, model: str) -> str:
    """``BP_ND <condition> [<model>]``."""
    return f"BP_ND {condition} [{model}]"


def add_map_layers(viewer, plan: MapPlan, results: dict[str, MapResult]) -> dict:
    """Add (or replace) one BP_ND image layer per condition; returns them.

    Layers carry the PET affine and :func:`~napari_mor._napari._layers.bp_map_metadata`
    (kind, condition, provenance); only the last condition's is visible.
    """
    layers = {}
    images = list(_bp_images(plan, results))
    for condition, bp, job, result in images:
        finite = bp[np.isfinite(bp)]
        upper = float(np.percentile(finite, _UPPER_PERCENTILE)) if finite.size else 1.0
        name = map_layer_name(condition, plan.request.model)
        if name in viewer.layers:
            viewer.layers.remove(name)
        layers[condition] = viewer.add_image(
            bp,
            name=name,
            affine=job.pet.affine,
            colormap="viridis",
            contrast_limits=(0.0, max(upper, 1e-3)),
            blending="translucent_no_depth",  # no depth test: tilted MR below
            metadata=bp_map_metadata(plan, condition, result),
            visible=condition == images[-1][0],
        )
    return layers


def _bp_images(plan: MapPlan, results: dict[str, MapResult]):
    """``(condition, BP_ND map, job, result)`` per map layer: one per condition,
    or the release model's BP_ND before (baseline) and after (challenge) the onset."""
    from napari_mor.defaults import RELEASE_MODEL

    for job in plan.jobs:
        result = results[job.condition]
        if plan.request.model == RELEASE_MODEL:
            yield "baseline", result.maps["bp_nd"], job, result
            yield "challenge", result.maps["bp_nd_challenge"], job, result
        else:
            yield job.condition, result.maps["bp_nd"], job, result


def save_map_layers(viewer, map_layers: dict, out_dir, stem: str) -> list[Path]:
    """Write each layer still in the viewer as ``OUT_DIR/STEM_<condition>.nii.gz``.

    The sidecar is the layer's provenance plus its name; the layer's metadata
    records the saved path (the Delta-BP dock then refers to the file).
    """
    from napari_mor.io.outputs import check_outputs
    from napari_mor.maps import write_map

    out_dir = Path(out_dir)
    layers = {c: layer for c, layer in map_layers.items() if layer in viewer.layers}
    paths = {c: out_dir / f"{stem}_{c}.nii.gz" for c in layers}
    own = {layer.metadata.get(md.SAVED_PATH) for layer in layers.values()}
    sources = {  # re-saving a map over its own earlier save is fine
        name: path for name, path in viewer_sources(viewer).items() if path not in own
    }
    check_outputs(sources, {f"{c} map": p for c, p in paths.items()})
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for condition, layer in layers.items():
        path = paths[condition]
        provenance = {**layer.metadata.get(md.PROVENANCE, {}), "LayerName": layer.name}
        data, affine = np.asarray(layer.data), layer.affine.affine_matrix
        written.append(write_map(path, data, affine, provenance))
        layer.metadata[md.SAVED_PATH] = str(path)
    return written
