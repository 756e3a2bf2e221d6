"""Voxelwise second-level statistics: one-sample / paired t, correlation, GLM.

Every test is an ordinary-least-squares GLM ``Y = X beta + e`` fitted to all
voxels at once (``Y`` is ``(n_subjects, n_voxels)``), with a t statistic per
voxel for one contrast. One-sample and paired t use an intercept-only design;
Pearson correlation uses ``[1, covariate]`` (t of the slope, r = t / sqrt(t^2 +
df)); Spearman correlation is Pearson on ranks. Nuisance covariates add columns
(partial correlation / adjusted mean). No Python loop runs over voxels.

Delta-BP = BP_baseline - BP_challenge: positive = activation (reduced
availability during the challenge, endogenous opioid release).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from napari_mor._errors import MorError

__all__ = [
    "TAILS",
    "TESTS",
    "Design",
    "GroupTest",
    "correlation_test",
    "glm_test",
    "make_design",
    "one_sample_test",
    "p_from_t",
    "paired_test",
    "t_threshold",
    "z_from_t",
]

#: Voxelwise tests.
TESTS = ("one-sample", "paired", "pearson", "spearman")
#: Alternative hypotheses.
TAILS = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class Design:
    """A GLM design with one tested contrast.

    Attributes
    ----------
    x : ndarray, shape (n_subjects, n_columns)
        Design matrix (full model).
    contrast : ndarray, shape (n_columns,)
        Tested contrast vector.
    nuisance : ndarray, shape (n_subjects, n_nuisance)
        Columns of the reduced model (full model minus the tested effect), used
        for Freedman-Lane permutation; zero columns for a plain one-sample test.
    names : tuple of str
        Column names.
    permutation : {"sign-flip", "permute"}
        Sign-flipping (one-sample / paired: symmetric errors) or permutation of
        subjects (correlation: exchangeable errors).
    """

    x: np.ndarray
    contrast: np.ndarray
    nuisance: np.ndarray
    names: tuple[str, ...]
    permutation: str

    @property
    def n_subjects(self) -> int:
        return int(self.x.shape[0])

    @property
    def df(self) -> int:
        """Residual degrees of freedom, n - rank(X)."""
        return int(self.x.shape[0] - np.linalg.matrix_rank(self.x))


@dataclass
class GroupTest:
    """Result of a voxelwise test.

    Attributes
    ----------
    test : str
        One of :data:`TESTS` (or ``"glm"``).
    t : ndarray, shape (n_voxels,), float64
        t statistic of the contrast (sign: positive = activation for delta-BP,
        positive correlation for correlations).
    df : int
        Residual degrees of freedom.
    tail : str
        Alternative for ``p`` and ``z``.
    p : ndarray, shape (n_voxels,)
        Uncorrected p values.
    z : ndarray, shape (n_voxels,)
        Signed Z scores with the same one-sided tail probability as ``t``.
    effect : ndarray, shape (n_voxels,)
        Contrast estimate (mean delta-BP; slope per covariate unit).
    r : ndarray or None
        Correlation coefficient (Pearson/Spearman, partial with nuisance).
    design : Design
    info : dict
    """

    test: str
    t: np.ndarray
    df: int
    tail: str
    p: np.ndarray
    z: np.ndarray
    effect: np.ndarray
    design: Design
    r: np.ndarray | None = None
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------- checks


def _check_tail(tail: str) -> str:
    if tail not in TAILS:
        raise MorError(f"tail must be one of {TAILS}; got {tail!r}.")
    return tail


def _as_data(y, name: str = "data") -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise MorError(
            f"{name} must be 2-D (n_subjects, n_voxels); got shape {y.shape}. "
            "Flatten each subject's map inside the group mask first."
        )
    if y.shape[0] < 3:
        raise MorError(
            f"{name} has {y.shape[0]} subjects; a group test needs at least 3."
        )
    if not np.all(np.isfinite(y)):
        n_bad = int((~np.isfinite(y)).any(axis=0).sum())
        raise MorError(
            f"{name} has non-finite values in {n_bad} voxels; restrict the group "
            "mask to voxels finite in every subject (see napari_mor.group.group_mask)."
        )
    return y


def _as_covariates(
    values: Mapping[str, Sequence[float]] | None, n: int, what: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    if not values:
        return np.zeros((n, 0)), ()
    cols, names = [], []
    for name, col in values.items():
        col = np.asarray(col, dtype=np.float64).ravel()
        if col.shape[0] != n:
            raise MorError(
                f"{what} {name!r} has {col.shape[0]} values for {n} subjects; give "
                "one value per subject in the same order."
            )
        if not np.all(np.isfinite(col)):
            raise MorError(
                f"{what} {name!r} has missing values; fill them or drop those "
                "subjects (participants.tsv 'n/a')."
            )
        if np.ptp(col) == 0:
            raise MorError(f"{what} {name!r} is constant; it cannot be estimated.")
        cols.append(col - col.mean())
        names.append(str(name))
    return np.column_stack(cols), tuple(names)


def make_design(
    n_subjects: int,
    covariate: Sequence[float] | None = None,
    nuisance: Mapping[str, Sequence[float]] | None = None,
    covariate_name: str = "covariate",
) -> Design:
    """Build the GLM for a one-sample (no covariate) or correlation test.

    Parameters
    ----------
    n_subjects : int
    covariate : array_like, shape (n_subjects,), optional
        Tested covariate (e.g. trait resiliency); None for a one-sample test
        of the mean.
    nuisance : mapping of str to array_like, optional
        Nuisance covariates (each centred), e.g. ``{"age": ages}``.
    covariate_name : str

    Returns
    -------
    Design
    """
    n = int(n_subjects)
    nuis, nuis_names = _as_covariates(nuisance, n, "Nuisance covariate")
    ones = np.ones((n, 1))
    if covariate is None:
        x = np.column_stack([ones, nuis])
        contrast = np.zeros(x.shape[1])
        contrast[0] = 1.0
        return Design(x, contrast, nuis, ("intercept", *nuis_names), "sign-flip")
    cov, _ = _as_covariates({covariate_name: covariate}, n, "Covariate")
    x = np.column_stack([ones, cov, nuis])
    contrast = np.zeros(x.shape[1])
    contrast[1] = 1.0
    reduced = np.column_stack([ones, nuis])
    return Design(
        x, contrast, reduced, ("intercept", covariate_name, *nuis_names), "permute"
    )


def _check_design(design: Design, n: int) -> None:
    if design.x.shape[0] != n:
        raise MorError(
            f"The design has {design.x.shape[0]} rows but the data {n} subjects."
        )
    if design.df < 1:
        raise MorError(
            f"The design has {design.x.shape[1]} columns for {n} subjects: no "
            "residual degrees of freedom; use fewer covariates or more subjects."
        )
    if np.linalg.matrix_rank(design.x) < design.x.shape[1]:
        raise MorError(
            f"The design columns {design.names} are collinear; drop a redundant "
            "covariate."
        )


# ----------------------------------------------------------------- engine


class _Glm:
    """Precomputed pieces of a design for t maps under Freedman-Lane resampling.

    For a resampling matrix P (permutation or sign flips, orthogonal), the
    resampled data are ``Y* = H_Z Y + P R_Z`` with ``R_Z`` the residuals of the
    reduced model Z. Because Z lies in the span of X and ``P`` preserves norms,
    contrast = ``a' H_Z Y + (P' a)' R_Z`` and residual sum of squares =
    ``|R_Z|^2 - |Q' P R_Z|^2`` (Q an orthonormal basis of X), so a block of B
    resamplings costs two matrix products of shape (B, n) x (n, V).
    """

    def __init__(self, design: Design) -> None:
        x, c = design.x, design.contrast
        self.design = design
        self.n = x.shape[0]
        self.df = design.df
        xtx_inv = np.linalg.pinv(x.T @ x)
        self.a = x @ xtx_inv @ c  # contrast = a' y
        self.var_factor = float(c @ xtx_inv @ c)
        self.q, _ = np.linalg.qr(x)
        z = design.nuisance
        if z.shape[1]:
            qz, _ = np.linalg.qr(z)
            self.hz = qz @ qz.T
        else:
            self.hz = None

    def split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fixed part of the contrast, reduced-model residuals and their |.|^2."""
        if self.hz is None:
            fixed = np.zeros(y.shape[1])
            resid = y
        else:
            fitted = self.hz @ y
            fixed = self.a @ fitted
            resid = y - fitted
        return fixed, resid, np.einsum("ij,ij->j", resid, resid)

    def t_block(
        self,
        p_a: np.ndarray,
        p_q: np.ndarray,
        fixed: np.ndarray,
        resid: np.ndarray,
        ss_resid: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """t and contrast maps for a block of resamplings.

        p_a : (B, n) rows ``(P_b' a)'``; p_q : (B, k, n) rows of ``(P_b' Q)'``.
        """
        effect = fixed + p_a @ resid  # (B, V)
        b, k, n = p_q.shape
        proj = (p_q.reshape(b * k, n) @ resid).reshape(b, k, -1)
        rss = ss_resid - np.einsum("bkv,bkv->bv", proj, proj)
        rss = np.maximum(rss, 0.0)
        se = np.sqrt(rss / self.df * self.var_factor)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, effect / se, 0.0)
        return t, effect


