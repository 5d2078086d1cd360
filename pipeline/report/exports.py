"""Disclosure-controlled summary tables for sharing outside the warehouse (CSV and Parquet).

Only summaries leave: estimates (withheld where built on too few events), the participant flow
(protected like the report's) and the window proportions with published counts. Row-level data
stays in the warehouse, for researchers inside the secure environment.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.config import EvaluationConfig
from pipeline.disclosure import is_suppressed, publish_count, withhold_small_estimates
from pipeline.report.linked_counts import (
    COUNT_COLUMNS,
    linked_counts,
    published_set,
    window_key,
)
from pipeline.report.numbers import policy_from
from pipeline.warehouse_io import copy_frame, read_extract, read_optional

# a count quoted in a note: a whole number followed by what it counts ("12 units trimmed");
# other numbers in notes (sessions per step, percentages, thresholds) are not counts
QUOTED_COUNT = re.compile(r"(?<![\d.,])\d+(?= (?:units?|people|persons?|events?|controls?|"
                          r"treated|comparison people)\b)")


def published_estimates(frames: list[pd.DataFrame | None], cfg: EvaluationConfig,
                        counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Estimates with every count published and estimates from too few events withheld;
    ``counts``: the published counts of the same rows from the extract's linked set (default:
    subgroup levels and dose bands protected with their totals only)."""
    policy = policy_from(cfg)
    est = pd.concat([f for f in frames if f is not None], ignore_index=True)
    # an estimate is withheld when either arm that exists has too few events, or when the
    # analysis itself flagged it as withheld (e.g. a subgroup below the minimum size)
    fewest = est[["events_treated", "events_comparison"]].where(
        est[["n_treated", "n_comparison"]].to_numpy() > 0).min(axis=1).fillna(0)
    flagged = est["note"].fillna("").str.startswith("withheld").to_numpy()
    fewest = fewest.where(~flagged, 0)
    out = withhold_small_estimates(est.assign(_fewest=fewest), "_fewest", policy,
                                   estimate_cols=["estimate", "lower", "upper", "p"])
    if "reason" in out.columns:  # a plain-language reason beside each code
        from pipeline.analysis.estimability import explain

        out["reason_text"] = [explain(r) if r else "" for r in out["reason"].fillna("")]
    published = counts if counts is not None else linked_counts(est, policy)
    for col in COUNT_COLUMNS:
        out[col] = published[col].to_numpy()
    # notes may quote counts (e.g. units trimmed): small ones become the suppressed label
    out["note"] = out["note"].fillna("").map(lambda text: QUOTED_COUNT.sub(
        lambda m: policy.suppressed_label if is_suppressed(int(m[0]), policy) else m[0], text))
    return out.drop(columns="_fewest")


def export_summaries(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                     folder: Path) -> dict[str, int]:
    """Write the summary tables as CSV and Parquet into ``folder``; returns rows per table."""
    policy = policy_from(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    # the same linked published set as the report: one protection for every table
    pub = published_set(con, extract_id, policy)
    tables = {
        "estimates": published_estimates(
            [read_optional(con, "analysis.survival_estimates", extract_id),
             read_optional(con, "analysis.comparison_estimates", extract_id)], cfg,
            counts=pub.estimates),
        "flow": pd.concat([f.assign(cohort=c, arm=a) for (c, a), f in sorted(pub.flow.items())],
                          ignore_index=True),
    }
    props = read_extract(con, "analysis.window_proportions", extract_id)
    tables["window_proportions"] = pd.DataFrame({
        "months": props["months"], "arm": props["arm"],
        **{c: [pub.result.published.get(window_key(m, a, c), publish_count(int(v), policy))
               for m, a, v in zip(props["months"], props["arm"], props[c], strict=True)]
           for c in ("n", "events", "offences")}})
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, float_format="%.6g")
        copy_frame(frame, folder / f"{name}.parquet", "FORMAT parquet")
    return {name: len(frame) for name, frame in tables.items()}
