"""Ingest assets: one raw and one staged asset per extract table, built by one factory each."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.common import EXTRACTS, ProjectPaths, timed
from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.load import load_raw, stage
from pipeline.ingest.manifest import read_manifest


def make_raw_asset(table: str) -> dg.AssetsDefinition:
    """Asset that verifies one delivered file against the manifest and loads it as text."""
    contract = load_contract(table)

    @dg.asset(name=f"raw_{table}", group_name="ingest", partitions_def=EXTRACTS,
              description=f"{contract.file} as delivered (text), with line numbers. "
              f"{contract.description}", kinds={"duckdb"})
    def _raw(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
             paths: ProjectPaths) -> dg.MaterializeResult:
        extract_id = context.partition_key
        with timed() as t, duckdb.get_connection() as con:
            try:
                counts = load_raw(con, read_manifest(paths.extract_folder(extract_id)), contract)
            except ExtractError as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
        return dg.MaterializeResult(metadata={
            "manifest_rows": counts.manifest_rows, "raw_rows": counts.raw_rows,
            "rejected_lines": counts.rejected_lines, "seconds": t["seconds"]})

    return _raw


def make_staged_asset(table: str) -> dg.AssetsDefinition:
    """Asset that types one raw table by its contract, quarantining rows that break a rule."""
    contract = load_contract(table)

    @dg.asset(name=f"staged_{table}", group_name="ingest", partitions_def=EXTRACTS,
              deps=[f"raw_{table}"], kinds={"duckdb"},
              description=f"Typed rows of {contract.file} that passed every row rule.",
              check_specs=[dg.AssetCheckSpec(
                  "rows_reconcile", asset=f"staged_{table}",
                  description="raw rows = staged rows + quarantined rows")])
    def _staged(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        with timed() as t, duckdb.get_connection() as con:
            counts = stage(con, context.partition_key, contract)
        return dg.MaterializeResult(
            metadata={"raw_rows": counts.raw_rows, "staged_rows": counts.staged_rows,
                      "quarantined_rows": counts.quarantined_rows,
                      "quarantined_by_rule": dg.MetadataValue.json(counts.quarantine_by_rule),
                      "seconds": t["seconds"]},
            check_results=[dg.AssetCheckResult(
                check_name="rows_reconcile", passed=counts.reconciles,
                metadata={"raw_rows": counts.raw_rows, "staged_rows": counts.staged_rows,
                          "quarantined_rows": counts.quarantined_rows})])

    return _staged


RAW_ASSETS = [make_raw_asset(t) for t in EXTRACT_TABLES]
STAGED_ASSETS = [make_staged_asset(t) for t in EXTRACT_TABLES]
