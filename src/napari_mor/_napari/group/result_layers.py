"""Layers of a group result: template, thresholded t maps, cluster labels."""

from __future__ import annotations

import numpy as np

from napari_mor._napari import _metadata as md


def add_group_layers(viewer, output) -> list:
    """Add the template (when given), ``t +`` / ``t -`` and the clusters.

    The t maps are shown where ``|t|`` passes the cluster-forming threshold
    (on the side(s) the tail tests), with the result's affine; every layer
    carries the analysis settings and the threshold in its metadata.

    Parameters
    ----------
    viewer : napari.Viewer
    output : napari_mor._napari.group._work.GroupOutput

    Returns
    -------
    list of napari layers
        Those added.
    """
    result = output.result
    s = result.settings
    added = []
    template = output.template
    if template is not None and output.template_name not in viewer.layers:
        added.append(
            viewer.add_image(
                template.data,
                affine=template.affine,
                name=output.template_name,
                colormap="gray",
            )
        )
    thr = float(s["t_threshold"])
    t = np.nan_to_num(result.maps["t"], nan=0.0)
    meta = {md.KIND: md.KIND_GROUP_T, md.GROUP_SETTINGS: s, md.THRESHOLD: thr}
    for sign, cmap in ((1, "red"), (-1, "blue")):
        wrong_side = (s["tail"] == "greater" and sign < 0) or (
            s["tail"] == "less" and sign > 0
        )
        if wrong_side:
            continue
        shown = np.where(sign * t >= thr, sign * t, 0.0).astype(np.float32)
        top = max(float(shown.max()), thr + 1e-3)
        added.append(
            viewer.add_image(
                shown,
                affine=result.affine,
                name=f"t {'+' if sign > 0 else '-'} (p<{s['p_voxel']})",
                colormap=cmap,
                blending="additive",
                contrast_limits=(thr, top),
                metadata=dict(meta),
            )
        )
    added.append(
        viewer.add_labels(
            result.maps["clusters"].astype(np.int32),
            affine=result.affine,
            name="clusters",
            opacity=0.3,
            metadata=dict(meta),
            visible=False,
        )
    )
    return added
