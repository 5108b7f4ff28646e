"""The published results as typed objects: the one copy that the page's reading sections,
the workbook and ``results.json`` are made from.

:func:`~careval.report.publish.publication.publish` builds the ``results.json`` document from
the published result objects (disclosure control on real data, floats canonicalised);
:meth:`Published.read` then reads it into the dataclasses below. Every typed node is strict
(:mod:`careval.report.publish.nodes`): a key the model does not declare is an error, so a key
renamed in an analysis's ``to_dict`` fails the run's tests instead of quietly becoming
"withheld" on the page. A declared key that a run does not produce (an optional figure, a table
the data lacked) reads as ``ABSENT``, which is falsy and not a number. ``Published.to_json``
gives back the same document, keys in the same order (tested on synthetic and real runs).

Nodes that nothing reads by name (settings, whole tables, nested statistics) stay JSON: lists
of records (``Records``) or ``Json`` objects. A reading section that needs a figure from one
declares it here first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from careval.cohort.eligibility import GROUP_NAME
from careval.report.publish.model_impact import (  # re-exported: the whole model is here
    Coefficient,
    Estimate,
    FollowUp,
    ImpactBlock,
    Mortality,
)
from careval.report.publish.nodes import (
    ABSENT,
    Count,
    Json,
    Node,
    Num,
    Records,
    ResultsModelError,
    Skipped,
)

__all__ = ["ABSENT", "Count", "Json", "Node", "Num", "Published", "Records", "ResultsModelError"]
__all__ += ["Skipped", "ran"]
__all__ += ["Coefficient", "Estimate", "FollowUp", "ImpactBlock", "Mortality"]

# ---- data -------------------------------------------------------------------------------


@dataclass
class AreaPeople(Node):
    """One row of ``data.people_by_area``.

    The group columns are the run's eligibility groups: the default rule's three are declared;
    any other rule's (``under_65_with_copd``, ...) are read through ``_extra_keys``
    (:meth:`~careval.report.publish.nodes.Node.extra`).
    """

    _extra_keys: ClassVar[re.Pattern[str] | None] = GROUP_NAME

    area: str = ABSENT
    registered: Count = ABSENT
    eligible: Count = ABSENT
    under_75_with_diabetes: Count = ABSENT
    aged_75_plus_without_diabetes: Count = ABSENT
    aged_75_plus_with_diabetes: Count = ABSENT
    eligible_share: Num = ABSENT


@dataclass
class AreaYear(Node):
    """One row of ``data.activity_by_year``."""

    area: str = ABSENT
    year: str = ABSENT  # a financial year: "2011/12"
    person_years: Num = ABSENT
    emergency_admissions: Count = ABSENT
    elective_admissions: Count = ABSENT
    ae_attendances: Count = ABSENT
    outpatient_attendances: Count = ABSENT
    community_contacts: Count = ABSENT
    care_plans: Count = ABSENT
    emergency_per_1000_py: Num = ABSENT


@dataclass
class Coverage(Node):
    """One month of care-plan coverage (``data.care_plan_coverage``, ``programme.coverage``)."""

    month: str = ABSENT
    care_plans: Count = ABSENT
    cumulative: Count = ABSENT
    coverage_of_eligible: Num = ABSENT


@dataclass
class DataBlock(Node):
    """``data``: the window, the tables present and the data summary's published tables."""

    reference_date: str = ABSENT
    window: list[str] = ABSENT
    tables_present: list[str] = ABSENT
    people_by_area: list[AreaPeople] = ABSENT
    activity_by_year: list[AreaYear] = ABSENT
    attrition: Records = ABSENT
    care_plan_coverage: list[Coverage] = ABSENT
    warnings: list[str] = ABSENT
    validation_warnings: list[str] = ABSENT


# ---- risk -------------------------------------------------------------------------------


@dataclass
class Targeting(Node):
    """One row of ``risk.targeting``: who got care plans, by their risk."""

    group: str = ABSENT
    people: Count = ABSENT
    emergency_per_person_year_prior: Num = ABSENT
    mean_risk: Num = ABSENT
    share_in_top_5pct: Num = ABSENT
    share_in_top_1pct: Num = ABSENT


