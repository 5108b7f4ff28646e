"""The matched-control impact study: did care planning (or another intervention) change
hospital use?

Design (the seed's, made rigorous):

1. **Treated**: everyone with the intervention (``settings.intervention``, by default a care
   plan), entering at the month of their first qualifying event (rolling entry), alive and
   registered at a practice of the programme's areas (``programme_areas``) at the start of
   that month.
2. **Potential controls**: people in the comparator areas (``control_areas``, names from the
   data's ``practices.area``; default: outside North West London) who are eligible
   (``settings.eligibility``), alive and registered at the start of the same month, and never
   treated. With ``not_yet_treated`` the pool also takes eligible people of the programme's
   areas not yet treated at that month; a control who is treated later stops counting as a
   control from their own treatment's month (their months from then on leave the set's
   control mean).
   Everyone's history is taken at that month start, so a treated person picked after a recent
   spike in admissions is compared with controls who had the same spike (regression to the
   mean is mirrored).
3. **Matching**: exact on entry month, sex and age band, then nearest neighbour on the logit of
   a propensity score (logistic, on the risk score, age, prior use, conditions and
   deprivation), with a caliper, up to five controls each, with replacement by default (the
   comparator pool is not much larger than the treated group).
4. **Outcomes**: a monthly panel around entry for each matched set, with the treated person as
   one unit and each of their ``k`` controls as another, weighted ``1/k``, each followed while
   alive and registered (:func:`careval.impact.outcomes.matched_panel`). The
   difference-in-differences has unit and calendar-month fixed effects, common terms for the
   implementation months (0 to ``effect_from_month - 1``) and the months after, and the
   treated-arm contrasts of both; Poisson for counts (rate ratios), linear for costs; standard
   errors two-way clustered on the matched set and the person.
5. **Naive** before-after change in the treated alone, shown beside it.

The steps are modules: :mod:`careval.impact.population` (rolling entry and the candidate
controls), :mod:`careval.impact.matching` and :mod:`careval.impact.balance`,
:mod:`careval.impact.outcomes` (the matched panel and its fixed-effects models); this module runs
them in order (:func:`evaluate_impact`) and holds the result.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from careval.data.access import Dataset
from careval.data.truth import known_effects
from careval.disclosure import Note
from careval.errors import ConfigError
from careval.impact import bias
from careval.impact.balance import balance_table
from careval.impact.diagnostics import equipoise, failure_text
from careval.impact.fe import LOG_LINK
from careval.impact.matching import match
from careval.impact.measures import unavailable
from careval.impact.mortality import death_rate_ratio, follow_up_rows
from careval.impact.outcome_settings import BUILTIN_OUTCOMES
from careval.impact.outcomes import (
    control_series,
    event_study,
    fit_outcome,
    horizons,
    matched_panel,
    monthly_means,
    naive,
)
from careval.impact.parallel import each
from careval.impact.population import covariates, first_of, study_population
from careval.impact.sensitivity import sensitivity
from careval.impact.settings import ImpactSettings, OutcomeSettings
from careval.impact.subgroups import set_attributes, subgroups, trajectories
from careval.impact.survival import survival_analysis
from careval.risk.model import RiskModel

DESIGN_PRE_MONTHS = 36  # untreated history kept for the design: as many months before entry
# as its pre_months may ask for (3-36, careval.design.power.DesignSettings)
DESIGN_MAX_POST = 36  # and up to 36 after
# Outcome -> its key in a synthetic dataset's truth.json effects, where the planted rate ratio
# is that outcome's (A&E attendances': the total effect of the emergency admissions' ratio on
# those admitted through A&E and none on those not admitted, careval.synthetic.events.ae_truth).
TRUTH_KEYS = {
    "emergency_admissions": "emergency_admissions",
    "ae_attendances": "ae_attendances",
    "elective_admissions": "elective_admissions",
    "outpatient_attendances": "outpatient_appointments",
    "community_contacts": "community_contacts",
    "mental_health_contacts": "mental_health_contacts",
    "social_care_packages": "social_care_packages",
    "care_home_days": "care_home_days",
}
DEATHS = "deaths"  # the mortality row's key in ``truth``: the generator plants no effect on death


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
    # The primary outcome's contrast within subgroups of the treated (sex, age, diabetes).
    subgroups: list[dict[str, Any]] = field(default_factory=list)
    # Figure 2 for every outcome: mean per person-month by month since entry and arm.
    trajectories: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Deaths after entry: the rate ratio of deaths per person-year (careval.impact.mortality).
    mortality: dict[str, Any] = field(default_factory=dict)
    # Time to event (careval.impact.survival): Kaplan-Meier of death and of the first emergency
    # admission, their Cox hazard ratios, the cumulative incidence of admission with death
    # competing, and the person-months the monthly panel loses to death; {} without spells.
    survival: dict[str, Any] = field(default_factory=dict)
    # Synthetic data only: each outcome's planted rate ratio (TRUTH_KEYS, and deaths: 1.0).
    truth: dict[str, float] = field(default_factory=dict)
    # Outcomes of the settings not estimated, with the reason (their table absent or empty, no
    # events among the matched people, or a fit that refused), in the settings' order.
    skipped_outcomes: dict[str, str] = field(default_factory=dict)
    # Negative-control and placebo estimates (careval.impact.bias), those the data could not
    # give, the empirical null fitted to them, the design's own diagnostics (largest SMD,
    # equipoise, median follow-up) and the primary outcome under other designs.
    negative_controls: list[dict[str, Any]] = field(default_factory=list)
    skipped_negative_controls: dict[str, str] = field(default_factory=dict)
    empirical_null: dict[str, Any] = field(default_factory=dict)
    study_diagnostics: dict[str, float] = field(default_factory=dict)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    # Untreated monthly series of the matched controls (for the design module), not published.
    untreated: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def max_abs_smd_after(self) -> float:
        """Largest absolute standardised difference after matching."""
        return float(self.balance.smd_after.abs().max())

    def tidy(self) -> pd.DataFrame:
        """One row per outcome: the effect from ``effect_from_month`` on (the treated-arm
        contrast), with rate ratios for the Poisson outcomes (NaN for the linear ones)."""
        cols = [
            "outcome",
            "model",
            "estimate",
            "se",
            "ci_low",
            "ci_high",
            "p_value",
            "rate_ratio",
            "rate_ratio_ci_low",
            "rate_ratio_ci_high",
            "n_obs",
            "mean_treated_before",
        ]
        rows = [
            {c: o.get(c, np.nan) for c in cols if c != "outcome"} | {"outcome": name}
            for name, o in self.outcomes.items()
        ]
        return pd.DataFrame(rows, columns=cols)

    def summary(self) -> str:
        """Who was matched and the main effect, in a few lines."""
        a = {k: f"{v:,}" if isinstance(v, int) else str(v) for k, v in self.attrition.items()}
        lines = [
            f"matched {a['treated_matched']} of {a['treated_alive_and_registered_at_entry']} "
            f"{self.settings.intervention.treated} people to {a['controls_matched']} controls; "
            "max |SMD| after "
            f"{self.max_abs_smd_after:.3f}"
        ]
        for name, o in self.outcomes.items():
            if o["model"] in LOG_LINK:
                lines.append(
                    f"{name}: rate ratio {o['rate_ratio']:.3f} (95% CI "
                    f"{o['rate_ratio_ci_low']:.3f} to {o['rate_ratio_ci_high']:.3f})"
                )
            else:
                lines.append(
                    f"{name}: difference {o['estimate']:.4g} (95% CI {o['ci_low']:.4g} to "
                    f"{o['ci_high']:.4g})"
                )
        for name, why in self.skipped_outcomes.items():
            lines.append(f"{name}: not estimated ({why})")
        if "rate_ratio" in self.naive:
            lines.append(f"naive before-after rate ratio {self.naive['rate_ratio']:.3f}")
        return "\n".join(lines)

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
                **_beside_truth(o, self.truth.get(name)),
            }
        return {
            "settings": self.settings.to_dict(),
            "attrition": self.attrition,
            "follow_up": _rounded(self.follow_up),
            "n_treated": n_t,
            "n_controls": n_c,
            "max_abs_smd_after": round(self.max_abs_smd_after, 6),
            "outcomes": outs,
            "skipped_outcomes": dict(self.skipped_outcomes),
            "horizons": [_rounded(h) for h in self.horizons],
            "event_study": [_rounded(r) for r in self.event_study.to_dict(orient="records")],
            "balance": [_rounded(r) for r in self.balance.to_dict(orient="records")],
            "naive": _rounded(self.naive),
            "truth_rate_ratio": self.truth_rate_ratio,
            "truth": dict(self.truth),
            "subgroups": [_rounded(r) for r in self.subgroups],
            "trajectories": [_rounded(r) for r in self.trajectories.to_dict(orient="records")],
            "mortality": {
                **_rounded(self.mortality),
                **_beside_truth(self.mortality, self.truth.get(DEATHS)),
            },
            "survival": _rounded(self.survival),
            "negative_controls": [_rounded(r) for r in self.negative_controls],
            "skipped_negative_controls": dict(self.skipped_negative_controls),
            "empirical_null": _rounded(self.empirical_null),
            "study_diagnostics": _rounded(self.study_diagnostics),
            "sensitivity": [_rounded(r) for r in self.sensitivity],
            "warnings": self.warnings,
        }


def _beside_truth(o: dict[str, Any], planted: float | None) -> dict[str, Any]:
    """On synthetic data, the planted rate ratio of an estimate and whether its 95% interval
    covers it (``truth``, ``truth_covered``); nothing when there is no truth or no interval."""
    lo, hi = o.get("rate_ratio_ci_low"), o.get("rate_ratio_ci_high")
    if planted is None or lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return {}
    return {"truth": planted, "truth_covered": bool(lo <= planted <= hi)}


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with floats to 6 decimals and non-finite ones as None, nested dicts and lists
    too."""
    return {k: _round(v) for k, v in d.items()}


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6) if np.isfinite(v) else None
    if isinstance(v, dict):
        return _rounded(v)
    if isinstance(v, list | tuple):
        return [_round(x) for x in v]
    return v


