"""The delivery format shared by the providers' tools and ingest: file names, manifest, hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path

EXTRACT_FILES = {
    "police_persons": "police_persons.csv",
    "police_offences": "police_offences.csv",
    "clinic_referrals": "clinic_referrals.csv",
    "clinic_sessions": "clinic_sessions.csv",
}
MANIFEST = "manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, streamed so that large extracts need no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
