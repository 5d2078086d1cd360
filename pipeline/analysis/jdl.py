"""A Justice Data Lab-compatible block: the MoJ one-year proven reoffending rate and frequency.

Why a second outcome: funders and commissioners compare programmes on the Ministry of Justice
proven reoffending measure (the Justice Data Lab's), which the survival analysis does not give.
The survival outcome needs each offence to be proven within ``grace_days`` of being committed;
the MoJ measure instead allows proof until the end of the follow-up year plus a fixed waiting
period, so the two differ for offences committed late in the year or proven slowly.

Definition (per unit of the analysed sample — a person on one index date):

* The follow-up year starts on the **start date**: the index date, or, for a unit whose index
  date falls inside a custody spell (not expected: everyone in the cohort is at liberty on the
  index date), the release date that ends that spell, as the MoJ starts from release. A spell
  with no release date leaves the unit without a start, so it is never measurable.
* A **proven reoffence** is an offence committed after the start date and no more than
  ``month_days(12)`` (365) days after it, proven by conviction or caution no more than 365 +
  ``month_days(6)`` (182) days after the start date (the six-month waiting period). This is a
  fixed definition, independent of ``outcomes.grace_days``.
* A unit is **measurable** when the extraction date is at least 547 days after the start date;
  other units are left out of the estimates and counted as not yet measurable.
* Calendar time: days in custody during the year are not removed (offences in custody are
  possible but rare); the people with any custody day in their year are counted so the report
  can show the difference from the at-liberty survival analysis. Deaths are not removed either.

Estimates: per arm the weighted mean of "any proven reoffence" (rate) and of the number of
proven reoffences, every one of them (frequency), with a Wald 95% CI from the linearisation
(sandwich) variance clustered by ``cluster`` (people appear in several trials as controls);
the difference treated − comparison from a weighted least-squares regression of the outcome on
arm with cluster-robust SEs (statsmodels). With a single regressor that regression's
cluster-robust SE for an arm alone is the linearisation SE used for the arms, so the two agree.
Arm limits are clipped at 0 (and at 1 for a rate). Rows that cannot be estimated carry a
``reason`` code (``pipeline.analysis.estimability``) and no numbers.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import statsmodels.api as sm

from pipeline.analysis.estimability import arm_problem, enforce
from pipeline.cohort.build import in_custody, prepare_views, sql_date, sql_list
from pipeline.config import EvaluationConfig
from pipeline.windows import month_days

FOLLOWUP_DAYS = month_days(12)  # the one-year follow-up (365 days)
WAITING_DAYS = month_days(6)  # the further six-month waiting period for proof (182 days)
MEASURABLE_DAYS = FOLLOWUP_DAYS + WAITING_DAYS
Z = 1.959963984540054
ARMS = ("treated", "comparison")
COUNT_COLUMNS = ("n_units", "n_measurable", "n_not_yet_measurable", "n_reoffenders",
                 "n_offences", "n_with_custody_days", "n_started_at_release")
COLUMNS = ("family", "measure", "arm", "unit", "estimate", "lower", "upper", "p",
           *COUNT_COLUMNS, "reason")
# reason codes of this block that estimability.REASONS has no fitting text for
JDL_REASONS = {
    "single_cluster": "everyone in the group belongs to one cluster of linked trials, so no "
                      "cluster-robust confidence interval can be formed",
    "no_spread": "every person in the group had the same outcome, so there is no spread to "
                 "form a confidence interval from",
}


def _units_sql(cfg: EvaluationConfig, extraction: dt.date) -> str:
    """Per unit × family: start date, measurability, proven reoffences, custody days."""
    fams = {cfg.main_family: cfg.families[cfg.main_family]}
    fams["any"] = cfg.families.get("any", ())
    fam_sql = " UNION ALL ".join(
        f"SELECT '{name}' AS family, unnest([{sql_list(codes)}]) AS code" if codes else
        f"SELECT '{name}' AS family, code FROM offence_codes" for name, codes in fams.items())
    return f"""
CREATE OR REPLACE TEMP TABLE _jdl_units AS
WITH fam AS ({fam_sql}),
u AS (
    SELECT s.unit_no, s.person_key, s.arm, s.weight, s.cluster,
           CAST(s.index_date AS DATE) AS index_date, k.end_date AS release_date
    FROM _jdl_sample s LEFT JOIN custody k ON k.person_key = s.person_key
         AND {in_custody('CAST(s.index_date AS DATE)', 'k')}),
m AS (
    SELECT *, coalesce(release_date, index_date) AS start_date,
           coalesce(release_date, index_date) + {MEASURABLE_DAYS} <= {sql_date(extraction)}
               AS measurable
    FROM u),