def evaluate_impact(
    ds: Dataset,
    window: tuple[dt.date, dt.date],
    settings: ImpactSettings | None = None,
    risk_model: RiskModel | None = None,
) -> ImpactResult:
    """Run the whole matched study; see the module docstring for the design.

    Each outcome of ``settings.outcomes`` that the data cannot give (its table absent or
    empty, no events among the matched people, a fit that refuses) is skipped alone, with the
    reason in :attr:`ImpactResult.skipped_outcomes`. If that outcome is the primary one (the
    first), the study raises :class:`~careval.errors.ConfigError` instead.
    """
    st = settings or ImpactSettings()
    skipped = {o.name: why for o in st.outcomes if (why := unavailable(ds, o))}
    _primary_fits(st.primary, skipped)
    outs = [o for o in st.outcomes if o.name not in skipped]
    by_name = {o.name: o for o in outs}
    controls = [
        o for o in st.negative_controls if by_name.get(o.name) != o and not unavailable(ds, o)
    ]
    study = study_population(ds, window, st, risk_model, [*outs, *controls])
    f = study.frame
    cov = covariates(f)
    named = [*st.match.exact, *([st.match.score] if st.match.score else [])]
    unknown = [c for c in named if c not in f.columns]
    if unknown:
        raise ConfigError(
            f"matching names {', '.join(map(repr, unknown))}: not a column of the study "
            "population (exact variables such as entry_month, female, age_band; scores such as "
            "risk_score, risk_logit)"
        )
    res = match(f, "treated", cov, st.match)
    if res.n_treated_matched == 0:
        raise ConfigError(
            Note(
                "{treated} treated, {controls} eligible candidate controls, none in a treated "
                "person's exact stratum and caliper",
                treated=int(f.treated.sum()),
                controls=int(f.person_id[f.treated == 0].nunique()),
            ).prefixed(f"no {st.intervention.treated} person found a control: ")
        )
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
    panel = matched_panel(study, res, st, [o.name for o in (*outs, *controls)])
    main, model = st.primary.name, st.primary.model
    people = set_attributes(f, res)
    admission = by_name.get("emergency_admissions", BUILTIN_OUTCOMES["emergency_admissions"])
    # Everything the panel and the match give, side by side (careval.impact.parallel): each
    # outcome's fit, the primary outcome's horizons, event study, subgroups and other views,
    # the other designs; the longest first.
    jobs: dict[str, Callable[[], Any]] = {
        "event": lambda: event_study(panel, main, model, st),
        "sensitivity": lambda: sensitivity(study, cov, st, res.score) if st.sensitivity else [],
        **{f"outcome {o.name}": functools.partial(_fit, panel, o) for o in outs},
        "horizons": lambda: horizons(panel, main, model, st.horizons),
        "subgroups": lambda: subgroups(panel, people, main, model),
        "trajectories": lambda: trajectories(panel, [o.name for o in outs], st.event_window),
        "survival": lambda: (
            survival_analysis(ds, study, res, admission) if not unavailable(ds, admission) else {}
        ),
        "deaths": lambda: death_rate_ratio(follow_up_rows(study, res)),
        "naive": lambda: naive(panel, main, model, st),
        "monthly": lambda: monthly_means(panel, main, st.event_window),
    }
    done = dict(zip(jobs, each(_attempt, list(jobs.values())), strict=True))

    def got(name: str) -> Any:
        """A job's result, or its error raised (in the order the steps had one by one)."""
        value, error = done[name]
        if error is not None:
            raise error
        return value

    results: dict[str, dict[str, Any]] = {}
    for outcome in outs:
        fitted, why = got(f"outcome {outcome.name}")
        if fitted is not None:
            results[outcome.name] = fitted
        else:
            skipped[outcome.name] = why
            _primary_fits(st.primary, skipped)
    by_horizon, event, monthly, before_after = (
        got(k) for k in ("horizons", "event", "monthly", "naive")
    )
    groups, paths, deaths, times = (
        got(k) for k in ("subgroups", "trajectories", "deaths", "survival")
    )
    paths = paths[paths.outcome.isin(list(results))].reset_index(drop=True)
    post_k = panel[(panel.treated == 1) & (panel.k >= 0)].groupby("set").k.max() + 1
    follow = {
        "median_months": float(post_k.median()),
        "min_months": float(post_k.min()),
        "max_months": float(post_k.max()),
        "treated_person_months_after": float(post_k.sum()),
        "first_entry": first_of(int(f.entry_month[f.treated == 1].min())).isoformat(),
        "last_entry": first_of(int(f.entry_month[f.treated == 1].max())).isoformat(),
    }
    overlap = pd.DataFrame(
        {
            "treated": f.treated.to_numpy(),
            "score": res.score if res.score is not None else np.nan,
            "matched": res.weights > 0,
        }
    )
    effects = known_effects(ds)
    emergency = effects.get("emergency_admissions")
    truth = emergency.get("rate_ratio") if isinstance(emergency, dict) else None
    planted = _planted(effects, list(results))
    nc_rows, nc_skipped = bias.negative_controls(panel, st, results, {o.name for o in controls})
    null_info = bias.empirical_null(nc_rows)
    for r in nc_rows:  # every one's truth is no effect, by design (known on synthetic data)
        r["truth"] = 1.0 if (r["kind"] == "placebo" or effects) else None
    study_level: dict[str, float] = {
        "max_abs_smd": float(balance.smd_after.abs().max()),
        "equipoise": equipoise(res.score, f.treated.to_numpy())
        if res.score is not None and st.match.score is None
        else float("nan"),
        "median_follow_up": float(post_k.median()),
    }
    bias.assess(panel, st, results, null_info, study_level)
    failing = [n for n, r in results.items() if not r["diagnostics"]["for_decisions"]]
    warnings = [
        f"{n}: not for decisions: {failure_text(results[n]['diagnostics'])}" for n in failing
    ]
    sens = got("sensitivity")
    untreated = {
        m: control_series(study, res, m, DESIGN_PRE_MONTHS, DESIGN_MAX_POST)
        for m in ("emergency_admissions", "emergency_cost")
    }
    return ImpactResult(
        st,
        attrition,
        balance,
        results,
        by_horizon,
        event,
        monthly,
        before_after,
        follow,
        overlap,
        truth,
        skipped_outcomes={o.name: skipped[o.name] for o in st.outcomes if o.name in skipped},
        untreated=untreated,
        subgroups=groups,
        trajectories=paths,
        mortality=deaths,
        survival=times,
        truth=planted,
        warnings=warnings,
        negative_controls=nc_rows,
        skipped_negative_controls=nc_skipped,
        empirical_null=bias.public(null_info),
        study_diagnostics=study_level,
        sensitivity=sens,
    )


