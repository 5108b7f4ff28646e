"""The matched-control impact study: did care planning change hospital use?

Design (the seed's, made rigorous):

1. **Treated**: everyone with a care plan, entering at the month of their first plan (rolling
   entry), alive and registered at the start of that month.
2. **Potential controls**: people in the comparator areas (default: outside North West London)
   who are eligible, alive and registered at the start of the same month. With
   ``not_yet_treated`` the pool also takes eligible pilot-practice people who have no care plan
   yet at that month; a control who is care-planned later stops counting as a control from
   their own plan's month (their months from then on leave the set's control mean).
   Everyone's history is taken at that month start, so a treated person picked after a recent
   spike in admissions is compared with controls who had the same spike (regression to the
   mean is mirrored).
3. **Matching**: exact on entry month, sex and age band, then nearest neighbour on the logit of
   a propensity score (logistic, on the risk score, age, prior use, conditions and
   deprivation), with a caliper, up to five controls each, with replacement by default (the
   comparator pool is not much larger than the treated group).
4. **Outcomes**: a monthly panel around entry for each matched set, with the treated person as
   one unit and the mean of their controls as another. The difference-in-differences has unit
   and calendar-month fixed effects, common terms for the implementation months (0 to
   ``effect_from_month - 1``) and the months after, and the treated-arm contrasts of both;
   Poisson for counts (rate ratios), linear for costs; standard errors clustered on the matched
   set. Averaging a set's controls into one unit leaves the estimating equations of the
   treatment terms unchanged (every control in a set shares the same regressors) and makes the
   fit several times faster than one unit per control.
5. **Naive** before-after change in the treated alone, shown beside it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import stats

from careval.cohort.eligibility import EligibilitySettings, first_diagnosis
from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.features.index_date import WINDOWS
from careval.impact.balance import balance_table
from careval.impact.did import Model, fit_fe
from careval.impact.matching import MatchResult, MatchSettings, match
from careval.impact.panel import Panel, build_panel, month_of
from careval.impact.variance import two_way_vcov
from careval.risk.model import RiskModel, design_matrix

COMPARATORS = ("south_west_london", "rest_of_england")  # outside North West London
PILOT = "pilot"
NEVER_MONTH = 10**9  # censor month (a month number) of someone never care-planned
AGE_BANDS = (0, 65, 75, 85, 200)
FIT_TOL = 1e-8  # convergence of the fixed-effect fits (see fit_fe)
DESIGN_PRE_MONTHS = 12  # untreated history kept for the design module: 12 months before entry
DESIGN_MAX_POST = 36  # and up to 36 after
# Outcome -> model. Counts are Poisson (rate ratios); costs linear (pounds a person-month).
OUTCOMES: dict[str, Model] = {
    "emergency_admissions": "poisson",
    "ae_attendances": "poisson",
    "elective_admissions": "poisson",
    "outpatient_attendances": "poisson",
    "bed_days": "poisson",
    "emergency_cost": "ols",
    "inpatient_cost": "ols",
}
PS_COVARIATES = (
    "risk_logit",
    "age",
    "female",
    "imd_decile",
    "emergency_admissions_3m",
    "emergency_admissions_6m",
    "emergency_admissions_12m",
    "emergency_admissions_24m",
    "emergency_bed_days_12m",
    "emergency_cost_12m",
    "elective_admissions_12m",
    "ae_attendances_12m",
    "outpatient_attendances_12m",
    "months_since_emergency",
    "n_long_term_conditions",
)


@dataclass(frozen=True)
class ImpactSettings:
    """Settings of the matched study; every default is stated in the report."""

    control_areas: tuple[str, ...] = COMPARATORS
    # Also take eligible people of the pilot practices not yet care-planned at the entry month
    # (censored at their own plan). Off: nobody with a plan, ever, is a control.
    not_yet_treated: bool = False
    entry_from: dt.date | None = None  # first month of entry (default: the first care plan)
    entry_to: dt.date | None = None  # last (default: the data's end less min_follow_up)
    min_follow_up: int = 3
    pre_months: int = 24
    effect_from_month: int = 3
    horizons: tuple[int, ...] = (3, 6, 12, 24)
    event_window: tuple[int, int] = (-12, 23)
    event_bin_months: int = 3
    match: MatchSettings = field(
        default_factory=lambda: MatchSettings(
            ratio=5,
            caliper=0.2,
            replace=True,
            exact=("entry_month", "female", "age_band"),
            distance="logit_ps",
        )
    )

    def __post_init__(self) -> None:
        if not 0 <= self.effect_from_month <= 12:
            raise ConfigError("effect_from_month must be between 0 and 12")
        if not 3 <= self.pre_months <= 60:
            raise ConfigError("pre_months must be between 3 and 60")
        if "entry_month" not in self.match.exact:
            raise ConfigError(
                "controls must be assessed at the treated person's month: keep "
                "entry_month among the exact matching variables"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        m = self.match
        return {
            "control_areas": list(self.control_areas),
            "not_yet_treated": self.not_yet_treated,
            "entry_from": self.entry_from.isoformat() if self.entry_from else None,
            "entry_to": self.entry_to.isoformat() if self.entry_to else None,
            "min_follow_up": self.min_follow_up,
            "pre_months": self.pre_months,
            "effect_from_month": self.effect_from_month,
            "horizons": list(self.horizons),
            "match": {
                "ratio": m.ratio,
                "caliper_sd": m.caliper,
                "replace": m.replace,
                "exact": list(m.exact),
                "distance": m.distance,
            },
        }


@dataclass
class StudyPopulation:
    """Treated and candidate-control rows at their entry months, with covariates."""

    frame: pd.DataFrame  # one row per (person, entry month) candidate; ``treated`` 0/1
    panel: Panel
    attrition: dict[str, int]


def _first_of(month: int) -> dt.date:
    return dt.date(month // 12, month % 12 + 1, 1)


def _age_band(age: pd.Series) -> pd.Series:
    labels = [
        f"{a}-{b - 1}" if b < 200 else f"{a}+"
        for a, b in zip(AGE_BANDS[:-1], AGE_BANDS[1:], strict=True)
    ]
    labels[0] = f"under {AGE_BANDS[1]}"
    return pd.cut(age, AGE_BANDS, right=False, labels=labels).astype(str)


def candidates(
    ds: Dataset,
    entries: pd.DataFrame,
    control_areas: Sequence[str],
    eligibility: EligibilitySettings | None = None,
) -> list[pd.DataFrame]:
    """For each entry month: the treated entering then and the eligible comparator-area people.

    The same rules as :func:`careval.cohort.eligibility.population_at` (registered on the 1st
    of the month, at the practice of the latest registration starting by then; alive; aged
    ``min_age`` or over, or with the condition recorded by then), evaluated for every month
    from one read of the relevant registrations instead of one engine query per month (a
    test checks the two agree).
    """
    el = eligibility or EligibilitySettings()
    who = ibis.memtable(pd.DataFrame({"person_id": entries.person_id.astype(str).unique()}))
    r, pr, p = ds.table("registrations"), ds.table("practices"), ds.table("persons")
    reg = r.join(pr, "practice_code")
    cols = ["person_id", "practice_code", "area", "mdg", "start_date", "end_date"]
    reg = ibis.union(
        reg.filter(reg.area.isin(list(control_areas))).select(*cols),
        reg.semi_join(who, "person_id").select(*cols),
    ).to_pandas()
    ids = ibis.memtable(pd.DataFrame({"person_id": reg.person_id.unique()}))
    people = (
        p.semi_join(ids, "person_id")
        .select("person_id", "birth_month", "death_date")
        .to_pandas()
        .set_index("person_id")
    )
    dx = first_diagnosis(ds, el.condition).to_pandas().set_index("person_id").first_date
    reg = reg.join(people, on="person_id")
    reg["_dx"] = pd.to_datetime(reg.person_id.map(dx))
    reg["_birth"] = (
        pd.to_datetime(reg.birth_month).dt.year * 12 + pd.to_datetime(reg.birth_month).dt.month - 1
    )
    start, end = pd.to_datetime(reg.start_date), pd.to_datetime(reg.end_date)
    death = pd.to_datetime(reg.death_date)
    out = []
    for m in sorted(entries.entry_month.unique()):
        d = pd.Timestamp(_first_of(int(m)))
        entering = set(entries.person_id[entries.entry_month == m].astype(str))
        on = ((start <= d) & (end.isna() | (end >= d)) & (death.isna() | (death > d))).to_numpy()
        g = reg[on].sort_values(["person_id", "start_date"], ascending=[True, False])
        g = g.drop_duplicates("person_id")
        age = (int(m) - g._birth) // 12
        eligible = (age >= el.min_age) | (g._dx <= d)
        is_t = g.person_id.isin(entering)
        keep = (g.area.isin(list(control_areas)) & eligible) | is_t
        got = g.loc[keep, ["person_id", "area", "practice_code", "mdg"]].copy()
        got["eligible"] = eligible[keep].to_numpy()
        got["entry_month"] = int(m)
        got["treated"] = is_t[keep].astype(np.int64).to_numpy()
        out.append(got)
    return out


def study_population(
    ds: Dataset,
    window: tuple[dt.date, dt.date],
    settings: ImpactSettings,
    risk_model: RiskModel | None,
) -> StudyPopulation:
    """Treated at their plan month and eligible comparator-area people at the same months."""
    if not ds.has("care_plans"):
        raise ConfigError("the impact study needs the care_plans table")
    cp = ds.table("care_plans")
    first = cp.group_by("person_id").agg(created=cp.created_date.min()).to_pandas()
    if first.empty:
        raise ConfigError("the impact study needs care plans; the care_plans table is empty")
    first["entry_month"] = [month_of(d) for d in pd.to_datetime(first.created).dt.date]
    plan_months = first[["person_id", "entry_month"]].copy()
    data_first, data_last = month_of(window[0]), month_of(window[1])
    lo = month_of(settings.entry_from) if settings.entry_from else int(first.entry_month.min())
    hi = (
        month_of(settings.entry_to) if settings.entry_to else data_last - settings.min_follow_up + 1
    )
    attrition = {"care_planned": int(len(first))}
    first = first[(first.entry_month >= max(lo, data_first + 12)) & (first.entry_month <= hi)]
    attrition["entered_in_study_window"] = int(len(first))
    pool = tuple(settings.control_areas)
    if settings.not_yet_treated and PILOT not in pool:
        pool += (PILOT,)
    rows = candidates(ds, first, pool)
    if not rows:
        raise ConfigError("no care plans fall in the study window")
    # The engine returns rows in no set order: sort, so that ties break the same way each run.
    frame = pd.concat(rows, ignore_index=True).sort_values(
        ["entry_month", "person_id"], kind="stable", ignore_index=True
    )
    # A person's first plan month, all plans counted (also any outside the study window).
    plan_month = plan_months.set_index("person_id").entry_month
    censor = frame.person_id.map(plan_month).fillna(NEVER_MONTH).astype(np.int64).to_numpy()
    if settings.not_yet_treated:  # controls only before their own plan
        keep = (frame.treated == 1).to_numpy() | (censor > frame.entry_month.to_numpy())
    else:  # people with a plan are never controls (also outside the pilot, if any there)
        keep = (frame.treated == 1).to_numpy() | (censor == NEVER_MONTH)
    frame = frame[keep].reset_index(drop=True)
    frame["censor_month"] = censor[keep]
    attrition["treated_alive_and_registered_at_entry"] = int(frame.treated.sum())
    panel = build_panel(ds, frame.person_id.to_numpy(), data_first, data_last)
    rows_p = panel.rows(frame.person_id.to_numpy())
    feats = panel.features(rows_p, frame.entry_month.to_numpy(), WINDOWS)
    frame = pd.concat([frame.reset_index(drop=True), feats], axis=1)
    frame["panel_row"] = rows_p
    if risk_model is not None:
        x = design_matrix(frame.drop(columns=["panel_row", "entry_month", "treated"]))
        p = np.clip(risk_model.predict_proba(x)[:, 1], 1e-6, 1 - 1e-6)
        frame["risk_score"] = p
        frame["risk_logit"] = np.log(p / (1 - p))
    else:
        frame["risk_score"] = np.nan
        frame["risk_logit"] = 0.0
    frame["age_band"] = _age_band(frame.age)
    frame["months_since_emergency"] = frame.months_since_emergency.clip(upper=25)
    return StudyPopulation(frame, panel, attrition)


def covariates(frame: pd.DataFrame) -> list[str]:
    """Propensity-score covariates present (and varying) in the study frame."""
    has = sorted(c for c in frame.columns if c.startswith("has_"))
    cols = list(PS_COVARIATES) + has
    if has:  # the count of conditions is the sum of the indicators: keep it out of the model
        cols.remove("n_long_term_conditions")
    return [c for c in cols if c in frame.columns and frame[c].nunique() > 1]


def matched_panel(
    study: StudyPopulation, result: MatchResult, settings: ImpactSettings, measures: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long panel around each set's entry month, and the people behind its control units.

    Per matched set and month: the treated person as one unit and the mean of the set's living
    controls as another (``person`` is the treated person's panel row, -1 on control units).
    The second frame has one row per living control behind each control-unit row (``row``,
    ``person``, ``n_alive`` and the measures), for standard errors that see controls shared
    between sets (:mod:`careval.impact.variance`).
    """
    f = study.frame
    pn = study.panel
    tr = result.treated_rows[result.pairs.treated]  # frame row of the treated, per pair
    co = result.control_rows[result.pairs.control]
    sets, set_of_pair = np.unique(tr, return_inverse=True)
    entry = f.entry_month.to_numpy()[sets]
    t_row = f.panel_row.to_numpy()[sets]
    c_row = f.panel_row.to_numpy()[co]
    c_censor = f.censor_month.to_numpy()[co]  # a control's own plan month (or NEVER_MONTH)
    lo_k = -settings.pre_months
    hi_k = pn.first_month + pn.n_months - 1 - int(entry.min())
    n_sets = sets.size
    parts, piece_parts = [], []
    offset = 0
    for k in range(lo_k, hi_k + 1):
        month = entry + k
        inside = (month >= pn.first_month) & (month < pn.first_month + pn.n_months)
        if not inside.any():
            continue
        j = np.clip(month - pn.first_month, 0, pn.n_months - 1)
        t_alive = inside & pn.alive_at(t_row, month)
        c_month = month[set_of_pair]
        c_alive = inside[set_of_pair] & pn.alive_at(c_row, c_month) & (c_month < c_censor)
        n_alive = np.bincount(set_of_pair, weights=c_alive, minlength=n_sets)
        both = t_alive & (n_alive > 0)
        if not both.any():
            continue
        idx = np.flatnonzero(both)
        jc = j[set_of_pair]
        block: dict[str, np.ndarray] = {
            "set": np.r_[idx, idx],
            "unit": np.r_[2 * idx + 1, 2 * idx],
            "person": np.r_[t_row[idx], np.full(idx.size, -1)],
            "treated": np.r_[np.ones(idx.size), np.zeros(idx.size)],
            "k": np.full(2 * idx.size, k),
            "month": np.r_[month[idx], month[idx]],
        }
        pidx = np.flatnonzero(both[set_of_pair] & c_alive)
        ps = set_of_pair[pidx]
        piece: dict[str, np.ndarray] = {
            "row": offset + idx.size + np.searchsorted(idx, ps),
            "person": c_row[pidx],
            "n_alive": n_alive[ps],
        }
        for name in measures:
            v = pn.values[name]
            cv = np.bincount(
                set_of_pair, weights=np.where(c_alive, v[c_row, jc], 0.0), minlength=n_sets
            ) / np.maximum(n_alive, 1)
            block[name] = np.r_[v[t_row, j][idx], cv[idx]]
            piece[name] = v[c_row[pidx], jc[pidx]]
        parts.append(pd.DataFrame(block))
        piece_parts.append(pd.DataFrame(piece))
        offset += 2 * idx.size
    out = pd.concat(parts, ignore_index=True)
    lag = settings.effect_from_month
    out["impl"] = ((out.k >= 0) & (out.k < lag)).astype(float)
    out["post"] = (out.k >= lag).astype(float)
    out["impl_treated"] = out.impl * out.treated
    out["post_treated"] = out.post * out.treated
    return out, pd.concat(piece_parts, ignore_index=True)


