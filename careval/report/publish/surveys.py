"""Publication of the surveys: counts protected, shares withheld or computed from published counts.

A share is withheld when its base is below 8, or when the count it is a share of, or the rest of its
base, is a suppressed count (1-7: the defaults of the run's ``DisclosureSettings``); Kish's
effective n is published like a count (withheld below 8, else rounded to 5); the response-rate table
has secondary suppression against its "all respondents" row, and the groups' counts of each question
against the question's. A share that is published is the
published count over the published base (so share x base gives back only the rounded count), and its
Wilson interval is computed from those published counts; a weighted share, which the counts cannot
give, is rounded to the precision its published unweighted base allows
(:func:`careval.report.publish.shares.weighted_share_step`), and its interval is computed from that
share and the published effective n. Open-text answers are withheld (only their number is
published).
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from dataclasses import replace
from typing import Any, cast

import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.report.publish.rules import SUPPRESSED, Margin, protect_table, secondary_suppression
from careval.report.publish.shares import (
    count_out,
    effective_n_out,
    num,
    published_notes,
    published_sum,
    share_out,
    weighted_share_out,
)
from careval.surveys.analysis import ITEM_FIGURES
from careval.surveys.evaluate import SurveysResult
from careval.surveys.result import SurveyResult


def publish_surveys(result: SurveysResult, d: DisclosureSettings) -> SurveysResult:
    """A published copy of every survey under ``d`` (the input is not changed)."""
    return replace(
        result,
        surveys=[publish_survey(s, d) for s in result.surveys],
        warnings=published_notes(result.warnings, d),
        disclosure_control=True,
    )


def publish_survey(s: SurveyResult, d: DisclosureSettings) -> SurveyResult:
    """A published copy of one survey: its tables hold the counts and shares as published."""
    weighted = bool(s.definition.weight)
    items = _items(s, weighted, d)
    n_valid_of = dict(zip(s.items["question"], s.items["n_valid"], strict=True))
    n_resp_of = dict(zip(s.items["question"], s.items["n_respondents"], strict=True))
    dist = s.distribution.copy()
    counts, of_valid, of_resp = [], [], []
    for r in s.distribution.itertuples():
        count = count_out(r.count, d)
        n_valid = int(n_valid_of[r.question])
        n_resp = int(n_resp_of[r.question])
        share = num(r.share_of_valid)
        counts.append(count)
        of_valid.append(
            weighted_share_out(share, n_valid, r.count, count_out(n_valid, d), d)
            if weighted
            else share_out(
                share, n_valid, d, count=r.count, published=(count, count_out(n_valid, d))
            )
        )
        of_resp.append(
            share_out(
                num(r.share_of_respondents),
                n_resp,
                d,
                count=r.count,
                published=(count, count_out(n_resp, d)),
            )
        )
    _set(dist, count=counts, share_of_valid=of_valid, share_of_respondents=of_resp)
    if "weighted" in dist:
        dist = dist.drop(columns="weighted")
    comps = s.comparisons.copy()
    if len(comps):
        tables = []
        for t in comps["table"]:
            t = copy.deepcopy(dict(t))
            t["counts"] = [[count_out(v, d) for v in row] for row in t["counts"]]
            tables.append(t)
        _set(comps, table=tables, n=[count_out(v, d) for v in comps["n"]])
    return replace(
        s,
        n_responses=count_out(s.n_responses, d),  # type: ignore[arg-type]
        response_rates=_response_rates(s, d),
        items=items,
        distribution=dist,
        by_group=_group_margins(s, _by_group(s, weighted, d), items),
        comparisons=comps,
        open_text=None,  # verbatim answers are never published
        n_open_text=count_out(len(s.open_text) if s.open_text is not None else 0, d),
        warnings=published_notes(s.warnings, d),
        disclosure_control=True,
    )


def _set(df: pd.DataFrame, **columns: list[Any]) -> None:
    """Replace columns of ``df`` by lists of published values (kept as Python objects)."""
    for name, values in columns.items():
        df[name] = pd.Series(values, index=df.index, dtype=object)


def _items(s: SurveyResult, weighted: bool, d: DisclosureSettings) -> pd.DataFrame:
    items = s.items.copy()
    cols: dict[str, list[Any]] = {k: [] for k in ITEM_FIGURES}
    for r in s.items.itertuples():
        agree = None if pd.isna(r.n_agree) else int(r.n_agree)
        n_valid = count_out(r.n_valid, d)
        n_agree = None if agree is None else count_out(agree, d)
        n_dk = count_out(r.n_dont_know, d)
        share, lo, hi = shares_with_interval(
            (num(r.share_agree), num(r.ci_low), num(r.ci_high)),
            base=int(r.n_valid),
            count=agree,
            published=(n_agree, n_valid),
            weighted=weighted,
            n_effective=num(r.n_effective),
            population=s.definition.population,
            d=d,
        )
        values = {
            "n_respondents": count_out(r.n_respondents, d),
            "n_valid": n_valid,
            "n_agree": n_agree,
            "share_agree": share,
            "ci_low": lo,
            "ci_high": hi,
            "n_dont_know": n_dk,
            "share_dont_know": share_out(
                num(r.share_dont_know),
                r.n_valid + r.n_dont_know,
                d,
                count=r.n_dont_know,
                published=(n_dk, published_sum(n_valid, n_dk)),
            ),
            "n_user_missing": count_out(r.n_user_missing, d),
            "n_blank": count_out(r.n_blank, d),
            "n_effective": effective_n_out(num(r.n_effective), d),
        }
        for k, v in values.items():
            cols[k].append(v)
    _set(items, **cols)
    return items


def _by_group(s: SurveyResult, weighted: bool, d: DisclosureSettings) -> pd.DataFrame:
    groups = s.by_group.copy()
    cols: dict[str, list[Any]] = {
        k: [] for k in ("n_valid", "n_agree", "share_agree", "ci_low", "ci_high", "n_effective")
    }
    for r in s.by_group.itertuples():
        n_valid = count_out(r.n_valid, d)
        n_agree = count_out(r.n_agree, d)
        share, lo, hi = shares_with_interval(
            (num(r.share_agree), num(r.ci_low), num(r.ci_high)),
            base=int(r.n_valid),
            count=int(r.n_agree),
            published=(n_agree, n_valid),
            weighted=weighted,
            n_effective=num(r.n_effective),
            population=None,  # the groups' intervals have no finite population correction
            d=d,
        )
        for k, v in zip(cols, (n_valid, n_agree, share, lo, hi), strict=False):
            cols[k].append(v)
        cols["n_effective"].append(effective_n_out(num(r.n_effective), d))
    _set(groups, **cols)
    return groups


def _group_margins(s: SurveyResult, groups: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Secondary suppression of the groups' counts against the whole survey's (rule 2).

    For each question, the groups' ``n_valid`` (and ``n_agree``) add up to the item's (less
    any respondent in no group): with one group's count suppressed, the item's total less the
    others' would narrow it down. So in each such margin with exactly one suppressed cell
    another is suppressed too (:func:`~careval.report.publish.rules.secondary_suppression`);
    a group row whose count is suppressed this way has its share, interval and effective n
    withheld. Changes ``items`` in place only if an item's own count must go (no group left
    to suppress).
    """
    raw: dict[Hashable, float] = {}
    hidden: set[Hashable] = set()
    margins: list[Margin] = []
    item_row = {q: i for i, q in zip(items.index, items["question"], strict=True)}
    for key in ("n_valid", "n_agree"):
        for q, rows in s.by_group.groupby("question", sort=False):
            if q not in item_row or pd.isna(s.items.at[item_row[q], key]):
                continue
            parts = []
            for i in rows.index:
                if pd.isna(s.by_group.at[i, key]):
                    break
                raw[("g", i, key)] = float(s.by_group.at[i, key])
                if groups.at[i, key] == SUPPRESSED:
                    hidden.add(("g", i, key))
                parts.append(("g", i, key))
            else:
                raw[("t", q, key)] = float(s.items.at[item_row[q], key])
                if items.at[item_row[q], key] == SUPPRESSED:
                    hidden.add(("t", q, key))
                margins.append(Margin(tuple(parts), ("t", q, key)))
    out = groups.copy()
    for cell in secondary_suppression(raw, hidden, margins) - hidden:
        side, at, key = cast(tuple[str, Any, str], cell)
        table, row = (out, at) if side == "g" else (items, item_row[at])
        table.at[row, key] = SUPPRESSED
        for k in ("share_agree", "ci_low", "ci_high", "n_effective"):
            if k in table:
                table.at[row, k] = None
    return out


