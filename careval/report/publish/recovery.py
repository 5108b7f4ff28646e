"""The output audit: can an attacker recover a count of 1-7 from the published results?

:func:`recoveries` reads the published results (``results.json``, the source of the page and the
workbook) as an attacker would, from published figures only, and lists every count of 1-7
(below :func:`~careval.report.publish.rules.smallest_published`) that arithmetic gives back:

- **share x base**: for every published share, rate or mean with a published base
  (:data:`DERIVED`), the true base lies within the rounding of the published one (a count
  published as 65 is 63-67; an unrounded count is exact) and the true numerator within the
  rounding of its own published count (1-7 when it is ``*``; anything when it is not
  published). Every pair (numerator, base) consistent with the share at its printed precision
  is found; when they all give the same numerator, or the same rest of the base (base minus
  numerator), and it is 1-7, that count is recovered. A figure equal to the published
  numerator over the published base (or, numerator unpublished, to a count as it would be
  published over the published base) gives back nothing the counts beside it do not say, and
  passes.
- **rate x person-time**: the same with the base a published person-time, known to its
  printed precision.
- **a share of a suppressed count**: a figure published beside a ``*`` it is a share or rate
  of (the derived-figure rule withholds it), and a model figure published beside a ``*`` it
  rests on (:data:`WITHHELD_BESIDE`).
- **totals minus parts**: in every table with totals (:data:`MARGINS`), a margin with exactly
  one suppressed cell whose value the published others pin to one count of 1-7 (possible only
  when unrounded counts slipped through; rounded counts leave a range of at least 8).
- **rolling shares**: a rolling share must be the mean of the published monthly shares of its
  window; one computed from the true shares would give a month's back.

:func:`careval.report.publish.audit.audit_results` raises when the list is not empty.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeGuard

from careval.disclosure import DisclosureSettings
from careval.report.publish.rules import SUPPRESSED, protect_count, smallest_published

Kind = Literal["share", "mean", "rate"]


@dataclass(frozen=True)
class Derived:
    """A published figure derived from counts: ``scale`` x numerator / base.

    ``table`` is the dotted path of a list of rows (or of one dict), ``*`` matching any key;
    ``base`` and ``numerator`` are columns of the row, or ``^dotted.path`` from the root;
    ``numerator`` None: not published. ``kind``: ``share`` (numerator at most the base, whose
    rest is a count too), ``mean`` (a count over people) or ``rate`` (the base is a person-time,
    not a count). ``where``: only rows whose column matches the regular expression. ``per``:
    the path of a number of units per person of the base (the months before entry of each
    matched treated person): the figure is numerator / (base x per).
    """

    table: str
    figure: str
    base: str
    numerator: str | None = None
    scale: float = 1.0
    kind: Kind = "share"
    where: tuple[str, str] | None = None
    per: str | None = None  # a path: the base is that many units (months) per counted person


@dataclass(frozen=True)
class Margin:
    """Cells of ``table`` that add up to a total.

    Within a row (``parts`` a regular expression of columns, ``total`` a column), or, with
    ``column``, across rows: in each group of rows with equal ``keys``, the row whose
    ``column`` is ``total`` adds up the rows whose ``column`` matches ``parts``, count by count
    (``skip_first``: the first value of ``column`` in the table, the programme's own area,
    is no part). A ``table`` that is a dict is one row.
    """

    table: str
    parts: str
    total: str
    column: str | None = None
    keys: tuple[str, ...] = ()
    skip_first: bool = False


@dataclass(frozen=True)
class Rolling:
    """``figure`` is the mean of the last ``months`` (a path) values of ``of`` within ``keys``."""

    table: str
    figure: str
    of: str
    keys: tuple[str, ...]
    months: str


@dataclass(frozen=True)
class Beside:
    """``figures`` of ``table`` rest on ``counts``: withheld when one of them is ``*``."""

    table: str
    figures: tuple[str, ...]
    counts: tuple[str, ...]


_TOP = tuple(f"top_{t}pct" for t in ("1", "5"))
_MODEL = (
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "calibration_slope",
    "calibration_intercept",
    "brier",
)
_BINARY = ("type", "^binary$")
_COUNT_COVARIATE = ("covariate", "(admissions|attendances|bed_days|contacts)")
_BALANCE = (
    ("mean_treated", "^impact.attrition.treated_alive_and_registered_at_entry"),
    ("mean_control_before", "^impact.attrition.candidate_control_rows"),
    ("mean_treated_after", "^impact.attrition.treated_matched"),
    ("mean_control_after", "^impact.attrition.treated_matched"),
)
_SHARE_ROWS = ("quantity", "^share")

DERIVED: tuple[Derived, ...] = (
    Derived("data.people_by_area", "eligible_share", "registered", "eligible"),
    Derived(
        "data.activity_by_year",
        "emergency_per_1000_py",
        "person_years",
        "emergency_admissions",
        1000.0,
        "rate",
    ),
    Derived("risk", "sensitivity_top_0_5pct", "events"),
    Derived("risk", "sensitivity_top_1pct", "events"),
    Derived("risk", "sensitivity_top_2pct", "events"),
    Derived("risk", "sensitivity_top_5pct", "events"),
    Derived("risk.targeting", "share_in_top_5pct", "people"),
    Derived("risk.targeting", "share_in_top_1pct", "people"),
    Derived("risk.targeting", "emergency_per_person_year_prior", "people", kind="mean"),
    *(Derived("risk.by_subgroup", f"ppv_{t}", f"flagged_{t}") for t in _TOP),
    *(Derived("risk.by_subgroup", f"sensitivity_{t}", "events") for t in _TOP),
    Derived("monitoring.table2", "rate_after", "person_years_after", "admissions_after", 1, "rate"),
    Derived(
        "monitoring.table2", "rate_before", "person_years_before", "admissions_before", 1, "rate"
    ),
    *(Derived("impact.balance", m, base, where=_BINARY) for m, base in _BALANCE),
    *(
        Derived("impact.balance", m, base, kind="mean", where=_COUNT_COVARIATE)
        for m, base in _BALANCE
    ),
    Derived(
        "impact.outcomes.*",
        "mean_treated_before",
        "^impact.attrition.treated_matched",
        kind="mean",
        where=("model", "^poisson$"),  # counts and bed days; the costs are sums of money
        per="^impact.settings.pre_months",
    ),
    Derived(
        "impact.naive",
        "mean_before",
        "^impact.attrition.treated_matched",
        kind="mean",
        scale=1 / 12,
    ),
    Derived("design", "baseline_rate_per_person_year", "baseline_people", kind="mean", scale=12.0),
    Derived("indicators.diabetes.monthly", "share_with_reading", "people", "with_reading"),
    Derived("indicators.diabetes.monthly", "share_in_control", "people", "in_control"),
    Derived("indicators.dementia.monthly", "rate_per_1000", "registered", "new_diagnoses", 1000.0),
    Derived("indicators.before_after.table", "before", "n_before", where=_SHARE_ROWS),
    Derived("indicators.before_after.table", "after", "n_after", where=_SHARE_ROWS),
    Derived("surveys.surveys.*.items", "share_agree", "n_valid", "n_agree"),
    Derived("surveys.surveys.*.by_group", "share_agree", "n_valid", "n_agree"),
    Derived("surveys.surveys.*.response_rates", "response_rate", "invited", "responded"),
    Derived(
        "qualitative.transcripts.overall",
        "share_utterances",
        "^qualitative.transcripts.n_utterances",
        "utterances",
    ),
    Derived(
        "qualitative.transcripts.levels.levels",
        "share_utterances",
        "^qualitative.transcripts.levels.n_coded_utterances",
        "utterances",
    ),
    Derived(
        "qualitative.transcripts.levels",
        "share_of_utterances_coded",
        "^qualitative.transcripts.n_utterances",
        "n_coded_utterances",
    ),
)

WITHHELD_BESIDE: tuple[Beside, ...] = (
    Beside("risk.by_subgroup", _MODEL, ("events", "people")),
    Beside(
        "monitoring.table2",
        ("pct_change", "ci_low", "ci_high", "se_log_rate_ratio"),
        ("admissions_after", "admissions_before"),
    ),
    Beside(
        "indicators.before_after.table",
        ("statistic", "p_value", "ci_low", "ci_high"),
        ("both", "before_only", "after_only", "neither"),
    ),
)

MARGINS: tuple[Margin, ...] = (
    Margin("data.people_by_area", r"^(under_\d+_with|aged_\d+_plus_with)", "eligible"),
    Margin("monitoring.table2", r"^(?!all_eligible$)", "all_eligible", "group", ("start", "area")),
    Margin("risk.by_subgroup", "^age$", "all", "dimension"),
    Margin("risk.by_subgroup", "^sex$", "all", "dimension"),
    Margin(
        "impact.attrition",
        "^(treated_matched|unmatched_outside_caliper|unmatched_no_control_in_stratum)$",
        "treated_alive_and_registered_at_entry",
    ),
    Margin(
        "indicators.diabetes.monthly",
        r"^(?!comparators$)",
        "comparators",
        "area",
        ("month", "indicator"),
        skip_first=True,
    ),
    Margin("indicators.before_after.table", "^(both|before_only|after_only|neither)$", "n_before"),
    Margin("programme.plans_by_mdg", "^MDG", "total"),
)

ROLLING: tuple[Rolling, ...] = tuple(
    Rolling(
        "indicators.diabetes.monthly",
        f"{s}_rolling",
        s,
        ("area", "indicator"),
        "^indicators.settings.rolling_months",
    )
    for s in ("share_with_reading", "share_in_control")
)


@dataclass(frozen=True)
class Recovery:
    """One count of 1-7 the published results give back: where, from what, and how."""

    table: str
    row: str
    columns: tuple[str, ...]
    how: str

    def line(self) -> str:
        return f"{self.table} {self.row} ({', '.join(self.columns)}): {self.how}"


# ---------------------------------------------------------------------------------------------
# Reading the published results


def _tables(root: Any, path: str) -> Iterator[tuple[str, Any]]:
    """``(concrete path, value)`` of every node matching the dotted ``path`` (``*``: any key)."""

    def walk(node: Any, keys: list[str], at: str) -> Iterator[tuple[str, Any]]:
        if not keys:
            yield at, node
            return
        if not isinstance(node, dict):
            return
        head, rest = keys[0], keys[1:]
        names = list(node) if head == "*" else [head]
        for k in names:
            if k in node:
                yield from walk(node[k], rest, f"{at}.{k}" if at else k)

    yield from walk(root, path.split("."), "")


def _rows(table: Any) -> list[dict[str, Any]]:
    if isinstance(table, dict):
        return [table]
    if isinstance(table, list):
        return [r for r in table if isinstance(r, dict)]
    return []


def _value(root: Any, row: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("^"):
        return row.get(ref)
    node = root
    for k in ref[1:].split("."):
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node


def _label(table: Any, i: int, row: dict[str, Any]) -> str:
    if isinstance(table, dict):
        return "(block)"
    keys = [f"{k}={v}" for k, v in row.items() if isinstance(v, str) and v != SUPPRESSED][:3]
    return f"row {i}" + (f" [{', '.join(keys)}]" if keys else "")


def _kept(where: tuple[str, str] | None, row: dict[str, Any]) -> bool:
    """Whether ``row`` is one a spec's ``where`` (column, regular expression) selects."""
    return where is None or re.search(where[1], str(row.get(where[0]))) is not None


