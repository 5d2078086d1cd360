"""Survival estimates of the cohort, written to ``analysis.*`` for the report and notebooks."""

from __future__ import annotations

import dataclasses

import duckdb
import pandas as pd

from pipeline.analysis.by_arm import km_by_arm, window_proportions
from pipeline.analysis.frames import cohort_frame
from pipeline.config import EvaluationConfig
from pipeline.warehouse_io import write_frame
from pipeline.windows import month_days  # noqa: F401  (re-exported: the one window rule)

AT_RISK_MONTHS = tuple(range(0, 37, 6))


# (analysis name, cohort, outcome family or None for main, proof or None, custody at risk or None)
SURVIVAL_ANALYSES = (
    ("naive", "started", None, None, None),
    ("itt", "itt", None, None, None),
    ("recorded_outcome", "started", None, "recorded", None),
    ("custody_counted", "started", None, None, True),
    ("any_offence", "started", "any", None, None),
    ("violence", "started", "violence", None, None),
)


def survival_estimates(con: duckdb.DuckDBPyConnection, extract_id: str,
                       cfg: EvaluationConfig, main: pd.DataFrame | None = None
                       ) -> pd.DataFrame:
    """Unadjusted and covariate-adjusted survival contrasts for the main and sensitivity
    analyses (no propensity-score adjustment: see ``pipeline.analysis.comparison_results``).

    ``main``: the main cohort's frame (``cohort_frame`` with the configuration's defaults)
    when the caller has read it; the naive and landmark analyses use it instead of reading it
    again."""
    from pipeline.analysis.survival_results import survival_contrast
    from pipeline.analysis.treated_only import landmark_frame, treated_only_estimates

    parts = []
    for name, cohort, family, proof, custody in SURVIVAL_ANALYSES:
        if (family and family not in cfg.families) or (proof == cfg.proof) or \
                (custody is not None and custody == cfg.custody_time_at_risk):
            continue  # the sensitivity analysis equals the main one under this config
        c = cfg if custody is None else dataclasses.replace(cfg, custody_time_at_risk=custody)
        if main is not None and (cohort, family, proof, custody) == ("started", None, None,
                                                                     None):
            frame = main
        else:
            frame = cohort_frame(con, extract_id, c, family=family, proof=proof,
                                 cohort=cohort)
        parts.append(survival_contrast(frame, c, name))
    parts.append(treated_only_estimates(landmark_frame(con, extract_id, cfg, main), cfg))
    return pd.concat(parts, ignore_index=True)


def write_descriptive_estimates(con: duckdb.DuckDBPyConnection, extract_id: str,
                                cfg: EvaluationConfig) -> dict:
    """Kaplan-Meier by arm (its n_risk gives the numbers at risk), window proportions for the
    main outcome, and the survival contrasts (``analysis.survival_estimates``)."""
    frame = cohort_frame(con, extract_id, cfg)
    km = km_by_arm(frame)
    props = window_proportions(frame, cfg.followup_months)
    write_frame(con, "analysis.km", km, extract_id)
    write_frame(con, "analysis.window_proportions", props, extract_id)
    estimates = survival_estimates(con, extract_id, cfg, main=frame)  # frame read once
    write_frame(con, "analysis.survival_estimates", estimates, extract_id)
    n_treated = int(frame["treated"].sum())
    return {"km_rows": len(km), "units": len(frame), "events": int(frame["event"].sum()),
            "estimates": len(estimates), "treated": n_treated,
            "sufficient": n_treated >= cfg.min_treated}
