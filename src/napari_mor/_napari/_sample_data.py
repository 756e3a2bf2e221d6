"""npe2 sample data: the digital carfentanil study (MR, PET, regions)."""

from __future__ import annotations

from napari_mor._napari import _metadata as md
from napari_mor._napari._layers import (
    labels_layer_data,
    pet_layer_data,
    volume_layer_data,
)
from napari_mor._napari._view import axial_once_added

#: First view of the sample: the axial slice through ventral striatum,
#: amygdala, PAG and sgACC (world z, mm).
SAMPLE_AXIAL_Z_MM = -12.0


def _first_view(layers: list[tuple]) -> list[tuple]:
    """Ask the viewer for an axial first view (labels as contours) once added."""
    axial_once_added([kwargs["name"] for _, kwargs, _ in layers], SAMPLE_AXIAL_Z_MM)
    return layers


def _pet_with_truth(pet, name: str, study, scan: str) -> tuple:
    """PET layer data whose metadata carries windows, truth and the scan role."""
    data, kwargs, layer_type = pet_layer_data(pet, name)
    kwargs["metadata"] = {
        **kwargs["metadata"],
        md.WINDOWS_MIN: study.windows_min,
        md.SCAN: scan,
        md.TRUTH: study.truth["regions"],
        "source": "napari-mor sample phantom",
    }
    return data, kwargs, layer_type


def make_sample_study_layers() -> list[tuple]:
    """MR, dynamic PET and region labels of the phantom, aligned in world mm.

    One 90-min scan, the challenge from 45 min (default windows baseline 20-45,
    challenge 60-90 min). The truth (BP_ND
    per region and condition) rides in the PET layer's ``metadata["truth"]``.
    """
    from napari_mor.sample.cache import cached_sample_study

    study = cached_sample_study()
    return _first_view(
        [
            volume_layer_data(study.mr, "sample T1w"),
            _pet_with_truth(study.pet, "sample PET", study, "baseline+challenge"),
            labels_layer_data(study.labels, "sample regions"),
        ]
    )


def make_two_scan_layers() -> list[tuple]:
    """The phantom as two 90-min scans: baseline, then challenge throughout."""
    from napari_mor.sample.cache import cached_sample_study

    study = cached_sample_study(separate_scans=True)
    return _first_view(
        [
            volume_layer_data(study.mr, "sample T1w"),
            _pet_with_truth(study.pet, "PET baseline", study, "baseline"),
            _pet_with_truth(study.pet_challenge, "PET challenge", study, "challenge"),
            labels_layer_data(study.labels, "sample regions"),
        ]
    )
