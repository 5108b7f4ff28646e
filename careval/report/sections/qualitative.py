"""The qualitative section of the report: MDG utterances, turn-taking, levels, thematic coding."""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

from careval.qualitative.evaluate import QualitativeResult
from careval.qualitative.transcripts import TranscriptResult
from careval.report import format as fmt
from careval.report.charts import PALETTE, accessible, figure
from careval.report.glossary import abbr, is_code_name, label
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, fmt_count, table_html

CODER = re.compile(r"^coder_([a-z0-9])$")
UTTER, ATTEND = PALETTE[0], "#b0b8bf"  # Okabe-Ito blue against a light grey

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


def coder_label(name: str) -> str:
    """A coder as the page names them: ``coder_a`` reads "Coder A"; a person's name stays."""
    if m := CODER.match(name):
        return f"Coder {m[1].upper()}"
    return label(name) if is_code_name(name) else name


def _coders_in(text: str, names: list[str]) -> str:
    """``text`` with each coder's name (and its quoted form ``'coder_a''s``) as its label."""
    for n in sorted(set(names), key=len, reverse=True):
        text = text.replace(f"'{n}''s", f"{coder_label(n)}'s").replace(n, coder_label(n))
    return text


def utterance_chart_svg(t: TranscriptResult, published: dict[str, Any] | None = None) -> str:
    """Horizontal bars: share of utterances by participant type (and of people attending).

    The shares are as ``t`` holds them: ``t.to_dict()``, or ``published`` when the caller has it.
    Each bar shows its share on hover; the SVG has a title and a description of the values.
    """
    d = (published if published is not None else t.to_dict())["overall"]
    width, left, bar_h, gap, top = 720, 210, 14, 10, 34
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
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect x="{left}" y="6" width="14" height="14" fill="{UTTER}"/>'
        f'<text x="{left + 18}" y="18">Share of utterances</text>',
    ]
    if has_att:
        parts.append(
            f'<rect x="{left + 180}" y="6" width="14" height="14" fill="{ATTEND}"/>'
            f'<text x="{left + 198}" y="18">Share of people attending</text>'
        )
    desc = []
    for k, r in enumerate(d):
        y = top + k * row_h
        who = role_label(r["role"])
        parts.append(
            f'<text x="{left - 8}" y="{y + bar_h - 2}" text-anchor="end">{html.escape(who)}</text>'
        )
        bars = [("share_utterances", UTTER, "of utterances")]
        if has_att:
            bars.append(("share_attendees", ATTEND, "of people attending"))
        said = []
        for j, (key, colour, what) in enumerate(bars):
            v = r.get(key)
            yy = y + j * bar_h
            if v is None:
                parts.append(
                    f'<text x="{left + 4}" y="{yy + bar_h - 2}" fill="#555">withheld</text>'
                )
                continue
            said.append(f"{fmt.pct(v, 0)} {what}")
            parts.append(
                f'<rect x="{left}" y="{yy}" width="{v * scale:.1f}" height="{bar_h - 1}" '
                f'fill="{colour}"><title>{html.escape(who)}: {fmt.pct(v)} {what}</title></rect>'
                f'<text x="{left + v * scale + 4:.1f}" y="{yy + bar_h - 2}">{fmt.pct(v, 0)}</text>'
            )
        desc.append(f"{who}: " + (", ".join(said) or "withheld"))
    parts.append("</svg>")
    return accessible(
        "".join(parts),
        "Share of utterances at MDG meetings by participant type",
        "; ".join(desc) + ".",
    )