def _fit(
    panel: pd.DataFrame,
    pieces: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    model: Model,
    fe: tuple[str, ...] = ("unit", "month"),
) -> Any:
    """``fit_fe`` for the estimates, then standard errors two-way clustered on set and person
    (shared controls), with intervals and p-values recomputed from them (normal)."""
    fit = fit_fe(
        panel,
        outcome=outcome,
        regressors=regressors,
        fe=list(fe),
        model=model,
        cluster="set",
        tol=FIT_TOL,
    )
    coefs = fit.coefficients.set_index("term")
    terms = [r for r in regressors if r in coefs.index and np.isfinite(coefs.loc[r, "estimate"])]
    beta = np.array([coefs.loc[r, "estimate"] for r in terms])
    v = two_way_vcov(panel, pieces, outcome, terms, beta, model)
    z = stats.norm.ppf(0.975)
    for i, r in enumerate(terms):
        se = float(np.sqrt(v[i, i]))
        est = float(coefs.loc[r, "estimate"])
        coefs.loc[r, "se"] = se
        coefs.loc[r, "ci_low"] = est - z * se
        coefs.loc[r, "ci_high"] = est + z * se
        coefs.loc[r, "p_value"] = float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else np.nan
    return dataclasses.replace(
        fit, coefficients=coefs.reset_index(), vcov="CRV1 two-way", cluster="set+person"
    )


