"""Per-protocol contrast of the sequential trials: "start treatment now" versus "do not start
it during follow-up", with comparison people censored when they start and re-weighted by
inverse probability of censoring weights (IPCW).

The intention-to-treat primary (``risk_set_weighting``) lets a comparison person who starts
treatment later keep their arm. Here their follow-up stops at their own start (on the same
time scale as the outcome: days at liberty unless custody counts as time at risk), and the
comparison people who have not (yet) started are up-weighted by the inverse probability of
having stayed untreated so far given their baseline covariates
(``pipeline.comparison.censoring_weights``: pooled logistic model over intervals, stabilised,
truncated at the 99th percentile). Final weight of a row = its risk-set weight × its IPCW.
Cox model on the start-stop rows with entry times, SEs clustered by person (weights taken as
known). Assumes no unmeasured predictors of starting treatment that also predict reoffending.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis.comparison_effects import counts
from pipeline.analysis.survival_results import _row, not_estimable
from pipeline.config import EvaluationConfig
from pipeline.survival import fit_cox

ANALYSIS = "weighted_risk_sets_per_protocol"
CUT_DAYS = 30  # interval length of the switching model (weights constant within an interval)
MAX_ROWS = 20_000_000  # start-stop rows above which the analysis is not run (memory)


def switch_days(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                cohort: str = "started") -> pd.Series:
    """Per risk-set pair unit: days from the trial's index date to the comparison person's
    own first treatment session, on the outcome's time scale (custody days in between taken
    out unless custody counts as time at risk); pairs whose person never starts are absent."""
    from pipeline.cohort.build import prepare_views

    prepare_views(con, extract_id)
    custody = "0" if cfg.custody_time_at_risk else (
        # FILTER: DuckDB's least/greatest skip NULLs, so a person without custody (NULL
        # spell from the LEFT JOIN) would otherwise subtract the whole interval
        "coalesce(sum(greatest(0, least(k.end_date, p.first_treatment_date) "
        "- greatest(k.start_date, u.index_date))) FILTER (WHERE k.person_key IS NOT NULL), 0)")
    out = con.execute(f"""
        SELECT u.unit_id, any_value(p.first_treatment_date - u.index_date) - {custody} AS days
        FROM analysis.rs_units u
        JOIN analysis.persons p USING (extract_id, person_key)
        LEFT JOIN custody k ON k.person_key = u.person_key
             AND k.start_date < p.first_treatment_date AND k.end_date > u.index_date
        WHERE u.extract_id = ? AND u.cohort = ? AND p.first_treatment_date > u.index_date
        GROUP BY u.unit_id""", [extract_id, cohort]).df()
    return out.set_index("unit_id")["days"].astype(float)


def per_protocol_rows(frame: pd.DataFrame, switch: pd.Series, cfg: EvaluationConfig
                      ) -> pd.DataFrame:
    """The per-protocol hazard ratio of the stacked primary frame (``risk_set_weights``),
    or a not-estimable row with its reason."""
    from pipeline.analysis.adjusted_rows import covariate_design
    from pipeline.comparison.censoring_weights import per_protocol_frame

    c = counts(frame, "weight")
    horizon = max(frame["time_days"].max(), CUT_DAYS)
    # a comparison person's own start of treatment (treated people are never censored by it)
    switch_time = np.where(frame["treated"].to_numpy() == 1, np.nan,
                           frame["unit_id"].map(switch).to_numpy(float))
    end = np.fmin(frame["time_days"].to_numpy(float), switch_time)
    n_rows = int(np.sum(np.ceil(np.maximum(end, 1) / CUT_DAYS)))  # the start-stop rows
    if n_rows > MAX_ROWS:
        return pd.DataFrame([not_estimable(
            ANALYSIS, "hr", c, "over_size_bound", unit="ratio",
            note=f"not run: {n_rows:,} start-stop rows exceed the bound of {MAX_ROWS:,}")])
    x = covariate_design(frame, cfg)
    # integer trial and person codes (``trial_code``, ``cluster``), not the string keys: they
    # are repeated on every start-stop row and grouped by in the Cox model's robust SEs
    data = pd.concat([frame[["trial_code", "cluster", "time_days", "event", "treated",
                             "weight"]].reset_index(drop=True), x.reset_index(drop=True)],
                     axis=1)
    data["switch_time"] = switch_time
    data = data[data["weight"] > 0]
    cuts = np.arange(CUT_DAYS, horizon, CUT_DAYS)
    try:
        pp = per_protocol_frame(data, cuts, list(x.columns), trial_col="trial_code",
                                person_col="cluster", time_col="time_days",
                                switch_col="switch_time", keep_covariates=False)
    except ValueError as exc:
        return pd.DataFrame([not_estimable(ANALYSIS, "hr", c, "model_not_fitted", unit="ratio",
                                           note=f"per protocol not estimable: {exc}")])
    # only the columns the Cox model reads (the start-stop frame is the largest of the
    # analysis; a copy of all of it with one more column was the step's peak)
    pf = pp.frame
    rows = pd.DataFrame({c: pf[c].to_numpy() for c in ("start", "stop", "event", "treated",
                                                        "cluster")})
    rows["w"] = pf["weight"].to_numpy() * data["weight"].to_numpy()[pf["row"].to_numpy()]
    note = (f"per protocol: comparison people censored when they start treatment "
            f"({pp.n_censored_by_switch} censored), IPCW from a pooled logistic model over "
            f"{CUT_DAYS}-day intervals ({pp.n_truncated} weights truncated); SEs clustered by "
            "person, weights taken as known")
    try:
        fit = fit_cox(rows, "stop", "event", ["treated"], entry_col="start", weights_col="w",
                      cluster_col="cluster", compute_concordance=False)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return pd.DataFrame([not_estimable(ANALYSIS, "hr", c, "model_not_fitted", unit="ratio",
                                           note=f"{note}; Cox model not fitted: {exc}")])
    s = fit.summary.loc["treated"]
    return pd.DataFrame([_row(ANALYSIS, "hr", c, s["hr"], s["lower"], s["upper"], s["p"],
                              unit="ratio", note=note)])
