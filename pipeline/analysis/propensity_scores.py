"""Propensity scores of a cohort, their overlap, and trimming.

The score is P(treated | covariates on the index date), a logistic model (statsmodels, through
``pipeline.comparison.fit_propensity``) fitted on the treated units against the naive comparison
units (one per comparison person, entered on one of the dates they were eligible). The same
fitted model then scores every risk-set pair, with the comparison person's covariates measured
on the treated person's index date, so that a pair's distance compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.comparison import (
    PropensityModel,
    common_support,
    fit_propensity,
    overlap_summary,
    trim_common_support,
)
from pipeline.config import EvaluationConfig, Trim


def numeric_covariates(frame: pd.DataFrame, cfg: EvaluationConfig) -> pd.DataFrame:
    """``frame`` with the configured numeric covariates as floats (booleans become 0/1)."""
    return frame.assign(**{c: frame[c].astype(float) for c in cfg.covariates})


@dataclass(frozen=True)
class CohortScore:
    """A fitted score and how its inputs were prepared.

    Covariates without variation in the fitting sample are left out (``dropped``); levels of a
    categorical covariate held by only one arm would separate the model, so they are pooled
    with the covariate's most common level (``pooled``: covariate -> {level: pooled into}),
    and the same recoding is applied to every row scored later (levels unseen at fit time are
    pooled the same way).
    """

    model: PropensityModel
    dropped: tuple[str, ...]
    pooled: dict[str, dict[str, str]]
    modal: dict[str, str]

    @property
    def scores(self) -> np.ndarray:
        return self.model.scores

    @property
    def logits(self) -> np.ndarray:
        return self.model.logits

    def prepare(self, frame: pd.DataFrame, cfg: EvaluationConfig) -> pd.DataFrame:
        """Numeric covariates as floats, categorical levels recoded as at fit time."""
        data = numeric_covariates(frame, cfg)
        for col, levels in self.model.spec.levels.items():
            values = data[col].astype(str).replace(self.pooled.get(col, {}))
            data[col] = values.where(values.isin(levels), self.modal[col])
        return data

    def design(self, frame: pd.DataFrame, cfg: EvaluationConfig) -> np.ndarray:
        """The model's design matrix for ``frame`` (for re-fitting in bootstrap resamples)."""
        return self.model.spec.matrix(self.prepare(frame, cfg))

    def predict_logit(self, frame: pd.DataFrame, cfg: EvaluationConfig) -> np.ndarray:
        """Logit of the score for any rows with the covariates (e.g. risk-set pairs)."""
        return self.model.predict_logit(self.prepare(frame, cfg))


def fit_scores(units: pd.DataFrame, cfg: EvaluationConfig) -> CohortScore:
    """Logistic propensity model of ``treated`` on the configured covariates.

    ``units`` is a cohort frame (one row per treated and per naive comparison unit).
    Raises ``PropensityFitError`` on separation or non-convergence that pooling sparse levels
    does not cure.
    """
    data = numeric_covariates(units, cfg)
    numeric = [c for c in cfg.covariates if data[c].nunique() > 1]
    pooled: dict[str, dict[str, str]] = {}
    modal: dict[str, str] = {}
    treated = data["treated"].to_numpy(bool)
    for col in cfg.categorical:
        values = data[col].astype(str)
        modal[col] = str(values.value_counts().sort_index().idxmax())
        both = pd.crosstab(values, treated)
        one_arm = [lv for lv in both.index if (both.loc[lv] == 0).any() and lv != modal[col]]
        pooled[col] = {lv: modal[col] for lv in one_arm}
        data[col] = values.replace(pooled[col])
    categorical = [c for c in cfg.categorical if data[c].nunique() > 1]
    dropped = tuple(c for c in (*cfg.covariates, *cfg.categorical)
                    if c not in numeric and c not in categorical)
    squares = [c for c in cfg.comparison.propensity_squares if c in numeric]
    model = fit_propensity(data, "treated", numeric, categorical, squares=squares)
    return CohortScore(model, dropped, {k: v for k, v in pooled.items() if v},
                       {c: modal[c] for c in categorical})


