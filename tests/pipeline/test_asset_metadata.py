"""Standard Dagster metadata on the table assets (issue 14.4): column schema from the contract,
names and types only."""

from __future__ import annotations

import inspect

import dagster as dg

import assets.ingest as ingest
from pipeline.contracts.schema import EXTRACT_TABLES, load_contract


def test_staged_column_schema_follows_the_contract():
    for table in EXTRACT_TABLES:
        contract = load_contract(table)
        schema = ingest.column_schema(contract)
        assert isinstance(schema, dg.TableSchema)
        assert [c.name for c in schema.columns] == [c.name for c in contract.columns]
        key = next(c for c in schema.columns if c.name == contract.primary_key)
        assert not key.constraints.nullable


def test_raw_and_staged_assets_report_the_standard_row_count():
    source = inspect.getsource(ingest)
    assert source.count('"dagster/row_count"') >= 2
    assert '"dagster/column_schema": schema' in source
