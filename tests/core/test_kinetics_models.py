"""Noise-free recovery of BP_ND by every model, windows and separate scans."""

from __future__ import annotations

import numpy as np
import pytest
from _simulate import (
    REF_K1,
    REF_K2P,
    TGT_K1,
    TGT_K2,
    challenge_tac,
    frame_schedule_min,
    reference_tac,
    target_tacs,
)

from napari_mor import MorWarning
from napari_mor.io.timing import FrameTiming
from napari_mor.kinetics import (
    estimate_k2p,
    fit_roi,
    fit_scans,
    fit_two_scans,
    fit_windows,
    logan_t_star,
)
from napari_mor.maps import delta_bp

BP_TRUE = np.array([0.5, 1.5, 3.0])


@pytest.fixture(scope="module")
def study():
    starts, durations = frame_schedule_min()
    return {
        "timing": FrameTiming(starts * 60.0, durations * 60.0),
        "ref": reference_tac(),
        "tac_1tc": target_tacs(BP_TRUE, "1tc"),
        "tac_2tc": target_tacs(BP_TRUE, "2tc"),
    }


def _bp(fits):
    return np.array([f.bp_nd for f in fits])


@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("mrtm", {}),
        ("mrtm2", {"k2p_per_min": REF_K2P}),
        ("srtm", {}),
        ("srtm2", {"k2p_per_min": REF_K2P}),
        ("srtm-bf", {}),
        ("logan", {"k2p_per_min": REF_K2P, "t_star_min": 10.0}),
        ("mrtm", {"weights": "duration"}),
        ("srtm", {"weights": "noise"}),
        ("mrtm2", {"k2p_per_min": REF_K2P, "weights": "noise"}),
    ],
)
def test_noise_free_1tc_recovery_within_1pct(study, model, options):
    fits = fit_roi(study["tac_1tc"], study["ref"], study["timing"], model, **options)
    np.testing.assert_allclose(_bp(fits), BP_TRUE, rtol=0.01)
    for fit in fits:
        assert fit.r2 > 0.999
        assert np.isfinite(fit.aic)


def test_rate_constants_recovered(study):
    r1_true = TGT_K1 / REF_K1
    for model in ("mrtm", "srtm"):
        fits = fit_roi(study["tac_1tc"], study["ref"], study["timing"], model)
        for fit in fits:
            assert fit.params["r1"] == pytest.approx(r1_true, rel=0.01)
            assert fit.params["k2_per_min"] == pytest.approx(TGT_K2, rel=0.01)
    mrtm = fit_roi(study["tac_1tc"], study["ref"], study["timing"], "mrtm")
    for fit in mrtm:
        assert fit.k2p_per_min == pytest.approx(REF_K2P, rel=0.01)


def test_logan_2tc_within_5pct_with_k2p(study):
    fits = fit_roi(
        study["tac_2tc"], study["ref"], study["timing"], "logan",
        k2p_per_min=REF_K2P, t_star_min=30.0,
    )  # fmt: skip
    np.testing.assert_allclose(_bp(fits), BP_TRUE, rtol=0.05)
    assert all(f.t_star_min == 30.0 for f in fits)
    assert all(f.n_frames == 12 for f in fits)  # frames with mid >= 30 min


def test_logan_auto_t_star_is_sensible_and_reported(study):
    fits = fit_roi(
        study["tac_2tc"], study["ref"], study["timing"], "logan", k2p_per_min=REF_K2P
    )
    for fit in fits:
        assert 3.0 <= fit.t_star_min <= 60.0
        assert fit.t_star_min in np.round(study["timing"].frame_mid_min, 6)
    np.testing.assert_allclose(_bp(fits), BP_TRUE, rtol=0.05)


def test_logan_without_k2p_is_the_no_k2p_variant(study):
    with_k2p = fit_roi(
        study["tac_2tc"], study["ref"], study["timing"], "logan",
        k2p_per_min=REF_K2P, t_star_min=30.0,
    )  # fmt: skip
    without = fit_roi(
        study["tac_2tc"], study["ref"], study["timing"], "logan", t_star_min=30.0
    )
    assert all(np.isnan(f.k2p_per_min) for f in without)
    err_with = np.abs(_bp(with_k2p) / BP_TRUE - 1)
    err_without = np.abs(_bp(without) / BP_TRUE - 1)
    assert np.all(err_without < 0.08)
    assert np.all(err_with < err_without)  # the k2' term matters for B/I