def p_from_t(t: np.ndarray, df: float, tail: str = "two-sided") -> np.ndarray:
    """Uncorrected p values of t statistics.

    Parameters
    ----------
    t : ndarray
    df : float
        Degrees of freedom.
    tail : {"two-sided", "greater", "less"}

    Returns
    -------
    p : ndarray, same shape
    """
    _check_tail(tail)
    t = np.asarray(t, dtype=np.float64)
    if tail == "greater":
        return stats.t.sf(t, df)
    if tail == "less":
        return stats.t.cdf(t, df)
    return np.minimum(1.0, 2.0 * stats.t.sf(np.abs(t), df))


def z_from_t(t: np.ndarray, df: float) -> np.ndarray:
    """Signed Z scores with the same one-sided tail probability as t.

    Computed in log space (``logsf``) so large t keep finite Z.
    """
    t = np.asarray(t, dtype=np.float64)
    log_tail = stats.t.logsf(np.abs(t), df)
    z = -stats.norm.ppf(np.exp(log_tail))
    tiny = ~np.isfinite(z)
    if np.any(tiny):  # beyond float range: asymptotic inverse of log Phi
        lt = -log_tail[tiny]
        z[tiny] = np.sqrt(2 * lt - np.log(2 * np.pi * 2 * lt))
    return np.sign(t) * z


