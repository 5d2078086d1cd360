"""Who the matched analysis leaves out, in words: how unmatched treated people differ from the
matched ones (directions only, no numbers, so nothing about a small group is disclosed)."""

from __future__ import annotations

import duckdb
import numpy as np

from pipeline.config import EvaluationConfig
from pipeline.report import wording as W
from pipeline.report.sentences import join_words
from pipeline.warehouse_io import read_optional

# direction words for the unmatched-profile sentence: (higher, lower); other covariates are
# counts or shares, described as "more/fewer <label>"
DIRECTION = {"age": ("were older", "were younger"),
             "days_since_qualifying": ("had a longer time since the qualifying offence",
                                       "had a shorter time since the qualifying offence")}


def unmatched_in_words(con: duckdb.DuckDBPyConnection, extract_id: str,
                       cfg: EvaluationConfig) -> dict | None:
    """How unmatched treated people differ from the matched, in words (no numbers): the
    numeric covariates with |SMD| of 0.2 or more (largest first, at most three) and the
    direction of their mean propensity score."""
    profile = read_optional(con, "analysis.unmatched_profile", extract_id)
    if profile is None:
        return None
    p = profile[(profile["cohort"] == "started") & (profile["analysis"] == "matched")
                & profile["covariate"].isin(cfg.covariates)]
    p = p[p["smd"].abs() >= 0.2].assign(a=lambda f: f["smd"].abs()).sort_values(
        ["a", "covariate"], ascending=[False, True]).head(3)
    phrases = [DIRECTION[r.covariate][0 if r.smd > 0 else 1] for r in p.itertuples()
               if r.covariate in DIRECTION]
    for word, sign in (("more", 1), ("fewer", -1)):
        labels = [W.covariate_label(r.covariate) for r in p.itertuples()
                  if r.covariate not in DIRECTION and np.sign(r.smd) == sign]
        if labels:
            phrases.append(f"had {word} " + join_words(labels))
    out: dict = {"phrases": phrases}
    scores = read_optional(con, "analysis.propensity", extract_id)
    matches = read_optional(con, "analysis.matches", extract_id)
    if scores is not None and matches is not None:
        treated = scores[(scores["cohort"] == "started") & (scores["arm"] == "treated")]
        used = matches.loc[(matches["cohort"] == "started") & (matches["analysis"] == "matched"),
                           "treated_unit_id"]
        is_matched = treated["unit_id"].isin(used)
        if is_matched.any() and (~is_matched).any():
            diff = treated.loc[~is_matched, "logit"].mean() - treated.loc[is_matched,
                                                                          "logit"].mean()
            out["score_direction"] = "higher" if diff > 0 else "lower"
    return out
