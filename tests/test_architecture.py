"""The layout holds: inner packages never import an edge, no import circle, modules stay small,
every settings class round-trips through JSON, every result class has ``tidy`` and ``summary``.

The imports are read from the source (every ``import`` statement, lazy ones inside functions
included), so a circle that only works because one side imports late is still a circle.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import pandas as pd
import pytest

import careval
from careval.settings import Settings

ROOT = Path(careval.__file__).parent
# The edges: the only code that talks to people. ``careval.run`` composes the evaluation and the
# report (the main job), so it is an edge too.
EDGES = ("careval.cli", "careval.report", "careval.app", "careval.run", "careval.__main__")
MAX_LINES = 600
# Modules that are data rather than code (generated, or a standard's schema), exempt from the size
# limit: none at present, and any entry here must say why.
GENERATED: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The careval modules ``name`` imports (resolved to modules, not the names inside them)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            # ``from pkg import mod`` imports the module pkg.mod when there is one.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            # Importing a.b.c runs the packages a and a.b first: their imports count too.
            while t.startswith("careval"):
                if t != name and not name.startswith(t + "."):
                    found.add(t)
                t = t.rpartition(".")[0]
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


# The layers of docs/architecture.md, lowest first: a module imports only its own layer and those
# below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "careval",
        "careval.errors",
        "careval.settings",
        "careval.files",
        "careval.folders",
        "careval.disclosure",
        "careval.compute",
    ),
    ("careval.data",),
    ("careval.cohort", "careval.features"),
    (
        "careval.risk",
        "careval.impact",
        "careval.design",
        "careval.monitoring",
        "careval.indicators",
        "careval.surveys",
        "careval.qualitative",
    ),
    ("careval.synthetic",),
    ("careval.spec",),
    ("careval.evaluation",),
    EDGES,
)


def _layer(name: str) -> int:
    best = max(
        (len(p), i)
        for i, layer in enumerate(LAYERS)
        for p in layer
        if name == p or name.startswith(p + ".")
    )
    return best[1]


def _is_edge(name: str) -> bool:
    return any(name == e or name.startswith(e + ".") for e in EDGES)


def test_the_walk_sees_the_packages_and_their_imports() -> None:
    # The walk itself: it finds modules of every layer and the imports between them.
    assert {"careval.cli.app", "careval.report.publish.rules", "careval.impact.matching"} <= set(
        MODULES
    )
    assert "careval.cli.common" in GRAPH["careval.cli.app"] | {
        m for n in GRAPH["careval.cli.app"] for m in GRAPH[n]
    }
    assert "careval.data.access" in GRAPH["careval.cohort.summary"]


def test_no_inner_module_imports_an_edge() -> None:
    bad = sorted(
        f"{name} imports {dep}"
        for name, deps in GRAPH.items()
        if not _is_edge(name)
        for dep in deps
        if _is_edge(dep)
    )
    assert bad == []


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower() -> None:
    assert {_layer(m) for m in MODULES} == set(range(len(LAYERS)))
    upward = sorted(
        f"{name} imports {dep}"
        for name, deps in GRAPH.items()
        for dep in deps
        if _layer(dep) > _layer(name)
    )
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle() -> None:
    assert _cycles(GRAPH) == []


def test_no_module_over_600_lines() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and name not in GENERATED
    }
    assert long == {}


def _classes(predicate) -> list[type]:  # type: ignore[no-untyped-def]
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(careval.__path__, "careval."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == info.name and predicate(obj):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


SETTINGS = _classes(lambda c: dataclasses.is_dataclass(c) and c.__name__.endswith("Settings"))
RESULTS = _classes(
    lambda c: (
        dataclasses.is_dataclass(c)
        and (c.__name__.endswith("Result") or c.__name__ == "DataSummary")
    )
)


def test_every_settings_class_uses_the_one_json_round_trip() -> None:
    assert len(SETTINGS) >= 10
    assert [c.__name__ for c in SETTINGS if not issubclass(c, Settings)] == []


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_settings_round_trip_through_json(cls: type[Settings]) -> None:
    st = cls()
    text = st.to_json()
    assert list(json.loads(text)) == [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    assert cls.from_json(text) == st
    assert cls.from_dict(st.to_dict()) == st


def test_settings_round_trip_keeps_every_kind_of_value() -> None:
    from careval.cohort.eligibility import EligibilitySettings
    from careval.cohort.summary import SummarySettings

    el = EligibilitySettings(min_age=65, conditions=("copd", "heart_failure"), combine="and")
    st = SummarySettings(dt.date(2013, 1, 1), el)
    assert SummarySettings.from_json(st.to_json()) == st
    assert st.to_dict() == {
        "reference_date": "2013-01-01",
        "eligibility": {"min_age": 65, "conditions": ["copd", "heart_failure"], "combine": "and"},
        "programme_areas": ["pilot"],
    }
    none = SummarySettings(eligibility=EligibilitySettings(min_age=None))
    assert SummarySettings.from_json(none.to_json()) == none


def test_settings_from_json_names_every_problem() -> None:
    from careval.cohort.summary import SummarySettings
    from careval.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        SummarySettings.from_dict({"reference_dat": "2011-01-01", "eligibility": {"min_age": "x"}})
    text = str(e.value)
    assert "reference_dat: unknown setting (did you mean 'reference_date'?)" in text
    assert "eligibility.min_age: expected a whole number; got 'x'" in text


def test_every_result_class_has_tidy_and_summary() -> None:
    assert len(RESULTS) >= 12
    missing = [
        f"{c.__name__}.{m}"
        for c in RESULTS
        for m in ("tidy", "summary", "to_dict")
        if not callable(getattr(c, m, None))
    ]
    assert missing == []
    # tidy() is annotated to give a DataFrame everywhere.
    hints = {c.__name__: inspect.signature(c.tidy).return_annotation for c in RESULTS}
    assert {k: v for k, v in hints.items() if v not in ("pd.DataFrame", pd.DataFrame)} == {}
