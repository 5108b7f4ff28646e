"""Surveys of a dataset: ``evaluate_surveys(dataset_dir)``, the results block and report section.

A dataset directory holds its surveys in ``surveys/``: one TOML definition per survey (see
:mod:`careval.surveys.definition`), each naming its responses file beside it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from careval.errors import ConfigError
from careval.qualitative.coding import TEXT_COLUMNS
from careval.report.publish.rules import MIN_PEOPLE, SUPPRESSED, protect_table
from careval.surveys.analysis import SurveyResult, analyse
from careval.surveys.common import (
    Note,
    count_out,
    effective_n_out,
    percent,
    plain,
    published_notes,
    records,
    share_out,
    weighted_share_out,
)
from careval.surveys.definition import load_definition

SURVEYS_DIR = "surveys"
METHOD = (
    "Share agreeing = agreeing answers / substantive answers ('don't know' and missing apart); "
    "Wilson 95% intervals (Kish effective n with weights; finite population correction when a "
    "population is given); groups compared by Pearson chi-square when all expected counts >= 5, "
    "else Fisher's exact (2x2) or Fisher-Freeman-Halton by Monte Carlo"
)


@dataclass
class SurveysResult:
    """All surveys of an evaluation, in the order of their definition files."""

    surveys: list[SurveyResult]
    warnings: list[str] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        """Every item of every survey, one row each, with a ``survey`` column first."""
        parts = [s.items.assign(survey=s.name) for s in self.surveys]
        if not parts:
            return pd.DataFrame()
        out = pd.concat(parts, ignore_index=True)
        return out[["survey", *[c for c in out.columns if c != "survey"]]]

    def summary(self) -> str:
        """Plain-text summary of every survey."""
        return "\n\n".join(s.summary() for s in self.surveys)

    def open_text(self) -> pd.DataFrame:
        """Open-text answers as uncoded segments for the qualitative layer.

        Columns ``segment_id``, ``document`` (survey/question), ``case`` (respondent),
        ``group``, ``coder`` and ``code`` (blank: not yet coded), ``text``: the coded-segments
        CSV that :func:`careval.qualitative.coding.read_segments_csv` and ``careval qda`` read.
        """
        rows = []
        for s in self.surveys:
            for r in s.open_text.itertuples():
                rows.append(
                    {
                        "segment_id": f"{s.name}-{r.question}-{r.respondent}",
                        "document": f"{s.name}/{r.question}",
                        "case": r.respondent,
                        "group": r.group,
                        "coder": "",
                        "code": "",
                        "text": r.text,
                    }
                )
        return pd.DataFrame(rows, columns=list(TEXT_COLUMNS))

    def to_dict(self, protect: bool) -> dict[str, Any]:
        """The ``surveys`` block of results.json.

        Parameters
        ----------
        protect : bool
            Disclosure control: counts 1-7 as "*", others rounded to 5, shares from fewer than
            8 people withheld (None), open-text answers withheld (only their number is given).
        """
        return {
            "method": METHOD,
            "disclosure_control": bool(protect),
            "surveys": {s.name: survey_to_dict(s, protect) for s in self.surveys},
            "warnings": published_notes(self.warnings, protect),
        }


def analyse_definitions(paths: list[Path]) -> SurveysResult:
    """Read and summarise every survey definition in ``paths`` (TOML files)."""
    results = []
    for p in paths:
        results.append(analyse(load_definition(p)))
    names = [r.name for r in results]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"survey names must be distinct; repeated: {', '.join(dup)}")
    return SurveysResult(
        results,
        [
            w.prefixed(f"{r.name}: ") if isinstance(w, Note) else f"{r.name}: {w}"
            for r in results
            for w in r.warnings
        ],
    )


def definition_files(path: Path) -> list[Path]:
    """A TOML file itself, or the ``*.toml`` files of a directory (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.toml"))
        if not files:
            raise ConfigError(f"{path}: no survey definitions (*.toml) in this directory")
        return files
    if not path.exists():
        raise ConfigError(f"{path}: survey definition not found")
    return [path]


def evaluate_surveys(dataset_dir: Path) -> SurveysResult | None:
    """Summarise the surveys of a dataset directory (``surveys/*.toml``); None when it has none."""
    folder = Path(dataset_dir) / SURVEYS_DIR
    if not folder.is_dir() or not any(folder.glob("*.toml")):
        return None
    return analyse_definitions(definition_files(folder))


def survey_to_dict(s: SurveyResult, protect: bool) -> dict[str, Any]:
    """One survey as JSON (see :meth:`SurveysResult.to_dict`).

    Under protection a share is withheld when its base is below 8, or when the count it is a
    share of, or the rest of its base, is a suppressed count (1-7); Kish's effective n is
    published like a count (withheld below 8, else rounded to 5); the response-rate table has
    secondary suppression against its "all respondents" row. A share that is published is the
    published count over the published base (so share x base gives back only the rounded
    count), and its Wilson interval is computed from those published counts; a weighted share,
    which the counts cannot give, is rounded to the precision its published unweighted base
    allows (:func:`careval.surveys.common.weighted_share_step`), and its interval is computed
    from that share and the published effective n.
    """
    d = s.definition
    weighted = bool(d.weight)
    rates = response_rates_out(s, protect)
    items = []
    for r in s.items.itertuples():
        agree = None if pd.isna(r.n_agree) else int(r.n_agree)
        n_valid = count_out(r.n_valid, protect)
        n_agree = None if agree is None else count_out(agree, protect)
        n_dk = count_out(r.n_dont_know, protect)
        share, lo, hi = shares_with_interval(
            (_num(r.share_agree), _num(r.ci_low), _num(r.ci_high)),
            base=int(r.n_valid),
            count=agree,
            published=(n_agree, n_valid),
            protect=protect,
            weighted=weighted,
            n_effective=_num(r.n_effective),
            population=d.population,
        )
        items.append(
            {
                "question": r.question,
                "text": r.text,
                "type": r.type,
                "n_respondents": count_out(r.n_respondents, protect),
                "n_valid": n_valid,
                "n_agree": n_agree,
                "share_agree": share,
                "ci_low": lo,
                "ci_high": hi,
                "n_dont_know": n_dk,
                "share_dont_know": share_out(
                    _num(r.share_dont_know),
                    r.n_valid + r.n_dont_know,
                    protect,
                    count=r.n_dont_know,
                    published=(n_dk, _published_sum(n_valid, n_dk)),
                ),
                "n_user_missing": count_out(r.n_user_missing, protect),
                "n_blank": count_out(r.n_blank, protect),
                "n_effective": effective_n_out(_num(r.n_effective), protect),
            }
        )
    n_valid_of = dict(zip(s.items["question"], s.items["n_valid"], strict=True))
    n_resp_of = dict(zip(s.items["question"], s.items["n_respondents"], strict=True))
    dist = []
    for r in s.distribution.itertuples():
        count = count_out(r.count, protect)
        n_valid = int(n_valid_of[r.question])
        n_resp = int(n_resp_of[r.question])
        of_valid = _num(r.share_of_valid)
        dist.append(
            {
                "question": r.question,
                "code": r.code,
                "label": r.label,
                "kind": r.kind,
                "role": r.role,
                "count": count,
                "share_of_valid": weighted_share_out(
                    of_valid, n_valid, protect, r.count, count_out(n_valid, protect)
                )
                if weighted
                else share_out(
                    of_valid,
                    n_valid,
                    protect,
                    count=r.count,
                    published=(count, count_out(n_valid, protect)),
                ),
                "share_of_respondents": share_out(
                    _num(r.share_of_respondents),
                    n_resp,
                    protect,
                    count=r.count,
                    published=(count, count_out(n_resp, protect)),
                ),
            }
        )
    groups = []
    for r in s.by_group.itertuples():
        n_valid = count_out(r.n_valid, protect)
        n_agree = count_out(r.n_agree, protect)
        share, lo, hi = shares_with_interval(
            (_num(r.share_agree), _num(r.ci_low), _num(r.ci_high)),
            base=int(r.n_valid),
            count=int(r.n_agree),
            published=(n_agree, n_valid),
            protect=protect,
            weighted=weighted,
            n_effective=_num(r.n_effective),
            population=None,  # the groups' intervals have no finite population correction
        )
        groups.append(
            {
                "question": r.question,
                "group": r.group,
                "label": r.label,
                "n_valid": n_valid,
                "n_agree": n_agree,
                "share_agree": share,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    comps = []
    for r in s.comparisons.itertuples():
        table = dict(r.table)
        table["counts"] = [[count_out(v, protect) for v in row] for row in table["counts"]]
        comps.append(
            {
                "question": r.question,
                "test": r.test,
                "statistic": plain(r.statistic),
                "dof": None if pd.isna(r.dof) else int(r.dof),
                "p_value": plain(r.p_value),
                "n": count_out(r.n, protect),
                "min_expected": plain(r.min_expected),
                "table": table,
                "note": r.note,
            }
        )
    out: dict[str, Any] = {
        "title": d.title,
        "data_format": d.format,
        "n_responses": count_out(s.n_responses, protect),
        "weighted": weighted,
        "population": d.population,
        "response_rates": rates,
        "items": items,
        "distribution": dist,
        "by_group": groups,
        "comparisons": comps,
        "n_open_text_answers": count_out(len(s.open_text), protect),
        "warnings": published_notes(s.warnings, protect),
    }
    if not protect:
        out["open_text"] = records(s.open_text)
    return out


def response_rates_out(s: SurveyResult, protect: bool) -> list[dict[str, Any]]:
    """The response-rate table as published.

    Under protection the numbers invited and responding are counts (rule 1) with secondary
    suppression against the "all respondents" row (rule 2), so no suppressed group can be
    worked out from the total; a response rate is withheld when its group's responses are
    suppressed (primary or secondary) or fewer than 8 were invited; a rate that is published is
    the published number responding over the published number invited.
    """
    df = s.response_rates.copy()
    df["response_rate"] = pd.Series([_num(v) for v in df["response_rate"]], dtype=object)
    df["invited"] = pd.Series([None if pd.isna(v) else int(v) for v in df["invited"]], dtype=object)
    df["responded"] = [int(v) for v in df["responded"]]
    if protect:
        df["_total"] = [i == len(df) - 1 for i in range(len(df))]  # the last row: all
        out = protect_table(
            df,
            ["invited", "responded"],
            group_margin=("_total", (), (False,), True),
            rate_counts={"response_rate": ["responded"]},
        )
    else:
        out = df
    rows = []
    for r, true in zip(out.itertuples(), df.itertuples(), strict=True):
        rows.append(
            {
                "group": r.group,
                "label": r.label,
                "invited": None if true.invited is None else r.invited,
                "responded": r.responded,
                "response_rate": None
                if true.invited is None or r.response_rate is None
                else share_out(
                    _num(r.response_rate),
                    int(true.invited),
                    protect,
                    count=true.responded,
                    published=(r.responded, r.invited),
                ),
            }
        )
    return rows


def shares_with_interval(
    values: tuple[float | None, float | None, float | None],
    *,
    base: int,
    count: int | None,
    published: tuple[Any, Any],
    protect: bool,
    weighted: bool,
    n_effective: float | None,
    population: int | None,
) -> tuple[float | None, float | None, float | None]:
    """A share and its Wilson 95% interval as published.

    Parameters
    ----------
    values
        The share, lower and upper limit from the true data (used as they are unprotected).
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

    Under protection an unweighted share is published count / published base, and its
    interval is statsmodels' Wilson interval on those counts (with a finite population, on that
    share and the published effective n); a weighted share is rounded to the precision its
    published base allows and its interval is the Wilson interval on it and the published
    effective n. The interval is withheld with the share, and when the effective n is.
    """
    share, lo, hi = values
    if not protect:
        out = partial(share_out, base=base, protect=False, count=count)
        return out(share), out(lo), out(hi)
    if weighted:
        p = weighted_share_out(share, base, True, count, published[1])
    else:
        p = share_out(share, base, True, count=count, published=published)
    if p is None:
        return None, None, None
    from statsmodels.stats.proportion import proportion_confint

    if not weighted and population is None:
        limits = proportion_confint(published[0], published[1], alpha=0.05, method="wilson")
    elif n_effective is None:  # a census: no sampling error
        limits = (p, p)
    else:
        m = effective_n_out(n_effective, True)
        if m is None:
            return p, None, None
        limits = proportion_confint(p * m, m, alpha=0.05, method="wilson")
    return p, round(float(limits[0]), 4), round(float(limits[1]), 4)


def _published_sum(a: Any, b: Any) -> Any:
    """The sum of two published counts (``*`` when either is suppressed)."""
    return a + b if isinstance(a, int) and isinstance(b, int) else SUPPRESSED


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


# --------------------------------------------------------------------------------- the section

# Diverging palette (ColorBrewer RdBu, 5 classes): disagree red, neutral grey, agree blue.
_NEG = ["#ca0020", "#f4a582"]
_NEUTRAL = "#d9d9d9"
_POS = ["#92c5de", "#0571b0"]


def likert_chart_svg(
    s: SurveyResult, protect: bool, published: dict[str, Any] | None = None
) -> str:
    """A diverging stacked bar chart of the likert items of one survey, as inline SVG.

    Disagreeing answers extend left of the centre line, agreeing answers right, neutral answers
    straddle it; shares are of substantive answers, as published (:func:`survey_to_dict`, or
    ``published`` when the caller has it already). Under disclosure control an item is listed
    without a bar when it has fewer than 8 answers, or when an answer's share is withheld (given
    by 1-7 people, or all but 1-7): the bar would show it.
    """
    items = s.items[s.items["type"] == "likert"]
    if items.empty:
        return ""
    width, left, right, bar_h, gap, top = 760, 300, 40, 18, 8, 46
    plot_w = width - left - right
    height = top + len(items) * (bar_h + gap) + 20
    cx = left + plot_w / 2
    scale = plot_w / 2  # 100% each side
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(s.definition.title)}'
        ': answers per item" font-family="sans-serif" font-size="11">'
    ]
    legend_x = left
    for colour, text in ((_NEG[0], "Disagree"), (_NEUTRAL, "Neutral"), (_POS[1], "Agree")):
        parts.append(
            f'<rect x="{legend_x}" y="8" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 16}" y="18">{text}</text>'
        )
        legend_x += 90
    for pct in (-100, -50, 0, 50, 100):
        x = cx + pct / 100 * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 16}" '
            f'stroke="#bbb" stroke-width="{1.2 if pct == 0 else 0.5}"/>'
            f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle">{abs(pct)}%</text>'
        )
    if published is None:
        published = survey_to_dict(s, protect)
    shown = {i["question"]: i for i in published["items"]}
    dist = pd.DataFrame(
        [x for x in published["distribution"] if x["kind"] == "answer"],
        columns=["question", "label", "role", "count", "share_of_valid"],
    )
    for k, r in enumerate(items.itertuples()):
        y = top + k * (bar_h + gap)
        label = r.text if len(r.text) <= 46 else r.text[:45] + "\u2026"
        parts.append(
            f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">'
            f"<title>{html.escape(r.text)}</title>{html.escape(label)}</text>"
        )
        if r.n_valid == 0 or (protect and r.n_valid < MIN_PEOPLE):
            parts.append(
                f'<text x="{cx + 6:.1f}" y="{y + 13}" fill="#666">withheld (fewer than 8)</text>'
            )
            continue
        rows = dist[dist["question"] == r.question]
        if rows["share_of_valid"].isna().any():  # an answer given by 1-7 people (protected)
            parts.append(
                f'<text x="{cx + 6:.1f}" y="{y + 13}" fill="#666">withheld (small counts)</text>'
            )
            continue
        neg = rows[rows["role"] == "disagree"]
        neu = rows[rows["role"] == "neutral"]
        pos = rows[rows["role"] == "agree"]
        half_neutral = float(neu["share_of_valid"].sum()) / 2
        x = cx - (float(neg["share_of_valid"].sum()) + half_neutral) * scale
        segs = [
            (row, _NEG[min(i, 1)] if len(neg) > 1 else _NEG[1])
            for i, row in enumerate(neg.itertuples())
        ]
        segs += [(row, _NEUTRAL) for row in neu.itertuples()]
        segs += [
            (row, _POS[min(i, 1)] if len(pos) > 1 else _POS[0])
            for i, row in enumerate(pos.itertuples())
        ]
        for row, colour in segs:
            w = float(row.share_of_valid) * scale
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                f"<title>{html.escape(row.label)}: {100 * row.share_of_valid:.1f}%</title></rect>"
            )
            x += w
        agree = shown[r.question]["share_agree"]
        parts.append(
            f'<text x="{width - right + 4}" y="{y + 13}" font-size="10">{100 * agree:.0f}%</text>'
            if agree is not None
            else ""
        )
    parts.append("</svg>")
    return "".join(parts)


