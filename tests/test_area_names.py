"""Areas named from the data: renamed areas give the same numbers, pooled areas add up, and an
area the data do not have is refused by name."""

from __future__ import annotations

import datetime as dt
import html
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from careval.cohort.summary import SummarySettings, data_window, summarise
from careval.data.access import Dataset
from careval.data.areas import data_areas, pooled_name, resolve_areas
from careval.data.validate import validate
from careval.errors import ConfigError
from careval.impact.settings import DEFAULT_OUTCOMES, ImpactSettings
from careval.impact.study import ImpactResult, evaluate_impact
from careval.indicators import IndicatorSettings, IndicatorsResult, evaluate_indicators
from careval.monitoring.areas import AreaResult, AreaSettings, evaluate_areas
from careval.report.page import area_label
from careval.synthetic.settings import AREAS

# Every seed area renamed; the names test the report's escaping and its label rule too.
RENAME = {
    "pilot": "Tower Hamlets",
    "inner_nwl_other": "Hackney & City",
    "outer_nwl": "north_central_london",
    "south_west_london": "King's <Cross>",
    "rest_of_england": "Rest of the country",
}
PROGRAMME = (RENAME["pilot"],)
CONTROLS = (RENAME["south_west_london"], RENAME["rest_of_england"])
SPLIT = ("pilot east", "pilot west")  # the pilot's practices in two areas
STARTS = (dt.date(2011, 9, 1),)  # one Table 2 start date keeps the tests quick
ONE_OUTCOME = DEFAULT_OUTCOMES[:1]  # emergency admissions alone: quicker


def _with_areas(src: Path, dst: Path, areas: list[str]) -> Path:
    """A copy of the dataset ``src`` whose practices have ``areas`` (one per row, in order)."""
    shutil.copytree(src, dst)
    file = dst / "practices.parquet"
    t = pq.read_table(file)
    i = t.schema.get_field_index("area")
    t = t.set_column(i, t.schema.field(i), pa.array(areas, type=t.schema.field(i).type))
    pq.write_table(t, file)
    return dst


