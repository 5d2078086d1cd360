"""Counts of the estimates tables published as linked tables, not one cell at a time.

Subgroup levels add up to the subgroup's total (published on the interaction-test row), and
dose bands add up to the landmark sample: suppressing a small level on its own lets anyone
recover it by subtraction (low 12 + moderate 10 + high "<10" = 31 gives high = 9). Here the
rows of one family (``subgroup:<variable>=<level>`` with ``subgroup:<variable>``, and
``dose:sessions=<band>`` with ``dose:sessions``), for one measure and arm, form a table of levels
× count columns with its total, protected by ``pipeline.disclosure.protect_table``
(complementary suppression across rows and columns). Every other row is published one count at
a time. The report and the exports both take their counts from here.

``published_set`` (below) goes further (issue 12): the flow of every cohort, the arm totals,
the estimates' counts, the completers, the matching summary, the window proportions and the
data-quality counts are one linked set, protected together by
``pipeline.disclosure.linked.protect_linked`` so that no suppressed cell is recoverable by
differencing numbers printed in different tables. Build it once per extract and print every
count from it, in the report and in the exports alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.disclosure import DisclosurePolicy, protect_table, publish_count
from pipeline.disclosure.linked import LinkedResult, LinkedSet, protect_linked
from pipeline.report.flow import protect_flow

COUNT_COLUMNS = ("n_treated", "n_comparison", "events_treated", "events_comparison")
FAMILY_PREFIXES = ("subgroup:", "dose:")


def _family(analysis: str) -> tuple[str, str] | None:
    """('subgroup:site', 'SITE_A') for a level row, ('subgroup:site', '') for the total row."""
    if not analysis.startswith(FAMILY_PREFIXES):
        return None
    family, _, level = analysis.partition("=")
    return family, level


def linked_counts(est: pd.DataFrame, policy: DisclosurePolicy) -> pd.DataFrame:
    """Published text of every count column of every row (index and columns as ``est``'s
    COUNT_COLUMNS), with family rows protected together with their total."""
    out = pd.DataFrame({c: [publish_count(int(v), policy) for v in est[c].fillna(0)]
                        for c in COUNT_COLUMNS}, index=est.index, dtype=object)
    keys = est["analysis"].astype(str).map(_family)
    fam = est.assign(_family=[k[0] if k else None for k in keys],
                     _level=[k[1] if k else None for k in keys])
    fam = fam[fam["_family"].notna()]
    for (family, measure, _arm), rows in fam.groupby(["_family", "measure", "arm"],
                                                     dropna=False, sort=True):
        levels = rows[rows["_level"] != ""]
        if levels.empty or measure == "interaction_p":
            continue
        table = levels.set_index("_level")[list(COUNT_COLUMNS)].fillna(0).astype(int)
        table = table[~table.index.duplicated()]
        published = protect_table(table, policy, margins=True).published
        for idx, level in zip(levels.index, levels["_level"], strict=True):
            out.loc[idx, list(COUNT_COLUMNS)] = published.loc[level, list(COUNT_COLUMNS)].values
        if measure == "hr":  # the family's total row (interaction test) carries the margin
            # (a single level has no separate total row: the level is the total)
            label = "Total" if "Total" in published.index else levels["_level"].iloc[0]
            total = fam[(fam["_family"] == family) & (fam["_level"] == "")].index
            for idx in total:
                out.loc[idx, list(COUNT_COLUMNS)] = published.loc[
                    label, list(COUNT_COLUMNS)].values
    return out


# ---------------------------------------------------------------------------------------------
# Every table of an extract as one linked set (issue 12): flow, arm totals, estimates' counts
# (subgroup levels, dose bands, events) and the data-quality counts, protected together by
# ``pipeline.disclosure.linked.protect_linked`` so that no suppressed cell can be recovered by
# differencing numbers printed in different tables.

DQ_COLUMNS = ("loaded", "quarantined", "rejected")
RULES_SHOWN = 8


@dataclass(frozen=True)
class PublishedSet:
    """The published text of every count of an extract, protected as one linked set.

    ``flow``: (cohort, arm) -> frame step, label, n (steps merged as ``protect_flow`` merges
    them); ``estimates``: COUNT_COLUMNS text per row of the estimates (index as given);
    ``data_quality``: files x loaded/quarantined/rejected/Total with a Total row, as
    ``protect_table`` publishes it; ``rules``: rule -> rows quarantined (the RULES_SHOWN largest
    are printed); ``text(key)``: any cell, e.g. ``arm_key(cohort, arm)`` or an extra.
    """

    flow: dict[tuple[str, str], pd.DataFrame]
    estimates: pd.DataFrame | None
    data_quality: pd.DataFrame | None
    rules: dict[str, str]
    linked: LinkedSet
    result: LinkedResult

    def text(self, key: str) -> str:
        return self.result.published[key]


def arm_key(cohort: str, arm: str) -> str:
    return f"arm:{cohort}:{arm}"


def _flow_cells(ls: LinkedSet, flow: pd.DataFrame, policy: DisclosurePolicy
                ) -> dict[tuple[str, str], pd.DataFrame]:
    """Published flow steps as cells; consecutive published steps nest (drops are implicit).
    A count printed twice is one cell: the last step is the arm total (``arm_key``), and the
    same step of the same arm in two cohorts with the same count (referred, accepted)."""
    frames = {}
    for (cohort, arm), steps in flow.groupby(["cohort", "arm"], sort=True):
        steps = steps.sort_values("step_no")
        shown = protect_flow(steps, policy)
        n_of = dict(zip(steps["step"], steps["n"].astype(int), strict=True))
        last = shown["step"].iloc[-1]
        keys = [ls.cell(arm_key(cohort, arm) if step == last else
                        f"flow:{arm}:{step}={n_of[step]}", n_of[step]) for step in shown["step"]]
        for outer, inner in zip(keys, keys[1:], strict=False):
            ls.nest(outer, inner)
        frames[(cohort, arm)] = shown.assign(_key=keys)
    return frames


def _estimate_cells(ls: LinkedSet, est: pd.DataFrame, arm_totals: list[str]
                    ) -> dict[tuple[int, str], str]:
    """Cell key per (row, count column); family levels sum to their totals; events nest in
    their arm; whole-analysis counts and family totals nest in every cohort's arm total."""
    counts = est[list(COUNT_COLUMNS)].fillna(0).astype(int).to_dict("index")
    analyses = est["analysis"].astype(str).to_dict()
    measures = est["measure"].to_dict()
    arms = est["arm"].to_dict()
    where: dict[tuple[int, str], str] = {}
    for idx, analysis in analyses.items():
        for c in COUNT_COLUMNS:
            where[(idx, c)] = ls.cell(f"est:{analysis}:{c}={counts[idx][c]}", counts[idx][c])
    family_of = {idx: _family(a) for idx, a in analyses.items()}
    groups: dict[tuple, dict[str, int]] = {}  # (family, measure, arm) -> level -> first row
    total_rows: dict[str, list[int]] = {}
    for idx, key in family_of.items():
        if key is None:
            continue
        family, level = key
        if level == "":
            total_rows.setdefault(family, []).append(idx)
        elif measures[idx] != "interaction_p":
            arm = arms[idx] if isinstance(arms[idx], str) else ""
            groups.setdefault((family, measures[idx], arm), {}).setdefault(level, idx)
    totals: dict[tuple[str, str], list[str]] = {}  # (family, column) -> total cells
    for (family, measure, _arm), levels in sorted(groups.items()):
        for c in COUNT_COLUMNS:
            parts = [where[(i, c)] for i in levels.values()]
            value = sum(ls.values[p] for p in parts)
            total = ls.cell(f"est:{family}:{c}={value}", value)
            ls.add_sum(total, parts)
            totals.setdefault((family, c), []).append(total)
            if measure == "hr":  # the family's total row (interaction test) prints the total
                for i in total_rows.get(family, ()):
                    where[(i, c)] = total
    whole = [where[(i, c)] for i, key in family_of.items() if key is None
             for c in ("n_treated", "n_comparison")]
    family_n = [t for (_, c), ts in totals.items() if c.startswith("n_") for t in ts]
    for inner in dict.fromkeys(whole + family_n):
        arm = "treated" if ":n_treated=" in inner else "comparison"
        for outer in arm_totals:
            if outer.endswith(f":{arm}"):
                ls.nest(outer, inner)
    for idx in analyses:
        for n_col, e_col in (("n_treated", "events_treated"),
                             ("n_comparison", "events_comparison")):
            ls.nest(where[(idx, n_col)], where[(idx, e_col)])
    for (family, c), events in totals.items():  # a family's event totals within its arm totals
        if c.startswith("events_"):
            for n_total, e_total in zip(totals[(family, c.replace("events_", "n_"))], events,
                                        strict=True):
                ls.nest(n_total, e_total)
    return where


