"""Covariates as of the index date and outcomes after it, for any table of units.

A unit is (unit_id, person_key, index_date, qualifying_offence_key, qualifying_date): a treated
person, a sampled comparison person, or a risk-set pair. Nothing after the index date enters a
covariate; nothing before it enters an outcome.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from pipeline.cohort.build import FOREVER, sql_date, sql_list
from pipeline.config import EvaluationConfig
from pipeline.windows import month_days

COVARIATES_SQL = """
SELECT u.unit_id,
       year(u.index_date) - p.birth_year AS age,
       p.sex, p.ethnicity_group, p.site,
       u.index_date - u.qualifying_date AS days_since_qualifying,
       coalesce(qo.victim_relationship, 'none') AS victim_relationship,
       coalesce(h.prior_sh, 0) AS prior_sh,
       coalesce(h.prior_violence, 0) AS prior_violence,
       coalesce(h.prior_other, 0) AS prior_other,
       coalesce(h.prior_sh_convictions, 0) AS prior_sh_convictions,
       coalesce(h.prior_custody, FALSE) AS prior_custody
FROM {units} u
JOIN persons p USING (person_key)
LEFT JOIN police_offences qo ON qo.offence_key = u.qualifying_offence_key
LEFT JOIN (
    SELECT u.unit_id,
           count(*) FILTER (WHERE c.family = 'stalking_harassment') AS prior_sh,
           count(*) FILTER (WHERE c.family = 'violence') AS prior_violence,
           count(*) FILTER (WHERE c.family NOT IN ('stalking_harassment', 'violence'))
               AS prior_other,
           count(*) FILTER (WHERE c.family = 'stalking_harassment' AND o.outcome = 'convicted'
                            AND o.outcome_date < u.index_date) AS prior_sh_convictions,
           bool_or(o.disposal = 'custody' AND o.outcome_date < u.index_date) AS prior_custody
    FROM {units} u
    JOIN police_offences o ON o.person_key = u.person_key AND o.offence_date < u.index_date
         AND o.offence_key <> u.qualifying_offence_key
    JOIN offence_codes c ON c.code = o.offence_code
    GROUP BY u.unit_id) h USING (unit_id)
"""


def covariates_sql(units: str) -> str:
    """SQL for covariates measured on the index date of each unit in ``units``."""
    return COVARIATES_SQL.format(units=units)


def outcomes_sql(units: str, cfg: EvaluationConfig, extraction: dt.date,
                 families: tuple[str, ...] | None = None) -> str:
    """SQL for outcomes of every unit × outcome family × proof rule (long format).

    An offence counts for a unit if committed after the index date and on or before the censoring
    date (death, or the extraction date less the grace period); under "proven" it must have been
    proven (conviction or caution) within ``grace_days`` of being committed. Days in custody after
    index are subtracted from ``at_risk_days``.
    """
    censor_cap = extraction - dt.timedelta(days=cfg.grace_days)
    fams = " UNION ALL ".join(
        f"SELECT '{name}' AS family, unnest([{sql_list(codes)}]) AS code"
        for name, codes in cfg.families.items() if families is None or name in families)
    windows = ", ".join(
        f"count(*) FILTER (WHERE e.offence_date <= u.index_date + {month_days(m)}) "
        f"AS n_offences_{m}m" for m in cfg.followup_months)
    binaries = ", ".join(
        f"(u.index_date + {month_days(m)} <= {sql_date(censor_cap)} "
        f"AND (coalesce(fe.event_date <= u.index_date + {month_days(m)}, FALSE) "
        f"OR coalesce(u.date_of_death > u.index_date + {month_days(m)}, TRUE))) AS full_{m}m, "
        f"coalesce(fe.event_date <= u.index_date + {month_days(m)}, FALSE) AS event_{m}m, "
        f"coalesce(fe.n_offences_{m}m, 0) AS n_offences_{m}m"
        for m in cfg.followup_months)
    return f"""
