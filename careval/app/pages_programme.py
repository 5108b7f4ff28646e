"""The programme's view (aggregates by MDG) and the evaluator's (the same, disclosure-controlled).

One table, :func:`programme_table`: per MDG and for all MDGs together, the eligible people, how
many have a care plan (in the data before the scoring date, or made in the app) and so the
coverage, the app's plans and those due for review, the mean quality-checklist score of their
current versions, meetings held, cases discussed and system-issue items, and the innovation
fund allocated and spent. A programme manager sees the true numbers; an evaluator sees them
through careval's publication rules (:func:`careval.report.publish.rules.protect_table`:
counts of 1-7 suppressed, others rounded to 5, secondary suppression against the all-MDG row,
rates withheld where they rest on a suppressed count), whatever the data's flag, because that
is the evaluator's level of access rather than a choice of what to publish.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pandas as pd
from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import Executable, Integer, cast, func, or_, select
from sqlalchemy.orm import Session

from careval.app.store import (
    QUALITY_ITEMS,
    CarePlan,
    Fund,
    Meeting,
    MeetingCase,
    Person,
    PlanVersion,
)
from careval.app.web import Ctx, page
from careval.disclosure import DisclosureSettings
from careval.report.publish.rules import protect_table

router = APIRouter()
ALL = "All MDGs"
COUNTS = (
    "eligible",
    "planned",
    "app_plans",
    "review_due",
    "meetings",
    "cases",
    "system_issues",
)
RATES = ("coverage", "mean_quality")
COLUMNS = ("mdg", *COUNTS, *RATES, "fund_allocated", "fund_spent")


def _by_mdg(db: Session, query: Executable) -> dict[str, float]:
    return {k: v for k, v in db.execute(query).all() if k is not None}


def programme_table(db: Session, today: dt.date) -> pd.DataFrame:
    """The programme's figures by MDG, with an all-MDG row last (true numbers)."""
    app_plan = select(CarePlan.person_id)
    eligible = _by_mdg(
        db, select(Person.mdg, func.count()).where(Person.eligible).group_by(Person.mdg)
    )
    planned = _by_mdg(
        db,
        select(Person.mdg, func.count())
        .where(Person.eligible, or_(Person.plan_in_data, Person.person_id.in_(app_plan)))
        .group_by(Person.mdg),
    )
    plans = _by_mdg(db, select(CarePlan.mdg, func.count()).group_by(CarePlan.mdg))
    due = _by_mdg(
        db,
        select(CarePlan.mdg, func.count())
        .where(CarePlan.review_date.is_not(None), CarePlan.review_date <= today)
        .group_by(CarePlan.mdg),
    )
    newest = (
        select(PlanVersion.plan_id, func.max(PlanVersion.version).label("v"))
        .group_by(PlanVersion.plan_id)
        .subquery()
    )
    score = sum(cast(getattr(PlanVersion, q), Integer) for q in QUALITY_ITEMS)
    quality = _by_mdg(
        db,
        select(CarePlan.mdg, func.avg(score / float(len(QUALITY_ITEMS))))
        .join(PlanVersion, PlanVersion.plan_id == CarePlan.id)
        .join(
            newest, (newest.c.plan_id == PlanVersion.plan_id) & (newest.c.v == PlanVersion.version)
        )
        .group_by(CarePlan.mdg),
    )
    meetings = _by_mdg(db, select(Meeting.mdg, func.count()).group_by(Meeting.mdg))
    cases = _by_mdg(
        db,
        select(Meeting.mdg, func.count())
        .join(MeetingCase, MeetingCase.meeting_id == Meeting.id)
        .group_by(Meeting.mdg),
    )
    issues = _by_mdg(
        db,
        select(Meeting.mdg, func.count())
        .join(MeetingCase, MeetingCase.meeting_id == Meeting.id)
        .where(MeetingCase.system_issue)
        .group_by(Meeting.mdg),
    )
    allocated = _by_mdg(db, select(Fund.mdg, func.sum(Fund.amount)).group_by(Fund.mdg))
    spent = _by_mdg(db, select(Fund.mdg, func.sum(Fund.spent)).group_by(Fund.mdg))
    mdgs = sorted(set(eligible) | set(plans) | set(meetings) | set(allocated))
    rows = []
    for m in mdgs:
        rows.append(
            {
                "mdg": m,
                "eligible": int(eligible.get(m, 0)),
                "planned": int(planned.get(m, 0)),
                "app_plans": int(plans.get(m, 0)),
                "review_due": int(due.get(m, 0)),
                "meetings": int(meetings.get(m, 0)),
                "cases": int(cases.get(m, 0)),
                "system_issues": int(issues.get(m, 0)),
                "mean_quality": quality.get(m),
                "fund_allocated": float(allocated.get(m, 0.0)),
                "fund_spent": float(spent.get(m, 0.0)),
            }
        )
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "coverage"])
    total: dict[str, object] = {c: int(df[c].sum()) for c in COUNTS}
    n_plans = df.app_plans.to_numpy()
    q = df.mean_quality.astype(float).fillna(0).to_numpy()
    total["mean_quality"] = float((q * n_plans).sum() / n_plans.sum()) if n_plans.sum() else None
    total.update(
        mdg=ALL,
        fund_allocated=float(df.fund_allocated.sum()),
        fund_spent=float(df.fund_spent.sum()),
    )
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    df["coverage"] = [p / e if e else None for p, e in zip(df.planned, df.eligible, strict=True)]
    return df[list(COLUMNS)]


def records(df: pd.DataFrame) -> list[dict[str, object]]:
    """The rows for the page, with missing shares as None."""
    return [
        {k: (None if v is None or v != v else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


def published(df: pd.DataFrame, d: DisclosureSettings | None = None) -> pd.DataFrame:
    """The table as an evaluator sees it: careval's publication rules applied."""
    d = d or DisclosureSettings()
    parts = [m for m in df.mdg if m != ALL]
    return protect_table(
        df,
        list(COUNTS),
        d,
        group_margin=("mdg", [], parts, ALL),
        rate_counts={"coverage": ["planned", "eligible"], "mean_quality": ["app_plans"]},
    )


@router.get("/programme")
def programme(c: Annotated[Ctx, page("programme")]) -> Response:
    table = programme_table(c.db, c.today())
    c.audit("view_programme")
    c.db.commit()
    return c.render("programme.html", table=records(table), controlled=False)


@router.get("/evaluation")
def evaluation(c: Annotated[Ctx, page("evaluation")]) -> Response:
    table = published(programme_table(c.db, c.today()))
    c.audit("view_evaluation")
    c.db.commit()
    return c.render("programme.html", table=records(table), controlled=True)