def _response_rates(s: SurveyResult, d: DisclosureSettings) -> pd.DataFrame:
    """The response-rate table as published.

    The numbers invited and responding are counts (rule 1) with secondary suppression against
    the "all respondents" row (rule 2), so no suppressed group can be worked out from the total;
    a response rate is withheld when its group's responses are suppressed (primary or secondary)
    or fewer than 8 were invited; a rate that is published is the published number responding
    over the published number invited.
    """
    df = s.response_rates.copy()
    df["response_rate"] = pd.Series([num(v) for v in df["response_rate"]], dtype=object)
    df["invited"] = pd.Series([None if pd.isna(v) else int(v) for v in df["invited"]], dtype=object)
    df["responded"] = [int(v) for v in df["responded"]]
    df["_total"] = [i == len(df) - 1 for i in range(len(df))]  # the last row: all
    out = protect_table(
        df,
        ["invited", "responded"],
        d,
        group_margin=("_total", (), (False,), True),
        rate_counts={"response_rate": ["responded"]},
    )
    invited, responded, rates = [], [], []
    for r, true in zip(out.itertuples(), df.itertuples(), strict=True):
        invited.append(None if true.invited is None else r.invited)
        responded.append(r.responded)
        rates.append(
            None
            if true.invited is None or r.response_rate is None
            else share_out(
                num(r.response_rate),
                int(true.invited),
                d,
                count=true.responded,
                published=(r.responded, r.invited),
            )
        )
    rates_out = s.response_rates.copy()
    _set(rates_out, invited=invited, responded=responded, response_rate=rates)
    return rates_out


