"""The machinery of the typed results model: strict JSON nodes, ``ABSENT``, ``Skipped``.

A :class:`Node` is a dataclass read from one JSON object: a key it does not declare is an error
(:class:`ResultsModelError`), a declared key the object lacks reads as :data:`ABSENT`, and
:meth:`Node.to_json` gives the object back with its keys in their order. A node whose keys are
partly data (the eligibility groups of a row of ``data.people_by_area``, named by the run's
rule) names the pattern of those keys in ``_extra_keys``; they are kept, in order, in
:meth:`Node.extra`. The blocks of
``results.json`` are declared in :mod:`careval.report.publish.model`.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin

from careval.errors import CarevalError

Json = dict[str, Any]
Records = list[dict[str, Any]]
Count = int | str | None  # a published count: a number, "*" (suppressed) or null
Num = float | int | str | None  # a published figure: null or "*" where withheld


class ResultsModelError(CarevalError):
    """``results.json`` does not fit the typed results model (a bug in careval, not the data)."""


class _Absent:
    """A declared key the run did not produce."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
B = TypeVar("B", bound="Node")


class Node:
    """A typed JSON object: declared keys only, the source's key order kept for ``to_json``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    _extra_keys: ClassVar[re.Pattern[str] | None] = None  # undeclared keys allowed (raw values)
    _order: tuple[str, ...] = ()
    _extras: dict[str, Any] | None = None

    @classmethod
    def from_json(cls: type[B], data: Any, path: str) -> B:
        """Read ``data`` (the JSON object at ``path``) strictly."""
        if not isinstance(data, dict):
            raise ResultsModelError(f"{path}: expected an object; got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        pattern = cls._extra_keys
        extra = [k for k in data if k not in names and pattern is not None and pattern.match(k)]
        unknown = [k for k in data if k not in names and k not in extra]
        if unknown:
            raise ResultsModelError(
                f"{path}: {', '.join(map(repr, unknown))} not in the results model "
                f"({cls.__name__} declares {', '.join(names)})"
            )
        values = {n: _read(data[n], hints[n], f"{path}.{n}") for n in names if n in data}
        obj = cls(**{n: values.get(n, ABSENT) for n in names})
        obj._order = tuple(data)
        obj._extras = {k: data[k] for k in extra}
        return obj

    def extra(self) -> dict[str, Any]:
        """The undeclared keys read through ``_extra_keys`` and their values, in order."""
        return dict(self._extras or {})

    def to_json(self) -> Json:
        """The JSON object this node was read from (keys in their order)."""
        extras = self._extras or {}
        return {k: _write(extras[k] if k in extras else getattr(self, k)) for k in self._order}


@dataclass
class Skipped(Node):
    """A block whose analysis did not run (or was withheld), with the reason."""

    skipped: str = ""


def _read(v: Any, hint: Any, path: str) -> Any:
    if v is None:  # null is a value, not a shape: a figure or block not computed
        return None
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        nodes = [a for a in args if isinstance(a, type) and issubclass(a, Node)]
        if nodes:
            if isinstance(v, dict) and list(v) == ["skipped"] and Skipped in nodes:
                return Skipped.from_json(v, path)
            rest = [a for a in nodes if a is not Skipped]
            return _read(v, rest[0], path)
        return v
    if isinstance(hint, type) and issubclass(hint, Node):
        return hint.from_json(v, path)
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], Node):
        if not isinstance(v, list):
            raise ResultsModelError(f"{path}: expected a list; got {type(v).__name__}")
        return [args[0].from_json(x, f"{path}[{i}]") for i, x in enumerate(v)]
    if origin is dict and len(args) == 2 and isinstance(args[1], type):
        if issubclass(args[1], Node):
            if not isinstance(v, dict):
                raise ResultsModelError(f"{path}: expected an object; got {type(v).__name__}")
            return {k: args[1].from_json(x, f"{path}.{k}") for k, x in v.items()}
    return v


def _write(v: Any) -> Any:
    if isinstance(v, Node):
        return v.to_json()
    if isinstance(v, list):
        return [_write(x) for x in v]
    if isinstance(v, dict):
        return {k: _write(x) for k, x in v.items()}
    return v
