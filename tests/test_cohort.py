"""Eligibility rules: code lists, the groups they make, and counts checked against pandas."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.cohort.eligibility import (
    GROUP_NAME,
    GROUPS,
    EligibilitySettings,
    population_at,
)
from careval.cohort.summary import SummarySettings, summarise
from careval.data.access import Dataset
from careval.data.codelists import code_list
from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.monitoring.areas import ALL, AreaSettings, evaluate_areas
from careval.report.publish.data import publish_summary
from careval.report.publish.model import AreaPeople
from careval.report.publish.rules import SUPPRESSED, is_count_key

REF = dt.date(2011, 7, 1)
# COPD as careval/data/codelists/conditions.csv lists it (checked below), written out here so
# the independent count does not read careval's list through careval.
COPD_SNOMED = {"13645005"}
COPD_ICD10_PREFIXES = ("J43", "J44")
COPD_AND_65 = EligibilitySettings(min_age=65, conditions=("copd",), combine="and")
COPD_OR_65 = EligibilitySettings(min_age=65, conditions=("copd",), combine="or")


def _copd_file(path: Path, name: str = "copd_local", label: str = "COPD") -> Path:
    """A custom COPD code list in conditions.csv's format: the built-in list's codes."""
    path.write_text(
        "condition,label,code_system,code,match,description\n"
        f"{name},{label},SNOMED,13645005,exact,Chronic obstructive lung disease\n"
        f"{name},{label},ICD10,J43,prefix,Emphysema\n"
        f"{name},{label},ICD10,J44,prefix,Other COPD\n",
        encoding="utf-8",
    )
    return path


def _independent(data: Path, day: dt.date) -> pd.DataFrame:
    """Everyone registered and alive on ``day`` with area, age and COPD by then: pandas only."""
    d = pd.Timestamp(day)
    reg = pd.read_parquet(data / "registrations.parquet")
    start, end = pd.to_datetime(reg.start_date), pd.to_datetime(reg.end_date)
    reg = reg[(start <= d) & (end.isna() | (end >= d))]
    reg = reg.sort_values(["person_id", "start_date"]).drop_duplicates("person_id", keep="last")
    practices = pd.read_parquet(data / "practices.parquet").set_index("practice_code")
    p = pd.read_parquet(data / "persons.parquet").set_index("person_id")
    death = pd.to_datetime(p.death_date)
    p = p[death.isna() | (death > d)]
    out = reg[["person_id", "practice_code"]].join(p, on="person_id", how="inner")
    out["area"] = out.practice_code.map(practices.area)
    birth = pd.to_datetime(out.birth_month)
    months = (d.year * 12 + d.month - 1) - (birth.dt.year * 12 + birth.dt.month - 1)
    out["age"] = months // 12
    c = pd.read_parquet(data / "conditions.parquet")
    gp = (c.code_system == "SNOMED") & c.code.isin(COPD_SNOMED)
    gp |= (c.code_system == "ICD10") & c.code.str.startswith(COPD_ICD10_PREFIXES)
    s = pd.read_parquet(data / "inpatient_spells.parquet")
    hosp = s.primary_diagnosis.str.startswith(COPD_ICD10_PREFIXES)
    ids = set(c.person_id[gp & (pd.to_datetime(c.date) <= d)])
    ids |= set(s.person_id[hosp & (pd.to_datetime(s.admission_date) <= d)])
    out["copd"] = out.person_id.isin(ids)
    return out.reset_index(drop=True)


def test_the_independent_count_uses_the_built_in_copd_codes() -> None:
    codes = code_list("copd").codes
    assert {c.code for c in codes if c.code_system == "SNOMED" and c.match == "exact"} == (
        COPD_SNOMED
    )
    assert tuple(c.code for c in codes if c.code_system == "ICD10") == COPD_ICD10_PREFIXES
    assert all(c.match == "prefix" for c in codes if c.code_system == "ICD10")


def test_default_is_the_programme_rule() -> None:
    st = EligibilitySettings()
    assert (st.min_age, st.conditions, st.combine) == (75, ("diabetes",), "or")
    assert st.group_names() == GROUPS
    assert [g.label for g in st.groups()] == [
        "Under 75 with diabetes",
        "75+ without diabetes",
        "75+ with diabetes",
    ]
    assert st.describe() == "aged 75+ and/or with diabetes"
    assert st.describe(short=True) == "75+ and/or diabetes"


def test_group_names_and_labels_follow_the_rule(tmp_path: Path) -> None:
    assert COPD_OR_65.group_names() == (
        "under_65_with_copd",
        "aged_65_plus_without_copd",
        "aged_65_plus_with_copd",
    )
    assert COPD_OR_65.groups()[1].label == "65+ without COPD"
    both = EligibilitySettings(min_age=80, conditions=("heart_failure", "dementia"))
    assert both.group_names()[0] == "under_80_with_heart_failure_or_dementia"
    assert both.groups()[0].label == "Under 80 with heart failure or dementia"
    assert both.describe() == "aged 80+ and/or with heart failure or dementia"
    custom = EligibilitySettings(min_age=70, conditions=(str(_copd_file(tmp_path / "c.csv")),))
    assert custom.group_names()[2] == "aged_70_plus_with_copd_local"
    # No split: "and", an age alone, conditions alone make one eligible population.
    assert COPD_AND_65.groups() == ()
    assert COPD_AND_65.describe() == "aged 65+ with COPD"
    assert EligibilitySettings(min_age=None, conditions=("copd",)).groups() == ()
    assert EligibilitySettings(min_age=None, conditions=("copd",)).describe() == "with COPD"
    assert EligibilitySettings(min_age=85, conditions=()).describe() == "aged 85+"
    # Every group name is a published count (disclosure control reaches it by name).
    for st in (EligibilitySettings(), COPD_OR_65, both, custom):
        assert all(GROUP_NAME.match(g) and is_count_key(g) for g in st.group_names())


def test_bad_rules_are_refused_naming_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown code list 'cpod'.*did you mean 'copd'"):
        EligibilitySettings(conditions=("cpod",))
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(ConfigError, match=f"code list file {missing} not found"):
        EligibilitySettings(conditions=(str(missing),))
    with pytest.raises(ConfigError, match="needs an age threshold"):
        EligibilitySettings(min_age=None, conditions=())
    with pytest.raises(ConfigError, match="min_age must be"):
        EligibilitySettings(min_age=130)
    with pytest.raises(ConfigError, match="conditions must be a list"):
        EligibilitySettings(conditions="copd")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="combine: 'xor' is not one of 'or', 'and'"):
        EligibilitySettings.from_dict({"combine": "xor"})
    with pytest.raises(ConfigError, match="'copd' is listed twice"):
        EligibilitySettings(conditions=("copd", "copd"))
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "condition,label,code_system,code,match,description\n"
        "copd,COPD,SNOMED,13645005,fuzzy,x\n"
        "copd,COPD,ICD10,,prefix,y\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as e:
        EligibilitySettings(conditions=(str(bad),))
    text = str(e.value)
    assert str(bad) in text and "line 2: match 'fuzzy'" in text and "line 3: empty code" in text
    assert "'copd' is a built-in code list" in text  # the file's name must not shadow it
    cols = tmp_path / "cols.csv"
    cols.write_text("condition,code\nx,J44\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="missing column.*label, code_system, match"):
        code_list(str(cols))


def test_settings_round_trip_with_a_code_list_file(tmp_path: Path) -> None:
    path = str(_copd_file(tmp_path / "copd_local.csv"))
    st = SummarySettings(eligibility=EligibilitySettings(None, (path, "asthma"), "or"))
    assert SummarySettings.from_json(st.to_json()) == st
    assert st.to_dict()["eligibility"] == {
        "min_age": None,
        "conditions": [path, "asthma"],
        "combine": "or",
    }
    assert st.eligibility.names == ("copd_local", "asthma")


def test_aged_65_and_copd_matches_an_independent_count(synth_dir: Path) -> None:
    want = _independent(synth_dir, REF)
    eligible = want[(want.age >= 65) & want.copd]
    with Dataset(synth_dir) as ds:
        pop = population_at(ds, REF, COPD_AND_65).to_pandas()
        summary = summarise(ds, SummarySettings(REF, COPD_AND_65))
        default = population_at(ds, REF).to_pandas()
    assert len(pop) == len(want)
    assert set(pop.person_id[pop.eligible]) == set(eligible.person_id)
    assert pop.group.isna().all()  # no groups under "and"
    people = summary.people_by_area.set_index("area")
    assert list(people.columns) == ["registered", "eligible", "eligible_share"]
    by_area = eligible.groupby("area").size()
    for area, n in people.eligible.items():
        assert n == by_area.get(area, 0), area
    assert people.eligible.sum() == len(eligible) > 20
    # The cohort really changed: far fewer than the programme's default rule.
    assert len(eligible) < default.eligible.sum() / 5
    assert "eligible: aged 65+ with COPD" in summary.attrition.description.tolist()


def test_or_rule_groups_match_an_independent_count(synth_dir: Path) -> None:
    want = _independent(synth_dir, REF)
    old, copd = want.age >= 65, want.copd
    with Dataset(synth_dir) as ds:
        summary = summarise(ds, SummarySettings(REF, COPD_OR_65))
    people = summary.people_by_area.set_index("area")
    for name, mask in zip(
        COPD_OR_65.group_names(), (~old & copd, old & ~copd, old & copd), strict=True
    ):
        got = people[name]
        expect = want[mask].groupby("area").size().reindex(got.index, fill_value=0)
        np.testing.assert_array_equal(got.to_numpy(), expect.to_numpy(), err_msg=name)
    assert (people[list(COPD_OR_65.group_names())].sum(axis=1) == people.eligible).all()


def test_a_code_list_file_gives_the_same_cohort_as_the_built_in_list(
    synth_dir: Path, tmp_path: Path
) -> None:
    path = str(_copd_file(tmp_path / "copd_local.csv"))
    local = dataclasses.replace(COPD_AND_65, conditions=(path,))
    with Dataset(synth_dir) as ds:
        a = population_at(ds, REF, COPD_AND_65).to_pandas().set_index("person_id")
        b = population_at(ds, REF, local).to_pandas().set_index("person_id").loc[a.index]
    assert (a.eligible == b.eligible).all() and a.eligible.sum() > 20
    assert (a.has_copd == b.has_copd_local).all()


def test_table2_has_the_rule_groups_or_all_eligible_only(synth_dir: Path) -> None:
    window = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
    starts = (dt.date(2011, 7, 1),)
    with Dataset(synth_dir) as ds:
        split = evaluate_areas(ds, window, AreaSettings(starts, eligibility=COPD_OR_65))
        whole = evaluate_areas(ds, window, AreaSettings(starts, eligibility=COPD_AND_65))
    assert set(split.table.group) <= {ALL, *COPD_OR_65.group_names()}
    assert "aged_65_plus_with_copd" in set(split.table.group)
    assert set(whole.table.group) == {ALL}
    # Everyone eligible under "and" is eligible under "or": fewer people in every area.
    t_and = whole.table.set_index("area").people_after
    t_or = split.table[split.table.group == ALL].set_index("area").people_after
    assert ((0 < t_and) & (t_and < t_or.loc[t_and.index])).all()


def test_published_summary_protects_the_rule_groups(synth_dir: Path) -> None:
    with Dataset(synth_dir) as ds:
        summary = summarise(ds, SummarySettings(REF, COPD_OR_65))
    pub = publish_summary(summary, DisclosureSettings()).people_by_area
    for name in COPD_OR_65.group_names():
        assert all(v == SUPPRESSED or v % 5 == 0 for v in pub[name])
    row = pub.to_dict(orient="records")[0]
    node = AreaPeople.from_json(row, "data.people_by_area[0]")
    assert node.to_json() == row
    assert set(node.extra()) == set(COPD_OR_65.group_names())


def test_a_spec_s_cohort_is_the_independently_counted_one(synth_dir: Path, tmp_path: Path) -> None:
    """Through study.toml: aged 65+ and with COPD, counted with pandas."""
    from careval.spec import load, resolve

    spec = tmp_path / "study.toml"
    spec.write_text(
        f"[study]\nreference_date = {REF.isoformat()}\n"
        "[eligibility]\nmin_age = 65\nconditions = ['copd']\ncombine = 'and'\n"
    )
    rs = resolve(load(spec).spec)
    want = _independent(synth_dir, REF)
    eligible = want[(want.age >= 65) & want.copd]
    with Dataset(synth_dir) as ds:
        summary = summarise(ds, rs.summary)
    assert summary.people_by_area.eligible.sum() == len(eligible) > 20
    assert rs.areas.eligibility == rs.impact.eligibility == rs.summary.eligibility
