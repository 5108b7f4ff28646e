"""The surveys section of the report: response rates, items with intervals, likert charts."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.report import format as fmt
from careval.report.charts import accessible, figure
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, fmt_count, table_html
from careval.report.publish.rules import smallest_published, suppressed_range
from careval.report.publish.shares import published_sum
from careval.surveys.common import percent
from careval.surveys.evaluate import SurveysResult
from careval.surveys.result import SurveyResult

# A colour-blind-safe diverging palette (ColorBrewer PuOr, 5 classes, with a grey centre):
# strong and mild disagreement orange, neutral grey, mild and strong agreement purple. Orange
# against purple stays apart under protanopia, deuteranopia and tritanopia.
LIKERT_SHADES: tuple[str, ...] = ("#e66101", "#fdb863", "#d0d0d0", "#b2abd2", "#5e3c99")
_NEG = list(LIKERT_SHADES[:2])
_NEUTRAL = LIKERT_SHADES[2]
_POS = list(LIKERT_SHADES[3:])
FONT = 12  # px: 9 pt


def _shade(role: str, i: int, n: int) -> str:
    """The colour of the ``i``-th of ``n`` answers of ``role`` (in the scale's order, from
    strong disagreement to strong agreement): the end of the scale dark, the rest light."""
    if role == "neutral":
        return _NEUTRAL
    if role == "disagree":
        return _NEG[0] if n > 1 and i == 0 else _NEG[1]
    return _POS[1] if n > 1 and i == n - 1 else _POS[0]


def likert_chart_svg(
    s: SurveyResult,
    published: dict[str, Any] | None = None,
    disclosure: DisclosureSettings | None = None,
) -> str:
    """A diverging stacked bar chart of the likert items of one survey, as inline SVG.

    Disagreeing answers extend left of the centre line, agreeing answers right, neutral answers
    straddle it; shares are of substantive answers, as ``s`` holds them (``s.to_dict()``, or
    ``published`` when the caller has it already). The legend has one entry per shade drawn,
    named by the answers it shows; each segment shows its answer and share on hover. Under
    disclosure control an item is listed without a bar when it has fewer than 8 answers, or
    when an answer's share is withheld (given by 1-7 people, or all but 1-7): the bar would
    show it. The numbers are those of ``disclosure`` (the defaults when not given).
    """
    fewest = smallest_published(disclosure or DisclosureSettings())
    items = s.items[s.items["type"] == "likert"]
    if items.empty:
        return ""
    if published is None:
        published = s.to_dict()
    shown = {i["question"]: i for i in published["items"]}
    dist = pd.DataFrame(
        [x for x in published["distribution"] if x["kind"] == "answer"],
        columns=["question", "label", "role", "count", "share_of_valid"],
    )
    width, left, right, bar_h, gap, top = 760, 330, 48, 20, 8, 58
    plot_w = width - left - right
    height = top + len(items) * (bar_h + gap) + 24
    cx = left + plot_w / 2
    scale = plot_w / 2  # 100% each side
    body: list[str] = []
    desc: list[str] = []
    legend: dict[str, list[str]] = {}
    for pct in (-100, -50, 0, 50, 100):
        x = cx + pct / 100 * scale
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 20}" '
            f'stroke="#bbb" stroke-width="{1.2 if pct == 0 else 0.5}"/>'
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{abs(pct)}%</text>'
        )
    for k, r in enumerate(items.itertuples()):
        y = top + k * (bar_h + gap)
        label = r.text if len(r.text) <= 44 else r.text[:43] + "\u2026"
        body.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">'
            f"<title>{html.escape(r.text)}</title>{html.escape(label)}</text>"
        )
        if isinstance(r.n_valid, str) or r.n_valid == 0:  # 1-7 answers are "*" when published
            body.append(
                f'<text x="{cx + 6:.1f}" y="{y + 15}" fill="#555">'
                f"withheld (fewer than {fewest})</text>"
            )
            desc.append(f"{r.text}: withheld")
            continue
        rows = dist[dist["question"] == r.question]
        if rows["share_of_valid"].isna().any():  # an answer given by 1-7 people (protected)
            body.append(
                f'<text x="{cx + 6:.1f}" y="{y + 15}" fill="#555">withheld (small counts)</text>'
            )
            desc.append(f"{r.text}: withheld")
            continue
        by_role = {role: rows[rows["role"] == role] for role in ("disagree", "neutral", "agree")}
        half_neutral = float(by_role["neutral"]["share_of_valid"].sum()) / 2
        x = cx - (float(by_role["disagree"]["share_of_valid"].sum()) + half_neutral) * scale
        for role in ("disagree", "neutral", "agree"):
            part = by_role[role]
            for i, row in enumerate(part.itertuples()):
                colour = _shade(role, i, len(part))
                legend.setdefault(colour, [])
                if row.label not in legend[colour]:
                    legend[colour].append(row.label)
                w = float(row.share_of_valid) * scale
                body.append(
                    f'<rect class="seg" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                    f'fill="{colour}"><title>{html.escape(row.label)}: '
                    f"{fmt.percent(100 * row.share_of_valid)}</title></rect>"
                )
                x += w
        agree = shown[r.question]["share_agree"]
        if agree is not None:
            body.append(f'<text x="{width - right + 4}" y="{y + 15}">{fmt.pct(agree, 0)}</text>')
            desc.append(f"{r.text}: {fmt.pct(agree, 0)} agree")
    head: list[str] = []
    legend_x = float(left - 320)
    for colour in sorted(legend, key=LIKERT_SHADES.index):
        text = " / ".join(legend[colour])
        head.append(
            f'<g class="legend-entry"><rect x="{legend_x}" y="10" width="14" height="14" '
            f'fill="{colour}" stroke="#666" stroke-width="0.5"/>'
            f'<text x="{legend_x + 18}" y="22">{html.escape(text)}</text></g>'
        )
        legend_x += 34 + 6.6 * len(text)
    head.append(f'<text x="{width - right + 4}" y="{top - 12}" font-weight="bold">Agree</text>')
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{FONT}">'
        + "".join(head + body)
        + "</svg>"
    )
    title = f"{s.definition.title}: answers per item"
    return accessible(
        svg,
        title,
        "Share of substantive answers from strong disagreement (left) to strong agreement "
        "(right), neutral answers centred. " + "; ".join(desc) + ".",
    )


def likert_figure(s: SurveyResult, d: dict[str, Any], dc: DisclosureSettings) -> str:
    """The likert chart in a figure whose caption names the most and least agreed items."""
    chart = likert_chart_svg(s, d, dc)
    if not chart:
        return ""
    likert = set(s.items.loc[s.items["type"] == "likert", "question"])
    agree = [
        (i["share_agree"], i["text"])
        for i in d["items"]
        if i["question"] in likert and i["share_agree"] is not None
    ]
    if agree:
        hi, lo = max(agree), min(agree)
        caption = (
            f"Most agreed: \u2018{hi[1]}\u2019 ({fmt.pct(hi[0], 0)} of answers); least: "
            f"\u2018{lo[1]}\u2019 ({fmt.pct(lo[0], 0)})."
        )
    else:
        caption = "Every item's shares are withheld (small counts)."
    return figure(chart, caption, f"survey-{s.name}-likert")


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
        rates = rates.astype(object).where(rates.notna(), None)  # unknown: a dash, not "nan"
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
            blocks.append(likert_figure(s, d, dc))
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
                    "p_value": [c["p_value"] for c in comps],
                }
            )
            frame = frame.astype(object).where(frame.notna(), None)
            blocks.append(
                "<p>Differences between respondent groups (share agreeing, or the answer "
                "distribution for other items):</p>"
                + table_html(
                    frame,
                    labels={"item": "Item", "test": "Test", "p_value": "p"},
                    table_id=f"survey-{s.name}-comparisons",
                    text_columns=("item", "test"),
                    kinds={"p_value": "p"},
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
