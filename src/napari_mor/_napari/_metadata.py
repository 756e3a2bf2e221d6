"""The ``layer.metadata`` keys napari-mor reads and writes, as named constants.

Every dock, the reader and the writers use these names (never string literals),
so a key is spelled once. Values: timing in seconds / minutes as the names say,
provenance as the map's sidecar dictionary.
"""

from __future__ import annotations

#: What a layer holds: one of the ``KIND_*`` values below.
KIND = "kind"
KIND_PET = "pet"
KIND_VOLUME = "volume"
KIND_LABELS = "labels"
KIND_BP_MAP = "bp_map"
KIND_DELTA_MAP = "delta_bp_map"
KIND_MEAN_IMAGE = "mean_image"
KIND_GROUP_T = "group_t"

#: File the layer was read from (str or None).
SOURCE_PATH = "source_path"
#: File the layer was last saved to by a napari-mor writer or dock.
SAVED_PATH = "saved_path"
#: Sidecar-style provenance of a map (model, reference, k2', input hashes, ...).
PROVENANCE = "provenance"
#: Region names of a Labels layer: {label value: name}.
LUT = "lut"
#: Activity unit of a PET layer's values (kBq/mL after loading).
UNITS = "units"

#: PET frame timing.
FRAME_START_S = "frame_start_s"
FRAME_DURATION_S = "frame_duration_s"
FRAME_MID_MIN = "frame_mid_min"
#: Condition windows chosen in the Study dock, minutes from injection.
WINDOWS_MIN = "windows_min"
#: The frame table was edited in the Study dock (timing differs from the file).
TIMING_EDITED = "timing_edited_in_study_dock"

#: Condition of a BP map (``baseline``, ``challenge``, ``scan``, ...).
CONDITION = "condition"
#: Delta maps: the map before the display threshold, and the threshold.
UNTHRESHOLDED = "unthresholded"
THRESHOLD = "threshold"
#: Registration dock: the accepted per-frame motion transforms.
MOTION_TRANSFORMS = "motion_transforms"
#: Sample data: the phantom's truth.
TRUTH = "truth"

#: Registration dock: ``transform_to_<SPACE>`` holds the transform (a dict) from
#: the layer's world to SPACE's world; the ROIs dock chains them (MNI -> PET).
TRANSFORM_TO_PREFIX = "transform_to_"

#: PET layers (from ``DynamicPET.metadata``): source unit, decay correction, tracer.
SOURCE_UNITS = "source_units"
DECAY_CORRECTED = "decay_corrected"
RADIONUCLIDE = "radionuclide"
#: Study dock: the frames TSV the PET's timing came from (str or None).
FRAMES_TSV_PATH = "frames_tsv_path"
#: Study dock mean images: time range (minutes), frames averaged, source layer name.
MEAN_WINDOW_MIN = "window_min"
FRAMES_USED = "frames_used"
SOURCE_LAYER = "source_layer"
#: Delta maps: which quantity (``delta_bp_nd`` or ``pct_delta_bp_nd``) and the
#: sign convention sentence shown with it.
QUANTITY = "quantity"
SIGN_CONVENTION = "sign_convention"
#: Registration dock: the per-frame motion trace of a motion-corrected PET
#: (columns as ``MotionCorrectionResult.trace_columns``), and what made a result
#: layer (a dict: ``mode``, :data:`SOURCE_LAYER`, :data:`FIXED_LAYER`, summary).
MOTION_TRACE = "motion_trace"
REGISTRATION = "registration"
FIXED_LAYER = "fixed_layer"
#: Group study dock: the analysis settings of a t-map / cluster layer
#: (``GroupResult.settings``); its cluster-forming t is under :data:`THRESHOLD`.
GROUP_SETTINGS = "settings"

#: Role of a PET layer in a two-scan study: ``"baseline"`` or ``"challenge"``
#: (``"baseline+challenge"`` for one scan with both conditions).
SCAN = "scan"
