"""The data model as Markdown: ``docs/data-model.md`` is ``python -m careval.data.schema_docs``
(a test checks the two agree). Kept apart from :mod:`careval.data.schema`, which declares the
tables and their rules."""

from __future__ import annotations

import sys

from careval.data.schema import (
    EARLIEST_DATE,
    MAX_AGE,
    MEASURE_UNITS,
    SEVERITY,
    TABLES,
    Table,
)


def _warn(kind: str) -> str:
    return " (warning)" if SEVERITY.get(kind) == "warning" else ""


def markdown() -> str:
    """The data model as Markdown (``docs/data-model.md`` is this text)."""
    out = [
        "# The canonical data model",
        "",
        "Generated from `careval/data/schema.py` by `python -m careval.data.schema_docs`; "
        "do not edit by hand (a test checks the two agree).",
        "",
        "A dataset is a directory with one Parquet file per table (`persons.parquet`, ...) and "
        "a `dataset.json` manifest: `synthetic`, the JSON boolean `true` or `false` (not in "
        'quotes: `"false"`, `1` or `null` is a validation error; disclosure control is on '
        "unless it is `true`, and a manifest without the key means real data), and optionally "
        "`extract_date`: `YYYY-MM-DD`, the day the extract was taken. Tables marked *required* "
        "must be present and hold at least one row; the others are analysed when present. Types: "
        "`string`, `date` (Arrow date32), `int` (int64), `float` (float64), `bool`.",
        "",
        "Validation (`careval validate DIR [--extract-date YYYY-MM-DD]`) checks each rule below "
        "and reports every breach at once with table, column, count and rows. A rule "
        "is an error (every command stops) unless marked *(warning)* (listed, and the run goes "
        f"on). Every date lies between {EARLIEST_DATE.isoformat()} and the extract date: the "
        "one given to validation, else `extract_date` in `dataset.json`, else today's date (the "
        "message says which). A message names the first offending rows by number (from 1, in "
        "the order of the table's file). On data flagged synthetic it also shows the first "
        "one's pseudonymous identifiers and the values at fault, never a column marked "
        "*identifying*; on data not flagged synthetic it shows no value unless asked for with "
        "`careval --show-examples validate DIR`.",
        "",
    ]
    for t in TABLES.values():
        out += [f"## `{t.name}`{' (required)' if t.required else ''}", "", t.description, ""]
        out += ["| column | type | null | rule | description |", "|---|---|---|---|---|"]
        for c in t.columns:
            rule = []
            if c.allowed:
                rule.append("one of " + ", ".join(f"`{a}`" for a in c.allowed))
            if c.min is not None and c.max is not None:
                rule.append(f"{c.min:g} to {c.max:g}")
            elif c.min is not None:
                rule.append(f">= {c.min:g}")
            elif c.max is not None:
                rule.append(f"<= {c.max:g}")
            if c.type == "date":
                rule.append(f"{EARLIEST_DATE.isoformat()} to the extract date")
            if c.pattern:
                rule.append(f"matches `{c.pattern}`")
            if c.references:
                rule.append(f"exists in `{c.references}`")
            if c.identifying:
                rule.append("*identifying*")
            out.append(
                f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | "
                f"{'; '.join(rule).replace('|', '&#124;')} | {c.description} |"
            )
        if rules := _table_rules(t):
            out += ["", "Rules: " + "; ".join(rules) + "."]
        out.append("")
    return "\n".join(out)


def _table_rules(t: Table) -> list[str]:
    """The rules of one table beyond its columns', in words."""
    rules = []
    if t.key:
        rules.append("unique key: " + ", ".join(f"`{k}`" for k in t.key))
    for a, b in t.date_order:
        rules.append(f"`{b}` not before `{a}`")
    for a, b in t.value_le:
        rules.append(f"`{a}` not above `{b}`")
    if t.life_events:
        rules.append(
            ", ".join(f"`{d}`" for d in t.life_events)
            + " within the person's life (not before birth month, not after death)"
        )
    if t.after_birth:
        rules.append(
            ", ".join(f"`{d}`" for d in t.after_birth) + " not before the person's birth month"
        )
    if t.max_age:
        rules.append(
            f"age at most {MAX_AGE} years at `{t.max_age[1]}`, else at the extract date"
            + _warn("max_age")
        )
    if t.periods:
        who, _, end = t.periods
        rules.append(
            f"periods of one `{who}` do not overlap: none starts before the `{end}` of one "
            f"that started no later (`{end}` is the last day, so starting on it is a same-day "
            "transfer; null: still open)"
        )
    if t.registered_on:
        date, mdg = t.registered_on
        rules.append(
            f"the person is registered on `{date}`{_warn('registered_on')}, at a practice of "
            f"that `{mdg}`{_warn('registered_mdg')}"
        )
    if t.used_by:
        rules.append(f"every `{t.key[0]}` named in `{t.used_by}`{_warn('used_by')}")
    if t.code_patterns:
        sys_col, code_col, pats = t.code_patterns
        rules.append(
            f"`{code_col}` well-formed for its `{sys_col}`: "
            + "; ".join(f"{k} `{v}`" for k, v in pats.items()).replace("|", "&#124;")
        )
    if t.ranges_by:
        by, val, ranges = t.ranges_by
        rules.append(
            f"`{val}` in the plausible range for its `{by}`: "
            + "; ".join(
                f"{k} {lo:g}-{hi:g} {MEASURE_UNITS.get(k, '')}" for k, (lo, hi) in ranges.items()
            )
        )
    return rules


if __name__ == "__main__":  # pragma: no cover - documentation generator
    sys.stdout.write(markdown())
