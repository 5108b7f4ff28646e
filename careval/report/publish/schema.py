"""The JSON Schema of ``results.json`` (draft 2020-12), generated from the typed results model.

``python -m careval.report.publish.schema > docs/results.schema.json`` rewrites the committed
schema; a test regenerates it and compares, so the schema cannot drift from the model. Every
:class:`~careval.report.publish.nodes.Node` dataclass becomes a definition (``$defs``) named
after the class, described by its docstring, with one property per declared key and no other
keys (``additionalProperties: false``; a node with ``_extra_keys`` allows keys of that pattern,
and :class:`~careval.report.publish.model.Its` its series' fits). A key added to the model (a
new block, ``impact.subgroups`` or a new SPC chart under ``programme.spc``) is in the schema
at the next regeneration, with no other change. The type hints map as follows:

* ``Count`` (a published count) is an integer, ``"*"`` (suppressed) or null; ``Num`` (a
  published figure) a number, ``"*"`` or null: disclosure control writes ``"*"`` for a
  suppressed figure on data flagged real;
* ``Records`` is a list of objects, ``Json`` any object (tables and settings nothing reads by
  name); ``X | Skipped`` is the block or ``{"skipped": reason}``;
* every declared key is optional (a run without a table lacks the keys it feeds), except the
  top-level ones that every run writes (``Published._required``); null is allowed everywhere
  (a figure or block not computed).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from typing import Any, Union, get_args, get_origin

from careval.report.publish import model
from careval.report.publish.nodes import Count, Node, Num
from careval.report.publish.publication import SCHEMA_VERSION
from careval.report.publish.units import P_FLOOR

SCHEMA_ID = "https://careval.invalid/results.schema.json"
SUPPRESSED = {"const": "*", "description": "suppressed by disclosure control"}

DESCRIPTION = f"""The results of one careval run (results.json), schema version {SCHEMA_VERSION}.

Generated from careval's typed results model (careval/report/publish/model.py) by
`python -m careval.report.publish.schema`; a test checks that this file equals a fresh
generation, so the schema and the model cannot drift apart.

schema_version: MAJOR.MINOR of this layout. A reader checks the major version before reading:
it changes when a key is removed, renamed or changes meaning; the minor version when keys are
added. 2.0 (from the unversioned 1.x layout): the top-level `naive` block, a copy of
`impact.naive`, was removed (the naive before-after contrast is published once, in
`impact.naive`); `schema_version` and `units` were added; p-values are never 0.
2.1: the `follow` block (the looks of `careval follow` that `careval run --follow` carries,
or why there are none).

units: the unit of every numeric figure in the document, keyed by the figure's generic path
(its dotted path with every list index written `[]`, e.g.
`impact.outcomes.emergency_admissions.rate_ratio` or `data.people_by_area[].registered`). A
key name alone does not fix a unit (`value` is a share on one SPC chart and a count on
another; `estimate` a log rate ratio for a count outcome and pounds for a cost), so units go by
place.

p-values: a p-value is never published as 0. One that underflowed to 0 in the computation is
published as {P_FLOOR:g}, a bound it is known to be below (the machine epsilon of a double,
2.22e-16, bounds every p-value computed as 0, as R's "p < 2.2e-16"); read any p-value at or
below {P_FLOOR:g} as "p < {P_FLOOR:g}".

Counts and figures: on data flagged real (`disclosure_control` true) a count of 1-7 (and a
figure derived from one) is published as "*", and counts are rounded; synthetic data are
published exactly."""


def _hint_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of one type hint (null allowed: a figure or block not computed)."""
    if hint is Count:
        return {"anyOf": [{"type": "integer"}, SUPPRESSED, {"type": "null"}]}
    if hint is Num:
        return {"anyOf": [{"type": "number"}, SUPPRESSED, {"type": "null"}]}
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [_ref(a, defs) or _hint_schema(a, defs) for a in args if a is not type(None)]
        options = [o for i, o in enumerate(options) if o not in options[:i]]
        return {"anyOf": [*options, {"type": "null"}]} if len(options) > 1 else options[0]
    if ref := _ref(hint, defs):
        return {"anyOf": [ref, {"type": "null"}]}
    if origin is list:
        item = _hint_schema(args[0], defs) if args else {}
        return {"type": ["array", "null"], "items": item}
    if origin is dict:
        value = _hint_schema(args[1], defs) if len(args) == 2 else {}
        return {"type": ["object", "null"], "additionalProperties": value}
    if hint is str:
        return {"type": ["string", "null"]}
    if hint is bool:
        return {"type": ["boolean", "null"]}
    if hint is int:
        return {"type": ["integer", "null"]}
    if hint is float:
        return {"type": ["number", "null"]}
    return {}  # Any


def _ref(hint: Any, defs: dict[str, Any]) -> dict[str, Any] | None:
    """A reference to the definition of a node class (defining it first), or None."""
    if isinstance(hint, type) and issubclass(hint, Node):
        _define(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    return None


def _define(cls: type[Node], defs: dict[str, Any]) -> None:
    """Add ``cls`` (and every node it uses) to ``defs``."""
    name = cls.__name__
    if name in defs:
        return
    defs[name] = {}  # a placeholder: a node that refers to itself stops here
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    fits = [f for f in fields if f.default_factory is not dataclasses.MISSING]
    declared = [f for f in fields if f not in fits]
    properties = {f.name: _hint_schema(hints[f.name], defs) for f in declared}
    doc = (cls.__doc__ or "").strip()
    out: dict[str, Any] = {
        "type": "object",
        "description": " ".join(doc.split("\n\n")[0].split()),
        "properties": properties,
    }
    required = list(getattr(cls, "_required", ()))
    if name == "Skipped":
        required = ["skipped"]
    if required:
        out["required"] = required
    if cls._extra_keys is not None:
        out["patternProperties"] = {cls._extra_keys.pattern: {}}
    if fits:  # keys that are data (Its: each series' fit, by the series' name)
        out["additionalProperties"] = _hint_schema(get_args(hints[fits[0].name])[1], defs)
    else:
        out["additionalProperties"] = False
    defs[name] = out


def results_schema() -> dict[str, Any]:
    """The JSON Schema of a ``results.json`` document."""
    defs: dict[str, Any] = {}
    _define(model.Published, defs)
    root = defs.pop("Published")
    root["properties"]["schema_version"] = {
        "const": SCHEMA_VERSION,
        "description": "the version of this layout (see the schema's description)",
    }
    root["properties"]["units"] = {
        "type": "object",
        "description": "the unit of every numeric figure, by its generic path",
        "additionalProperties": {"type": "string"},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "careval results.json",
        "description": DESCRIPTION,
        **{k: v for k, v in root.items() if k != "description"},
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    """The schema as the committed file holds it (indented, sorted definitions, final newline)."""
    return json.dumps(results_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Print the schema (``python -m careval.report.publish.schema > docs/results.schema.json``)."""
    sys.stdout.write(schema_text())


if __name__ == "__main__":
    main()
