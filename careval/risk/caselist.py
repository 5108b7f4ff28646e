"""Case finding: score everyone registered on a date and list the highest-risk people to plan.

The lists are clinical working lists for the programme's practices and multidisciplinary groups
(MDGs): they name people (``person_id``) so that their teams can act, and are never published.
Only :func:`score_summary` is meant to leave the programme, published with disclosure control
on real data (:func:`careval.report.publish.caselist.publish_score_summary`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import pandas as pd

from careval.data.access import Dataset
from careval.features.index_date import FeatureSettings, features_at
from careval.risk.model import BASELINE, RiskModel, design_matrix

DRIVERS = 3  # drivers shown per listed person
SCORE_COLUMNS = ("person_id", "practice_code", "mdg", "eligible", "on_care_plan", "risk")


def care_planned_before(ds: Dataset, date: dt.date) -> set[str]:
    """People with a care plan created before ``date`` (none when there is no care_plans table)."""
    if not ds.has("care_plans"):
        return set()
    cp = ds.table("care_plans")
    rows = cp.filter(cp.created_date < ibis.date(date)).select("person_id").distinct().to_pandas()
    return set(rows.person_id)


def score_people(
    ds: Dataset, model: RiskModel, date: dt.date, settings: FeatureSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and risk of everyone registered and alive on ``date``.

    Parameters
    ----------
    ds
        The dataset.
    model
        A fitted model whose inputs are those of ``settings`` (see
        :func:`careval.risk.model.load_model`).
    date
        The scoring date: only events before it count.
    settings
        The model's feature definitions.

    Returns
    -------
    tuple of pandas.DataFrame
        The people (sorted by ``person_id``) with their features, ``on_care_plan`` (a plan
        created before ``date``) and ``risk``; and their design matrix (same index).
    """
    frame = features_at(ds, date, settings).to_pandas()
    frame = frame.sort_values("person_id", kind="stable").reset_index(drop=True)
    frame["eligible"] = frame["eligible"].astype(bool)
    frame["on_care_plan"] = frame.person_id.isin(care_planned_before(ds, date))
    x = model.inputs(design_matrix(frame.drop(columns=["on_care_plan"])))
    frame["risk"] = model.predict_proba(x)[:, 1] if len(frame) else np.array([], dtype=float)
    return frame, x


def case_list(
    scored: pd.DataFrame, x: pd.DataFrame, model: RiskModel, by: str, top: int
) -> pd.DataFrame:
    """The ``top`` highest-risk eligible people without a care plan, per value of ``by``.

    Parameters
    ----------
    scored, x
        From :func:`score_people`.
    model
        The model that scored them (for the drivers).
    by
        ``"practice_code"`` or ``"mdg"``.
    top
        People listed per practice or MDG at most.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``by`` then ``rank`` (1 = highest risk; ties by ``person_id``), with
        ``person_id``, ``practice_code``, ``mdg``, ``age``, ``female``, ``risk`` and, for
        ``k`` = 1 to :data:`DRIVERS`, ``driver_k`` (an input of the model), ``driver_k_value``
        (the person's value of it as counted, before the transforms of
        :func:`~careval.risk.model.design_matrix`; ``age_squared`` is ``(age / 10)^2``) and
        ``driver_k_contribution`` (to the log-odds of the score: coefficient x standardised
        value for the logistic model, SHAP value for LightGBM). Drivers are the largest
        contributions, so the inputs that raise this person's score the most; when fewer than
        three raise it, the others are those that lower it least.
    """
    pool = scored[scored.eligible & ~scored.on_care_plan]
    pool = pool.sort_values([by, "risk", "person_id"], ascending=[True, False, True])
    listed = pool.groupby(by, sort=True).head(top).copy()
    listed.insert(0, "rank", listed.groupby(by).cumcount() + 1)
    cols = [by, "rank", "person_id", "practice_code", "mdg", "age", "female", "risk"]
    out = listed[list(dict.fromkeys(cols))].reset_index(drop=True)
    contrib = model.contributions(x.loc[listed.index]).drop(columns=[BASELINE])
    raw = x.loc[listed.index, contrib.columns].copy()
    for col in raw.columns:
        if col in scored.columns:  # as counted, not log(1 + x) nor capped
            raw[col] = scored.loc[listed.index, col].astype(float)
    values = raw.to_numpy()
    c = contrib.to_numpy()
    order = np.argsort(-c, axis=1, kind="stable")[:, :DRIVERS]
    rows = np.arange(len(c))[:, None]
    names = np.asarray(contrib.columns)[order]
    for k in range(min(DRIVERS, c.shape[1])):
        out[f"driver_{k + 1}"] = names[:, k]
        out[f"driver_{k + 1}_value"] = values[rows[:, 0], order[:, k]]
        out[f"driver_{k + 1}_contribution"] = c[rows[:, 0], order[:, k]]
    return out


