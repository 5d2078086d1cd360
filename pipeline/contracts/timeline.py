"""Timeline rules across tables: a row's date against the person (or referral) it belongs to.

``rules.yaml`` lists them under ``parent_dates``: an offence committed in a year before the
person's birth year, an offence, referral or session dated after the person's death. Each
becomes one quarantine rule in the table's single check query (``rules.check_plan``) and one
expectation of the staged-table attestation (``expectations``). The relatives are read from
``staging``: a row whose parent was quarantined already breaks ``parent_quarantined``.
"""

from __future__ import annotations

from pipeline.contracts.schema import ParentDate, load_contract


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def relative_sql(rule: ParentDate, value_alias: str = "v") -> str:
    """SQL (parameter ``$eid``) giving ``k`` (this table's key value) and the relative's date
    or year as ``value_alias``, by joining the staged tables along ``rule.path``."""
    hops = [(rule.path[i], rule.path[i + 1]) for i in range(0, len(rule.path), 2)]
    sql = f"FROM staging.{hops[0][1]} h0"
    for n, (key, table) in enumerate(hops[1:], start=1):
        sql += (f" JOIN staging.{table} h{n} ON h{n}._extract_id = h0._extract_id "
                f"AND h{n}.{_q(key)} = h{n - 1}.{_q(key)}")
    last = len(hops) - 1
    return (f"SELECT h0.{_q(hops[0][0])} AS k, h{last}.{_q(rule.parent_column)} AS "
            f"{_q(value_alias)} {sql} WHERE h0._extract_id = $eid")


def violation(rule: ParentDate, alias: str) -> str:
    """SQL true when the row's date breaks the rule (``alias`` is the joined relative)."""
    col = _q(rule.column)
    if rule.check == "not_before_year":
        return f"year({col}) < {_q(alias)}.v"
    return f"{col} > {_q(alias)}.v"


def reason(rule: ParentDate) -> str:
    """The fixed reason text (names columns and files, never values)."""
    parent_file = load_contract(rule.parent).file
    through = (f" (reached through {', '.join(rule.path[0::2])})" if len(rule.path) > 2
               else "")
    if rule.check == "not_before_year":
        return (f"{rule.column} lies in a year before the {rule.parent_column} of its "
                f"{parent_file} row{through}")
    return (f"{rule.column} is after the {rule.parent_column} of its {parent_file} "
            f"row{through}")


def add_parent_date_rules(plan, rules: tuple[ParentDate, ...]) -> None:
    """Add each rule's relative CTE, join and row rule to a ``rules.CheckPlan``."""
    from pipeline.contracts.rules import RowRule, txt

    for n, rule in enumerate(rules):
        alias = f"rel${n}${rule.parent_column}"
        plan.ctes[alias] = relative_sql(rule)
        plan.joins.append(f"LEFT JOIN {_q(alias)} ON {_q(alias)}.k = typed.{txt(rule.path[0])}")
        plan.rules.append(RowRule(rule.rule_id, rule.column, violation(rule, alias),
                                  reason(rule), kind="cross_table"))
