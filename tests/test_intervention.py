"""The matched study's intervention as a setting: who is treated, when, and who is a control."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from careval.cohort.eligibility import EligibilitySettings
from careval.data.access import Dataset
from careval.data.schema import EMERGENCY_METHODS
from careval.errors import ConfigError
from careval.impact.panel import month_of
from careval.impact.population import NEVER_MONTH, first_events, study_population
from careval.impact.settings import ImpactSettings, InterventionSettings
from careval.impact.study import ImpactResult, evaluate_impact
from careval.report.sections.impact import section

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
MATRON = InterventionSettings(
    table="community_contacts",
    date_column="contact_date",
    where={"service": ("community_matron",)},
    label="community matron contact",
)


def _months(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates)
    return d.dt.year * 12 + d.dt.month - 1


def _in_pilot_and_alive(data: Path, entry: pd.Series) -> set[str]:
    """People (index of ``entry``) registered at a pilot practice and alive on the first day of
    their entry month (a month number), from the Parquet files with pandas."""
    reg = pd.read_parquet(data / "registrations.parquet")
    area = pd.read_parquet(data / "practices.parquet").set_index("practice_code").area
    death = pd.read_parquet(data / "persons.parquet").set_index("person_id").death_date
    reg = reg[reg.person_id.isin(entry.index)].copy()
    reg["day"] = [pd.Timestamp(m // 12, m % 12 + 1, 1) for m in reg.person_id.map(entry)]
    start, end = pd.to_datetime(reg.start_date), pd.to_datetime(reg.end_date)
    on = reg[(start <= reg.day) & (end.isna() | (end >= reg.day))]
    latest = on.sort_values(["person_id", "start_date"]).drop_duplicates("person_id", keep="last")
    dead = pd.to_datetime(latest.person_id.map(death))
    ok = (latest.practice_code.map(area) == "pilot") & (dead.isna() | (dead > latest.day))
    return set(latest.person_id[ok])


@pytest.fixture(scope="module")
def matron(synth_dir: Path) -> tuple[ImpactResult, pd.DataFrame, pd.DataFrame]:
    """The study with the first community matron contact as the treatment: its result, its
    study frame, and the default study's frame."""
    st = ImpactSettings(intervention=MATRON)
    with Dataset(synth_dir) as ds:
        frame = study_population(ds, WINDOW, st, None).frame
        default = study_population(ds, WINDOW, ImpactSettings(), None).frame
        result = evaluate_impact(ds, WINDOW, st)
    return result, frame, default


def test_default_intervention_is_the_first_care_plan() -> None:
    iv = ImpactSettings().intervention
    assert (iv.table, iv.date_column, iv.codes, iv.code_column, iv.where) == (
        "care_plans",
        "created_date",
        (),
        None,
        {},
    )
    assert (iv.label, iv.noun, iv.treated) == ("care plan", "plan", "care-planned")
    assert (MATRON.noun, MATRON.treated) == ("contact", "treated")
    assert dataclasses.replace(MATRON, treated_label="matron-visited").treated == "matron-visited"


def test_matron_contacts_change_the_treated_as_counted_independently(
    synth_dir: Path, matron: tuple[ImpactResult, pd.DataFrame, pd.DataFrame]
) -> None:
    result, frame, default = matron
    cc = pd.read_parquet(synth_dir / "community_contacts.parquet")
    cc = cc[cc.service == "community_matron"]
    entry = _months(cc.groupby("person_id").contact_date.min())
    lo = max(int(entry.min()), month_of(WINDOW[0]) + 12)
    hi = month_of(WINDOW[1]) - result.settings.min_follow_up + 1
    inside = entry[(entry >= lo) & (entry <= hi)]
    treated = _in_pilot_and_alive(synth_dir, inside)
    a = result.attrition
    assert a["care_planned"] == len(entry)  # people with the event (named for the default)
    assert a["entered_in_study_window"] == len(inside)
    assert a["treated_alive_and_registered_at_entry"] == len(treated) > 50
    t = frame[frame.treated == 1]
    assert set(t.person_id) == treated
    assert (t.entry_month.to_numpy() == t.person_id.map(entry).to_numpy()).all()
    # Nobody with a community matron contact, ever, is a control (not_yet_treated is off).
    assert not frame.person_id[frame.treated == 0].isin(entry.index).any()
    # The treated are not the care-planned of the default study.
    care_planned = set(default.person_id[default.treated == 1])
    assert treated != care_planned and len(treated - care_planned) > 50
    assert result.attrition["treated_matched"] > 0