@dataclass
class RiskBlock(Node):
    """``risk``: temporal validation of the emergency-admission model, and targeting."""

    train_date: str = ABSENT
    validate_date: str = ABSENT
    n: Count = ABSENT
    events: Count = ABSENT
    auc: Num = ABSENT
    auc_ci_low: Num = ABSENT
    auc_ci_high: Num = ABSENT
    brier: Num = ABSENT
    calibration_intercept: Num = ABSENT
    calibration_slope: Num = ABSENT
    ppv_top_0_5pct: Num = ABSENT
    sensitivity_top_0_5pct: Num = ABSENT
    ppv_top_1pct: Num = ABSENT
    sensitivity_top_1pct: Num = ABSENT
    ppv_top_2pct: Num = ABSENT
    sensitivity_top_2pct: Num = ABSENT
    ppv_top_5pct: Num = ABSENT
    sensitivity_top_5pct: Num = ABSENT
    oracle_auc: Num = ABSENT
    auc_ratio_to_oracle: Num = ABSENT
    targeting: list[Targeting] = ABSENT
    coefficients: Records = ABSENT
    by_subgroup: Records = ABSENT
    lightgbm: Json = ABSENT
    warnings: list[str] = ABSENT


# ---- area comparison (Table 2) ----------------------------------------------------------


@dataclass
class Difference(Node):
    """One row of ``monitoring.differences``: pilot's change minus a comparator's."""

    group: str = ABSENT
    start: str = ABSENT
    comparator: str = ABSENT
    difference: Num = ABSENT
    ci_low: Num = ABSENT
    ci_high: Num = ABSENT
    p_value: Num = ABSENT
    true_difference: Num = ABSENT  # synthetic data: the difference the population was made with


@dataclass
class MonitoringBlock(Node):
    """``monitoring``: Table 2 and the pilot-minus-comparator differences (on synthetic data
    whose truth has area trends, each ``table2`` row has ``true_pct_change`` too)."""

    settings: Json = ABSENT
    table2: Records = ABSENT
    differences: list[Difference] = ABSENT
    warnings: list[str] = ABSENT


# ---- the matched study: careval.report.publish.model_impact


# ---- clinical indicators ----------------------------------------------------------------


@dataclass
class BeforeAfterRow(Node):
    """One row of ``indicators.before_after.table``."""

    indicator: str = ABSENT
    quantity: str = ABSENT
    analysis: str = ABSENT
    test: str = ABSENT
    n_before: Count = ABSENT
    n_after: Count = ABSENT
    before: Num = ABSENT
    after: Num = ABSENT
    change: Num = ABSENT
    comparison_n: Count = ABSENT
    comparison_change: Num = ABSENT
    estimate: Num = ABSENT
    ci_low: Num = ABSENT
    ci_high: Num = ABSENT
    statistic: Num = ABSENT
    p_value: Num = ABSENT
    both: Count = ABSENT
    before_only: Count = ABSENT
    after_only: Count = ABSENT
    neither: Count = ABSENT
    truth: Num = ABSENT  # synthetic only: the planted change ("change vs comparison" means)
    truth_covered: bool = ABSENT


@dataclass
class BeforeAfter(Node):
    """``indicators.before_after``."""

    definition: str = ABSENT
    cohort: Json = ABSENT
    table: list[BeforeAfterRow] = ABSENT


@dataclass
class ItsModel(Node):
    """One model of an interrupted time series (OLS or Poisson)."""

    outcome: str = ABSENT
    standard_errors: str = ABSENT
    coefficients: dict[str, Coefficient] = ABSENT
    r_squared: Num = ABSENT


@dataclass
class ItsSeries(Node):
    """One series' interrupted time series (``indicators.dementia.its.*``)."""

    months: int = ABSENT
    months_before: int = ABSENT
    months_after: int = ABSENT
    ols: ItsModel = ABSENT
    mean_rate_before: Num = ABSENT
    mean_rate_after: Num = ABSENT
    poisson: ItsModel | Skipped = ABSENT  # skipped when the Poisson fit fails
    hac_lags: int = ABSENT
    withheld: str = ABSENT  # on real data: why the fit is not published (fewer than 8 events)


