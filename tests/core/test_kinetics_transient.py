"""Transient-release (lp-ntPET-style) fits on the independent carfentanil simulator."""

from __future__ import annotations

import numpy as np
import pytest
from _carfentanil_sim import frame_timing, simulate_one_scan, voxel_image

from napari_mor import MorError
from napari_mor.kinetics.transient import (
    fit_transient,
    iter_fit_transient_blocks,
    response_basis,
)

K2P = 0.15
ONSET = 45.0
#: Worst |error| (points) of the default windowed Logan fit for a planted 10 %
#: drop, one scan, noise-free (docs/kinetics.md, "Defaults on carfentanil-like data").
LOGAN_WORST_ERROR = {0.05: 9.8, 0.08: 3.6, 0.15: 0.7}


def _pct(scan, **kwargs):
    fits = fit_transient(
        scan.tacs, scan.ref, scan.timing, k2p_per_min=K2P, n_boot=0, **kwargs
    )
    return np.array([f.pct_delta_bp for f in fits]), fits


@pytest.mark.parametrize("k4", [0.05, 0.08, 0.15])
def test_planted_drop_noise_free(k4):
    scan = simulate_one_scan(0.10, k4_per_min=k4)
    pct, fits = _pct(scan, onset_min=ONSET)
    print(f"k4={k4}: pct_delta_bp", np.round(pct, 2))
    assert np.all(np.abs(pct - 10.0) <= 1.0), pct
    assert np.max(np.abs(pct - 10.0)) < LOGAN_WORST_ERROR[k4]
    bp = np.array([f.bp_nd for f in fits])
    np.testing.assert_allclose(bp, scan.truth["bp_baseline"], rtol=0.03)
    chal = np.array([f.bp_nd_challenge for f in fits])
    np.testing.assert_allclose(chal, scan.truth["bp_challenge"], rtol=0.03)
    assert all(f.shape in ("sustained", "gamma") for f in fits)


@pytest.mark.parametrize("k4", [0.05, 0.08, 0.15])
def test_no_change_reads_zero_noise_free(k4):
    scan = simulate_one_scan(0.0, k4_per_min=k4)
    pct, _ = _pct(scan, onset_min=ONSET)
    assert np.all(np.abs(pct) <= 1.0), pct


def test_searched_onset_finds_the_challenge():
    scan = simulate_one_scan(0.10, k4_per_min=0.08)
    pct, fits = _pct(scan)  # onset searched from 20 min
    assert np.all(np.abs(pct - 10.0) <= 1.0), pct
    onsets = np.array([f.onset_min for f in fits])
    assert np.all((onsets >= 42) & (onsets <= 48)), onsets
    assert all(f.p_release < 1e-6 for f in fits)
    assert all(f.aic < f.aic_null for f in fits)


def test_wrong_sign_change_reads_negative():
    scan = simulate_one_scan(-0.10, k4_per_min=0.08)  # availability rises 10 %
    pct, _ = _pct(scan, onset_min=ONSET)
    # a rise reads -8.9 to -9.6 (the gain of free ligand is less linear in Delta)
    assert np.all(np.abs(pct + 10.0) <= 1.5), pct
    assert np.all(pct < -8.0)


def test_uneven_frames_and_reference_shape():
    durations = np.array([0.5] * 6 + [1.0] * 4 + [3.0] * 2 + [4.0] * 4 + [6.0] * 10)
    scan = simulate_one_scan(0.10, k4_per_min=0.08, durations_min=durations)
    pct, fits = _pct(scan, onset_min=ONSET)
    assert np.all(np.abs(pct - 10.0) <= 1.0), pct
    fit = fits[0]
    assert fit.fitted.shape == fit.y.shape == fit.response.shape == (durations.size,)
    row = fit.as_row()
    for key in ("BP_ND", "BP_ND_challenge", "pct_delta_BP", "onset_min", "p_release"):
        assert key in row


def test_response_basis_shapes():
    timing = frame_timing()
    step, dstep = response_basis(timing, 45.0, "sustained", 0.0)
    assert step[timing.frame_end_min <= 45].max() == 0.0
    assert step[timing.frame_start_min >= 45].min() == 1.0
    gamma, _ = response_basis(timing, 40.0, "gamma", 12.5)
    assert np.argmax(gamma) == np.argmin(np.abs(timing.frame_mid_min - 52.5))
    # the frame-mean derivative integrates back to h at the frame ends
    assert np.isclose((dstep * timing.frame_duration_min).sum(), 1.0)