def test_logan_plot_points_and_line(study):
    fit = fit_roi(
        study["tac_1tc"][:, 2], study["ref"], study["timing"], "logan",
        k2p_per_min=REF_K2P, t_star_min=20.0,
    )[0]  # fmt: skip
    tail = fit.frame_mask
    slope = np.polyfit(fit.x[tail], fit.y[tail], 1)[0]
    assert slope == pytest.approx(fit.params["dvr"], rel=1e-9)
    assert fit.params["dvr"] == pytest.approx(1.0 + BP_TRUE[2], rel=0.01)
    assert np.all(np.isnan(fit.residuals[~tail]))
    np.testing.assert_allclose(fit.residuals[tail], (fit.y - fit.fitted)[tail])


def test_standard_errors_noise_free_are_tiny(study):
    for model in ("mrtm", "mrtm2", "srtm", "srtm2", "logan"):
        options = {"k2p_per_min": REF_K2P} if model in ("mrtm2", "srtm2") else {}
        fits = fit_roi(
            study["tac_1tc"], study["ref"], study["timing"], model, **options
        )
        for fit in fits:
            assert 0 <= fit.bp_nd_se < 0.01 * fit.bp_nd + 0.005, (model, fit.bp_nd_se)


def test_mrtm_2tc_with_t_star(study):
    fits = fit_roi(
        study["tac_2tc"], study["ref"], study["timing"], "mrtm", t_star_min=20.0
    )
    np.testing.assert_allclose(_bp(fits), BP_TRUE, rtol=0.01)


def test_ratio_exact_at_equilibrium(study):
    timing, ref = study["timing"], study["ref"]
    tac = np.outer(ref, 1.0 + BP_TRUE)
    tac[:18] *= 0.5  # frames before the window (mid < 40 min) do not matter
    fits = fit_roi(tac, ref, timing, "ratio", window=(45.0, 90.0))
    np.testing.assert_allclose(_bp(fits), BP_TRUE, rtol=1e-10)
    assert fits[0].n_frames == int(np.sum(timing.frame_mid_min >= 45.0))


def test_estimate_k2p_from_high_binding(study):
    k2p = estimate_k2p(study["tac_1tc"][:, 2], study["ref"], study["timing"])
    assert k2p == pytest.approx(REF_K2P, rel=0.01)
    fits = fit_roi(study["tac_1tc"], study["ref"], study["timing"], "mrtm2")
    assert fits[0].k2p_per_min == pytest.approx(REF_K2P, rel=0.01)
    np.testing.assert_allclose(_bp(fits), BP_TRUE, rtol=0.01)


WINDOWS = {"baseline": (5.0, 40.0), "challenge": (45.0, 90.0)}


@pytest.mark.parametrize("model", ["mrtm", "mrtm2", "srtm", "logan"])
def test_windows_constant_bp_integrals_from_injection(study, model):
    # Same BP in both windows: only right if integrals run from injection.
    options = {"k2p_per_min": REF_K2P} if model in ("mrtm2", "logan") else {}
    fits = fit_windows(
        study["tac_1tc"], study["ref"], study["timing"], model, WINDOWS, **options
    )
    for name in WINDOWS:
        np.testing.assert_allclose(_bp(fits[name]), BP_TRUE, rtol=0.01)
        window = fits[name][0].window_min
        mid = study["timing"].frame_mid_min[fits[name][0].frame_mask]
        assert mid.min() >= window[0] and mid.max() <= window[1]


@pytest.mark.parametrize("model", ["mrtm2", "logan"])
def test_windows_recover_change_at_45_min(study, model):
    tac = challenge_tac(3.0, 2.4)
    fits = fit_windows(
        tac, study["ref"], study["timing"], model, WINDOWS, k2p_per_min=REF_K2P
    )
    base, chal = fits["baseline"][0].bp_nd, fits["challenge"][0].bp_nd
    assert base == pytest.approx(3.0, rel=0.01)
    assert chal == pytest.approx(2.4, rel=0.01)
    delta = delta_bp(np.array([base]), np.array([chal]))[0]
    assert delta == pytest.approx(0.6, abs=0.03)
    assert delta > 0  # reduced availability during the challenge: positive