e AS (
    SELECT m.unit_no, f.family, o.offence_key
    FROM m JOIN police_offences o ON o.person_key = m.person_key
         AND o.offence_date > m.start_date AND o.offence_date <= m.start_date + {FOLLOWUP_DAYS}
         AND o.outcome IN ('convicted', 'cautioned')
         AND o.outcome_date <= m.start_date + {MEASURABLE_DAYS}
    JOIN fam f ON f.code = o.offence_code
    WHERE m.measurable),
cust AS (
    SELECT m.unit_no,
           sum(greatest(0, least(k.end_date, m.start_date + {FOLLOWUP_DAYS})
                        - greatest(k.start_date, m.start_date))) AS custody_days
    FROM m JOIN custody k ON k.person_key = m.person_key
         AND k.start_date < m.start_date + {FOLLOWUP_DAYS} AND k.end_date > m.start_date
    WHERE m.measurable GROUP BY m.unit_no)
SELECT m.unit_no, m.person_key, m.arm, m.weight, m.cluster, m.index_date, m.start_date,
       m.measurable,
       m.release_date IS NOT NULL AS started_at_release, f.family,
       count(e.offence_key) AS n_offences,
       list(e.offence_key) FILTER (WHERE e.offence_key IS NOT NULL) AS offence_keys,
       coalesce(any_value(c.custody_days), 0) AS custody_days
FROM m CROSS JOIN (SELECT DISTINCT family FROM fam) f
LEFT JOIN e ON e.unit_no = m.unit_no AND e.family = f.family
LEFT JOIN cust c ON c.unit_no = m.unit_no
GROUP BY ALL"""


COUNTS_SQL = """
SELECT family, coalesce(arm, 'difference') AS arm,
       count(DISTINCT person_key) AS n_units,
       count(DISTINCT person_key) FILTER (WHERE measurable) AS n_measurable,
       count(DISTINCT person_key) FILTER (WHERE measurable AND n_offences > 0) AS n_reoffenders,
       count(DISTINCT offence_key) AS n_offences,
       count(DISTINCT person_key) FILTER (WHERE measurable AND custody_days > 0)
           AS n_with_custody_days,
       count(DISTINCT person_key) FILTER (WHERE started_at_release) AS n_started_at_release
FROM _jdl_units LEFT JOIN (SELECT unit_no, family, unnest(offence_keys) AS offence_key
                           FROM _jdl_units) e USING (unit_no, family)
GROUP BY GROUPING SETS ((family, arm), (family))"""


def weighted_mean(y: np.ndarray, w: np.ndarray, cluster: np.ndarray) -> tuple[float, float]:
    """Weighted mean and its cluster-robust (linearisation) SE.

    The influence of unit i is w_i (y_i − mean) / Σw; cluster totals of it are squared and
    summed, times G/(G−1) for G clusters (the same small-sample factor statsmodels applies to a
    constant-only WLS with ``cov_type='cluster'``). With one cluster the SE is not finite.
    """
    mean = float(np.sum(w * y) / np.sum(w))
    infl = w * (y - mean) / np.sum(w)
    codes, uniq = pd.factorize(cluster)
    totals = np.bincount(codes, weights=infl, minlength=len(uniq))
    g = len(uniq)
    se = float(np.sqrt(g / (g - 1) * np.sum(totals ** 2))) if g > 1 else float("nan")
    return mean, se


def _arm_row(units: pd.DataFrame, measure: str) -> dict:
    """Estimate and CI of one arm, or a reason; ``units`` are the arm's measurable units."""
    if units.empty:
        return {"reason": "no_followup_to_window"}
    y = _outcome(units, measure)
    if not (y > 0).any():
        return {"reason": "no_events_in_arm"}
    if units["cluster"].nunique() < 2:
        return {"reason": "single_cluster"}
    mean, se = weighted_mean(y, units["weight"].to_numpy(float), units["cluster"].to_numpy())
    if not se > 0:
        return {"reason": "no_spread" if se == 0 else "non_finite_result"}
    upper = mean + Z * se
    return {"estimate": mean, "lower": max(0.0, mean - Z * se),
            "upper": min(1.0, upper) if measure == "rate" else upper}


def _outcome(units: pd.DataFrame, measure: str) -> np.ndarray:
    n = units["n_offences"].to_numpy(float)
    return (n > 0).astype(float) if measure == "rate" else n


