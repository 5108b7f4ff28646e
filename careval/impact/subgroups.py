"""Subgroups of the matched study and the arms' monthly trajectories (Figure 2).

Both read the matched panel of :func:`careval.impact.outcomes.matched_panel`, whose ``set`` is
the position of the set's treated person among the distinct treated frame rows of the pairs.

* :func:`subgroups`: the primary outcome's difference-in-differences (the treated-arm contrast
  from ``effect_from_month`` on, as in the headline) refitted within the sets whose treated
  person is a woman or a man, under 75 or 75 and over, with or without diabetes. Sex and age
  band are matched exactly, so each subgroup's controls share its treated people's sex and
  (for the 75 split, which follows the bands' edges) age.
* :func:`trajectories`: each outcome's mean per person-month by month since entry, for the
  treated and for their matched controls weighted as the difference-in-differences weights
  them (each of a set's ``k`` controls weighs ``1/k``), with 95% intervals; the
  controls' interval is clustered on the control person, as controls are reused between sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from careval.impact.fe import Model
from careval.impact.matching import MatchResult
from careval.impact.outcomes import coef, fit_matched, subset

AGE_SPLIT = 75  # the age split of the subgroups (an edge of the matching's age bands)
TERMS = ["impl", "post", "impl_treated", "post_treated"]


def set_attributes(frame: pd.DataFrame, result: MatchResult) -> pd.DataFrame:
    """The treated person's row of the study frame for each matched set, in set order."""
    sets = np.unique(result.treated_rows[result.pairs.treated])
    return frame.iloc[sets].reset_index(drop=True)


def subgroup_levels(people: pd.DataFrame) -> list[tuple[str, str, np.ndarray]]:
    """(subgroup, level, mask over sets) for sex, age under 75 / 75 and over, and diabetes
    (where the frame carries ``has_diabetes``)."""
    out: list[tuple[str, str, np.ndarray]] = []
    female = people.female.to_numpy() == 1
    out += [("sex", "women", female), ("sex", "men", ~female)]
    old = people.age.to_numpy() >= AGE_SPLIT
    out += [("age", f"under {AGE_SPLIT}", ~old), ("age", f"{AGE_SPLIT} and over", old)]
    if "has_diabetes" in people:
        dm = people.has_diabetes.to_numpy() == 1
        out += [("diabetes", "with diabetes", dm), ("diabetes", "without diabetes", ~dm)]
    return out


def subgroups(
    panel: pd.DataFrame,
    people: pd.DataFrame,
    outcome: str,
    model: Model,
) -> list[dict[str, Any]]:
    """The headline contrast of ``outcome`` within each subgroup of :func:`subgroup_levels`.

    A level with no treated person, no event or a fit that refuses is left out (its row
    carries no estimate but says why), so one thin subgroup does not stop the study.
    """
    rows = []
    set_of_row = panel["set"].to_numpy()
    for group, level, in_level in subgroup_levels(people):
        n = int(in_level.sum())
        row: dict[str, Any] = {"subgroup": group, "level": level, "n_treated": n}
        mask = in_level[set_of_row]
        sub = subset(panel, mask, [outcome, *TERMS])
        if n == 0 or not sub[outcome].any() or not (sub.post_treated > 0).any():
            rows.append(row | {"note": "no treated people or no events"})
            continue
        try:
            fit = fit_matched(sub, outcome, TERMS, model)
            row |= coef(fit, "post_treated")
        except (ValueError, KeyError) as exc:  # singular or refused fit
            row["note"] = str(exc)
        rows.append(row)
    return rows


def trajectories(
    panel: pd.DataFrame,
    outcomes: list[str],
    window: tuple[int, int],
) -> pd.DataFrame:
    """Mean per person-month by month since entry, treated against matched controls.

    One row per outcome, month (``k``, months since entry, within ``window``) and group:
    ``people`` (distinct people behind the mean), ``mean``, ``ci_low``, ``ci_high`` (normal
    95%). The treated mean is over the treated people alive that month; the controls' mean
    weights each living control by their matching weight ``w`` (1 / their set's controls, as
    the difference-in-differences does), with a variance clustered on the control person.
    """
    z = float(stats.norm.ppf(0.975))
    win = panel[(panel.k >= window[0]) & (panel.k <= window[1])]
    pc = win[win.treated == 0]
    tr = win[win.treated == 1]
    parts = []
    for name in outcomes:
        g = tr.groupby("k")[name]
        t = pd.DataFrame({"people": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)})
        half = z * t.sd.fillna(0.0) / np.sqrt(t.people)
        parts.append(
            pd.DataFrame(
                {
                    "outcome": name,
                    "month": t.index.astype(int),
                    "group": "treated",
                    "people": t.people.astype(int).to_numpy(),
                    "mean": t["mean"].to_numpy(),
                    "ci_low": (t["mean"] - half).to_numpy(),
                    "ci_high": (t["mean"] + half).to_numpy(),
                }
            )
        )
        parts.append(_controls(pc, name, z))
    cols = ["outcome", "month", "group", "people", "mean", "ci_low", "ci_high"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def _controls(pc: pd.DataFrame, name: str, z: float) -> pd.DataFrame:
    """The weighted control mean by month with its person-clustered interval."""
    d = pc[["k", "person", "w"]].assign(wy=pc.w * pc[name])
    by_k = d.groupby("k")
    mean = by_k.wy.sum() / by_k.w.sum()
    d["u"] = d.w * (pc[name] - mean.reindex(d.k).to_numpy())  # weighted residual
    per_person = d.groupby(["k", "person"]).u.sum()
    var = (per_person**2).groupby(level="k").sum() / by_k.w.sum() ** 2
    people = d.groupby("k").person.nunique()
    half = z * np.sqrt(var)
    return pd.DataFrame(
        {
            "outcome": name,
            "month": mean.index.astype(int),
            "group": "control",
            "people": people.reindex(mean.index).astype(int).to_numpy(),
            "mean": mean.to_numpy(),
            "ci_low": (mean - half).to_numpy(),
            "ci_high": (mean + half).to_numpy(),
        }
    )
