"""Provenance of a report: extract, file hashes, config hash, code and package versions."""

from __future__ import annotations

import subprocess
from importlib import metadata

import duckdb

from pipeline.config import EvaluationConfig
from pipeline.settings import PROJECT_ROOT

PACKAGES = ("duckdb", "pandas", "numpy", "scipy", "statsmodels", "lifelines", "matplotlib",
            "dagster", "great-expectations", "typst")


def code_version() -> str:
    """Git commit of the code (with '+dirty' for uncommitted changes), else the package version."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "stalking-eval " + metadata.version("stalking-eval")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(con: duckdb.DuckDBPyConnection, extract_id: str,
               cfg: EvaluationConfig) -> dict:
    """Everything needed to reproduce the report's numbers later."""
    extraction_date, provider = con.execute(
        "SELECT extraction_date, provider FROM meta.extracts WHERE extract_id = ?",
        [extract_id]).fetchone()
    files = [{"file": f, "sha256": h} for f, h in con.execute(
        "SELECT file_name, sha256 FROM meta.loads WHERE extract_id = ? ORDER BY file_name",
        [extract_id]).fetchall()]
    return {"extract_id": extract_id, "extraction_date": extraction_date.isoformat(),
            "provider": provider, "files": files, "config_sha256": cfg.sha256,
            "code_version": code_version(), "packages": package_versions()}
