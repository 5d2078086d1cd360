"""Shared fixtures for ingest tests: one small clean synthetic extract, copied per test."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.load import load_raw, stage
from pipeline.ingest.manifest import read_manifest
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams

PEOPLE = 500
SEED = 5


@pytest.fixture(scope="session")
def clean_extract(tmp_path_factory) -> Path:
    """A clean landing folder (500 people) written once per test session."""
    root = tmp_path_factory.mktemp("clean")
    params = SynthParams(n_people=PEOPLE, seed=SEED, extraction_date=dt.date(2026, 10, 31))
    return write_extract(generate(params), root / "landing", root / "truth")


@pytest.fixture()
def extract(clean_extract, tmp_path) -> Path:
    """A private copy of the clean extract that a test may damage."""
    return Path(shutil.copytree(clean_extract, tmp_path / "landing" / clean_extract.name))


@dataclass
class RunResult:
    """What happened when every table of an extract was loaded and staged in order."""

    error: ExtractError | None = None
    error_table: str | None = None
    error_phase: str | None = None
    loads: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)


def run_all(con: duckdb.DuckDBPyConnection, folder: Path, raw_first: bool = False) -> RunResult:
    """Load and stage all four tables in dependency order; stop at the first ExtractError.

    ``raw_first`` loads every file before staging any (the order a Dagster run may take).
    """
    out = RunResult()
    manifest = read_manifest(folder)
    steps = [(t, p) for t in EXTRACT_TABLES for p in ("load", "stage")]
    if raw_first:
        steps = sorted(steps, key=lambda s: s[1] == "stage")
    for table, phase in steps:
        contract = load_contract(table)
        try:
            if phase == "load":
                out.loads[table] = load_raw(con, manifest, contract)
            else:
                out.stages[table] = stage(con, manifest.extract_id, contract)
        except ExtractError as exc:
            out.error, out.error_table, out.error_phase = exc, table, phase
            return out
    return out


def data_lines(folder: Path, table: str) -> set[int]:
    """Physical line numbers of the non-blank data lines of a delivered file."""
    path = folder / load_contract(table).file
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return {i for i, x in enumerate(lines, start=1) if i > 1 and x.strip(b"\r") != b""}


def lines_of(con: duckdb.DuckDBPyConnection, sql: str, *params) -> set[int]:
    return {r[0] for r in con.execute(sql, list(params)).fetchall()}
