"""The matched study's nodes of the published results (``impact``), re-exported by
:mod:`careval.report.publish.model` (see there for how nodes read and check results.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from careval.report.publish.nodes import ABSENT, Count, Json, Node, Num, Records


@dataclass
class Coefficient(Node):
    """One estimated coefficient with its interval and test (and, for a log-link model, as a
    ratio): an interrupted time series' terms, and the base of :class:`Estimate`."""

    estimate: Num = ABSENT
    se: Num = ABSENT
    ci_low: Num = ABSENT
    ci_high: Num = ABSENT
    p_value: Num = ABSENT
    rate_ratio: Num = ABSENT
    rate_ratio_ci_low: Num = ABSENT
    rate_ratio_ci_high: Num = ABSENT


@dataclass
class Estimate(Coefficient):
    """An outcome's matched DiD (``impact.outcomes.*``) or the naive one (``impact.naive``)."""

    n_obs: Count = ABSENT
    implementation_period: Any = ABSENT
    model: str = ABSENT
    mean_treated_before: Num = ABSENT
    mean_before: Num = ABSENT
    mean_after: Num = ABSENT
    n_treated: Count = ABSENT
    n_controls: Count = ABSENT
    max_abs_smd_after: Num = ABSENT
    description: str = ABSENT
    # The outcome's checks (careval.impact.bias): the pre-trend test, the interval and p-value
    # calibrated by the negative controls, the E-value, and the diagnostics that gate it
    # (``diagnostics.for_decisions``, ``diagnostics.failed``, ``diagnostics.checks``).
    pretrend: Json = ABSENT
    calibrated: Json = ABSENT
    e_value: Json = ABSENT
    diagnostics: Json = ABSENT
    # Synthetic data only: the planted rate ratio and whether the 95% interval covers it.
    truth: Num = ABSENT
    truth_covered: bool = ABSENT


@dataclass
class FollowUp(Node):
    """``impact.follow_up``: how long the care-planned were followed."""

    median_months: Num = ABSENT
    min_months: Num = ABSENT
    max_months: Num = ABSENT
    treated_person_months_after: Num = ABSENT
    first_entry: str = ABSENT
    last_entry: str = ABSENT


@dataclass
class Mortality(Coefficient):
    """``impact.mortality``: deaths after entry against matched controls (weighted Poisson
    rate ratio per person-year, person-clustered; rates per 1,000 person-years)."""

    model: str = ABSENT
    n_treated: Count = ABSENT
    n_controls: Count = ABSENT
    deaths_treated: Count = ABSENT
    deaths_controls: Count = ABSENT
    person_years_treated: Num = ABSENT
    person_years_controls: Num = ABSENT
    rate_treated: Num = ABSENT
    rate_controls: Num = ABSENT
    note: str = ABSENT
    truth: Num = ABSENT  # synthetic only: the planted rate ratio (1.0) and whether it is covered
    truth_covered: bool = ABSENT


@dataclass
class ImpactBlock(Node):
    """``impact``: the matched-control study."""

    settings: Json = ABSENT
    attrition: Json = ABSENT
    follow_up: FollowUp = ABSENT
    n_treated: Count = ABSENT
    n_controls: Count = ABSENT
    max_abs_smd_after: Num = ABSENT
    outcomes: dict[str, Estimate] = ABSENT
    skipped_outcomes: dict[str, str] = ABSENT  # outcome -> why it was not estimated
    horizons: Records = ABSENT
    event_study: Records = ABSENT
    balance: Records = ABSENT
    naive: Estimate = ABSENT
    truth_rate_ratio: Num = ABSENT
    truth: dict[str, Num] = ABSENT  # synthetic only: outcome (or "deaths") -> planted ratio
    # The primary outcome's DiD within subgroups: subgroup, level, n_treated, the estimate.
    subgroups: Records = ABSENT
    # Figure 2: outcome, month (since entry), group, people, mean, ci_low, ci_high.
    trajectories: Records = ABSENT
    mortality: Mortality = ABSENT
    # Time to event (careval.impact.survival): months, the curves per arm of death and of the
    # first emergency admission (with death competing), their Cox hazard ratios, and the
    # person-months the monthly panel loses to death.
    survival: Json = ABSENT
    # Residual bias: the negative-control and placebo estimates (name, label, kind, the
    # estimate, truth), those not estimated, the empirical null fitted to them
    # (fitted, n_controls, mean, sd, ease), the design's diagnostics (max_abs_smd, equipoise,
    # median_follow_up) and the primary outcome under other designs.
    negative_controls: Records = ABSENT
    skipped_negative_controls: dict[str, str] = ABSENT
    empirical_null: Json = ABSENT
    study_diagnostics: Json = ABSENT
    sensitivity: Records = ABSENT
    warnings: list[str] = ABSENT
