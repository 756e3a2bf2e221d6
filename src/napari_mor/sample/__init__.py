"""Digital phantom: a [11C]carfentanil bolus+infusion study with known truth,
and a simulated cohort of such studies (group analyses)."""

from napari_mor.sample.cohort import (
    SimulatedCohort,
    read_participants,
    simulate_cohort,
    write_bids_cohort,
    write_participants,
)
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
    "SimulatedCohort",
    "frame_timing",
    "make_sample_study",
    "read_participants",
    "simulate_cohort",
    "write_bids_cohort",
    "write_participants",
    "write_sample_study",
]
