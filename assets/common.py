"""Shared pieces of the Dagster assets: the extract partitions and the project resources."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from pipeline.extract_format import check_extract_id, inside
from pipeline.settings import Settings

# one partition per delivered extract (the landing folder name = extract id)
EXTRACTS = dg.DynamicPartitionsDefinition(name="extract")


class ProjectPaths(dg.ConfigurableResource):
    """Folders the assets read from and write to (defaults from the environment, see README)."""

    landing_dir: str
    reports_dir: str
    config_file: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "ProjectPaths":
        return cls(landing_dir=str(settings.landing_dir), reports_dir=str(settings.reports_dir),
                   config_file=str(settings.config_file))

    def extract_folder(self, extract_id: str) -> Path:
        """The landing folder of an extract: a valid id, inside the landing folder, no link."""
        return inside(self.landing_dir, check_extract_id(extract_id), "landing folder")

    def report_folder(self, extract_id: str) -> Path:
        """The reports folder of an extract: a valid id, resolved inside the reports folder."""
        return inside(self.reports_dir, check_extract_id(extract_id), "reports folder")


@contextmanager
def timed() -> Iterator[dict]:
    """Measure wall time into ``box['seconds']`` for asset metadata."""
    box: dict = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = round(time.perf_counter() - start, 3)
