"""Real-time evaluation: the matched study's primary estimate month by month, against
group-sequential boundaries.

A **look** at month ``m`` runs the matched study on the data known by the end of ``m``
(:class:`careval.data.cut.CutDataset`; the study window ends at the cut, so people treated up
to ``min_follow_up`` months before it enter, each followed to the cut): the primary outcome's
matched difference-in-differences only (no other outcomes, negative controls, sensitivity
analyses, subgroups or event study). The risk model is fitted once, as ``careval run`` fits
it (at the spec's ``risk.train_date``), on the data known when its 12-month outcome ends
(:func:`risk_model`); looks from then on match with its score among the covariates, as the
run does, and earlier looks without it.

**Information and the boundary.** Each look's information is ``1 / se**2`` of the estimate
(the log rate ratio of a count outcome). The planned maximum is the information a single final
analysis needs to detect the design's effect (the spec's ``design.effect``, ``design.power``,
``design.alpha``): ``I_max = ((z_{1 - alpha/sides} + z_power) / log(1 + effect))**2``
(:func:`careval.impact.sequential.planned_information`), unless it is given. The looks'
information fractions ``I_k / I_max`` feed Lan-DeMets spending
(:mod:`careval.impact.sequential`); the look that reaches ``I_max`` is the final one. A look
whose information is not above the largest so far spends nothing (no boundary: the clustered
standard error can grow when a new month's people add noise). The boundaries treat successive
estimates as a Brownian motion in information; the looks re-match as new people enter, so this
holds approximately (``bench/bench_follow.py`` measures the false-alarm rate it gives).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from careval.cohort.summary import data_window
from careval.data.access import Dataset
from careval.data.cut import CutDataset
from careval.errors import ConfigError
from careval.features.index_date import FeatureSettings
from careval.impact.fe import LOG_LINK
from careval.impact.matching import match
from careval.impact.measures import unavailable
from careval.impact.outcomes import fit_outcome, matched_panel
from careval.impact.panel import month_of
from careval.impact.population import covariates, first_events, first_of, study_population
from careval.impact.sequential import SPENDING, boundaries, planned_information
from careval.impact.settings import ImpactSettings
from careval.risk.model import OUTCOME, RiskModel, design_matrix, follow_up_end, risk_frame
from careval.settings import Settings


@dataclass(frozen=True)
class FollowSettings(Settings):
    """When to look and what the boundary spends."""

    alpha: float = 0.05
    sides: int = 2  # 2: symmetric two-sided; 1: one-sided, for benefit (a fall)
    spending: Literal["obrien_fleming", "pocock"] = "obrien_fleming"
    effect: float = -0.10  # the design's effect (rate ratio - 1) that plans I_max
    power: float = 0.80
    max_information: float | None = None  # I_max itself, instead of planning it
    first_look: dt.date | None = None  # the first look's month (default: min_treated below)
    min_treated: int = 100  # first look: once this many treated have follow_months
    follow_months: int = 6
    every: int = 1  # months between looks

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.alpha < 0.5:
            problems.append(f"alpha must be between 0 and 0.5; got {self.alpha}")
        if self.sides not in (1, 2):
            problems.append(f"sides must be 1 or 2; got {self.sides}")
        if self.spending not in SPENDING:
            problems.append(f"spending must be one of {', '.join(SPENDING)}; got {self.spending}")
        if not -0.9 <= self.effect <= 1.0 or self.effect == 0:
            problems.append(f"effect must be a non-zero rate ratio - 1; got {self.effect}")
        if not 0.5 <= self.power < 1:
            problems.append(f"power must be from 0.5 to below 1; got {self.power}")
        if self.max_information is not None and not self.max_information > 0:
            problems.append(f"max_information must be positive; got {self.max_information}")
        if self.min_treated < 1 or self.follow_months < 0 or not 1 <= self.every <= 12:
            problems.append(
                "min_treated must be at least 1, follow_months at least 0 and every from 1 to "
                f"12; got {self.min_treated}, {self.follow_months}, {self.every}"
            )
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def planned_information(self) -> float:
        """I_max: given, or planned from the design's effect, alpha and power."""
        if self.max_information is not None:
            return self.max_information
        return planned_information(self.effect, self.alpha, self.power, self.sides)


def month_end(month: int) -> dt.date:
    """The last day of month number ``month``."""
    return first_of(month + 1) - dt.timedelta(days=1)


def look_months(
    ds: Dataset, impact: ImpactSettings, fs: FollowSettings, end: dt.date | None = None
) -> list[int]:
    """The months a look falls on: from the first look to the last complete month of data.

    The last complete month is the one before the month of the day after the data's last
    date (the extract date in ``dataset.json`` when given, else the last admission), and no
    later than the month of ``end`` (the spec's ``study.end``) when given. The first look is
    ``fs.first_look`` or the first month by whose end ``fs.min_treated`` people have had their
    first intervention event at least ``fs.follow_months`` months before (the dates of the
    events, known by then: no later data are used). Empty when no month qualifies.
    """
    lo, hi = data_window(ds)
    extract = ds.manifest.get("extract_date")
    last_day = dt.date.fromisoformat(extract) - dt.timedelta(days=1) if extract else hi
    last = month_of(last_day + dt.timedelta(days=1)) - 1
    if end is not None:
        last = min(last, month_of(end + dt.timedelta(days=1)) - 1)
    if fs.first_look is not None:
        first = month_of(fs.first_look)
    else:
        ev = first_events(ds, impact.intervention)
        entry = np.sort(np.array([month_of(d) for d in pd.to_datetime(ev.created).dt.date]))
        if entry.size < fs.min_treated:
            return []
        first = int(entry[fs.min_treated - 1]) + fs.follow_months
    first = max(first, month_of(lo) + 12 + impact.min_follow_up)
    return list(range(first, last + 1, fs.every))


