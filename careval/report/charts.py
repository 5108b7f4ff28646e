"""Charts people can read: text kept as text, a title and description, hover values, captions.

Every chart of the page is one SVG element made by :func:`svg_document` (from a matplotlib
figure) or drawn directly as SVG text, and placed by :func:`figure` in a ``<figure>`` with a
numbered caption that states its finding. The SVG:

- keeps its text as ``<text>`` (matplotlib's ``svg.fonttype = 'none'``), so a screen reader,
  find-in-page and copy read it;
- opens with ``<title>`` and ``<desc>`` and is labelled by them (``role="img"``);
- scales to its column: its fixed ``width``/``height`` become a ``viewBox`` and CSS sizes it;
- carries a hover value on each point or bar that :func:`hover` registered (an SVG
  ``<title>`` inside the artist's group).

Colours come from :data:`PALETTE` (Okabe and Ito's, distinguishable under the common colour
vision deficiencies; ``tests/test_charts.py`` checks it with a simulation). Captions are
numbered in page order when the page is rendered (:func:`number_figures`).
"""

from __future__ import annotations

import hashlib
import html
import io
import itertools
import re
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402

matplotlib.rcParams.update(
    {
        "svg.hashsalt": "careval",  # stable SVG ids: the same run, the same page
        "svg.fonttype": "none",  # text as <text>, not paths
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
    }
)

# Okabe & Ito (2008), "Color Universal Design": eight colours told apart under protanopia,
# deuteranopia and tritanopia. The programme's series takes the first.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow (light: for fills, not for lines on white)
    "#000000",  # black
)
GREY = "#6b7785"
# Colours for lines and points on white (the yellow is too light to read as a thin line).
LINE_COLOURS: tuple[str, ...] = tuple(c for c in PALETTE if c != "#F0E442")

_counter = itertools.count()
_HOVERS: dict[str, str] = {}


def colours(n: int) -> list[str]:
    """``n`` line colours from :data:`LINE_COLOURS`, repeating past seven."""
    return [LINE_COLOURS[i % len(LINE_COLOURS)] for i in range(n)]


def hover(artist: Artist, text: str) -> None:
    """Show ``text`` when the pointer is over ``artist`` (a point, bar or line) in the SVG."""
    gid = f"hv{next(_counter)}"
    artist.set_gid(gid)
    _HOVERS[gid] = text


def hover_points(ax: plt.Axes, xs: Iterable, ys: Iterable, texts: Iterable[str], **kw) -> None:
    """Invisible-but-hoverable markers at ``(xs, ys)`` with one hover text each.

    matplotlib draws one group per artist, so each point is its own marker; ``kw`` styles it
    (default: the axis' current colour at full size, so the point is visible and hoverable).
    """
    style = {"marker": "o", "ms": 5, "lw": 0, **kw}
    for x, y, t in zip(xs, ys, texts, strict=True):
        (pt,) = ax.plot([x], [y], **style)
        hover(pt, t)


def svg_document(fig: plt.Figure, title: str, desc: str) -> str:
    """A matplotlib figure as inline SVG with ``title``/``desc``, hover values, scalable.

    Closes the figure.
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return accessible(text[text.index("<svg") :], title, desc)


def accessible(svg: str, title: str, desc: str) -> str:
    """``svg`` (one ``<svg>`` element's text) with its title, description and hover values,
    and with a viewBox in place of fixed width and height so it scales to its column."""
    head_end = svg.index(">") + 1
    head = svg[:head_end]
    width = re.search(r'\swidth="([\d.]+)(pt|px)?"', head)
    height = re.search(r'\sheight="([\d.]+)(pt|px)?"', head)
    if "viewBox" not in head and width and height:
        head = head[:-1] + f' viewBox="0 0 {width[1]} {height[1]}">'
    if width:
        # The intrinsic size stays as a maximum (CSS ``max-width``), the element scales down.
        head = re.sub(r'\swidth="[^"]*"', "", head, count=1)
        head = re.sub(r'\sheight="[^"]*"', "", head, count=1)
        px = float(width[1]) * (4 / 3 if width[2] == "pt" else 1)
        head = head[:-1] + f' style="max-width:{px:.0f}px">'
    body = _with_hovers(svg[head_end:])
    # Ids from the content, so the same chart has the same ids in every run.
    uid = "c" + hashlib.sha1((title + desc + head + body).encode()).hexdigest()[:10]
    head = re.sub(r'\srole="[^"]*"|\saria-label(ledby)?="[^"]*"', "", head)
    head = head[:-1] + f' role="img" aria-labelledby="{uid}-t {uid}-d">'
    return (
        head
        + f'<title id="{uid}-t">{html.escape(title)}</title>'
        + f'<desc id="{uid}-d">{html.escape(desc)}</desc>'
        + body
    )


def _with_hovers(body: str) -> str:
    """Insert each registered hover text as an SVG ``<title>`` inside its artist's group (the
    group's id, a counter, goes: the same chart reads the same in every run)."""

    def put(m: re.Match[str]) -> str:
        text = _HOVERS.pop(m[1], None)
        tag = m[0].replace(f'id="{m[1]}"', 'class="hv"')
        return tag if text is None else f"{tag}<title>{html.escape(text)}</title>"

    return re.sub(r'<g id="(hv\d+)"[^>]*>', put, body)


def figure(svg: str, caption: str, figure_id: str = "") -> str:
    """A chart in a ``<figure>`` with a caption that states its finding (numbered later)."""
    ident = f' id="{html.escape(figure_id)}"' if figure_id else ""
    return (
        f'<figure class="chart"{ident}>{svg}<figcaption><b class="fig-no">Figure.</b> '
        f"{html.escape(caption)}</figcaption></figure>"
    )


def number_figures(page: str) -> str:
    """Number every figure caption of ``page`` in order: "Figure 1.", "Figure 2.", ..."""
    n = itertools.count(1)
    tag = '<b class="fig-no">Figure.</b>'
    return re.sub(re.escape(tag), lambda _: f'<b class="fig-no">Figure {next(n)}.</b>', page)


def zero_based(ax: plt.Axes) -> None:
    """Start the y axis at zero (a rate's axis, so a gap is not exaggerated)."""
    lo, hi = ax.get_ylim()
    if lo > 0:
        ax.set_ylim(0, hi)


def tidy(ax: plt.Axes) -> None:
    """The house look: no top and right spines, a light grid behind."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
