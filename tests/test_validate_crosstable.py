"""Rules across rows and tables, on corrupted copies of the generated dataset: exact counts.

Each corruption changes rows picked from people no other corruption touches, so every problem
reported is one made here (the clean dataset has none at all), and the count is known.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from careval.data.checks import HIDDEN
from careval.data.schema import TABLES
from careval.data.validate import require_valid, validate
from careval.errors import ConfigError, DataValidationError, Problem

DAY = dt.timedelta(days=1)
EVENTS = (
    "conditions",
    "measurements",
    "inpatient_spells",
    "ae_attendances",
    "outpatient_appointments",
    "community_contacts",
    "care_plans",
)
# (table, column, rule) -> (rows corrupted, severity, person_id or key the example must name)
Expected = dict[tuple[str, str, str], tuple[int, str, set[str]]]


def _read(d: Path, name: str) -> pa.Table:
    return pq.read_table(d / f"{name}.parquet")


def _write(d: Path, name: str, t: pa.Table) -> None:
    assert t.schema.types == _read(d, name).schema.types  # dates stay date32, and so on
    pq.write_table(t, d / f"{name}.parquet")


def _set(d: Path, name: str, col: str, values: dict[int, Any]) -> None:
    """Set ``col`` in the rows given (row -> new value) of table ``name``."""
    t = _read(d, name)
    old = t.column(col).to_pylist()
    for i, v in values.items():
        old[i] = v
    field = t.schema.field(col)
    _write(d, name, t.set_column(t.schema.get_field_index(col), field, pa.array(old, field.type)))


def _append(d: Path, name: str, rows: list[dict[str, Any]]) -> None:
    t = _read(d, name)
    _write(d, name, pa.concat_tables([t, pa.Table.from_pylist(rows, schema=t.schema)]))


def _copy(synth_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(synth_dir, d)
    return d


def _frame(d: Path, name: str) -> pd.DataFrame:
    """A table as pandas with its dates as ``datetime.date`` (as Arrow gives them back)."""
    return _read(d, name).to_pandas(date_as_object=True)


class Picker:
    """Rows of people no earlier pick has touched, so that corruptions never interact."""

    def __init__(self, d: Path) -> None:
        self.persons = _frame(d, "persons").set_index("person_id")
        self.used: set[str] = set()
        self.active = set().union(*(set(_frame(d, n).person_id) for n in EVENTS))

    def rows(
        self, df: pd.DataFrame, k: int, where: Callable[[pd.DataFrame], pd.Series] | None = None
    ) -> list[int]:
        """``k`` row positions of ``df`` (where ``where`` holds), one per unused person."""
        ok = df if where is None else df[where(df)]
        ok = ok[~ok.person_id.isin(self.used)].drop_duplicates("person_id")
        assert len(ok) >= k
        picked = ok.sort_values("person_id").head(k)
        self.used |= set(picked.person_id)
        return [df.index.get_loc(i) for i in picked.index]

    def alive(self, df: pd.DataFrame) -> pd.Series:
        return df.person_id.map(self.persons.death_date).isna()

    def dead(self, df: pd.DataFrame) -> pd.Series:
        return ~self.alive(df)

    def idle(self, df: pd.DataFrame) -> pd.Series:
        """Alive, with no event in any table: a change to their dates moves nothing else."""
        return self.alive(df) & ~df.person_id.isin(self.active)

    def birth(self, pid: str) -> dt.date:
        return self.persons.birth_month[pid]

    def death(self, pid: str) -> dt.date:
        return self.persons.death_date[pid]


def corrupt(d: Path) -> Expected:
    """Every kind of cross-table breach at once; returns what validation must report."""
    pick, ex = Picker(d), {}
    persons, reg = _frame(d, "persons"), _frame(d, "registrations")
    plans, practices = _frame(d, "care_plans"), _frame(d, "practices")
    mdg_of = dict(zip(practices.practice_code, practices.mdg, strict=True))

    # 1. Overlapping registrations: three people get a second, overlapping period at another
    # practice (both of each pair's rows count: 6). A fourth gets a same-day transfer (a new
    # registration starting on the end_date of the old one): allowed, not counted.
    rows = pick.rows(reg, 3, lambda r: r.end_date.isna() & ~r.person_id.isin(plans.person_id))
    other = {c: practices.practice_code[practices.practice_code != c].iloc[0] for c in mdg_of}
    _append(
        d,
        "registrations",
        [
            {
                "person_id": reg.person_id[i],
                "practice_code": other[reg.practice_code[i]],
                "start_date": reg.start_date[i] + 10 * DAY,
                "end_date": reg.start_date[i] + 40 * DAY,
            }
            for i in rows
        ],
    )
    overlapping = {reg.person_id[i] for i in rows}
    [i] = pick.rows(reg, 1, lambda r: r.end_date.notna() & ~r.person_id.isin(plans.person_id))
    transfer = {
        "person_id": reg.person_id[i],
        "practice_code": other[reg.practice_code[i]],
        "start_date": reg.end_date[i],
        "end_date": None,
    }
    _append(d, "registrations", [transfer])
    ex["registrations", "start_date,end_date", "overlapping registrations"] = (
        6,
        "error",
        overlapping,
    )

    # 2. Events outside the person's life, in every dated event table.
    def before_birth(name: str, col: str, k: int = 1) -> None:
        df = _frame(d, name)
        rows = pick.rows(df, k)
        _set(d, name, col, {i: pick.birth(df.person_id[i]) - DAY for i in rows})
        ex[name, col, f"{col} before birth month"] = (k, "error", {df.person_id[i] for i in rows})

    def after_death(name: str, col: str, k: int = 1) -> None:
        df = _frame(d, name)
        rows = pick.rows(df, k, pick.dead)
        _set(d, name, col, {i: pick.death(df.person_id[i]) + DAY for i in rows})
        ex[name, col, f"{col} after death"] = (k, "error", {df.person_id[i] for i in rows})

    before_birth("conditions", "date")
    after_death("measurements", "date", 2)
    before_birth("inpatient_spells", "admission_date")
    after_death("inpatient_spells", "discharge_date")
    before_birth("ae_attendances", "arrival_date")
    after_death("outpatient_appointments", "appointment_date", 2)
    before_birth("community_contacts", "contact_date")
    after_death("care_plans", "created_date")  # also not registered that day: see 6.
    late_plan = ex["care_plans", "created_date", "created_date after death"][2]
    reg = _frame(d, "registrations")
    rows = pick.rows(reg, 1, pick.alive)
    _set(d, "registrations", "start_date", {i: pick.birth(reg.person_id[i]) - DAY for i in rows})
    ex["registrations", "start_date", "start_date before birth month"] = (
        1,
        "error",
        {reg.person_id[i] for i in rows},
    )
    rows = pick.rows(persons, 1, pick.idle)
    _set(d, "persons", "death_date", {i: persons.birth_month[i] - DAY for i in rows})
    ex["persons", "birth_month,death_date", "death_date before birth_month"] = (
        1,
        "error",
        {persons.person_id[i] for i in rows},
    )

    # 3. Dates before 1900 (births in 1799, a meeting in 1899) and after the extract date.
    rows = pick.rows(persons, 2, pick.idle)
    _set(d, "persons", "birth_month", {i: dt.date(1799, 1, 1) for i in rows})
    ex["persons", "birth_month", "date before 1900-01-01"] = (
        2,
        "error",
        {persons.person_id[i] for i in rows},
    )
    meetings = _frame(d, "mdg_meetings")
    _set(d, "mdg_meetings", "meeting_date", {0: dt.date(1899, 12, 31)})
    ex["mdg_meetings", "meeting_date", "date before 1900-01-01"] = (
        1,
        "error",
        {meetings.meeting_id[0]},
    )
    spells = _frame(d, "inpatient_spells")
    rows = pick.rows(spells, 1, pick.alive)
    _set(d, "inpatient_spells", "admission_date", {rows[0]: dt.date(2091, 3, 1)})
    _set(d, "inpatient_spells", "discharge_date", {rows[0]: dt.date(2091, 3, 5)})
    for col in ("admission_date", "discharge_date"):
        ex["inpatient_spells", col, "date after the extract date"] = (
            1,
            "error",
            {spells.person_id[rows[0]]},
        )
    _set(d, "innovation_fund", "allocation_date", {0: dt.date(2091, 1, 1)})
    fund = _frame(d, "innovation_fund")
    ex["innovation_fund", "allocation_date", "date after the extract date"] = (
        1,
        "error",
        {fund.allocation_id[0]},
    )

    # 5. MDGs no practice has (the meeting's attendance rows are reached through the meeting).
    rows = pick.rows(plans, 2, pick.alive)
    _set(d, "care_plans", "mdg", {i: "MDG77" for i in rows})
    ex["care_plans", "mdg", "not found in practices.mdg"] = (
        2,
        "error",
        {plans.person_id[i] for i in rows},
    )
    _set(d, "mdg_meetings", "mdg", {1: "MDG88"})
    ex["mdg_meetings", "mdg", "not found in practices.mdg"] = (1, "error", {meetings.meeting_id[1]})
    _set(d, "innovation_fund", "mdg", {1: "MDG99"})
    ex["innovation_fund", "mdg", "not found in practices.mdg"] = (
        1,
        "error",
        {fund.allocation_id[1]},
    )

    # 6. Care plans of people not registered that day: two registrations end the day before
    # the plan (a third ends on the plan's day: still registered, not counted), plus the plan
    # made after death above. Three plans name an MDG other than their practice's.
    reg = _frame(d, "registrations")
    started = dict(zip(reg.person_id, reg.start_date, strict=False))
    rows = pick.rows(
        plans, 3, lambda c: pick.alive(c) & (c.person_id.map(started) < c.created_date)
    )
    ends = {}
    for n, i in enumerate(rows):
        [r] = reg.index[reg.person_id == plans.person_id[i]]
        ends[r] = plans.created_date[i] - (DAY if n < 2 else 0 * DAY)
    _set(d, "registrations", "end_date", ends)
    ex[
        "care_plans", "created_date", "care plan for a person not registered on that created_date"
    ] = (
        3,
        "warning",
        {plans.person_id[i] for i in rows[:2]} | late_plan,
    )
    rows = pick.rows(plans, 3, pick.alive)
    registered_at = dict(zip(reg.person_id, reg.practice_code, strict=True))
    mdgs = sorted(m for m in set(mdg_of.values()) if isinstance(m, str))
    wrong = {}
    for i in rows:
        own = mdg_of[registered_at[plans.person_id[i]]]
        wrong[i] = next(m for m in mdgs if m != own and m != plans.mdg[i])
    _set(d, "care_plans", "mdg", wrong)
    rule = "mdg differs from the MDG of the practice registered with on created_date"
    ex["care_plans", "mdg", rule] = (3, "warning", {plans.person_id[i] for i in rows})

    # 7. A practice no registration names.
    _append(
        d,
        "practices",
        [{"practice_code": "Z99999", "mdg": None, "locality": "Nowhere", "area": "outer_nwl"}],
    )
    ex["practices", "practice_code", "not named in registrations.practice_code"] = (
        1,
        "warning",
        {"Z99999"},
    )
    return ex


def _shown(p: Problem) -> dict[str, str]:
    """The columns and values of a problem's example row."""
    return dict(kv.split("=", 1) for kv in p.example.split(", ") if "=" in kv)


