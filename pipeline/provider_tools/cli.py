"""``python -m pipeline.provider_tools``: the data managers' commands.

    keygen KEYFILE                         make the shared secret (once; share it securely)
    pseudonymise IN.csv OUT.csv --table T --key-file KEYFILE --person-id COLUMN
                 [--victim-id COLUMN] [--birth-date COLUMN --birth-date-format %d/%m/%Y]
    manifest FOLDER --extract-id ID --extraction-date YYYY-MM-DD [--provider NAME]
    check FOLDER                           run every warehouse check in memory, store nothing

Messages name files, lines and columns, never values.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from pipeline.provider_tools.pseudonymise import (
    ToolError,
    load_key,
    new_key_file,
    pseudonymise_file,
)


def cmd_keygen(args: argparse.Namespace) -> int:
    path = new_key_file(args.key_file)
    print(f"wrote a new secret key to {path} (owner-only); give the same file to the other "
          "provider through a secure channel and never send it with an extract")
    return 0


def cmd_pseudonymise(args: argparse.Namespace) -> int:
    from pipeline.contracts.schema import load_contract

    ids = {"person_key": args.person_id} if args.person_id else {}
    if args.victim_id:
        ids["victim_key"] = args.victim_id
    result = pseudonymise_file(args.input, args.output, load_contract(args.table),
                               load_key(args.key_file), ids, args.birth_date,
                               args.birth_date_format)
    keyed = ", ".join(f"{src} -> {col}" for col, src in result.keyed.items())
    print(f"wrote {args.output}: {result.rows} rows; pseudonymised {keyed or 'nothing'}; "
          f"dropped columns: {', '.join(result.dropped) or 'none'}")
    return 0


def count_rows(path: Path) -> int:
    """Data rows of a CSV file: non-blank lines after the header."""
    with open(path, "rb") as fh:
        return max(sum(1 for line in fh if line.strip()) - 1, 0)


def cmd_manifest(args: argparse.Namespace) -> int:
    from pipeline.extract_format import EXTRACT_FILES, MANIFEST, sha256_file

    folder = Path(args.folder)
    missing = [n for n in EXTRACT_FILES.values() if not (folder / n).is_file()]
    if missing:
        raise ToolError(f"{folder / missing[0]}: file is missing")
    manifest = {"extract_id": args.extract_id, "extraction_date": args.extraction_date,
                "provider": args.provider,
                "files": {n: {"sha256": sha256_file(folder / n),
                              "rows": count_rows(folder / n)} for n in EXTRACT_FILES.values()}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {folder / MANIFEST}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Load and stage the extract into an in-memory database; print the summary."""
    import duckdb

    from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
    from pipeline.ingest.errors import ExtractError
    from pipeline.ingest.load import load_raw, stage
    from pipeline.ingest.manifest import read_manifest
    from pipeline.ingest.quality import data_quality_summary

    con = duckdb.connect()
    manifest = read_manifest(args.folder)
    problems = []
    for table in EXTRACT_TABLES:
        contract = load_contract(table)
        try:
            load_raw(con, manifest, contract)
            stage(con, manifest.extract_id, contract)
        except ExtractError as exc:
            problems.append(str(exc))
    summary = data_quality_summary(con, manifest.extract_id)
    for table, t in summary["tables"].items():
        print(f"{load_contract(table).file}: {t['received']} received, {t['loaded']} pass, "
              f"{t['quarantined']} quarantined, {t['rejected']} rejected lines ({t['status']})")
    lines = _first_lines(con, manifest.extract_id)
    for rule, n in summary["quarantined_by_rule"].items():
        where = f" (first lines: {lines[rule]})" if rule in lines else ""
        print(f"  {rule}: {n} rows{where}")
    for problem in problems:
        print(f"BLOCKING: {problem}")
    if problems:
        return EXIT_REFUSED
    return EXIT_QUARANTINED if summary["quarantined_by_rule"] else EXIT_CLEAN


EXIT_CLEAN, EXIT_QUARANTINED, EXIT_REFUSED = 0, 1, 2
EXIT_CODES = """exit codes:
  0  clean: every row would load
  1  some rows would be quarantined (listed with their rules and first line numbers)
  2  the extract would be refused (a blocking problem), or the command could not run"""


def _first_lines(con, extract_id: str, per_rule: int = 5) -> dict[str, str]:
    """The first line numbers of the rows each rule quarantined (line numbers only)."""
    rows = con.execute("""
        SELECT rule_id, string_agg(line::VARCHAR, ', ' ORDER BY line)
        FROM (SELECT DISTINCT rule_id, line FROM quarantine.rows WHERE extract_id = ?
              QUALIFY row_number() OVER (PARTITION BY rule_id ORDER BY line) <= ?)
        GROUP BY rule_id""", [extract_id, per_rule]).fetchall()
    return dict(rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.provider_tools", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python -m pipeline.provider_tools keygen secret.key\n"
               "  python -m pipeline.provider_tools pseudonymise persons_raw.csv "
               "police_persons.csv --table police_persons --key-file secret.key "
               "--person-id pnc_id\n"
               "  python -m pipeline.provider_tools manifest delivery/ --extract-id "
               "police-2026-11 --extraction-date 2026-11-30 --provider 'Force A'\n"
               "  python -m pipeline.provider_tools check delivery/\n\n" + EXIT_CODES)
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen", help="write a new shared secret key file")
    k.add_argument("key_file", type=Path)
    k.set_defaults(fn=cmd_keygen)
    s = sub.add_parser("pseudonymise", help="hash identifiers, keep only contract columns")
    s.add_argument("input", type=Path)
    s.add_argument("output", type=Path)
    s.add_argument("--table", required=True,
                   choices=["police_persons", "police_offences", "clinic_referrals"])
    s.add_argument("--key-file", type=Path, default=None,
                   help="shared secret (default: $STALKING_EVAL_PSEUDONYM_KEY_FILE)")
    s.add_argument("--person-id", help="column holding the person identifier (e.g. PNC id)")
    s.add_argument("--victim-id", help="column holding the victim identifier")
    s.add_argument("--birth-date", help="column with a full date of birth: kept as year only")
    s.add_argument("--birth-date-format", default="%d/%m/%Y")
    s.set_defaults(fn=cmd_pseudonymise)
    m = sub.add_parser("manifest", help="write manifest.json for a folder of four files")
    m.add_argument("folder", type=Path)
    m.add_argument("--extract-id", required=True)
    m.add_argument("--extraction-date", required=True,
                   type=lambda v: dt.date.fromisoformat(v).isoformat())
    m.add_argument("--provider", default="unknown")
    m.set_defaults(fn=cmd_manifest)
    c = sub.add_parser("check", help="run the warehouse checks in memory before sending",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  python -m pipeline.provider_tools check delivery/"
                              "\n\n" + EXIT_CODES)
    c.add_argument("folder", type=Path)
    c.set_defaults(fn=cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    from pipeline.ingest.errors import ExtractError

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ToolError, ExtractError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