def control_series(
    study: StudyPopulation, result: MatchResult, measure: str, pre: int, post: int
) -> np.ndarray:
    """Matched controls' monthly ``measure`` aligned on their set's entry month.

    One row per distinct (control, entry month); columns are months ``-pre`` .. ``post - 1``
    since entry; NaN where the month is outside the data or the person has died. These are
    untreated histories of people like the care-planned: the design module resamples them.
    """
    f, pn = study.frame, study.panel
    rows = np.unique(result.control_rows[result.pairs.control])
    entry = f.entry_month.to_numpy()[rows]
    prow = f.panel_row.to_numpy()[rows]
    ks = np.arange(-pre, post)
    month = entry[:, None] + ks[None, :]
    inside = (month >= pn.first_month) & (month < pn.first_month + pn.n_months)
    j = np.clip(month - pn.first_month, 0, pn.n_months - 1)
    alive = pn.alive_at(np.repeat(prow, ks.size), month.ravel()).reshape(month.shape)
    alive &= month < f.censor_month.to_numpy()[rows][:, None]  # untreated months only
    v = pn.values[measure][prow[:, None], j]
    return np.where(inside & alive, v, np.nan)


def _coef(fit: Any, term: str) -> dict[str, Any]:
    row = fit.coefficients.set_index("term").loc[term]
    out = {k: float(row[k]) for k in ("estimate", "se", "ci_low", "ci_high", "p_value")}
    if fit.model == "poisson":
        out["rate_ratio"] = float(np.exp(out["estimate"]))
        out["rate_ratio_ci_low"] = float(np.exp(out["ci_low"]))
        out["rate_ratio_ci_high"] = float(np.exp(out["ci_high"]))
    out["n_obs"] = int(fit.n_obs)
    return out


