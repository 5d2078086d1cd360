"""The delivery format shared by the providers' tools and ingest: file names, manifest, hashing."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pipeline.ingest.errors import ExtractError

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


# an extract id names a landing folder, a reports folder and a Dagster partition: no separators,
# no leading dot, nothing a shell or a path could read differently
EXTRACT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
EXTRACT_ID_RULE = ("an extract id is 1-100 letters, digits, '.', '_' or '-', starting with a "
                   "letter or digit")


class UnsafePath(ExtractError):
    """A name or path that would lead outside its folder (one line, no value echoed)."""


def check_extract_id(extract_id: str) -> str:
    """Return ``extract_id`` if it is a valid extract id; else raise ``UnsafePath``."""
    if not isinstance(extract_id, str) or not EXTRACT_ID.fullmatch(extract_id):
        raise UnsafePath(f"refused: not a valid extract id ({EXTRACT_ID_RULE})")
    return extract_id


def inside(root: Path, name: str, what: str = "path") -> Path:
    """``root / name`` resolved, confirmed to lie inside ``root`` and not to be a symlink.

    Used for every path built from a delivered or user-given name (extract folders, report
    folders, delivered files), so that no name can reach outside its root.
    """
    root = Path(root)
    path = root / name
    if path.is_symlink():
        raise UnsafePath(f"{path}: the {what} is a symbolic link; symbolic links are refused, "
                         "deliver the file or folder itself")
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()) or resolved == root.resolve():
        raise UnsafePath(f"{root}: a {what} name leads outside this folder; refused")
    return resolved
