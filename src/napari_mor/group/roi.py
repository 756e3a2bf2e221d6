"""ROI-level group tests with scipy.stats (one row per region)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from napari_mor._errors import MorError
from napari_mor.defaults import MIN_BP_BASE

__all__ = [
    "ROI_CORRELATION_COLUMNS",
    "ROI_TEST_COLUMNS",
    "cohort_roi_tests",
    "roi_means",
    "roi_pct_delta",
    "roi_tests",
    "roi_value_rows",
]

#: Columns of ``roi_tests.tsv`` for the paired and one-sample tests.
ROI_TEST_COLUMNS = ("region", "n", "mean_pct_delta", "sd_pct_delta", "t", "p")
#: Columns of ``roi_tests.tsv`` for the Pearson and Spearman correlations.
ROI_CORRELATION_COLUMNS = ("region", "n", "mean_pct_delta", "sd_pct_delta", "r", "p")


def roi_means(
    maps: np.ndarray, labels: np.ndarray, lut: dict[int, str]
) -> tuple[list[str], np.ndarray]:
    """Mean of each subject's map in each labelled region (NaNs ignored).

    Parameters
    ----------
    maps : ndarray, shape (n_subjects, x, y, z)
    labels : ndarray of int, shape (x, y, z)
        On the same grid.
    lut : dict of int to str

    Returns
    -------
    names : list of str
    means : ndarray, shape (n_subjects, n_regions)
    """
    maps = np.asarray(maps, dtype=np.float64)
    labels = np.asarray(labels)
    if maps.shape[1:] != labels.shape:
        raise MorError(
            f"Maps have grid {maps.shape[1:]} but the labels {labels.shape}; resample "
            "the labels onto the map grid (napari_mor.rois.resample_labels)."
        )
    present = [lab for lab in sorted(lut) if np.any(labels == lab)]
    if not present:
        raise MorError("None of the LUT's labels occurs in the label image.")
    flat = maps.reshape(maps.shape[0], -1)
    lab = labels.ravel()
    finite = np.isfinite(flat)
    values = np.where(finite, flat, 0.0)
    sums = np.stack([values[:, lab == v].sum(1) for v in present], 1)
    counts = np.stack([finite[:, lab == v].sum(1) for v in present], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return [lut[v] for v in present], means


def roi_tests(
    names: Sequence[str],
    bp_baseline: np.ndarray | None = None,
    bp_challenge: np.ndarray | None = None,
    delta: np.ndarray | None = None,
    covariate: Sequence[float] | None = None,
) -> list[dict]:
    """Paired t (baseline vs challenge) and correlations of delta with a covariate.

    Parameters
    ----------
    names : sequence of str, length n_regions
    bp_baseline, bp_challenge : ndarray, shape (n_subjects, n_regions), optional
        Regional BP_ND; give both for the paired t test.
    delta : ndarray, shape (n_subjects, n_regions), optional
        Regional delta-BP (default baseline - challenge).
    covariate : array_like, shape (n_subjects,), optional
        For Pearson and Spearman correlations with delta.

    Returns
    -------
    rows : list of dict
        Per region: ``region``, ``n``, ``mean_delta_bp``, ``pct_delta_bp`` (when
        BP given), ``t``, ``p`` (``scipy.stats.ttest_rel`` or ``ttest_1samp`` of
        delta), and with a covariate ``pearson_r``, ``pearson_p``,
        ``spearman_rho``, ``spearman_p``. Subjects with NaN are left out per
        region.
    """
    if delta is None:
        if bp_baseline is None or bp_challenge is None:
            raise MorError("Give delta or both bp_baseline and bp_challenge.")
        delta = np.asarray(bp_baseline, float) - np.asarray(bp_challenge, float)
    delta = np.asarray(delta, dtype=np.float64)
    if delta.ndim != 2 or delta.shape[1] != len(names):
        raise MorError(
            f"Regional data have shape {delta.shape}; expected (n_subjects, "
            f"{len(names)})."
        )
    cov = None if covariate is None else np.asarray(covariate, dtype=np.float64)
    if cov is not None and cov.shape[0] != delta.shape[0]:
        raise MorError(
            f"The covariate has {cov.shape[0]} values for {delta.shape[0]} subjects."
        )
    rows = []
    for j, name in enumerate(names):  # one test per region
        d = delta[:, j]
        ok = np.isfinite(d) & (np.isfinite(cov) if cov is not None else True)
        row = {"region": name, "n": int(ok.sum()), "mean_delta_bp": np.nan}
        if ok.sum() >= 3:
            row["mean_delta_bp"] = float(d[ok].mean())
            if bp_baseline is not None and bp_challenge is not None:
                b = np.asarray(bp_baseline, float)[ok, j]
                c = np.asarray(bp_challenge, float)[ok, j]
                res = stats.ttest_rel(b, c)
                row["pct_delta_bp"] = float(100 * (b - c).mean() / b.mean())
            else:
                res = stats.ttest_1samp(d[ok], 0.0)
            row["t"], row["p"] = float(res.statistic), float(res.pvalue)
            if cov is not None:
                pr = stats.pearsonr(d[ok], cov[ok])
                sr = stats.spearmanr(d[ok], cov[ok])
                row["pearson_r"], row["pearson_p"] = (
                    float(pr.statistic),
                    float(pr.pvalue),
                )
                row["spearman_rho"], row["spearman_p"] = (
                    float(sr.statistic),
                    float(sr.pvalue),
                )
        rows.append(row)
    return rows


def roi_pct_delta(
    base_means: np.ndarray, chal_means: np.ndarray, min_bp_base: float = MIN_BP_BASE
) -> np.ndarray:
    """Each subject's percent delta-BP_ND from the ratio of region means.

    ``100 * (mean BP_baseline - mean BP_challenge) / mean BP_baseline`` per
    subject and region; NaN where the mean baseline BP_ND is below
    ``min_bp_base`` (e.g. the reference region). Nearly unbiased under voxel
    noise, unlike the region mean of a voxelwise percent map.

    Parameters
    ----------
    base_means, chal_means : ndarray, shape (n_subjects, n_regions)
        Region means of the BP_ND maps (:func:`roi_means`).
    min_bp_base : float

    Returns
    -------
    pct_delta : ndarray, shape (n_subjects, n_regions)
    """
    from napari_mor.maps import pct_delta_bp

    base = np.asarray(base_means, dtype=np.float64)
    chal = np.asarray(chal_means, dtype=np.float64)
    if base.shape != chal.shape:
        raise MorError(
            f"Baseline region means {base.shape} and challenge region means "
            f"{chal.shape} differ in shape."
        )
    return np.asarray(pct_delta_bp(base, chal, min_bp_base), dtype=np.float64)


def cohort_roi_tests(
    names: Sequence[str],
    *,
    test: str = "paired",
    base_means: np.ndarray | None = None,
    chal_means: np.ndarray | None = None,
    delta_means: np.ndarray | None = None,
    covariate: Sequence[float] | None = None,
    min_bp_base: float = MIN_BP_BASE,
) -> list[dict]:
    """One row per region for ``roi_tests.tsv``.

    Parameters
    ----------
    names : sequence of str, length n_regions
    test : {"paired", "one-sample", "pearson", "spearman"}
        ``paired``: ``scipy.stats.ttest_rel`` of the region means, baseline vs
        challenge; ``one-sample``: ``ttest_1samp`` of the region means of the
        delta-BP maps; ``pearson`` / ``spearman``: correlation of each
        subject's percent delta with ``covariate``.
    base_means, chal_means : ndarray, shape (n_subjects, n_regions), optional
        Region means of the BP_ND maps; they give ``mean_pct_delta`` and
        ``sd_pct_delta`` (:func:`roi_pct_delta`, then averaged over subjects).
    delta_means : ndarray, shape (n_subjects, n_regions), optional
        Region means of the delta-BP maps (``one-sample``; default
        ``base_means - chal_means``).
    covariate : array_like, shape (n_subjects,), optional
        For the correlations.
    min_bp_base : float

    Returns
    -------
    rows : list of dict
        :data:`ROI_TEST_COLUMNS` (``t``, ``p`` of the paired / one-sample test)
        or :data:`ROI_CORRELATION_COLUMNS` (``r``, ``p`` of the correlation).
        ``n`` counts the subjects used (finite values); with fewer than 3 the
        statistics are NaN.
    """
    if test not in ("paired", "one-sample", "pearson", "spearman"):
        raise MorError(
            f"test must be paired, one-sample, pearson or spearman; got {test!r}."
        )
    have_bp = base_means is not None and chal_means is not None
    if test == "paired" and not have_bp:
        raise MorError("The paired ROI test needs baseline and challenge BP maps.")
    pct = roi_pct_delta(base_means, chal_means, min_bp_base) if have_bp else None
    if delta_means is None:
        if not have_bp:
            raise MorError("Give the delta-BP region means or both BP region means.")
        delta_means = np.asarray(base_means, float) - np.asarray(chal_means, float)
    delta = np.asarray(delta_means, dtype=np.float64)
    if delta.ndim != 2 or delta.shape[1] != len(names):
        raise MorError(
            f"Regional data have shape {delta.shape}; expected (n_subjects, "
            f"{len(names)})."
        )
    cov = None
    if test in ("pearson", "spearman"):
        if covariate is None:
            raise MorError(f"The {test} ROI correlation needs a covariate.")
        cov = np.asarray(covariate, dtype=np.float64)
        if cov.shape != (delta.shape[0],):
            raise MorError(
                f"The covariate has {cov.size} values for {delta.shape[0]} subjects."
            )
    rows = []
    for j, name in enumerate(names):  # one test per region
        d = delta[:, j]
        ok = np.isfinite(d)
        if pct is not None:
            ok &= np.isfinite(pct[:, j])
        if cov is not None:
            ok &= np.isfinite(cov)
        row = {"region": name, "n": int(ok.sum()), "mean_pct_delta": np.nan}
        row["sd_pct_delta"] = np.nan
        stat_key = "r" if cov is not None else "t"
        row[stat_key], row["p"] = np.nan, np.nan
        if ok.sum() >= 3:
            if pct is not None:
                row["mean_pct_delta"] = float(pct[ok, j].mean())
                row["sd_pct_delta"] = float(pct[ok, j].std(ddof=1))
            if test == "paired":
                res = stats.ttest_rel(
                    np.asarray(base_means, float)[ok, j],
                    np.asarray(chal_means, float)[ok, j],
                )
            elif test == "one-sample":
                res = stats.ttest_1samp(d[ok], 0.0)
            else:
                x = pct[ok, j] if pct is not None else d[ok]
                method = stats.pearsonr if test == "pearson" else stats.spearmanr
                res = method(x, cov[ok])
            row[stat_key], row["p"] = float(res.statistic), float(res.pvalue)
        rows.append(row)
    return rows


def roi_value_rows(
    subjects: Sequence[str],
    names: Sequence[str],
    pct_delta: np.ndarray | None = None,
    base_means: np.ndarray | None = None,
    chal_means: np.ndarray | None = None,
    delta_means: np.ndarray | None = None,
) -> tuple[list[dict], list[str]]:
    """Rows and columns of ``roi_values.tsv`` (one row per subject).

    Columns: ``participant_id``, then per region ``REGION`` (percent delta from
    the ratio of region means, when BP maps are given, else the mean delta-BP),
    then ``REGION_bp_baseline``, ``REGION_bp_challenge`` and
    ``REGION_delta_bp`` for the matrices given.
    """
    first = pct_delta if pct_delta is not None else delta_means
    if first is None:
        raise MorError("Give the percent delta or the delta-BP region means.")
    columns = ["participant_id", *names]
    extra = [
        (suffix, values)
        for suffix, values in (
            ("bp_baseline", base_means),
            ("bp_challenge", chal_means),
            ("delta_bp", delta_means),
        )
        if values is not None
    ]
    columns += [f"{name}_{suffix}" for suffix, _ in extra for name in names]
    rows = []
    for i, sub in enumerate(subjects):
        row = {"participant_id": sub}
        row.update({name: float(first[i, j]) for j, name in enumerate(names)})
        for suffix, values in extra:
            row.update(
                {
                    f"{name}_{suffix}": float(values[i, j])
                    for j, name in enumerate(names)
                }
            )
        rows.append(row)
    return rows, columns
