"""Study design: textbook formulas, the estimator's closed form, analytic against simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower

from careval.cli import main
from careval.design.power import (
    Components,
    analytic,
    power_at,
    seed_example,
    simulate,
    two_group_mde,
    z_sum,
)
from careval.errors import ConfigError
from careval.impact.fe import fit_fe


@pytest.mark.parametrize(
    ("n1", "ratio", "alpha", "power"),
    [(100, 1, 0.05, 0.8), (1236, 5, 0.05, 0.9), (50, 2.5, 0.01, 0.8)],
)
def test_two_group_formulas_match_statsmodels(
    n1: int, ratio: float, alpha: float, power: float
) -> None:
    sd = 2.5
    es = NormalIndPower().solve_power(nobs1=n1, ratio=ratio, alpha=alpha, power=power)
    # statsmodels also counts the far tail's (negligible) rejections, the formula does not.
    assert two_group_mde(sd, n1, ratio, alpha, power) == pytest.approx(es * sd, rel=1e-4)
    se = sd * np.sqrt(1 / n1 + 1 / (ratio * n1))
    want = NormalIndPower().power(effect_size=0.3, nobs1=n1, ratio=ratio, alpha=alpha)
    assert power_at(0.3 * sd, se, alpha) == pytest.approx(want, rel=1e-9)


def _histories(rng: np.random.Generator, people: int, months: int) -> np.ndarray:
    """Overdispersed, persistent monthly counts (gamma frailty), as real histories are."""
    frailty = rng.gamma(0.8, 1 / 0.8, people) * 0.04
    return rng.poisson(frailty[:, None] * np.ones(months)).astype(float)


def test_closed_form_is_the_study_estimator() -> None:
    rng = np.random.default_rng(1)
    n, k, pre, m = 400, 3, 12, 6
    y = _histories(rng, n * (k + 1), pre + m)
    t, c = y[:n].copy(), y[n:].reshape(n, k, pre + m).mean(1)
    t[:, pre:] = rng.binomial(t[:, pre:].astype(int), 0.8)
    rows = [
        (2 * s + a, s, a, j, arr[s, j])
        for a, arr in ((1, t), (0, c))
        for s in range(n)
        for j in range(pre + m)
    ]
    df = pd.DataFrame(rows, columns=["unit", "set", "treated", "k", "y"])
    df["after_treated"] = ((df.k >= pre) & (df.treated == 1)).astype(float)
    fit = fit_fe(
        df,
        outcome="y",
        regressors=["after_treated"],
        fe=["unit", "k"],
        model="poisson",
        cluster="set",
    ).coefficients.iloc[0]
    s = [t[:, pre:].sum(), t[:, :pre].sum(), c[:, pre:].sum(), c[:, :pre].sum()]
    est = np.log(s[0] / s[1]) - np.log(s[2] / s[3])
    infl = (
        t[:, pre:].sum(1) / s[0]
        - t[:, :pre].sum(1) / s[1]
        - c[:, pre:].sum(1) / s[2]
        + c[:, :pre].sum(1) / s[3]
    )
    se = np.sqrt((infl**2).sum() * n / (n - 1))
    assert fit.estimate == pytest.approx(est, abs=1e-8)
    assert fit.se == pytest.approx(se, rel=0.01)  # pyfixest's small-sample factor differs


def test_analytic_and_simulation_agree_on_overdispersed_histories() -> None:
    rng = np.random.default_rng(2)
    y = _histories(rng, 20_000, 24)
    pre, m, n, k = 12, 12, 1500, 5
    y0, y1 = y[:, :pre].sum(1), y[:, pre:].sum(1)
    cv = np.cov(np.vstack([y0, y1]))
    comp = Components(y0.size, y0.mean(), y1.mean(), cv[0, 0], cv[1, 1], cv[0, 1])
    se = analytic(comp, n, k)
    sim = simulate(y, 12, pre, m, n, k, -0.15, 2000, np.random.default_rng(3), 0.05)
    assert sim["sd_estimate"] == pytest.approx(se, rel=0.06)
    assert sim["power"] == pytest.approx(power_at(np.log(0.85), se, 0.05), abs=0.04)
    assert 0.93 <= sim["coverage"] <= 0.97
    assert np.exp(sim["mean_estimate"]) == pytest.approx(0.85, abs=0.01)


def test_seed_example_is_poisson_closed_form_and_simulates() -> None:
    ex = seed_example()
    mu0, mu1 = 0.44, 0.11
    se = np.sqrt((1 / mu1 + 1 / mu0) * (1 + 1 / 5) / 1236)
    assert ex["se_log_rate_ratio"] == pytest.approx(se, rel=1e-12)
    assert ex["mde_rate_ratio"] == pytest.approx(np.exp(-z_sum(0.05, 0.8) * se), rel=1e-12)
    rng = np.random.default_rng(4)
    y = rng.poisson(0.44 / 12, (40_000, 15)).astype(float)
    sim = simulate(y, 12, 12, 3, 1236, 5, -0.10, 2000, rng, 0.05)
    assert sim["sd_estimate"] == pytest.approx(se, rel=0.06)
    assert ex["mde_rate_ratio"] < 0.76  # the seed could only see falls of about 25% or more


def test_design_block_agrees_with_itself_and_the_matched_study(shape_run: Path) -> None:
    r = json.loads((shape_run / "results.json").read_text())
    d = r["design"]
    assert d["enrolled"] == r["impact"]["n_treated"]
    assert [row["followup_months"] for row in d["mde"]] == [3, 6, 12, 18, 24]
    for row in d["mde"]:
        assert row["sim_sd_log_rate_ratio"] == pytest.approx(row["se_log_rate_ratio"], rel=0.1)
        assert row["sim_power_at_effect"] == pytest.approx(row["power_at_effect"], abs=0.06)
        assert 0.93 <= row["sim_coverage"] <= 0.97
    mdes = [row["mde_rate_ratio"] for row in d["mde"]]
    assert mdes == sorted(mdes)  # longer follow-up, smaller detectable effects
    # The matched study's own interval is as wide as the design predicts for its follow-up.
    e = r["impact"]["outcomes"]["emergency_admissions"]
    se_study = (np.log(e["rate_ratio_ci_high"]) - np.log(e["rate_ratio_ci_low"])) / (2 * 1.96)
    ses = [row["se_log_rate_ratio"] for row in d["mde"]]
    assert min(ses) * 0.75 <= se_study <= max(ses) * 1.25


def test_design_cli(synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "d.json"
    assert (
        main(
            [
                "design",
                "--data",
                str(synth_dir),
                "--json",
                str(out),
                "--enrolled",
                "1236",
                "--followup-months",
                "3,12",
                "--replicates",
                "200",
            ]
        )
        is None
    )
    got = json.loads(out.read_text())
    assert got["enrolled"] == 1236
    assert [row["followup_months"] for row in got["mde"]] == [3, 12]
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "design",
                "--data",
                str(synth_dir),
                "--json",
                str(tmp_path / "x.json"),
                "--effect",
                "0",
            ]
        )
    assert exc.value.code == 2
    assert "effect" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(ConfigError):
        from careval.design.power import DesignSettings

        DesignSettings(alpha=0.7)


def test_design_result_tidy_summary_and_settings_round_trip() -> None:
    from careval.design.power import DesignSettings, plan

    st = DesignSettings(followup_months=(3, 6), replicates=50)
    assert DesignSettings.from_json(st.to_json()) == st
    assert st.to_dict()["followup_months"] == [3, 6]
    y = _histories(np.random.default_rng(5), 4000, 36)
    res = plan({"emergency_admissions": y}, 12, st, 500, "test histories")
    t = res.tidy()
    assert list(t.columns[:4]) == [
        "followup_months",
        "people_with_full_history",
        "se_log_rate_ratio",
        "mde_rate_ratio",
    ]
    assert t.followup_months.tolist() == [3, 6]
    mde = t.mde_rate_ratio.iloc[0]
    assert 0 < mde < 1
    assert f"MDE rate ratio {mde:.3f}" in res.summary()
    assert "500 care-planned" in res.summary()


def test_no_events_after_entry_is_a_reason_not_a_division_by_zero() -> None:
    """Histories with no admission in the first months after entry: the rate ratio of those
    months is undefined, so they have no design row and no 'follow-up needed'; later months
    with admissions still get one, computed as for histories that had them all along."""
    from careval.design.power import Components, DesignSettings, analytic, components, plan

    y = _histories(np.random.default_rng(5), 4000, 36)
    quiet = y.copy()
    quiet[:, 12:15] = 0.0  # no admissions in months 0-2 after entry
    st = DesignSettings(followup_months=(2, 6), replicates=50)
    res = plan({"emergency_admissions": quiet}, 12, st, 500, "test histories")
    t = res.tidy()
    assert t.followup_months.tolist() == [6]
    c = components(quiet, 12, st.pre_months, 6)
    assert t.se_log_rate_ratio.iloc[0] == pytest.approx(np.sqrt(c.v_log * (1 + 1 / st.ratio) / 500))
    assert res.followup_needed_months is None or res.followup_needed_months > 3
    with pytest.raises(ConfigError, match="histories hold no events after entry"):
        analytic(Components(100, 1.0, 0.0, 1.0, 0.0, 0.0), 500, 5)


def test_design_cli_on_real_data_writes_published_counts(synth_dir: Path, tmp_path: Path) -> None:
    """On data flagged real the JSON is published: the number enrolled, the people with full
    histories and the baseline people rounded to 5 (or suppressed), the baseline rate from
    them; the same command on the synthetic data writes the true ones."""
    import shutil

    real = tmp_path / "real"
    shutil.copytree(synth_dir, real)
    manifest = json.loads((real / "dataset.json").read_text())
    (real / "dataset.json").write_text(json.dumps({**manifest, "synthetic": False}))
    args = ["--enrolled", "1236", "--followup-months", "3,12", "--replicates", "50"]
    got = {}
    for name, data in (("real", real), ("synthetic", synth_dir)):
        out = tmp_path / f"{name}.json"
        assert main(["design", "--data", str(data), "--json", str(out), *args]) is None
        got[name] = json.loads(out.read_text())
    true, pub = got["synthetic"], got["real"]
    assert true["enrolled"] == 1236 and pub["enrolled"] == 1235
    people = true["baseline_people"]
    assert pub["baseline_people"] == 5 * round(people / 5)
    events = round(true["baseline_rate_per_person_year"] / 12 * people)
    assert pub["baseline_rate_per_person_year"] == pytest.approx(
        12 * (5 * round(events / 5)) / pub["baseline_people"]
    )
    for t, p in zip(true["mde"], pub["mde"], strict=True):
        assert p["people_with_full_history"] == 5 * round(t["people_with_full_history"] / 5)