def test_clean_generated_dataset_has_no_problem_at_all(synth_dir: Path) -> None:
    """No error and no warning: every count below is the corruption's own."""
    assert validate(synth_dir) == []
    manifest = json.loads((synth_dir / "dataset.json").read_text())
    assert dt.date.fromisoformat(manifest["extract_date"]) >= dt.date(2014, 3, 31)


def test_every_cross_table_breach_with_its_exact_count(synth_dir: Path, tmp_path: Path) -> None:
    d = _copy(synth_dir, tmp_path)
    expected = corrupt(d)
    problems = validate(d)
    found = {(p.table, p.column, p.rule): p for p in problems}
    assert set(found) == set(expected), set(found) ^ set(expected)
    lsoas = set(_frame(d, "persons").lsoa)
    for k, (count, severity, ids) in expected.items():
        p = found[k]
        assert (p.count, p.severity) == (count, severity), (k, p)
        line = p.line()
        assert line.startswith(f"{p.table}.{p.column}: ") and f"({count:,} row" in line, line
        assert set(_shown(p).values()) & ids, (k, p.example)  # names an offending row
        assert not set(_shown(p)) & HIDDEN, p.example  # never a birth month, death, LSOA
        assert "1799" not in line and not any(x in line for x in lsoas), line
    extract = json.loads((d / "dataset.json").read_text())["extract_date"]
    assert f"on or before {extract} (extract_date in dataset.json)" == (
        found["inpatient_spells", "admission_date", "date after the extract date"].allowed
    )
    with pytest.raises(DataValidationError) as info:
        require_valid(d)  # the one-argument call of careval.evaluation still works
    errors = [k for k, v in expected.items() if v[1] == "error"]
    assert f"{len(errors)} problems found" in str(info.value)