@dataclass
class ImpactResult:
    """Everything the impact section and the ``impact`` block need."""

    settings: ImpactSettings
    attrition: dict[str, Any]
    balance: pd.DataFrame
    outcomes: dict[str, dict[str, Any]]
    horizons: list[dict[str, Any]]
    event_study: pd.DataFrame
    monthly_means: pd.DataFrame
    naive: dict[str, Any]
    follow_up: dict[str, Any]
    score_overlap: pd.DataFrame
    truth_rate_ratio: float | None = None
    warnings: list[str] = field(default_factory=list)
    # Untreated monthly series of the matched controls (for the design module), not published.
    untreated: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def max_abs_smd_after(self) -> float:
        """Largest absolute standardised difference after matching."""
        return float(self.balance.smd_after.abs().max())

    def to_dict(self) -> dict[str, Any]:
        """The ``impact`` block of ``results.json``."""
        n_t = self.attrition["treated_matched"]
        n_c = self.attrition["controls_matched"]
        outs = {}
        for name, o in self.outcomes.items():
            outs[name] = {
                **_rounded(o),
                "n_treated": n_t,
                "n_controls": n_c,
                "max_abs_smd_after": round(self.max_abs_smd_after, 6),
            }
        return {
            "settings": self.settings.to_dict(),
            "attrition": self.attrition,
            "follow_up": _rounded(self.follow_up),
            "n_treated": n_t,
            "n_controls": n_c,
            "max_abs_smd_after": round(self.max_abs_smd_after, 6),
            "outcomes": outs,
            "horizons": [_rounded(h) for h in self.horizons],
            "event_study": [_rounded(r) for r in self.event_study.to_dict(orient="records")],
            "balance": [_rounded(r) for r in self.balance.to_dict(orient="records")],
            "naive": _rounded(self.naive),
            "truth_rate_ratio": self.truth_rate_ratio,
            "warnings": self.warnings,
        }


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (
            round(v, 6)
            if isinstance(v, float) and np.isfinite(v)
            else (None if isinstance(v, float) else v)
        )
        for k, v in d.items()
    }


