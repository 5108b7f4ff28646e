"""Reading ``study.toml`` into a :class:`StudySpec`, and writing one back with its comments.

TOML has no null: a field whose value may be "none" (no caliper, comparators from the data) is
written as the text ``"none"`` or left out. Paths in the spec (code-list files) are relative to
the spec file's folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from careval.data.codelists import is_path
from careval.errors import ConfigError
from careval.settings import Settings
from careval.spec.model import SPEC_VERSION, StudySpec, field_doc

NONE = "none"  # how a spec file says null


@dataclasses.dataclass(frozen=True)
class LoadedSpec:
    """A spec read from a file: the spec, where it came from, and the keys the file set."""

    spec: StudySpec
    path: Path | None
    given: frozenset[str]  # dotted key paths written in the file (``programme.start``)


MAX_SPEC_BYTES = 1 << 20  # 1 MiB: the default spec careval init writes is about 6 KB


def loads(text: str, where: str = "study.toml", base: Path | None = None) -> LoadedSpec:
    """Parse spec text; every problem (syntax, unknown key, wrong type) in one ConfigError."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    version = raw.pop("careval_spec", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise ConfigError(f"{where}: careval_spec = {version!r}; this careval reads {SPEC_VERSION}")
    given: set[str] = set()
    raw = _prepare(raw, StudySpec, "", given, base)
    try:
        spec = StudySpec.from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return LoadedSpec(spec, None, frozenset(given))


def load(path: str | Path) -> LoadedSpec:
    """Read ``study.toml`` (paths inside it are relative to its folder)."""
    path = Path(path)
    try:  # bytes, as tomllib wants: no newline translation (a lone CR is refused, not read)
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise ConfigError(
                f"{path}: {size:,} bytes is not a study specification (at most "
                f"{MAX_SPEC_BYTES:,}; a spec is a page of settings)"
            )
        # A byte order mark (as Windows editors write one) is not part of TOML: dropped.
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    loaded = loads(text, str(path), path.parent)
    return dataclasses.replace(loaded, path=path)


def _prepare(raw: Any, cls: type, where: str, given: set[str], base: Path | None) -> Any:
    """Turn ``"none"`` into None where a field may be null, resolve code-list paths, and record
    which keys the file set. Unknown keys are left for ``from_dict`` to refuse."""
    if not isinstance(raw, dict) or not dataclasses.is_dataclass(cls):
        return raw
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else key
        hint = hints.get(key)
        if hint is None:
            out[key] = value
            continue
        sub = _settings_class(hint)
        if sub is not None and isinstance(value, dict):
            out[key] = _prepare(value, sub, path, given, base)
            continue
        item = _settings_items(hint)
        if item is not None and isinstance(value, list):
            given.add(path)
            out[key] = [_prepare(v, item, f"{path}[{i}]", set(), base) for i, v in enumerate(value)]
            continue
        given.add(path)
        if value == NONE and _nullable(hint):
            value = None
        if base is not None and key in PATH_FIELDS.get(cls.__name__, ()):
            value = _relative_to(value, base)
        out[key] = value
    return out


# Fields holding code-list names or paths, by section class: a value ending in ``.csv`` is a
# path, resolved against the spec file's folder.
PATH_FIELDS: dict[str, tuple[str, ...]] = {
    "EligibilitySection": ("conditions",),
    "InterventionSettings": ("codes",),
    "OutcomeSettings": ("codes",),
}


def _relative_to(value: Any, base: Path) -> Any:
    if isinstance(value, list):
        return [_relative_to(v, base) for v in value]
    if isinstance(value, str) and is_path(value) and not Path(value).is_absolute():
        return str((base / value).resolve())
    return value


def _settings_class(hint: Any) -> type | None:
    if isinstance(hint, type) and issubclass(hint, Settings):
        return hint
    return None


def _settings_items(hint: Any) -> type | None:
    """The item class of ``tuple[SomeSettings, ...]``, else None."""
    if get_origin(hint) is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return _settings_class(args[0])
    return None


def _nullable(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


# ---------------------------------------------------------------------------------------------
# Writing


def dumps(spec: StudySpec, notes: dict[str, str] | None = None, header: str = "") -> str:
    """``spec`` as commented TOML: each field's description above it, and a note (what
    ``careval init`` inferred, and from what) after its value where ``notes`` has its path."""
    notes = notes or {}
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["", f"careval_spec = {SPEC_VERSION}"]
    for f in dataclasses.fields(spec):
        section = getattr(spec, f.name)
        about = [f"# {line}" for line in _wrap(field_doc(type(spec), f.name))]
        if isinstance(section, tuple):  # an array of tables, [[outcomes]]: keys described once
            lines += ["", *about]
            for i, item in enumerate(section):
                described = _beside if i == 0 else None
                lines += ["", f"[[{f.name}]]", *_keys(item, f.name, notes, described)]
        else:
            lines += ["", f"[{f.name}]", *about, *_keys(section, f.name, notes, _above)]
    return "\n".join(lines) + "\n"


def _above(cls: type, name: str) -> list[str]:
    """A key's description as the comment lines above it, after a blank line."""
    return ["", *(f"# {line}" for line in _wrap(field_doc(cls, name)))]


def _beside(cls: type, name: str) -> list[str]:
    """A key's description, named, as comment lines (the keys of an array's first table)."""
    return [f"# {line}" for line in _wrap(f"{name}: {field_doc(cls, name)}")]


def _keys(
    section: Settings,
    name: str,
    notes: dict[str, str],
    described: Callable[[type, str], list[str]] | None,
) -> list[str]:
    """The keys of one table, each after its description (when ``described``) and with the
    note ``notes`` has for its path."""
    lines: list[str] = []
    for g in dataclasses.fields(section):  # type: ignore[arg-type]
        path = f"{name}.{g.name}"
        if described is not None:
            lines += described(type(section), g.name)
        note = f"  # {_comment(notes[path])}" if path in notes else ""
        lines.append(f"{g.name} = {toml_value(getattr(section, g.name))}{note}")
    return lines


def _comment(text: str) -> str:
    """Text safe inside a TOML comment: control characters (a CR or LF in an area name would
    end the comment and start a key) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _wrap(text: str, width: int = 96) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    return [*lines, line] if line else lines


def toml_value(v: Any) -> str:
    """One value as TOML (None as the text ``\"none\"``)."""
    if v is None:
        return json.dumps(NONE)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, tuple | list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + " }"
        )
    raise TypeError(f"cannot write {v!r} as TOML")
