"""``published_set`` reads every published count of an extract from the warehouse and
protects them as one linked set: a tiny hand-made warehouse whose counts differ by small
numbers across tables (unmatched treated, completers, people followed, rules), attacked by LP."""

from __future__ import annotations

import duckdb
import pandas as pd
from test_linked_attack import attack, leaks

from pipeline.disclosure import DisclosurePolicy
from pipeline.report.linked_counts import (
    COMPLETED,
    MATCH_MATCHED,
    MATCH_TREATED,
    MATCH_UNMATCHED,
    arm_key,
    published_set,
    window_key,
)

EID = "e1"


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA analysis")
    flow = pd.DataFrame(
        [("started", "treated", i, s, s, n) for i, (s, n) in
         enumerate([("referred", 160), ("accepted", 140), ("started", 121), ("free", 120)])]
        + [("itt", "treated", i, s, s, n) for i, (s, n) in
           enumerate([("referred", 160), ("accepted", 140), ("free", 133)])]
        + [("started", "comparison", i, s, s, n) for i, (s, n) in
           enumerate([("qualifying", 900), ("eligible", 700), ("never_treated", 640)])],
        columns=["cohort", "arm", "step_no", "step", "label", "n"]).assign(extract_id=EID)
    units = pd.DataFrame({"extract_id": EID, "cohort": "started", "arm": "treated",
                          "person_key": [f"p{i}" for i in range(120)]})
    persons = pd.DataFrame({"extract_id": EID, "person_key": [f"p{i}" for i in range(120)],
                            "completed": [i < 114 for i in range(120)]})  # 6 did not
    match = pd.DataFrame([{"extract_id": EID, "cohort": "started", "analysis": "matched",
                           "n_treated": 120, "n_matched": 116, "n_controls_used": 300}])
    props = pd.DataFrame([{"extract_id": EID, "months": 12, "arm": a, "n": n, "events": e,
                           "offences": o} for a, n, e, o in
                          (("treated", 117, 30, 41), ("comparison", 600, 150, 200))])
    est = pd.DataFrame([
        {"extract_id": EID, "analysis": "matched", "measure": "hr", "arm": "",
         "n_treated": 116, "n_comparison": 300, "events_treated": 30,
         "events_comparison": 80},
        {"extract_id": EID, "analysis": "subgroup:site=SITE_A", "measure": "hr", "arm": "",
         "n_treated": 111, "n_comparison": 280, "events_treated": 27,
         "events_comparison": 75},
        {"extract_id": EID, "analysis": "subgroup:site=SITE_B", "measure": "hr", "arm": "",
         "n_treated": 5, "n_comparison": 20, "events_treated": 3, "events_comparison": 5},
        {"extract_id": EID, "analysis": "subgroup:site", "measure": "interaction_p",
         "arm": "", "n_treated": 116, "n_comparison": 300, "events_treated": 30,
         "events_comparison": 80}])
    for name, frame in (("cohort_flow", flow), ("units", units), ("persons", persons),
                        ("match_summary", match), ("window_proportions", props),
                        ("comparison_estimates", est)):
        con.register("_f", frame)
        con.execute(f"CREATE TABLE analysis.{name} AS SELECT * FROM _f")
        con.unregister("_f")
    return con


def test_published_set_links_every_table_of_the_extract():
    policy = DisclosurePolicy()
    con = _warehouse()
    published = published_set(con, EID, policy)
    text = published.result.published
    hidden = {policy.suppressed_label, policy.secondary_label}
    # 120 treated, 116 matched, 4 unmatched: the pair 120/116 may not both be printed
    assert text[MATCH_UNMATCHED] == policy.suppressed_label
    assert {text[MATCH_TREATED], text[MATCH_MATCHED]} & hidden
    # 6 non-completers: completers and the cohort may not both be printed
    assert {text[COMPLETED], text[arm_key("started", "treated")]} & hidden
    # 3 treated not followed for 12 months: window n and cohort may not both be printed
    assert {text[window_key(12, "treated", "n")], text[arm_key("started", "treated")]} & hidden
    # the subgroup's small level is protected with its total
    assert published.estimates.loc[2, "n_treated"] == policy.suppressed_label
    assert not leaks(published, policy, attack(published, policy))
    assert [f["n"].iloc[-1] for k, f in sorted(published.flow.items())] == [
        text[arm_key(c, a)] for c, a in sorted(published.flow)]


def test_a_repeated_set_is_protected_once_and_gives_the_same_answer(monkeypatch):
    """The report and the exports protect the same set in one run: the second call reuses the
    first's result (the audit is not run again), equal to it, and a caller changing its copy
    changes nothing for the next caller; a set with another count is protected afresh."""
    from pipeline.disclosure import linked

    policy = DisclosurePolicy()
    con = _warehouse()
    first = published_set(con, EID, policy).result
    calls = []
    real = linked._protect
    monkeypatch.setattr(linked, "_protect", lambda ls, p: calls.append(1) or real(ls, p))
    again = published_set(con, EID, policy).result
    assert calls == [] and again == first
    again.published.clear()
    assert published_set(con, EID, policy).result.published == first.published
    con.execute("UPDATE analysis.match_summary SET n_matched = 115")
    changed = published_set(con, EID, policy)
    assert calls == [1] and changed.linked.values[MATCH_MATCHED] == 115
