"""The Justice Data Lab block on a hand-made extract whose every proven reoffence is known.

Index date 2022-03-01 for everyone measurable: the year ends 2023-03-01 (day 365) and proof
must come by 2023-08-31 (day 547). Extraction 2024-12-31: start dates after 2023-07-03 are
not yet measurable.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from pipeline.analysis.jdl import jdl_rows, jdl_units
from pipeline.cohort.build import link_persons
from pipeline.config import load_config
from pipeline.disclosure import DisclosurePolicy, assert_no_small_counts
from pipeline.report.jdl_text import jdl_text
from pipeline.settings import PROJECT_ROOT
from tests.cohort.builders import stage_rows
from tests.cohort.test_cohort_hand_made import offence, person

EID = "jdl-hand-made"
EXTRACTION = dt.date(2024, 12, 31)
INDEX = dt.date(2022, 3, 1)
DAY = {n: (INDEX + dt.timedelta(days=n)).isoformat() for n in (365, 366, 547, 548)}
T1, T2, T3, T4, T5, C1, C2, C3, C4, C5, C6, C7 = (f"PK{i:016X}" for i in range(1, 13))
Z = 1.959963984540054

# comparison units: (person, weight, cluster, proven S/H reoffences); C1 is in two trials
COMPARISON = [(C1, 0.5, 1, 1), (C2, 0.5, 1, 0), (C3, 1.0, 2, 2), (C4, 1 / 3, 3, 0),
              (C5, 1 / 3, 3, 0), (C6, 1 / 3, 3, 1), (C1, 0.5, 4, 1), (C7, 0.5, 4, 0)]
# treated units: (person, index date, cluster); T3 is not yet measurable
TREATED = [(T1, INDEX, 1), (T2, INDEX, 2), (T3, dt.date(2024, 1, 1), 5), (T4, INDEX, 3),
           (T5, INDEX, 4)]
TREATED_SH = {T1: 1, T2: 3, T4: 0, T5: 1}  # proven S/H reoffences of the measurable treated


@pytest.fixture(scope="module")
def con():
    n = iter(range(1, 100))
    proven = [  # (person, offence date, outcome date) of convictions that count
        (C1, "2022-05-01", "2022-06-01"), (C3, "2022-04-01", "2022-04-20"),
        (C3, "2022-07-01", "2022-09-01"), (C6, "2022-12-01", "2023-02-01")]
    rows = [offence(next(n), p, d, "S2", "convicted", o) for p, d, o in proven] + [
        # T1: proven 200 days after the offence (beyond grace_days) but within year + 6 months
        offence(next(n), T1, "2022-06-01", "S2", "convicted", "2022-12-18"),
        offence(next(n), T1, "2022-10-01", "S4", "convicted", DAY[548]),  # after the wait
        offence(next(n), T1, DAY[366], "S2", "convicted", "2023-04-01"),  # day 366
        # T2: three proven reoffences (a caution, day 365, proof on day 547), one unproven,
        # one on the index date itself
        offence(next(n), T2, "2022-04-01", "S2", "cautioned", "2022-05-01"),
        offence(next(n), T2, "2022-08-01", "S2A", "cautioned", "2022-08-15"),
        offence(next(n), T2, DAY[365], "S2", "convicted", DAY[547]),
        offence(next(n), T2, "2022-05-01", "S2", "nfa"),
        offence(next(n), T2, INDEX.isoformat(), "S2", "convicted", "2022-04-01"),
        # T3: index 2024-01-01, a proven reoffence that must not be counted
        offence(next(n), T3, "2024-02-01", "S2", "convicted", "2024-03-01"),
        # T4: a violent offence with two months' custody inside the year (any offence only)
        offence(next(n), T4, "2022-06-01", "VAP", "convicted", "2022-07-01",
                disposal="custody", release="2022-09-01"),
        # T5: in custody on the index date, released 2022-04-01: the year starts then, so an
        # offence on 2023-03-31 (day 395 after index, day 364 after release) counts
        offence(next(n), T5, "2021-12-01", "VAP", "convicted", "2022-01-15",
                disposal="custody", release="2022-04-01"),
        offence(next(n), T5, "2023-03-31", "S2", "convicted", "2023-05-01")]
    con = duckdb.connect()
    keys = [T1, T2, T3, T4, T5, C1, C2, C3, C4, C5, C6, C7]
    stage_rows(con, EID, EXTRACTION, police_persons=[person(k) for k in keys],
               police_offences=rows)
    link_persons(con, EID)
    return con


@pytest.fixture(scope="module")
def cfg():
    return load_config(PROJECT_ROOT / "config" / "evaluation.yaml")


def sample(comparison=COMPARISON, treated=TREATED) -> pd.DataFrame:
    rows = [(p, d, "treated", 1.0, c) for p, d, c in treated]
    rows += [(p, INDEX, "comparison", w, c) for p, w, c, _ in comparison]
    return pd.DataFrame(rows, columns=["person_key", "index_date", "arm", "weight", "cluster"])


def row(rows: pd.DataFrame, measure: str, arm: str, family="stalking_harassment") -> dict:
    hit = rows[(rows["family"] == family) & (rows["measure"] == measure) & (rows["arm"] == arm)]
    assert len(hit) == 1
    return hit.iloc[0].to_dict()


def sandwich(y: np.ndarray, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Cluster-robust covariance of weighted least squares, written out as matrices."""
    bread = np.linalg.inv(x.T @ (w[:, None] * x))
    beta = bread @ x.T @ (w * y)
    score = x * (w * (y - x @ beta))[:, None]
    meat = sum(np.outer(s, s) for s in (score[g == c].sum(0) for c in np.unique(g)))
    n_g, n, k = len(np.unique(g)), len(y), x.shape[1]
    return bread @ meat @ bread * n_g / (n_g - 1) * (n - 1) / (n - k), beta