def evaluate_impact(
    ds: Dataset,
    window: tuple[dt.date, dt.date],
    settings: ImpactSettings | None = None,
    risk_model: RiskModel | None = None,
    outcomes: dict[str, Model] | None = None,
) -> ImpactResult:
    """Run the whole matched study; see the module docstring for the design."""
    st = settings or ImpactSettings()
    outs = outcomes or OUTCOMES
    study = study_population(ds, window, st, risk_model)
    f = study.frame
    cov = covariates(f)
    res = match(f, "treated", cov, st.match)
    att_rows = res.attrition()
    attrition: dict[str, Any] = {
        **study.attrition,
        "candidate_control_rows": int((f.treated == 0).sum()),
        "candidate_control_people": int(f.person_id[f.treated == 0].nunique()),
        "treated_matched": res.n_treated_matched,
        "controls_matched": res.n_controls_matched,
        "unmatched_no_control_in_stratum": att_rows["no control in the exact stratum"],
        "unmatched_outside_caliper": att_rows["no control within the caliper"],
        "caliper_width_logit": res.caliper_width,
    }
    bal_cols = (
        ["risk_score", *cov, "n_long_term_conditions"]
        if risk_model is not None
        else [
            *cov,
            "n_long_term_conditions",
        ]
    )
    bal_cols = list(dict.fromkeys(c for c in bal_cols if c != "risk_logit"))
    balance = balance_table(f, "treated", bal_cols, res.weights)
    panel, pieces = matched_panel(study, res, st, list(outs))
    results: dict[str, dict[str, Any]] = {}
    for name, model in outs.items():
        fit = _fit(panel, pieces, name, ["impl", "post", "impl_treated", "post_treated"], model)
        o = _coef(fit, "post_treated")
        o["implementation_period"] = _coef(fit, "impl_treated")
        o["model"] = model
        o["mean_treated_before"] = float(panel[name][(panel.treated == 1) & (panel.k < 0)].mean())
        results[name] = o
    horizons = []
    main = next(iter(outs))
    for h in st.horizons:
        sub, sub_pieces = _subset(panel, pieces, (panel.k < h).to_numpy())
        sub["after"] = (sub.k >= 0).astype(float)
        sub["after_treated"] = sub.after * sub.treated
        if not (sub.after_treated > 0).any():
            continue
        fit = _fit(sub, sub_pieces, main, ["after", "after_treated"], outs[main])
        row = {"horizon_months": h, "outcome": main, **_coef(fit, "after_treated")}
        row["treated_with_full_horizon"] = int(
            panel[(panel.treated == 1) & (panel.k == h - 1)]["set"].nunique()
        )
        horizons.append(row)
    event = _event_study(panel, pieces, main, outs[main], st)
    win = panel[(panel.k >= st.event_window[0]) & (panel.k <= st.event_window[1])]
    monthly = (
        win.groupby(["k", "treated"])[main]
        .mean()
        .unstack("treated")
        .rename(columns={0.0: "matched_controls", 1.0: "treated"})
        .reset_index()
    )
    # Treated people behind each month's means (the far months rest on the early entrants).
    n_k = win[win.treated == 1].groupby("k")["set"].nunique()
    monthly["treated_people"] = n_k.reindex(monthly.k, fill_value=0).to_numpy()
    naive = _naive(panel, main, outs[main], st)
    post_k = panel[(panel.treated == 1) & (panel.k >= 0)].groupby("set").k.max() + 1
    follow = {
        "median_months": float(post_k.median()),
        "min_months": float(post_k.min()),
        "max_months": float(post_k.max()),
        "treated_person_months_after": float(post_k.sum()),
        "first_entry": _first_of(int(f.entry_month[f.treated == 1].min())).isoformat(),
        "last_entry": _first_of(int(f.entry_month[f.treated == 1].max())).isoformat(),
    }
    overlap = pd.DataFrame(
        {
            "treated": f.treated.to_numpy(),
            "score": res.score if res.score is not None else np.nan,
            "matched": res.weights > 0,
        }
    )
    truth = None
    tf = Path(ds.path) / "truth.json"
    if tf.exists():
        t = json.loads(tf.read_text("utf-8"))
        truth = t.get("effects", {}).get("emergency_admissions", {}).get("rate_ratio")
    untreated = {
        m: control_series(study, res, m, DESIGN_PRE_MONTHS, DESIGN_MAX_POST)
        for m in ("emergency_admissions", "emergency_cost")
    }
    return ImpactResult(
        st,
        attrition,
        balance,
        results,
        horizons,
        event,
        monthly,
        naive,
        follow,
        overlap,
        truth,
        untreated=untreated,
    )


