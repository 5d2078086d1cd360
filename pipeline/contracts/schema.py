"""Load the data contracts (``data_contracts/*.yaml``), the single source of truth per table.

The table files describe columns; ``rules.yaml`` the rules within a row and across tables;
``offence_codes.yaml`` the code lookup; ``validation.yaml`` the file format and thresholds;
``identifiers.yaml`` what the identifier guard refuses. Everything else (ingest SQL, quarantine
rules, the Great Expectations suites, the provider specification) is generated from these.
"""

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
    pseudonymised: bool = False
    max_length: int | None = None
    description: str = ""

    @property
    def parent(self) -> tuple[str, str] | None:
        """(table, column) this column references, if any."""
        if not self.references:
            return None
        table, column = self.references.split(".")
        return table, column


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

    @property
    def parents(self) -> tuple[str, ...]:
        """Tables this table references (they must be staged first)."""
        return tuple(dict.fromkeys(c.parent[0] for c in self.columns if c.parent))


@dataclass(frozen=True)
class OffenceCode:
    code: str
    description: str
    family: str
    valid_from: dt.date
    valid_to: dt.date | None = None


@dataclass(frozen=True)
class DateOrder:
    """Dates of one row that must not go backwards (empty ones skipped)."""

    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Conditional:
    """``column`` must be filled when ``when`` is in ``values`` and empty otherwise."""

    table: str
    column: str
    when: str
    values: tuple[str, ...]
    required: bool = True
    otherwise_empty: bool = True


@dataclass(frozen=True)
class WithinParent:
    """A child row's date must lie in its parent row's [from, to] (open end: extraction date)."""

    table: str
    column: str
    parent: str
    key: str
    start: str
    end: str


@dataclass(frozen=True)
class BirthYear:
    table: str
    column: str
    min_age: int
    max_age: int


@dataclass(frozen=True)
class CodeValidity:
    table: str
    column: str
    date: str
    lookup: str


@dataclass(frozen=True)
class ParentDate:
    """A date of a row checked against a date or year of the row it belongs to.

    ``path`` leads there: (key column, table[, key column of that table, next table]); e.g.
    a session reaches its person through (referral_key, clinic_referrals, person_key,
    police_persons). ``check`` is ``not_after`` (the date must not be after the parent's date)
    or ``not_before_year`` (the date's year must not be before the parent's year).
    """

    table: str
    column: str
    path: tuple[str, ...]
    parent_column: str
    check: str

    @property
    def parent(self) -> str:
        return self.path[-1]

    @property
    def rule_id(self) -> str:
        word = "not_after" if self.check == "not_after" else "not_before"
        return f"{self.table}.{self.column}.{word}_{self.parent_column}"


@dataclass(frozen=True)
class RuleBook:
    """The within-row and cross-table rules of ``rules.yaml``."""

    date_order: tuple[DateOrder, ...]
    conditional: tuple[Conditional, ...]
    within_parent: tuple[WithinParent, ...]
    not_after_extraction: bool
    birth_year: tuple[BirthYear, ...]
    code_validity: tuple[CodeValidity, ...]
    parent_dates: tuple[ParentDate, ...] = ()

    def for_table(self, table: str) -> RuleBook:
        """The subset of rules whose rows live in ``table``."""
        return RuleBook(
            tuple(r for r in self.date_order if r.table == table),
            tuple(r for r in self.conditional if r.table == table),
            tuple(r for r in self.within_parent if r.table == table),
            self.not_after_extraction,
            tuple(r for r in self.birth_year if r.table == table),
            tuple(r for r in self.code_validity if r.table == table),
            tuple(r for r in self.parent_dates if r.table == table))


@dataclass(frozen=True)
class Policy:
    """File format and thresholds of ``validation.yaml``."""

    max_line_bytes: int
    max_text_length: int
    max_quarantine_share: float
    wrong_type_min_values: int
    attestation_max_rows: int
    file_format: dict


