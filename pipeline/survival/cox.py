"""Cox proportional-hazards regression matching R's coxph (Efron ties), with fast robust SEs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._util import z_value
from .concordance import concordance_index
from .cox_core import CoxData, EfronTerms, gram, matvec, newton_raphson, prepare, score_residuals


@dataclass
class CoxResult:
    """Fitted Cox model: coefficient table, likelihood/Wald/score tests and model data.

    `summary` columns: coef, se (model-based), robust_se (NaN unless robust/cluster), hr,
    lower, upper, z, p; the last four use robust_se when a robust variance was requested.
    `var` is the variance used for inference (robust if requested), `naive_var` the inverse
    information. Tests are dicts with stat, df, p.
    """

    summary: pd.DataFrame
    coef: pd.Series
    var: pd.DataFrame
    naive_var: pd.DataFrame
    robust_var: pd.DataFrame | None
    loglik: float
    loglik_null: float
    lr_test: dict[str, float]
    wald_test: dict[str, float]
    score_test: dict[str, float]
    concordance: float
    n: int
    n_events: int
    ties: str
    conf_level: float
    iterations: int
    converged: bool
    data: CoxData = field(repr=False)
    terms: EfronTerms = field(repr=False)
    information: np.ndarray = field(repr=False)


def _test(stat: float, df: int) -> dict[str, float]:
    return {"stat": float(stat), "df": int(df), "p": float(stats.chi2.sf(stat, df))}


def _codes(frame: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Integer codes for the combinations of the given columns."""
    if len(cols) == 1:
        return pd.factorize(frame[cols[0]], sort=True)[0].astype(np.int64)
    return frame.groupby(list(cols), sort=True).ngroup().to_numpy(np.int64)


def fit_cox(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: Sequence[str],
    *,
    strata: str | Sequence[str] | None = None,
    weights_col: str | None = None,
    cluster_col: str | None = None,
    robust: bool = False,
    ties: str = "efron",
    conf_level: float = 0.95,
    compute_concordance: bool = True,
    entry_col: str | None = None,
) -> CoxResult:
    """Fit a Cox model by Newton-Raphson on the Efron (or Breslow) partial likelihood.

    Matches R coxph point estimates, naive and robust (`robust=True`, or grouped sandwich by
    `cluster_col`: sum of dfbeta within cluster) variances, and the LR/Wald/score tests.
    O(n log n + n p^2) per fit. Rows with missing values in used columns are dropped.

    `entry_col` gives counting-process (start, stop] rows, as R's Surv(start, stop, event):
    a row is at risk at event times t with entry < t <= duration (left truncation, or one
    person's follow-up split into episodes, e.g. with time-varying weights). Entry must be
    below duration. With several rows per person pass `cluster_col` (the person) for the
    robust variance. Concordance is not computed for such data (NaN): the pairwise
    concordance here does not know risk sets.
    """
    covariates = list(covariates)
    if not covariates:
        raise ValueError("at least one covariate is required")
    strata_cols = [strata] if isinstance(strata, str) else list(strata or [])
    used = [duration_col, event_col, *covariates, *strata_cols]
    used += [c for c in (weights_col, cluster_col, entry_col) if c is not None]
    frame = df[list(dict.fromkeys(used))].dropna()
    n = len(frame)
    if n == 0:
        raise ValueError("no complete rows")
    x = frame[covariates].to_numpy(dtype=float)
    time = frame[duration_col].to_numpy(dtype=float)
    event = frame[event_col].to_numpy(dtype=float)
    if not np.isin(event, (0.0, 1.0)).all():
        raise ValueError("event column must be 0/1")
    weight = np.ones(n) if weights_col is None else frame[weights_col].to_numpy(dtype=float)
    if (weight < 0).any():
        raise ValueError("weights must be non-negative")
    stratum = _codes(frame, strata_cols) if strata_cols else np.zeros(n, dtype=np.int64)
    entry = None
    if entry_col is not None:
        entry = frame[entry_col].to_numpy(dtype=float)
        if not (entry < time).all():
            raise ValueError(f"{entry_col} must be below {duration_col} on every row "
                             "(a row is at risk on (entry, stop])")

    if event.sum() == 0:
        raise ValueError("no events: the Cox model is not estimable")
    data = prepare(x, time, event, weight, stratum, ties=ties, entry=entry)
    try:
        beta, terms, info, terms0, info0, iters, converged = newton_raphson(data)
        naive = np.linalg.inv(info)
    except np.linalg.LinAlgError as exc:
        raise ValueError("singular information matrix: constant or collinear covariates") from exc
    # monotone likelihood (e.g. every event in one group): the coefficient runs off to
    # infinity and its model SE explodes; such a fit is not an estimate (R's coxph warns)
    spread = x.std(axis=0)
    if (np.sqrt(np.diag(naive)) * np.where(spread > 0, spread, 1.0) > 100).any():
        raise ValueError("monotone likelihood: a coefficient is infinite (e.g. every event in "
                         "one group)")
    use_robust = robust or cluster_col is not None
    robust_var = None
    if use_robust:
        # sandwich: V (sum_c U_c U_c') V, with U_c the weighted score residuals summed
        # within cluster c (dfbeta = U V); each row is its own cluster unless cluster_col
        resid = score_residuals(data, terms) * data.weight
        if cluster_col is not None:
            cl = pd.factorize(frame[cluster_col].to_numpy()[data.order])[0]
            resid = np.stack([np.bincount(cl, weights=r) for r in resid])
        meat = gram(resid, resid)
        robust_var = naive @ meat @ naive
        robust_var = (robust_var + robust_var.T) / 2.0
    var = robust_var if robust_var is not None else naive

    se = np.sqrt(np.diag(naive))
    rse = np.sqrt(np.diag(robust_var)) if robust_var is not None else np.full(beta.size, np.nan)
    se_used = rse if robust_var is not None else se
    z = z_value(conf_level)
    zstat = beta / se_used
    summary = pd.DataFrame(
        {
            "coef": beta,
            "se": se,
            "robust_se": rse,
            "hr": np.exp(beta),
            "lower": np.exp(beta - z * se_used),
            "upper": np.exp(beta + z * se_used),
            "z": zstat,
            "p": 2.0 * stats.norm.sf(np.abs(zstat)),
        },
        index=pd.Index(covariates, name="covariate"),
    )
    p = beta.size
    score_stat = float(terms0.score @ np.linalg.solve(info0, terms0.score))
    wald_stat = float(beta @ np.linalg.solve(var, beta))
    if compute_concordance and entry is None:
        lp = matvec(beta, data.xt)
        conc, _ = concordance_index(
            data.time,
            data.event,
            lp,
            strata=data.stratum if data.multi_strata else None,
            weights=None if weights_col is None else data.weight,
        )
    else:
        conc = np.nan
    names = pd.Index(covariates)
    return CoxResult(
        summary=summary,
        coef=pd.Series(beta, index=names, name="coef"),
        var=pd.DataFrame(var, index=names, columns=names),
        naive_var=pd.DataFrame(naive, index=names, columns=names),
        robust_var=None
        if robust_var is None
        else pd.DataFrame(robust_var, index=names, columns=names),
        loglik=terms.loglik,
        loglik_null=terms0.loglik,
        lr_test=_test(2.0 * (terms.loglik - terms0.loglik), p),
        wald_test=_test(wald_stat, p),
        score_test=_test(score_stat, p),
        concordance=float(conc),
        n=n,
        n_events=int(event.sum()),
        ties=ties,
        conf_level=conf_level,
        iterations=iters,
        converged=converged,
        data=data,
        terms=terms,
        information=info,
    )
