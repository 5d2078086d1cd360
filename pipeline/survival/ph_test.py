"""Test of proportional hazards from scaled Schoenfeld residuals (R survival 3.x cox.zph)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from .cox import CoxResult
from .cox_core import efron_terms, information, rowdot
from .kaplan_meier import event_table


def _transformed_times(
    time: np.ndarray, event: np.ndarray, transform: str | Callable
) -> np.ndarray:
    """g(t) for each row: 'km' = 1 - left-continuous pooled unweighted KM, as cox.zph."""
    if callable(transform):
        return np.asarray(transform(time), dtype=float)
    if transform == "km":
        utime, n_risk, n_event, _ = event_table(time, event, np.ones(time.size))
        surv = np.cumprod(1.0 - n_event / n_risk)
        surv_before = np.concatenate([[1.0], surv[:-1]])
        return 1.0 - surv_before[np.searchsorted(utime, time)]
    if transform == "identity":
        return time.astype(float)
    if transform == "log":
        return np.log(time)
    if transform == "rank":
        return stats.rankdata(time)
    raise ValueError("transform must be 'km', 'identity', 'log', 'rank' or a callable")


def ph_test(result: CoxResult, transform: str | Callable = "km") -> pd.DataFrame:
    """Score test of a time-varying coefficient beta_k + theta_k g(t), per covariate and GLOBAL.

    Reproduces R's cox.zph (survival >= 3.0): the score for theta at (beta-hat, 0) with the
    full 2p x 2p information, so each row's chisq has 1 df and GLOBAL has p df.
    """
    data = result.data
    beta = result.coef.to_numpy()
    terms = efron_terms(data, beta)
    dead = data.event > 0
    gt = _transformed_times(data.time, data.event, transform)
    gt = gt - gt[dead].mean()
    g = gt[data.group_start[data.death_groups]]  # one value per death block
    p = beta.size
    ew = data.weight * data.event
    u_theta = rowdot(data.xt, ew * gt) - rowdot(terms.mean, g[data.rep] * terms.term_wt)
    i11 = information(data, terms)
    i12 = information(data, terms, g)
    i22 = information(data, terms, g * g)
    imat = np.block([[i11, i12], [i12.T, i22]])
    u = np.concatenate([np.zeros(p), u_theta])
    chisq = np.empty(p + 1)
    for k in range(p):  # loop over covariates only
        idx = np.concatenate([np.arange(p), [p + k]])
        uk = u[idx]
        chisq[k] = uk @ np.linalg.solve(imat[np.ix_(idx, idx)], uk)
    chisq[p] = u @ np.linalg.solve(imat, u)
    df = np.ones(p + 1, dtype=int)
    df[p] = p
    out = pd.DataFrame(
        {"chisq": chisq, "df": df, "p": stats.chi2.sf(chisq, df)},
        index=pd.Index([*result.coef.index, "GLOBAL"], name="term"),
    )
    return out