def _difference_row(units: pd.DataFrame, measure: str, arms_present: bool) -> dict:
    """Treated − comparison: WLS of the outcome on arm, cluster-robust SE, normal CI.

    ``units`` are the measurable units of both arms; ``arms_present`` whether both arms have
    any unit at all (an arm with units but none measurable is "not yet followed")."""
    sizes = [int((units["arm"] == a).sum()) for a in ARMS]
    events = [int((units.loc[units["arm"] == a, "n_offences"] > 0).sum()) for a in ARMS]
    reason = arm_problem(*sizes, *events)
    if reason == "arm_empty" and arms_present:
        reason = "no_followup_to_window"
    if not reason and units["cluster"].nunique() < 2:
        reason = "single_cluster"
    if reason:
        return {"reason": reason}
    x = sm.add_constant((units["arm"] == "treated").astype(float).to_numpy())
    try:
        fit = sm.WLS(_outcome(units, measure), x, weights=units["weight"].to_numpy(float)).fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(units["cluster"])[0]})
    except (ValueError, np.linalg.LinAlgError):
        return {"reason": "model_not_fitted"}
    est, se = float(fit.params[1]), float(fit.bse[1])
    if not np.isfinite(se) or se <= 0:
        return {"reason": "no_spread" if se == 0 else "non_finite_result"}
    return {"estimate": est, "lower": est - Z * se, "upper": est + Z * se,
            "p": float(fit.pvalues[1])}


def _check_sample(sample: pd.DataFrame) -> pd.DataFrame:
    """The sample with a unit number; raises on missing columns, unknown arms or bad weights."""
    need = ["person_key", "index_date", "arm", "weight", "cluster"]
    missing = [c for c in need if c not in sample.columns]
    if missing:
        raise KeyError(f"jdl_rows: sample lacks column(s) {missing}")
    bad = set(sample["arm"]) - set(ARMS)
    if bad:
        raise ValueError(f"jdl_rows: arm must be treated or comparison, got {sorted(bad)}")
    w = pd.to_numeric(sample["weight"], errors="coerce")
    if w.isna().any() or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("jdl_rows: weights must be finite and non-negative")
    out = sample[need].reset_index(drop=True)
    out["weight"] = w.to_numpy(float)
    out["index_date"] = pd.to_datetime(out["index_date"]).dt.date
    out.insert(0, "unit_no", np.arange(len(out)))
    return out


def jdl_units(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
              extraction: dt.date, sample: pd.DataFrame) -> pd.DataFrame:
    """One row per unit of ``sample`` × family: start date, measurable, proven reoffences
    (``n_offences``), custody days in the year; also left in the temp table ``_jdl_units``."""
    frame = _check_sample(sample)
    prepare_views(con, extract_id)
    con.register("_jdl_sample", frame)
    try:
        con.execute(_units_sql(cfg, extraction))
    finally:
        con.unregister("_jdl_sample")
    return con.execute("SELECT * EXCLUDE (offence_keys) FROM _jdl_units "
                       "ORDER BY family, unit_no").df()


def jdl_rows(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
             extraction: dt.date, sample: pd.DataFrame) -> pd.DataFrame:
    """The JDL block for ``cfg.main_family`` and any offence: rate and frequency per arm and
    their difference, with unweighted counts of people for disclosure control.

    ``sample``: the analysed sample (person_key, index_date, arm, weight, cluster), one row per
    unit. Counts are of distinct people (a person in several trials counts once): n_units all
    people, n_measurable those with a measurable unit, n_not_yet_measurable the rest,
    n_reoffenders / n_with_custody_days among the measurable, n_offences distinct proven
    reoffences, n_started_at_release people whose year started at a release from custody.
    The difference row's counts are over both arms together.
    """
    units = jdl_units(con, extract_id, cfg, extraction, sample)
    counts = con.execute(COUNTS_SQL).df()
    counts["n_not_yet_measurable"] = counts["n_units"] - counts["n_measurable"]
    counts = counts.set_index(["family", "arm"])
    present = all((units["arm"] == a).any() for a in ARMS)
    rows = []
    for family in dict.fromkeys([cfg.main_family, "any"]):
        fam = units[(units["family"] == family) & units["measurable"]]
        for measure in ("rate", "frequency"):
            for arm in (*ARMS, "difference"):
                if arm == "difference":
                    est = _difference_row(fam, measure, present)
                elif not (units["arm"] == arm).any():
                    est = {"reason": "arm_empty"}
                else:
                    est = _arm_row(fam[fam["arm"] == arm], measure)
                key = (family, arm)
                n = (counts.loc[key, list(COUNT_COLUMNS)].astype(int).to_dict()
                     if key in counts.index else dict.fromkeys(COUNT_COLUMNS, 0))
                rows.append({"family": family, "measure": measure, "arm": arm,
                             "unit": "proportion" if measure == "rate" else "per_person",
                             **n, **est})
    out = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    out["reason"] = out["reason"].fillna("")
    out = enforce(out)
    return out.astype({c: "int64" for c in COUNT_COLUMNS})