def t_threshold(p_voxel: float, df: float, tail: str = "two-sided") -> float:
    """|t| (or t) above which a voxel passes ``p < p_voxel``."""
    _check_tail(tail)
    if not 0 < p_voxel < 1:
        raise MorError(f"The voxel threshold must be in (0, 1); got {p_voxel!r}.")
    q = p_voxel / 2 if tail == "two-sided" else p_voxel
    return float(stats.t.isf(q, df))


def glm_test(
    y: np.ndarray, design: Design, tail: str = "two-sided", test: str = "glm"
) -> GroupTest:
    """t map of a GLM contrast, fitted to all voxels at once.

    Parameters
    ----------
    y : ndarray, shape (n_subjects, n_voxels)
        One row per subject (e.g. delta-BP inside the group mask).
    design : Design
        From :func:`make_design` (or built by hand).
    tail : {"two-sided", "greater", "less"}
    test : str
        Name recorded in the result.

    Returns
    -------
    GroupTest
    """
    y = _as_data(y)
    _check_tail(tail)
    _check_design(design, y.shape[0])
    glm = _Glm(design)
    fixed, resid, ss = glm.split(y)
    identity = np.eye(glm.n)
    t, effect = glm.t_block(
        glm.a[None, :], (identity @ glm.q).T[None], fixed, resid, ss
    )
    t, effect = t[0], effect[0]
    r = None
    if design.permutation == "permute":
        r = t / np.sqrt(t**2 + glm.df)
    return GroupTest(
        test=test,
        t=t,
        df=glm.df,
        tail=tail,
        p=p_from_t(t, glm.df, tail),
        z=z_from_t(t, glm.df),
        effect=effect,
        design=design,
        r=r,
    )