@dataclass
class Its(Node):
    """``indicators.dementia.its``: the controlled interrupted time series.

    Besides the three keys declared, every key is one series' fit, keyed by the series' name
    (the programme's, e.g. ``pilot``; ``comparators``; the programme's minus the comparators',
    e.g. ``pilot_minus_comparators``): :attr:`fits`, each read strictly as an
    :class:`ItsSeries`.
    """

    programme_start: str = ABSENT
    model: str = ABSENT
    series: Json = ABSENT
    fits: dict[str, ItsSeries] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, path: str) -> Its:
        """Read the declared keys strictly, and every other key as a series' fit."""
        if not isinstance(data, dict):
            raise ResultsModelError(f"{path}: expected an object; got {type(data).__name__}")
        fixed = ("programme_start", "model", "series")
        obj = super().from_json({k: v for k, v in data.items() if k in fixed}, path)
        obj.fits = {
            k: ItsSeries.from_json(v, f"{path}.{k}") for k, v in data.items() if k not in fixed
        }
        obj._order = tuple(data)
        return obj

    def to_json(self) -> Json:
        """The object read, keys in their order (the fits among them)."""
        return {
            k: self.fits[k].to_json() if k in self.fits else getattr(self, k) for k in self._order
        }


@dataclass
class Dementia(Node):
    """``indicators.dementia``."""

    population: str = ABSENT
    monthly: Records = ABSENT
    care_plans: Records = ABSENT
    care_plans_definition: str = ABSENT
    its: Its = ABSENT


@dataclass
class IndicatorsBlock(Node):
    """``indicators``: diabetes control (Figure 3), before/after tests, dementia (Figure 4)."""

    settings: Json = ABSENT
    window: list[str] = ABSENT
    diabetes: Json = ABSENT
    before_after: BeforeAfter = ABSENT
    dementia: Dementia = ABSENT
    truth: Json = ABSENT
    warnings: list[str] = ABSENT


# ---- programme monitoring ---------------------------------------------------------------


@dataclass
class AttendanceShare(Node):
    """One role's row of ``programme.attendance_share``."""

    role: str = ABSENT
    share_of_attendees: Num = ABSENT


@dataclass
class SpcChart(Node):
    """One XmR chart (``programme.spc.*``) with its Making Data Count icons."""

    method: str = ABSENT
    improvement: str = ABSENT
    target: Num = ABSENT
    settings: Json = ABSENT
    variation: str = ABSENT
    variation_label: str = ABSENT
    assurance: str | None = ABSENT
    assurance_label: str | None = ABSENT
    n_points: int = ABSENT
    point_type_counts: Json = ABSENT
    segments: Records = ABSENT
    points: Records = ABSENT
    warnings: list[str] = ABSENT


@dataclass
class FundSummary(Node):
    """``programme.fund_summary``: the innovation fund's first year and totals."""

    first_allocation: str | None = ABSENT
    allocated_first_year: Num = ABSENT
    budget_first_year: Num = ABSENT
    share_allocated_first_year: Num = ABSENT
    allocated_total: Num = ABSENT
    spent_total: Num = ABSENT


@dataclass
class ProgrammeBlock(Node):
    """``programme``: care plans by MDG, coverage, quality, meetings, the fund, SPC charts."""

    plans_by_mdg: Records = ABSENT  # one column per MDG: read as records
    coverage: list[Coverage] = ABSENT
    quality: Records = ABSENT
    meetings: Records = ABSENT  # one column per role: read as records
    attendance_share: list[AttendanceShare] = ABSENT
    fund: Records = ABSENT
    fund_summary: FundSummary = ABSENT
    spc: dict[str, SpcChart] = ABSENT
    warnings: list[str] = ABSENT


# ---- design -----------------------------------------------------------------------------


@dataclass
class Mde(Node):
    """One follow-up length of ``design.mde``."""

    followup_months: int = ABSENT
    people_with_full_history: Count = ABSENT
    se_log_rate_ratio: Num = ABSENT
    mde_rate_ratio: Num = ABSENT
    power_at_effect: Num = ABSENT
    sim_sd_log_rate_ratio: Num = ABSENT
    sim_mde_rate_ratio: Num = ABSENT
    sim_power_at_effect: Num = ABSENT
    sim_coverage: Num = ABSENT
    sim_mean_rate_ratio: Num = ABSENT
    sim_replicates: int = ABSENT


@dataclass
class DesignSettingsBlock(Node):
    """``design.settings``: what the power analysis planned for."""

    enrolled: Count = ABSENT
    ratio: int = ABSENT
    followup_months: list[int] = ABSENT
    effect: float = ABSENT
    alpha: float = ABSENT
    power: float = ABSENT
    pre_months: int = ABSENT
    replicates: int = ABSENT
    seed: int = ABSENT


