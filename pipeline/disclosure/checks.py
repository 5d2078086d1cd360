"""Last-line checks that a report or export contains no small counts, for use in report tests.

``check_published_document`` walks report JSON. A value is treated as a count when its key,
or any ancestor key, is ``n``, ends in ``_n``, ``count`` or ``counts``, or starts with ``n_``
(case-insensitive); under such keys every int, integral float or integer-like string
("7", "1,204") below the threshold is flagged (0 too when zeros are suppressed). Labels such as
"<10" are not numbers and pass. Bools are never counts. Inherited context can flag a
non-count (e.g. times inside ``n_at_risk``): rename keys rather than loosen the check.

``find_small_counts_in_text`` is a heuristic for extracted PDF text: it flags an integer below
the threshold written as ``n = 7`` / ``N: 7``, as ``7 of 40`` / ``7 out of 40``, or directly
before a people/event noun ("7 participants", "3 new referrals"). Decimals, percentages and
numbers after ``<`` are ignored; counts in words ("five men") and in charts are not detected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.disclosure.counts import suppression_mask
from pipeline.disclosure.policy import DisclosurePolicy

_NUM = r"(?<![\w.,<\u2264])(\d+)(?![.,]\d)(?!\s*%)"
_NOUNS = (
    r"people|persons?|participants?|individuals?|men|women|males?|females?|children|"
    r"perpetrators?|offenders?|victims?|survivors?|clients?|patients?|respondents?|"
    r"subjects?|members?|users?|cases?|referrals?|completers?|non-completers?|"
    r"drop-?outs?|starters?|events?|re-?offen[cd]es?|offen[cd]es?|arrests?|convictions?|"
    r"charges?|breaches?|incidents?|reports?|deaths?"
)
_TEXT_PATTERNS = [
    re.compile(rf"\bn\s*[=:]\s*{_NUM}", re.IGNORECASE),
    re.compile(rf"{_NUM}\s+(?:out\s+)?of\s+(?:the\s+)?\d[\d,]*", re.IGNORECASE),
    re.compile(rf"{_NUM}\s+(?:[a-z-]+\s+)?(?:{_NOUNS})\b", re.IGNORECASE),
]


def _is_count_key(key: object) -> bool:
    """True for keys that tag their value as a count (see module docstring)."""
    if not isinstance(key, str):
        return False
    k = key.lower()
    return k == "n" or k.endswith(("_n", "count", "counts")) or k.startswith("n_")


def _as_integer(value: Any) -> int | None:
    """Return ``value`` as an int if it is an integer-like number or string, else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return int(value) if np.isfinite(value) and value == int(value) else None
    if isinstance(value, str):
        digits = value.strip().replace(",", "").replace("\u202f", "").replace("\u2009", "")
        return int(digits) if digits.isdigit() else None
    return None


def check_published_document(doc: Any, policy: DisclosurePolicy) -> list[str]:
    """List ``path: value`` for each tagged count in nested dicts/lists that must be suppressed."""
    findings: list[str] = []
    stack: list[tuple[Any, str, bool]] = [(doc, "$", False)]
    while stack:
        node, path, tagged = stack.pop()
        if isinstance(node, Mapping):
            children = [(v, f"{path}.{k}", tagged or _is_count_key(k)) for k, v in node.items()]
            stack.extend(reversed(children))
        elif isinstance(node, list | tuple):
            stack.extend(reversed([(v, f"{path}[{i}]", tagged) for i, v in enumerate(node)]))
        elif tagged:
            value = _as_integer(node)
            if value is not None and bool(suppression_mask(np.asarray(value), policy)):
                findings.append(f"{path}: {node!r}")
    return findings


def find_small_counts_in_text(text: str, policy: DisclosurePolicy) -> list[str]:
    """Heuristically list phrases in free text that present a count below the threshold."""
    findings: list[tuple[int, str]] = []
    for pattern in _TEXT_PATTERNS:
        for match in pattern.finditer(text):
            if suppression_mask(np.asarray(int(match.group(1))), policy):
                findings.append((match.start(), " ".join(match.group(0).split())))
    return [phrase for _, phrase in sorted(set(findings))]


def assert_no_small_counts(published: Any, policy: DisclosurePolicy) -> None:
    """Raise AssertionError listing small counts in report text (str) or report JSON (dict/list)."""
    if isinstance(published, str):
        findings = find_small_counts_in_text(published, policy)
    else:
        findings = check_published_document(published, policy)
    if findings:
        raise AssertionError(
            f"{len(findings)} potentially disclosive count(s) below {policy.threshold}: "
            + "; ".join(findings)
        )
