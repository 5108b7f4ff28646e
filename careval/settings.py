"""One JSON round trip for every settings object: the field names are the keys.

Every settings dataclass of careval subclasses :class:`Settings`. ``to_dict()`` gives a
JSON-ready dict (dates as ISO strings, tuples as lists, nested settings as dicts) whose keys are
exactly the dataclass's field names; ``from_dict()`` reads one back, converting each value to
the field's declared type, and rejects unknown keys (naming the nearest valid one). ``to_json``
and ``from_json`` do the same through JSON text. ``tests/test_settings.py`` round-trips every
settings class in the package.

Examples
--------
>>> import dataclasses, datetime as dt
>>> @dataclasses.dataclass(frozen=True)
... class Window(Settings):
...     start: dt.date = dt.date(2011, 4, 1)
...     months: tuple[int, ...] = (3, 6)
>>> Window().to_dict()
{'start': '2011-04-01', 'months': [3, 6]}
>>> Window.from_dict({'start': '2012-01-01'})
Window(start=datetime.date(2012, 1, 1), months=(3, 6))
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import types
import typing
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from careval.errors import ConfigError, brief

S = TypeVar("S", bound="Settings")


class Settings:
    """Mixin of settings dataclasses: ``to_dict``/``from_dict`` and ``to_json``/``from_json``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings, keyed by field name."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self) -> str:
        """The settings as JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any], where: str = "") -> S:
        """Settings from a dict of ``to_dict``'s shape; missing keys take their defaults.

        Raises :class:`~careval.errors.ConfigError` naming every unknown key (with the nearest
        valid one) and every value of the wrong type, all at once; a settings class's own
        checks (``__post_init__``) then apply as usual.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{where or cls.__name__}: expected a table; got {brief(data)}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        problems, values = [], {}
        for key, value in data.items():
            path = f"{where}.{key}" if where else key
            if len(path) > 80:
                path = f"{path[:79]}... ({len(path):,} characters)"
            if key not in fields:
                near = difflib.get_close_matches(key, list(fields), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                problems.append(f"{path}: unknown setting{hint}")
                continue
            try:
                values[key] = _convert(value, hints[key], path)
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError("; ".join(problems))
        try:
            return cls(**values)
        except ConfigError as exc:  # the class's own checks: say where they apply
            if where and not str(exc).startswith(where):
                raise ConfigError(f"{where}: {exc}") from None
            raise

    @classmethod
    def from_json(cls: type[S], text: str) -> S:
        """Settings from ``to_json``'s text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{cls.__name__}: not JSON ({exc})") from None
        return cls.from_dict(data)


def _plain(v: Any) -> Any:
    if isinstance(v, Settings):
        return v.to_dict()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _convert(value: Any, hint: Any, path: str) -> Any:
    """``value`` (from JSON) as the type ``hint``; ConfigError naming ``path`` when it is not."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in (a for a in args if a is not type(None)):
            try:
                return _convert(value, a, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{path}: {brief(value)} is not allowed"
        )
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{path}: {brief(value)} is not one of {allowed}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list; got {brief(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values; got {len(value)}")
        return tuple(
            _convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table; got {brief(value)}")
        kt, vt = args or (Any, Any)
        return {_convert(k, kt, path): _convert(v, vt, f"{path}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Settings):
        return value if isinstance(value, hint) else hint.from_dict(value, path)
    if hint is dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            return dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{path}: expected a date as YYYY-MM-DD; got {brief(value)}"
            ) from None
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false; got {brief(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected a whole number; got {brief(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number; got {brief(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected text; got {brief(value)}")
        return value
    return value
