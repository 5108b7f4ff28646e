"""Small-number disclosure control for published outputs.

The rules, applied to every published output (report, workbook, ``results.json``) unless the
data are synthetic, with the numbers of the run's :class:`~careval.disclosure.DisclosureSettings`
(``ev.disclosure``; the defaults are given here):

1. **Primary suppression and rounding.** A count of 1-7 (below ``threshold``, or rounding
   below it) is published as ``*``; any other count is rounded to the nearest 5
   (``rounding_base``; 0 stays 0). :func:`smallest_published` is the smallest count shown.
2. **Secondary suppression.** Where a table publishes a total beside the cells that add up to it
   (a *margin*), a single suppressed cell could be recovered by subtraction. So, in every margin
   with exactly one suppressed entry, the smallest other part that is still shown (by its true
   value) is suppressed too; when no part is left to suppress, the total is. This is repeated
   until no margin has exactly one suppressed entry (a cell can belong to several margins).
3. **Means and rates from fewer than 8 people are withheld** (published as null): any rate,
   share, mean or estimate in a row (or a block) whose people count is below
   :func:`smallest_published`.

Which JSON keys and table columns are counts is data, in :data:`COUNT_KEYS` (plus the
per-MDG and per-group columns matched by :func:`is_count_key`, among them the eligibility
groups of any rule (:data:`careval.cohort.eligibility.GROUP_NAME`), the lists of counts in
:data:`COUNT_LIST_KEYS` and the count matrices in :data:`COUNT_MATRIX_KEYS`); which counts are
denominators for rule 3 is :data:`DENOMINATOR_KEYS`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

from careval.cohort.eligibility import GROUP_NAME
from careval.disclosure import DisclosureSettings

SUPPRESSED = "*"

# Counts of people, their events or the programme's records, as published. Every key or column
# with one of these names holding an integer is protected by rule 1.
COUNT_KEYS: frozenset[str] = frozenset(
    {
        # data summary
        "registered",
        "eligible",
        "under_75_with_diabetes",
        "aged_75_plus_without_diabetes",
        "aged_75_plus_with_diabetes",
        "emergency_admissions",
        "elective_admissions",
        "ae_attendances",
        "outpatient_attendances",
        "community_contacts",
        "care_plans",
        "cumulative",
        # data summary: attrition, one column per area (the seed's names; the data's other
        # names are protected by publish_summary, which takes the table's area columns)
        "pilot",
        "inner_nwl_other",
        "outer_nwl",
        "south_west_london",
        "rest_of_england",
        # risk
        "n",
        "events",
        "people",
        "flagged_top_0_5pct",
        "flagged_top_1pct",
        "flagged_top_2pct",
        "flagged_top_5pct",
        # Table 2
        "people_after",
        "admissions_after",
        "admissions_before",
        # matched study
        "care_planned",
        "entered_in_study_window",
        "treated_alive_and_registered_at_entry",
        "candidate_control_rows",
        "candidate_control_people",
        "treated_matched",
        "controls_matched",
        "unmatched_no_control_in_stratum",
        "unmatched_outside_caliper",
        "n_treated",
        "n_controls",
        "n_obs",
        "treated_with_full_horizon",
        "treated_with_full_follow_up",
        "deaths_treated",
        "deaths_controls",
        "people_died",  # time to event (impact.survival)
        # ...and its lists of counts by month (COUNT_LIST_KEYS) as the columns of the
        # workbook's survival curves sheet (careval.report.workbook_survival)
        "at_risk",
        "events_by",
        "deaths_by",
        # clinical indicators
        "with_reading",
        "in_control",
        "care_planned_with_diabetes",
        "comparison_eligible",
        "n_before",
        "n_after",
        "comparison_n",
        "both",
        "before_only",
        "after_only",
        "neither",
        "new_diagnoses",
        "six_cit_tests",
        "care_plans_dementia",
        # programme monitoring
        "total",
        "meetings",
        "cases_discussed",
        "allocations",
        "allied_health_professional",
        "chair",
        "consultant",
        "mental_health",
        "non_presenting_gp",
        "nurse",
        "other",
        "presenting_gp",
        "social_worker",
        # design
        "enrolled",
        "people_with_full_history",
        # surveys (careval.surveys.evaluate)
        "n_responses",
        "n_respondents",
        "n_valid",
        "n_agree",
        "n_dont_know",
        "n_user_missing",
        "n_blank",
        "n_effective",
        "n_open_text_answers",
        "invited",
        "responded",
        "count",
        # qualitative (careval.qualitative)
        "n_meetings",
        "n_utterances",
        "n_coded_utterances",
        "utterances",
        "words",
        "attendees",
        "n_segments",
        "segments",
        "documents",
        "cases",
        "units",
        "n_a",
        "n_b",
    }
)
MDG_COLUMN = re.compile(r"^MDG\w*$")  # care plans by MDG: one count column per group
GROUP_COLUMN = re.compile(r"^group:")  # coded segments by respondent group: one column each
# Keys whose value is a list (or a list of lists) of counts: the cells of a contingency table
# (surveys' group comparisons) and the observed counts of a goodness-of-fit test.
# The time-to-event curves' people at risk and with the event by each month (impact.survival).
COUNT_LIST_KEYS: frozenset[str] = frozenset(
    {"counts", "observed", "at_risk", "events_by", "deaths_by"}
)
# Keys whose value is a matrix of counts as ``{row: {column: count}}``: who speaks after whom
# in MDG meetings, and code co-occurrence in thematic coding.
COUNT_MATRIX_KEYS: frozenset[str] = frozenset({"turns", "cooccurrence"})
# Counts of people that make the means and rates beside them "from fewer than 8 people".
DENOMINATOR_KEYS: tuple[str, ...] = (
    "people",
    "n",
    "registered",
    "eligible",
    "people_after",
    "n_treated",
    "n_before",
    "enrolled",
)


def is_count_key(key: object) -> bool:
    """Whether a JSON key or column name holds a published count (see :data:`COUNT_KEYS`)."""
    return isinstance(key, str) and (
        key in COUNT_KEYS
        or bool(MDG_COLUMN.match(key))
        or bool(GROUP_COLUMN.match(key))
        or bool(GROUP_NAME.match(key))
    )


def is_count_path(path: str) -> bool:
    """Whether a dotted ``results.json`` path (as in the workbook's key figures) is a count.

    Its last key is a count key, or it is a cell ``matrix.row.column`` of a count matrix
    (:data:`COUNT_MATRIX_KEYS`).
    """
    keys = path.split(".")
    return is_count_key(keys[-1]) or (len(keys) >= 3 and keys[-3] in COUNT_MATRIX_KEYS)


def _rounded(value: float, base: int) -> int:
    return int(base * round(value / base))


@cache  # called for every cell; the settings are frozen
def smallest_published(d: DisclosureSettings) -> int:
    """The smallest count other than 0 that is published under ``d`` (8 by default).

    It is ``d.threshold`` unless that count would round below the threshold: with a threshold of
    11 and a base of 10, 11-14 would show as 10, so the smallest count shown is 15. Counts from
    1 to one less are suppressed, and means and rates from fewer people are withheld.

    Examples
    --------
    >>> smallest_published(DisclosureSettings()), smallest_published(DisclosureSettings(11, 10))
    (8, 15)
    """
    n = d.threshold
    while _rounded(n, d.rounding_base) < d.threshold:
        n += 1
    return n


def suppressed_range(d: DisclosureSettings, dash: str = "-") -> str:
    """The counts suppressed under ``d``, as text: ``1-7`` by default (``1`` if only 1 is)."""
    top = smallest_published(d) - 1
    return "1" if top == 1 else f"1{dash}{top}"


def is_suppressed(n: float, d: DisclosureSettings) -> bool:
    """Whether a true count is one that rule 1 suppresses (1-7 by default)."""
    return 1 <= n < smallest_published(d)


def protect_count(value: int, d: DisclosureSettings) -> int | str:
    """One count as published: 1-7 suppressed, others rounded to 5 (the numbers of ``d``)."""
    if is_suppressed(value, d):
        return SUPPRESSED
    return _rounded(value, d.rounding_base)


def protect_value(v: Any, d: DisclosureSettings) -> Any:
    """A count cell as published; missing and already-suppressed values pass through.

    Idempotent: a published count (0, ``*`` or a multiple of 5 above 7) is unchanged.
    """
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, str | bool):
        return v
    if isinstance(v, float) and (math.isnan(v) or not v.is_integer()):
        return None if math.isnan(v) else v
    if hasattr(v, "item"):
        v = v.item()
    return protect_count(int(v), d) if isinstance(v, int | float) else v


def protect_counts(
    df: pd.DataFrame, columns: list[str], d: DisclosureSettings, enabled: bool = True
) -> pd.DataFrame:
    """A copy of ``df`` with the count ``columns`` protected (unchanged when not ``enabled``)."""
    out = df.copy()
    if enabled:
        for col in columns:
            out[col] = pd.Series(
                [protect_value(v, d) for v in out[col]], index=out.index, dtype=object
            )
    return out


def is_small(v: Any, d: DisclosureSettings) -> bool:
    """A true count too small to carry a mean or rate (below :func:`smallest_published`)."""
    try:
        return v is not None and not pd.isna(v) and float(v) < smallest_published(d)
    except (TypeError, ValueError):
        return True  # an already suppressed count


# ---------------------------------------------------------------------------------------------
# Secondary suppression


@dataclass(frozen=True)
class Margin:
    """Cells ``parts`` that add up to the published cell ``total``."""

    parts: tuple[Hashable, ...]
    total: Hashable


def secondary_suppression(
    raw: dict[Hashable, float], hidden: set[Hashable], margins: Iterable[Margin]
) -> set[Hashable]:
    """Cells to suppress so that no total gives a suppressed cell away (rule 2).

    Parameters
    ----------
    raw
        True value of every cell that appears in ``margins``.
    hidden
        Cells already suppressed (primary suppression).
    margins
        Each group of parts and the total they add up to.

    Returns
    -------
    set
        ``hidden`` plus the cells suppressed to protect it.

    Examples
    --------
    >>> raw = {"a": 3, "b": 40, "c": 55, "total": 98}
    >>> sorted(secondary_suppression(raw, {"a"}, [Margin(("a", "b", "c"), "total")]))
    ['a', 'b']
    """
    out = set(hidden)
    margins = [m for m in margins if m.total in raw and all(p in raw for p in m.parts)]
    changed = True
    while changed:
        changed = False
        for m in margins:
            cells = [*m.parts, m.total]
            if sum(c in out for c in cells) != 1:
                continue
            shown = [p for p in m.parts if p not in out]
            pick = min(shown, key=lambda p: (raw[p], str(p))) if shown else m.total
            if pick in out:  # only the total is suppressed and there are no parts: nothing to do
                continue
            out.add(pick)
            changed = True
    return out


def protect_table(
    df: pd.DataFrame,
    counts: Sequence[str],
    d: DisclosureSettings,
    *,
    row_margins: Sequence[tuple[Sequence[str], str]] = (),
    group_margin: tuple[str, Sequence[str], Sequence[object], object] | None = None,
    rates: Sequence[str] = (),
    denominator: str | None = None,
    rate_counts: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """``df`` as published: rules 1-3 on one table (returns a copy, object dtype for counts).

    Parameters
    ----------
    df
        The table with true counts.
    counts
        Its count columns (rule 1).
    d
        The numbers of the rules.
    row_margins
        Within a row, ``(parts, total)`` columns: ``total`` is the sum of ``parts``.
    group_margin
        Across rows: ``(column, keys, parts, total)``. Rows with equal ``keys`` form a group in
        which the row whose ``column`` is ``total`` adds up the rows whose ``column`` is one of
        ``parts``, for every count column.
    rates
        Means, rates and shares withheld when the row's ``denominator`` is below
        :func:`smallest_published` (rule 3).
    denominator
        The count column of people behind ``rates``.
    rate_counts
        Rate column -> count columns it rests on: the rate is withheld too when one of them is
        suppressed (primary or secondary), since rate x denominator would give it away.
    """
    out = df.copy().astype({c: object for c in counts if c in df})
    cols = [c for c in counts if c in df]
    raw: dict[Hashable, float] = {}
    hidden: set[Hashable] = set()
    for i, row in df[cols].iterrows():
        for c in cols:
            v = row[c]
            if v is None or pd.isna(v):
                continue
            raw[(i, c)] = float(v)
            if isinstance(protect_value(v, d), str):
                hidden.add((i, c))
    margins: list[Margin] = []
    for parts, total in row_margins:
        for i in df.index:
            margins.append(Margin(tuple((i, p) for p in parts), (i, total)))
    if group_margin is not None:
        column, keys, part_keys, total_key = group_margin
        groups = [df] if not keys else [g for _, g in df.groupby(list(keys), sort=False)]
        for g in groups:
            tot = g.index[g[column] == total_key]
            members = g.index[g[column].isin(list(part_keys))]
            if len(tot) != 1 or not len(members):
                continue
            for c in cols:
                margins.append(Margin(tuple((i, c) for i in members), (tot[0], c)))
    hidden = secondary_suppression(raw, hidden, margins)
    for c in cols:
        out[c] = pd.Series(
            [SUPPRESSED if (i, c) in hidden else protect_value(v, d) for i, v in df[c].items()],
            index=df.index,
            dtype=object,
        )
    if denominator is not None and denominator in df:
        small = df[denominator].map(lambda v: is_small(v, d))
        for r in rates:
            if r in out:
                out[r] = out[r].astype(object).where(~small, None)
    for r, based_on in (rate_counts or {}).items():
        if r not in out:
            continue
        gone = pd.Series(False, index=df.index)
        for c in based_on:
            if c in out:
                gone |= out[c].map(lambda v: v == SUPPRESSED)
        out[r] = out[r].astype(object).where(~gone, None)
    return out


def protect_mapping(
    counts: dict[str, Any],
    d: DisclosureSettings,
    margins: Sequence[tuple[Sequence[str], str]] = (),
) -> dict[str, Any]:
    """A flat dict of counts as published: rule 1 on count keys, rule 2 on ``margins``."""
    raw: dict[Hashable, float] = {
        k: float(v)
        for k, v in counts.items()
        if is_count_key(k) and isinstance(v, int | float) and not isinstance(v, bool)
    }
    hidden: set[Hashable] = {k for k, v in raw.items() if is_suppressed(v, d)}
    hidden = secondary_suppression(
        raw, hidden, [Margin(tuple(parts), total) for parts, total in margins]
    )
    return {
        k: (SUPPRESSED if k in hidden else protect_value(v, d)) if k in raw else v
        for k, v in counts.items()
    }


# ---------------------------------------------------------------------------------------------
# Whole results


def protect_json(obj: Any, d: DisclosureSettings) -> Any:
    """Rules 1 and 3 on every dict inside ``obj`` (JSON-ready results), as a new object.

    Every integer under a count key (:func:`is_count_key`) is protected; in a dict whose people
    count (the first of :data:`DENOMINATOR_KEYS` present) is below :func:`smallest_published`,
    every other float (means, rates, shares, estimates) is withheld. Idempotent, so tables
    already protected with secondary suppression keep it.
    """
    if isinstance(obj, list):
        return [protect_json(v, d) for v in obj]
    if not isinstance(obj, dict):
        return obj
    den = next((k for k in DENOMINATOR_KEYS if k in obj and not isinstance(obj[k], dict)), None)
    small = den is not None and is_small(obj[den], d)
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if k in COUNT_LIST_KEYS and isinstance(v, list):
            out[k] = _protect_nested(v, d)
        elif k in COUNT_MATRIX_KEYS and isinstance(v, dict):
            out[k] = {
                r: _protect_nested(row, d) if isinstance(row, dict) else row for r, row in v.items()
            }
        elif isinstance(v, dict | list):
            out[k] = protect_json(v, d)
        elif is_count_key(k):
            out[k] = protect_value(v, d)
        elif small and isinstance(v, float):
            out[k] = None
        else:
            out[k] = v
    return out


def _protect_nested(v: Any, d: DisclosureSettings) -> Any:
    """Every number in nested lists and dicts of counts protected (rule 1)."""
    if isinstance(v, list):
        return [_protect_nested(x, d) for x in v]
    if isinstance(v, dict):
        return {k: _protect_nested(x, d) for k, x in v.items()}
    return protect_value(v, d)


def _nested(v: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(v, list):
        for i, x in enumerate(v):
            yield from _nested(x, f"{path}[{i}]")
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from _nested(x, f"{path}.{k}")
    else:
        yield path, v


def published_counts(obj: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    """Every ``(path, value)`` under a count key in JSON-ready ``obj`` (for audits and tests).

    Count keys are those of :func:`is_count_key`, plus every cell of the lists of counts
    (:data:`COUNT_LIST_KEYS`) and count matrices (:data:`COUNT_MATRIX_KEYS`).
    """
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from published_counts(v, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k in COUNT_LIST_KEYS | COUNT_MATRIX_KEYS and isinstance(v, dict | list):
                yield from _nested(v, f"{path}.{k}")
            elif isinstance(v, dict | list):
                yield from published_counts(v, f"{path}.{k}")
            elif is_count_key(k):
                yield f"{path}.{k}", v


def small_count(v: Any, d: DisclosureSettings) -> bool:
    """Whether a published value is an unsuppressed count of 1-7 (a disclosure failure)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return is_suppressed(v, d)
