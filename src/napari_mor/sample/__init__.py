"""Digital phantom: a [11C]carfentanil bolus+infusion study with known truth."""

from napari_mor.sample.phantom import (
    DEFAULT_WINDOWS_MIN,
    REGIONS,
    REJECTION_REGIONS,
    SampleStudy,
    frame_timing,
    make_sample_study,
    write_sample_study,
)

__all__ = [
    "DEFAULT_WINDOWS_MIN",
    "REGIONS",
    "REJECTION_REGIONS",
    "SampleStudy",
    "frame_timing",
    "make_sample_study",
    "write_sample_study",
]
