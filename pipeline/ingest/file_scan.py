"""One streaming pass over a delivered file: hash, encoding, line count, blank lines, header.

DuckDB parses the rows; this pass finds what DuckDB would otherwise hide or mis-number: the file
is not UTF-8 (or is a spreadsheet), how many physical lines it has, whether the last line is
cut off, and a byte-order mark. It reads the file once in 1 MiB blocks using only fast byte
searches, so it costs little more than hashing. Where blank lines are (DuckDB skips them, so
rows are numbered by physical line) is found by a second pass, only for a file that has some
(``blank_line_numbers``).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.errors import ExtractError

CHUNK = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
# a value starting or ending with a space (then values need trimming on load)
PADDING = (b" ,", b", ", b"\n ", b" \n", b" \r")
MAGIC = {
    b"PK\x03\x04": "a zip file (an .xlsx workbook?), not CSV text; save it as 'CSV UTF-8'",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook, not CSV text; save it as 'CSV UTF-8'",
    b"\xff\xfe": "UTF-16 encoded; save it as UTF-8 ('CSV UTF-8')",
    b"\xfe\xff": "UTF-16 encoded; save it as UTF-8 ('CSV UTF-8')",
}


@dataclass(frozen=True)
class FileScan:
    """What the streaming pass learned about one file (no cell values)."""

    path: Path
    sha256: str
    size: int
    lines: int  # physical lines, header included; an unterminated last line counts
    blank_lines: tuple[int, ...]  # 1-based numbers of empty lines (filled in by the loader)
    bom: bool
    terminated: bool  # the last line ends with a line break
    crlf: bool
    header: str  # first line, decoded, without byte-order mark and line break
    problem: str | None  # encoding problem found (raised after the checksum comparison)
    quotes: bool = True  # the file contains a double quote somewhere
    padding: bool = True  # some value may start or end with a space

    @property
    def notes(self) -> list[str]:
        """Harmless irregularities worth telling the provider."""
        out = []
        if self.bom:
            out.append("UTF-8 byte-order mark ignored")
        if self.blank_lines:
            out.append(f"{len(self.blank_lines)} blank line(s) skipped")
        if not self.terminated and self.lines > 1:
            out.append("last line has no line break")
        return out


def _blank_positions(buf: bytes, min_end: int) -> list[int]:
    """Positions of the line break that ends a line followed by an empty line."""
    found = []
    for pattern in (b"\n\n", b"\n\r\n"):
        start = 0
        while (p := buf.find(pattern, start)) >= 0:
            if p + len(pattern) - 1 >= min_end:
                found.append(p)
            start = p + 1
    return sorted(found)


LF_ONLY = re.compile(rb"(?<!\r)\n")
CRLF = re.compile(rb"\r\n")


def _other_break(block: bytes, crlf: bool, previous: bytes) -> int | None:
    """Offset in ``block`` of the first line break of the other kind than line 1's, or None.

    ``previous`` is the last byte of the previous block (a CRLF may straddle two blocks).
    """
    start = 1 if crlf and block[:1] == b"\n" and previous == b"\r" else 0
    if not crlf and block[:1] == b"\n" and previous == b"\r":
        return 0
    m = (LF_ONLY if crlf else CRLF).search(block, start)
    return m.start() if m else None


def scan_file(path: Path) -> FileScan:
    """Hash the file and collect its line structure; raise only for a non-text file."""
    path = Path(path)
    h = hashlib.sha256()
    size = newlines = 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    problem: str | None = None
    head = b""
    tail = b""  # last bytes of the previous block, to find padding across block borders
    last_byte = b""
    quotes = padding = False
    with open(path, "rb") as fh:
        head = fh.readline(1 << 20)
        for magic, what in MAGIC.items():
            if head.startswith(magic):
                raise ExtractError(f"{path}: the file is {what}")
        fh.seek(0)
        crlf = head.endswith(b"\r\n")
        while block := fh.read(CHUNK):
            if problem is None and (at := _other_break(block, crlf, last_byte)) is not None:
                line = newlines + block.count(b"\n", 0, at) + 1
                problem = (f"mixes Windows (CRLF) and Unix (LF) line breaks: line {line} ends "
                           "differently from line 1; save the file with one kind of line break")
            h.update(block)
            if problem is None and b"\x00" in block:
                problem = ("contains NUL bytes (UTF-16 text or a binary file?); save it as "
                           "UTF-8 CSV text")
            if problem is None and not (block.isascii() and not decoder.getstate()[0]):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    line = newlines + block.count(b"\n", 0, exc.start) + 1
                    problem = (f"is not UTF-8 encoded (first invalid byte on line {line}); "
                               "save it as 'CSV UTF-8' (Windows-1252/Latin-1 exports are not "
                               "accepted)")
            quotes = quotes or b'"' in block
            if not padding and (b" " in block or b" " in tail):  # rare: look closer
                buf = tail + block
                padding = any(p in buf for p in PADDING)
            newlines += block.count(b"\n")
            size += len(block)
            tail = block[-2:]
            last_byte = block[-1:]
    terminated = last_byte == b"\n"
    lines = newlines + (0 if terminated or size == 0 else 1)
    bom = head.startswith(UTF8_BOM)
    header = head[len(UTF8_BOM):] if bom else head
    header_text = header.rstrip(b"\r\n").decode("utf-8", errors="replace")
    if head.startswith(b"\n") or head.startswith(b"\r\n") or (bom and header.strip() == b""):
        problem = problem or "starts with an empty line; the header must be on line 1"
    if b"\r" in header.rstrip(b"\r\n"):
        problem = problem or ("uses carriage returns without line feeds as line breaks; save it "
                              "with Windows (CRLF) or Unix (LF) line breaks")
    padding = padding or head[len(UTF8_BOM) if bom else 0:][:1] == b" " or last_byte == b" "
    return FileScan(path, h.hexdigest(), size, lines, (), bom, terminated, crlf,
                    header_text, problem, quotes, padding)


def blank_line_numbers(path: Path) -> tuple[int, ...]:
    """1-based numbers of the empty lines of a file (a second pass, only when there are any)."""
    blanks: list[int] = []
    newlines = 0
    tail = b""
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            buf = tail + block
            counted, running = 0, newlines - tail.count(b"\n")
            for p in _blank_positions(buf, len(tail)):
                running += buf.count(b"\n", counted, p + 1)
                counted = p + 1
                blanks.append(running + 1)  # the empty line starts after this line break
            newlines += block.count(b"\n")
            tail = buf[-2:]
    return tuple(blanks)


def header_columns(scan: FileScan) -> list[str]:
    """Column names of the header line; a header that is not comma-delimited is an error."""
    text = scan.header
    if "," not in text:
        for delim, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            if delim in text:
                raise ExtractError(f"{scan.path}: line 1: the columns are separated by {name}; "
                                   "the agreed delimiter is a comma: re-export as "
                                   "comma-separated CSV")
    names = [c.strip() for c in text.split(",")]
    return [c[1:-1].replace('""', '"') if len(c) >= 2 and c[0] == c[-1] == '"' else c
            for c in names]