def test_false_positive_rate_and_power_are_reported():
    """Measure (and print) FPR of p_release < 0.05 in no-change scans."""
    scan = simulate_one_scan(
        0.0, k4_per_min=0.08, noise_cv=0.02, n_realisations=200, seed=11
    )
    tacs = scan.tacs.reshape(scan.tacs.shape[0], -1)  # regions x realisations
    fits = fit_transient(
        tacs,
        scan.clean_ref,
        scan.timing,
        k2p_per_min=K2P,
        onset_min=ONSET,
        weights="noise",
        n_boot=39,
        seed=1,
    )
    p = np.array([f.p_release for f in fits]).reshape(len(scan.names), -1)
    rate = (p < 0.05).mean(axis=1)
    print(
        "FPR (bootstrap p, noise 0.02, onset fixed):",
        dict(zip(scan.names, rate, strict=True)),
    )
    assert np.all(np.isfinite(p)) and np.all((p > 0) & (p <= 1))
    # detection power for a planted 10 % drop at the same noise (reported only:
    # with the false-positive rate not controlled, power is not interpretable)
    drop = simulate_one_scan(
        0.10, k4_per_min=0.08, noise_cv=0.02, n_realisations=200, seed=13
    )
    fits = fit_transient(
        drop.tacs.reshape(drop.tacs.shape[0], -1),
        drop.clean_ref,
        drop.timing,
        k2p_per_min=K2P,
        onset_min=ONSET,
        weights="noise",
        n_boot=39,
        seed=1,
    )
    p = np.array([f.p_release for f in fits]).reshape(len(drop.names), -1)
    power = (p < 0.05).mean(axis=1)
    print("power (10 % drop):", dict(zip(drop.names, power, strict=True)))
    assert np.all(power >= rate - 0.05)  # a real drop is not detected less often


@pytest.mark.xfail(
    strict=True,
    reason="open: errors-in-variables of the multilinear form inflate F under "
    "noise; bootstrap FPR at ROI noise 0.02 is 0.04-0.33 (docs/transient.md)",
)
def test_false_positive_rate_target():
    scan = simulate_one_scan(
        0.0, k4_per_min=0.08, noise_cv=0.02, n_realisations=200, seed=12
    )
    tacs = scan.tacs[:, 0, :]
    fits = fit_transient(
        tacs,
        scan.clean_ref,
        scan.timing,
        k2p_per_min=K2P,
        onset_min=ONSET,
        weights="noise",
        n_boot=49,
        seed=2,
    )
    rate = np.mean([f.p_release < 0.05 for f in fits])
    assert rate <= 0.06


def test_voxelwise_matches_roi_and_cancels():
    scan = simulate_one_scan(0.10, k4_per_min=0.08, n_realisations=3)
    pet, mask, ref = voxel_image(scan)
    blocks = iter_fit_transient_blocks(
        pet, mask, ref, scan.timing, k2p_per_min=K2P, onset_min=ONSET, block_size=4
    )
    progress = []
    while True:
        try:
            progress.append(next(blocks))
        except StopIteration as stop:
            result = stop.value
            break
    assert progress[-1] == (15, 15) and len(progress) == 4
    pct = result.maps["pct_delta_bp_nd"]
    assert pct.shape == mask.shape and pct.dtype == np.float32
    roi, _ = _pct(
        scan.__class__(scan.timing, scan.clean_tacs, ref, scan.names), onset_min=ONSET
    )
    np.testing.assert_allclose(pct[:, 0, 0], roi, atol=0.05)
    assert result.model == "lpntpet" and result.n_failed == 0
    # cancel: stop after the first block
    blocks = iter_fit_transient_blocks(
        pet, mask, ref, scan.timing, k2p_per_min=K2P, onset_min=ONSET, block_size=4
    )
    assert next(blocks) == (4, 15)
    blocks.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"onset_min": 120.0}, "outside the scan"),
        ({"onset_min": 80.0}, "frame"),
        ({"onset_min": 5.0}, "no baseline"),
        ({"shapes": [("boxcar", 3.0)]}, "shape"),
        ({"tissue": "3t"}, "tissue"),
        ({"k2p_per_min": None}, "k2'"),
    ],
)
def test_bad_input_messages(kwargs, match):
    scan = simulate_one_scan(0.0, k4_per_min=0.08)
    options = {"k2p_per_min": K2P, **kwargs}
    with pytest.raises(MorError, match=match):
        fit_transient(scan.tacs, scan.ref, scan.timing, **options)


def test_voxelwise_bad_mask():
    scan = simulate_one_scan(0.0, k4_per_min=0.08, n_realisations=2)
    pet, mask, ref = voxel_image(scan)
    with pytest.raises(MorError, match="mask"):
        iter_fit_transient_blocks(pet, mask[:2], ref, scan.timing, k2p_per_min=K2P)