@dataclass(frozen=True)
class IdentifierPattern:
    kind: str
    pattern: str
    # in date columns, only dates at least this many years before the extraction date
    date_columns_min_years: int | None = None
    skip_allowed_columns: bool = False


@dataclass(frozen=True)
class IdentifierRules:
    """What the identifier guard refuses: header names and value shapes."""

    column_names: tuple[IdentifierPattern, ...]
    values: tuple[IdentifierPattern, ...]


class ContractError(ValueError):
    """A contract file itself is malformed (a developer error, named with file and key)."""


def _yaml(directory: Path, name: str) -> dict:
    path = Path(directory) / name
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: cannot be read ({type(exc).__name__})") from None


def _column(raw: dict, source: Path) -> ColumnSpec:
    known = {"name", "type", "required", "unique", "pattern", "allowed", "min", "max",
             "references", "lookup", "pseudonymised", "max_length", "description"}
    unknown = set(raw) - known
    if unknown:
        raise ContractError(f"{source.name}: column {raw.get('name')} has unknown keys "
                            f"{sorted(unknown)}")
    try:
        spec = ColumnSpec(
            name=raw["name"], type=str(raw["type"]).upper(), required=bool(raw.get("required")),
            unique=bool(raw.get("unique")), pattern=raw.get("pattern"),
            allowed=tuple(str(v) for v in raw["allowed"]) if raw.get("allowed") else None,
            min=raw.get("min"), max=raw.get("max"), references=raw.get("references"),
            lookup=raw.get("lookup"), pseudonymised=bool(raw.get("pseudonymised")),
            max_length=raw.get("max_length"), description=raw.get("description", ""))
    except KeyError as exc:
        raise ContractError(f"{source.name}: a column lacks the key {exc}") from None
    if spec.type not in DUCKDB_TYPES:
        raise ContractError(f"{source.name}: column {spec.name} has unknown type {spec.type}")
    if spec.pseudonymised and not spec.pattern:
        raise ContractError(f"{source.name}: pseudonymised column {spec.name} needs a pattern")
    return spec


@cache
def load_contract(table: str, directory: Path = CONTRACTS_DIR) -> TableContract:
    """Parse ``<directory>/<table>.yaml`` into a TableContract."""
    path = Path(directory) / f"{table}.yaml"
    raw = _yaml(directory, f"{table}.yaml")
    contract = TableContract(
        table=raw["table"], file=raw["file"], provider=raw["provider"],
        description=raw.get("description", ""), primary_key=raw["primary_key"],
        columns=tuple(_column(c, path) for c in raw["columns"]))
    if contract.primary_key not in contract.column_names:
        raise ContractError(f"{path.name}: primary_key {contract.primary_key} is not a column")
    return contract


def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, TableContract]:
    """All four extract contracts keyed by table name."""
    return {t: load_contract(t, directory) for t in EXTRACT_TABLES}


@cache
def load_offence_codes(directory: Path = CONTRACTS_DIR) -> tuple[OffenceCode, ...]:
    """The offence-code lookup with each code's family and validity window."""
    raw = _yaml(directory, "offence_codes.yaml")
    return tuple(OffenceCode(c["code"], c["description"], c["family"], c["valid_from"],
                             c.get("valid_to")) for c in raw["codes"])


def _check_columns(tables: dict[str, TableContract], table: str, *columns: str) -> None:
    if table not in tables:
        raise ContractError(f"rules.yaml: unknown table {table}")
    missing = [c for c in columns if c not in tables[table].column_names]
    if missing:
        raise ContractError(f"rules.yaml: {table} has no column {missing[0]}")


