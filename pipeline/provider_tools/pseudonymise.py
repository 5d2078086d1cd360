"""Pseudonymise identifiers with a shared secret key and strip direct identifiers.

Both providers run this with the same secret key file, so the same police identifier becomes
the same ``person_key`` in the police and clinic extracts and linkage still works, while
nobody without the key can go back from a key to the person:

    key = prefix + first 16 hex digits (upper case) of HMAC-SHA256(secret, identifier)

with the identifier normalised first (white space removed, upper case), ``PK`` for people and
``VK`` for victims. The output has exactly the contract's columns in contract order: every
other input column (names, dates of birth, addresses, free text, ...) is dropped, and a full
date of birth can be turned into the birth year the contract asks for.
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from pipeline.contracts.schema import TableContract

MIN_KEY_BYTES = 32
KEY_FILE_ENV = "STALKING_EVAL_PSEUDONYM_KEY_FILE"


class ToolError(ValueError):
    """A problem with the tool's input, explained in one line (never echoing a value)."""


def normalise(identifier: str) -> str:
    """The identifier as hashed: white space removed, upper case."""
    return "".join(identifier.split()).upper()


def pseudonym(secret: bytes, identifier: str, prefix: str) -> str:
    """``prefix`` + 16 upper-case hex digits of HMAC-SHA256(secret, normalised identifier)."""
    digest = hmac.new(secret, normalise(identifier).encode("utf-8"), sha256).hexdigest()
    return prefix + digest[:16].upper()


def new_key_file(path: Path) -> Path:
    """Write a new random 32-byte secret (hex) readable by the owner only; never overwrite."""
    path = Path(path)
    if path.exists():
        raise ToolError(f"{path}: already exists; a key must not be replaced by accident")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
    return path


def load_key(path: Path | None) -> bytes:
    """Read the shared secret (hex text, as written by ``keygen``, or raw bytes)."""
    path = Path(path or os.environ.get(KEY_FILE_ENV, ""))
    if not path.is_file():
        raise ToolError(f"secret key file {path} not found; pass --key-file or set "
                        f"{KEY_FILE_ENV}")
    data = path.read_bytes().strip()
    try:
        key = bytes.fromhex(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = data
    if len(key) < MIN_KEY_BYTES:
        raise ToolError(f"{path}: the secret key must have at least {MIN_KEY_BYTES} bytes")
    return key


def key_prefix(pattern: str) -> str:
    """The fixed prefix of a pseudonymised key format such as ``^PK[0-9A-F]{16}$``."""
    m = re.fullmatch(r"\^([A-Z]+)\[0-9A-F\]\{16\}\$", pattern)
    if not m:
        raise ToolError(f"key format {pattern} is not prefix + 16 hex digits")
    return m.group(1)


@dataclass(frozen=True)
class PseudonymiseResult:
    rows: int
    keyed: dict[str, str]  # output column -> source column hashed into it
    dropped: list[str]  # source columns not written (names only)


def pseudonymise_file(src: Path, dst: Path, contract: TableContract, secret: bytes,
                      ids: dict[str, str], birth_date: str | None = None,
                      birth_date_format: str = "%d/%m/%Y") -> PseudonymiseResult:
    """Write ``dst`` with the contract's columns; pseudonymised columns hashed from ``ids``.

    ``ids`` maps a pseudonymised contract column (``person_key``, ``victim_key``) to the source
    column holding the identifier. Other contract columns are copied; ``birth_year`` may be
    derived from a full date of birth in column ``birth_date``. Every other column is dropped.
    """
    src, dst = Path(src), Path(dst)
    keyed = {c.name: c for c in contract.columns if c.pseudonymised}
    unknown = sorted(set(ids) - set(keyed))
    if unknown:
        raise ToolError(f"{unknown[0]} is not a pseudonymised column of {contract.table} "
                        f"(those are: {', '.join(keyed)})")
    with open(src, newline="", encoding="utf-8-sig") as fin:
        reader = csv.DictReader(fin)
        header = reader.fieldnames or []
        sources = {col: ids.get(col, col) for col in keyed}
        needed = [c for c in contract.column_names if c not in keyed
                  and not (c == "birth_year" and birth_date)]
        needed += [s for c, s in sources.items() if contract.column(c).required or c in ids]
        needed += [birth_date] if birth_date else []
        missing = [c for c in needed if c not in header]
        if missing:
            raise ToolError(f"{src}: column {missing[0]!r} is missing from the header")
        used = set(needed) | {s for s in sources.values() if s in header}
        dropped = [c for c in header if c not in used]
        prefixes = {c: key_prefix(keyed[c].pattern) for c in keyed}
        cache: dict[tuple[str, str], str] = {}
        rows = 0
        tmp = dst.with_suffix(dst.suffix + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fout:
            w = csv.writer(fout, lineterminator="\n")
            w.writerow(contract.column_names)
            for n, rec in enumerate(reader, start=2):
                out = []
                for col in contract.column_names:
                    if col in keyed:
                        raw = (rec.get(sources[col]) or "").strip()
                        if not raw:
                            out.append("")
                            continue
                        k = (col, raw)
                        if k not in cache:
                            cache[k] = pseudonym(secret, raw, prefixes[col])
                        out.append(cache[k])
                    elif col == "birth_year" and birth_date:
                        value = (rec.get(birth_date) or "").strip()
                        try:
                            out.append(str(dt.datetime.strptime(value, birth_date_format).year)
                                       if value else "")
                        except ValueError:
                            raise ToolError(f"{src}: line {n}: {birth_date} is not a date in "
                                            f"the format {birth_date_format}") from None
                    else:
                        out.append(rec.get(col) or "")
                w.writerow(out)
                rows += 1
        tmp.replace(dst)
    return PseudonymiseResult(rows, {c: sources[c] for c in keyed if sources[c] in header},
                              dropped)