@pytest.fixture(scope="module")
def renamed_dir(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small dataset with every area renamed (:data:`RENAME`)."""
    old = pq.read_table(synth_dir / "practices.parquet").column("area").to_pylist()
    return _with_areas(
        synth_dir, tmp_path_factory.mktemp("renamed") / "data", [RENAME[a] for a in old]
    )


@pytest.fixture(scope="module")
def split_dir(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small dataset with the pilot's practices split, alternately, into two areas."""
    old = pq.read_table(synth_dir / "practices.parquet").column("area").to_pylist()
    new, k = [], 0
    for a in old:
        if a == "pilot":
            new.append(SPLIT[k % 2])
            k += 1
        else:
            new.append(a)
    return _with_areas(synth_dir, tmp_path_factory.mktemp("split") / "data", new)


def _renamed(df: pd.DataFrame, names: dict[str, str], *cols: str) -> pd.DataFrame:
    """``df`` under the new area names, without the truth columns: the truth.json of renamed
    or split areas does not name them, so their Table 2 has no truth beside it."""
    df = df.drop(columns=[c for c in df.columns if c.startswith("true_")])
    return df.assign(**{c: df[c].map(lambda a: names.get(a, a)) for c in cols})


# ---- the data's areas -----------------------------------------------------------------------


def test_the_data_name_the_areas_in_their_order(synth_dir: Path, renamed_dir: Path) -> None:
    with Dataset(synth_dir) as ds:
        assert data_areas(ds) == AREAS  # the seed's order: the pilot first
    with Dataset(renamed_dir) as ds:
        assert data_areas(ds) == tuple(RENAME.values())
    assert validate(renamed_dir) == validate(synth_dir)  # any non-blank name is valid


def test_a_blank_area_is_invalid(synth_dir: Path, tmp_path: Path) -> None:
    n = pq.read_metadata(synth_dir / "practices.parquet").num_rows
    bad = _with_areas(synth_dir, tmp_path / "data", ["  "] + ["pilot"] * (n - 1))
    problems = [p for p in validate(bad) if p.column == "area"]
    assert len(problems) == 1 and problems[0].count == 1 and problems[0].rule == "malformed value"


def test_resolve_areas_fills_in_every_other_area() -> None:
    data = ("a", "b", "c", "d")
    c = resolve_areas(data, ("b", "d"))
    assert c.comparators == ("a", "c") and c.name == "b + d" and c.others == ("a", "c")
    assert resolve_areas(data, ("a",), ("d", "b")).comparators == ("d", "b")  # as given
    assert pooled_name(("pilot",)) == "pilot"


def test_an_area_the_data_lack_is_named_with_the_data_areas(synth_dir: Path) -> None:
    listed = "'pilot', 'inner_nwl_other', 'outer_nwl', 'south_west_london', 'rest_of_england'"
    with Dataset(synth_dir) as ds:
        window = data_window(ds)
        with pytest.raises(ConfigError) as e:
            evaluate_areas(ds, window, AreaSettings(starts=STARTS, programme_areas=("Brent",)))
        assert "programme_areas: 'Brent' is not an area of the data" in str(e.value)
        assert listed in str(e.value)
        st = AreaSettings(starts=STARTS, comparator_areas=("outer_nwl", "Ealing", "Harrow"))
        with pytest.raises(ConfigError, match="comparator_areas: 'Ealing', 'Harrow' are not"):
            evaluate_areas(ds, window, st)
        with pytest.raises(ConfigError, match=f"comparison_areas: 'Ealing' .*{listed}"):
            evaluate_indicators(ds, window, IndicatorSettings(comparison_areas=("Ealing",)))
        with pytest.raises(ConfigError, match=f"control_areas: 'Ealing' .*{listed}"):
            evaluate_impact(ds, window, ImpactSettings(control_areas=("Ealing",)))


def test_the_default_areas_on_renamed_data_say_what_is_missing(renamed_dir: Path) -> None:
    with Dataset(renamed_dir) as ds:
        window = data_window(ds)
        with pytest.raises(ConfigError, match="programme_areas: 'pilot' is not an area") as e:
            evaluate_areas(ds, window)
        assert "'Tower Hamlets', 'Hackney & City'" in str(e.value)
        with pytest.raises(ConfigError, match="'south_west_london', 'rest_of_england' are not"):
            evaluate_impact(ds, window, ImpactSettings(programme_areas=PROGRAMME))
        summary = summarise(ds)  # the data summary runs, and says why coverage is missing
    assert any("'pilot' not among the data's areas" in w for w in summary.warnings)
    assert summary.care_plan_coverage.coverage_of_eligible.isna().all()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: AreaSettings(programme_areas=()), "programme_areas must be a non-empty"),
        (lambda: AreaSettings(programme_areas=("pilot", "pilot")), "name each area once"),
        (lambda: AreaSettings(comparator_areas=("pilot",)), "must not name a programme area"),
        (lambda: AreaSettings(programme_areas=("",)), "programme_areas must be"),
        (lambda: IndicatorSettings(programme_areas="pilot"), "programme_areas must be"),  # type: ignore[arg-type]
        (lambda: IndicatorSettings(comparison_areas=("pilot",)), "comparison_areas must not"),
        (lambda: ImpactSettings(control_areas=("pilot",)), "control_areas must not"),
        (lambda: ImpactSettings(programme_areas=(), control_areas=()), "programme_areas"),
        (lambda: SummarySettings(programme_areas=()), "programme_areas must be"),
    ],
)
def test_area_settings_are_checked(make: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        make()  # type: ignore[operator]


def test_area_settings_round_trip() -> None:
    for st in (
        AreaSettings(programme_areas=SPLIT, comparator_areas=("outer_nwl",)),
        IndicatorSettings(programme_areas=PROGRAMME, comparison_areas=CONTROLS),
        ImpactSettings(programme_areas=PROGRAMME, control_areas=CONTROLS),
        SummarySettings(programme_areas=SPLIT),
    ):
        assert type(st).from_json(st.to_json()) == st
    assert AreaSettings().comparator_areas is None
    assert IndicatorSettings().comparison_areas is None
    assert ImpactSettings().control_areas == ("south_west_london", "rest_of_england")


# ---- renamed areas: the same numbers under the new names ---------------------------------------


@pytest.fixture(scope="module")
def table2(synth_dir: Path) -> AreaResult:
    with Dataset(synth_dir) as ds:
        return evaluate_areas(ds, data_window(ds), AreaSettings(starts=STARTS))


def test_table2_of_renamed_areas_is_the_same(table2: AreaResult, renamed_dir: Path) -> None:
    st = AreaSettings(starts=STARTS, programme_areas=PROGRAMME)
    with Dataset(renamed_dir) as ds:
        got = evaluate_areas(ds, data_window(ds), st)
    pd.testing.assert_frame_equal(got.table, _renamed(table2.table, RENAME, "area"))
    want = _renamed(table2.differences, RENAME, "comparator")
    pd.testing.assert_frame_equal(got.differences, want)
    assert got.settings.comparator_areas == tuple(RENAME.values())[1:]  # filled in, data order
    assert table2.settings.comparator_areas == AREAS[1:]


def test_two_programme_areas_pool_to_one_row(table2: AreaResult, split_dir: Path) -> None:
    st = AreaSettings(starts=STARTS, programme_areas=SPLIT)
    with Dataset(split_dir) as ds:
        got = evaluate_areas(ds, data_window(ds), st)
    pooled = {"pilot": "pilot east + pilot west"}
    pd.testing.assert_frame_equal(got.table, _renamed(table2.table, pooled, "area"))
    pd.testing.assert_frame_equal(got.differences, _renamed(table2.differences, {}))
    assert "pilot east + pilot west, all eligible" in got.summary()


def test_named_comparators_keep_their_order(table2: AreaResult, synth_dir: Path) -> None:
    st = AreaSettings(starts=STARTS, comparator_areas=("rest_of_england", "outer_nwl"))
    with Dataset(synth_dir) as ds:
        got = evaluate_areas(ds, data_window(ds), st)
    assert list(dict.fromkeys(got.table.area)) == ["pilot", "rest_of_england", "outer_nwl"]
    both = got.table.merge(table2.table, on=["group", "start", "area"], suffixes=("", "_all"))
    assert len(both) == len(got.table)
    assert (both["pct_change"] == both["pct_change_all"]).all()


@pytest.fixture(scope="module")
def indicators(synth_dir: Path) -> IndicatorsResult:
    with Dataset(synth_dir) as ds:
        return evaluate_indicators(ds, data_window(ds))


def _same_indicators(got: IndicatorsResult, want: IndicatorsResult, names: dict[str, str]) -> None:
    """``got`` holds ``want``'s numbers with the areas (and series) renamed by ``names``."""
    for table in ("diabetes_monthly", "dementia_monthly"):
        expected = _renamed(getattr(want, table), names, "area")
        pd.testing.assert_frame_equal(getattr(got, table), expected)
    pd.testing.assert_frame_equal(got.before_after, want.before_after)
    pd.testing.assert_frame_equal(got.its_fitted, _renamed(want.its_fitted, names, "series"))
    assert got.cohort == want.cohort
    assert {names.get(k, k): v for k, v in want.its.items() if k != "series"} == {
        k: v for k, v in got.its.items() if k != "series"
    }


def test_indicators_of_renamed_areas_are_the_same(
    indicators: IndicatorsResult, renamed_dir: Path
) -> None:
    st = IndicatorSettings(programme_areas=PROGRAMME)
    with Dataset(renamed_dir) as ds:
        got = evaluate_indicators(ds, data_window(ds), st)
    names = {**RENAME, "pilot_minus_comparators": "Tower Hamlets_minus_comparators"}
    _same_indicators(got, indicators, names)
    level = got.its["Tower Hamlets"]["ols"]["coefficients"]["level_change"]["estimate"]
    assert level == indicators.its["pilot"]["ols"]["coefficients"]["level_change"]["estimate"]
    assert got.settings.comparison_areas == tuple(RENAME.values())[1:]
    assert "Dementia ITS (Tower Hamlets, from" in got.summary()


def test_two_programme_areas_pool_to_one_series(
    indicators: IndicatorsResult, split_dir: Path
) -> None:
    st = IndicatorSettings(programme_areas=SPLIT)
    with Dataset(split_dir) as ds:
        got = evaluate_indicators(ds, data_window(ds), st)
    name = "pilot east + pilot west"
    _same_indicators(
        got, indicators, {"pilot": name, "pilot_minus_comparators": f"{name}_minus_comparators"}
    )


@pytest.fixture(scope="module")
def impact(synth_dir: Path) -> ImpactResult:
    with Dataset(synth_dir) as ds:
        return evaluate_impact(ds, data_window(ds), ImpactSettings(outcomes=ONE_OUTCOME))


def test_impact_of_renamed_areas_is_the_same(impact: ImpactResult, renamed_dir: Path) -> None:
    st = ImpactSettings(programme_areas=PROGRAMME, control_areas=CONTROLS, outcomes=ONE_OUTCOME)
    with Dataset(renamed_dir) as ds:
        got = evaluate_impact(ds, data_window(ds), st)
    assert got.attrition == impact.attrition
    assert got.attrition["treated_matched"] > 0 and got.attrition["controls_matched"] > 0
    e, want = got.outcomes["emergency_admissions"], impact.outcomes["emergency_admissions"]
    assert e["rate_ratio"] == want["rate_ratio"]
    assert (e["rate_ratio_ci_low"], e["rate_ratio_ci_high"]) == (
        want["rate_ratio_ci_low"],
        want["rate_ratio_ci_high"],
    )
    assert got.to_dict()["settings"]["control_areas"] == list(CONTROLS)


def test_not_yet_treated_takes_every_programme_area(synth_dir: Path, split_dir: Path) -> None:
    one = ImpactSettings(not_yet_treated=True, outcomes=ONE_OUTCOME)
    two = ImpactSettings(not_yet_treated=True, programme_areas=SPLIT, outcomes=ONE_OUTCOME)
    with Dataset(synth_dir) as ds:
        want = evaluate_impact(ds, data_window(ds), one)
    with Dataset(split_dir) as ds:
        got = evaluate_impact(ds, data_window(ds), two)
    assert got.attrition == want.attrition
    assert got.outcomes["emergency_admissions"] == want.outcomes["emergency_admissions"]


def test_the_summary_lists_the_data_areas(synth_dir: Path, split_dir: Path) -> None:
    with Dataset(synth_dir) as ds:
        want = summarise(ds)
    with Dataset(split_dir) as ds:
        got = summarise(ds, SummarySettings(programme_areas=SPLIT))
    assert list(got.people_by_area.area) == [*SPLIT, *AREAS[1:]]
    assert list(got.attrition.columns) == ["step", "description", *SPLIT, *AREAS[1:]]
    split = got.people_by_area.set_index("area").loc[list(SPLIT)].sum()
    assert split.registered == want.people_by_area.set_index("area").loc["pilot"].registered
    pd.testing.assert_frame_equal(got.care_plan_coverage, want.care_plan_coverage)


# ---- the report's labels ------------------------------------------------------------------------


def test_area_labels() -> None:
    assert area_label("pilot") == "Integrated care pilot"  # the seed's labels stay
    assert area_label("rest_of_england") == "Rest of England"
    assert area_label("Tower Hamlets") == "Tower Hamlets"  # any other name as written
    assert area_label("north_central_london") == "North central london"  # identifiers read
    assert area_label("pilot east + pilot west") == "pilot east + pilot west"  # not identifiers
    assert area_label("Tower Hamlets + outer_nwl") == "Tower Hamlets + Outer NWL"


def test_report_sections_show_the_data_names_escaped(table2: AreaResult, renamed_dir: Path) -> None:
    from careval.report.sections.areas import section as areas_section
    from careval.report.sections.data import data_section

    st = AreaSettings(starts=STARTS, programme_areas=PROGRAMME)
    with Dataset(renamed_dir) as ds:
        result = evaluate_areas(ds, data_window(ds), st)
        summary = summarise(ds, SummarySettings(programme_areas=PROGRAMME))
    for page in (areas_section(result).html, data_section(summary).html):
        assert "Tower Hamlets" in page and "North central london" in page
        assert html.escape("Hackney & City") in page and html.escape("King's <Cross>") in page
        assert "<Cross>" not in page and "Hackney & City" not in page
    assert "Integrated care pilot" not in areas_section(result).html
    seed = areas_section(table2).html
    assert "Integrated care pilot" in seed and "South-west London" in seed
