"""Registration: PET frame motion correction, PET -> MR coregistration,
MR -> MNI normalisation, and resampling of labels/maps through transforms.

Built on SimpleITK (Mattes mutual information, SimpleITK optimisers). Transforms
map fixed world -> moving world (RAS mm); see :mod:`.transforms`. No napari
import.
"""

from napari_mor.registration.coreg import (
    DEFAULT_MEAN_WINDOW_MIN,
    RegistrationResult,
    coregister_pet_to_mr,
    iter_coregister_pet_to_mr,
    iter_register,
    mean_pet_image,
    register,
    run_to_end,
)
from napari_mor.registration.motion import (
    MotionCorrectionResult,
    apply_frame_transforms,
    correct_motion,
    iter_correct_motion,
    relative_frame_counts,
)
from napari_mor.registration.normalize import (
    iter_normalize_to_mni,
    mni_template,
    normalize_to_mni,
)
from napari_mor.registration.transforms import (
    Transform,
    brain_points_mm,
    compose,
    load_transform,
    mean_displacement_mm,
    resample_label_data,
    resample_label_image,
    resample_map,
    save_transform,
)
from napari_mor.registration.warp import (
    DisplacementField,
    field_from_sitk,
    load_displacement_field,
    refine_to_mni,
    save_displacement_field,
)

__all__ = [
    "DEFAULT_MEAN_WINDOW_MIN",
    "DisplacementField",
    "MotionCorrectionResult",
    "RegistrationResult",
    "Transform",
    "apply_frame_transforms",
    "brain_points_mm",
    "compose",
    "coregister_pet_to_mr",
    "correct_motion",
    "field_from_sitk",
    "iter_coregister_pet_to_mr",
    "iter_correct_motion",
    "iter_normalize_to_mni",
    "iter_register",
    "load_displacement_field",
    "load_transform",
    "mean_displacement_mm",
    "mean_pet_image",
    "mni_template",
    "normalize_to_mni",
    "refine_to_mni",
    "register",
    "relative_frame_counts",
    "resample_label_data",
    "resample_label_image",
    "resample_map",
    "run_to_end",
    "save_displacement_field",
    "save_transform",
]