def _number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def half_unit(v: float) -> float:
    """Half a unit of the last printed decimal of ``v`` (its precision in ``results.json``).

    Examples
    --------
    >>> half_unit(0.890625), half_unit(12.5), half_unit(3)
    (5e-07, 0.05, 0.5)
    """
    if isinstance(v, int):
        return 0.5
    exponent = Decimal(repr(float(v))).as_tuple().exponent
    decimals = max(0, -int(exponent)) if isinstance(exponent, int) else 0
    return 0.5 * 10.0**-decimals


def count_range(v: Any, d: DisclosureSettings) -> tuple[int, float] | None:
    """The true counts a published count ``v`` can stand for (None: not a count).

    ``*``: 1 to one below :func:`smallest_published`; a rounded count: the counts that round to
    it; a count that is no multiple of the rounding base: itself (it slipped through unrounded).
    """
    if v == SUPPRESSED:
        return 1, smallest_published(d) - 1
    if not _number(v) or not float(v).is_integer():
        return None
    n = int(v)
    if n == 0:
        return 0, 0
    if n % d.rounding_base:
        return n, n
    near = [m for m in range(n - d.rounding_base, n + d.rounding_base + 1) if m >= 0]
    same = [m for m in near if protect_count(m, d) == n]
    return (min(same), max(same)) if same else (n, n)


