"""Ingest assets and checks: raw and staged tables per extract file, the providers' report.

- ``raw_<table>``: verify a delivered file (manifest hash and rows, encoding, header, the
  identifier guard) and load it as text with line numbers. Fails, writing nothing, when the
  file cannot be trusted.
- ``staged_<table>``: type rows by the contract; rows breaking a rule go to quarantine. Fails
  when the table is blocked (duplicate key, a column wrong throughout, too many bad rows),
  after writing the data-quality report so the provider sees every problem at once.
- checks on each staged table (blocking, so nothing downstream runs on a failure):
  ``rows_reconcile`` (manifest rows = staged + quarantined + rejected, recounted from the
  tables), ``references_resolve`` (every staged reference has a staged parent) and
  ``contract_expectations`` (the Great Expectations suite generated from the contract).
- ``data_quality_report``: HTML report, CSV of quarantined rows and summary JSON for the
  providers, in ``reports/<extract_id>/``.
Metadata carries counts, rule ids and paths only, never values.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.common import EXTRACTS, ProjectPaths, timed
from pipeline.config import load_config
from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.load import load_raw, stage
from pipeline.ingest.manifest import check_study_window, read_manifest
from pipeline.ingest.reconcile import reconcile, unresolved_references

EXPECTATIONS_CHECK = "contract_expectations"


def make_raw_asset(table: str) -> dg.AssetsDefinition:
    """Asset that verifies one delivered file against the manifest and loads it as text."""
    contract = load_contract(table)

    @dg.asset(name=f"raw_{table}", group_name="ingest", partitions_def=EXTRACTS,
              description=f"{contract.file} as delivered (text), with line numbers. "
              f"{contract.description}", kinds={"duckdb"})
    def _raw(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
             paths: ProjectPaths) -> dg.MaterializeResult:
        if attests(context.run):
            from pipeline.ingest import attestation_worker

            attestation_worker.prestart()  # GE imports beside the run (a no-op from the CLI)
        extract_id = context.partition_key
        study_start = load_config(Path(paths.config_file)).first_index_date  # not data
        with timed() as t, value_free_failures(contract.file):
            manifest = read_manifest(paths.extract_folder(extract_id))
            check_study_window(manifest, study_start)
            with duckdb.get_connection() as con:
                counts = load_raw(con, manifest, contract)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": counts.raw_rows,
            "manifest_rows": counts.manifest_rows, "raw_rows": counts.raw_rows,
            "rejected_lines": counts.rejected_lines, "blank_lines": counts.blank_lines,
            "seconds": t["seconds"]})

    return _raw


def attests(run: dg.DagsterRun) -> bool:
    """The run includes a Great Expectations check (it is worth starting GE's process)."""
    if run.asset_check_selection is not None:
        return any(c.name == EXPECTATIONS_CHECK for c in run.asset_check_selection)
    return not run.asset_selection or any(  # None or empty: the whole job (a job's own run)
        k.path[-1].startswith("staged_") for k in run.asset_selection)


@contextmanager
def value_free_failures(file: str) -> Iterator[None]:
    """Turn any error while a file's values are handled into a Dagster failure without values.

    ``ExtractError`` messages are written never to hold values; any other error (a DuckDB
    conversion error quotes the value it failed on) is reduced to its type, and its traceback
    is dropped, so that nothing of the data reaches the run history under DAGSTER_HOME.
    """
    try:
        yield
    except dg.Failure:
        raise
    except ExtractError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except Exception as exc:
        why = f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""
        raise dg.Failure(description=f"{file}: unexpected {type(exc).__name__}{why} while "
                         "checking "
                         "the file (details withheld: they may quote data); nothing of it was "
                         "accepted: re-run, and report it if it recurs",
                         allow_retries=False) from None


def _write_report_quietly(con, extract_id: str, paths: ProjectPaths) -> str | None:
    """Write the data-quality report if possible (used when a table is blocked)."""
    from pipeline.ingest.quality_report import write_quality_report

    try:
        return str(write_quality_report(con, extract_id, paths.report_folder(extract_id))["html"])
    except Exception:  # the report must never hide the blocking error itself
        return None


def column_schema(contract) -> dg.TableSchema:
    """The staged table's columns as Dagster's standard schema metadata (names and types from
    the contract; no values)."""
    return dg.TableSchema(columns=[
        dg.TableColumn(name=c.name, type=c.type, description=c.description or None,
                       constraints=dg.TableColumnConstraints(nullable=not c.required,
                                                             unique=c.unique))
        for c in contract.columns])


def make_staged_asset(table: str) -> dg.AssetsDefinition:
    """Asset that types one raw table by its contract, quarantining rows that break a rule."""
    contract = load_contract(table)
    deps = [f"raw_{table}", *(f"staged_{p}" for p in contract.parents)]
    schema = column_schema(contract)

    @dg.asset(name=f"staged_{table}", group_name="ingest", partitions_def=EXTRACTS,
              deps=deps, kinds={"duckdb"},
              description=f"Typed rows of {contract.file} that passed every row rule.")
    def _staged(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                paths: ProjectPaths) -> dg.MaterializeResult:
        extract_id = context.partition_key
        with (timed() as t, value_free_failures(contract.file),
              duckdb.get_connection() as con):
            try:
                counts = stage(con, extract_id, contract)
            except ExtractError as exc:
                report = _write_report_quietly(con, extract_id, paths)
                where = f" (data-quality report: {report})" if report else ""
                raise dg.Failure(description=f"{exc}{where}", allow_retries=False) from None
        return dg.MaterializeResult(metadata={
            "dagster/row_count": counts.staged_rows, "dagster/column_schema": schema,
            "raw_rows": counts.raw_rows, "staged_rows": counts.staged_rows,
            "quarantined_rows": counts.quarantined_rows,
            "quarantined_by_rule": dg.MetadataValue.json(counts.quarantine_by_rule),
            "seconds": t["seconds"]})

    return _staged


def _partitioned_check(**kwargs):
    """``dg.asset_check`` on the extract partitions (a preview feature in Dagster 1.13, used
    so that each check runs for the same extract as its asset; the warning is silenced)."""
    def decorate(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.asset_check(partitions_def=EXTRACTS, blocking=True, **kwargs)(fn)
    return decorate


def make_reconcile_check(table: str) -> dg.AssetChecksDefinition:
    """Blocking check: every row of the file is staged, quarantined or a rejected line."""

    @_partitioned_check(asset=f"staged_{table}", name="rows_reconcile",
                        description="manifest rows = raw rows + rejected lines and raw rows = "
                        "staged rows + quarantined rows, recounted from the tables")
    def _check(context: dg.AssetCheckExecutionContext,
               duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            rec = reconcile(con, context.partition_key, table)
        return dg.AssetCheckResult(passed=rec.reconciles, metadata=rec.as_metadata())

    return _check


def make_references_check(table: str) -> dg.AssetChecksDefinition:
    """Blocking check: every staged reference names a staged parent row."""

    @_partitioned_check(asset=f"staged_{table}", name="references_resolve",
                        description="every staged reference has a staged parent row")
    def _check(context: dg.AssetCheckExecutionContext,
               duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            missing = unresolved_references(con, context.partition_key, table)
        return dg.AssetCheckResult(passed=not any(missing.values()),
                                   metadata={f"unresolved_{k}": v for k, v in missing.items()})

    return _check


def make_expectations_check(table: str) -> dg.AssetChecksDefinition:
    """Blocking check: the staged rows meet the Great Expectations suite built from the YAML."""
    contract = load_contract(table)

    @_partitioned_check(asset=f"staged_{table}", name=EXPECTATIONS_CHECK,
                        description="Great Expectations suite generated from the data contract, "
                        "run on the staged rows (counts only, no values)")
    def _check(context: dg.AssetCheckExecutionContext,
               duckdb: DuckDBResource) -> dg.AssetCheckResult:
        from pipeline.ingest.attestation import attest_staged

        with timed() as t, duckdb.get_connection() as con:
            att = attest_staged(con, context.partition_key, contract)
        return dg.AssetCheckResult(passed=att.success, metadata={
            "expectations": len(att.results), "failed": len(att.failed),
            "failed_rules": dg.MetadataValue.json(
                {r.rule: r.unexpected_count for r in att.failed}),
            "rows_checked": att.rows_checked, "rows_staged": att.rows_staged,
            "seconds": t["seconds"]})

    return _check


@dg.asset(group_name="ingest", partitions_def=EXTRACTS, kinds={"html", "csv"},
          deps=[f"staged_{t}" for t in EXTRACT_TABLES],
          description="Data-quality report for the data providers: rows received, loaded and "
          "quarantined by rule, linkage, completeness by column, trend against the previous "
          "extract; plus a CSV of quarantined rows (line, key, rule, reason).")
def data_quality_report(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                        paths: ProjectPaths) -> dg.MaterializeResult:
    from pipeline.ingest.quality_report import write_quality_report

    extract_id = context.partition_key
    with duckdb.get_connection() as con:
        written = write_quality_report(con, extract_id, paths.report_folder(extract_id))
        from pipeline.ingest.quality import data_quality_summary

        summary = data_quality_summary(con, extract_id)
    totals = summary["totals"]
    return dg.MaterializeResult(metadata={
        **{k: v for k, v in totals.items()},
        "linkage_rate": summary["linkage"]["rate"],
        "quarantined_by_rule": dg.MetadataValue.json(summary["quarantined_by_rule"]),
        "report": dg.MetadataValue.path(str(written["html"])),
        "quarantine_csv": dg.MetadataValue.path(str(written["csv"]))})


RAW_ASSETS = [make_raw_asset(t) for t in EXTRACT_TABLES]
STAGED_ASSETS = [make_staged_asset(t) for t in EXTRACT_TABLES]
RECONCILE_CHECKS = [make_reconcile_check(t) for t in EXTRACT_TABLES]
REFERENCE_CHECKS = [make_references_check(t) for t in EXTRACT_TABLES
                    if load_contract(t).parents]
EXPECTATION_CHECKS = [make_expectations_check(t) for t in EXTRACT_TABLES]
