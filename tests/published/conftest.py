"""Rossi's data converted and materialised through Dagster in two steps, once per module.

Step one builds everything up to the evaluation cohort (ingest, contracts, linkage, cohort):
the numeric tests read the cohort the pipeline built from the warehouse and apply the
pipeline's own analysis functions to it, so they hold while later assets are being fixed.
Step two materialises every remaining asset (estimates, comparison, report, exports) on the
same warehouse and Dagster instance: the two steps together are one whole run.
"""

from __future__ import annotations

import dataclasses
import gc
import time

import duckdb
import pytest

from pipeline.published import rossi
from pipeline.settings import Settings
from tests.conftest import make_settings

# Only the bootstrap is cut (200 → 20 resamples): it gives the bands of weighted estimates,
# none of which is compared here.
FAST = {"analysis.comparison.bootstrap_replicates": 20}
COHORT = "evaluation_cohort"


def materialise(settings: Settings, instance, upstream_of: str, invert: bool = False
                ) -> list[str]:
    """Materialise ``upstream_of`` and everything it depends on (or, ``invert``, every other
    asset) for the Rossi extract; return the steps that failed (empty: all succeeded)."""
    import dagster as dg

    from pipeline.definitions import EXTRACTS, build_definitions

    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    chosen = dg.AssetSelection.assets(upstream_of).upstream().resolve(graph)
    keys = sorted(graph.get_all_asset_keys() - chosen if invert else chosen)
    instance.add_dynamic_partitions(EXTRACTS.name, [rossi.EXTRACT_ID])
    job = defs.resolve_job_def("evaluate_extract")
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    result = job.execute_in_process(partition_key=rossi.EXTRACT_ID, instance=instance,
                                    asset_selection=keys, raise_on_error=False,
                                    run_config=quiet)
    failed = sorted({e.step_key for e in result.all_events if e.is_failure and e.step_key})
    # a failed step's traceback keeps its DuckDB connection (opened with Dagster's settings)
    # alive in a reference cycle; the tests' read-only connections need it gone
    del result
    gc.collect()
    return failed


@pytest.fixture(scope="module")
def rossi_run(tmp_path_factory):
    """Convert Rossi and materialise up to the evaluation cohort; yields paths and timings."""
    import dagster as dg

    from pipeline.published.deliver import write_rossi, write_rossi_config

    root = tmp_path_factory.mktemp("rossi")
    config = write_rossi_config(root / "rossi.yaml", extra=FAST)
    settings = dataclasses.replace(make_settings(root), config_file=config)
    write_rossi(settings.landing_dir)
    with dg.instance_for_test() as instance:
        t0 = time.perf_counter()
        failed = materialise(settings, instance, COHORT)
        yield {"ok": not failed, "failed": failed, "settings": settings, "instance": instance,
               "seconds": time.perf_counter() - t0,
               "report_dir": settings.reports_dir / rossi.EXTRACT_ID}


@pytest.fixture(scope="module")
def rossi_rest(rossi_run) -> list[str]:
    """Materialise every asset after the cohort; the steps that failed (empty: none)."""
    assert rossi_run["ok"]
    return materialise(rossi_run["settings"], rossi_run["instance"], COHORT, invert=True)


@pytest.fixture()
def rossi_con(rossi_run):
    assert rossi_run["ok"], f"failed for the Rossi extract: {rossi_run['failed']}"
    con = duckdb.connect(str(rossi_run["settings"].warehouse), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def rossi_data():
    """Rossi's rows with the person keys the converter gives them."""
    data = rossi.load()
    return data.assign(person_key=rossi.rossi_tables(data)["police_persons"]["person_key"])
