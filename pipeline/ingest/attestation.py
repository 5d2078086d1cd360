"""Attest a staged table with the Great Expectations suite generated from its contract.

After quarantine, every staged row must meet every expectation: this is an independent check
(a different engine and different code from the SQL rules) that quarantine let nothing through.
Results keep counts only: the suite runs with a result format that copies no values
(``BASIC`` with ``exclude_unexpected_values`` and no partial lists), and only the expectation
type, columns, rule, success and counts are kept. Great Expectations is imported lazily here,
or, once a run has started its child process (``attestation_worker.prestart``), only there.

Above ``attestation.max_rows`` staged rows (``validation.yaml``) a repeatable random sample of
about that many rows is attested (chosen by a seeded hash of each row's key:
``attestation_sql``); the SQL rules always check every row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from pipeline.contracts.expectations import (
    FAR_FUTURE,
    attestation_sql,
    build_suite,
    ephemeral_context,
)
from pipeline.contracts.schema import TableContract, load_policy
from pipeline.ingest import attestation_worker
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.warehouse import delete_table_rows, ensure_schemas

# no values, no partial lists, no row indexes: counts only
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0,
                 "exclude_unexpected_values": True, "include_unexpected_rows": False,
                 "return_unexpected_index_query": False}
SAMPLE_SEED = 20261128
# the days a pandas nanosecond timestamp holds (whole years); FAR_FUTURE, the end of an
# open code window, is the last of them so that its helper column converts too
NS_FIRST, NS_LAST = pd.Timestamp("1678-01-01"), pd.Timestamp(FAR_FUTURE)


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation's outcome: counts only."""

    expectation: str
    columns: str
    rule: str
    success: bool
    element_count: int | None
    unexpected_count: int | None


@dataclass(frozen=True)
class Attestation:
    table: str
    rows_staged: int
    rows_checked: int
    results: tuple[ExpectationResult, ...]

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success]


def vectorisable(frame: pd.DataFrame) -> pd.DataFrame:
    """The same values in the dtypes Great Expectations compares column-wise.

    GE's pandas range check is vectorised only for int64/float64 and nanosecond datetimes;
    DuckDB hands over int32 and microsecond dates, which GE checks one Python call per value
    (0.15 s per date column per 20,000 rows). A date column outside the nanosecond range
    (years 1678-2261) keeps its dtype: slower, never changed. The result is a new frame.
    """
    out = frame.copy(deep=False)
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.api.extensions
                                                                   .ExtensionDtype):
            out[name] = frame[name].astype("int64")
        elif pd.api.types.is_datetime64_dtype(dtype) and dtype != "datetime64[ns]":
            column = frame[name]
            lowest, highest = column.min(), column.max()
            if pd.isna(lowest) or (NS_FIRST <= lowest and highest <= NS_LAST):
                out[name] = column.astype("datetime64[ns]")
    # one block per dtype: GE copies the frame for each metric, and an unconsolidated frame
    # (one block per column from DuckDB) is merged again at every copy (15-25% of the suite)
    return out.copy()


def run_suite(frame: pd.DataFrame, contract: TableContract, extraction_date: dt.date) -> list:
    """Validate a pandas frame against the table's suite; GE's result for each expectation.

    The batch validates the suite directly: a ``ValidationDefinition`` would also serialise
    the suite and store every result in the context (a quarter of the time for 50
    expectations), for nothing that is read.
    """
    frame = vectorisable(frame)
    _, ctx = ephemeral_context()  # a new context each call: nothing is left from a previous one
    batch = (ctx.data_sources.add_pandas(f"staging_{contract.table}")
             .add_dataframe_asset(contract.table)
             .add_batch_definition_whole_dataframe("whole")
             .get_batch(batch_parameters={"dataframe": frame}))
    result = batch.validate(build_suite(contract, extraction_date), result_format=RESULT_FORMAT)
    return list(result.results)


def counts_only(results: list) -> tuple[ExpectationResult, ...]:
    """Keep type, columns, rule, success and counts of each result (drop everything else)."""
    out = []
    for r in results:
        cfg = r.expectation_config
        kwargs = cfg.kwargs
        cols = ",".join(str(kwargs[k]) for k in ("column", "column_A", "column_B") if k in kwargs)
        res = r.result or {}
        out.append(ExpectationResult(
            expectation=cfg.type, columns=cols, rule=(cfg.meta or {}).get("rule", ""),
            success=bool(r.success), element_count=res.get("element_count"),
            unexpected_count=res.get("unexpected_count")))
    return tuple(out)


def attest_staged(con: duckdb.DuckDBPyConnection, extract_id: str, contract: TableContract,
                  max_rows: int | None = None) -> Attestation:
    """Run the contract's suite on this extract's staged rows; record counts in meta."""
    ensure_schemas(con)
    row = con.execute("SELECT extraction_date FROM meta.extracts WHERE extract_id = ?",
                      [extract_id]).fetchone()
    if row is None:
        raise ExtractError(f"extract {extract_id!r} has not been loaded")
    xdate = row[0]
    max_rows = load_policy().attestation_max_rows if max_rows is None else max_rows
    staged = con.execute(f"SELECT count(*) FROM staging.{contract.table} WHERE "
                         "_extract_id = ?", [extract_id]).fetchone()[0]
    sample = max_rows / staged if staged > max_rows else None
    sql = attestation_sql(contract, sample=sample, seed=SAMPLE_SEED).sql
    params = {"eid": extract_id, "xdate": xdate}
    frame = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).df()
    results = attestation_worker.validate(frame, contract, xdate)  # GE already imported there
    if results is None:
        results = counts_only(run_suite(frame, contract, xdate))
    attestation = Attestation(contract.table, int(staged), len(frame), results)
    _record(con, extract_id, attestation)
    return attestation


def _record(con: duckdb.DuckDBPyConnection, extract_id: str, att: Attestation) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    delete_table_rows(con, "meta.attestations", extract_id, att.table)
    con.executemany(
        "INSERT INTO meta.attestations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[extract_id, att.table, r.expectation, r.columns, r.success, r.element_count,
          r.unexpected_count, att.rows_checked, att.rows_staged, now] for r in att.results])
