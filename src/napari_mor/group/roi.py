"""ROI-level group tests with scipy.stats (one row per region)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from napari_mor._errors import MorError

__all__ = ["roi_means", "roi_tests"]


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
