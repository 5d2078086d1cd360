"""Researcher notebooks run top to bottom against a research snapshot of a real (small) run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.research.helpers import publish_e2e

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def snapshot_root(e2e, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nb_snapshots")
    publish_e2e(e2e, root)
    return root


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, e2e, snapshot_root, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    settings = e2e["settings"]
    # the warehouse is deliberately not given: notebooks read the snapshot only
    monkeypatch.setenv("STALKING_EVAL_WAREHOUSE", str(snapshot_root / "no-warehouse.duckdb"))
    monkeypatch.setenv("STALKING_EVAL_SNAPSHOTS", str(snapshot_root))
    monkeypatch.setenv("STALKING_EVAL_CONFIG", str(settings.config_file))
    monkeypatch.setenv("EXTRACT_ID", e2e["extract_id"])
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit notebooks without outputs (no data values in the repository)"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    shown = " ".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert e2e["extract_id"] in shown and "treated" in shown
    assert not (snapshot_root / "no-warehouse.duckdb").exists()


def test_the_three_researcher_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == ["01_explore_cohort", "02_reproduce_headline",
                                           "03_sensitivity_covariates"]