WITH fam AS ({fams}),
u AS (
    SELECT u.unit_id, u.person_key, u.index_date, qo.victim_key AS qualifying_victim,
           p.date_of_death,
           least(coalesce(p.date_of_death, {FOREVER}), {sql_date(censor_cap)}) AS censor_date
    FROM {units} u JOIN persons p USING (person_key)
    LEFT JOIN police_offences qo ON qo.offence_key = u.qualifying_offence_key),
proofs AS (SELECT unnest(['proven', 'recorded']) AS proof),
e AS (
    SELECT u.unit_id, f.family, pr.proof, o.offence_date, o.victim_key
    FROM u
    JOIN police_offences o ON o.person_key = u.person_key
         AND o.offence_date > u.index_date AND o.offence_date <= u.censor_date
    JOIN fam f ON f.code = o.offence_code
    CROSS JOIN proofs pr
    WHERE pr.proof = 'recorded'
       OR (o.outcome IN ('convicted', 'cautioned')
           AND o.outcome_date <= o.offence_date + {cfg.grace_days})),
fe AS (
    SELECT e.unit_id, e.family, e.proof, min(e.offence_date) AS event_date,
           arg_min(e.victim_key, e.offence_date) AS first_victim, {windows}
    FROM e JOIN u USING (unit_id) GROUP BY ALL),
ends AS (
    SELECT u.*, f.family, pr.proof, fe.event_date, fe.first_victim,
           coalesce(fe.event_date, u.censor_date) AS end_date,
           {', '.join(f'fe.n_offences_{m}m' for m in cfg.followup_months)}
    FROM u CROSS JOIN (SELECT DISTINCT family FROM fam) f CROSS JOIN proofs pr
    LEFT JOIN fe ON fe.unit_id = u.unit_id AND fe.family = f.family AND fe.proof = pr.proof),
cust AS (
    SELECT x.unit_id, x.family, x.proof,
           sum(greatest(0, least(k.end_date, x.end_date) - greatest(k.start_date, x.index_date)))
               AS custody_days
    FROM ends x JOIN custody k ON k.person_key = x.person_key
         AND k.start_date < x.end_date AND k.end_date > x.index_date
    GROUP BY ALL)
SELECT u.unit_id, u.family, u.proof,
       u.event_date IS NOT NULL AS event,
       u.event_date IS NULL AND u.date_of_death IS NOT NULL
           AND u.date_of_death <= u.censor_date AS died,
       u.end_date,
       u.end_date - u.index_date AS calendar_days,
       u.end_date - u.index_date - coalesce(c.custody_days, 0) AS at_risk_days,
       coalesce(c.custody_days, 0) AS custody_days,
       CASE WHEN u.event_date IS NULL THEN NULL
            ELSE u.first_victim IS NOT DISTINCT FROM u.qualifying_victim END AS same_victim,
       {binaries.replace('fe.', 'u.')}
FROM ends u LEFT JOIN cust c USING (unit_id, family, proof)
"""


def write_measures(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                   extraction: dt.date, units: str = "analysis.units",
                   prefix: str = "", families: tuple[str, ...] | None = None
                   ) -> tuple[int, int]:
    """Write ``analysis.{prefix}covariates`` and ``analysis.{prefix}outcomes`` for ``units``.

    ``units`` is any table with extract_id, unit_id, person_key, index_date,
    qualifying_offence_key and qualifying_date (e.g. ``analysis.units`` or risk-set pairs).
    ``families`` limits the outcomes to the families analysed on those units (default all).
    """
    from pipeline.cohort.build import prepare_views
    from pipeline.warehouse_io import write_extract_rows

    prepare_views(con, extract_id)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _units AS SELECT * FROM {units} "
                f"WHERE extract_id = '{extract_id}'")
    n_cov = write_extract_rows(con, f"analysis.{prefix}covariates",
                               f"SELECT $eid AS extract_id, * FROM ({covariates_sql('_units')})",
                               extract_id)
    n_out = write_extract_rows(
        con, f"analysis.{prefix}outcomes",
        f"SELECT $eid AS extract_id, * FROM "
        f"({outcomes_sql('_units', cfg, extraction, families)})",
        extract_id)
    return n_cov, n_out
