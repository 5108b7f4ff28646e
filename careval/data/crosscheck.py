"""The rules that look across rows or tables: lives, ages, registration periods, care plans.

Each is one set-based query in the engine (a join, an anti-join or a window over the table), so
it costs about one scan of the tables it reads whatever their size; an example row is fetched
only for a rule that fails. A rule whose columns are unusable (missing, mistyped, or in an empty
required table) is left out: that problem is reported once, where it is.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from careval.data.access import age_years
from careval.data.checks import Context, Rule, rows_of, run
from careval.data.schema import EARLIEST_DATE, MAX_AGE, SEVERITY, Table
from careval.errors import Problem

BIRTH, DEATH = "person_birth_month", "person_death_date"  # persons' dates joined to events
OPEN = ibis.date(9999, 12, 31)  # a null end date: the period has not ended
REGISTERED = ("person_id", "practice_code", "start_date", "end_date")


def people(ctx: Context, unique: bool) -> ir.Table | None:
    """Each person's usable birth month and death date, or None when neither can be used."""
    dates = {BIRTH: "birth_month", DEATH: "death_date"}
    dates = {k: v for k, v in dates.items() if ctx.usable("persons", "person_id", v)}
    if not dates:
        return None
    p = ctx.table("persons")
    if unique:
        return p.select("person_id", **{k: p[v] for k, v in dates.items()})
    # Duplicate persons (reported there): one row each, the most lenient dates.
    lenient = {BIRTH: p.birth_month.min(), DEATH: p.death_date.max()}
    return p.group_by("person_id").aggregate(**{k: lenient[k] for k in dates})


