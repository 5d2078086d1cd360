"""Scan the landing folder for complete extracts (the sensor's and the schedule's logic).

A folder is only offered for a run when it is safe to name a partition after it: a real folder
(not a symbolic link) whose name is a valid extract id and equals its manifest's extract id,
with every listed file present, and an extraction date not before the study start
(``study.first_index_date``: such an extract would only fail inside its run). Other folders are
reported by ``landing_problems`` with a one-line reason (no file contents), so that the sensor
can say why it ignores them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pipeline.extract_format import EXTRACT_ID
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.manifest import check_study_window, is_complete, read_manifest


@dataclass(frozen=True)
class LandedExtract:
    extract_id: str
    extraction_date: dt.date
    fingerprint: str


def configured_study_start(config_file: Path | None = None) -> dt.date | None:
    """``study.first_index_date`` of the configuration (default: the environment's), or None
    when it cannot be read (the run then refuses the extract with the configuration error)."""
    from pipeline.config import ConfigError, load_config
    from pipeline.settings import Settings

    try:
        return load_config(config_file or Settings.from_env().config_file).first_index_date
    except (ConfigError, OSError):
        return None


def scan_landing(landing_dir: Path, study_start: dt.date | None = None,
                 config_file: Path | None = None) -> tuple[list[LandedExtract], list[str]]:
    """(runnable extracts oldest first, one-line reasons for the folders that are refused).

    An extraction date before ``study_start`` (default: ``study.first_index_date`` of
    ``config_file``, else of the environment's configuration) is refused with its reason.
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return [], []
    if study_start is None:
        study_start = configured_study_start(config_file)
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
            if study_start is not None:
                check_study_window(m, study_start)
        except ExtractError as exc:
            problems.append(str(exc))
            continue
        found.append(LandedExtract(m.extract_id, m.extraction_date, m.fingerprint))
    return sorted(found, key=lambda e: (e.extraction_date, e.extract_id)), problems


def complete_extracts(landing_dir: Path, study_start: dt.date | None = None) -> list[LandedExtract]:
    """Extracts whose manifest and files are all present and valid, oldest extraction first."""
    return scan_landing(landing_dir, study_start)[0]


def landing_problems(landing_dir: Path, study_start: dt.date | None = None) -> list[str]:
    """One line per complete-looking landing folder that cannot be run, and why."""
    return scan_landing(landing_dir, study_start)[1]