def _subset(
    panel: pd.DataFrame, pieces: pd.DataFrame, mask: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the panel where ``mask`` holds, with the pieces re-pointed at them."""
    new_pos = np.cumsum(mask) - 1
    keep = mask[pieces["row"].to_numpy()]
    sub_pieces = pieces[keep].copy()
    sub_pieces["row"] = new_pos[sub_pieces["row"].to_numpy()]
    return panel[mask].reset_index(drop=True), sub_pieces.reset_index(drop=True)


def _event_study(
    panel: pd.DataFrame, pieces: pd.DataFrame, outcome: str, model: Model, settings: ImpactSettings
) -> pd.DataFrame:
    """Treated-arm contrast by months since entry, in bins of ``width`` months.

    The bin just before entry (months ``-width`` to -1) is the reference; months before and
    after the window are pooled into its end bins. Common bin terms for both arms carry the
    shared path around entry (the pre-entry rise and regression to the mean).
    """
    (lo, hi), width = settings.event_window, settings.event_bin_months
    k = panel.k.clip(lo, hi).to_numpy()
    b = np.floor_divide(k, width)  # bin -1 holds months -width..-1: the reference
    d = panel[[outcome, "unit", "month", "set", "treated", "person"]].copy()
    regs = []
    bins = sorted(set(b.tolist()) - {-1})
    tr = d.treated.to_numpy()
    for bb in bins:
        ind = (b == bb).astype(float)
        d[f"b_{bb + 1000}"] = ind
        d[f"bt_{bb + 1000}"] = ind * tr
        regs += [f"b_{bb + 1000}", f"bt_{bb + 1000}"]
    fit = _fit(d, pieces, outcome, regs, model)
    coefs = fit.coefficients.set_index("term")
    rows = []
    for bb in sorted([*bins, -1]):
        first, last = max(bb * width, lo), min(bb * width + width - 1, hi)
        if bb == -1:
            est = lo_ci = hi_ci = 0.0
        else:
            r = coefs.loc[f"bt_{bb + 1000}"]
            est, lo_ci, hi_ci = float(r.estimate), float(r.ci_low), float(r.ci_high)
        rows.append(
            {
                "from_month": first,
                "to_month": last,
                "estimate": est,
                "ci_low": lo_ci,
                "ci_high": hi_ci,
            }
        )
    out = pd.DataFrame(rows)
    if model == "poisson":
        for c in ("estimate", "ci_low", "ci_high"):
            out[f"rate_ratio_{c}" if c != "estimate" else "rate_ratio"] = np.exp(out[c])
    return out


def _naive(panel: pd.DataFrame, outcome: str, model: Model, st: ImpactSettings) -> dict[str, Any]:
    """Treated only: the 12 months before entry against months lag..lag+11 after it."""
    lag = st.effect_from_month
    t = panel[
        (panel.treated == 1)
        & (((panel.k >= -12) & (panel.k < 0)) | ((panel.k >= lag) & (panel.k < lag + 12)))
    ].copy()
    t["after"] = (t.k >= 0).astype(float)
    fit = fit_fe(
        t,
        outcome=outcome,
        regressors=["after"],
        fe=["unit"],
        model=model,
        cluster="set",
        tol=FIT_TOL,
    )
    out = _coef(fit, "after")
    out["mean_before"] = float(t[outcome][t.after == 0].mean())
    out["mean_after"] = float(t[outcome][t.after == 1].mean())
    out["description"] = (
        f"treated only: months {lag} to {lag + 11} after entry against the 12 months before"
    )
    return out
