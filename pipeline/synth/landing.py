"""Write a synthetic extract as a provider would deliver it: four CSVs and a manifest.

The ground truth goes to a separate folder and never into the landing folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.extract_format import EXTRACT_FILES, MANIFEST, sha256_file
from pipeline.synth.generator import SyntheticExtract
from pipeline.warehouse_io import copy_frame


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """CSV with ISO dates, lower-case booleans and empty strings for missing values."""
    copy_frame(df, path, "HEADER, DELIMITER ',', NULLSTR ''")


def write_manifest(folder: Path, extract_id: str, extraction_date: str,
                   row_counts: dict[str, int], provider: str = "synthetic") -> dict:
    """Manifest listing every file with its SHA-256 and data-row count."""
    manifest = {
        "extract_id": extract_id,
        "extraction_date": extraction_date,
        "provider": provider,
        "files": {
            name: {"sha256": sha256_file(folder / name), "rows": int(row_counts[name])}
            for name in EXTRACT_FILES.values()
        },
    }
    # written last: a folder is complete only once its manifest exists
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(folder / MANIFEST)
    return manifest


def write_extract(extract: SyntheticExtract, landing_root: Path, truth_root: Path) -> Path:
    """Write the extract under ``landing_root/<extract_id>/`` and its truth under ``truth_root``."""
    extract_id = extract.truth["extract_id"]
    folder = Path(landing_root) / extract_id
    folder.mkdir(parents=True, exist_ok=True)
    frames = {
        "police_persons": extract.persons,
        "police_offences": extract.offences,
        "clinic_referrals": extract.referrals,
        "clinic_sessions": extract.sessions,
    }
    counts = {}
    for table, name in EXTRACT_FILES.items():
        write_csv(frames[table], folder / name)
        counts[name] = len(frames[table])
    write_manifest(folder, extract_id, extract.truth["params"]["extraction_date"], counts)

    truth_dir = Path(truth_root) / extract_id
    truth_dir.mkdir(parents=True, exist_ok=True)
    copy_frame(extract.truth_persons, truth_dir / "truth_persons.parquet", "FORMAT parquet")
    (truth_dir / "truth.json").write_text(json.dumps(extract.truth, indent=2, sort_keys=True))
    return folder
