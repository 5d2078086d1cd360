"""Comparison assets: propensity scores, risk-set matching, and the adjusted estimates with the
balance check. Each calls one function of ``pipeline.analysis.comparison_results``."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.analysis import evaluation_cohort
from assets.common import EXTRACTS, ProjectPaths, timed
from pipeline.analysis.comparison_results import (
    write_comparison_estimates,
    write_matches,
    write_propensity_scores,
)
from pipeline.config import load_config
from pipeline.ingest.load import extraction_date


def _counts(meta: dict) -> dict:
    """Numeric metadata only (counts, timings): a text (why a score was not fitted) becomes
    the flag 1 under its key; the text itself goes to the log."""
    return {k: v if isinstance(v, int | float) else 1
            for k, v in meta.items() if not isinstance(v, dict)}


@dg.asset(group_name="comparison", partitions_def=EXTRACTS, kinds={"duckdb"},
          deps=[evaluation_cohort])
def propensity_scores(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                      paths: ProjectPaths) -> dg.MaterializeResult:
    """Risk-set pair units with covariates and outcomes as of the treated index date; the
    propensity score per cohort (treated vs naive comparison units) applied to every pair;
    overlap diagnostics (analysis.propensity, rs_propensity, overlap)."""
    cfg = load_config(Path(paths.config_file))
    eid = context.partition_key
    with timed() as t, duckdb.get_connection() as con:
        meta = write_propensity_scores(con, eid, cfg, extraction_date(con, eid))
    for key, value in meta.items():
        if isinstance(value, str):
            context.log.warning(f"{key}: {value}")
    return dg.MaterializeResult(metadata={**_counts(meta), "seconds": t["seconds"]})


@dg.asset(group_name="comparison", partitions_def=EXTRACTS, kinds={"duckdb"},
          deps=[propensity_scores])
def matched_cohort(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                   paths: ProjectPaths) -> dg.MaterializeResult:
    """Nearest-neighbour matching on the logit of the score within risk sets, per cohort and
    caliper; unmatched treated people counted by reason and profiled (analysis.matches,
    match_summary, unmatched_profile)."""
    cfg = load_config(Path(paths.config_file))
    with timed() as t, duckdb.get_connection() as con:
        meta = write_matches(con, context.partition_key, cfg)
    matched = meta.get("matched_matched", 0)  # treated people in the main matched analysis
    return dg.MaterializeResult(metadata={**_counts(meta), "dagster/row_count": matched,
                                          "seconds": t["seconds"]})


@dg.asset(group_name="comparison", partitions_def=EXTRACTS, kinds={"duckdb"},
          deps=[matched_cohort],
          check_specs=[dg.AssetCheckSpec(
              "balance_after_adjustment", asset="comparison_estimates",
              description="every covariate's |standardised mean difference| is at most the "
              "threshold (0.1) after matching and after weighting")])
def comparison_estimates(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                         paths: ProjectPaths) -> dg.MaterializeResult:
    """Hazard ratios, 12/24-month risks, risk differences and ratios, RMST differences,
    E-values and the minimum detectable effect for the matched, weighted, naive and
    sensitivity analyses and subgroups; balance before/after; matched and weighted KM curves
    (analysis.comparison_estimates, balance, matched_km, weighted_km)."""
    cfg = load_config(Path(paths.config_file))
    with timed() as t, duckdb.get_connection() as con:
        meta = write_comparison_estimates(con, context.partition_key, cfg)
    imbalanced = meta.get("imbalanced", {})
    flagged = sum(imbalanced.values())
    by_method = {f"imbalanced_{k.replace('/', '_')}": v for k, v in imbalanced.items()}
    return dg.MaterializeResult(
        metadata={**_counts(meta), "seconds": t["seconds"]},
        check_results=[dg.AssetCheckResult(
            check_name="balance_after_adjustment", passed=flagged == 0 and bool(imbalanced),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"covariates_above_threshold": flagged,
                      "threshold": cfg.comparison.balance_threshold, **by_method},
            description=None if imbalanced else "no adjusted comparison was estimated")])
