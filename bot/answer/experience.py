"""Years of experience: what a question states (「経験3年」, 「1〜2年目」, "5 years") and which table rows
cover it (「ジュニア (0-3年)」, 「シニア (7年以上/リード)」).

The articles' salary tables give each row a range of years in its title, so a question that says how long
someone has worked is answered with the row it falls into, whatever words the row uses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..text import normalize
from .units import Unit

__all__ = ["rows_for_years", "stated_years", "years_of_row"]

_DASH = r"\s*(?:〜|~|-|–|から)\s*"
#: 「1〜2年目」, 「3-5年」, "3-5 years"
_RANGE = re.compile(rf"(\d{{1,2}}){_DASH}(\d{{1,2}})\s*(?:年|years?\b)(目)?")
#: 「経験3年」, 「3年目」, 「5年やって」, "5 years of experience" (not 「2025年」: at most two digits)
_POINT = re.compile(r"(?<!\d)(\d{1,2})\s*(?:年|years?\b)(目)?")
#: A row's years: 「(0-3年)」 → 0..3; 「7年以上」 → 7..∞
_ROW_RANGE = re.compile(r"(\d{1,2})\s*[-〜~–]\s*(\d{1,2})\s*年")
_ROW_FROM = re.compile(r"(\d{1,2})\s*年以上")
#: What makes a number of years be about experience rather than a date or a plan (「3年後」).
_EXPERIENCE = re.compile(r"経験|年目|やって|働いて|務めて|勤めて|実務|歴|years? (?:of|in|as)|experience|worked")


def stated_years(question: str) -> tuple[float, float] | None:
    """The years of experience a question states, as a closed range, or None.

    「N年目」 means N-1 completed years up to N. A bare number of years counts only beside words of
    experience (経験, やって, "of experience"), so 「3年後の将来性」 states none.
    """
    text = normalize(question)
    if not _EXPERIENCE.search(text):
        return None
    if m := _RANGE.search(text):
        low, high = float(m.group(1)), float(m.group(2))
        return (max(low - 1, 0.0), high) if m.group(3) else (low, high)
    if m := _POINT.search(text):
        n = float(m.group(1))
        return (max(n - 1, 0.0), n) if m.group(2) else (n, n)
    return None


def years_of_row(title: str) -> tuple[float, float] | None:
    """The closed range of years a row's title covers (「0-3年」 → 0..3, 「7年以上」 → 7..∞), or None."""
    text = normalize(title)
    if m := _ROW_RANGE.search(text):
        return float(m.group(1)), float(m.group(2))
    if m := _ROW_FROM.search(text):
        return float(m.group(1)), float("inf")
    return None


def rows_for_years(question: str, rows: Sequence[Unit]) -> list[Unit]:
    """The rows whose years cover those the question states ([] when it states none or no row has years)."""
    stated = stated_years(question)
    if stated is None:
        return []
    low, high = stated
    out = []
    for row in rows:
        span = years_of_row(row.title)
        # the articles write ranges that share their ends (0-3年, 3-7年): 3 years is in both rows
        if span is not None and span[0] <= high and low <= span[1]:
            out.append(row)
    return out
