"""The streaming file scan: line counts, blank lines across block borders, encodings."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.ingest import file_scan
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.file_scan import blank_line_numbers, header_columns, scan_file


def _naive_blanks(data: bytes) -> tuple[int, ...]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return tuple(i for i, x in enumerate(lines, start=1) if x in (b"", b"\r"))


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 1 << 20])
def test_blank_lines_are_found_across_block_borders(tmp_path, chunk, monkeypatch):
    monkeypatch.setattr(file_scan, "CHUNK", chunk)
    data = b"a,b\n\n1,2\r\n\r\n\n3,4\n\n\n5,6\n\n"
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert blank_line_numbers(path) == _naive_blanks(data) == (2, 4, 5, 7, 8, 10)
    scan = scan_file(path)
    assert scan.lines == 10 and scan.terminated
    assert scan.sha256 == hashlib.sha256(data).hexdigest()


def test_unterminated_last_line_and_notes(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n1,2")
    scan = scan_file(path)
    assert (scan.lines, scan.terminated, scan.bom, scan.header) == (2, False, True, "a,b")
    assert "byte-order mark" in " ".join(scan.notes)
    assert header_columns(scan) == ["a", "b"]


@pytest.mark.parametrize(("content", "problem"), [
    (b"a,b\n1,caf\xe9\n", "first invalid byte on line 2"),
    (b"a,b\n1,2\n3,\x004\n", "NUL bytes"),
    (b"\na,b\n", "starts with an empty line"),
    (b"a,b\r1,2\r", "carriage returns"),
])
def test_encoding_problems_are_found_with_their_line(tmp_path, content, problem):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    assert problem in scan_file(path).problem


@pytest.mark.parametrize(("content", "what"), [
    (b"PK\x03\x04rest", "xlsx"), (b"\xff\xfea\x00", "UTF-16"), (b"\xd0\xcf\x11\xe0x", "97-2003"),
])
def test_non_text_files_are_refused(tmp_path, content, what):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(ExtractError, match=what):
        scan_file(path)


def test_multibyte_character_split_across_blocks_is_valid(tmp_path, monkeypatch):
    monkeypatch.setattr(file_scan, "CHUNK", 5)
    path = tmp_path / "f.csv"
    path.write_bytes("a,b\n1,é\n2,€\n".encode())
    assert scan_file(path).problem is None


def test_quotes_and_padding_are_flagged(tmp_path):
    plain, quoted, padded = (tmp_path / n for n in ("p.csv", "q.csv", "s.csv"))
    plain.write_bytes(b"a,b\n1,2\n")
    quoted.write_bytes(b'a,b\n"1",2\n')
    padded.write_bytes(b"a,b\n1 ,2\n")
    assert (scan_file(plain).quotes, scan_file(plain).padding) == (False, False)
    assert scan_file(quoted).quotes and scan_file(padded).padding


@pytest.mark.parametrize(("header", "name"), [("a;b;c", "semicolons"), ("a\tb", "tabs"),
                                              ("a|b", "vertical bars")])
def test_wrong_delimiter_is_named(tmp_path, header, name):
    path = tmp_path / "f.csv"
    path.write_text(header + "\n")
    with pytest.raises(ExtractError, match=name):
        header_columns(scan_file(path))
