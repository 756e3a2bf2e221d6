"""Layers of a registration result, and what Accept stores in their metadata.

Motion correction adds the corrected PET (same grid and timing as the input)
with its motion trace; PET -> MR and MR -> MNI add the moving image resampled
onto the fixed grid as a translucent overlay. Accept stores the transforms:
``motion_transforms`` (one per frame), or ``transform_to_<SPACE>`` mapping the
result layer's world (the fixed space) to the world of SPACE, as
:meth:`napari_mor.registration.Transform.to_dict`.
"""

from __future__ import annotations

import numpy as np

from napari_mor._napari import _metadata as md
from napari_mor._napari._layers import pet_layer_data, volume_layer_data
from napari_mor._napari.registration._work import MNI_TEMPLATE


def add_template_layer(viewer, output):
    """The MNI152 template the dock registered to, or None when not used."""
    if output.fixed_template is None:
        return None
    data, kwargs, _ = volume_layer_data(output.fixed_template, MNI_TEMPLATE)
    return viewer.add_image(data, **kwargs)


def add_motion_layer(viewer, output):
    """The motion-corrected PET over the input, with the trace in metadata."""
    result = output.result
    pet = result.corrected
    data, kwargs, _ = pet_layer_data(
        pet, f"{output.inputs.moving_name} motion-corrected"
    )
    kwargs["opacity"] = 0.6
    kwargs["metadata"] = {
        **kwargs["metadata"],
        md.MOTION_TRACE: result.trace_columns(pet.timing),
        md.REGISTRATION: {
            "mode": "motion",
            md.SOURCE_LAYER: output.inputs.moving_name,
        },
    }
    return viewer.add_image(data, **kwargs)


def add_static_layer(viewer, output):
    """The moving image resampled onto the fixed grid, as a translucent overlay."""
    result = output.result
    name = f"{output.inputs.moving_name} -> {result.transform.fixed_space}"
    low, high = np.percentile(output.data, (1.0, 99.5))
    return viewer.add_image(
        output.data,
        name=name,
        affine=output.affine,
        colormap="inferno" if output.mode == "pet_to_mr" else "magenta",
        opacity=0.5,
        blending="additive",
        contrast_limits=(float(low), float(max(high, low + 1e-6))),
        metadata={
            md.KIND: md.KIND_VOLUME,
            md.REGISTRATION: {
                **result.summary(),
                "mode": output.mode,
                md.SOURCE_LAYER: output.inputs.moving_name,
                md.FIXED_LAYER: output.inputs.fixed_name,
            },
        },
    )


def accepted_metadata(output) -> dict:
    """The ``layer.metadata`` entries Accept adds to the result layer."""
    if output.mode == "motion":
        return {md.MOTION_TRANSFORMS: [t.to_dict() for t in output.result.transforms]}
    transform = output.result.transform
    return {f"{md.TRANSFORM_TO_PREFIX}{transform.moving_space}": transform.to_dict()}
