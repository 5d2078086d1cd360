"""Evaluation-history asset: this extract's look in the table of every extract's headline."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.common import EXTRACTS, ProjectPaths, timed
from pipeline.config import load_config
from pipeline.plan.store import TABLE, history, plan_changes
from pipeline.warehouse_io import write_frame


@dg.asset(group_name="report", partitions_def=EXTRACTS, deps=["comparison_estimates"],
          kinds={"duckdb"})
def evaluation_history(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                       paths: ProjectPaths) -> dg.MaterializeResult:
    """Record this extract as a look of the sequential plan (analysis.evaluation_history):
    primary estimate, information fraction, boundary, repeated CI and graded verdict."""
    cfg = load_config(Path(paths.config_file))
    with timed() as t, duckdb.get_connection() as con:
        hist = history(con, context.partition_key, cfg)
        write_frame(con, TABLE, hist.iloc[[-1]].drop(columns="extract_id"),
                    context.partition_key)
    return dg.MaterializeResult(metadata={
        "looks": len(hist), "plan_changes": len(plan_changes(hist)),
        "plan_sha256": cfg.plan.sha256[:12], "seconds": t["seconds"]})
