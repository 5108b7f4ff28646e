"""The chart module: colours told apart under colour blindness, text kept as text, titles,
descriptions and hover values in the SVG, captions numbered in page order.

The colour-vision simulation is daltonlens's implementation of Machado, Oliveira and
Fernandes (2009), independent of careval; the distance is CIE 1976 Delta E in CIELAB.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import matplotlib.pyplot as plt
import numpy as np
import pytest
from daltonlens import simulate

from careval.report.charts import (
    LINE_COLOURS,
    PALETTE,
    accessible,
    figure,
    hover_points,
    number_figures,
    svg_document,
)
from careval.report.page import line_chart

SVG = "{http://www.w3.org/2000/svg}"
# Two colours closer than this (Delta E 1976) read as the same in a legend on a thin line.
DISTINCT = 12.0
GRID = ("#b0b0b0", "#000000")  # matplotlib's grid and axes
DEFICIENCIES = {
    "protanopia": simulate.Deficiency.PROTAN,
    "deuteranopia": simulate.Deficiency.DEUTAN,
    "tritanopia": simulate.Deficiency.TRITAN,
}


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0-255) to CIELAB under D65 (the standard formulas of IEC 61966-2-1 and CIE)."""
    c = rgb.astype(float) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def _closest_pair(colours: list[str], deficiency: simulate.Deficiency) -> float:
    """The smallest Delta E between any two of ``colours`` as a person with ``deficiency``
    sees them (full severity)."""
    image = np.stack([_rgb(c) for c in colours])[None, :, :]
    seen = simulate.Simulator_Machado2009().simulate_cvd(image, deficiency, severity=1.0)[0]
    lab = _lab(seen)
    d = np.linalg.norm(lab[:, None, :] - lab[None, :, :], axis=-1)
    return float(d[np.triu_indices(len(colours), 1)].min())


@pytest.mark.parametrize("name", sorted(DEFICIENCIES))
def test_the_first_five_line_colours_stay_distinct_under_colour_blindness(name: str) -> None:
    """The five areas of the seed's data take the first five line colours."""
    assert _closest_pair(list(LINE_COLOURS[:5]), DEFICIENCIES[name]) >= DISTINCT


def test_matplotlibs_default_colours_fail_the_same_check() -> None:
    """The check can fail: matplotlib's default cycle (the report's colours before) has a
    green and a red that a person with deuteranopia cannot tell apart."""
    tab10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    assert _closest_pair(tab10, simulate.Deficiency.DEUTAN) < DISTINCT
    assert PALETTE[0] == LINE_COLOURS[0]


def _chart() -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.set_title("Emergency admissions by month")
    hover_points(ax, [1, 2, 3], [4.0, 5.0, 6.0], ["January: 4", "February: 5", "March: 6"])
    return svg_document(fig, "Emergency admissions by month", "Rising from 4 to 6.")


def test_a_chart_keeps_its_text_as_text_with_a_title_a_description_and_hovers() -> None:
    text = _chart()
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Emergency admissions by month"
    assert root.find(f"{SVG}desc").text == "Rising from 4 to 6."
    ids = root.get("aria-labelledby").split()
    assert [root.find(f"{SVG}title").get("id"), root.find(f"{SVG}desc").get("id")] == ids
    assert root.get("role") == "img"
    words = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert "Emergency admissions by month" in words  # the axes title is <text>, not a path
    hovers = [t.text for g in root.iter(f"{SVG}g") if (t := g.find(f"{SVG}title")) is not None]
    assert hovers == ["January: 4", "February: 5", "March: 6"]
    # It scales to its column: no fixed width or height, a viewBox and a maximum width.
    assert root.get("width") is None and root.get("height") is None
    assert len(root.get("viewBox").split()) == 4
    assert re.fullmatch(r"max-width:\d+px", root.get("style"))


def test_the_same_chart_is_the_same_svg_in_every_run() -> None:
    assert _chart() == _chart()


def test_a_hand_drawn_svg_is_given_a_title_and_a_viewbox() -> None:
    made = accessible(
        '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100">'
        '<rect width="10" height="10"/></svg>',
        "Boxes",
        "Two boxes.",
    )
    root = ET.fromstring(made)
    assert root.get("viewBox") == "0 0 300 100"
    assert root.find(f"{SVG}title").text == "Boxes"


def test_captions_are_numbered_in_page_order() -> None:
    page = figure("<svg></svg>", "First finding.") + "<p>text</p>" + figure("<svg></svg>", "Next.")
    numbered = number_figures(page)
    assert re.findall(r"Figure (\d+)\.</b> ([^<]+)", numbered) == [
        ("1", "First finding."),
        ("2", "Next."),
    ]


def test_line_charts_use_the_palette_in_order() -> None:
    import pandas as pd

    df = pd.DataFrame(
        {
            "m": ["a", "b"] * 3,
            "v": [1, 2, 3, 4, 5, 6],
            "area": ["pilot"] * 2 + ["x"] * 2 + ["y"] * 2,
        }
    )
    text = line_chart(df, "m", "v", "area", "Three areas", "value")
    strokes = re.findall(r"stroke: ?(#[0-9a-fA-F]{6})", text)
    used = [c.lower() for c in dict.fromkeys(strokes) if c.lower() not in GRID]
    assert used[:3] == [c.lower() for c in LINE_COLOURS[:3]]