def test_not_yet_treated_controls_are_censored_at_their_first_event(synth_dir: Path) -> None:
    st = ImpactSettings(intervention=MATRON, not_yet_treated=True)
    with Dataset(synth_dir) as ds:
        f = study_population(ds, WINDOW, st, None).frame
    cc = pd.read_parquet(synth_dir / "community_contacts.parquet")
    first = _months(cc[cc.service == "community_matron"].groupby("person_id").contact_date.min())
    c = f[f.treated == 0]
    want = c.person_id.map(first).fillna(NEVER_MONTH).astype("int64")
    assert (c.censor_month.to_numpy() == want.to_numpy()).all()
    later = c[c.censor_month < NEVER_MONTH]
    assert len(later) > 10 and (later.censor_month > later.entry_month).all()


def test_the_report_names_the_intervention(
    matron: tuple[ImpactResult, pd.DataFrame, pd.DataFrame],
) -> None:
    result = matron[0]
    text = section(result).html
    assert "Each person with a community matron contact enters the study in the month of " in text
    assert "their first contact" in text and "treated people were matched" in text
    assert "care plan" not in text and "care-planned" not in text
    assert "treated people to" in result.summary()
    assert result.to_dict()["settings"]["intervention"]["where"] == {
        "service": ["community_matron"]
    }


def _copd_file(path: Path) -> str:
    path.write_text(
        "condition,label,code_system,code,match,description\n"
        "copd_admission,COPD admission,ICD10,J44,prefix,COPD\n"
        "copd_admission,COPD admission,SNOMED,13645005,exact,never on an ICD-10 column\n",
        encoding="utf-8",
    )
    return str(path)


def test_code_list_events_are_the_first_matching_rows(synth_dir: Path, tmp_path: Path) -> None:
    hosp = InterventionSettings(
        table="inpatient_spells",
        date_column="admission_date",
        codes=(_copd_file(tmp_path / "copd_admission.csv"),),
        code_column="primary_diagnosis",
        where={"admission_method": tuple(EMERGENCY_METHODS)},
        label="emergency COPD admission",
    )
    gp = InterventionSettings(
        table="conditions",
        date_column="date",
        codes=("copd",),
        code_column="code",
        label="COPD diagnosis",
    )
    with Dataset(synth_dir) as ds:
        got_h = first_events(ds, hosp).set_index("person_id").created
        got_g = first_events(ds, gp).set_index("person_id").created
    s = pd.read_parquet(synth_dir / "inpatient_spells.parquet")
    s = s[
        s.primary_diagnosis.str.startswith("J44")
        & s.admission_method.isin(hosp.where["admission_method"])
    ]
    want_h = s.groupby("person_id").admission_date.min()
    c = pd.read_parquet(synth_dir / "conditions.parquet")
    c = c[
        ((c.code_system == "SNOMED") & (c.code == "13645005"))
        | ((c.code_system == "ICD10") & c.code.str.startswith(("J43", "J44")))
    ]
    want_g = c.groupby("person_id").date.min()
    for got, want in ((got_h, want_h), (got_g, want_g)):
        assert len(want) > 20
        assert (pd.to_datetime(got.sort_index()) == pd.to_datetime(want.sort_index())).all()
        assert sorted(got.index) == sorted(want.index)


