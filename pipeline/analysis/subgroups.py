"""Subgroups, completers and dose in the matched sample, with interaction tests.

Matched sets are kept whole: a set belongs to the subgroup of its *treated* member (clinic
assessment such as typology and risk level exists only for treated people; victim
relationship and site are the treated person's), so each subgroup is still a matched
comparison. Each subgroup gets the same effect rows as the main analysis (hazard ratio and
12/24-month risks); estimates with fewer events in an arm than the disclosure threshold, or
fewer treated people than the minimum cohort size, are computed but flagged ``withheld`` in
``note`` (the report does not show them). Heterogeneity is tested by a Wald test of the
treatment-by-subgroup interaction terms in one Cox model on the matched sample with
cluster-robust variance (``interaction_p``: estimate = chi-square, p).

Completion and dose are known only after treatment has run, so their contrasts start at a
landmark (``landmark_days`` after index, as ``treated_only``): matched sets whose treated
member was followed and offence-free at the landmark, with the controls still followed and
offence-free then; time is calendar days from the landmark.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.analysis.comparison_effects import counts, effect_rows
from pipeline.analysis.estimability import enforce
from pipeline.analysis.survival_results import ESTIMATE_COLUMNS, _row, not_estimable
from pipeline.config import EvaluationConfig
from pipeline.survival import fit_cox

UNKNOWN = "unknown"


def threshold(cfg: EvaluationConfig) -> int:
    return int(cfg.disclosure.get("threshold", 10))


def withheld_note(c: dict, cfg: EvaluationConfig) -> str:
    """'withheld: …' when an arm has too few events or the subgroup too few treated people."""
    reasons = []
    if min(c["events_treated"], c["events_comparison"]) < threshold(cfg):
        reasons.append(f"fewer than {threshold(cfg)} events in an arm")
    if c["n_treated"] < cfg.min_treated:
        reasons.append(f"fewer than {cfg.min_treated} treated people")
    return "withheld: " + " and ".join(reasons) if reasons else ""


def set_values(matched: pd.DataFrame, column: str) -> pd.Series:
    """For every row, the value of ``column`` of its matched set's treated member (as text;
    missing values become 'unknown')."""
    treated = matched[matched["treated"] == 1].drop_duplicates("matched_set")
    values = treated.set_index("matched_set")[column]
    values = values.astype(object).where(values.notna(), UNKNOWN).astype(str)
    return matched["matched_set"].map(values).fillna(UNKNOWN)


def interaction_row(frame: pd.DataFrame, groups: pd.Series, analysis: str,
                    weights_col: str | None, cluster_col: str | None) -> dict:
    """Wald test (cluster-robust) of treatment x subgroup terms in one Cox model."""
    c = counts(frame, weights_col)
    levels = sorted(groups.unique())
    if len(levels) < 2:
        return not_estimable(analysis, "interaction_p", c, "single_level", unit="chi2")
    dummies = pd.get_dummies(groups, dtype=float).reindex(columns=levels[1:])
    dummies.columns = [f"g{i}" for i in range(1, len(levels))]
    inter = dummies.mul(frame["treated"].to_numpy(), axis=0).add_prefix("tx_")
    data = pd.concat([frame[["time_days", "event", "treated"]], dummies, inter], axis=1)
    for col in (weights_col, cluster_col):
        if col:
            data[col] = frame[col]
    keep = [c for c in [*dummies.columns, *inter.columns] if data[c].std() > 0]
    terms = [c for c in keep if c.startswith("tx_")]
    if not terms:
        return not_estimable(analysis, "interaction_p", c, "no_interaction_contrast",
                             unit="chi2")
    try:
        res = fit_cox(data, "time_days", "event", ["treated", *keep], weights_col=weights_col,
                      cluster_col=cluster_col, robust=True, compute_concordance=False)
        b = res.coef[terms].to_numpy()
        chi2 = float(b @ np.linalg.solve(res.var.loc[terms, terms].to_numpy(), b))
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return not_estimable(analysis, "interaction_p", c, "model_not_fitted", unit="chi2")
    df = len(terms)
    return _row(analysis, "interaction_p", c, chi2, p=float(stats.chi2.sf(chi2, df)),
                unit="chi2", note=f"Wald test of {df} treatment x subgroup terms, "
                                  "cluster-robust; levels " + ", ".join(levels))


def subgroup_rows(matched: pd.DataFrame, cfg: EvaluationConfig, variable: str,
                  groups: pd.Series | None = None, prefix: str = "subgroup",
                  measures: frozenset[str] = frozenset({"hr", "risk"})) -> pd.DataFrame:
    """Effect rows per level of ``variable`` (set-level: the treated member's value) and the
    interaction test (analysis ``{prefix}:{variable}``)."""
    groups = set_values(matched, variable) if groups is None else groups
    weights_col = "weight" if (matched["weight"] != 1).any() else None
    parts = []
    for level in sorted(groups.unique()):
        sub = matched[groups == level]
        rows = effect_rows(sub, cfg, f"{prefix}:{variable}={level}", weights_col=weights_col,
                           cluster_col="cluster", measures=measures)
        note = withheld_note(counts(sub, weights_col), cfg)
        if note:
            rows["note"] = [f"{note}; {n}" if n else note for n in rows["note"]]
        parts.append(rows)
    parts.append(enforce(pd.DataFrame([interaction_row(matched, groups, f"{prefix}:{variable}",
                                                       weights_col, "cluster")],
                                      columns=ESTIMATE_COLUMNS)))
    return pd.concat(parts, ignore_index=True)


def landmark_matched(matched: pd.DataFrame, exposure: pd.DataFrame, landmark_days: int
                     ) -> pd.DataFrame:
    """Matched sets from the landmark: treated members in ``exposure`` (person_key,
    sessions_by_landmark, completed_by_landmark: treated people offence-free and followed at
    the landmark) with their controls still followed then; time in calendar days from the
    landmark; the treated member's exposure copied to the whole set."""
    treated = matched[(matched["treated"] == 1)
                      & matched["person_key"].isin(exposure["person_key"])]
    sets = treated.set_index("matched_set")["person_key"]
    frame = matched[matched["matched_set"].isin(sets.index)
                    & (matched["calendar_days"] > landmark_days)].copy()
    frame = frame[frame.groupby("matched_set")["treated"].transform("nunique") == 2]
    expo = exposure.set_index("person_key")
    member = frame["matched_set"].map(sets)
    for col in ("sessions_by_landmark", "completed_by_landmark"):
        frame[col] = member.map(expo[col]).to_numpy()
    frame["time_days"] = frame["calendar_days"] - landmark_days
    return frame


def dose_band(sessions: pd.Series, bands: tuple[int, ...]) -> pd.Series:
    """Label sessions attended by band: bands (1, 10, 16) give '1-9', '10-15', '16+'."""
    edges = [*bands, np.inf]
    labels = [f"{lo}-{hi - 1}" if np.isfinite(hi) else f"{lo}+"
              for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    out = pd.cut(sessions.astype(float), edges, right=False, labels=labels)
    return out.astype(object).where(out.notna(), f"below {bands[0]}").astype(str)


def landmark_rows(matched: pd.DataFrame, exposure: pd.DataFrame, cfg: EvaluationConfig
                  ) -> pd.DataFrame:
    """All matched sets still event-free at the landmark (``matched_landmark``).

    Adherence is not compared with the comparison group here: completers (or people who
    attended more) differ from other starters in ways their matched controls do not, so such
    a contrast would read as an effect of adherence without being one. Completion and dose
    are reported only as associations within the treated (``treated_only``), adjusted for the
    characteristics that predict adherence, from the same landmark."""
    frame = landmark_matched(matched, exposure, cfg.landmark_days)
    if frame.empty:
        return pd.DataFrame(columns=ESTIMATE_COLUMNS)
    weights_col = "weight" if (frame["weight"] != 1).any() else None
    note = f"from the landmark ({cfg.landmark_days} days after index)"
    return effect_rows(frame, cfg, "matched_landmark", weights_col=weights_col,
                       cluster_col="cluster", measures=frozenset({"hr"}), note=note)
