"""Load the data contracts (``data_contracts/*.yaml``), the single source of truth per table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from pipeline.settings import PROJECT_ROOT

CONTRACTS_DIR = PROJECT_ROOT / "data_contracts"
EXTRACT_TABLES = ("police_persons", "police_offences", "clinic_referrals", "clinic_sessions")
DUCKDB_TYPES = {"VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "DATE", "BOOLEAN"}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of an extract table as the contract defines it."""

    name: str
    type: str
    required: bool = False
    unique: bool = False
    pattern: str | None = None
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    references: str | None = None
    lookup: str | None = None
    description: str = ""


@dataclass(frozen=True)
class TableContract:
    """Contract of one extract file: its table name, file name, key and columns."""

    table: str
    file: str
    provider: str
    description: str
    primary_key: str
    columns: tuple[ColumnSpec, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class OffenceCode:
    code: str
    description: str
    family: str
    valid_from: dt.date
    valid_to: dt.date | None = None


class ContractError(ValueError):
    """A contract file itself is malformed (a developer error, named with file and key)."""


def _column(raw: dict, source: Path) -> ColumnSpec:
    try:
        spec = ColumnSpec(
            name=raw["name"], type=str(raw["type"]).upper(), required=bool(raw.get("required")),
            unique=bool(raw.get("unique")), pattern=raw.get("pattern"),
            allowed=tuple(raw["allowed"]) if raw.get("allowed") else None,
            min=raw.get("min"), max=raw.get("max"), references=raw.get("references"),
            lookup=raw.get("lookup"), description=raw.get("description", ""))
    except KeyError as exc:
        raise ContractError(f"{source.name}: a column lacks the key {exc}") from None
    if spec.type not in DUCKDB_TYPES:
        raise ContractError(f"{source.name}: column {spec.name} has unknown type {spec.type}")
    return spec


@cache
def load_contract(table: str, directory: Path = CONTRACTS_DIR) -> TableContract:
    """Parse ``<directory>/<table>.yaml`` into a TableContract."""
    path = Path(directory) / f"{table}.yaml"
    raw = yaml.safe_load(path.read_text())
    return TableContract(
        table=raw["table"], file=raw["file"], provider=raw["provider"],
        description=raw.get("description", ""), primary_key=raw["primary_key"],
        columns=tuple(_column(c, path) for c in raw["columns"]))


def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, TableContract]:
    """All four extract contracts keyed by table name."""
    return {t: load_contract(t, directory) for t in EXTRACT_TABLES}


@cache
def load_offence_codes(directory: Path = CONTRACTS_DIR) -> tuple[OffenceCode, ...]:
    """The offence-code lookup with each code's family and validity window."""
    raw = yaml.safe_load((Path(directory) / "offence_codes.yaml").read_text())
    return tuple(OffenceCode(c["code"], c["description"], c["family"], c["valid_from"],
                             c.get("valid_to")) for c in raw["codes"])
