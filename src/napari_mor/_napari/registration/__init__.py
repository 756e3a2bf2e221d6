"""Sections of the Registration dock (``_registration_widget.RegistrationWidget``).

- :mod:`.choices_section`: mode, moving / fixed layers, frame window.
- :mod:`.result_layers`: result layers and what Accept stores in their metadata.
- :mod:`.motion_plot`: the motion-trace plot.
- :mod:`._work`: what the worker runs (Qt-free) and the status texts.
"""

from napari_mor._napari.registration._work import (
    MNI_TEMPLATE,
    MODES,
    RegistrationInputs,
    RegistrationOutput,
    motion_summary,
    run_registration,
    static_summary,
)
from napari_mor._napari.registration.choices_section import ChoicesSection
from napari_mor._napari.registration.motion_plot import MotionTracePlotDock
from napari_mor._napari.registration.result_layers import (
    accepted_metadata,
    add_motion_layer,
    add_static_layer,
    add_template_layer,
)

__all__ = [
    "MNI_TEMPLATE",
    "MODES",
    "ChoicesSection",
    "MotionTracePlotDock",
    "RegistrationInputs",
    "RegistrationOutput",
    "accepted_metadata",
    "add_motion_layer",
    "add_static_layer",
    "add_template_layer",
    "motion_summary",
    "run_registration",
    "static_summary",
]
