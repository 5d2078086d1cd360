"""Report asset: the funder PDF with its numbers JSON and figures."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.analysis import survival_estimates
from assets.common import EXTRACTS, ProjectPaths, timed
from pipeline.config import load_config
from pipeline.disclosure import check_published_document
from pipeline.report.numbers import policy_from
from pipeline.report.render import render_report


@dg.asset(group_name="report", partitions_def=EXTRACTS,
          deps=[survival_estimates, "comparison_estimates", "data_quality_report"],
          kinds={"pdf"},
          check_specs=[dg.AssetCheckSpec("no_small_counts", asset="funder_report",
                                         description="no published count below the threshold")])
def funder_report(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                  paths: ProjectPaths) -> dg.MaterializeResult:
    """The funder PDF for one extract (reports folder / extract id / funder_report.pdf)."""
    cfg = load_config(Path(paths.config_file))
    folder = paths.report_folder(context.partition_key)
    with timed() as t, duckdb.get_connection() as con:
        out = render_report(con, context.partition_key, cfg, folder)
    findings = check_published_document(out["numbers"], policy_from(cfg))
    context.log.info(f"funder report written to {out['pdf']}")
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(out["pdf"])),
                  "status": out["numbers"]["status"], "seconds": t["seconds"]},
        check_results=[dg.AssetCheckResult(check_name="no_small_counts", passed=not findings,
                                           metadata={"findings": len(findings)})])


@dg.asset(group_name="report", partitions_def=EXTRACTS,
          deps=[survival_estimates, "comparison_estimates"], kinds={"csv", "parquet"})
def summary_exports(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                    paths: ProjectPaths) -> dg.MaterializeResult:
    """Disclosure-controlled summary tables (estimates, flow, proportions) for sharing."""
    from pipeline.report.exports import export_summaries

    cfg = load_config(Path(paths.config_file))
    folder = Path(paths.reports_dir) / context.partition_key / "exports"
    with timed() as t, duckdb.get_connection() as con:
        rows = export_summaries(con, context.partition_key, cfg, folder)
    return dg.MaterializeResult(metadata={**{f"{k}_rows": v for k, v in rows.items()},
                                          "path": dg.MetadataValue.path(str(folder)),
                                          "seconds": t["seconds"]})