@dataclass
class DesignBlock(Node):
    """``design``: minimum detectable effects by follow-up and the follow-up needed."""

    settings: DesignSettingsBlock = ABSENT
    enrolled: Count = ABSENT
    source: str = ABSENT
    baseline_rate_per_person_year: Num = ABSENT
    baseline_people: Count = ABSENT
    mde: list[Mde] = ABSENT
    followup_needed_months: int | None = ABSENT
    costs: Records = ABSENT


# ---- surveys and qualitative ------------------------------------------------------------


@dataclass
class SurveysBlock(Node):
    """``surveys``: every survey's response rates, items and comparisons (by survey name)."""

    method: str = ABSENT
    disclosure_control: bool = ABSENT
    surveys: dict[str, Json] = ABSENT
    warnings: list[str] = ABSENT


@dataclass
class QualitativeBlock(Node):
    """``qualitative``: MDG transcripts and thematic coding."""

    disclosure_control: bool = ABSENT
    transcripts: Json = ABSENT
    coding: Json = ABSENT
    warnings: list[str] = ABSENT


# ---- real-time evaluation ---------------------------------------------------------------


@dataclass
class FollowBlock(Node):
    """``follow``: the looks of ``careval follow`` that the run carries, each against its
    boundary (``detected``: the first that crossed, or null; ``pending``: months the data would
    allow a look at that the history does not hold)."""

    settings: Json = ABSENT
    risk_model: bool = ABSENT
    looks: Records = ABSENT
    detected: Json | None = ABSENT
    pending: list[str] = ABSENT


# ---- the document -----------------------------------------------------------------------


@dataclass
class Provenance(Node):
    """``provenance``: version, seed, settings and the hash of every input file."""

    careval_version: str = ABSENT
    synthetic: bool = ABSENT
    seed: int | None = ABSENT
    settings: Json = ABSENT
    input_files: dict[str, str] = ABSENT


@dataclass
class ObjectiveRow(Node):
    """One row of Table 3 (``objectives``)."""

    objective: str = ABSENT
    evidence: str = ABSENT
    progress: str = ABSENT
    challenges: str = ABSENT
    how_sure: str = ABSENT
    focus: str = ABSENT


@dataclass
class Published(Node):
    """The whole ``results.json`` document: one block per analysis (or why it did not run).

    ``schema_version`` is the layout's version (docs/results.schema.json); ``units`` the unit
    of every figure, by its generic path (:mod:`careval.report.publish.units`). The naive
    before-after contrast is published once, in ``impact``: :attr:`naive` reads it there.
    """

    _required: ClassVar[tuple[str, ...]] = (
        "schema_version",
        "careval_version",
        "synthetic",
        "disclosure_control",
        "data",
        "provenance",
        "units",
    )

    schema_version: str = ABSENT
    careval_version: str = ABSENT
    synthetic: bool = ABSENT
    disclosure_control: bool = ABSENT
    data: DataBlock = ABSENT
    risk: RiskBlock | Skipped = ABSENT
    monitoring: MonitoringBlock | Skipped = ABSENT
    impact: ImpactBlock | Skipped = ABSENT
    indicators: IndicatorsBlock | Skipped = ABSENT
    follow: FollowBlock | Skipped = ABSENT
    programme: ProgrammeBlock | Skipped = ABSENT
    design: DesignBlock | Skipped = ABSENT
    surveys: SurveysBlock | Skipped = ABSENT
    qualitative: QualitativeBlock | Skipped = ABSENT
    provenance: Provenance = ABSENT
    units: dict[str, str] = ABSENT
    objectives: list[ObjectiveRow] = ABSENT

    @property
    def naive(self) -> Estimate | Skipped:
        """The naive before-after contrast (``impact.naive``), or the impact block's
        ``Skipped`` when the matched study did not run."""
        if isinstance(self.impact, ImpactBlock):
            return self.impact.naive
        return self.impact

    @classmethod
    def read(cls, document: Json) -> Published:
        """The typed copy of a ``results.json`` document."""
        return cls.from_json(document, "results")

    def add_objectives(self, rows: list[dict[str, str]]) -> None:
        """Table 3, judged from this copy, as its last block (``objectives``)."""
        self.objectives = [
            ObjectiveRow.from_json(r, f"results.objectives[{i}]") for i, r in enumerate(rows)
        ]
        self._order = (*[k for k in self._order if k != "objectives"], "objectives")


def ran(block: Any) -> bool:
    """Whether a block holds results (it is there and its analysis was not skipped)."""
    return isinstance(block, Node) and not isinstance(block, Skipped)
