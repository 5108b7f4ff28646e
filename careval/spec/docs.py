"""``docs/study-spec.md``, generated from the spec's own definition (``python -m careval.spec``)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from careval.settings import Settings
from careval.spec.model import SPEC_VERSION, StudySpec, field_doc
from careval.spec.toml import toml_value


def _type(hint: Any) -> str:
    text = str(hint).replace("typing.", "").replace("datetime.date", "date")
    text = text.replace("<class '", "").replace("'>", "")
    text = text.replace("tuple[", "list[").replace(", ...]", "]")
    return text.replace(" | None", " or none").replace("|", "or")


def markdown() -> str:
    """The spec's reference as Markdown (``docs/study-spec.md`` is this text)."""
    out = [
        "# The study specification (`study.toml`)",
        "",
        "Generated from `careval/spec/model.py` by `python -m careval.spec`; do not edit by hand "
        "(a test checks the two agree).",
        "",
        "One TOML file describes a study: its window, the programme (areas, start, budget), who "
        "is eligible, how the matched study finds controls and follows people up, the risk "
        "model's dates, the design and the clinical indicators. `careval init --data DIR --out "
        "study.toml` writes one with values inferred from the data, each field's description "
        "as a comment; `careval run --data DIR --spec study.toml --out OUT` runs it and writes "
        "the resolved spec beside the report as `study.json`. Without `--spec`, every field "
        "takes the default below: the North West London pilot's evaluation.",
        "",
        f"Write `careval_spec = {SPEC_VERSION}` at the top. Leave a field out to take its default. "
        'TOML has no null: where a field may be empty, write `"none"`. Dates are TOML dates '
        "(`2011-09-01`). Paths (code-list files) are relative to the spec file.",
        "",
        "A bad spec (an unknown key, with the nearest valid key suggested; a value of the wrong "
        "type; a date outside the data; an area no practice has; a code list that does not "
        "exist) stops the run with one message naming every key path and value, exit code 2.",
        "",
    ]
    for f in dataclasses.fields(StudySpec):
        cls = typing.get_type_hints(StudySpec)[f.name]
        many = typing.get_origin(cls) is tuple
        if many:
            cls = typing.get_args(cls)[0]
        title = f"[[{f.name}]]" if many else f"[{f.name}]"
        out += [f"## `{title}`", "", field_doc(StudySpec, f.name), ""]
        if many:
            built_in = ", ".join(f"`{o.name}`" for o in getattr(StudySpec(), f.name))
            out += [f"The default: {built_in}. Each table's keys:", ""]
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        hints = typing.get_type_hints(cls)
        default = cls()
        for g in dataclasses.fields(cls):
            value = _default(getattr(default, g.name))
            out.append(
                f"| `{g.name}` | {_type(hints[g.name])} | `{value}` | "
                f"{field_doc(cls, g.name).replace('|', '&#124;')} |"
            )
        out.append("")
    return "\n".join(out)


def _default(v: Any) -> str:
    if isinstance(v, Settings):
        return "{...}"
    return toml_value(v).replace("|", "&#124;")