def test_which_offences_count(con, cfg):
    units = jdl_units(con, EID, cfg, EXTRACTION, sample())
    sh = units[units["family"] == "stalking_harassment"].set_index("person_key")
    treated = sh[sh["arm"] == "treated"]
    got = treated.loc[treated["measurable"], "n_offences"].to_dict()
    assert got == TREATED_SH  # T1: day-200 proof counts, late proof and day 366 do not
    assert not treated.loc[T3, "measurable"]
    assert treated.loc[T5, "start_date"] == pd.Timestamp("2022-04-01")
    assert treated.loc[T4, "custody_days"] == 62
    anyo = units[(units["family"] == "any") & (units["person_key"] == T4)]
    assert anyo["n_offences"].tolist() == [1]


def test_counts_and_not_yet_measurable(con, cfg):
    rows = jdl_rows(con, EID, cfg, EXTRACTION, sample())
    t = row(rows, "rate", "treated")
    assert (t["n_units"], t["n_measurable"], t["n_not_yet_measurable"]) == (5, 4, 1)
    assert (t["n_reoffenders"], t["n_offences"]) == (3, 5)
    assert (t["n_with_custody_days"], t["n_started_at_release"]) == (1, 1)
    assert t["estimate"] == pytest.approx(3 / 4)
    assert row(rows, "frequency", "treated")["estimate"] == pytest.approx(5 / 4)
    c = row(rows, "rate", "comparison")
    assert (c["n_units"], c["n_reoffenders"], c["n_offences"]) == (7, 3, 4)
    d = row(rows, "rate", "difference")
    assert (d["n_units"], d["n_measurable"], d["n_reoffenders"]) == (12, 11, 6)
    a = row(rows, "rate", "treated", family="any")
    assert a["n_reoffenders"] == 4 and a["n_offences"] == 6  # T4's violent offence
    # every measurable treated person reoffended (any offence): 100% has no interval
    assert row(rows, "rate", "treated", family="any")["reason"] == "no_spread"
    assert np.isnan(row(rows, "rate", "treated", family="any")["estimate"])
    assert (rows["reason"] != "").sum() == 1


@pytest.mark.parametrize("measure", ["rate", "frequency"])
def test_weights_and_clusters_give_the_comparison_mean_and_ci(con, cfg, measure):
    n = np.array([k for *_, k in COMPARISON], float)
    y = (n > 0).astype(float) if measure == "rate" else n
    w = np.array([c[1] for c in COMPARISON])
    g = np.array([c[2] for c in COMPARISON])
    cov, beta = sandwich(y, np.ones((len(y), 1)), w, g)
    se = np.sqrt(cov[0, 0])
    got = row(jdl_rows(con, EID, cfg, EXTRACTION, sample()), measure, "comparison")
    assert got["estimate"] == pytest.approx(beta[0]) and beta[0] != pytest.approx(y.mean())
    assert got["lower"] == pytest.approx(max(0, beta[0] - Z * se))
    assert got["upper"] == pytest.approx(beta[0] + Z * se)
    # unit weights, one cluster per unit: the plain mean and a different interval
    plain = [(p, 1.0, i, k) for i, (p, _, _, k) in enumerate(COMPARISON)]
    flat = row(jdl_rows(con, EID, cfg, EXTRACTION, sample(plain)), measure, "comparison")
    assert flat["estimate"] == pytest.approx(y.mean())
    assert flat["upper"] - flat["lower"] != pytest.approx(got["upper"] - got["lower"])