def surveys_section(result: SurveysResult, protect: bool) -> Any:
    """The report section: response rates, item tables with intervals, charts, comparisons.

    Returns
    -------
    careval.report.page.Section
    """
    from careval.report.page import Section, fmt_count, table_html

    blocks = [
        "<p>Share agreeing is of substantive answers: &lsquo;don&rsquo;t know&rsquo; and missing "
        "answers are counted apart. Intervals are Wilson 95% intervals. "
        + (
            "Counts 1&ndash;7 are shown as *, others rounded to 5; percentages are computed "
            "from the rounded counts (weighted ones are rounded to the precision their base "
            "allows) and withheld when from fewer than 8 people or a count shown as *."
            if protect
            else ""
        )
        + "</p>"
    ]
    for s in result.surveys:
        d = survey_to_dict(s, protect)
        blocks.append(
            f'<h3 id="survey-{html.escape(s.name)}">{html.escape(s.definition.title)}</h3>'
        )
        rates = pd.DataFrame(d["response_rates"])
        rates["response_rate"] = [
            "\u2013" if inv is None or pd.isna(inv) else percent(v)
            for v, inv in zip(rates["response_rate"], rates["invited"], strict=True)
        ]
        blocks.append(
            table_html(
                rates[["label", "invited", "responded", "response_rate"]],
                labels={"label": "Group", "response_rate": "Response rate"},
                table_id=f"survey-{s.name}-rates",
                text_columns=("label", "response_rate"),
            )
        )
        items = pd.DataFrame(d["items"])
        if not items.empty:
            items["agree"] = [percent(v) for v in items["share_agree"]]
            items["95% CI"] = [
                f"{percent(lo)} to {percent(hi)}" if lo is not None and hi is not None else "\u2013"
                for lo, hi in zip(items["ci_low"], items["ci_high"], strict=True)
            ]
            items["don't know"] = [percent(v) for v in items["share_dont_know"]]
            items["missing"] = [
                _published_sum(a, b)
                for a, b in zip(items["n_user_missing"], items["n_blank"], strict=True)
            ]
            blocks.append(likert_chart_svg(s, protect, d))
            blocks.append(
                table_html(
                    items[["text", "n_valid", "agree", "95% CI", "don't know", "missing"]],
                    labels={"text": "Item", "n_valid": "Answers"},
                    table_id=f"survey-{s.name}-items",
                    text_columns=("text", "agree", "95% CI", "don't know", "missing"),
                )
            )
        comps = [c for c in d["comparisons"] if c["test"]]
        if comps:
            texts = dict(zip(s.items["question"], s.items["text"], strict=True))
            frame = pd.DataFrame(
                {
                    "item": [texts.get(c["question"], c["question"]) for c in comps],
                    "test": [c["test"] for c in comps],
                    "p_value": [_p(c["p_value"]) for c in comps],
                }
            )
            blocks.append(
                "<p>Differences between respondent groups (share agreeing, or the answer "
                "distribution for other items):</p>"
                + table_html(
                    frame,
                    labels={"p_value": "p-value"},
                    table_id=f"survey-{s.name}-comparisons",
                    text_columns=("item", "test", "p_value"),
                )
            )
        if s.open_text.shape[0]:
            if protect:
                blocks.append(
                    f"<p>{fmt_count(d['n_open_text_answers'])} open-text answers (withheld under "
                    "disclosure control; see the qualitative analysis).</p>"
                )
            else:
                quotes = "".join(
                    f"<li>{html.escape(r.text)} <small>({html.escape(str(r.group))})</small></li>"
                    for r in s.open_text.head(10).itertuples()
                )
                blocks.append(
                    f"<p>Open-text answers ({len(s.open_text):,}; the first 10):</p>"
                    f"<ul>{quotes}</ul>"
                )
        for w in d["warnings"]:
            blocks.append(f'<p class="warning">{html.escape(w)}</p>')
    return Section(id="surveys", title="Surveys", html="\n".join(blocks))


def _p(v: Any) -> str:
    if v is None:
        return "\u2013"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"