def score_logits(score: CohortScore, frame: pd.DataFrame, cfg: EvaluationConfig
                 ) -> np.ndarray:
    """Logit of the score for any rows with the covariates (e.g. risk-set pairs)."""
    return score.predict_logit(frame, cfg)


def caliper_sd(score: CohortScore) -> float:
    """SD (n - 1) of the logit over the fitting sample, treated and comparison together: the
    unit of the caliper (MatchIt's ``std.caliper``; Austin 2011's 0.2 SD rule)."""
    return float(np.std(score.logits, ddof=1))


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def keep_mask(ps: np.ndarray, treated: np.ndarray, trim: Trim) -> np.ndarray:
    """Units kept after trimming: all (None), those inside the common support, or those whose
    score lies within the configured [lo, hi]."""
    ps = np.asarray(ps, dtype=float)
    if trim is None:
        return np.ones(ps.shape, dtype=bool)
    if trim == "common_support":
        return trim_common_support(ps, treated)
    return trim_common_support(ps, treated, bounds=tuple(trim))


def overlap_rows(cohort: str, ps: np.ndarray, treated: np.ndarray) -> pd.DataFrame:
    """Overlap diagnostics in long format (cohort, arm, stat, value).

    Per arm: n, mean, quantiles of the score (``q0.00`` … ``q1.00``), the number and share
    outside the common support [max of group minima, min of group maxima]; arm ``all``: the
    support's bounds.
    """
    t = np.asarray(treated).astype(bool)
    ov = overlap_summary(ps, t)
    lo, hi = common_support(ps, t)
    rows = [(cohort, "all", "support_lower", lo), (cohort, "all", "support_upper", hi)]
    for arm, mask, key in (("treated", t, "treated"), ("comparison", ~t, "control")):
        rows += [(cohort, arm, "n", float(mask.sum())),
                 (cohort, arm, "mean", float(np.mean(ps[mask]))),
                 (cohort, arm, "n_outside", float(ov[f"n_{key}_outside"])),
                 (cohort, arm, "share_outside", float(ov[f"share_{key}_outside"]))]
        rows += [(cohort, arm, f"q{q:.2f}", float(v)) for q, v in ov["quantiles"][key].items()]
    return pd.DataFrame(rows, columns=["cohort", "arm", "stat", "value"])


def logit_sql(score: CohortScore, cfg: EvaluationConfig, alias: str = "c") -> str:
    """The fitted score's logit as a SQL expression over covariate columns of ``alias``: the
    same coding as ``CohortScore.prepare`` and ``DesignSpec.matrix`` (booleans as 0/1, pooled
    categorical levels recoded, unseen levels taken as the modal one), so that risk-set pairs
    are scored where they live and only keys and scores leave DuckDB."""
    from pipeline.contracts.rules import sql_str

    params = score.model.params
    spec = score.model.spec
    terms = [f"{float(params['const'])!r}"]
    for t in spec.terms:
        col = f"{alias}.{t}"
        if t in spec.levels:
            text = f"CAST({col} AS VARCHAR)"
            pooled = score.pooled.get(t, {})
            if pooled:
                cases = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}"
                                 for k, v in sorted(pooled.items()))
                text = f"(CASE {text} {cases} ELSE {text} END)"
            levels = ", ".join(sql_str(str(v)) for v in spec.levels[t])
            text = f"(CASE WHEN {text} IN ({levels}) THEN {text} " \
                   f"ELSE {sql_str(score.modal[t])} END)"
            for level in spec.levels[t][1:]:
                coef = float(params[f"{t}[T.{level}]"])
                terms.append(f"(CASE WHEN {text} = {sql_str(str(level))} THEN {coef!r} "
                             "ELSE 0 END)")
        else:
            x = f"CAST({col} AS DOUBLE)"
            terms.append(f"{float(params[t])!r} * {x}")
            if t in spec.squares:
                terms.append(f"{float(params[t + '^2'])!r} * {x} * {x}")
    return "(" + " + ".join(terms) + ")"
