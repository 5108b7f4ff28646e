"""Outcomes of the matched study defined in settings: checked, measured, fitted or skipped alone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.impact.matching import match
from careval.impact.measures import Grid, outcome_values
from careval.impact.outcome_settings import PANEL_OUTCOMES, SYSTEM_OUTCOMES
from careval.impact.outcomes import matched_panel
from careval.impact.panel import MEASURES, build_panel, month_of
from careval.impact.population import covariates, first_of, study_population
from careval.impact.settings import (
    BUILTIN_OUTCOMES,
    DEFAULT_OUTCOMES,
    ImpactSettings,
    OutcomeSettings,
)
from careval.impact.study import evaluate_impact

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
CONTACTS = OutcomeSettings(table="community_contacts", label="Community contacts")
HOME_CARE_COST = OutcomeSettings(
    name="home_care_cost",
    table="community_contacts",
    where={"service": ("home_care",)},
    unit_cost=25.0,
    model="ols",
    label="Home care (£25 a visit, £ a person-month)",
)
SEED_SEVEN = DEFAULT_OUTCOMES[:7]  # the seed evaluation's outcomes, without the system's
WITH_CONTACTS = ImpactSettings(outcomes=(*SEED_SEVEN, CONTACTS, HOME_CARE_COST))


def test_the_default_outcomes_are_the_seed_evaluations_seven_primary_first() -> None:
    st = ImpactSettings()
    assert [(o.name, o.model) for o in st.outcomes] == [
        ("emergency_admissions", "poisson"),
        ("ae_attendances", "poisson"),
        ("elective_admissions", "poisson"),
        ("outpatient_attendances", "poisson"),
        ("bed_days", "poisson"),
        ("emergency_cost", "ols"),
        ("inpatient_cost", "ols"),
        # then the system's: community, mental health, social care packages, care home days
        ("community_contacts", "poisson"),
        ("mental_health_contacts", "poisson"),
        ("social_care_packages", "poisson"),
        ("care_home_days", "poisson"),
    ]
    assert st.primary.name == "emergency_admissions"
    assert set(PANEL_OUTCOMES) == set(MEASURES)  # every panel measure is an outcome too
    assert set(BUILTIN_OUTCOMES) == set(MEASURES) | set(SYSTEM_OUTCOMES)


def test_settings_round_trip_a_tuple_of_outcome_settings() -> None:
    st = WITH_CONTACTS
    block = st.to_dict()["outcomes"]
    assert [o["name"] for o in block][-2:] == ["community_contacts", "home_care_cost"]
    assert block[-1]["where"] == {"service": ["home_care"]} and block[-1]["unit_cost"] == 25.0
    assert ImpactSettings.from_json(st.to_json()) == st
    assert ImpactSettings.from_dict(json.loads(json.dumps(st.to_dict()))) == st
    back = ImpactSettings.from_dict({"outcomes": [{"table": "community_contacts"}]})
    assert back.outcomes == (OutcomeSettings(table="community_contacts"),)
    assert back.primary.name == "community_contacts"
    assert back.primary.date_column == "contact_date"  # the table's event date
    with pytest.raises(ConfigError) as e:
        ImpactSettings.from_dict({"outcomes": [{"table": "ae_attendances", "modle": "ols"}]})
    assert "outcomes[0].modle: unknown setting (did you mean 'model'?)" in str(e.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"table": "mdg_meetings"}, "not an event table of the data model; allowed: conditions"),
        ({"table": "ae_attendances", "date_column": "arrival"}, "did you mean 'arrival_date'?"),
        ({"table": "ae_attendances", "date_column": "cost"}, "is a float column; needed: date"),
        ({"where": {"admission_method": ("99",)}}, "'99' not allowed; allowed: 21, 22"),
        ({"table": "outpatient_appointments", "where": {"attended": ("yes",)}}, "true, false"),
        ({"measure": "sum"}, "value_column: needed for measure='sum'"),
        ({"measure": "sum", "value_column": "spell_id"}, "is a string column"),
        ({"measure": "bed_days"}, "end_column: needed for measure='bed_days'"),
        ({"value_column": "cost"}, "value_column: only for measure='sum'"),
        ({"unit_cost": -1.0}, "unit_cost: must be a positive number"),
        ({"name": "Emergency!"}, "lower case letters, digits and underscores"),
        ({"codes": "copdd"}, "unknown code list 'copdd'"),
        ({"table": "ae_attendances", "codes": "copd"}, "no default code column"),
    ],
)
def test_bad_outcome_settings_are_refused_naming_the_problem(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        OutcomeSettings(**kwargs)
    assert words in str(e.value)


def test_every_problem_of_an_outcome_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        OutcomeSettings(
            table="community_contacts", where={"servic": ("x",)}, measure="sum", unit_cost=0.0
        )
    text = str(e.value)
    assert "did you mean 'service'?" in text and "value_column" in text and "unit_cost" in text


def test_outcome_names_are_unique_and_built_in_names_keep_their_definition() -> None:
    with pytest.raises(ConfigError, match="given twice: community_contacts"):
        ImpactSettings(outcomes=(*DEFAULT_OUTCOMES, CONTACTS, CONTACTS))
    with pytest.raises(ConfigError, match="'emergency_admissions' is a built-in measure"):
        ImpactSettings(outcomes=(OutcomeSettings(name="emergency_admissions"),))
    with pytest.raises(ConfigError, match="at least one outcome"):
        ImpactSettings(outcomes=())
    # The same definition under the built-in name is the built-in (its model and label free).
    ae = OutcomeSettings(table="ae_attendances", model="ols")
    assert ImpactSettings(outcomes=(*DEFAULT_OUTCOMES[:1], ae)).outcomes[1].name == "ae_attendances"


def test_a_csv_code_list_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "falls.csv"
    good.write_text(
        "condition,label,code_system,code,match,description\n"
        "falls,Falls,ICD10,W19,prefix,Unspecified fall\n"
        "falls,Falls,ICD10,S72,prefix,Fracture of femur\n",
        encoding="utf-8",
    )
    o = OutcomeSettings(name="fall_admissions", codes=str(good))
    assert o.code_column == "primary_diagnosis" and o.system_column is None
    bad = tmp_path / "bad.csv"
    bad.write_text("condition,code\nfalls,W19\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"missing column\(s\) label, code_system, match"):
        OutcomeSettings(name="x", codes=str(bad))
    snomed = tmp_path / "snomed.csv"
    snomed.write_text(
        "condition,label,code_system,code,match,description\nf,F,SNOMED,1912002,exact,Fall\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="holds ICD-10 codes and the list"):
        OutcomeSettings(name="x", codes=str(snomed))
    assert OutcomeSettings(name="x", table="conditions", codes=str(snomed)).system_column == (
        "code_system"
    )


def test_each_built_in_definition_measures_what_the_panel_holds(synth_dir: Path) -> None:
    """The built-in outcomes' settings are true to the panel's own measures: measured from the
    settings alone, each equals the panel's column exactly."""
    first, last = month_of(WINDOW[0]), month_of(WINDOW[1])
    with Dataset(synth_dir) as ds:
        ids = ds.table("persons").person_id.to_pandas().to_numpy()[:3000]
        panel = build_panel(ds, ids, first, last)
        grid = Grid(panel.person_id, first, last)
        for name, o in PANEL_OUTCOMES.items():
            got = outcome_values(ds, o, grid)
            np.testing.assert_array_equal(got, panel.values[name], err_msg=name)
            assert got.sum() > 0, name


