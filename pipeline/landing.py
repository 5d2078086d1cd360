"""Scan the landing folder for complete extracts (the sensor's and the schedule's logic).

A folder is only offered for a run when it is safe to name a partition after it: a real folder
(not a symbolic link) whose name is a valid extract id and equals its manifest's extract id,
with every listed file present. Other folders are reported by ``landing_problems`` with a
one-line reason (no file contents), so that the sensor can say why it ignores them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pipeline.extract_format import EXTRACT_ID
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.manifest import is_complete, read_manifest


@dataclass(frozen=True)
class LandedExtract:
    extract_id: str
    extraction_date: dt.date
    fingerprint: str


def scan_landing(landing_dir: Path) -> tuple[list[LandedExtract], list[str]]:
    """(runnable extracts oldest first, one-line reasons for the folders that are refused)."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return [], []
    found, problems = [], []
    for folder in sorted(landing_dir.iterdir()):
        if folder.is_symlink():
            problems.append(f"{landing_dir}: an entry is a symbolic link; refused")
            continue
        if not folder.is_dir():
            continue
        if not EXTRACT_ID.fullmatch(folder.name):
            problems.append(f"{landing_dir}: a folder name is not a valid extract id; refused")
            continue
        if not is_complete(folder):
            continue  # still arriving
        try:
            m = read_manifest(folder)
        except ExtractError as exc:
            problems.append(str(exc))
            continue
        found.append(LandedExtract(m.extract_id, m.extraction_date, m.fingerprint))
    return sorted(found, key=lambda e: (e.extraction_date, e.extract_id)), problems


def complete_extracts(landing_dir: Path) -> list[LandedExtract]:
    """Extracts whose manifest and files are all present and valid, oldest extraction first."""
    return scan_landing(landing_dir)[0]


def landing_problems(landing_dir: Path) -> list[str]:
    """One line per complete-looking landing folder that cannot be run, and why."""
    return scan_landing(landing_dir)[1]
