"""Researcher notebooks run top to bottom against a real (small) warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, e2e, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    settings = e2e["settings"]
    monkeypatch.setenv("STALKING_EVAL_WAREHOUSE", str(settings.warehouse))
    monkeypatch.setenv("STALKING_EVAL_CONFIG", str(settings.config_file))
    monkeypatch.setenv("EXTRACT_ID", e2e["extract_id"])
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    shown = " ".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert e2e["extract_id"] in shown and "treated" in shown


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ must hold at least one researcher notebook"