@pytest.mark.parametrize("measure", ["rate", "frequency"])
def test_difference_matches_statsmodels_cluster_wls(con, cfg, measure):
    measurable = [(1.0, c, TREATED_SH[p]) for p, _, c in TREATED if p in TREATED_SH]
    comp = [(w, c, k) for _, w, c, k in COMPARISON]
    arm = np.r_[np.ones(len(measurable)), np.zeros(len(comp))]
    w, g, n = (np.array(v, float) for v in zip(*(measurable + comp), strict=True))
    y = (n > 0).astype(float) if measure == "rate" else n
    fit = sm.WLS(y, np.column_stack([np.ones_like(arm), arm]), weights=w).fit(
        cov_type="cluster", cov_kwds={"groups": g.astype(int)})
    lo, hi = fit.conf_int()[1]
    got = row(jdl_rows(con, EID, cfg, EXTRACTION, sample()), measure, "difference")
    assert got["estimate"] == pytest.approx(fit.params[1])
    assert (got["lower"], got["upper"]) == (pytest.approx(lo), pytest.approx(hi))
    assert got["p"] == pytest.approx(fit.pvalues[1])
    cov, _ = sandwich(y, np.column_stack([np.ones_like(arm), arm]), w, g)
    assert hi - lo == pytest.approx(2 * Z * np.sqrt(cov[1, 1]))


def test_nobody_measurable_gives_reasons_not_numbers(con, cfg):
    rows = jdl_rows(con, EID, cfg, dt.date(2023, 6, 1), sample())
    assert set(rows["reason"]) == {"no_followup_to_window"}
    assert rows[["estimate", "lower", "upper", "p"]].isna().all().all()
    t = row(rows, "rate", "treated")
    assert t["n_measurable"] == 0 and t["n_not_yet_measurable"] == t["n_units"] == 5


def test_empty_arm_and_no_reoffenders_give_reasons(con, cfg):
    rows = jdl_rows(con, EID, cfg, EXTRACTION, sample(comparison=[]))
    assert row(rows, "rate", "comparison")["reason"] == "arm_empty"
    assert row(rows, "frequency", "difference")["reason"] == "arm_empty"
    assert row(rows, "rate", "comparison")["n_units"] == 0
    assert row(rows, "rate", "treated")["reason"] == ""
    quiet = [c for c in COMPARISON if c[3] == 0]
    rows = jdl_rows(con, EID, cfg, EXTRACTION, sample(comparison=quiet))
    for arm in ("comparison", "difference"):
        r = row(rows, "rate", arm)
        assert r["reason"] == "no_events_in_arm" and np.isnan(r["estimate"])
    assert row(rows, "rate", "difference", family="any")["reason"] == "no_events_in_arm"
    nobody = jdl_rows(con, EID, cfg, EXTRACTION, sample(comparison=[], treated=[]))
    assert set(nobody["reason"]) == {"arm_empty"} and nobody["n_units"].eq(0).all()
    with pytest.raises(ValueError, match="arm must be"):
        jdl_rows(con, EID, cfg, EXTRACTION, sample().assign(arm="control"))


def test_text_protects_small_counts_and_is_descriptive(con, cfg):
    rows = jdl_rows(con, EID, cfg, EXTRACTION, sample())
    strict = DisclosurePolicy()  # threshold 10: every count here is small
    out = jdl_text(rows, cfg, EXTRACTION, strict)
    assert out["published"]["stalking_harassment"]["counts"]["treated"]["n_units"] == "<10"
    assert out["published"]["stalking_harassment"]["rate"]["treated"]["estimate"] == "withheld"
    text = " ".join([*out["sentences"].values(), *out["footnotes"]])
    assert_no_small_counts(out["published"], strict)
    assert_no_small_counts(text, strict)
    assert "75.0%" not in text and "Of the <10 people who started treatment" in text
    assert "same outcome" not in text  # "all of <10 reoffended" would disclose their outcome
    assert "spent some of their year in custody" in text
    # with no suppression the numbers appear, the comparison marked as weighted
    open_ = DisclosurePolicy(threshold=1)
    sh = jdl_text(rows, cfg, EXTRACTION, open_)["sentences"]["stalking_harassment"]
    t, c, d = (row(rows, "rate", a) for a in ("treated", "comparison", "difference"))
    assert sh.startswith("Of the 4 people who started treatment and could be followed")
    assert f"{100 * t['estimate']:.1f}%" in sh and f"{100 * c['estimate']:.1f}% (weighted)" in sh
    assert f"{abs(100 * d['lower']):.1f} points" in sh
    assert not any(w in sh.lower() for w in ("reduc", "caus", "effect", "led to"))
    anyo = jdl_text(rows, cfg, EXTRACTION, open_)["sentences"]["any"]
    assert "could not be estimated, because every person in the group had the same" in anyo
