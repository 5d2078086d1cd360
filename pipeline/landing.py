"""Scan the landing folder for complete extracts (the sensor's and the schedule's logic)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.errors import ExtractError
from pipeline.ingest.manifest import is_complete, read_manifest


@dataclass(frozen=True)
class LandedExtract:
    extract_id: str
    extraction_date: dt.date
    fingerprint: str


def complete_extracts(landing_dir: Path) -> list[LandedExtract]:
    """Extracts whose manifest and files are all present, oldest extraction first.

    A folder whose name differs from its manifest's extract id is skipped: the partition key
    must name the folder. Unreadable manifests are skipped too (ingest reports them).
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return []
    found = []
    for folder in sorted(p for p in landing_dir.iterdir() if p.is_dir()):
        if not is_complete(folder):
            continue
        try:
            m = read_manifest(folder)
        except ExtractError:
            continue
        if m.extract_id == folder.name:
            found.append(LandedExtract(m.extract_id, m.extraction_date, m.fingerprint))
    return sorted(found, key=lambda e: (e.extraction_date, e.extract_id))
