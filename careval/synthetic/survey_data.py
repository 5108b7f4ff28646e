"""The synthetic surveys' package data: ``surveys_data/*.toml`` read with importlib.resources."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any


def load(name: str) -> dict[str, Any]:
    """``surveys_data/<name>.toml`` as a dict."""
    text = resources.files("careval.synthetic").joinpath("surveys_data", f"{name}.toml")
    return tomllib.loads(text.read_text(encoding="utf-8"))


def value_labels(scale: str) -> dict[int, str]:
    """A scale's value labels (``surveys_data/labels.toml``) with integer codes."""
    return {int(k): v for k, v in load("labels")[scale].items()}
