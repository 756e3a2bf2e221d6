"""The sample study from the user cache: built once, then read back in milliseconds.

:func:`cached_sample_study` returns :func:`~napari_mor.sample.make_sample_study`
for the given arguments, from ``<cache>/samples`` (:mod:`napari_mor._cache`)
when an entry made by this napari-mor version with these arguments is there.
Each call returns new arrays (nothing shared between calls, so painting one
opened sample never changes the next). An unreadable entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

__all__ = ["cached_sample_study", "sample_cache_path"]


def sample_cache_path(**kwargs) -> Path:
    """Cache file of the sample study made with ``kwargs`` by this version."""
    from napari_mor import __version__
    from napari_mor._cache import cache_dir

    text = json.dumps({"version": __version__, **kwargs}, sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    return cache_dir("samples") / f"sample-{key}.pkl"


def cached_sample_study(**kwargs):
    """:func:`~napari_mor.sample.make_sample_study` (``kwargs``), cached on disk.

    Returns
    -------
    SampleStudy
        Equal to a fresh ``make_sample_study(**kwargs)``.
    """
    from napari_mor.sample import make_sample_study

    path = sample_cache_path(**kwargs)
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # written below by this same code only
    except Exception:  # missing, truncated or from other code: rebuilt below
        pass
    study = make_sample_study(**kwargs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
        with partial.open("wb") as handle:
            pickle.dump(study, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)  # never a half-written entry
    except OSError:  # a read-only or full cache folder: just no cache
        pass
    return study