def _small(v: int, d: DisclosureSettings) -> bool:
    return 1 <= v < smallest_published(d)


# ---------------------------------------------------------------------------------------------
# The checks

_BESIDE_SUPPRESSED = "published beside a suppressed count it rests on"


def _ratio(
    root: Any, spec: Derived, table: str, t: Any, d: DisclosureSettings
) -> Iterator[Recovery]:
    for i, row in enumerate(_rows(t)):
        s = row.get(spec.figure)
        if not _number(s) or not _kept(spec.where, row):
            continue
        base = _value(root, row, spec.base)
        num = row.get(spec.numerator) if spec.numerator else None
        cols = tuple(c for c in (spec.figure, spec.numerator, spec.base.lstrip("^")) if c)
        where = _label(t, i, row)
        one = spec
        if spec.per is not None:
            per = _value(root, row, spec.per)
            if not _number(per) or per <= 0:
                continue
            one = dataclasses.replace(spec, scale=spec.scale / float(per), per=None)
        found = _pinned(float(s), num, base, one, d)
        if found:
            yield Recovery(table, where, cols, found)
        elif base == SUPPRESSED or num == SUPPRESSED:
            yield Recovery(table, where, cols, _BESIDE_SUPPRESSED)


def _pinned(s: float, num: Any, base: Any, spec: Derived, d: DisclosureSettings) -> str | None:
    """How the figure ``s`` pins a count of 1-7 (None when it pins none)."""
    tol = half_unit(s) * (1 + 1e-9) + 1e-12
    k = spec.scale
    if spec.kind == "rate":
        if not _number(base) or float(base) <= 0:
            return None
        if _number(num) and abs(k * float(num) / float(base) - s) <= tol:
            return None
        h = half_unit(float(base))
        lo, hi = (s - tol) * (float(base) - h) / k, (s + tol) * (float(base) + h) / k
        n_range = count_range(num, d) if num is not None else (0, math.inf)
        if n_range is None:
            return None
        ns = [n for n in range(max(0, math.ceil(lo)), math.floor(hi) + 1)]
        ns = [n for n in ns if n_range[0] <= n <= n_range[1]]
        if len(ns) == 1 and _small(ns[0], d):
            return f"rate x person-time gives {ns[0]}"
        return None
    b_range = count_range(base, d)
    if b_range is None or b_range[1] <= 0:
        return None
    if num is not None:
        n_range = count_range(num, d)
        if n_range is None:
            return None
        if _number(num) and _number(base) and base > 0 and abs(k * num / base - s) <= tol:
            return None  # the published numerator over the published base: nothing new
    else:
        n_range = (0, math.inf)
        step = d.rounding_base
        centre = s * float(base) / k if _number(base) else 0.0
        near = {0, *(step * m for m in (math.floor(centre / step), math.ceil(centre / step)))}
        ok = [m for m in near if m == 0 or m >= smallest_published(d)]
        if _number(base) and base > 0 and any(abs(k * m / base - s) <= tol for m in ok):
            return None  # a count as it would be published, over the published base
    pairs = []
    for b in range(max(1, b_range[0]), int(b_range[1]) + 1):
        lo, hi = (s - tol) * b / k, (s + tol) * b / k
        for n in range(max(0, math.ceil(lo)), math.floor(hi) + 1):
            if n_range[0] <= n <= n_range[1] and (spec.kind != "share" or n <= b):
                pairs.append((n, b))
    if not pairs:
        return None
    nums = {n for n, _ in pairs}
    if len(nums) == 1 and _small(next(iter(nums)), d):
        return f"share x base gives the numerator {next(iter(nums))}"
    if spec.kind == "share":
        rests = {b - n for n, b in pairs}
        if len(rests) == 1 and _small(next(iter(rests)), d):
            return f"share x base gives base minus numerator {next(iter(rests))}"
    return None