def test_bad_interventions_are_refused_naming_the_problem(synth_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="codes need code_column"):
        InterventionSettings(codes=("copd",))
    with pytest.raises(ConfigError, match="where.service: give a non-empty list"):
        InterventionSettings(where={"service": "community_matron"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="unknown code list 'cpod'"):
        InterventionSettings(codes=("cpod",), code_column="code")
    with pytest.raises(
        ConfigError, match=r"intervention.labl: unknown setting \(did you mean 'label'"
    ):
        ImpactSettings.from_dict({"intervention": {"labl": "x"}})
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    (data / "community_contacts.parquet").unlink()
    with Dataset(data) as ds, pytest.raises(ConfigError, match="needs the community_contacts"):
        first_events(ds, MATRON)  # a table of the data model that this dataset lacks


def test_settings_round_trip_with_an_intervention() -> None:
    st = ImpactSettings(intervention=MATRON, eligibility=EligibilitySettings(65, ("copd",), "and"))
    back = ImpactSettings.from_json(st.to_json())
    assert back == st
    assert st.to_dict()["intervention"] == {
        "table": "community_contacts",
        "date_column": "contact_date",
        "codes": [],
        "code_column": None,
        "where": {"service": ["community_matron"]},
        "label": "community matron contact",
        "treated_label": "",
    }


def test_the_run_has_one_eligibility() -> None:
    from careval.spec import loads, resolve

    copd = EligibilitySettings(65, ("copd",), "and")
    rs = resolve(
        loads("[eligibility]\nmin_age = 65\nconditions = ['copd']\ncombine = 'and'\n").spec
    )
    assert rs.summary.eligibility == copd
    assert rs.areas.eligibility == copd
    assert rs.impact.eligibility == copd


def test_a_study_where_nobody_finds_a_control_says_so(synth_dir: Path) -> None:
    st = ImpactSettings()
    st = dataclasses.replace(st, match=dataclasses.replace(st.match, caliper=1e-9))
    with Dataset(synth_dir) as ds, pytest.raises(ConfigError, match="no care-planned person"):
        evaluate_impact(ds, WINDOW, st)


def test_a_spec_s_intervention_is_the_independently_counted_one(
    synth_dir: Path, tmp_path: Path
) -> None:
    """Through study.toml: the first community matron contact, counted with pandas."""
    from careval.spec import load, resolve

    spec = tmp_path / "study.toml"
    spec.write_text(
        "[intervention]\ntable = 'community_contacts'\ndate_column = 'contact_date'\n"
        "where = { service = ['community_matron'] }\nlabel = 'community matron contact'\n"
    )
    st = resolve(load(spec).spec).impact
    with Dataset(synth_dir) as ds:
        frame = study_population(ds, WINDOW, st, None).frame
    cc = pd.read_parquet(synth_dir / "community_contacts.parquet")
    entry = _months(cc[cc.service == "community_matron"].groupby("person_id").contact_date.min())
    lo = max(int(entry.min()), month_of(WINDOW[0]) + 12)
    hi = month_of(WINDOW[1]) - st.min_follow_up + 1
    treated = _in_pilot_and_alive(synth_dir, entry[(entry >= lo) & (entry <= hi)])
    assert set(frame.person_id[frame.treated == 1]) == treated and len(treated) > 50


def test_matching_on_a_column_the_study_lacks_is_refused(synth_dir: Path) -> None:
    st = ImpactSettings()
    st = dataclasses.replace(
        st, match=dataclasses.replace(st.match, exact=("entry_month", "sex"), score="nosuch")
    )
    with Dataset(synth_dir) as ds, pytest.raises(ConfigError, match="'sex', 'nosuch': not a col"):
        evaluate_impact(ds, WINDOW, st)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"table": "care_plan"}, "table: 'care_plan' is not a table of people's events"),
        ({"table": "practices", "date_column": "x"}, "'practices' is not a table of people's"),
        ({"date_column": "created"}, "care_plans has no column 'created' (did you mean"),
        ({"date_column": "person_id"}, "date_column: care_plans.person_id is a string column"),
        (
            {
                "table": "community_contacts",
                "date_column": "contact_date",
                "where": {"servce": ("x",)},
            },
            "where.servce: community_contacts has no column 'servce' (did you mean 'service'?)",
        ),
    ],
)
def test_an_intervention_names_a_table_and_columns_of_the_data_model(
    given: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        InterventionSettings(**given)
