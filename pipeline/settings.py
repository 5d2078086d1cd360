"""Where the product keeps its files; every path can be overridden by an environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Folders and files of one deployment (demo defaults live under ``data/``)."""

    data_dir: Path
    landing_dir: Path
    truth_dir: Path
    warehouse: Path
    reports_dir: Path
    config_file: Path

    @classmethod
    def from_env(cls) -> Settings:
        data = Path(os.environ.get("STALKING_EVAL_DATA", PROJECT_ROOT / "data"))
        return cls(
            data_dir=data,
            landing_dir=Path(os.environ.get("STALKING_EVAL_LANDING", data / "landing")),
            truth_dir=Path(os.environ.get("STALKING_EVAL_TRUTH", data / "truth")),
            warehouse=Path(os.environ.get("STALKING_EVAL_WAREHOUSE", data / "warehouse.duckdb")),
            reports_dir=Path(os.environ.get("STALKING_EVAL_REPORTS", data / "reports")),
            config_file=Path(os.environ.get("STALKING_EVAL_CONFIG",
                                            PROJECT_ROOT / "config" / "evaluation.yaml")),
        )