def _beside(spec: Beside, table: str, t: Any) -> Iterator[Recovery]:
    for i, row in enumerate(_rows(t)):
        hidden = [c for c in spec.counts if row.get(c) == SUPPRESSED]
        shown = [f for f in spec.figures if row.get(f) is not None]
        if hidden and shown:
            yield Recovery(table, _label(t, i, row), (*shown, *hidden), _BESIDE_SUPPRESSED)


def _margins(spec: Margin, table: str, t: Any, d: DisclosureSettings) -> Iterator[Recovery]:
    rows = _rows(t)
    instances: list[tuple[str, list[tuple[str, Any]], tuple[str, Any]]] = []
    if spec.column is None:
        for i, row in enumerate(rows):
            parts = [(c, v) for c, v in row.items() if re.search(spec.parts, c)]
            if spec.total in row and parts:
                instances.append((_label(t, i, row), parts, (spec.total, row[spec.total])))
    else:
        col = spec.column
        first = rows[0].get(col) if rows and spec.skip_first else None
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row.get(k) for k in spec.keys), []).append(row)
        for key, g in groups.items():
            tot = [r for r in g if r.get(col) == spec.total]
            members = [
                r
                for r in g
                if r.get(col) != spec.total
                and r.get(col) != first
                and re.search(spec.parts, str(r.get(col)))
            ]
            if len(tot) != 1 or not members:
                continue
            for c, v in tot[0].items():
                if c in spec.keys or c == col or count_range(v, d) is None:
                    continue
                parts = [(f"{r.get(col)}.{c}", r.get(c)) for r in members]
                label = ", ".join(f"{k}={v}" for k, v in zip(spec.keys, key, strict=True))
                instances.append((f"[{label}]" if label else "", parts, (f"{spec.total}.{c}", v)))
    for where, parts, total in instances:
        cells = [*parts, total]
        ranges = [count_range(v, d) for _, v in cells]
        if any(r is None for r in ranges):
            continue
        hidden = [i for i, (_, v) in enumerate(cells) if v == SUPPRESSED]
        if len(hidden) != 1:
            continue
        h = hidden[0]
        known = [r for i, r in enumerate(ranges) if i != h and r is not None]
        if h == len(cells) - 1:  # the total is hidden: the sum of the parts
            lo, hi = float(sum(r[0] for r in known)), float(sum(r[1] for r in known))
        else:
            (t_lo, t_hi), others = known[-1], known[:-1]
            lo, hi = t_lo - sum(r[1] for r in others), t_hi - sum(r[0] for r in others)
        lo = max(lo, 1)  # a hidden cell is no 0 (0 is shown)
        if lo == hi and _small(int(lo), d):
            yield Recovery(
                table,
                where,
                (cells[h][0], total[0]),
                f"the total minus its other parts gives {int(lo)}",
            )


