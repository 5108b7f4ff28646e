"""The flow diagram drawn as SVG by hand: the main column of boxes with arrows from parent
to child, each box's exclusions (and additions) beside it with their reasons; the control arm
below in its own colour. Text stays text (selectable, read by screen readers), and the
description lists every box and exclusion in words (:func:`careval.report.charts.accessible`).
"""

from __future__ import annotations

import html
from typing import Any

from careval.disclosure import DisclosureSettings
from careval.report import format as fmt
from careval.report.charts import GREY, PALETTE, accessible, figure
from careval.report.publish.model import Published
from careval.report.publish.rules import SUPPRESSED
from careval.report.sections.flow import Box, count_of, coverage, flow_boxes

_W, _BOX_W, _EX_X, _EX_W, _ROW, _GAP = 760, 330, 400, 350, 54, 26


def _text(x: float, y: float, s: str, size: int = 12, bold: bool = False) -> str:
    weight = " font-weight='bold'" if bold else ""
    return (
        f"<text x='{x:.0f}' y='{y:.0f}' font-size='{size}' font-family='sans-serif'"
        f"{weight} fill='#222'>{html.escape(s)}</text>"
    )


def _lines(s: str, width: int = 48) -> list[str]:
    words, out, cur = s.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            out.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return [*out, cur] if cur else out


def _shown(v: Any) -> str:
    return fmt.count(v) if count_of(v) is not None else (SUPPRESSED if v == SUPPRESSED else "–")


def flow_svg(boxes: list[Box]) -> str:
    """The boxes as an accessible SVG: the main column, exclusions beside with their reasons."""
    parts: list[str] = []
    y = 10
    pos: dict[str, tuple[int, int]] = {}
    prev: Box | None = None
    for b in boxes:
        if b.arm == "control" and prev is not None and prev.arm != "control":
            y += 16
        lines = _lines(b.label)
        h = max(_ROW, 22 + 15 * len(lines))
        colour = PALETTE[0] if b.arm == "treated" else PALETTE[1]
        if prev is not None and b.parent == prev.id:
            py = pos[prev.id][1]
            parts.append(
                f"<line x1='{20 + _BOX_W / 2}' y1='{py}' x2='{20 + _BOX_W / 2}' y2='{y}' "
                f"stroke='{GREY}' stroke-width='1.5' marker-end='url(#flow-arrow)'/>"
            )
        parts.append(
            f"<g class='flow-box' data-box='{b.id}' data-path='{' '.join(b.paths)}' "
            f"data-count='{b.count}'>"
            f"<rect x='20' y='{y}' width='{_BOX_W}' height='{h}' rx='4' fill='#fff' "
            f"stroke='{colour}' stroke-width='2'/>"
            + "".join(_text(30, y + 17 + 15 * i, t) for i, t in enumerate(lines))
            + _text(30, y + 17 + 15 * len(lines), _shown(b.count), 13, True)
            + "</g>"
        )
        side = [("−", s) for s in b.exclusions] + [("+", s) for s in b.additions]
        ey = y
        for sign, s in side:
            sl = _lines(f"{sign} {_shown(s.count)} {s.reason}", 50)
            eh = 10 + 15 * len(sl)
            parts.append(
                f"<line x1='{20 + _BOX_W}' y1='{ey + eh / 2}' x2='{_EX_X}' y2='{ey + eh / 2}' "
                f"stroke='{GREY}' stroke-dasharray='3 3'/>"
                f"<g class='flow-exclusion'><rect x='{_EX_X}' y='{ey}' width='{_EX_W}' "
                f"height='{eh}' rx='3' fill='#f4f4f4' stroke='{GREY}'/>"
                + "".join(_text(_EX_X + 8, ey + 16 + 15 * i, t, 11) for i, t in enumerate(sl))
                + "</g>"
            )
            ey += eh + 4
        bottom = max(y + h, ey)
        pos[b.id] = (y, y + h)
        y = bottom + _GAP
        prev = b
    defs = (
        "<defs><marker id='flow-arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
        f"markerHeight='7' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='{GREY}'/></marker>"
        "</defs>"
    )
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}px' height='{y}px' "
        f"class='flow'>{defs}{''.join(parts)}</svg>"
    )
    desc = "; ".join(
        f"{b.label}: {_shown(b.count)}"
        + "".join(f" (minus {_shown(s.count)} {s.reason})" for s in b.exclusions)
        + "".join(f" (plus {_shown(s.count)} {s.reason})" for s in b.additions)
        for b in boxes
    )
    return accessible(svg, "Flow of people through the evaluation", desc)


def flow_figure(
    pub: Published,
    programme_areas: tuple[str, ...] = ("pilot",),
    disclosure: DisclosureSettings | None = None,
) -> str:
    """The flow diagram as a numbered figure with a caption that states what it shows."""
    boxes = flow_boxes(pub, programme_areas, disclosure)
    if not boxes:
        return ""
    by = {b.id: b for b in boxes}
    share, planned, elig = coverage(pub, programme_areas)
    caption = "How the people counted in this report relate to each other."
    if share is not None:
        caption = (
            f"Of the {fmt.count(elig)} people eligible on the reference date, "
            f"{fmt.count(planned)} ({fmt.pct(share)}) were care-planned by the end of the data"
        )
        if "matched" in by:
            caption += (
                f"; {fmt.count(by['matched'].count)} care-planned people entered the matched study"
            )
        caption += "."
    note = (
        "<p class='note'>Every box equals the box above it minus the exclusions beside it"
        + (
            " (plus the care-planned who were not eligible on the reference date)"
            if "planned_all" in by
            else ""
        )
        + ". Under disclosure control the counts are the published, rounded ones, so a box "
        "may differ from that sum by the rounding.</p>"
    )
    return figure(flow_svg(boxes), caption, "flow-diagram") + note
