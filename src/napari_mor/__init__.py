"""napari-mor: mu-opioid receptor PET kinetics and delta-BP maps for napari.

The core (``io``, ``rois``, ``kinetics``, ``maps``, ``sample``, ``cli``) never imports
napari or Qt; only ``napari_mor._napari`` does.
"""

from napari_mor._errors import MorError, MorWarning

__version__ = "0.1.0"

__all__ = ["MorError", "MorWarning", "__version__"]