def _utterance_caption(d: list[dict[str, Any]]) -> str:
    """The chart's finding: who spoke most, against their share of the people attending."""
    known = [r for r in d if r.get("share_utterances") is not None]
    if not known:
        return "Shares of utterances by participant type (withheld)."
    top = max(known, key=lambda r: r["share_utterances"])
    text = f"{role_label(top['role'])}s spoke {fmt.pct(top['share_utterances'], 0)} of utterances"
    if top.get("share_attendees") is not None:
        text += f" while being {fmt.pct(top['share_attendees'], 0)} of the people attending"
    return text + "."


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
            f"<h3>{abbr('MDG')} meetings: who speaks</h3>"
            f"<p>{fmt_count(d['n_meetings'])} transcribed "
            f"meetings, {fmt_count(d['n_utterances'])} utterances (one transcript line each).</p>"
        )
        blocks.append(
            figure(utterance_chart_svg(t, d), _utterance_caption(d["overall"]), "mdg-utterances")
        )
        ov = pd.DataFrame(d["overall"])
        ov["participant"] = [role_label(r) for r in ov["role"]]
        cols = ["participant", "utterances", "share_utterances", "words", "share_words"]
        if "attendees" in ov.columns:
            cols += ["attendees", "share_attendees"]
        blocks.append(
            table_html(
                ov[cols],
                labels={
                    "participant": "Participant",
                    "utterances": "Utterances",
                    "share_utterances": "% of utterances",
                    "words": "Words",
                    "share_words": "% of words",
                    "attendees": "People attending",
                    "share_attendees": "% of people attending",
                },
                table_id="mdg-utterances-table",
                text_columns=("participant",),
                kinds={c: "share" for c in cols if c.startswith("share_")},
            )
        )
        for test in d["tests"]:
            blocks.append(
                f"<p>Do the shares of utterances differ from {html.escape(test['against'])}? "
                f"Chi-square goodness of fit: &chi;&sup2; = {fmt.number(test['statistic'], 1)} "
                f"on {test['dof']} degrees of freedom, {html.escape(fmt.p_value(test['p_value']))}"
                ".</p>"
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
            lv["level"] = [str(v).capitalize() for v in lv["level"]]
            blocks.append(
                "<p>Level of discussion (coded utterances):</p>"
                + table_html(
                    lv,
                    labels={
                        "level": "Level",
                        "utterances": "Utterances",
                        "share_utterances": "% of utterances",
                        "words": "Words",
                        "share_words": "% of words",
                    },
                    table_id="mdg-levels",
                    text_columns=("level",),
                    kinds={"share_utterances": "share", "share_words": "share"},
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
                f"; counts are {html.escape(coder_label(cod.primary_coder))}'s codings"
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
                labels={
                    "code": "Code",
                    "segments": "Segments",
                    "documents": "Documents",
                    "cases": "Cases",
                },
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
                + table_html(
                    matrix, {"theme": "Theme"}, table_id="qda-framework", text_columns=("theme",)
                )
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
            + table_html(co, {"code": "Code"}, table_id="qda-cooccurrence", text_columns=("code",))
        )
        coders = [cod.primary_coder or ""]
        if d["agreement"]:
            ag = pd.DataFrame(d["agreement"])
            coders += [c for pair in ag["coders"] for c in str(pair).split(" vs ")]
            ag["coders"] = [_coders_in(str(c), coders) for c in ag["coders"]]
            method = _coders_in(d["agreement_method"], coders)
            blocks.append(
                f"<p>Inter-coder agreement ({html.escape(method)}). Cohen's kappa and "
                "Krippendorff's alpha measure how far two coders agree "
                "beyond what chance alone would give: 1 is perfect agreement, 0 no better than "
                "chance; above 0.8 is usually read as strong agreement, 0.67 to 0.8 as "
                "acceptable for tentative conclusions.</p>"
                + table_html(
                    ag,
                    labels={
                        "code": "Code",
                        "coders": "Coders",
                        "units": "Units coded",
                        "n_a": "Coded by the first",
                        "n_b": "Coded by the second",
                        "both": "Coded by both",
                        "percent_agreement": "Agreement",
                        "kappa": "Cohen's kappa",
                        "alpha": "Krippendorff's alpha",
                    },
                    table_id="qda-agreement",
                    text_columns=("code", "coders"),
                    kinds={
                        "percent_agreement": "share",
                        "kappa": "ratio",
                        "alpha": "ratio",
                        **{c: "count" for c in ("units", "n_a", "n_b", "both")},
                    },
                )
            )
        d["warnings"] = [_coders_in(w, coders) for w in d["warnings"]]
        blocks.extend(f'<p class="warning">{html.escape(w)}</p>' for w in d["warnings"])
    blocks.extend(f'<p class="warning">{html.escape(w)}</p>' for w in result.warnings)
    return Section(id="qualitative", title="Qualitative findings", html="\n".join(blocks))
