"""The user cache folder of napari-mor (atlas imports, the sample study).

``$NAPARI_MOR_CACHE_DIR`` when set, else the user cache folder of ``platformdirs``
(``~/.cache/napari-mor`` on Linux), else ``~/.cache/napari-mor``. Nothing here
imports numpy, napari or Qt.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that moves the cache (tests point it at a temporary folder).
CACHE_DIR_ENV = "NAPARI_MOR_CACHE_DIR"


def cache_dir(kind: str) -> Path:
    """``<cache root>/<kind>`` (not created here)."""
    root = os.environ.get(CACHE_DIR_ENV)
    if not root:
        try:
            import platformdirs

            root = platformdirs.user_cache_dir("napari-mor", appauthor=False)
        except ImportError:
            root = str(Path.home() / ".cache" / "napari-mor")
    return Path(root) / kind
