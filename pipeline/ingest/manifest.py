"""Read and verify an extract's ``manifest.json``: extract id, extraction date, hashes, rows."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.extract_format import EXTRACT_FILES, MANIFEST
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.file_scan import FileScan, scan_file

SHA256 = re.compile(r"[0-9a-f]{64}")
EXTRACT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class Manifest:
    """What the provider says it sent: the reference every load is checked against."""

    folder: Path
    extract_id: str
    extraction_date: dt.date
    provider: str
    files: dict[str, FileEntry]

    @property
    def fingerprint(self) -> str:
        """Identity of the delivered content: changes if any file changes."""
        return ",".join(f"{k}:{v.sha256}" for k, v in sorted(self.files.items()))


def is_complete(folder: Path) -> bool:
    """A landing folder is complete once its manifest and every file it lists exist."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return False
    try:
        listed = json.loads(path.read_text()).get("files", {})
    except (json.JSONDecodeError, AttributeError):
        return False
    return bool(listed) and all((Path(folder) / name).is_file() for name in listed)


def read_manifest(folder: Path) -> Manifest:
    """Parse the manifest; a missing or malformed one is a blocking error."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ExtractError(f"{path}: manifest.json is missing; send it with the extract files")
    try:
        raw = json.loads(path.read_text())
        files = {name: FileEntry(name, str(e["sha256"]).lower(), int(e["rows"]))
                 for name, e in raw["files"].items()}
        manifest = Manifest(folder, str(raw["extract_id"]),
                            dt.date.fromisoformat(raw["extraction_date"]),
                            str(raw.get("provider", "unknown")), files)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ExtractError(f"{path}: manifest is malformed ({type(exc).__name__}: {exc}); "
                           "it needs extract_id, extraction_date (YYYY-MM-DD) and files "
                           "with sha256 and rows") from None
    if not EXTRACT_ID.fullmatch(manifest.extract_id):
        raise ExtractError(f"{path}: extract_id must be 1-100 letters, digits, '.', '_' or '-'")
    for entry in files.values():
        if not SHA256.fullmatch(entry.sha256) or entry.rows < 0:
            raise ExtractError(f"{path}: the entry for {entry.name} needs a 64-digit hex sha256 "
                               "and a non-negative rows count")
    missing = sorted(set(EXTRACT_FILES.values()) - set(files))
    if missing:
        raise ExtractError(f"{path}: manifest does not list {', '.join(missing)}; "
                           "every extract must contain all four files")
    return manifest


def scan_delivered(manifest: Manifest, name: str) -> FileScan:
    """Check that a delivered file exists, is non-empty, matches its manifest hash and is text.

    The checksum is compared before the encoding is judged: a file that is not the one the
    manifest describes is reported as such, whatever else is wrong with it.
    """
    path = manifest.folder / name
    if not path.is_file():
        raise ExtractError(f"{path}: file is missing; send it or remove it from the manifest")
    if path.stat().st_size == 0:
        raise ExtractError(f"{path}: file is empty (0 bytes); re-send the extract")
    try:
        scan = scan_file(path)
    except OSError as exc:
        raise ExtractError(f"{path}: the file cannot be read ({exc.strerror}); check its "
                           "permissions and re-send") from None
    expected = manifest.files[name].sha256
    if scan.sha256 != expected:
        raise ExtractError(f"{path}: SHA-256 {scan.sha256[:12]}... does not match the manifest "
                           f"({expected[:12]}...); the file changed after the manifest was "
                           "written: re-send both")
    if scan.problem:
        raise ExtractError(f"{path}: the file {scan.problem}")
    return scan


def verify_file(manifest: Manifest, name: str) -> str:
    """Verify a delivered file (see ``scan_delivered``) and return its SHA-256."""
    return scan_delivered(manifest, name).sha256