def one_sample_test(
    y: np.ndarray,
    tail: str = "two-sided",
    nuisance: Mapping[str, Sequence[float]] | None = None,
) -> GroupTest:
    """One-sample t test of the mean (e.g. delta-BP > 0), per voxel.

    Parameters
    ----------
    y : ndarray, shape (n_subjects, n_voxels)
        Delta-BP (BP_baseline - BP_challenge) per subject.
    tail : {"two-sided", "greater", "less"}
        ``"greater"`` tests activation (mean delta-BP > 0).
    nuisance : mapping, optional
        Centred nuisance covariates (the intercept is then the adjusted mean).

    Returns
    -------
    GroupTest
        Equals ``scipy.stats.ttest_1samp(y, 0)`` without nuisance.
    """
    y = _as_data(y)
    return glm_test(y, make_design(y.shape[0], nuisance=nuisance), tail, "one-sample")


def paired_test(
    bp_baseline: np.ndarray,
    bp_challenge: np.ndarray,
    tail: str = "two-sided",
    nuisance: Mapping[str, Sequence[float]] | None = None,
) -> GroupTest:
    """Paired t test, baseline vs challenge, per voxel.

    Parameters
    ----------
    bp_baseline, bp_challenge : ndarray, shape (n_subjects, n_voxels)
        BP_ND per subject and condition.
    tail, nuisance
        As in :func:`one_sample_test`.

    Returns
    -------
    GroupTest
        t > 0 where BP_baseline > BP_challenge (activation); equals
        ``scipy.stats.ttest_rel(bp_baseline, bp_challenge)``.
    """
    base = _as_data(bp_baseline, "bp_baseline")
    chal = _as_data(bp_challenge, "bp_challenge")
    if base.shape != chal.shape:
        raise MorError(
            f"Baseline data have shape {base.shape} but challenge data "
            f"{chal.shape}; give both conditions for the same subjects and voxels."
        )
    result = one_sample_test(base - chal, tail, nuisance)
    result.test = "paired"
    return result


def rank_data(y: np.ndarray) -> np.ndarray:
    """Ranks along axis 0 (subjects), ties averaged (as scipy.stats.spearmanr)."""
    return stats.rankdata(np.asarray(y, dtype=np.float64), axis=0)


def correlation_test(
    y: np.ndarray,
    covariate: Sequence[float],
    method: str = "pearson",
    tail: str = "two-sided",
    nuisance: Mapping[str, Sequence[float]] | None = None,
    covariate_name: str = "covariate",
) -> GroupTest:
    """Correlation of each voxel with a subject covariate.

    Parameters
    ----------
    y : ndarray, shape (n_subjects, n_voxels)
        E.g. delta-BP per subject.
    covariate : array_like, shape (n_subjects,)
        E.g. trait resiliency.
    method : {"pearson", "spearman"}
        Spearman ranks ``y`` (per voxel) and the covariate first.
    tail : {"two-sided", "greater", "less"}
    nuisance : mapping, optional
        Partial correlation controlling for these covariates (Spearman: ranked
        too).
    covariate_name : str

    Returns
    -------
    GroupTest
        ``r`` equals ``scipy.stats.pearsonr`` / ``spearmanr`` without nuisance;
        ``t = r sqrt(df / (1 - r^2))`` with df = n - 2 - n_nuisance.
    """
    if method not in ("pearson", "spearman"):
        raise MorError(f"method must be 'pearson' or 'spearman'; got {method!r}.")
    y = _as_data(y)
    cov = np.asarray(covariate, dtype=np.float64).ravel()
    if method == "spearman":
        y = rank_data(y)
        cov = stats.rankdata(cov) if np.all(np.isfinite(cov)) else cov
        if nuisance:
            nuisance = {k: stats.rankdata(v) for k, v in nuisance.items()}
    design = make_design(y.shape[0], cov, nuisance, covariate_name)
    return glm_test(y, design, tail, method)