def life(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """Dates before the person's birth month or after their death, in one query."""
    usable = ctx.ok[table.name]
    before = [d for d in (*table.life_events, *table.after_birth) if d in usable]
    after = [d for d in table.life_events if d in usable]
    if not before or ctx.people is None or "person_id" not in usable:
        return []
    j = t.join(ctx.people, "person_id")
    rules = []
    if BIRTH in ctx.people.columns:
        rules += [
            Rule(
                d,
                f"{d} before birth month",
                "on or after the person's birth month",
                j[d] < j[BIRTH],
                (d,),
            )
            for d in before
        ]
    if DEATH in ctx.people.columns:
        rules += [
            Rule(
                d, f"{d} after death", "on or before the person's death_date", j[d] > j[DEATH], (d,)
            )
            for d in after
        ]
    return run(ctx, table.name, j, rules, ctx.key(table.name))


def age(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """People older than :data:`MAX_AGE` at death, or at the extract date when alive."""
    if not table.max_age or not ctx.usable(table.name, *table.max_age):
        return []
    birth, death = table.max_age
    at = t[death].coalesce(ibis.date(ctx.extract))
    rel = t.mutate(age=age_years(t[birth], at))
    # A birth before 1900 is already an error of its own; it is not counted twice.
    bad = (rel.age > MAX_AGE) & (rel[birth] >= EARLIEST_DATE)
    rule = Rule(
        birth,
        f"age over {MAX_AGE}",
        f"at most {MAX_AGE} years at {death}, else at the extract date {ctx.bound}",
        bad,
        ("age",),
        SEVERITY["max_age"],
    )
    return run(ctx, table.name, rel, [rule], ctx.key(table.name))


def overlaps(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """Rows whose period overlaps another period of the same person (every such row counted).

    Ordered by start, then end (open last), a period overlaps another exactly when it starts
    before the latest end among the periods ordered before it, or when the next one starts
    before it ends: two window functions over the table, no self-join.
    """
    if not table.periods or not ctx.usable(table.name, *table.periods):
        return []
    who, start, end = table.periods
    rel = t.filter(t[who].notnull() & t[start].notnull())
    until = rel[end].coalesce(OPEN)
    order = [rel[start], until]
    earlier = ibis.window(group_by=who, order_by=order, rows=(None, -1))
    x = rel.mutate(
        _earlier_end=until.max().over(earlier),
        _next_start=rel[start].lead().over(ibis.window(group_by=who, order_by=order)),
    )
    bad = (x[start] < x._earlier_end) | (x._next_start < x[end].coalesce(OPEN))
    rule = Rule(
        f"{start},{end}",
        f"overlapping {table.name}",
        f"one period at a time per {who}: each starting on or after the {end} of any that "
        f"started before it (a null {end} is still open)",
        bad,
        ("practice_code", start, end) if "practice_code" in rel.columns else (start, end),
    )
    return run(ctx, table.name, x, [rule], [who])


def _on(rel: ir.Table, reg: ir.Table, date: str) -> list[ir.BooleanValue]:
    """Join predicates: ``reg`` is the person's registration covering ``rel``'s ``date``.

    The open end is a coalesce, not ``end_date IS NULL OR ...``: an OR in the condition turns
    DuckDB's hash join on person_id into a nested loop (minutes instead of a fraction of a
    second at 1.1 million people).
    """
    return [
        rel.person_id == reg.person_id,
        reg.start_date <= rel[date],
        reg.end_date.coalesce(OPEN) >= rel[date],
    ]


def registered_on(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """Rows of a person with no registration covering their date, or one at another MDG."""
    if not table.registered_on or not ctx.usable("registrations", *REGISTERED):
        return []
    date, mdg = table.registered_on
    if not ctx.usable(table.name, "person_id", date):
        return []
    key, reg = ctx.key(table.name), ctx.table("registrations")
    dated = t.filter(t.person_id.notnull() & t[date].notnull())
    out = rows_of(
        ctx,
        table.name,
        dated.anti_join(reg, _on(dated, reg, date)),
        date,
        f"{table.name.removesuffix('s').replace('_', ' ')} for a person not registered on "
        f"that {date}",
        f"a registration covering the {date} (start_date on or before it, end_date null or on "
        "or after it)",
        [*key, date],
        SEVERITY["registered_on"],
    )
    if not ctx.usable(table.name, mdg) or not ctx.usable("practices", "practice_code", "mdg"):
        return out
    pr = ctx.table("practices")
    at = reg.join(pr, "practice_code").select(*REGISTERED, practice_mdg=pr.mdg)
    # Only MDGs some practice has: an unknown one is an error of its own, not counted twice.
    known = dated.semi_join(pr, dated[mdg] == pr.mdg)
    covered = known.semi_join(reg, _on(known, reg, date))
    other = covered.anti_join(at, [*_on(covered, at, date), at.practice_mdg == covered[mdg]])
    return out + rows_of(
        ctx,
        table.name,
        other,
        mdg,
        f"{mdg} differs from the MDG of the practice registered with on {date}",
        f"the {mdg} of a practice the person is registered with on the {date}",
        [*key, date, mdg],
        SEVERITY["registered_mdg"],
    )


def used_by(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """Rows whose key no row of the using table names (a practice with no registration)."""
    if not table.used_by:
        return []
    (col,), (rt, rc) = table.key, table.used_by.split(".")
    if not ctx.usable(table.name, col) or not ctx.usable(rt, rc):
        return []
    ref = ctx.table(rt)
    keyed = t.filter(t[col].notnull())
    return rows_of(
        ctx,
        table.name,
        keyed.anti_join(ref, keyed[col] == ref[rc]),
        col,
        f"not named in {table.used_by}",
        f"each {col} named by at least one row of {rt} (one named by none has no one in any "
        "analysis)",
        [col],
        SEVERITY["used_by"],
    )


def check(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """Every cross-row and cross-table rule of one table."""
    return [
        *life(ctx, table, t),
        *age(ctx, table, t),
        *overlaps(ctx, table, t),
        *registered_on(ctx, table, t),
        *used_by(ctx, table, t),
    ]
