"""Research snapshot asset: publish the run's analysis tables for researchers (Parquet)."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.common import EXTRACTS, ProjectPaths, timed
from assets.report import funder_report
from pipeline.research.dictionary import write_column_comments
from pipeline.snapshot import publish_snapshot, snapshot_root


@dg.asset(group_name="report", partitions_def=EXTRACTS, deps=[funder_report],
          kinds={"parquet"})
def research_snapshot(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                      paths: ProjectPaths) -> dg.MaterializeResult:
    """A read-only copy of the extract's analysis tables (one Parquet file per table) that
    notebooks open instead of the warehouse, so a notebook never blocks a run. Published after
    the funder report; also writes the data dictionary as column comments in the warehouse."""
    root = snapshot_root(Path(duckdb.database))
    with timed() as t, duckdb.get_connection() as con:
        comments = write_column_comments(con)
        out = publish_snapshot(con, context.partition_key, root,
                               config_file=Path(paths.config_file))
    context.log.info(f"research snapshot published to {out.folder}")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(out.folder)), "version": out.version,
        "tables": len(out.tables), "column_comments": comments, "seconds": t["seconds"]})
