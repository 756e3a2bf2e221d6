"""Display rules without a viewer: robust symmetric limits, percentile contrast."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor._napari._display import (
    foreground,
    percentile_limits,
    reliable_percent_voxels,
    symmetric_limits,
)
from napari_mor._napari._view import axial_order


def _pct_map_with_noisy_rim(seed=0):
    """%delta-BP: +10 % in a high-binding core, huge noise in a low-BP rim."""
    rng = np.random.default_rng(seed)
    shape = (30, 30, 30)
    index = np.indices(shape) - 14.5
    radius = np.sqrt((index**2).sum(0))
    bp_base = np.full(shape, np.nan, np.float32)
    bp_base[radius < 13] = 0.15  # low binding (white matter, scalp-like rim)
    bp_base[radius < 8] = 2.0  # receptor-rich core
    noise_sd = 0.08  # BP_ND units, the same everywhere
    bp_chal = bp_base * 0.9 + rng.normal(0, noise_sd, shape).astype(np.float32)
    pct = 100 * (bp_base - bp_chal) / bp_base
    return pct, bp_base


def test_symmetric_limits_ignore_low_binding_noise():
    pct, bp_base = _pct_map_with_noisy_rim()
    _, naive_high = symmetric_limits(pct, 99.0)
    low, high = symmetric_limits(pct, 99.0, reliable_percent_voxels(bp_base))
    assert naive_high > 100  # the rim's noise: a 10 % effect would be invisible
    assert low == -high
    assert 10 < high < 25  # +10 % fills about half the range
    inside = reliable_percent_voxels(bp_base)
    assert inside.sum() == (bp_base >= 2.0).sum()  # the core only
    assert not inside[np.isnan(bp_base)].any()


def test_symmetric_limits_edge_cases():
    assert symmetric_limits(np.full((3, 3, 3), np.nan)) == (-1.0, 1.0)
    assert symmetric_limits(np.zeros((3, 3, 3))) == (-1.0, 1.0)
    values = np.array([[[-0.5, 0.2, np.nan]]])
    assert symmetric_limits(values, 100) == (-0.5, 0.5)
    only = np.array([[[False, True, False]]])
    assert symmetric_limits(values, 100, only) == pytest.approx((-0.2, 0.2))
    with pytest.raises(MorError, match="mask has shape"):
        symmetric_limits(values, 99, np.ones((2, 2, 2), bool))
    with pytest.raises(MorError, match="percentile"):
        symmetric_limits(values, 0)


def test_percentile_limits_inside_the_head():
    shape = (40, 40, 40)
    image = np.zeros(shape, np.float32)  # air
    image[10:30, 10:30, 10:30] = np.linspace(50, 150, 20)[None, None, :]
    head = foreground(image)
    assert head.sum() < image.size / 4 and head[20, 20, 25] and not head[0, 0, 0]
    low, high = percentile_limits(image, None, (0.5, 99.5))
    assert low > 40  # not pulled to 0 by the air
    assert 140 < high <= 150
    whole_low, _ = percentile_limits(image, np.ones(shape, bool), (0.5, 99.5))
    assert whole_low == 0.0
    frames = np.stack([image * 0.5, image])  # a 4D PET: frames first
    assert foreground(frames).sum() == head.sum()


def test_axial_order_shows_y_by_x():
    assert axial_order(4) == (0, 3, 2, 1)  # frame, z sliders; rows y, columns x
    assert axial_order(3) == (2, 1, 0)
    assert axial_order(2) == (0, 1)