@dataclass(frozen=True)
class KnownRiskModel:
    """The study's risk model and the last day of the data it was trained on."""

    model: RiskModel
    known: dt.date


def risk_model(path: Path, train_date: dt.date, impact: ImpactSettings) -> KnownRiskModel | None:
    """The matched study's risk model as ``careval run`` fits it (logistic, at
    ``train_date``, the 12-month outcome), trained on the data known when that outcome's year
    ends; None when the data do not reach that day or the model cannot be fitted. A look whose
    cut is on or after that day uses it; earlier looks match without it."""
    known = follow_up_end(train_date) - dt.timedelta(days=1)
    with Dataset(path) as ds:
        if data_window(ds)[1] < known:
            return None
    with CutDataset(path, cut=known) as ds:
        train = risk_frame(ds, train_date, FeatureSettings(eligibility=impact.eligibility))
    y = train[OUTCOME].to_numpy()
    if len(train) < 2 or y.min() == y.max():
        return None
    return KnownRiskModel(RiskModel().fit(design_matrix(train), y), known)


def estimate_at(
    path: Path,
    month: int,
    impact: ImpactSettings,
    start: dt.date,
    risk: KnownRiskModel | None = None,
) -> dict[str, Any]:
    """The primary outcome's matched estimate on the data known by the end of ``month``
    (with ``risk``'s model when its training data were known by then).

    Raises
    ------
    ConfigError
        When the study cannot run on the data of that cut (no treated in the window, none
        matched, the outcome's table empty, a fit that refuses).
    """
    st = dataclasses.replace(
        impact, outcomes=(impact.primary,), negative_controls=(), sensitivity=False
    )
    cut = month_end(month)
    model = risk.model if risk is not None and risk.known <= cut else None
    with CutDataset(path, cut=cut) as ds:
        why = unavailable(ds, st.primary)
        if why:
            raise ConfigError(f"the primary outcome {st.primary.name}: {why}")
        study = study_population(ds, (start, cut), st, model, [st.primary])
    f = study.frame
    res = match(f, "treated", covariates(f), st.match)
    if res.n_treated_matched == 0:
        raise ConfigError("no treated person found a control")
    panel = matched_panel(study, res, st, [st.primary.name])
    fit = fit_outcome(panel, st.primary)
    post = panel[(panel.treated == 1) & (panel.k >= 0)].groupby("set").k.max() + 1
    return {
        "month": first_of(month).isoformat()[:7],
        "cut": cut.isoformat(),
        "outcome": st.primary.name,
        "model": fit["model"],
        "estimate": fit["estimate"],
        "se": fit["se"],
        "ci_low": fit["ci_low"],
        "ci_high": fit["ci_high"],
        "rate_ratio": fit.get("rate_ratio"),
        "rate_ratio_ci_low": fit.get("rate_ratio_ci_low"),
        "rate_ratio_ci_high": fit.get("rate_ratio_ci_high"),
        "n_treated": int(res.n_treated_matched),
        "n_controls": int(res.n_controls_matched),
        "median_follow_up_months": float(post.median()),
        "risk_model": model is not None,
    }


def assess(looks: list[dict[str, Any]], fs: FollowSettings) -> list[dict[str, Any]]:
    """Each look with its information fraction, boundary and whether it crossed.

    ``looks`` are the history's rows in month order (those without an estimate pass through,
    with no boundary). Adds ``information``, ``fraction``, ``z``, ``critical`` (None where the
    look spends nothing), ``bound_low`` / ``bound_high`` (the boundary on the estimate's
    scale: the rate ratio for a count outcome), ``spent`` and ``crossed``; and ``final`` on
    the look that reaches the planned information.
    """
    i_max = fs.planned_information
    out = [dict(r) for r in looks]
    spending: list[int] = []  # indices of the looks that spend
    best = 0.0
    for i, r in enumerate(out):
        se = r.get("se")
        if se is None or not np.isfinite(se) or se <= 0:
            continue
        info = 1.0 / se**2
        r["information"] = info
        r["fraction"] = info / i_max
        r["z"] = r["estimate"] / se
        r.update(critical=None, bound_low=None, bound_high=None, crossed=False, final=False)
        if info > best and (not spending or out[spending[-1]]["fraction"] < 1):
            spending.append(i)
            best = info
    if not spending:
        return out
    b = boundaries([out[i]["fraction"] for i in spending], fs.alpha, fs.spending, fs.sides)
    for j, i in enumerate(spending):
        r, c = out[i], float(b.critical[j])
        log = r["model"] in LOG_LINK
        r["critical"] = c if np.isfinite(c) else None
        r["spent"] = float(b.spent[j])
        lo, hi = -c * r["se"], c * r["se"]
        r["bound_low"] = float(np.exp(lo) if log else lo) if np.isfinite(c) else None
        r["bound_high"] = (
            (float(np.exp(hi) if log else hi) if np.isfinite(c) else None)
            if fs.sides == 2
            else None
        )
        z = r["z"]
        r["crossed"] = bool(np.isfinite(c) and (abs(z) >= c if fs.sides == 2 else -z >= c))
        r["final"] = bool(b.fractions[j] >= 1)
    return out


def detection(assessed: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first look that crossed its boundary (month, estimate, direction), or None."""
    for r in assessed:
        if r.get("crossed"):
            return {
                "month": r["month"],
                "direction": "benefit" if r["z"] < 0 else "harm",
                "estimate": r["estimate"],
                "rate_ratio": r.get("rate_ratio"),
            }
    return None
