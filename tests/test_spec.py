"""The study specification: study.toml read, checked against the data, resolved, inferred."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pandas as pd
import pytest

from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.spec import StudySpec, dumps, load, loads, resolve
from careval.spec.check import check
from careval.spec.docs import markdown
from careval.spec.infer import infer

ROOT = Path(__file__).resolve().parents[1]
Cli = Callable[..., CompletedProcess[str]]


def _changed() -> StudySpec:
    """A spec with a value changed in every section."""
    s = StudySpec()
    return dataclasses.replace(
        s,
        study=dataclasses.replace(s.study, name="Tower Hamlets", start=dt.date(2009, 6, 1)),
        programme=dataclasses.replace(
            s.programme, comparators=("outer_nwl",), alternative_starts=(dt.date(2011, 9, 1),)
        ),
        eligibility=dataclasses.replace(s.eligibility, min_age=65),
        matching=dataclasses.replace(s.matching, caliper=None, ratio=3),
        follow_up=dataclasses.replace(s.follow_up, horizons=(6, 12), entry_to=dt.date(2013, 1, 1)),
        risk=dataclasses.replace(s.risk, compare_lightgbm=False),
        design=dataclasses.replace(s.design, enrolled=500),
        indicators=dataclasses.replace(s.indicators, hba1c_max_mmol_mol=58.0),
    )


def test_a_spec_round_trips_through_toml_and_json() -> None:
    for spec in (StudySpec(), _changed()):
        assert loads(dumps(spec)).spec == spec
        assert StudySpec.from_json(spec.to_json()) == spec
    # Every field written is recorded as given; "none" reads as null.
    loaded = loads(dumps(_changed()))
    assert "matching.caliper" in loaded.given and loaded.spec.matching.caliper is None
    sections = [getattr(StudySpec(), f.name) for f in dataclasses.fields(StudySpec)]
    assert len(loaded.given) == sum(
        len(dataclasses.fields(s)) if dataclasses.is_dataclass(s) else 1 for s in sections
    )


def test_a_partial_spec_takes_the_defaults_for_the_rest() -> None:
    loaded = loads("[programme]\nstart = 2012-01-01\n[matching]\ncaliper = 0.1\n")
    assert loaded.given == {"programme.start", "matching.caliper"}
    assert loaded.spec.programme.start == dt.date(2012, 1, 1)
    assert loaded.spec.risk == StudySpec().risk
    rs = resolve(loaded.spec)
    assert rs.indicators.programme_start == dt.date(2012, 1, 1)
    assert rs.impact.match.caliper == 0.1
    assert rs.impact.match.ratio == StudySpec().matching.ratio


def test_the_defaults_resolve_to_each_analysis_s_own_defaults() -> None:
    from careval.cohort.summary import SummarySettings
    from careval.design.power import DesignSettings
    from careval.impact.settings import ImpactSettings
    from careval.indicators.settings import IndicatorSettings
    from careval.monitoring.areas import AreaSettings
    from careval.monitoring.programme import ProgrammeSettings
    from careval.risk.evaluate import RiskSettings

    rs = resolve()
    assert rs.summary == SummarySettings()
    assert rs.risk == RiskSettings()
    assert rs.areas == AreaSettings()
    assert rs.programme == ProgrammeSettings()
    assert rs.indicators == IndicatorSettings()
    assert rs.impact == ImpactSettings()
    assert rs.design == DesignSettings()


def test_a_bad_spec_names_every_key_path_and_value_at_once() -> None:
    text = (
        "[programme]\nstrat = 2011-09-01\nperiod_months = 'twelve'\n"
        "[matching]\ndistance = 'euclid'\n[desing]\nratio = 2\n[design]\nratio = 500\n"
    )
    with pytest.raises(ConfigError) as e:
        loads(text, "my.toml")
    msg = str(e.value)
    assert msg.startswith("my.toml: ")
    assert "programme.strat: unknown setting (did you mean 'start'?)" in msg
    assert "programme.period_months: expected a whole number; got 'twelve'" in msg
    assert "matching.distance: 'euclid' is not one of 'logit_ps', 'ps', 'mahalanobis'" in msg
    assert "desing: unknown setting (did you mean 'design'?)" in msg
    assert "design: ratio must be between 1 and 50 controls each; got 500" in msg
    with pytest.raises(ConfigError, match="not valid TOML"):
        loads("[study\n")
    with pytest.raises(ConfigError, match="careval_spec = 9"):
        loads("careval_spec = 9\n")


def test_the_spec_is_checked_against_the_data(synth_dir: Path, tmp_path: Path) -> None:
    text = (
        "[study]\nstart = 2001-01-01\n"
        "[programme]\nstart = 2030-01-01\nareas = ['pilot', 'Atlantis']\n"
        "[eligibility]\nconditions = ['diabetes', 'copd_list.csv', 'gout']\n"
        "[risk]\ntrain_date = 2011-04-01\n"
    )
    (tmp_path / "study.toml").write_text(text)
    loaded = load(tmp_path / "study.toml")
    with Dataset(synth_dir) as ds, pytest.raises(ConfigError) as e:
        check(loaded, ds)
    msg = str(e.value)
    assert "study.start = 2001-01-01: outside the data (2009-04-01 to " in msg
    assert "programme.start = 2030-01-01: outside the study window (2001-01-01 to " in msg
    assert "programme.areas = ['pilot', 'Atlantis']: no practice has area 'Atlantis'" in msg
    assert "(the data have 'inner_nwl_other', 'outer_nwl', 'pilot'" in msg
    assert f"code list file {tmp_path / 'copd_list.csv'} not found" in msg
    assert "unknown code list 'gout'" in msg
    assert "risk.train_date" not in msg  # inside the window: fine
    # Defaults are never checked: a spec that sets nothing passes on any data.
    with Dataset(synth_dir) as ds:
        check(loads(""), ds)


def test_init_infers_the_defaults_from_the_default_synthetic_data(synth_dir: Path) -> None:
    with Dataset(synth_dir) as ds:
        spec, notes = infer(ds)
        spells = pd.read_parquet(synth_dir / "inpatient_spells.parquet")
        plans = pd.read_parquet(synth_dir / "care_plans.parquet")
    assert spec.study.start == spells.admission_date.min()
    assert spec.study.end == spells.admission_date.max()
    assert plans.created_date.min().replace(day=1) == spec.programme.start
    # Everything else lands on the defaults (this is what makes run --spec equal to run).
    default = StudySpec()
    same = dataclasses.replace(
        spec,
        study=dataclasses.replace(spec.study, start=None, end=None, extract_date=None),
    )
    assert same == default
    assert notes["programme.start"].startswith("inferred")


def test_init_on_a_2013_to_2017_population_moves_every_date(tmp_path: Path) -> None:
    from careval.synthetic.generate import generate
    from careval.synthetic.settings import SynthSettings

    data = tmp_path / "d"
    generate(data, SynthSettings(persons=3000, seed=3, start="2013-01", end="2017-12"))
    with Dataset(data) as ds:
        spec, _ = infer(ds)
        check(loads(dumps(spec)), ds)  # everything it wrote fits the data
        first = pd.read_parquet(data / "care_plans.parquet").created_date.min()
    start = first.replace(day=1)
    assert spec.programme.start == start
    fy = dt.date(start.year if start.month >= 4 else start.year - 1, 4, 1)
    assert spec.programme.alternative_starts[0] == fy
    assert spec.risk.train_date <= fy and spec.risk.validate_date.year >= 2013
    assert spec.risk.validate_date + dt.timedelta(days=365) <= spec.study.end + dt.timedelta(1)


def test_init_writes_a_commented_spec_and_never_overwrites(
    cli: Cli, synth_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "study.toml"
    r = cli("init", "--data", str(synth_dir), "--out", str(target))
    assert r.returncode == 0, r.stderr
    text = target.read_text()
    assert "# First day of the month the programme started" in text
    assert "start = 2011-09-01  # inferred: the month of the first care plan" in text
    assert "programme.start = 2011-09-01  (inferred" in r.stderr
    assert load(target).spec.programme.start == dt.date(2011, 9, 1)
    before = target.read_bytes()
    r = cli("init", "--data", str(synth_dir), "--out", str(target))
    assert r.returncode == 2 and "never overwrites" in r.stderr
    assert target.read_bytes() == before


def test_run_refuses_a_bad_spec_with_exit_2(cli: Cli, synth_dir: Path, tmp_path: Path) -> None:
    spec = tmp_path / "study.toml"
    spec.write_text("[programme]\nareas = ['Atlantis']\n[matching]\nratoi = 2\n")
    out = tmp_path / "out"
    r = cli("run", "--data", str(synth_dir), "--spec", str(spec), "--out", str(out))
    assert r.returncode == 2
    assert "matching.ratoi: unknown setting (did you mean 'ratio'?)" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    spec.write_text("[programme]\nareas = ['Atlantis']\n")
    r = cli("run", "--data", str(synth_dir), "--spec", str(spec), "--out", str(out))
    assert r.returncode == 2 and "no practice has area 'Atlantis'" in r.stderr
    assert not out.exists()


def test_docs_study_spec_is_generated_from_the_spec() -> None:
    assert (ROOT / "docs" / "study-spec.md").read_text() == markdown() + "\n"


@pytest.mark.slow
def test_run_with_the_inferred_spec_gives_the_same_results(
    cli: Cli, synth_dir: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "study.toml"
    assert cli("init", "--data", str(synth_dir), "--out", str(spec)).returncode == 0
    a, b = tmp_path / "a", tmp_path / "b"
    r = cli("run", "--data", str(synth_dir), "--out", str(a))
    assert r.returncode == 0, r.stderr
    r = cli("run", "--data", str(synth_dir), "--spec", str(spec), "--out", str(b))
    assert r.returncode == 0, r.stderr
    assert (a / "results.json").read_bytes() == (b / "results.json").read_bytes()
    study = json.loads((b / "study.json").read_text())
    assert study["programme"]["start"] == "2011-09-01"
    assert study["study"]["start"] == "2009-04-01"
    assert json.loads((a / "study.json").read_text())["study"]["start"] is None
    assert "provenance-study" in (b / "report.html").read_text()


@pytest.mark.slow
def test_a_2013_to_2017_population_with_its_spec_gets_table_2_and_the_risk_model(
    cli: Cli, tmp_path: Path
) -> None:
    data, spec = tmp_path / "d", tmp_path / "study.toml"
    r = cli("synth", "--persons", "12000", "--seed", "5", "--start", "2013-01", "--end", "2017-12",
            "--out", str(data))  # fmt: skip
    assert r.returncode == 0, r.stderr
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("run", "--data", str(data), "--out", str(a)).returncode == 0
    without = json.loads((a / "results.json").read_text())
    # The default dates are 2011's: both analyses are skipped, saying why.
    assert "do not cover training on 2011-04-01" in without["risk"]["skipped"]
    assert "skipped" in without["monitoring"]
    assert cli("init", "--data", str(data), "--out", str(spec)).returncode == 0
    r = cli("run", "--data", str(data), "--spec", str(spec), "--out", str(b))
    assert r.returncode == 0, r.stderr
    res = json.loads((b / "results.json").read_text())
    assert res["risk"]["auc"] > 0.6
    written = load(spec).spec
    starts = [d.isoformat() for d in written.programme.alternative_starts]
    assert res["monitoring"]["settings"]["starts"] == starts and res["monitoring"]["table2"]
    assert res["risk"]["train_date"] == written.risk.train_date.isoformat()
    assert res["impact"]["attrition"]["treated_matched"] > 0
    shutil.rmtree(a)


def test_the_programme_s_areas_reach_every_analysis() -> None:
    loaded = loads(
        "[programme]\nareas = ['Tower Hamlets', 'Hackney']\ncomparators = ['Newham']\n"
        "[matching]\ncontrol_areas = ['Newham']\n"
    )
    rs = resolve(loaded.spec)
    both = ("Tower Hamlets", "Hackney")
    assert rs.summary.programme_areas == both
    assert rs.areas.programme_areas == both and rs.areas.comparator_areas == ("Newham",)
    assert rs.indicators.programme_areas == both
    assert rs.indicators.comparison_areas == ("Newham",)
    assert rs.impact.programme_areas == both and rs.impact.control_areas == ("Newham",)
    with pytest.raises(ConfigError, match="are also programme areas"):
        loads("[programme]\nareas = ['A']\ncomparators = ['A', 'B']\n")


def test_init_reads_the_areas_from_the_data(synth_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(synth_dir, data)
    pr = pd.read_parquet(data / "practices.parquet")
    names = {"pilot": "Tower Hamlets", "inner_nwl_other": "Hackney", "outer_nwl": "Newham"}
    pr["area"] = pr["area"].replace(names)
    pr.to_parquet(data / "practices.parquet", index=False)
    with Dataset(data) as ds:
        spec, notes = infer(ds)
        check(loads(dumps(spec)), ds)
    assert spec.programme.areas == ("Tower Hamlets",)  # the practices with an MDG
    others = list(dict.fromkeys(a for a in pr["area"] if a != "Tower Hamlets"))
    # The default control pool (south_west_london, rest_of_england) is still in the data.
    assert spec.matching.control_areas == ("south_west_london", "rest_of_england")
    assert notes["programme.comparators"] == "every other area: " + ", ".join(others)
    pr["area"] = pr["area"].replace({"south_west_london": "Merton"})
    pr.to_parquet(data / "practices.parquet", index=False)
    with Dataset(data) as ds:
        spec, notes = infer(ds)
    # It is not any more: every area that is not the programme's, in the practices' order.
    expected = tuple(dict.fromkeys(a for a in pr["area"] if a != "Tower Hamlets"))
    assert "Merton" in expected and spec.matching.control_areas == expected
    assert notes["matching.control_areas"].startswith("inferred")


def test_the_intervention_and_outcomes_come_from_the_spec(tmp_path: Path) -> None:
    (tmp_path / "falls.csv").write_text(
        "condition,label,code_system,code,match,description\n"
        "falls,Falls,ICD10,W19,prefix,Unspecified fall\n",
        encoding="utf-8",
    )
    text = (
        "[intervention]\ntable = 'community_contacts'\ndate_column = 'contact_date'\n"
        "where = { service = ['community_matron'] }\nlabel = 'community matron contact'\n"
        "[[outcomes]]\nname = 'emergency_admissions'\ntable = 'inpatient_spells'\n"
        "date_column = 'admission_date'\n"
        "where = { admission_method = ['21', '22', '23', '24', '25', '2A', '2B', '2C', '2D', "
        "'28'] }\nexclude = { patient_classification = ['3', '4'] }\n"
        "label = 'Emergency admissions'\n"
        "[[outcomes]]\nname = 'fall_admissions'\ncodes = 'falls.csv'\nunit_cost = 'none'\n"
        "[[outcomes]]\nname = 'contact_cost'\ntable = 'community_contacts'\nunit_cost = 25.0\n"
        "model = 'ols'\n"
    )
    (tmp_path / "study.toml").write_text(text)
    loaded = load(tmp_path / "study.toml")
    assert {"intervention.table", "intervention.where", "outcomes"} <= loaded.given
    rs = resolve(loaded.spec)
    iv = rs.impact.intervention
    assert (iv.table, iv.where) == ("community_contacts", {"service": ("community_matron",)})
    names = [o.name for o in rs.impact.outcomes]
    assert names == ["emergency_admissions", "fall_admissions", "contact_cost"]
    falls = rs.impact.outcomes[1]
    assert falls.codes == str(tmp_path / "falls.csv")  # relative to the spec file
    assert rs.impact.outcomes[2].unit_cost == 25.0
    # Written back and read again: the same spec.
    assert loads(dumps(loaded.spec)).spec == loaded.spec
    with pytest.raises(ConfigError, match=r"outcomes\[1\]\.tabel: unknown setting"):
        loads("[[outcomes]]\nname = 'x'\n[[outcomes]]\ntabel = 'ae_attendances'\n")


def test_the_study_window_is_the_spec_s_where_set(synth_dir: Path) -> None:
    from careval.cohort.summary import data_window
    from careval.spec.check import window

    with Dataset(synth_dir) as ds:
        lo, hi = data_window(ds)
        assert window(StudySpec(), ds) == (lo, hi)
        spec = loads("[study]\nend = 2013-12-31\n").spec
        assert window(spec, ds) == (lo, dt.date(2013, 12, 31))
        spec = loads("[study]\nstart = 2010-01-01\nend = 2013-12-31\n").spec
        assert window(spec, ds) == (dt.date(2010, 1, 1), dt.date(2013, 12, 31))
    with pytest.raises(ConfigError, match="must be before study.end"):
        loads("[study]\nstart = 2013-01-01\nend = 2012-12-31\n")


def test_follow_up_and_programme_values_are_checked_all_at_once() -> None:
    text = (
        "[follow_up]\nevent_window = [5, -5]\nevent_bin_months = 0\nhorizons = [0, 3]\n"
        "min_follow_up = -1\nimplementation_months = 13\n"
    )
    with pytest.raises(ConfigError) as e:
        resolve(loads(text).spec)
    msg = str(e.value)
    for words in (
        "follow_up.event_window must run from a month before entry",
        "follow_up.event_bin_months must be between 1 and 12; got 0",
        "follow_up.horizons must be months from 1 to 120; got [0, 3]",
        "follow_up.min_follow_up must be between 0 and 60; got -1",
        "follow_up.implementation_months (the implementation period) must be between 0 and 12; "
        "got 13",
    ):
        assert words in msg
    with pytest.raises(ConfigError, match="fund_budget must be a positive sum"):
        loads("[programme]\nfund_budget = 0\n")


@pytest.mark.parametrize("cut", ["late_spells", "short_window", "no_plans"])
def test_init_writes_a_spec_its_data_accept(synth_dir: Path, tmp_path: Path, cut: str) -> None:
    data = tmp_path / "d"
    shutil.copytree(synth_dir, data)
    spells = pd.read_parquet(data / "inpatient_spells.parquet")
    day = pd.to_datetime(spells.admission_date)
    if cut == "late_spells":  # hospital data from 2012, care plans from 2011-09
        spells = spells[day >= "2012-01-01"]
    elif cut == "short_window":  # 30 months of hospital data: no room for a validation year
        spells = spells[day < "2011-10-01"]
    else:
        (data / "care_plans.parquet").unlink()
    spells.to_parquet(data / "inpatient_spells.parquet", index=False)
    with Dataset(data) as ds:
        spec, notes = infer(ds)
        check(loads(dumps(spec, notes)), ds)  # every value it wrote fits the data
    lo, hi = spec.study.start, spec.study.end
    assert lo is not None and hi is not None
    assert lo <= spec.programme.start <= hi and lo <= spec.risk.validate_date <= hi


def test_init_refuses_a_dangling_link(cli: Cli, synth_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "study.toml"
    link.symlink_to(tmp_path / "nowhere.toml")
    r = cli("init", "--data", str(synth_dir), "--out", str(link))
    assert r.returncode == 2 and "never overwrites" in r.stderr
    assert link.is_symlink() and not (tmp_path / "nowhere.toml").exists()


def test_the_data_check_and_the_settings_report_together(
    cli: Cli, synth_dir: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "study.toml"
    spec.write_text(
        "[matching]\ncontrol_areas = ['nowhere']\n[follow_up]\nimplementation_months = 13\n"
    )
    out = tmp_path / "out"
    r = cli("run", "--data", str(synth_dir), "--spec", str(spec), "--out", str(out))
    assert r.returncode == 2 and not out.exists()
    assert "matching.control_areas = ['nowhere']: no practice has area 'nowhere'" in r.stderr
    assert (
        "follow_up.implementation_months (the implementation period) must be between 0 and 12; "
        "got 13" in r.stderr
    )


def test_a_spec_file_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    text = "[study]\nstart = 2011-01-01\n[design]\nratio = 3\n"
    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    plain.write_bytes(text.encode("utf-8"))
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # as Windows Notepad saves it
    assert load(marked).spec == load(plain).spec
    assert load(marked).given == load(plain).given == {"study.start", "design.ratio"}


def test_an_enormous_spec_or_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    from careval.spec.toml import MAX_SPEC_BYTES

    big = tmp_path / "big.toml"
    big.write_text("[study]\n" + "x" * MAX_SPEC_BYTES + " = 1\n")
    with pytest.raises(ConfigError, match=r"bytes is not a study specification") as exc:
        load(big)
    assert len(str(exc.value)) < 300
    long_key = tmp_path / "long.toml"
    long_key.write_text("[study]\n" + "k" * 5000 + " = 1\n[design]\nratio = '" + "9" * 5000 + "'\n")
    with pytest.raises(ConfigError) as exc:
        load(long_key)
    msg = str(exc.value)
    assert "(5,006 characters): unknown setting" in msg and "(5,002 characters)" in msg
    assert len(msg) < 600


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[matching]\nratio = 500\n", "matching.ratio must be a whole number from 1 to 100"),
        ("[follow_up]\nmin_follow_up = 99\n", "follow_up.min_follow_up must be between 0 and 60"),
        ("[follow_up]\nhorizons = [0]\n", "follow_up.horizons must be months from 1 to 120"),
    ],
)
def test_an_analysis_setting_out_of_range_names_the_spec_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve(loads(toml).spec)