def test_window_changes_result_when_bp_changes(study):
    # A fit over the whole scan differs from the challenge window: the window
    # really excludes frames.
    tac = challenge_tac(3.0, 2.4)
    whole = fit_roi(tac, study["ref"], study["timing"], "mrtm2", k2p_per_min=REF_K2P)
    chal = fit_roi(
        tac, study["ref"], study["timing"], "mrtm2", k2p_per_min=REF_K2P,
        window=WINDOWS["challenge"],
    )  # fmt: skip
    assert abs(whole[0].bp_nd - chal[0].bp_nd) > 0.1


def test_two_separate_scans(study):
    timing, ref = study["timing"], study["ref"]
    base = target_tacs([3.0, 1.0])
    chal = target_tacs([2.4, 1.0])
    for model in ("srtm", "mrtm", "srtm-bf"):
        fits = fit_two_scans((base, ref, timing), (chal, ref, timing), model)
        bp_b, bp_c = _bp(fits["baseline"]), _bp(fits["challenge"])
        np.testing.assert_allclose(bp_b, [3.0, 1.0], rtol=0.01)
        np.testing.assert_allclose(bp_c, [2.4, 1.0], rtol=0.01)
        np.testing.assert_allclose(delta_bp(bp_b, bp_c), [0.6, 0.0], atol=0.03)


def test_two_scans_with_different_frame_schedules():
    starts, durations = frame_schedule_min()
    short_d = np.r_[durations[:14], np.full(10, 5.0)]  # a 70-min second scan
    short_s = np.r_[0.0, np.cumsum(short_d)[:-1]]
    timing_a = FrameTiming(starts * 60, durations * 60)
    timing_b = FrameTiming(short_s * 60, short_d * 60)
    scans = {
        "baseline": (target_tacs([2.0]), reference_tac(), timing_a),
        "challenge": (
            target_tacs([1.5], starts=short_s, durations=short_d),
            reference_tac(short_s, short_d),
            timing_b,
        ),
    }
    fits = fit_scans(scans, "mrtm")
    assert fits["baseline"][0].bp_nd == pytest.approx(2.0, rel=0.01)
    assert fits["challenge"][0].bp_nd == pytest.approx(1.5, rel=0.01)


def test_logan_t_star_direct(study):
    t_star = logan_t_star(
        study["tac_2tc"][:, 2], study["ref"], study["timing"], k2p_per_min=REF_K2P
    )
    stricter = logan_t_star(
        study["tac_2tc"][:, 2], study["ref"], study["timing"],
        k2p_per_min=REF_K2P, tolerance=0.02,
    )  # fmt: skip
    assert stricter >= t_star


def test_roifit_row_has_table_columns(study):
    fit = fit_roi(study["tac_1tc"][:, :1], study["ref"], study["timing"], "srtm")[0]
    row = fit.as_row()
    for key in ("name", "BP_ND", "BP_ND_se", "R1", "k2", "k2p", "t_star_min", "r2"):
        assert key in row
    assert row["n_frames"] == 28
    assert np.isnan(row["t_star_min"])


def test_srtm_with_three_frames_has_no_se(study):
    fit = fit_roi(
        study["tac_1tc"][:, 1], study["ref"], study["timing"], "srtm",
        window=(75.0, 90.0),
    )[0]  # fmt: skip
    assert fit.n_frames == 3
    assert np.isfinite(fit.bp_nd) and np.isnan(fit.bp_nd_se)


def test_singular_roi_fit_warns_and_gives_nan(study):
    ref = study["ref"]
    with pytest.warns(MorWarning, match="failed"):
        tacs = np.stack([ref, study["tac_1tc"][:, 0]], 1)
        fits = fit_roi(tacs, ref, study["timing"], "mrtm", names=["occ", "cortex"])
    assert np.isnan(fits[0].bp_nd) and fits[0].name == "occ"
    assert fits[1].bp_nd == pytest.approx(BP_TRUE[0], rel=0.01)
