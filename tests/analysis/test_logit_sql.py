"""Risk-set pairs are scored in DuckDB: the SQL logit equals the fitted model's own
prediction, including pooled sparse levels, unseen levels and boolean covariates."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.analysis.propensity_scores import fit_scores, logit_sql
from pipeline.config import load_config
from pipeline.settings import PROJECT_ROOT

CFG = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")


def _frame(n: int, seed: int, treated: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "age": rng.normal(35, 10, n).round(), "prior_sh": rng.poisson(1.2, n),
        "prior_violence": rng.poisson(0.5, n), "prior_other": rng.poisson(1.0, n),
        "prior_sh_convictions": rng.poisson(0.5, n), "prior_custody": rng.random(n) < 0.2,
        "days_since_qualifying": rng.integers(0, 365, n),
        "sex": rng.choice(["F", "M"], n, p=[0.1, 0.9]),
        "victim_relationship": rng.choice(["ex_partner", "stranger", "family", "professional"],
                                          n),
        "site": rng.choice(["SITE_A", "SITE_B", "SITE_C"], n)})
    if treated:
        lp = -2 + 0.4 * f["prior_sh"] - 0.02 * (f["age"] - 35)
        f["treated"] = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return f


def test_sql_logit_equals_the_models_prediction():
    units = _frame(3000, 1)
    # a level held by comparison people only: pooled into the modal level at fit time
    units.loc[units["treated"] == 0, "victim_relationship"] = units.loc[
        units["treated"] == 0, "victim_relationship"].where(
        np.arange((units["treated"] == 0).sum()) % 50 != 0, "neighbour")
    score = fit_scores(units, CFG)
    assert score.pooled.get("victim_relationship")  # the sparse level was pooled
    pairs = _frame(500, 2, treated=False)
    pairs.loc[::7, "victim_relationship"] = "neighbour"  # pooled level
    pairs.loc[::11, "site"] = "SITE_Z"  # a level unseen at fit time: taken as the modal one
    con = duckdb.connect()
    con.register("c", pairs)
    sql = con.execute(f"SELECT {logit_sql(score, CFG)} AS logit FROM c").df()["logit"]
    assert sql.to_numpy() == pytest.approx(score.predict_logit(pairs, CFG), abs=1e-9)