def test_codes_keep_only_the_coded_rows(synth_dir: Path) -> None:
    """A code-list outcome counts the emergency spells whose primary diagnosis is on the list
    (COPD: ICD-10 J43 and J44 by prefix), as counted from the Parquet file directly."""
    first, last = month_of(WINDOW[0]), month_of(WINDOW[1])
    emergency = BUILTIN_OUTCOMES["emergency_admissions"]
    o = dataclasses.replace(emergency, name="copd_admissions", codes="copd", label="")
    with Dataset(synth_dir) as ds:
        ids = np.sort(ds.table("persons").person_id.to_pandas().to_numpy())
        got = outcome_values(ds, o, Grid(ids, first, last))
    s = pd.read_parquet(synth_dir / "inpatient_spells.parquet")
    day = pd.to_datetime(s.admission_date)
    s = s[
        s.admission_method.isin(emergency.where["admission_method"])
        & ~s.patient_classification.isin(["3", "4"])
        & s.primary_diagnosis.str.match(r"J4[34]")
        & (day >= pd.Timestamp(WINDOW[0]))
        & (day < pd.Timestamp(first_of(last + 1)))
    ]
    assert got.sum() == len(s) > 0


@pytest.fixture(scope="module")
def contacts_study(synth_dir: Path):  # type: ignore[no-untyped-def]
    """The matched study with community contacts and a home-care cost, on the small data."""
    with Dataset(synth_dir) as ds:
        result = evaluate_impact(ds, WINDOW, WITH_CONTACTS)
        study = study_population(ds, WINDOW, WITH_CONTACTS, None)
    return result, study, synth_dir


def test_a_user_defined_outcome_is_fitted_beside_the_defaults(contacts_study) -> None:  # type: ignore[no-untyped-def]
    result, _, _ = contacts_study
    assert list(result.outcomes) == [o.name for o in WITH_CONTACTS.outcomes]
    c = result.outcomes["community_contacts"]
    assert c["model"] == "poisson" and c["rate_ratio_ci_low"] < c["rate_ratio"]
    cost = result.outcomes["home_care_cost"]
    assert cost["model"] == "ols" and "rate_ratio" not in cost
    assert result.skipped_outcomes == {}
    block = result.to_dict()
    assert block["skipped_outcomes"] == {}
    assert block["settings"]["outcomes"][-1]["name"] == "home_care_cost"
    assert "community_contacts: rate ratio" in result.summary()


