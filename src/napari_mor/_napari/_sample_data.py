"""npe2 sample data: the digital carfentanil study (MR, PET, regions)."""

from __future__ import annotations

from napari_mor._napari._layers import (
    labels_layer_data,
    pet_layer_data,
    volume_layer_data,
)


def make_sample_study_layers() -> list[tuple]:
    """MR, dynamic PET and region labels of the phantom, aligned in world mm.

    The truth (BP_ND per region and condition) rides in the PET layer's
    ``metadata["truth"]``.
    """
    from napari_mor.sample import make_sample_study

    study = make_sample_study()
    mr = volume_layer_data(study.mr, "sample T1w")
    pet_data, pet_kwargs, pet_type = pet_layer_data(study.pet, "sample PET")
    pet_kwargs["metadata"] = {
        **pet_kwargs["metadata"],
        "windows_min": study.windows_min,
        "truth": study.truth["regions"],
        "source": "napari-mor sample phantom",
    }
    labels = labels_layer_data(study.labels, "sample regions")
    return [mr, (pet_data, pet_kwargs, pet_type), labels]
