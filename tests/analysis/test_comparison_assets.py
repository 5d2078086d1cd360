"""The comparison assets materialise through Dagster, record counts only, and the balance
check warns exactly when a covariate is imbalanced after adjustment."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from assets.common import EXTRACTS, ProjectPaths
from assets.comparison import comparison_estimates, matched_cohort, propensity_scores
from benchmarks.simulation_study import stage_extract
from pipeline.cohort.build import build_units, link_persons
from pipeline.cohort.measures import write_measures
from pipeline.config import load_config
from pipeline.definitions import build_definitions
from pipeline.ingest.warehouse import ensure_schemas
from pipeline.settings import PROJECT_ROOT
from pipeline.synth.generator import generate
from pipeline.synth.params import SynthParams
from pipeline.warehouse_io import read_extract
from tests.conftest import make_settings

pytestmark = pytest.mark.slow  # make test-slow: the comparison assets through Dagster

@pytest.fixture(scope="module")
def materialised(tmp_path_factory):
    root = tmp_path_factory.mktemp("comparison_assets")
    config = root / "evaluation.yaml"
    config.write_text((PROJECT_ROOT / "config" / "evaluation.yaml").read_text()
                      .replace("bootstrap_replicates: 200", "bootstrap_replicates: 20"))
    cfg = load_config(config)
    params = SynthParams(n_people=2500, seed=5)
    eid, extraction = params.extract_id, params.extraction_date
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_schemas(con)
        con.execute("INSERT INTO meta.extracts (extract_id, extraction_date) VALUES (?, ?)",
                    [eid, extraction])
        stage_extract(con, eid, extraction, generate(params))
        link_persons(con, eid)
        build_units(con, eid, cfg, extraction)
        write_measures(con, eid, cfg, extraction)
    resources = {"duckdb": DuckDBResource(database=str(warehouse)),
                 "paths": ProjectPaths(landing_dir=str(root), reports_dir=str(root),
                                       config_file=str(config))}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(EXTRACTS.name, [eid])
        result = dg.materialize([propensity_scores, matched_cohort, comparison_estimates],
                                partition_key=eid, resources=resources, instance=instance)
    return result, warehouse, eid


def test_assets_materialise_with_counts_only(materialised):
    result, _, _ = materialised
    assert result.success
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        assert "seconds" in meta
        assert all(isinstance(v, dg.IntMetadataValue | dg.FloatMetadataValue)
                   for v in meta.values()), event.asset_key


def test_balance_check_warns_exactly_when_imbalanced(materialised):
    result, warehouse, eid = materialised
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "balance_after_adjustment"
    assert check.asset_key == dg.AssetKey("comparison_estimates")
    assert check.severity == dg.AssetCheckSeverity.WARN
    with duckdb.connect(str(warehouse), read_only=True) as con:
        balance = read_extract(con, "analysis.balance", eid)
    flagged = int(balance.loc[balance["method"] != "before", "flagged"].sum())
    assert check.passed == (flagged == 0)
    assert check.metadata["covariates_above_threshold"].value == flagged


def test_definitions_include_the_comparison_assets(tmp_path):
    defs = build_definitions(make_settings(tmp_path))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"propensity_scores", "matched_cohort", "comparison_estimates"} <= keys