def _rolling(root: Any, spec: Rolling, table: str, t: Any) -> Iterator[Recovery]:
    k = _value(root, {}, spec.months)
    if not isinstance(k, int) or k < 1:
        return
    history: dict[tuple[Any, ...], list[Any]] = {}
    for i, row in enumerate(_rows(t)):
        seen = history.setdefault(tuple(row.get(c) for c in spec.keys), [])
        seen.append(row.get(spec.of))
        v = row.get(spec.figure)
        if not _number(v):
            continue
        window = seen[-k:]
        if len(window) == k and all(_number(x) for x in window):
            mean = sum(float(x) for x in window) / k
            tol = half_unit(float(v)) + max(half_unit(float(x)) for x in window)
            if abs(mean - float(v)) <= tol * (1 + 1e-9):
                continue
        yield Recovery(
            table,
            _label(t, i, row),
            (spec.figure, spec.of),
            f"not the mean of the {k} published monthly values (gives a month back)",
        )


def recoveries(results: dict[str, Any], d: DisclosureSettings) -> list[Recovery]:
    """Every count of 1-7 the published ``results`` give back (see the module doc)."""
    found: list[Recovery] = []
    for spec in DERIVED:
        for table, t in _tables(results, spec.table):
            found += _ratio(results, spec, table, t, d)
    for b in WITHHELD_BESIDE:
        for table, t in _tables(results, b.table):
            found += _beside(b, table, t)
    for m in MARGINS:
        for table, t in _tables(results, m.table):
            found += _margins(m, table, t, d)
    for r in ROLLING:
        for table, t in _tables(results, r.table):
            found += _rolling(results, r, table, t)
    return found
