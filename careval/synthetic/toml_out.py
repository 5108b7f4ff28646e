"""A small TOML writer for the synthetic inputs (the standard library only reads TOML).

:func:`dumps` writes a document of strings, integers, floats, booleans, lists of those, tables
and arrays of tables: a table's own keys come before its sub-tables, a blank line comes before
each table header except one that directly follows its parent table's keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(doc: Mapping[str, Any]) -> str:
    """``doc`` as TOML text."""
    lines: list[str] = []
    _table(lines, doc, (), header=None)
    return "".join(lines)


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as a TOML value")


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def _table(
    lines: list[str], table: Mapping[str, Any], path: tuple[str, ...], header: str | None
) -> None:
    own = [(k, v) for k, v in table.items() if not isinstance(v, Mapping) and not _is_tables(v)]
    if header is not None and (own or not any(isinstance(v, Mapping) for v in table.values())):
        lines.append(header)
    for k, v in own:
        lines.append(f"{_key(k)} = {_value(v)}\n")
    follows_keys = header is not None and bool(own)
    for k, v in table.items():
        sub = (*path, _key(k))
        if isinstance(v, Mapping):
            blank = "" if follows_keys else "\n"
            _table(lines, v, sub, f"{blank}[{'.'.join(sub)}]\n")
            follows_keys = False
        elif _is_tables(v):
            for item in v:
                _table(lines, item, sub, f"\n[[{'.'.join(sub)}]]\n")
            follows_keys = False
