"""Analysis assets: linked persons, the evaluation cohort and its descriptive survival estimates."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.common import EXTRACTS, ProjectPaths, timed
from pipeline.analysis.estimates import write_descriptive_estimates
from pipeline.cohort.build import build_units, link_persons
from pipeline.cohort.measures import write_measures
from pipeline.config import load_config
from pipeline.contracts.schema import EXTRACT_TABLES
from pipeline.ingest.load import extraction_date


@dg.asset(group_name="analysis", partitions_def=EXTRACTS, kinds={"duckdb"},
          deps=[f"staged_{t}" for t in EXTRACT_TABLES])
def linked_persons(context: dg.AssetExecutionContext, duckdb: DuckDBResource
                   ) -> dg.MaterializeResult:
    """Police persons linked to their clinic referrals and treatment (analysis.persons)."""
    with timed() as t, duckdb.get_connection() as con:
        n, unlinked = link_persons(con, context.partition_key)
    return dg.MaterializeResult(metadata={"persons": n, "unlinked_referrals": unlinked,
                                          "dagster/row_count": n, "seconds": t["seconds"]})


@dg.asset(group_name="analysis", partitions_def=EXTRACTS, kinds={"duckdb"},
          deps=[linked_persons],
          check_specs=[dg.AssetCheckSpec("flow_adds_up", asset="evaluation_cohort",
                                         description="each flow step is a subset of the one "
                                         "before and the last equals the cohort"),
                       dg.AssetCheckSpec("no_immortal_time", asset="evaluation_cohort",
                                         description="no comparison index date precedes the "
                                         "person's eligibility (qualifying offence, referral)")])
def evaluation_cohort(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                      paths: ProjectPaths) -> dg.MaterializeResult:
    """Treated and comparison units with index dates, covariates as of index and outcomes."""
    from pipeline.cohort.checks import flow_problems, immortal_time_problems

    cfg = load_config(Path(paths.config_file))
    eid = context.partition_key
    with timed() as t, duckdb.get_connection() as con:
        extraction = extraction_date(con, eid)
        counts = build_units(con, eid, cfg, extraction)
        n_cov, n_out = write_measures(con, eid, cfg, extraction)
        flow = flow_problems(con, eid)
        immortal = immortal_time_problems(con, eid)
    return dg.MaterializeResult(
        metadata={"treated": counts.treated, "comparison": counts.comparison_pool,
                  "risk_set_pairs": counts.risk_set_pairs, "outcome_rows": n_out,
                  "dagster/row_count": counts.treated + counts.comparison_pool,
                  "config_sha256": cfg.sha256, "seconds": t["seconds"]},
        check_results=[
            dg.AssetCheckResult(check_name="flow_adds_up", passed=not flow,
                                metadata={"problems": len(flow)},
                                description="; ".join(flow) or None),
            dg.AssetCheckResult(check_name="no_immortal_time", passed=immortal == 0,
                                metadata={"comparison_units_in_immortal_time": immortal})])


@dg.asset(group_name="analysis", partitions_def=EXTRACTS, kinds={"duckdb"},
          deps=[evaluation_cohort],
          check_specs=[dg.AssetCheckSpec(
              "treated_cohort_large_enough", asset="survival_estimates",
              description="the treated cohort reaches the configured minimum size; below it "
              "the report publishes no estimates")])
def survival_estimates(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                       paths: ProjectPaths) -> dg.MaterializeResult:
    """Kaplan-Meier by arm, numbers at risk, 12/24-month proportions and survival contrasts
    (Cox, log-rank, RMST, competing risks) for the main and sensitivity analyses."""
    cfg = load_config(Path(paths.config_file))
    with timed() as t, duckdb.get_connection() as con:
        out = write_descriptive_estimates(con, context.partition_key, cfg)
    return dg.MaterializeResult(
        metadata={**out, "seconds": t["seconds"]},
        check_results=[dg.AssetCheckResult(
            check_name="treated_cohort_large_enough", passed=out["sufficient"],
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"treated": out["treated"], "minimum": cfg.min_treated})])
