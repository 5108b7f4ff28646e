"""The surveys section of the report: response rates, items with intervals, likert charts."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, fmt_count, table_html
from careval.report.publish.rules import smallest_published, suppressed_range
from careval.report.publish.shares import published_sum
from careval.surveys.common import percent
from careval.surveys.evaluate import SurveysResult
from careval.surveys.result import SurveyResult

# Diverging palette (ColorBrewer RdBu, 5 classes): disagree red, neutral grey, agree blue.
_NEG = ["#ca0020", "#f4a582"]
_NEUTRAL = "#d9d9d9"
_POS = ["#92c5de", "#0571b0"]


def likert_chart_svg(
    s: SurveyResult,
    published: dict[str, Any] | None = None,
    disclosure: DisclosureSettings | None = None,
) -> str:
    """A diverging stacked bar chart of the likert items of one survey, as inline SVG.

    Disagreeing answers extend left of the centre line, agreeing answers right, neutral answers
    straddle it; shares are of substantive answers, as ``s`` holds them (``s.to_dict()``, or
    ``published`` when the caller has it already). Under disclosure control an item is listed
    without a bar when it has fewer than 8 answers, or when an answer's share is withheld (given
    by 1-7 people, or all but 1-7): the bar would show it. The numbers are those of
    ``disclosure`` (the defaults when not given).
    """
    fewest = smallest_published(disclosure or DisclosureSettings())
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
        published = s.to_dict()
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
        if isinstance(r.n_valid, str) or r.n_valid == 0:  # 1-7 answers are "*" when published
            parts.append(
                f'<text x="{cx + 6:.1f}" y="{y + 13}" fill="#666">'
                f"withheld (fewer than {fewest})</text>"
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


def section(result: SurveysResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The report section: response rates, item tables with intervals, charts, comparisons.

    It shows ``result`` as it is: on real data the published copy
    (:func:`careval.report.publish.surveys.publish_surveys`).
    """
    protect, dc = result.disclosure_control, ctx.disclosure
    blocks = [
        "<p>Share agreeing is of substantive answers: &lsquo;don&rsquo;t know&rsquo; and missing "
        "answers are counted apart. Intervals are Wilson 95% intervals. "
        + (
            f"Counts {suppressed_range(dc, '&ndash;')} are shown as *, others rounded to "
            f"{dc.rounding_base}; percentages are computed from the rounded counts (weighted "
            "ones are rounded to the precision their base allows) and withheld when from "
            f"fewer than {smallest_published(dc)} people or a count shown as *."
            if protect
            else ""
        )
        + "</p>"
    ]
    for s in result.surveys:
        d = s.to_dict()
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
                published_sum(a, b)
                for a, b in zip(items["n_user_missing"], items["n_blank"], strict=True)
            ]
            blocks.append(likert_chart_svg(s, d, dc))
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
        if d["n_open_text_answers"]:
            if s.open_text is None:
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
