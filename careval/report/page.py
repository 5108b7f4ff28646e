"""Render result blocks into one self-contained HTML page (inline SVG charts, no network)."""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import resources

import matplotlib.pyplot as plt
import pandas as pd
from jinja2 import Environment
from markupsafe import Markup

from careval.data.areas import POOL_SEPARATOR
from careval.disclosure import DisclosureSettings
from careval.report import format as fmt
from careval.report.charts import (
    colours,
    hover_points,
    number_figures,
    svg_document,
    tidy,
    zero_based,
)
from careval.report.glossary import label
from careval.report.publish.rules import smallest_published, suppressed_range

# The labels of the seed's areas (the names the synthetic generator writes).
AREA_LABELS = {
    "pilot": "Integrated care pilot",
    "inner_nwl_other": "Inner NWL (other)",
    "outer_nwl": "Outer NWL",
    "south_west_london": "South-west London",
    "rest_of_england": "Rest of England",
}
# How running text names the seed's areas where it differs from the label.
AREA_PROSE = {"pilot": "the pilot", "rest_of_england": "the rest of England"}
# Sections for the reader who wants them, folded under their heading (opened for printing).
FOLDED = frozenset({"methods", "provenance", "glossary", "appendix"})
IDENTIFIER = re.compile(r"^[a-z0-9_]+$")  # a name written like ``north_central_london``


def area_label(name: str) -> str:
    """How the page names an area of the data (plain text: escape it for HTML).

    The seed's areas keep their labels (:data:`AREA_LABELS`). Any other name is shown as it is
    written in ``practices.area``, except that a name written as an identifier (lower-case
    letters, digits and underscores only) reads with spaces for underscores and a capital
    first letter. A pooled programme (names joined by ``" + "``) labels each of its areas.

    >>> area_label("pilot"), area_label("Tower Hamlets"), area_label("north_central_london")
    ('Integrated care pilot', 'Tower Hamlets', 'North central london')
    >>> area_label("pilot + outer_nwl")
    'Integrated care pilot + Outer NWL'
    """
    if name in AREA_LABELS:
        return AREA_LABELS[name]
    if POOL_SEPARATOR in name:
        return POOL_SEPARATOR.join(area_label(part) for part in name.split(POOL_SEPARATOR))
    if IDENTIFIER.match(name):
        text = name.replace("_", " ").strip() or name
        return text[0].upper() + text[1:]
    return name


@dataclass(frozen=True)
class Section:
    """One report section: anchor id, title and its HTML body."""

    id: str
    title: str
    html: str


@dataclass(frozen=True)
class PageContext:
    """What the text of a section may depend on besides its result.

    Parameters
    ----------
    disclosure
        The numbers of disclosure control, which a section's notes describe where its result
        is published under it.
    seed_shaped
        Whether the data are the seed-shaped synthetic default
        (:func:`careval.report.seed.seed_shaped`): only then does a section set its figures
        beside the pilot's published ones. The default, False, speaks of the data alone.
    """

    disclosure: DisclosureSettings = field(default_factory=DisclosureSettings)
    seed_shaped: bool = False


DEFAULT_CONTEXT = PageContext()


