"""Render result blocks into one self-contained HTML page (inline SVG charts, no network)."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import resources

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "careval"  # stable SVG ids: the same run, the same page
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment  # noqa: E402
from markupsafe import Markup  # noqa: E402

from careval.data.areas import POOL_SEPARATOR  # noqa: E402
from careval.disclosure import DisclosureSettings  # noqa: E402
from careval.report.publish.rules import smallest_published, suppressed_range  # noqa: E402

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
) -> str:
    """A DataFrame as an HTML table with readable headings and thousands separators."""
    labels = labels or {}
    head = "".join(
        f'<th class="{"text" if c in text_columns else ""}">'
        f"{html.escape(labels.get(c, c.replace('_', ' ')))}</th>"
        for c in df.columns
    )
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, rec, strict=True):
            cls = ' class="text"' if col in text_columns else ""
            cells.append(f'<td{cls} data-col="{html.escape(col)}">{_fmt(v)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.4g}"
    return html.escape(str(AREA_LABELS.get(str(v), v)))


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


def svg(fig: plt.Figure) -> str:
    """A matplotlib figure as inline SVG text (and closes it)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


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
    for key, part in df.groupby(series, sort=False):
        lw = 2.6 if key in highlight else 1.4
        ax.plot(part[x], part[y], marker="o", lw=lw, label=area_label(str(key)))
    labels = list(dict.fromkeys(df[x].astype(str)))
    if len(labels) > 12:  # thin crowded category labels
        step = -(-len(labels) // 12)
        ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right")
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if df[series].nunique() > 1:
        ax.legend(
            fontsize=8,
            frameon=False,
            ncol=3,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.18 if len(labels) <= 12 else -0.3),
        )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return svg(fig)


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
    # Inline text may not close its own element early.
    assert "</style" not in css.lower() and "</script" not in js.lower()
    rules = {
        "suppressed": suppressed_range(disclosure),
        "rounding_base": disclosure.rounding_base,
        "min_people": smallest_published(disclosure),
    }
    return env.from_string(text).render(
        title=title,
        sections=sections,
        synthetic=synthetic,
        provenance=provenance,
        rules=rules,
        css=Markup(css),
        js=Markup(js),
    )
