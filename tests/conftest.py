"""Shared fixtures: the phantom study in memory and on disk (made once per run)."""

from __future__ import annotations

import pytest

from napari_mor.sample import make_sample_study, write_sample_study


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """The napari-mor cache (atlases, sample) in a temporary folder, not ~/.cache."""
    import os

    from napari_mor._cache import CACHE_DIR_ENV

    old = os.environ.get(CACHE_DIR_ENV)
    os.environ[CACHE_DIR_ENV] = str(tmp_path_factory.mktemp("napari_mor_cache"))
    yield
    if old is None:
        os.environ.pop(CACHE_DIR_ENV, None)
    else:
        os.environ[CACHE_DIR_ENV] = old


@pytest.fixture(scope="session")
def sample_study():
    """The default noisy sample study (seed 0)."""
    return make_sample_study(seed=0)


@pytest.fixture(scope="session")
def noise_free_study():
    """The sample study without noise (truth recoverable exactly)."""
    return make_sample_study(seed=0, noise_cv=0.0)


@pytest.fixture(scope="session")
def sample_files(sample_study, tmp_path_factory):
    """The default sample study written to disk: paths by role."""
    return write_sample_study(sample_study, tmp_path_factory.mktemp("sample"))
