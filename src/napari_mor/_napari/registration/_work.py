"""What the Registration dock runs in its worker: Qt-free, no layer touched.

The dock reads the chosen layers into a :class:`RegistrationInputs` on the main
thread; :func:`run_registration` runs the core generator
(:func:`~napari_mor.registration.iter_correct_motion`,
:func:`~napari_mor.registration.iter_coregister_pet_to_mr` or
:func:`~napari_mor.registration.iter_normalize_to_mni`) and resamples the
result onto the fixed grid, so the GUI thread only adds layers. The status
texts (:func:`motion_summary`, :func:`static_summary`) are built here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_mor.io.volume import Volume

#: Mode label -> core mode.
MODES = {
    "Motion correction (PET frames)": "motion",
    "PET -> MR (rigid, mutual information)": "pet_to_mr",
    "MR -> MNI152 (affine)": "mr_to_mni",
}

#: Fixed-layer choice meaning "nilearn's MNI152 template".
MNI_TEMPLATE = "MNI152 template (nilearn, 2 mm)"


@dataclass
class RegistrationInputs:
    """What the dock collected, as core objects (built in the main thread)."""

    mode: str
    moving_name: str
    fixed_name: str
    moving: object
    fixed: Volume | None
    window_min: tuple[float, float]


@dataclass
class RegistrationOutput:
    """What the worker returns: the core result and arrays ready for layers."""

    mode: str
    inputs: RegistrationInputs
    result: object
    data: np.ndarray
    affine: np.ndarray
    fixed_template: Volume | None = None
    metadata: dict = field(default_factory=dict)


def run_registration(inputs: RegistrationInputs, should_stop=None):
    """Generator run by the worker: yields (done, total), returns the output.

    ``should_stop`` is polled by the core at every optimiser iteration, so
    Cancel stops within a pyramid level or frame. Qt-free; touches no layer.
    """
    from napari_mor.registration import (
        iter_coregister_pet_to_mr,
        iter_correct_motion,
        iter_normalize_to_mni,
        mean_pet_image,
        mni_template,
        resample_map,
    )

    if inputs.mode == "motion":
        result = yield from iter_correct_motion(
            inputs.moving,
            reference_window_min=inputs.window_min,
            should_stop=should_stop,
        )
        pet = result.corrected
        return RegistrationOutput("motion", inputs, result, pet.data, pet.affine)
    if inputs.mode == "pet_to_mr":
        result = yield from iter_coregister_pet_to_mr(
            inputs.moving,
            inputs.fixed,
            window_min=inputs.window_min,
            should_stop=should_stop,
        )
        mean = inputs.moving
        if not isinstance(mean, Volume):
            mean = mean_pet_image(inputs.moving, inputs.window_min)
        fixed = inputs.fixed
        data = resample_map(
            mean.data, mean.affine, result.transform, fixed.data.shape, fixed.affine
        )
        return RegistrationOutput("pet_to_mr", inputs, result, data, fixed.affine)
    template = inputs.fixed if inputs.fixed is not None else mni_template(2)
    kwargs = {"template": template}
    if inputs.fixed is not None:
        kwargs["template_space"] = inputs.fixed_name
    result = yield from iter_normalize_to_mni(
        inputs.moving, should_stop=should_stop, **kwargs
    )
    mr = inputs.moving
    data = resample_map(
        mr.data, mr.affine, result.transform, template.data.shape, template.affine
    )
    return RegistrationOutput(
        "mr_to_mni",
        inputs,
        result,
        data,
        template.affine,
        fixed_template=template if inputs.fixed is None else None,
    )


def motion_summary(result) -> str:
    """Frames registered, time, largest displacement, frames left alone."""
    left = result.left_alone
    return (
        f"{int(result.registered.sum())} of {len(result.status)} frames registered "
        f"in {result.elapsed_s:.1f} s; max mean displacement "
        f"{np.nanmax(result.displacement_mm):.2f} mm. Left alone: "
        + (", ".join(f"{i}" for i in sorted(left)) or "none")
        + ". Accept keeps the corrected PET; Undo removes it."
    )


def static_summary(result) -> str:
    """Transform kind, translation, rotation, time and convergence."""
    transform = result.transform
    params = transform.rigid_parameters()
    return (
        f"{transform.fixed_space} -> {transform.moving_space} {transform.kind}: "
        f"translation {_fmt(params['translation_mm'])} mm, rotation "
        f"{_fmt(params['rotation_deg'])} deg, {result.elapsed_s:.1f} s"
        + ("" if result.converged else " (did NOT converge)")
        + ". Accept keeps the overlay; Undo removes it."
    )


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"