def table_html(
    df: pd.DataFrame,
    labels: dict[str, str] | None = None,
    table_id: str = "",
    text_columns: tuple[str, ...] = (),
    kinds: dict[str, fmt.Kind] | None = None,
    caption: str = "",
) -> str:
    """A DataFrame as an HTML table for people, in a scrolling container.

    Headings are ``labels`` or the glossary's (:func:`careval.report.glossary.label`); each
    cell is formatted by its column's kind (:func:`careval.report.format.column_kind`, or
    ``kinds``) and keeps its raw value in ``data-v`` for sorting and the CSV download. Area
    names in text cells read as :func:`area_label` gives them.
    """
    labels = labels or {}
    kinds = kinds or {}
    col_kinds = {
        c: kinds.get(c) or ("text" if c in text_columns else fmt.column_kind(c, df[c].tolist()))
        for c in df.columns
    }
    head = "".join(
        f'<th scope="col" class="{"text" if col_kinds[c] == "text" else ""}">'
        f"{html.escape(labels.get(c) or label(c))}</th>"
        for c in df.columns
    )
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, rec, strict=True):
            kind = col_kinds[col]
            cls = ' class="text"' if kind == "text" else ""
            cells.append(f'<td{cls} data-col="{html.escape(col)}"{_raw(v)}>{_fmt(v, kind)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{table_id}"' if table_id else ""
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table{ident}>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _raw(v: object) -> str:
    """The ``data-v`` attribute of a cell: its raw value (empty for a missing one)."""
    if hasattr(v, "item"):
        v = v.item()
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ' data-v=""'
    if isinstance(v, float):  # to the published precision (results.json's 10 digits)
        return f' data-v="{v:.10g}"'
    return f' data-v="{html.escape(str(v))}"'


def _fmt(v: object, kind: fmt.Kind = "number") -> str:
    """A cell's text: a string as it is (an area of the seed by its label), anything else by
    its column's kind (:func:`careval.report.format.cell`, which leaves strings alone too)."""
    if isinstance(v, str):
        return html.escape(AREA_LABELS.get(v, v))
    return html.escape(fmt.cell(v, kind))


def fmt_count(v: object) -> str:
    """A count in prose: thousands separators, ``*`` when suppressed, a dash when withheld."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, int | float) and not isinstance(v, bool) and not pd.isna(v):
        return f"<span class='n'>{int(v):,}</span>"
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "&ndash;"
    return f"<span class='n'>{html.escape(str(v))}</span>"


def figures(sections: list[Section]) -> list[tuple[str, str]]:
    """Every inline SVG chart of the page as ``(file name, SVG document)``, in page order."""
    out = []
    for s in sections:
        for i, m in enumerate(re.finditer(r"<svg\b.*?</svg>", s.html, flags=re.S), start=1):
            out.append((f"{s.id}-{i}.svg", '<?xml version="1.0" encoding="utf-8"?>\n' + m[0]))
    return out


def svg(fig: plt.Figure, title: str = "", desc: str = "") -> str:
    """A matplotlib figure as inline SVG text with a title and description (and closes it).

    Without ``title`` the first axes' title is used; without ``desc``, the title.
    """
    if not title:
        titles = (ax.get_title(loc="left") or ax.get_title() for ax in fig.axes)
        title = next((t for t in titles if t), "")
    return svg_document(fig, title or "Chart", desc or title or "Chart")


def area_prose(name: str) -> str:
    """An area as running text names it: :data:`AREA_PROSE`, else :func:`area_label`."""
    return AREA_PROSE.get(name) or area_label(name)


def last_comparator(comparators: list[str]) -> str | None:
    """The comparator the summary of findings and Table 3 quote: the last in Table 2's order
    (by default the data's last area: for the seed, the rest of England)."""
    return comparators[-1] if comparators else None


def line_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    series: str,
    title: str,
    ylabel: str,
    highlight: Collection[str] = ("pilot",),
) -> str:
    """One line per ``series`` value (an area, labelled by :func:`area_label`), as inline SVG;
    the ``highlight`` series (the programme's) drawn thicker."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    groups = list(df.groupby(series, sort=False))
    for (key, part), colour in zip(groups, colours(len(groups)), strict=True):
        lw = 2.6 if key in highlight else 1.4
        ax.plot(part[x], part[y], lw=lw, label=area_label(str(key)), color=colour)
        texts = [
            f"{area_label(str(key))}, {a}: {fmt.cell(b, 'number')}"
            for a, b in zip(part[x], part[y], strict=True)
        ]
        hover_points(ax, part[x], part[y], texts, color=colour, ms=5)
    labels = list(dict.fromkeys(df[x].astype(str)))
    if len(labels) > 12:  # thin crowded category labels
        step = -(-len(labels) // 12)
        ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right")
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylabel(ylabel)
    zero_based(ax)  # a rate's or a count's axis starts at zero
    tidy(ax)
    if df[series].nunique() > 1:
        ax.legend(
            fontsize=9,
            frameon=False,
            ncol=3,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.18 if len(labels) <= 12 else -0.3),
        )
    return svg(fig, title)


def render(
    title: str,
    sections: list[Section],
    synthetic: bool,
    provenance: dict,
    disclosure: DisclosureSettings,
) -> str:
    """The whole page; its banner states the rules of ``disclosure`` on real data.

    The page's style (``templates/report.css``) and script (``templates/report.js``) are
    written into it, so the one file works offline and needs nothing beside it.
    """
    env = Environment(autoescape=True)
    templates = resources.files("careval.report").joinpath("templates")
    text = templates.joinpath("report.html").read_text("utf-8")
    css = templates.joinpath("report.css").read_text("utf-8")
    js = templates.joinpath("report.js").read_text("utf-8")
    if "</style" in css.lower() or "</script" in js.lower():  # would end its element early
        raise ValueError("the report's inline style or script closes its own element")
    rules = {
        "suppressed": suppressed_range(disclosure),
        "rounding_base": disclosure.rounding_base,
        "min_people": smallest_published(disclosure),
    }
    page = env.from_string(text).render(
        title=title,
        sections=sections,
        synthetic=synthetic,
        provenance=provenance,
        rules=rules,
        css=Markup(css),
        js=Markup(js),
        folded=FOLDED,
    )
    return number_figures(page)