def _attempt(job: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """``job()``, and the exception it raised (None if none)."""
    try:
        return job(), None
    except Exception as exc:  # raised again where the result is used
        return None, exc


def _fit(panel: pd.DataFrame, o: OutcomeSettings) -> tuple[dict[str, Any] | None, str]:
    """An outcome's difference-in-differences, or None and why it could not be fitted."""
    try:
        return fit_outcome(panel, o), ""
    except ValueError as exc:  # a CarevalError, or a singular fit
        return None, str(exc)


def _planted(effects: dict[str, Any], outcomes: list[str]) -> dict[str, float]:
    """The planted rate ratio of each estimated outcome with one (:data:`TRUTH_KEYS`), and of
    deaths (1.0: careval's generator draws deaths without regard to plans), when the dataset
    carries its generator's truth; {} otherwise."""
    if not effects:
        return {}
    out = {}
    for name in outcomes:
        e = effects.get(TRUTH_KEYS.get(name, ""))
        if isinstance(e, dict) and isinstance(e.get("rate_ratio"), int | float):
            out[name] = float(e["rate_ratio"])
    out[DEATHS] = 1.0
    return out


def _primary_fits(primary: OutcomeSettings, skipped: dict[str, str]) -> None:
    """Raise if the primary outcome is among the skipped: then the study has no result."""
    if primary.name in skipped:
        raise ConfigError(f"the primary outcome {primary.name}: {skipped[primary.name]}")