def test_validate_command_lists_every_problem_and_nothing_identifying(
    synth_dir: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    d = _copy(synth_dir, tmp_path)
    expected = corrupt(d)
    res = cli("validate", str(d))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    text = res.stderr
    errors = [x for x in text.splitlines() if x.startswith("  - ")]
    warnings = [x for x in text.splitlines() if x.startswith("  warning: ")]
    n_errors = sum(v[1] == "error" for v in expected.values())
    assert (len(errors), len(warnings)) == (n_errors, len(expected) - n_errors), text
    for (table, column, rule), (count, _, _) in expected.items():
        assert f"{table}.{column}: {rule} ({count:,} row" in text
    persons = _frame(d, "persons")
    assert not any(x in text for x in persons.lsoa), "an LSOA reached the output"
    for hidden in HIDDEN:
        assert f"{hidden}=" not in text
    shown = set(re.findall(r"(\w+)=", text))  # every value named in an example
    assert shown <= {
        "person_id",
        "spell_id",
        "attendance_id",
        "appointment_id",
        "contact_id",
        "care_plan_id",
        "meeting_id",
        "allocation_id",
        "practice_code",
        "mdg",
        *(c.name for t in TABLES.values() for c in t.columns if c.type == "date"),
    }, shown


def test_ages_over_115_at_death_or_at_the_extract_date(synth_dir: Path, tmp_path: Path) -> None:
    d = _copy(synth_dir, tmp_path)
    later = dt.date(2019, 6, 1)  # later than the synthetic extract, so that 115 is reachable
    ages = [p for p in validate(d, later) if p.rule == "age over 115"]
    assert ages == []  # the oldest generated person is 114 then
    pick, persons = Picker(d), _frame(d, "persons")
    old = pick.rows(persons, 3, pick.idle)
    dead = pick.rows(persons, 1, pick.dead)
    _set(
        d,
        "persons",
        "birth_month",
        {
            old[0]: dt.date(1901, 1, 1),  # 118 in June 2019
            old[1]: dt.date(1903, 5, 1),  # 116
            old[2]: dt.date(1904, 5, 1),  # 115 and a month: not over 115
            dead[0]: dt.date(1900, 1, 1),  # died at most 114: would be 119 at the extract
        },
    )
    [p] = [p for p in validate(d, extract_date=later) if p.rule == "age over 115"]
    assert (p.table, p.column, p.count, p.severity) == ("persons", "birth_month", 2, "warning")
    assert "2019-06-01 (the extract date given)" in p.allowed
    shown = _shown(p)
    assert shown["person_id"] in {persons.person_id[i] for i in old[:2]}
    assert shown["age"] in {"118", "116"} and "birth_month" not in shown
    assert [w.rule for w in require_valid(d, later)] == ["age over 115"]  # a warning only


def test_extract_date_from_the_manifest_else_today(synth_dir: Path, tmp_path: Path) -> None:
    d = _copy(synth_dir, tmp_path)
    manifest = json.loads((d / "dataset.json").read_text())
    extract = dt.date.fromisoformat(manifest["extract_date"])
    pick, ae = Picker(d), _frame(d, "ae_attendances")
    late, last = pick.rows(ae, 2, pick.alive)
    _set(d, "ae_attendances", "arrival_date", {late: extract + DAY, last: extract})  # one late
    [p] = validate(d)
    assert (p.table, p.column, p.rule, p.count) == (
        "ae_attendances",
        "arrival_date",
        "date after the extract date",
        1,
    )
    assert p.allowed == f"on or before {extract} (extract_date in dataset.json)"
    assert _shown(p)["person_id"] == ae.person_id[late]
    # The date given to validation wins over the manifest's.
    given = validate(d, extract - 30 * DAY)
    assert given and all(p.allowed.endswith("(the extract date given)") for p in given)
    at_noon = dt.datetime.combine(extract - 30 * DAY, dt.time(12))
    assert validate(d, extract_date=at_noon) == given  # a datetime counts as its day
    with pytest.raises(ConfigError, match="after today"):
        validate(d, dt.date.today() + DAY)
    with pytest.raises(ConfigError, match="must be a date"):
        validate(d, "2014-04-30")  # type: ignore[arg-type]
    # Without one, today's date is the bound, and the messages say so.
    del manifest["extract_date"]
    (d / "dataset.json").write_text(json.dumps(manifest))
    assert [p for p in validate(d) if p.severity == "error"] == []
    _set(d, "ae_attendances", "arrival_date", {late: dt.date(2091, 1, 1)})
    [p] = [p for p in validate(d) if p.severity == "error"]
    assert p.rule == "date after the extract date" and p.count == 1
    today = dt.date.today().isoformat()
    assert p.allowed == (
        f"on or before {today} (today's date: none given, and extract_date in dataset.json "
        "is absent)"
    )
    # Ages are counted at today's date too: the oldest generated survivors are over 115 now,
    # which is why the generator records its extract date.
    [age] = [p for p in validate(d) if p.severity == "warning"]
    assert age.rule == "age over 115" and f"{today} (today's date" in age.allowed


@pytest.mark.parametrize(
    ("value", "rule"),
    [("31/03/2014", "not a date"), (str(dt.date.today() + 400 * DAY), "extract date after today")],
)
def test_a_bad_manifest_extract_date_is_an_error(
    synth_dir: Path, tmp_path: Path, value: str, rule: str
) -> None:
    d = _copy(synth_dir, tmp_path)
    manifest = json.loads((d / "dataset.json").read_text())
    (d / "dataset.json").write_text(json.dumps({**manifest, "extract_date": value}))
    # (Without a usable extract date the oldest survivors are over 115 today: warnings.)
    [p] = [p for p in validate(d) if p.severity == "error"]
    assert (p.table, p.column, p.rule, p.severity) == (
        "dataset.json",
        "extract_date",
        rule,
        "error",
    )
    assert value in p.example


@pytest.mark.parametrize("name", [t.name for t in TABLES.values() if t.required])
def test_an_empty_required_table_is_one_error(synth_dir: Path, tmp_path: Path, name: str) -> None:
    d = _copy(synth_dir, tmp_path)
    _write(d, name, _read(d, name).slice(0, 0))
    problems = validate(d)
    errors = [(p.table, p.column, p.rule) for p in problems if p.severity == "error"]
    assert errors == [(name, "*", "required table is empty")]
    # What would read it says it cannot (a warning), instead of a cascade of errors.
    assert all(p.rule == f"cannot check: {name} empty" for p in problems if p.severity != "error")
    with pytest.raises(DataValidationError, match=f"{name}.\\*: required table is empty"):
        require_valid(d)


def test_evaluate_stops_on_an_empty_table_before_any_analysis(
    synth_dir: Path, tmp_path: Path
) -> None:
    """It used to fail later, with KeyError 'start' or 'Cannot compare NaT with datetime.date'."""
    from careval.evaluation import evaluate

    d = _copy(synth_dir, tmp_path)
    _write(d, "registrations", _read(d, "registrations").slice(0, 0))
    with pytest.raises(DataValidationError, match="registrations"):
        evaluate(d)


def test_extract_date_option(synth_dir: Path, cli: Callable[..., Any]) -> None:
    spells = _frame(synth_dir, "inpatient_spells")
    late = int((spells.discharge_date > dt.date(2014, 3, 31)).sum())
    assert late > 0  # spells admitted in March 2014 end after it
    res = cli("validate", str(synth_dir), "--extract-date", "2014-03-31")
    assert res.returncode == 2
    assert (
        f"inpatient_spells.discharge_date: date after the extract date ({late:,} rows); "
        "allowed: on or before 2014-03-31 (the extract date given)"
    ) in res.stderr
    res = cli("validate", str(synth_dir), "--extract-date", "31/03/2014")
    assert res.returncode == 2 and "--extract-date must be a date as YYYY-MM-DD" in res.stderr
    res = cli("validate", str(synth_dir))
    assert res.returncode == 0 and "valid" in res.stdout


def test_generator_records_an_extract_date_after_every_date(synth_dir: Path) -> None:
    manifest = json.loads((synth_dir / "dataset.json").read_text())
    extract = dt.date.fromisoformat(manifest["extract_date"])
    latest = max(
        v
        for t in TABLES.values()
        for c in t.columns
        if c.type == "date"
        for v in _read(synth_dir, t.name).column(c.name).to_pylist()
        if v is not None
    )
    assert extract == max(latest, dt.date(2014, 3, 31))  # the window's last day at the least
