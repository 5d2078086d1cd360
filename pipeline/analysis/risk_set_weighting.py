"""The primary comparison: everyone who started treatment, weighted within their risk sets.

Each treated person's index date starts a trial (sequential target-trial emulation). The trial's
comparison arm is its risk set: people eligible on that date (same site, similar time since
the qualifying offence, alive, at liberty, adult, not yet referred — people treated later
included until their own start), possibly a random sample of it with known sampling weights
(``cohort.build._risk_set_sql``).

**Weights (ATT within risk sets).** Treated people weigh 1. A control in trial j weighs
``s_c exp(x_c b) / sum_j s exp(x b)`` (``s``: its sampling weight, a Horvitz–Thompson factor),
normalised so that each trial's controls together stand for its one treated person: the odds
form of the risk-set propensity score (Lu 2005), with ``b`` chosen so that the weighted
comparison arm, pooled over the trials, has exactly the treated people's covariate means
(``risk_set_balance``: entropy balancing within risk sets). Site, the date and anything else
constant within a trial drop out.

The estimand is the average effect of starting treatment in everyone who started it and had at
least one eligible comparison person on their index date (those with none are counted and
named, never silently dropped).

**Uncertainty.** A person can be a control in many trials and later treated: rows are
clustered by person for sandwich SEs and resampled by person in the bootstrap (weights held
fixed; the score is not re-fitted), as in Danaei et al. (2013).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analysis.risk_set_balance import BalanceError, balancing_coefficients
from pipeline.config import EvaluationConfig

ANALYSIS = "weighted_risk_sets"


class RiskSetScoreError(ValueError):
    """The risk-set score could not be fitted; the message says why in plain words."""


@dataclass(frozen=True)
class RiskSetWeights:
    """The stacked, weighted frame of the primary analysis and what was left out."""

    frame: pd.DataFrame  # treated rows then control rows; weight, cluster, trial
    coef: pd.Series  # the score's coefficients (log odds of being the treated one)
    n_trials: int  # treated people with at least one eligible control
    n_no_control: int  # treated people whose risk set was empty
    ess_comparison: float  # Kish effective size of the weighted comparison arm


def dummy_coded(frame: pd.DataFrame, cfg: EvaluationConfig) -> pd.DataFrame:
    """Numeric covariates as floats and categorical levels as 0/1 columns ``name=level``
    (first level, in sorted order, left out)."""
    cols = {c: frame[c].astype(float) for c in cfg.covariates}
    for c in cfg.categorical:
        values = frame[c].astype(str)
        for lv in sorted(values.unique())[1:]:
            cols[f"{c}={lv}"] = (values == lv).astype(float)
    return pd.DataFrame(cols, index=frame.index)


def _design(stacked: pd.DataFrame, cfg: EvaluationConfig) -> pd.DataFrame:
    """``dummy_coded`` covariates; columns constant within every trial carry no information
    and are dropped."""
    x = dummy_coded(stacked, cfg)
    by_trial = x.groupby(stacked["trial"].to_numpy())
    spread = (by_trial.max() - by_trial.min()).max()  # vectorised: no Python call per trial
    keep = [c for c in x.columns if spread[c] > 0]
    return x[keep]


def risk_set_weights(units: pd.DataFrame, pairs: pd.DataFrame, cfg: EvaluationConfig
                     ) -> RiskSetWeights:
    """Fit the risk-set score and weight every trial's controls (see the module docstring).

    ``units``: the cohort frame (treated rows used); ``pairs``: the risk-set pair frame (one
    row per trial and control, with ``treated_key`` and ``sampling_weight``). Raises
    ``RiskSetScoreError`` when no trial has a control or the score cannot be fitted.
    """
    treated = units[units["treated"] == 1]
    has_control = treated["person_key"].isin(pairs["treated_key"])
    n_no_control = int((~has_control).sum())
    treated = treated[has_control].assign(trial=lambda f: f["person_key"], sampling_weight=1.0)
    controls = pairs.assign(trial=pairs["treated_key"], treated=0)
    if treated.empty:
        raise RiskSetScoreError("no treated person had an eligible comparison person on their "
                                "index date")
    stacked = pd.concat([treated, controls.reindex(columns=treated.columns)],
                        ignore_index=True)
    x = _design(stacked, cfg)
    trial_code = pd.factorize(stacked["trial"])[0]
    ctrl = stacked["treated"].to_numpy() == 0
    if x.shape[1] == 0:
        lp = np.zeros(len(stacked))
        coef = pd.Series(dtype=float)
    else:
        xm = x.to_numpy(float)
        target = np.zeros((trial_code.max() + 1, xm.shape[1]))
        target[trial_code[~ctrl]] = xm[~ctrl]
        try:
            b = balancing_coefficients(xm[ctrl], trial_code[ctrl],
                                       stacked["sampling_weight"].to_numpy(float)[ctrl],
                                       target)
        except BalanceError as exc:
            raise RiskSetScoreError(f"the risk-set weights could not be fitted ({exc})"
                                    ) from None
        coef = pd.Series(b, index=x.columns, name="coef")
        lp = xm @ b
    # odds within trial, shifted by the trial's maximum so that exp never overflows
    top = np.full(trial_code.max() + 1, -np.inf)
    np.maximum.at(top, trial_code[ctrl], lp[ctrl])
    odds = np.where(ctrl, stacked["sampling_weight"].to_numpy(float)
                    * np.exp(lp - top[trial_code]), 0.0)
    total = np.bincount(trial_code, weights=odds)
    weight = np.where(ctrl, odds / total[trial_code], 1.0)
    frame = stacked.assign(weight=weight, score_lp=lp, trial_code=trial_code,
                           cluster=pd.factorize(stacked["person_key"])[0])
    wc = weight[ctrl]
    ess = float(wc.sum() ** 2 / np.sum(wc**2)) if wc.size else 0.0
    return RiskSetWeights(frame, coef, len(treated), n_no_control, ess)


def distinct_at_risk(frame: pd.DataFrame, days: list[int]) -> dict[str, np.ndarray]:
    """People (not person-trials) still followed at each day, per arm: a person is at risk at
    day d when any of their rows lasts to d. Disclosure control is applied to these."""
    out = {}
    for arm, code in (("treated", 1), ("comparison", 0)):
        sub = frame[(frame["treated"] == code) & (frame["weight"] > 0)]
        last = np.sort(sub.groupby("person_key")["time_days"].max().to_numpy(float))
        out[arm] = len(last) - np.searchsorted(last, days, side="left")
    return out
