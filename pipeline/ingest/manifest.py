"""Read and verify an extract's ``manifest.json``: extract id, extraction date, hashes, rows."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.contracts.schema import load_identifier_rules
from pipeline.extract_format import EXTRACT_FILES, EXTRACT_ID, EXTRACT_ID_RULE, MANIFEST, inside
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.file_scan import FileScan, scan_file

SHA256 = re.compile(r"[0-9a-f]{64}")
PROVIDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,59}")


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
    except (ValueError, AttributeError):  # not JSON, or not UTF-8 text: not complete
        return False
    return bool(listed) and all((Path(folder) / name).is_file() for name in listed)


def _field_error(exc: Exception) -> str:
    """Which manifest field was wrong, without echoing what it held."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, KeyError):
        return "a required field is missing"
    return "a field has the wrong type or format"


def read_manifest(folder: Path, today: dt.date | None = None) -> Manifest:
    """Parse and check the manifest; anything wrong is a blocking one-line error.

    Checked here, before anything is registered or stored: the manifest is a plain file, the
    extract id is valid and equals the folder name, every listed file is one of the
    specification's four, hashes and row counts are well-formed, and the extraction date is
    not in the future. Messages never echo what the manifest holds.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if path.is_symlink():
        raise ExtractError(f"{path}: manifest.json is a symbolic link; send the file itself")
    if not path.is_file():
        raise ExtractError(f"{path}: manifest.json is missing; send it with the extract files")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        files = {str(name): FileEntry(str(name), str(e["sha256"]).lower(), int(e["rows"]))
                 for name, e in raw["files"].items()}
        manifest = Manifest(folder, str(raw["extract_id"]),
                            dt.date.fromisoformat(str(raw["extraction_date"])),
                            str(raw.get("provider", "unknown")), files)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError,
            UnicodeDecodeError) as exc:
        raise ExtractError(f"{path}: manifest is malformed ({_field_error(exc)}); it needs "
                           "extract_id, extraction_date (YYYY-MM-DD) and files with sha256 "
                           "and rows") from None
    if not EXTRACT_ID.fullmatch(manifest.extract_id):
        raise ExtractError(f"{path}: extract_id is not valid ({EXTRACT_ID_RULE})")
    if manifest.extract_id != folder.name:
        raise ExtractError(f"{path}: extract_id differs from the folder name; name the folder "
                           "after the extract id (one extract id per delivery)")
    if not PROVIDER.fullmatch(manifest.provider):
        raise ExtractError(f"{path}: provider must be 1-60 letters, digits, spaces, '.', '_', "
                           "'-', '(' or ')' (the organisation, never a person's contact)")
    looks_like = [p.kind for p in load_identifier_rules().values
                  if p.kind != "names" and re.search(p.pattern, manifest.provider)]
    if looks_like:
        raise ExtractError(f"{path}: provider looks like {looks_like[0]}; give the "
                           "organisation's name, never a person's contact")
    unknown = [i for i, name in enumerate(files, start=1) if name not in EXTRACT_FILES.values()]
    if unknown:
        raise ExtractError(f"{path}: files entry {unknown[0]} names a file that is not in the "
                           f"specification; list only {', '.join(EXTRACT_FILES.values())}")
    for entry in files.values():
        if not SHA256.fullmatch(entry.sha256) or entry.rows < 0:
            raise ExtractError(f"{path}: the entry for {entry.name} needs a 64-digit hex sha256 "
                               "and a non-negative rows count")
    missing = sorted(set(EXTRACT_FILES.values()) - set(files))
    if missing:
        raise ExtractError(f"{path}: manifest does not list {', '.join(missing)}; "
                           "every extract must contain all four files")
    today = today or dt.date.today()
    if manifest.extraction_date > today:
        raise ExtractError(f"{path}: extraction_date {manifest.extraction_date} is in the "
                           "future; give the date the data were extracted")
    return manifest


def check_study_window(manifest: Manifest, study_start: dt.date) -> None:
    """Refuse an extraction date before the study starts (a mistyped year, not bad rows)."""
    if manifest.extraction_date < study_start:
        raise ExtractError(f"{manifest.folder / MANIFEST}: extraction_date "
                           f"{manifest.extraction_date} is before the study start "
                           f"({study_start}); give the date the data were extracted")


def scan_delivered(manifest: Manifest, name: str) -> FileScan:
    """Check that a delivered file exists, is non-empty, matches its manifest hash and is text.

    The checksum is compared before the encoding is judged: a file that is not the one the
    manifest describes is reported as such, whatever else is wrong with it.
    """
    path = manifest.folder / name
    if path.is_symlink():
        raise ExtractError(f"{path}: the file is a symbolic link; symbolic links are refused, "
                           "deliver the file itself")
    inside(manifest.folder, name, "file")
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
