"""Read and verify an extract's ``manifest.json``: extract id, extraction date, hashes, rows."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.extract_format import EXTRACT_FILES, MANIFEST, sha256_file
from pipeline.ingest.errors import ExtractError


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
    missing = sorted(set(EXTRACT_FILES.values()) - set(files))
    if missing:
        raise ExtractError(f"{path}: manifest does not list {', '.join(missing)}; "
                           "every extract must contain all four files")
    return manifest


def verify_file(manifest: Manifest, name: str) -> str:
    """Check that a delivered file exists, is non-empty and matches its manifest hash."""
    path = manifest.folder / name
    if not path.is_file():
        raise ExtractError(f"{path}: file is missing; send it or remove it from the manifest")
    if path.stat().st_size == 0:
        raise ExtractError(f"{path}: file is empty; re-send the extract")
    digest = sha256_file(path)
    if digest != manifest.files[name].sha256:
        raise ExtractError(f"{path}: SHA-256 {digest[:12]}… does not match the manifest "
                           f"({manifest.files[name].sha256[:12]}…); the file changed after the "
                           "manifest was written: re-send both")
    return digest
