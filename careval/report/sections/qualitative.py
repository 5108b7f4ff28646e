"""The qualitative section of the report: MDG utterances, turn-taking, levels, thematic coding."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from careval.qualitative.evaluate import QualitativeResult
from careval.qualitative.transcripts import TranscriptResult
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, fmt_count, table_html
from careval.surveys.common import percent

ROLE_LABELS = {
    "chair": "Chair",
    "presenting_gp": "Presenting GP",
    "non_presenting_gp": "Non-presenting GP",
    "consultant": "Consultant",
    "nurse": "Nurse",
    "social_worker": "Social worker",
    "allied_health_professional": "Allied health professional",
    "mental_health": "Mental health professional",
    "other": "Other",
}


def role_label(role: str) -> str:
    """A readable participant type."""
    return ROLE_LABELS.get(role, role.replace("_", " ").capitalize())


def utterance_chart_svg(t: TranscriptResult, published: dict[str, Any] | None = None) -> str:
    """Horizontal bars: share of utterances by participant type (and of people attending).

    The shares are as ``t`` holds them: ``t.to_dict()``, or ``published`` when the caller has it.
    """
    d = (published if published is not None else t.to_dict())["overall"]
    width, left, bar_h, gap, top = 720, 200, 12, 10, 30
    has_att = any("share_attendees" in r for r in d)
    row_h = bar_h * (2 if has_att else 1) + gap
    height = top + len(d) * row_h + 24
    plot_w = width - left - 60
    top_share = max(
        [r.get("share_utterances") or 0 for r in d]
        + [r.get("share_attendees") or 0 for r in d]
        + [0.01]
    )
    scale = plot_w / top_share
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Share of utterances by '
        'participant type" font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="6" width="12" height="12" fill="#005eb8"/>'
        f'<text x="{left + 16}" y="16">Share of utterances</text>',
    ]
    if has_att:
        parts.append(
            f'<rect x="{left + 160}" y="6" width="12" height="12" fill="#aeb7bd"/>'
            f'<text x="{left + 176}" y="16">Share of people attending</text>'
        )
    for k, r in enumerate(d):
        y = top + k * row_h
        parts.append(
            f'<text x="{left - 8}" y="{y + bar_h - 2}" text-anchor="end">'
            f"{html.escape(role_label(r['role']))}</text>"
        )
        bars = [("share_utterances", "#005eb8")]
        if has_att:
            bars.append(("share_attendees", "#aeb7bd"))
        for j, (key, colour) in enumerate(bars):
            v = r.get(key)
            yy = y + j * bar_h
            if v is None:
                parts.append(
                    f'<text x="{left + 4}" y="{yy + bar_h - 2}" fill="#666">withheld</text>'
                )
                continue
            parts.append(
                f'<rect x="{left}" y="{yy}" width="{v * scale:.1f}" height="{bar_h - 1}" '
                f'fill="{colour}"/><text x="{left + v * scale + 4:.1f}" y="{yy + bar_h - 2}" '
                f'font-size="10">{100 * v:.0f}%</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def section(result: QualitativeResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The report section: MDG utterances, turn-taking, levels, then the thematic coding.

    It shows ``result`` as it is: on real data the published copy
    (:func:`careval.report.publish.qualitative.publish_qualitative`). Nothing here depends on
    ``ctx`` (the page's context): the section states no disclosure numbers and no seed figure.
    """
    protect = result.disclosure_control
    blocks: list[str] = []
    t = result.transcripts
    if t is not None:
        d = t.to_dict()
        blocks.append(
            f"<h3>MDG meetings: who speaks</h3><p>{fmt_count(d['n_meetings'])} transcribed "
            f"meetings, {fmt_count(d['n_utterances'])} utterances (one transcript line each).</p>"
        )
        blocks.append(utterance_chart_svg(t, d))
        ov = pd.DataFrame(d["overall"])
        ov["participant"] = [role_label(r) for r in ov["role"]]
        cols = ["participant", "utterances", "share_utterances", "words", "share_words"]
        if "attendees" in ov.columns:
            cols += ["attendees", "share_attendees"]
        for c in [c for c in cols if c.startswith("share_")]:
            ov[c] = [percent(v) for v in ov[c]]
        blocks.append(
            table_html(
                ov[cols],
                labels={
                    "share_utterances": "% utterances",
                    "share_words": "% words",
                    "attendees": "people attending",
                    "share_attendees": "% attending",
                },
                table_id="mdg-utterances",
                text_columns=("participant", *[c for c in cols if c.startswith("share_")]),
            )
        )
        for test in d["tests"]:
            blocks.append(
                f"<p>Chi-square goodness of fit against {html.escape(test['against'])}: "
                f"&chi;&sup2; = {test['statistic']:.1f} on {test['dof']} df, "
                f"p {_p(test['p_value'])}.</p>"
            )
        turns = pd.DataFrame(d["turns"]).T
        if not turns.empty:
            turns.index = [role_label(r) for r in turns.index]
            turns.columns = [role_label(c) for c in turns.columns]
            turns = turns.reset_index().rename(columns={"index": "speaker \u2192 next"})
            blocks.append(
                "<p>Who follows whom (rows: a speaker; columns: the next speaker):</p>"
                + table_html(turns, table_id="mdg-turns", text_columns=("speaker \u2192 next",))
            )
        if d["levels"]:
            lv = pd.DataFrame(d["levels"]["levels"])
            for c in ("share_utterances", "share_words"):
                lv[c] = [percent(v) for v in lv[c]]
            blocks.append(
                "<p>Level of discussion (coded utterances):</p>"
                + table_html(
                    lv,
                    labels={"share_utterances": "% utterances", "share_words": "% words"},
                    table_id="mdg-levels",
                    text_columns=("level", "share_utterances", "share_words"),
                )
            )
        blocks.extend(f'<p class="warning">{html.escape(w)}</p>' for w in d["warnings"])
    cod = result.coding
    if cod is not None:
        d = cod.to_dict()
        blocks.append(
            f"<h3>Thematic coding</h3><p>{fmt_count(d['n_segments'])} coded segments; "
            f"{len(cod.codebook.codes)} codes in {len(cod.codebook.themes)} themes"
            + (
                f"; counts are {html.escape(cod.primary_coder)}'s codings"
                if cod.primary_coder
                else ""
            )
            + ".</p>"
        )
        freq = pd.DataFrame(d["frequencies"])
        freq["code"] = [
            ("\u2003" * dep) + name for name, dep in zip(freq["code"], freq["depth"], strict=True)
        ]
        show = [
            "code",
            "segments",
            "documents",
            "cases",
            *[k for k in freq.columns if k.startswith("group:")],
        ]
        blocks.append(
            table_html(
                freq[show].rename(columns=lambda k: k.removeprefix("group:")),
                table_id="qda-frequencies",
                text_columns=("code",),
            )
        )
        fw = pd.DataFrame(d["framework"])
        if not fw.empty:
            matrix = fw.pivot(index="theme", columns="column", values="segments")
            matrix = matrix.reindex(cod.codebook.themes).reset_index()
            blocks.append(
                f"<p>Framework matrix (themes &times; {html.escape(cod.by)}s, segments):</p>"
                + table_html(matrix, table_id="qda-framework", text_columns=("theme",))
            )
            if not protect:
                quotes = []
                for rec in d["framework"]:
                    if rec["items"]:
                        first = rec["items"][0]
                        quotes.append(
                            f"<li><b>{html.escape(rec['theme'])}</b> / "
                            f"{html.escape(rec['column'])}: &ldquo;"
                            f"{html.escape(first['text'][:200])}&rdquo;</li>"
                        )
                if quotes:
                    blocks.append(
                        "<p>An example segment per cell:</p><ul>" + "".join(quotes[:20]) + "</ul>"
                    )
        co = pd.DataFrame(d["cooccurrence"]).T.reset_index().rename(columns={"index": "code"})
        blocks.append(
            "<p>Code co-occurrence (segments coded with both):</p>"
            + table_html(co, table_id="qda-cooccurrence", text_columns=("code",))
        )
        if d["agreement"]:
            ag = pd.DataFrame(d["agreement"])
            ag["percent_agreement"] = [percent(v) for v in ag["percent_agreement"]]
            blocks.append(
                f"<p>Inter-coder agreement ({html.escape(d['agreement_method'])}):</p>"
                + table_html(
                    ag,
                    table_id="qda-agreement",
                    text_columns=("code", "coders", "percent_agreement"),
                )
            )
        blocks.extend(f'<p class="warning">{html.escape(w)}</p>' for w in d["warnings"])
    blocks.extend(f'<p class="warning">{html.escape(w)}</p>' for w in result.warnings)
    return Section(id="qualitative", title="Qualitative findings", html="\n".join(blocks))


def _p(v: float) -> str:
    return "< 0.001" if v < 0.001 else f"= {v:.3f}"
