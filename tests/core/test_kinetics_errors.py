"""Bad input raises MorError with a message saying what is wrong and how to fix it."""

from __future__ import annotations

import numpy as np
import pytest
from _simulate import REF_K2P, frame_schedule_min, reference_tac, target_tacs

from napari_mor import MorError
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics import estimate_k2p, fit_maps, fit_roi, iter_fit_blocks


@pytest.fixture(scope="module")
def data():
    starts, durations = frame_schedule_min()
    return (
        target_tacs([2.0, 0.5]),
        reference_tac(),
        FrameTiming(starts * 60.0, durations * 60.0),
    )


def test_morerror_is_valueerror():
    assert issubclass(MorError, ValueError)


def test_reference_with_zeros(data):
    tac, ref, timing = data
    ref = ref.copy()
    ref[15:] = 0.0
    with pytest.raises(MorError, match=r"zero or negative.*reference mask"):
        fit_roi(tac, ref, timing, "mrtm")


def test_reference_with_nan(data):
    tac, ref, timing = data
    ref = ref.copy()
    ref[3] = np.nan
    with pytest.raises(MorError, match=r"NaN/Inf in frames \[3\]"):
        fit_roi(tac, ref, timing, "srtm")


def test_tac_with_nan(data):
    tac, ref, timing = data
    tac = tac.copy()
    tac[5, 1] = np.nan
    with pytest.raises(MorError, match=r"roi_1.*NaN"):
        fit_roi(tac, ref, timing, "mrtm")


def test_flat_tac(data):
    _, ref, timing = data
    with pytest.raises(MorError, match="flat"):
        fit_roi(np.full(timing.n_frames, 3.0), ref, timing, "logan")


@pytest.mark.parametrize("window", [(88.0, 90.0), (86.0, 100.0), (100.0, 120.0)])
def test_window_with_fewer_than_3_frames(data, window):
    tac, ref, timing = data
    with pytest.raises(MorError, match=r"at least 3.*Widen the window"):
        fit_roi(tac, ref, timing, "mrtm", window=window)


def test_window_reversed(data):
    tac, ref, timing = data
    with pytest.raises(MorError, match="start < end"):
        fit_roi(tac, ref, timing, "mrtm", window=(40.0, 5.0))


@pytest.mark.parametrize("t_star", [90.0, 120.0])
def test_t_star_beyond_last_frame(data, t_star):
    tac, ref, timing = data
    with pytest.raises(MorError, match="beyond the last frame"):
        fit_roi(tac, ref, timing, "logan", t_star_min=t_star)


def test_t_star_leaving_too_few_frames(data):
    tac, ref, timing = data
    with pytest.raises(MorError, match="at least 3"):
        fit_roi(tac, ref, timing, "logan", t_star_min=83.0)


@pytest.mark.parametrize("k2p", [0.0, -0.1, np.nan, np.inf])
@pytest.mark.parametrize("model", ["mrtm2", "srtm2", "logan"])
def test_k2p_not_positive(data, model, k2p):
    tac, ref, timing = data
    with pytest.raises(MorError, match="must be a finite value > 0"):
        fit_roi(tac, ref, timing, model, k2p_per_min=k2p, t_star_min=20.0)


def test_tac_shape_mismatch(data):
    tac, ref, timing = data
    with pytest.raises(MorError, match=r"shape \(27, 2\).*28 frames"):
        fit_roi(tac[:-1], ref, timing, "mrtm")
    with pytest.raises(MorError, match="time first"):
        fit_roi(tac.T, ref, timing, "mrtm")


def test_reference_shape_mismatch(data):
    tac, ref, timing = data
    with pytest.raises(MorError, match=r"Reference TAC has shape \(27,\)"):
        fit_roi(tac, ref[:-1], timing, "mrtm")


def test_names_mismatch(data):
    tac, ref, timing = data
    with pytest.raises(MorError, match="3 names given for 2"):
        fit_roi(tac, ref, timing, "mrtm", names=["a", "b", "c"])


def test_unknown_model(data):
    tac, ref, timing = data
    with pytest.raises(MorError, match=r"Unknown model 'ma'.*logan"):
        fit_roi(tac, ref, timing, "ma")


def test_ratio_needs_window(data):
    tac, ref, timing = data
    with pytest.raises(MorError, match=r"equilibrium.*--window"):
        fit_roi(tac, ref, timing, "ratio")


def test_logan_never_linear(data):
    tac, ref, timing = data
    rng = np.random.default_rng(1)
    wild = tac[:, 0] * (1 + 0.8 * rng.standard_normal(timing.n_frames)) ** 2
    with pytest.raises(MorError, match=r"never becomes linear.*--t-star"):
        fit_roi(wild, ref, timing, "logan", logan_tolerance=0.001)


def test_bad_theta_range(data):
    tac, ref, timing = data
    with pytest.raises(MorError, match="theta range"):
        fit_roi(tac, ref, timing, "srtm-bf", theta_range_per_min=(1.0, 0.01))


def test_estimate_k2p_unusable(data):
    _, ref, timing = data
    with pytest.raises(MorError, match="not usable"):
        estimate_k2p(ref * 1.0001 + 1e-3 * np.sin(np.arange(ref.size)), ref, timing)


def _pet(tac, shape=(3, 2, 2)):
    n = int(np.prod(shape))
    cols = tac[:, np.arange(n) % tac.shape[1]]
    return cols.reshape((tac.shape[0], *shape)).astype(np.float32)


def test_maps_shape_errors(data):
    tac, ref, timing = data
    pet = _pet(tac)
    mask = np.ones(pet.shape[1:], bool)
    with pytest.raises(MorError, match="Brain mask has shape"):
        fit_maps(pet, mask[:2], ref, timing, "mrtm")
    with pytest.raises(MorError, match="expected \\(t, x, y, z\\)"):
        fit_maps(pet[:-1], mask, ref, timing, "mrtm")
    with pytest.raises(MorError, match="expected \\(t, x, y, z\\)"):
        fit_maps(pet[..., 0], mask, ref, timing, "mrtm")
    with pytest.raises(MorError, match="mask is empty"):
        fit_maps(pet, np.zeros_like(mask), ref, timing, "mrtm")


def test_maps_errors_raise_when_generator_is_created(data):
    tac, ref, timing = data
    pet = _pet(tac)
    mask = np.ones(pet.shape[1:], bool)
    with pytest.raises(MorError, match=r"per ROI only.*srtm-bf"):
        iter_fit_blocks(pet, mask, ref, timing, "srtm")
    with pytest.raises(MorError, match="must be a finite value > 0"):
        iter_fit_blocks(pet, mask, ref, timing, "mrtm2", k2p_per_min=-REF_K2P)
