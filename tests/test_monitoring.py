"""Programme monitoring, the SPC command and the monitoring blocks of a run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from careval.cli import main
from careval.cohort.summary import summarise
from careval.data.access import Dataset
from careval.disclosure import DisclosureSettings
from careval.monitoring.programme import evaluate_programme

DC = DisclosureSettings()  # the default disclosure rules

SAMPLE = Path(__file__).parent / "fixtures" / "samples" / "nhs-ae-attendances.csv"


def test_programme_counts_match_the_tables(synth_dir: Path) -> None:
    with Dataset(synth_dir) as ds:
        r = evaluate_programme(ds, summarise(ds))
    cp = pq.read_table(synth_dir / "care_plans.parquet").to_pandas()
    by_mdg = r.plans_by_mdg.drop(columns="month")
    assert int(by_mdg.to_numpy().sum()) == len(cp)
    assert by_mdg.sum().to_dict() == cp.groupby("mdg").size().to_dict()
    q = r.quality.set_index("item").share_of_plans
    assert q["goals agreed"] == pytest.approx(cp.q_goals_agreed.mean())
    fund = pq.read_table(synth_dir / "innovation_fund.parquet").to_pandas()
    assert r.fund.allocated.sum() == pytest.approx(fund.amount.sum())
    att = pq.read_table(synth_dir / "mdg_attendance.parquet").to_pandas()
    share = r.attendance_share.set_index("role").share_of_attendees
    want = att.groupby("role").attendees.sum() / att.attendees.sum()
    pd.testing.assert_series_equal(share.sort_index(), want.sort_index(), check_names=False)
    assert "care_plans_per_month" in r.charts
    json.dumps(r.to_dict())


def test_run_has_monitoring_and_programme_blocks(shape_run: Path) -> None:
    r = json.loads((shape_run / "results.json").read_text())
    rows = r["monitoring"]["table2"]
    assert {x["start"] for x in rows} == {"2011-04-01", "2011-07-01", "2011-09-01"}
    assert {x["group"] for x in rows} >= {"all_eligible", "aged_75_plus_with_diabetes"}
    for x in rows:
        assert x["ci_low"] <= x["pct_change"] <= x["ci_high"]
    fund = r["programme"]["fund_summary"]
    assert fund["share_allocated_first_year"] == pytest.approx(0.39, abs=0.03)  # the seed: 39%
    page = (shape_run / "report.html").read_text()
    for sec in ('id="monitoring"', 'id="programme"', 'id="table2"'):
        assert sec in page


def test_spc_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    df = pd.read_csv(SAMPLE)
    one = df[(df.org_code == "RF4") & (df.type.astype(str) == "1")]
    one.to_csv(tmp_path / "rf4.csv", index=False)
    out = tmp_path / "spc.json"
    assert (
        main(
            [
                "spc",
                "--csv",
                str(tmp_path / "rf4.csv"),
                "--date",
                "period",
                "--value",
                "attendances",
                "--improvement",
                "decrease",
                "--json",
                str(out),
            ]
        )
        is None
    )
    got = json.loads(out.read_text())
    assert len(got["points"]) == len(one)
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "spc",
                "--csv",
                str(SAMPLE),
                "--date",
                "period",
                "--value",
                "attendances",
                "--json",
                str(tmp_path / "bad.json"),
            ]
        )
    assert exc.value.code == 2
    assert "repeat" in capsys.readouterr().err
    assert not (tmp_path / "bad.json").exists()


def test_programme_result_tidy_summary_and_publication(synth_dir: Path) -> None:
    from careval.monitoring.programme import ProgrammeSettings
    from careval.report.publish.programme import publish_programme
    from careval.report.sections.programme import section

    st = ProgrammeSettings(fund_budget_year_one=400_000.0)
    with Dataset(synth_dir) as ds:
        r = evaluate_programme(ds, summarise(ds), st)
    t = r.tidy()
    assert list(t.columns[:3]) == ["month", "care_plans", "cumulative"]
    assert int(t.care_plans.sum()) == len(pq.read_table(synth_dir / "care_plans.parquet"))
    share = r.fund_summary["share_allocated_first_year"]
    assert f"{100 * share:.0f}% of the first year's budget" in r.summary()
    before = json.dumps(r.to_dict())
    pub = publish_programme(r, DC)
    assert pub is not r and json.dumps(r.to_dict()) == before  # the input is not changed
    assert all(v == "*" or v % 5 == 0 for v in pub.plans_by_mdg.total)
    assert section(pub).id == "programme" and 'id="programme-fund"' in section(pub).html
