"""Fault injection: turn a clean synthetic landing folder into a faulty delivery.

Each fault is one switch (``python -m pipeline.synth --fault NAME``, repeatable) that edits the
written CSV files the way a real export goes wrong, re-writes the manifest as the provider's
tool would (hashes of the files as sent; row counts as the provider counted them) unless the
fault is in the manifest itself, and says what the pipeline must do about it:

- ``quarantine``: the rows it touched (and rows that depend on them) are quarantined by the
  named rule, every other row is staged;
- ``reject``: the lines it touched cannot be split into columns and are recorded as rejected;
- ``accept``: a harmless irregularity; everything loads, nothing is quarantined;
- ``block``: the run stops with a one-line error containing ``message``;
- ``refuse``: the identifier guard refuses the file; the error names the column and kind but
  none of the ``planted`` values, and nothing of the file is stored.

Row edits pick rows with a seeded generator, so a fault is reproducible.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.extract_format import EXTRACT_FILES, MANIFEST, sha256_file

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Expectation:
    """What the pipeline must do with a fault (see the module docstring)."""

    outcome: str
    table: str | None = None
    rule_id: str | None = None
    message: str | None = None
    phase: str = "load"  # block: raised while loading raw ("load") or staging ("stage")


@dataclass
class Injected:
    """What a fault changed: data lines per table, cascaded lines, planted identifier values."""

    fault: str
    expect: Expectation
    lines: dict[str, list[int]] = field(default_factory=dict)
    cascade: dict[str, list[int]] = field(default_factory=dict)
    planted: list[str] = field(default_factory=list)


@dataclass
class CsvFile:
    """A synthetic CSV as header and rows of fields (the generator never quotes).

    Blank lines and line breaks of earlier edits are kept: ``line(i)`` is the physical line of
    data row ``i`` and ``lines()`` rebuilds the file's lines with the edits applied.
    """

    path: Path
    header: list[str]
    rows: list[list[str]]
    linenos: list[int]
    physical: list[str]

    @classmethod
    def read(cls, folder: Path, table: str) -> CsvFile:
        path = Path(folder) / EXTRACT_FILES[table]
        physical = path.read_bytes().decode("utf-8").split("\n")
        if physical and physical[-1] == "":
            physical.pop()
        physical = [x.rstrip("\r") for x in physical]
        linenos = [n for n, x in enumerate(physical, start=1) if n > 1 and x != ""]
        return cls(path, physical[0].split(","), [physical[n - 1].split(",") for n in linenos],
                   linenos, physical)

    def line(self, i: int) -> int:
        """Physical line number of data row ``i``."""
        return self.linenos[i]

    def col(self, name: str) -> int:
        return self.header.index(name)

    def get(self, i: int, name: str) -> str:
        row, j = self.rows[i], self.col(name)
        return row[j] if j < len(row) else ""

    def set(self, i: int, name: str, value: str) -> None:
        self.rows[i][self.col(name)] = value

    def append(self, fields: list[str]) -> int:
        """Add a data row at the end; return its physical line."""
        self.rows.append(fields)
        self.linenos.append(len(self.physical) + 1)
        self.physical.append("")
        return self.linenos[-1]

    def lines(self) -> list[str]:
        out = list(self.physical)
        out[0] = ",".join(self.header)
        for n, row in zip(self.linenos, self.rows, strict=True):
            out[n - 1] = ",".join(row)
        return out

    def write(self, lines: list[str] | None = None, newline: str = "\n",
              terminated: bool = True) -> None:
        text = newline.join(self.lines() if lines is None else lines)
        self.path.write_bytes((text + (newline if terminated else "")).encode("utf-8"))


def refresh_manifest(folder: Path, rows: dict[str, int] | None = None) -> None:
    """Re-hash every listed file that exists (as the provider's tool would) and set row counts."""
    path = Path(folder) / MANIFEST
    manifest = json.loads(path.read_text())
    for name, entry in manifest["files"].items():
        if (Path(folder) / name).is_file():
            entry["sha256"] = sha256_file(Path(folder) / name)
    for name, n in (rows or {}).items():
        manifest["files"][name]["rows"] = n
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _pick(rng: np.random.Generator, candidates: list[int], k: int) -> list[int]:
    if len(candidates) < k:
        raise ValueError(f"the extract is too small for this fault ({len(candidates)} rows fit)")
    return sorted(int(i) for i in rng.choice(candidates, size=k, replace=False))


def _new_key(rng: np.random.Generator, prefix: str) -> str:
    return prefix + "".join(rng.choice(list("0123456789ABCDEF"), size=16))


def cascade(folder: Path, table: str, rows: list[int]) -> dict[str, list[int]]:
    """Lines of child tables that reference the given parent rows (they must be quarantined
    too, as ``parent_quarantined``), following offence -> person, referral -> person and
    session -> referral."""
    out: dict[str, list[int]] = {}
    if table == "police_persons":
        persons = CsvFile.read(folder, table)
        keys = {persons.get(i, "person_key") for i in rows}
        for child in ("police_offences", "clinic_referrals"):
            f = CsvFile.read(folder, child)
            hit = [i for i in range(len(f.rows)) if f.get(i, "person_key") in keys]
            if hit:
                out[child] = [f.line(i) for i in hit]
            if child == "clinic_referrals" and hit:
                for t, lines in cascade(folder, child, hit).items():
                    out[t] = sorted(set(out.get(t, [])) | set(lines))
    elif table == "clinic_referrals":
        refs = CsvFile.read(folder, table)
        keys = {refs.get(i, "referral_key") for i in rows}
        f = CsvFile.read(folder, "clinic_sessions")
        hit = [i for i in range(len(f.rows)) if f.get(i, "referral_key") in keys]
        if hit:
            out["clinic_sessions"] = [f.line(i) for i in hit]
    return out


def _persons_without_referrals(folder: Path) -> list[int]:
    persons = CsvFile.read(folder, "police_persons")
    refs = CsvFile.read(folder, "clinic_referrals")
    referred = {refs.get(i, "person_key") for i in range(len(refs.rows))}
    return [i for i in range(len(persons.rows)) if persons.get(i, "person_key") not in referred]


def _referrals_without_sessions(folder: Path, decision: str | None = None) -> list[int]:
    refs = CsvFile.read(folder, "clinic_referrals")
    sess = CsvFile.read(folder, "clinic_sessions")
    used = {sess.get(i, "referral_key") for i in range(len(sess.rows))}
    return [i for i in range(len(refs.rows)) if refs.get(i, "referral_key") not in used
            and (decision is None or refs.get(i, "decision") == decision)]


def _edit(table: str, column: str, value: Value,
          k: int = 3, where: Callable[[CsvFile, int], bool] | None = None,
          candidates: Callable[[Path], list[int]] | None = None,
          with_cascade: bool = False) -> Callable[[Path, np.random.Generator], Injected]:
    """A fault that sets ``column`` on ``k`` chosen rows of ``table``."""

    def inject(folder: Path, rng: np.random.Generator) -> tuple[dict, dict, list[str]]:
        f = CsvFile.read(folder, table)
        pool = candidates(folder) if candidates else range(len(f.rows))
        pool = [i for i in pool if where is None or where(f, i)]
        rows = _pick(rng, pool, k)
        planted = []
        for n, i in enumerate(rows):
            v = value(f, i, rng, n)
            f.set(i, column, v)
            planted.append(v)
        casc = cascade(folder, table, rows) if with_cascade else {}
        f.write()
        refresh_manifest(folder)
        return {table: [f.line(i) for i in rows]}, casc, planted

    return inject


Value = Callable[[CsvFile, int, np.random.Generator, int], str]


def _cycle(*values: str) -> Value:
    """The given values in turn: the n-th edited row gets values[n % len(values)]."""
    return lambda _f, _i, _rng, n: values[n % len(values)]


def _numbers_as_text() -> Value:
    """1985.0, then the year in words, then 1 985 (a thousands separator)."""
    forms = ("{y}.0", "nineteen-eighty", "{a} {b}")

    def value(f: CsvFile, i: int, rng: np.random.Generator, n: int) -> str:
        y = f.get(i, "birth_year")
        return forms[n % len(forms)].format(y=y, a=y[:1], b=y[1:])
    return value


def _date_shift(column: str, days: int, base: str | None = None) -> Value:
    def value(f: CsvFile, i: int, _rng: np.random.Generator, _n: int) -> str:
        d = dt.date.fromisoformat(f.get(i, base or column))
        return (d + days * DAY).isoformat()
    return value


def _empty(name: str):
    return lambda f, i: f.get(i, name) == ""


# --- whole-file faults --------------------------------------------------------------------

def _rewrite_bytes(table: str, transform: Callable[[bytes], bytes]):
    """A fault that rewrites a whole file's bytes (and re-hashes it in the manifest)."""
    def inject(folder: Path, rng: np.random.Generator):
        path = Path(folder) / EXTRACT_FILES[table]
        path.write_bytes(transform(path.read_bytes()))
        refresh_manifest(folder)
        return {}, {}, []
    return inject


def _blank_lines(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_offences")
    lines = f.lines()
    at = sorted(int(x) for x in rng.choice(range(2, len(lines)), size=3, replace=False))
    for n, pos in enumerate(at):
        lines.insert(pos + n, "")
    lines.append("")
    f.write(lines)
    refresh_manifest(folder)
    return {}, {}, []


def _line_edit(table: str, edit: Callable[[list[str], int], str], k: int):
    """A fault that rewrites whole data lines (as text) of ``k`` chosen rows."""
    def inject(folder: Path, rng: np.random.Generator):
        f = CsvFile.read(folder, table)
        rows = _pick(rng, list(range(len(f.rows) - 1)), k)
        lines = f.lines()
        for i in rows:
            lines[f.line(i) - 1] = edit(f.rows[i], i)
        f.write(lines)
        refresh_manifest(folder)
        return {table: [f.line(i) for i in rows]}, {}, []
    return inject


def _truncated_last_line(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_offences")
    lines = f.lines()
    while lines and lines[-1] == "":
        lines.pop()
    lines[-1] = ",".join(lines[-1].split(",")[:3])
    f.write(lines, terminated=False)
    refresh_manifest(folder)
    return {"police_offences": [len(lines)]}, {}, []


def _delimiter(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_persons")
    f.write([x.replace(",", ";") for x in f.lines()])
    refresh_manifest(folder)
    return {}, {}, []


def _cp1252(folder: Path, rng: np.random.Generator):
    """One value saved in Windows-1252 (an accented letter) inside a UTF-8 file."""
    f = CsvFile.read(folder, "police_offences")
    i = _pick(rng, list(range(len(f.rows))), 1)[0]
    raw = [x.encode("utf-8") for x in f.lines()]
    n = f.line(i) - 1
    parts = raw[n].split(b",")
    parts[f.col("victim_relationship")] = "caf\u00e9".encode("cp1252")
    raw[n] = b",".join(parts)
    f.path.write_bytes(b"\n".join(raw) + b"\n")
    refresh_manifest(folder)
    return {"police_offences": [f.line(i)]}, {}, []


def _utf16(folder: Path, rng: np.random.Generator):
    path = Path(folder) / EXTRACT_FILES["clinic_referrals"]
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    refresh_manifest(folder)
    return {}, {}, []


def _spreadsheet(folder: Path, rng: np.random.Generator):
    import io
    import zipfile

    path = Path(folder) / EXTRACT_FILES["police_persons"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    path.write_bytes(buf.getvalue())
    refresh_manifest(folder)
    return {}, {}, []


def _missing_file(folder: Path, rng: np.random.Generator):
    (Path(folder) / EXTRACT_FILES["clinic_sessions"]).unlink()
    return {}, {}, []


def _header_only(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "clinic_sessions")
    f.write(f.lines()[:1])
    refresh_manifest(folder, {f.path.name: 0})
    return {}, {}, []


def _drop_column(table: str, column: str):
    def inject(folder: Path, rng: np.random.Generator):
        f = CsvFile.read(folder, table)
        j = f.col(column)
        f.header.pop(j)
        for r in f.rows:
            r.pop(j)
        f.write()
        refresh_manifest(folder)
        return {}, {}, []
    return inject


def _rename_column(table: str, column: str, new: str):
    def inject(folder: Path, rng: np.random.Generator):
        f = CsvFile.read(folder, table)
        f.header[f.col(column)] = new
        f.write()
        refresh_manifest(folder)
        return {}, {}, []
    return inject


def _add_column(table: str, column: str, value: Callable[[int], str]):
    def inject(folder: Path, rng: np.random.Generator):
        f = CsvFile.read(folder, table)
        f.header.append(column)
        planted = []
        for i, r in enumerate(f.rows):
            r.append(value(i))
            planted.append(r[-1])
        f.write()
        refresh_manifest(folder)
        return {}, {}, sorted(set(planted) - {""})[:20]
    return inject


def _all_dates_ddmmyyyy(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_offences")
    for i in range(len(f.rows)):
        d = dt.date.fromisoformat(f.get(i, "offence_date"))
        f.set(i, "offence_date", d.strftime("%d/%m/%Y"))
    f.write()
    refresh_manifest(folder)
    return {}, {}, []


def _checksum(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_persons")
    f.set(0, "sex", "F" if f.get(0, "sex") == "M" else "M")
    f.write()  # the manifest is not refreshed: its hash no longer matches
    return {}, {}, []


def _row_count(folder: Path, rng: np.random.Generator):
    manifest = json.loads((Path(folder) / MANIFEST).read_text())
    name = EXTRACT_FILES["police_offences"]
    refresh_manifest(folder, {name: manifest["files"][name]["rows"] + 3})
    return {}, {}, []


def _duplicate_key(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_offences")
    rows = _pick(rng, list(range(len(f.rows))), 2)
    added = [f.append(list(f.rows[i])) for i in rows]
    f.write()
    refresh_manifest(folder, {f.path.name: len(f.rows)})
    return {"police_offences": [f.line(i) for i in rows] + added}, {}, []


def _share(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_offences")
    rows = _pick(rng, list(range(len(f.rows))), max(3, int(len(f.rows) * 0.08)))
    for i in rows:
        f.set(i, "outcome", "guilty")
    f.write()
    refresh_manifest(folder)
    return {"police_offences": [f.line(i) for i in rows]}, {}, []


def _changed(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_offences")
    i = _pick(rng, [i for i in range(len(f.rows)) if f.get(i, "outcome") == "pending"], 1)[0]
    f.set(i, "outcome", "charged")
    f.write()
    refresh_manifest(folder)
    return {}, {}, []


def _quote_everything(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "clinic_sessions")
    f.write([",".join(f'"{v}"' for v in x.split(",")) if x else x for x in f.lines()])
    refresh_manifest(folder)
    return {}, {}, []


def _reorder(folder: Path, rng: np.random.Generator):
    """Columns in another order than the contract's (allowed: columns are matched by name)."""
    f = CsvFile.read(folder, "police_offences")
    order = list(reversed(range(len(f.header))))
    f.header = [f.header[j] for j in order]
    f.rows = [[r[j] for j in order] for r in f.rows]
    f.write()
    refresh_manifest(folder)
    return {}, {}, []


def _pad(folder: Path, rng: np.random.Generator):
    f = CsvFile.read(folder, "police_persons")
    for r in f.rows:
        r[:] = [f" {v} " if v else v for v in r]
    f.write()
    refresh_manifest(folder)
    return {}, {}, []


@dataclass(frozen=True)
class Fault:
    """One switchable fault: what it does, what must happen, and the function that does it."""

    name: str
    description: str
    expect: Expectation
    inject: Callable[[Path, np.random.Generator], tuple[dict, dict, list[str]]]


Q, R, A, B, F = "quarantine", "reject", "accept", "block", "refuse"


def _fault(name: str, description: str, expect: Expectation, inject) -> Fault:
    return Fault(name, description, expect, inject)


OFF, PER, REF, SES = "police_offences", "police_persons", "clinic_referrals", "clinic_sessions"

FAULTS: dict[str, Fault] = {f.name: f for f in [
    # --- rows quarantined by a column rule --------------------------------------------------
    _fault("missing_required", "a required date left empty",
           Expectation(Q, OFF, f"{OFF}.offence_date.required"),
           _edit(OFF, "offence_date", _cycle(""))),
    _fault("not_allowed", "an outcome outside the agreed list",
           Expectation(Q, OFF, f"{OFF}.outcome.allowed"),
           _edit(OFF, "outcome", _cycle("guilty", "Convicted", "NFA"))),
    _fault("bad_key_format", "offence keys not in the agreed format",
           Expectation(Q, OFF, f"{OFF}.offence_key.format"),
           _edit(OFF, "offence_key", lambda f, i, r, *_: f"OF-{i:06d}")),
    _fault("implausible_birth_year", "birth years giving ages over 100",
           Expectation(Q, PER, f"{PER}.birth_year.plausible"),
           _edit(PER, "birth_year", _cycle("1850", "1899", "1900"),
                 candidates=_persons_without_referrals, with_cascade=True)),
    _fault("date_format", "dates written DD/MM/YYYY or as text on some rows",
           Expectation(Q, OFF, f"{OFF}.offence_date.type"),
           _edit(OFF, "offence_date", lambda f, i, r, *_: dt.date.fromisoformat(
               f.get(i, "offence_date")).strftime("%d/%m/%Y"))),
    _fault("numbers_as_text", "birth years written as decimals or words",
           Expectation(Q, PER, f"{PER}.birth_year.type"),
           _edit(PER, "birth_year", _numbers_as_text(),
                 candidates=_persons_without_referrals, with_cascade=True)),
    _fault("formula_injection", "spreadsheet formulas in a text field",
           Expectation(Q, OFF, f"{OFF}.victim_relationship.formula"),
           _edit(OFF, "victim_relationship",
                 _cycle("=HYPERLINK(A1)", "@SUM(A1:A9)", "+cmd|calc!A0"))),
    _fault("long_field", "a 5,000-character value",
           Expectation(Q, OFF, f"{OFF}.victim_relationship.length"),
           _edit(OFF, "victim_relationship", _cycle("x" * 5000), k=2)),
    _fault("stray_quote", "unbalanced double quotes inside values",
           Expectation(Q, OFF, f"{OFF}.victim_relationship.quote"),
           _edit(OFF, "victim_relationship", _cycle('"ex_partner', 'ex"partner', 'stranger"'))),
    # --- rows quarantined by a within-row or cross-table rule ------------------------------
    _fault("date_order", "recorded before the offence was committed",
           Expectation(Q, OFF, f"{OFF}.recorded_date.not_before_offence_date"),
           _edit(OFF, "recorded_date", _date_shift("recorded_date", -10, "offence_date"),
                 where=_empty("outcome_date"))),
    _fault("future_date", "a date after the extraction date",
           Expectation(Q, OFF, f"{OFF}.recorded_date.not_after_extraction"),
           _edit(OFF, "recorded_date", lambda f, i, r, *_: "2099-01-01",
                 where=_empty("outcome_date"))),
    _fault("code_window", "Stalking Protection Order breach dated before 20 Jan 2020",
           Expectation(Q, OFF, f"{OFF}.offence_code.valid_on_offence_date"),
           _edit(OFF, "offence_code", _cycle("SPOB"),
                 where=lambda f, i: f.get(i, "offence_date") < "2020-01-01")),
    _fault("conditional_missing", "a conviction without an outcome date",
           Expectation(Q, OFF, f"{OFF}.outcome_date.required_when"),
           _edit(OFF, "outcome_date", _cycle(""),
                 where=lambda f, i: f.get(i, "outcome") == "convicted"
                 and f.get(i, "custody_release_date") == "")),
    _fault("orphan_offence", "offences of a person missing from police_persons.csv",
           Expectation(Q, OFF, f"{OFF}.person_key.references"),
           _edit(OFF, "person_key", lambda f, i, r, *_: _new_key(r, "PK"))),
    _fault("unlinked_referral", "referrals whose person key is not in the police extract",
           Expectation(Q, REF, f"{REF}.person_key.references"),
           _edit(REF, "person_key", lambda f, i, r, *_: _new_key(r, "PK"), k=1,
                 candidates=_referrals_without_sessions)),
    _fault("orphan_session", "sessions of a referral missing from clinic_referrals.csv",
           Expectation(Q, SES, f"{SES}.referral_key.references"),
           _edit(SES, "referral_key", _cycle("RF99999999"))),
    _fault("referral_date_order", "decision dated before the referral",
           Expectation(Q, REF, f"{REF}.decision_date.not_before_referral_date"),
           _edit(REF, "decision_date", _date_shift("decision_date", -5, "referral_date"), k=1,
                 candidates=lambda d: _referrals_without_sessions(d, "declined"))),
    _fault("session_outside_referral", "sessions dated before their referral",
           Expectation(Q, SES, f"{SES}.session_date.within_parent"),
           lambda folder, rng: _session_before_referral(folder, rng)),
    # --- lines rejected ---------------------------------------------------------------------
    _fault("extra_field", "lines with an extra field",
           Expectation(R, OFF, "file.extra_fields"),
           _line_edit(OFF, lambda r, i: ",".join([*r, "extra"]), 2)),
    _fault("missing_field", "lines with a field missing",
           Expectation(R, OFF, "file.missing_fields"),
           _line_edit(OFF, lambda r, i: ",".join(r[:-1]), 2)),
    _fault("truncated_last_line", "the file cut off in its last line",
           Expectation(R, OFF, "file.truncated_last_line"), _truncated_last_line),
    _fault("oversized_line", "a line over 64 KiB",
           Expectation(R, OFF, "file.line_too_long"),
           _line_edit(OFF, lambda r, i: ",".join([*r[:6], "y" * 70_000, *r[7:]]), 1)),
    # --- harmless irregularities ----------------------------------------------------------
    _fault("blank_lines", "blank lines between rows and at the end",
           Expectation(A, OFF), _blank_lines),
    _fault("bom", "a UTF-8 byte-order mark (Excel 'CSV UTF-8')",
           Expectation(A, PER), _rewrite_bytes(PER, lambda b: b"\xef\xbb\xbf" + b)),
    _fault("crlf", "Windows line endings",
           Expectation(A, REF), _rewrite_bytes(REF, lambda b: b.replace(b"\n", b"\r\n"))),
    _fault("quoted_fields", "every value wrapped in double quotes",
           Expectation(A, SES), _quote_everything),
    _fault("padded_values", "spaces around values",
           Expectation(A, PER), _pad),
    _fault("columns_reordered", "the columns in another order",
           Expectation(A, OFF), _reorder),
    # --- the extract cannot be trusted -------------------------------------------------------
    _fault("wrong_delimiter", "semicolon-separated file",
           Expectation(B, PER, message="separated by semicolons"), _delimiter),
    _fault("wrong_encoding", "a Windows-1252 character",
           Expectation(B, OFF, message="is not UTF-8 encoded (first invalid byte on line"),
           _cp1252),
    _fault("utf16", "a UTF-16 file", Expectation(B, REF, message="UTF-16"), _utf16),
    _fault("spreadsheet", "an Excel workbook sent instead of CSV",
           Expectation(B, PER, message="workbook"), _spreadsheet),
    _fault("missing_file", "a file not delivered",
           Expectation(B, SES, message="file is missing"), _missing_file),
    _fault("empty_file", "a 0-byte file",
           Expectation(B, SES, message="file is empty"),
           _rewrite_bytes(SES, lambda b: b"")),
    _fault("header_only", "a file with a header and no rows",
           Expectation(B, SES, message="no data rows"), _header_only),
    _fault("missing_column", "a column left out",
           Expectation(B, PER, message="column 'site' is missing"),
           _drop_column(PER, "site")),
    _fault("renamed_column", "a column renamed",
           Expectation(B, OFF, message="found 'result' instead"),
           _rename_column(OFF, "outcome", "result")),
    _fault("extra_column", "a column outside the contract",
           Expectation(B, REF, message="column 'notes' is not in the data contract"),
           _add_column(REF, "notes", lambda i: "n/a")),
    _fault("unnamed_column", "a trailing comma on every line (an unnamed column)",
           Expectation(B, REF, message="of the header has no name"),
           _add_column(REF, "", lambda i: "")),
    _fault("wrong_type_column", "every date of a column written DD/MM/YYYY",
           Expectation(B, OFF, message="column offence_date: none of its", phase="stage"),
           _all_dates_ddmmyyyy),
    _fault("checksum_mismatch", "a file changed after the manifest was written",
           Expectation(B, PER, message="does not match the manifest"), _checksum),
    _fault("row_count_mismatch", "the manifest counts more rows than were sent",
           Expectation(B, OFF, message="manifest says"), _row_count),
    _fault("duplicate_key", "two offence rows sent twice",
           Expectation(B, OFF, f"{OFF}.offence_key.unique", message="duplicated offence_key",
                       phase="stage"), _duplicate_key),
    _fault("quarantine_share", "8% of offences with an invalid outcome",
           Expectation(B, OFF, f"{OFF}.outcome.allowed", message="above the 5% limit",
                       phase="stage"), _share),
    _fault("changed_delivery", "a changed file re-sent under an extract id already loaded",
           Expectation(B, OFF, message="already loaded"), _changed),
    # --- direct identifiers -----------------------------------------------------------------
    _fault("identifier_column", "a surname column",
           Expectation(F, PER, message="column 'surname' looks like names"),
           _add_column(PER, "surname", lambda i: ["Smith", "Jones", "Taylor", "Brown"][i % 4])),
    _fault("id_names", "victims' names instead of victim keys",
           Expectation(F, OFF, message="column 'victim_key' holds names"),
           _edit(OFF, "victim_key", _cycle("Jane Doe", "SMITH, John", "Mary-Ann O'Neil"),
                 where=lambda f, i: f.get(i, "victim_key") != "")),
    _fault("id_dob", "full dates of birth instead of birth years",
           Expectation(F, PER, message="column 'birth_year' holds full dates of birth"),
           _edit(PER, "birth_year", lambda f, i, r, *_: f"{f.get(i, 'birth_year')}-03-14")),
    _fault("id_postcode", "postcodes in the site column",
           Expectation(F, PER, message="column 'site' holds postcodes"),
           _edit(PER, "site", _cycle("SW1A 1AA", "M1 1AE", "B33 8TH"))),
    _fault("id_address", "addresses in a coded column",
           Expectation(F, OFF, message="column 'victim_relationship' holds addresses"),
           _edit(OFF, "victim_relationship", _cycle("10 Downing Street", "221B Baker Street"))),
    _fault("id_pnc", "PNC numbers instead of person keys",
           Expectation(F, OFF, message="column 'person_key' holds PNC numbers"),
           _edit(OFF, "person_key", _cycle("12/1234567A", "2001/0012345Z"))),
    _fault("id_nhs", "NHS numbers instead of person keys",
           Expectation(F, REF, message="column 'person_key' holds NHS numbers"),
           _edit(REF, "person_key", _cycle("943 476 5919", "4505577104"), k=2)),
    _fault("id_email", "e-mail addresses instead of victim keys",
           Expectation(F, OFF, message="column 'victim_key' holds e-mail addresses"),
           _edit(OFF, "victim_key", _cycle("jane.doe@example.com"),
                 where=lambda f, i: f.get(i, "victim_key") != "")),
    _fault("id_phone", "phone numbers in a coded column",
           Expectation(F, OFF, message="column 'victim_relationship' holds phone numbers"),
           _edit(OFF, "victim_relationship", _cycle("07700 900123", "+44 20 7946 0958"))),
    _fault("id_ni", "National Insurance numbers instead of person keys",
           Expectation(F, PER, message="holds national insurance numbers"),
           _edit(PER, "person_key", _cycle("AB 12 34 56 C"), k=1,
                 candidates=_persons_without_referrals)),
    _fault("unpseudonymised_key", "raw police identifiers instead of pseudonymised keys",
           Expectation(F, PER, message="column 'person_key' holds values that are not "
                       "pseudonymised keys"),
           _edit(PER, "person_key", lambda f, i, r, *_: f"WM{i:07d}", k=2,
                 candidates=_persons_without_referrals)),
]}


def _session_before_referral(folder: Path, rng: np.random.Generator):
    refs = CsvFile.read(folder, REF)
    start = {refs.get(i, "referral_key"): refs.get(i, "referral_date")
             for i in range(len(refs.rows))}
    return _edit(SES, "session_date", lambda f, i, r, *_: (dt.date.fromisoformat(
        start[f.get(i, "referral_key")]) - 30 * DAY).isoformat())(folder, rng)


def apply_fault(folder: Path, name: str, seed: int = 0) -> Injected:
    """Inject one fault into a written landing folder; return what was changed."""
    if name not in FAULTS:
        raise KeyError(f"unknown fault {name!r}; choose from: {', '.join(FAULTS)}")
    fault = FAULTS[name]
    rng = np.random.default_rng([seed, list(FAULTS).index(name)])
    lines, casc, planted = fault.inject(Path(folder), rng)
    return Injected(name, fault.expect, lines, casc, planted)


def apply_faults(folder: Path, names: list[str], seed: int = 0) -> list[Injected]:
    """Inject several faults in turn (later ones see the earlier edits)."""
    return [apply_fault(folder, n, seed) for n in names]
