"""Counts of the estimates tables published as linked tables, not one cell at a time.

Subgroup levels add up to the subgroup's total (published on the interaction-test row), and
dose bands add up to the landmark sample: suppressing a small level on its own lets anyone
recover it by subtraction (low 12 + moderate 10 + high "<10" = 31 gives high = 9). Here the
rows of one family (``subgroup:<variable>=<level>`` with ``subgroup:<variable>``, and
``dose:sessions=<band>`` with ``dose:sessions``), for one measure and arm, form a table of levels
× count columns with its total, protected by ``pipeline.disclosure.protect_table``
(complementary suppression across rows and columns). Every other row is published one count at
a time. The report and the exports both take their counts from here.
"""

from __future__ import annotations

import pandas as pd

from pipeline.disclosure import DisclosurePolicy, protect_table, publish_count

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
