"""Report assets: the funder PDF with its numbers JSON and figures, and the summary exports.

The funder report is published only after the disclosure check passes: it is rendered into a
hidden staging folder beside the extract's report folder, checked, and only then moved into
place, file by file (same file system, so each move is atomic). A report that fails the check,
or a run stopped half-way, leaves the previously published report untouched.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.analysis import survival_estimates
from assets.common import EXTRACTS, ProjectPaths, timed
from pipeline.config import load_config
from pipeline.disclosure import check_published_document
from pipeline.report.numbers import policy_from
from pipeline.report.render import render_report


@contextmanager
def staging_folder(folder: Path) -> Iterator[Path]:
    """An empty hidden folder beside ``folder`` (same file system), removed afterwards."""
    staging = folder.parent / f".{folder.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)  # left by a run that was killed
    staging.mkdir(parents=True)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, folder: Path) -> None:
    """Move every file of ``staging`` into ``folder``; figures of an earlier report go first."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    # the PDF last: whoever sees the new PDF also sees its numbers and figures
    files = sorted(staging.iterdir(), key=lambda p: (p.suffix == ".pdf", p.name))
    for item in files:
        if item.is_file():
            os.replace(item, folder / item.name)


@dg.asset(group_name="report", partitions_def=EXTRACTS,
          deps=[survival_estimates, "comparison_estimates", "data_quality_report",
                "evaluation_history"],
          kinds={"pdf"},
          check_specs=[dg.AssetCheckSpec("no_small_counts", asset="funder_report", blocking=True,
                                         description="no published count below the threshold; "
                                         "the report is published only if this passes")])
def funder_report(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                  paths: ProjectPaths) -> dg.MaterializeResult:
    """The funder PDF for one extract (reports folder / extract id / funder_report.pdf),
    published only after the disclosure check passes."""
    cfg = load_config(Path(paths.config_file))
    folder = paths.report_folder(context.partition_key)
    with timed() as t, staging_folder(folder) as staging:
        with duckdb.get_connection() as con:
            out = render_report(con, context.partition_key, cfg, staging)
        findings = check_published_document(out["numbers"], policy_from(cfg))
        if not findings:
            publish(staging, folder)
    check = dg.AssetCheckResult(check_name="no_small_counts", passed=not findings,
                                metadata={"findings": len(findings)})
    if findings:
        context.log.error(f"disclosure check failed ({len(findings)} findings): report not "
                          "published; the previous report, if any, is unchanged")
        return dg.MaterializeResult(metadata={"published": False, "seconds": t["seconds"]},
                                    check_results=[check])
    pdf = folder / Path(out["pdf"]).name
    context.log.info(f"funder report published to {pdf}")
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(pdf)),
                  "numbers": dg.MetadataValue.path(str(folder / "numbers.json")),
                  "published": True, "status": out["numbers"]["status"],
                  "seconds": t["seconds"]},
        check_results=[check])


@dg.asset(group_name="report", partitions_def=EXTRACTS,
          deps=[survival_estimates, "comparison_estimates", "evaluation_history"],
          kinds={"csv", "parquet"})
def summary_exports(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                    paths: ProjectPaths) -> dg.MaterializeResult:
    """Disclosure-controlled summary tables (estimates, flow, proportions) for sharing."""
    from pipeline.report.exports import export_summaries

    cfg = load_config(Path(paths.config_file))
    folder = paths.report_folder(context.partition_key) / "exports"
    with timed() as t, duckdb.get_connection() as con:
        rows = export_summaries(con, context.partition_key, cfg, folder)
    return dg.MaterializeResult(metadata={**{f"{k}_rows": v for k, v in rows.items()},
                                          "dagster/row_count": sum(rows.values()),
                                          "path": dg.MetadataValue.path(str(folder)),
                                          "seconds": t["seconds"]})