def test_one_treated_person_month_counted_from_the_parquet_table(contacts_study) -> None:  # type: ignore[no-untyped-def]
    """The panel's community contacts and home-care cost for matched treated people after
    entry equal the contacts counted directly from community_contacts.parquet."""
    _, study, data = contacts_study
    f = study.frame
    res = match(f, "treated", covariates(f), WITH_CONTACTS.match)
    panel = matched_panel(study, res, WITH_CONTACTS, ["community_contacts", "home_care_cost"])
    treated = panel[(panel.treated == 1) & (panel.k >= 0) & (panel.community_contacts > 0)]
    assert len(treated) > 10
    cc = pd.read_parquet(data / "community_contacts.parquet")
    cc["month"] = [month_of(d) for d in pd.to_datetime(cc.contact_date).dt.date]
    for _, row in treated.sample(5, random_state=1).iterrows():
        person = study.panel.person_id[int(row.person)]
        mine = cc[(cc.person_id == person) & (cc.month == int(row.month))]
        assert row.community_contacts == len(mine), (person, first_of(int(row.month)))
        assert row.home_care_cost == 25.0 * (mine.service == "home_care").sum()


def test_an_outcome_without_events_is_skipped_alone(synth_dir: Path) -> None:
    nothing = OutcomeSettings(
        name="nothing",
        table="community_contacts",
        where={"service": ("home_care",), "sector": ("health",)},
    )
    st = ImpactSettings(outcomes=(DEFAULT_OUTCOMES[0], nothing, CONTACTS))
    with Dataset(synth_dir) as ds:
        r = evaluate_impact(ds, WINDOW, st)
    assert list(r.outcomes) == ["emergency_admissions", "community_contacts"]
    assert r.skipped_outcomes == {
        "nothing": "no events among the matched people in the study's months"
    }
    assert r.horizons and len(r.event_study)


def test_a_missing_table_skips_its_outcome_and_the_primary_one_the_study(
    synth_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data, ignore=shutil.ignore_patterns("surveys", "qualitative"))
    (data / "community_contacts.parquet").unlink()
    t = pq.read_table(data / "ae_attendances.parquet")
    pq.write_table(t.slice(0, 0), data / "ae_attendances.parquet")
    with Dataset(data) as ds:
        r = evaluate_impact(ds, WINDOW, WITH_CONTACTS)
        with pytest.raises(ConfigError, match="the primary outcome community_contacts: no "):
            evaluate_impact(ds, WINDOW, dataclasses.replace(WITH_CONTACTS, outcomes=(CONTACTS,)))
    assert r.skipped_outcomes == {
        "ae_attendances": "the ae_attendances table is empty",
        "community_contacts": "no community_contacts table",
        "home_care_cost": "no community_contacts table",
    }
    assert "emergency_admissions" in r.outcomes and "ae_attendances" not in r.outcomes
    assert "ae_attendances: not estimated (the ae_attendances table is empty)" in r.summary()


@pytest.mark.slow
def test_a_user_defined_outcome_end_to_end(synth_dir: Path, tmp_path: Path) -> None:
    """Through the main job: the outcomes reach results.json (with their settings, in the
    impact block and the provenance), the typed copy and the page's table, and
    an outcome whose table the data lack is named with its reason on the page."""
    from careval.report.publish.model import Published
    from careval.run import run

    data = tmp_path / "data"
    shutil.copytree(synth_dir, data, ignore=shutil.ignore_patterns("surveys", "qualitative"))
    (data / "outpatient_appointments.parquet").unlink()
    from careval.spec import StudySpec

    run(data, tmp_path / "out", dataclasses.replace(StudySpec(), outcomes=WITH_CONTACTS.outcomes))
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    imp = results["impact"]
    assert list(imp["outcomes"])[-2:] == ["community_contacts", "home_care_cost"]
    assert imp["skipped_outcomes"] == {"outpatient_attendances": "no outpatient_appointments table"}
    c = imp["outcomes"]["community_contacts"]
    assert c["rate_ratio_ci_low"] <= c["rate_ratio"] <= c["rate_ratio_ci_high"]
    assert results["provenance"]["settings"]["impact"]["outcomes"][-1]["unit_cost"] == 25.0
    pub = Published.read(results)
    assert pub.impact.outcomes["home_care_cost"].model == "ols"
    assert pub.impact.skipped_outcomes == imp["skipped_outcomes"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Community contacts" in page and "Home care (£25 a visit" in page
    assert "Outpatient attendances (no outpatient_appointments table)" in page