@cache
def load_rulebook(directory: Path = CONTRACTS_DIR) -> RuleBook:
    """Parse ``rules.yaml`` and check that every table and column it names exists."""
    raw = _yaml(directory, "rules.yaml")
    tables = load_contracts(directory)
    try:
        book = RuleBook(
            date_order=tuple(DateOrder(r["table"], tuple(r["columns"]))
                             for r in raw.get("date_order", [])),
            conditional=tuple(Conditional(r["table"], r["column"], r["when"],
                                          tuple(str(v) for v in r["in"]),
                                          bool(r.get("required", True)),
                                          bool(r.get("otherwise_empty", True)))
                              for r in raw.get("conditional", [])),
            within_parent=tuple(WithinParent(r["table"], r["column"], r["parent"], r["key"],
                                             r["from"], r["to"])
                                for r in raw.get("within_parent", [])),
            not_after_extraction=bool(raw.get("not_after_extraction", True)),
            birth_year=tuple(BirthYear(r["table"], r["column"], int(r["min_age"]),
                                       int(r["max_age"])) for r in raw.get("birth_year", [])),
            code_validity=tuple(CodeValidity(r["table"], r["column"], r["date"], r["lookup"])
                                for r in raw.get("code_validity", [])),
            parent_dates=tuple(ParentDate(r["table"], r["column"], tuple(r["path"]),
                                          r["parent_column"], r["check"])
                               for r in raw.get("parent_dates", [])))
    except KeyError as exc:
        raise ContractError(f"rules.yaml: a rule lacks the key {exc}") from None
    for r in book.date_order:
        _check_columns(tables, r.table, *r.columns)
    for r in book.conditional:
        _check_columns(tables, r.table, r.column, r.when)
        if not tables[r.table].column(r.when).allowed:
            raise ContractError(f"rules.yaml: conditional on {r.table}.{r.when} needs allowed "
                                "values on that column")
    for r in book.within_parent:
        _check_columns(tables, r.table, r.column, r.key)
        _check_columns(tables, r.parent, r.key, r.start, r.end)
    for r in book.birth_year:
        _check_columns(tables, r.table, r.column)
    for r in book.code_validity:
        _check_columns(tables, r.table, r.column, r.date)
    for r in book.parent_dates:
        _check_parent_date(tables, r)
    return book


def _check_parent_date(tables: dict[str, TableContract], r: ParentDate) -> None:
    """A parent-date rule names real columns along a path of key, table pairs."""
    if r.check not in ("not_after", "not_before_year") or len(r.path) % 2:
        raise ContractError(f"rules.yaml: parent_dates rule {r.rule_id} needs check not_after "
                            "or not_before_year and a path of key, table pairs")
    _check_columns(tables, r.table, r.column, r.path[0])
    for i in range(0, len(r.path), 2):
        _check_columns(tables, r.path[i + 1], r.path[i])
        if i + 2 < len(r.path):
            _check_columns(tables, r.path[i + 1], r.path[i + 2])
    _check_columns(tables, r.parent, r.parent_column)


@cache
def load_policy(directory: Path = CONTRACTS_DIR) -> Policy:
    """Parse ``validation.yaml``: file format, blocking thresholds, attestation sample size."""
    raw = _yaml(directory, "validation.yaml")
    fmt, block = raw.get("file_format", {}), raw.get("blocking", {})
    return Policy(
        max_line_bytes=int(fmt.get("max_line_bytes", 65536)),
        max_text_length=int(fmt.get("max_text_length", 100)),
        max_quarantine_share=float(block.get("max_quarantine_share", 0.05)),
        wrong_type_min_values=int(block.get("wrong_type_min_values", 5)),
        attestation_max_rows=int(raw.get("attestation", {}).get("max_rows", 100_000)),
        file_format=dict(fmt))


@cache
def load_identifier_rules(directory: Path = CONTRACTS_DIR) -> IdentifierRules:
    """Parse ``identifiers.yaml``: the identifier guard's column-name and value patterns."""
    raw = _yaml(directory, "identifiers.yaml")
    return IdentifierRules(
        column_names=tuple(IdentifierPattern(r["kind"], r["pattern"])
                           for r in raw.get("column_names", [])),
        values=tuple(IdentifierPattern(r["kind"], r["pattern"],
                                       r.get("date_columns_min_years"),
                                       bool(r.get("skip_allowed_columns", False)))
                     for r in raw.get("values", [])))
