"""Deaths after entry: the care-planned against their matched controls.

Each matched pair contributes a control followed from the first day of the month after the
set's entry month to the earliest of their death, the end of the data and (with
``not_yet_treated``) their own treatment month; each treated person is followed from the same
day to their death or the end of the data. Controls are weighted as the
difference-in-differences weights them: the controls of a set share the weight of one person
(1 / the set's controls).

Follow-up starts a month after entry, among those alive then, because the arms are not alike
within the entry month: a treated person is alive on their plan's day by definition, while a
control need only be alive on the month's first day. Counting the entry month would give the
treated immortal time (on the synthetic population, which plans only people who live through
the plan's month, it lowered the log rate ratio of deaths by about 0.06 with no effect
planted: docs/benchmarks.md). Both arms are therefore followed from the same landmark, and a
person (treated or control) who dies in the entry month is left out of both the deaths and the
time-to-event analyses (:mod:`careval.impact.survival`).

The rate ratio is that of a Poisson model of deaths with the log of person-years as offset
and one term for the treated arm (weighted), whose maximum-likelihood estimate has the closed
form (treated deaths / treated person-years) / (weighted control deaths / weighted control
person-years). Its standard error is the sandwich one clustered on the person, as a control
can be matched to several treated people (and a not-yet-treated control can later be treated).

A Poisson rate rather than a Cox model: the question is deaths per person-year, follow-up is
short (months to a few years) and the same for both arms by construction, the weights and the
clustering are exact in closed form, and no survival library is needed; the hazard ratio of
a Cox model would be close to this rate ratio when the death rate changes little over the
follow-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from careval.impact.intervals import log_ratio
from careval.impact.matching import MatchResult
from careval.impact.measures import month_start
from careval.impact.population import StudyPopulation

DAYS_PER_YEAR = 365.25


def follow_up_rows(study: StudyPopulation, result: MatchResult) -> pd.DataFrame:
    """One row per matched treated person and per (set, control) pair.

    ``treated`` (0/1), ``person`` (panel row, the cluster), ``weight`` (1 for the treated,
    1 / the set's controls for a control), ``deaths`` (0/1: died in the follow-up),
    ``years`` (person-years followed), ``start`` (days since the epoch of the first day of
    the month after entry: the landmark, see the module docstring), ``limit`` (the day
    follow-up ends but for death: the end of the data or a control's own treatment month, not
    counted) and ``death`` (the day of death; NEVER when alive), for the time-to-event
    analyses (:mod:`careval.impact.survival`). People who died before the landmark, or
    whose follow-up ends by it, have no row.
    """
    f, pn = study.frame, study.panel
    t_idx, c_idx = result.pairs.treated, result.pairs.control
    tr = result.treated_rows[t_idx]
    co = result.control_rows[c_idx]
    sets, set_of_pair, per_set = np.unique(tr, return_inverse=True, return_counts=True)
    entry = f.entry_month.to_numpy()
    row = f.panel_row.to_numpy()

    last = pn.first_month + pn.n_months  # the month after the data

    def arm(rows: np.ndarray, censor_month: np.ndarray) -> tuple[np.ndarray, ...]:
        start = month_start(entry[rows] + 1)  # the landmark: a month after entry
        limit = month_start(np.minimum(censor_month, last))
        death = pn.death_day[row[rows]].astype(np.int64)
        died = (death >= start) & (death < limit)
        years = np.maximum(np.minimum(death, limit) - start, 0) / DAYS_PER_YEAR
        return died.astype(float), years, start, limit, death

    t_died, t_years, t_start, t_limit, t_death = arm(sets, np.full(sets.size, last))
    c_died, c_years, c_start, c_limit, c_death = arm(co, f.censor_month.to_numpy()[co])
    rows = pd.DataFrame(
        {
            "treated": np.r_[np.ones(sets.size), np.zeros(co.size)],
            "person": np.r_[row[sets], row[co]],
            "weight": np.r_[np.ones(sets.size), 1.0 / per_set[set_of_pair]],
            "deaths": np.r_[t_died, c_died],
            "years": np.r_[t_years, c_years],
            "start": np.r_[t_start, c_start],
            "limit": np.r_[t_limit, c_limit],
            "death": np.r_[t_death, c_death],
        }
    )
    # Alive at the landmark, with time to follow after it.
    return rows[(rows.death > rows.start) & (rows.limit > rows.start)].reset_index(drop=True)


def death_rate_ratio(rows: pd.DataFrame) -> dict[str, Any]:
    """The weighted Poisson rate ratio of deaths (treated against controls), person-clustered.

    Returns ``rate_ratio``, its 95% interval, ``estimate`` and ``se`` (log scale),
    ``p_value``, ``deaths_treated`` and ``deaths_controls`` (people who died; the controls
    counted once however many sets they serve), ``person_years_treated`` and
    ``person_years_controls`` (weighted), the death rates per 1,000 person-years of both arms
    (``rate_treated``, ``rate_controls``, the controls' weighted) and ``n_treated`` /
    ``n_controls`` (people).
    """
    t = rows.treated.to_numpy() == 1
    w = np.where(t, 1.0, rows.weight.to_numpy())
    d, y = rows.deaths.to_numpy(), rows.years.to_numpy()
    d_t, y_t = d[t].sum(), y[t].sum()
    d_c, y_c = (w * d)[~t].sum(), (w * y)[~t].sum()
    out: dict[str, Any] = {
        "model": "poisson",
        "n_treated": int(t.sum()),
        "n_controls": int(np.unique(rows.person[~t]).size),
        "deaths_treated": int(d_t),
        "deaths_controls": int(rows[~t & (d > 0)].person.nunique()),
        "person_years_treated": float(y_t),
        "person_years_controls": float(y_c),
        "rate_treated": float(1000 * d_t / y_t) if y_t > 0 else float("nan"),
        "rate_controls": float(1000 * d_c / y_c) if y_c > 0 else float("nan"),
    }
    if d_t == 0 or d_c == 0:
        return out | {"note": "no deaths in one arm"}
    r_t, r_c = d_t / y_t, d_c / y_c
    # Influence of each row on the log rate ratio (the score of the arm's rate over its
    # information), summed by person: the person-clustered sandwich variance.
    infl = np.where(t, (d - r_t * y) / d_t, -w * (d - r_c * y) / d_c)
    var = float((pd.Series(infl).groupby(rows.person.to_numpy()).sum() ** 2).sum())
    est, se = float(np.log(r_t / r_c)), float(np.sqrt(var))
    return out | log_ratio(est, se, "rate_ratio")