def shares_with_interval(
    values: tuple[float | None, float | None, float | None],
    *,
    base: int,
    count: int | None,
    published: tuple[Any, Any],
    weighted: bool,
    n_effective: float | None,
    population: int | None,
    d: DisclosureSettings,
) -> tuple[float | None, float | None, float | None]:
    """A share and its Wilson 95% interval as published.

    Parameters
    ----------
    values
        The share, lower and upper limit from the true data.
    base, count
        The true base and the true count the share is of (rules for withholding).
    published
        That count and base as published.
    weighted
        Whether the share is weighted (it then cannot be recomputed from the counts).
    n_effective
        Kish's effective n behind the true interval; None for a census (no sampling error).
    population
        The finite population of the survey, when its correction enters the interval.
    d
        The numbers of disclosure control.

    An unweighted share is published count / published base, and its interval is statsmodels'
    Wilson interval on those counts (with a finite population, on that share and the published
    effective n); a weighted share is rounded to the precision its published base allows and
    its interval is the Wilson interval on it and the published effective n. The interval is
    withheld with the share, and when the effective n is.
    """
    share = values[0]
    if weighted:
        p = weighted_share_out(share, base, count, published[1], d)
    else:
        p = share_out(share, base, d, count=count, published=published)
    if p is None:
        return None, None, None
    from statsmodels.stats.proportion import proportion_confint

    if not weighted and population is None:
        limits = proportion_confint(published[0], published[1], alpha=0.05, method="wilson")
    elif n_effective is None:  # a census: no sampling error
        limits = (p, p)
    else:
        m = effective_n_out(n_effective, d)
        if m is None:
            return p, None, None
        limits = proportion_confint(p * m, m, alpha=0.05, method="wilson")
    return p, round(float(limits[0]), 4), round(float(limits[1]), 4)