def scores_table(scored: pd.DataFrame) -> pd.DataFrame:
    """What ``scores.parquet`` holds: :data:`SCORE_COLUMNS` of everyone scored."""
    return scored[list(SCORE_COLUMNS)].reset_index(drop=True)


UNIT_COUNTS = ("registered", "eligible", "on_care_plan", "eligible_without_plan", "listed")


@dataclass
class ScoreSummary:
    """Counts of a scoring run (``summary.json`` of ``careval risk score``): true numbers.

    Attributes
    ----------
    top
        People listed per practice or MDG at most.
    counts
        Whole-population counts: ``registered``, ``eligible``, ``on_care_plan``,
        ``eligible_without_plan``, ``listed_by_practice``, ``listed_by_mdg`` (people, as ints
        or, once published, ``"*"``), ``practices`` and ``mdgs``.
    means
        ``mean_risk_everyone``, ``mean_risk_eligible_without_plan``,
        ``mean_risk_listed_by_practice`` (None when nobody is behind it, or once published
        fewer than 8) and ``expected_admissions_listed_by_practice``.
    by_practice, by_mdg
        One row per practice (``practice_code``) or MDG (``mdg``): :data:`UNIT_COUNTS` and
        ``mean_risk_listed``.
    """

    top: int
    counts: dict[str, Any]
    means: dict[str, float | None]
    by_practice: pd.DataFrame
    by_mdg: pd.DataFrame

    def tidy(self) -> pd.DataFrame:
        """The per-practice rows: counts of people and the mean risk of those listed."""
        return self.by_practice.reset_index(drop=True)

    def summary(self) -> str:
        """People scored, eligible without a plan, and listed."""
        c = self.counts
        return "\n".join(
            [
                f"{c['registered']} people registered, {c['eligible_without_plan']} eligible "
                "without a care plan",
                f"listed {c['listed_by_practice']} across {c['practices']} practices and "
                f"{c['listed_by_mdg']} across {c['mdgs']} MDGs (top {self.top} each)",
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``top``, ``counts``, the means, ``by_practice`` and ``by_mdg`` rows."""
        return {
            "top": self.top,
            "counts": dict(self.counts),
            **self.means,
            "by_practice": _rows(self.by_practice),
            "by_mdg": _rows(self.by_mdg),
        }


def score_summary(
    scored: pd.DataFrame, by_practice: pd.DataFrame, by_mdg: pd.DataFrame, top: int
) -> ScoreSummary:
    """Counts of a scoring run (true numbers; published by the command on real data).

    Parameters
    ----------
    scored
        From :func:`score_people`.
    by_practice, by_mdg
        The two case lists.
    top
        People listed per practice or MDG at most.

    Returns
    -------
    ScoreSummary
        Whole-population counts and mean risks, and ``by_practice`` / ``by_mdg`` rows of
        counts (``registered``, ``eligible``, ``on_care_plan``, ``eligible_without_plan``,
        ``listed``) with the mean risk of those listed.
    """
    pool = scored.eligible & ~scored.on_care_plan
    totals: dict[str, Any] = {
        "registered": int(len(scored)),
        "eligible": int(scored.eligible.sum()),
        "on_care_plan": int(scored.on_care_plan.sum()),
        "eligible_without_plan": int(pool.sum()),
        "listed_by_practice": int(len(by_practice)),
        "listed_by_mdg": int(len(by_mdg)),
        "practices": int(scored.practice_code.nunique()),
        "mdgs": int(scored.mdg.nunique()),
    }
    means = {
        "mean_risk_everyone": _mean(scored.risk),
        "mean_risk_eligible_without_plan": _mean(scored.risk[pool]),
        "mean_risk_listed_by_practice": _mean(by_practice.risk),
        "expected_admissions_listed_by_practice": float(by_practice.risk.sum()),
    }
    return ScoreSummary(
        top,
        totals,
        means,
        _unit_table(scored, by_practice, "practice_code"),
        _unit_table(scored, by_mdg, "mdg"),
    )


def _mean(s: pd.Series) -> float | None:
    return float(s.mean()) if len(s) else None


def _unit_table(scored: pd.DataFrame, listed: pd.DataFrame, by: str) -> pd.DataFrame:
    g = scored.assign(pool=scored.eligible & ~scored.on_care_plan).groupby(by)
    df = pd.DataFrame(
        {
            "registered": g.size(),
            "eligible": g.eligible.sum(),
            "on_care_plan": g.on_care_plan.sum(),
            "eligible_without_plan": g["pool"].sum(),
        }
    )
    lg = listed.groupby(by)
    df["listed"] = lg.size().reindex(df.index, fill_value=0)
    df["mean_risk_listed"] = lg.risk.mean().reindex(df.index)
    return df.reset_index()


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else _plain(v)) for k, v in r.items()}
        for r in df.to_dict(orient="records")
    ]


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