def _quality_cells(ls: LinkedSet, dq: dict) -> tuple[pd.DataFrame, dict[str, str]]:
    """Files x loaded/quarantined/rejected with totals, and rows by rule (the largest printed)
    summing to the quarantined total when every quarantined row breaks one rule."""
    table = pd.DataFrame({t: {c: int(v[c]) for c in DQ_COLUMNS}
                          for t, v in dq["tables"].items()}).T.astype(int)
    grid: dict[tuple[str, str], str] = {}
    for t, row in table.iterrows():
        for c in DQ_COLUMNS:
            grid[(t, c)] = ls.cell(f"dq:{t}:{c}", row[c])
        grid[(t, "Total")] = ls.cell(f"dq:{t}:Total", int(row.sum()))
        ls.add_sum(grid[(t, "Total")], [grid[(t, c)] for c in DQ_COLUMNS])
    for c in (*DQ_COLUMNS, "Total"):
        grid[("Total", c)] = ls.cell(f"dq:Total:{c}", sum(ls.values[grid[(t, c)]]
                                                          for t in table.index))
        ls.add_sum(grid[("Total", c)], [grid[(t, c)] for t in table.index])
    ls.add_sum(grid[("Total", "Total")], [grid[("Total", c)] for c in DQ_COLUMNS])
    rules = sorted(dq.get("quarantined_by_rule", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    rule_keys = {r: ls.cell(f"dq:rule:{r}", n, printed=i < RULES_SHOWN)
                 for i, (r, n) in enumerate(rules)}
    if rule_keys:
        ls.add_sum(grid[("Total", "quarantined")], list(rule_keys.values()))
    frame = pd.DataFrame([[grid[(t, c)] for c in (*DQ_COLUMNS, "Total")]
                          for t in [*table.index, "Total"]],
                         index=[*table.index, "Total"], columns=[*DQ_COLUMNS, "Total"])
    return frame, rule_keys


def protect_published_set(policy: DisclosurePolicy, flow: pd.DataFrame | None = None,
                          estimates: pd.DataFrame | None = None, data_quality: dict | None = None,
                          extras: dict[str, int] | None = None,
                          nests: list[tuple[str, str]] | None = None,
                          sums: list[tuple[str, list[str]]] | None = None) -> PublishedSet:
    """Protect every count an extract publishes as one linked set (see the section comment).

    ``flow``: ``analysis.cohort_flow`` rows (cohort, arm, step_no, step, label, n), every
    cohort; ``estimates``: the survival and comparison estimates (analysis, measure, arm and
    COUNT_COLUMNS); ``data_quality``: ``data_quality_summary``'s dict. ``extras`` adds printed
    counts (key -> count), ``nests`` (outer, inner) subset relations and ``sums`` (total,
    parts) additive ones among any keys, e.g. ``("completed", ...)`` nested in
    ``arm_key("started", "treated")``.
    """
    ls = LinkedSet()
    flows = _flow_cells(ls, flow, policy) if flow is not None and len(flow) else {}
    arm_totals = [k for k in ls.values if k.startswith("arm:")]
    where = (_estimate_cells(ls, estimates, arm_totals)
             if estimates is not None and len(estimates) else None)
    dq_frame, rule_keys = (_quality_cells(ls, data_quality) if data_quality is not None
                           else (None, {}))
    for key, value in (extras or {}).items():
        ls.cell(key, value)
    for outer, inner in nests or ():  # relations naming a count that is absent are skipped
        if outer in ls.values and inner in ls.values:
            ls.nest(outer, inner)
    for total, parts in sums or ():
        if all(k in ls.values for k in (total, *parts)):
            ls.add_sum(total, parts)
    result = protect_linked(ls, policy)
    text = result.published
    est_out = None
    if where is not None:
        est_out = pd.DataFrame({c: [text[where[(i, c)]] for i in estimates.index]
                                for c in COUNT_COLUMNS}, index=estimates.index, dtype=object)
    return PublishedSet(
        flow={k: f.assign(n=[text[key] for key in f["_key"]]).drop(columns="_key")
              for k, f in flows.items()},
        estimates=est_out,
        data_quality=None if dq_frame is None else dq_frame.map(text.__getitem__),
        rules={r: text[k] for r, k in rule_keys.items() if ls.printed[k]},
        linked=ls, result=result)


def window_key(months: int, arm: str, column: str) -> str:
    """Key of a window-proportion count (``column``: n, events or offences)."""
    return f"window:{int(months)}:{arm}:{column}"


COMPLETED = "completed"  # treated people of the main cohort who completed treatment
MATCH_TREATED, MATCH_MATCHED, MATCH_UNMATCHED, MATCH_CONTROLS = (
    "match:treated", "match:matched", "match:unmatched", "match:controls")


def published_set(con, extract_id: str, policy: DisclosurePolicy,
                  main_cohort: str = "started") -> PublishedSet:
    """Everything the report and the exports print for one extract, as one linked set.

    Reads the flow (every cohort), the survival and comparison estimates (concatenated in that
    order with a fresh index, as ``numbers.Estimates`` does), the data-quality summary, the
    completers, the matching summary and the window proportions. Keys beyond the flow's,
    the estimates' and the data-quality tables: ``arm_key(cohort, arm)``, ``COMPLETED``, the
    ``MATCH_*`` keys and ``window_key``.
    """
    from pipeline.ingest.quality import data_quality_summary
    from pipeline.warehouse_io import read_extract, read_optional

    flow = read_extract(con, "analysis.cohort_flow", extract_id)
    frames = [f for f in (read_optional(con, "analysis.survival_estimates", extract_id),
                          read_optional(con, "analysis.comparison_estimates", extract_id))
              if f is not None]
    est = pd.concat(frames, ignore_index=True) if frames else None
    extras: dict[str, int] = {}
    nests: list[tuple[str, str]] = []
    sums: list[tuple[str, list[str]]] = []
    treated, comparison = arm_key(main_cohort, "treated"), arm_key(main_cohort, "comparison")
    completed = con.execute(
        "SELECT count(*) FILTER (WHERE p.completed) FROM analysis.units u JOIN analysis.persons "
        "p USING (extract_id, person_key) WHERE u.extract_id = ? AND u.cohort = ? "
        "AND u.arm = 'treated'", [extract_id, main_cohort]).fetchone()[0]
    extras[COMPLETED] = int(completed)
    nests.append((treated, COMPLETED))
    summary = read_optional(con, "analysis.match_summary", extract_id)
    if summary is not None:
        s = summary[(summary["cohort"] == main_cohort) & (summary["analysis"] == "matched")]
        if len(s):
            s = s.iloc[0]
            extras |= {MATCH_TREATED: int(s["n_treated"]), MATCH_MATCHED: int(s["n_matched"]),
                       MATCH_UNMATCHED: int(s["n_treated"] - s["n_matched"]),
                       MATCH_CONTROLS: int(s["n_controls_used"])}
            sums.append((MATCH_TREATED, [MATCH_MATCHED, MATCH_UNMATCHED]))
            nests += [(treated, MATCH_TREATED), (comparison, MATCH_CONTROLS)]
    props = read_optional(con, "analysis.window_proportions", extract_id)
    for r in (props.itertuples() if props is not None else ()):
        keys = {c: window_key(r.months, r.arm, c) for c in ("n", "events", "offences")}
        extras |= {keys[c]: int(getattr(r, c)) for c in keys}
        nests += [(keys["n"], keys["events"]), (arm_key(main_cohort, r.arm), keys["n"])]
    return protect_published_set(policy, flow, est, data_quality_summary(con, extract_id),
                                 extras=extras, nests=nests, sums=sums)
