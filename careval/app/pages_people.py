"""The clinicians' pages: the practice's case list, a person's record, shares and care plans."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import Exists, and_, exists, func, or_, select

from careval.app import access
from careval.app.plans import plan_form_values, save_version
from careval.app.store import QUALITY_ITEMS, CarePlan, Meeting, MeetingCase, Person, Share
from careval.app.web import CSRF, Ctx, int_or_none, not_found, page, redirect

router = APIRouter()
PAGE_SIZE = 50
PLAN_FILTERS = ("any", "without", "with")


def _has_app_plan() -> Exists:
    return exists().where(CarePlan.person_id == Person.person_id)


def _review_due(today: dt.date) -> Exists:
    return exists().where(
        and_(
            CarePlan.person_id == Person.person_id,
            CarePlan.review_date.is_not(None),
            CarePlan.review_date <= today,
        )
    )


def drivers(p: Person) -> list[tuple[str, float | None, float | None]]:
    return [(str(n), v, c) for n, v, c in json.loads(p.drivers)]


@router.get("/cases")
def cases(
    c: Annotated[Ctx, page("cases")],
    age_min: str | None = None,
    age_max: str | None = None,
    condition: str | None = None,
    plan: str = "any",
    review_due: str | None = None,
    everyone: str | None = None,
) -> Response:
    """The practice's people, highest risk first, with each score's drivers; filterable."""
    q = select(Person).where(access.visible_people(c.user))
    q = q.where(Person.practice_code == (c.user.practice_code or ""))
    if not everyone:
        q = q.where(Person.eligible)
    lo, hi = int_or_none(age_min), int_or_none(age_max)
    if lo is not None:
        q = q.where(Person.age >= lo)
    if hi is not None:
        q = q.where(Person.age <= hi)
    conditions = c.request.app.state.conditions
    if condition in conditions:
        # Whole words of the space-separated names (so "ckd" does not match inside another).
        q = q.where(
            or_(
                Person.conditions == condition,
                Person.conditions.like(f"{condition} %"),
                Person.conditions.like(f"% {condition}"),
                Person.conditions.like(f"% {condition} %"),
            )
        )
    has_plan = or_(Person.plan_in_data, _has_app_plan())
    if plan == "with":
        q = q.where(has_plan)
    elif plan == "without":
        q = q.where(~has_plan)
    else:
        plan = "any"
    if review_due:
        q = q.where(_review_due(c.today()))
    total = c.db.scalar(select(func.count()).select_from(q.subquery())) or 0
    n = max(int_or_none(c.request.query_params.get("page")) or 1, 1)
    rows = c.db.scalars(
        q.order_by(Person.risk.desc(), Person.person_id)
        .offset((n - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    ids = [p.person_id for p in rows]
    plans = {
        pid: (cid, review)
        for pid, cid, review in c.db.execute(
            select(CarePlan.person_id, CarePlan.id, CarePlan.review_date).where(
                CarePlan.person_id.in_(ids)
            )
        )
    }
    c.audit("view_case_list", object_type="practice", object_id=c.user.practice_code)
    c.db.commit()
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return c.render(
        "cases.html",
        people=rows,
        first_rank=(n - 1) * PAGE_SIZE + 1,
        total=total,
        page_no=n,
        pages=pages,
        prev_url=_page_url(c, n - 1) if n > 1 else None,
        next_url=_page_url(c, n + 1) if n < pages else None,
        plans=plans,
        drivers=drivers,
        conditions=conditions,
        filters={
            "age_min": lo,
            "age_max": hi,
            "condition": condition if condition in conditions else "",
            "plan": plan,
            "review_due": bool(review_due),
            "everyone": bool(everyone),
        },
        plan_filters=PLAN_FILTERS,
        today=c.today(),
    )


@router.get("/shared")
def shared(c: Annotated[Ctx, page("people")]) -> Response:
    """The people shared with the user's organisation (and those they may see otherwise)."""
    rows = c.db.scalars(
        select(Person)
        .where(access.visible_people(c.user))
        .order_by(Person.risk.desc(), Person.person_id)
        .limit(500)
    ).all()
    c.audit("view_shared_list", object_type="organisation", object_id=c.user.organisation)
    c.db.commit()
    return c.render("shared.html", people=rows, drivers=drivers)


@router.get("/people/{person_id}")
def person(c: Annotated[Ctx, page("people")], person_id: str) -> Response:
    """A person's record: score and drivers, plans, MDG reviews, shares and their timeline."""
    who = access.person(c.db, c.user, person_id)
    if who is None:
        raise not_found()
    plans = c.db.scalars(
        select(CarePlan).where(CarePlan.person_id == person_id).order_by(CarePlan.id)
    ).all()
    reviews = c.db.execute(
        select(MeetingCase, Meeting)
        .join(Meeting, Meeting.id == MeetingCase.meeting_id)
        .where(MeetingCase.person_id == person_id)
        .order_by(Meeting.meeting_date.desc())
    ).all()
    shares = c.db.scalars(select(Share).where(Share.person_id == person_id)).all()
    events = c.request.app.state.records.of(person_id)
    meetings = []
    if c.user.role == "gp" and who.mdg in c.user.mdg_codes:
        brought = {m.meeting_id for m, _ in reviews}
        meetings = [
            m
            for m in c.db.scalars(
                select(Meeting)
                .where(Meeting.mdg == who.mdg, Meeting.meeting_date >= c.today())
                .order_by(Meeting.meeting_date)
            )
            if m.id not in brought
        ]
    c.audit("view_person", person_id=person_id, object_type="person", object_id=person_id)
    c.db.commit()
    return c.render(
        "person.html",
        who=who,
        drivers=drivers(who),
        plans=plans,
        reviews=reviews,
        shares=shares,
        events=events,
        meetings=meetings,
        may_share=access.may_use(c.user, "share"),
    )


@router.post("/people/{person_id}/share", dependencies=[CSRF])
async def share(c: Annotated[Ctx, page("share")], person_id: str) -> Response:
    """Share a person's record with a provider organisation."""
    who = access.person(c.db, c.user, person_id)
    if who is None:
        raise not_found()
    form = await c.request.form()
    org = str(form.get("organisation", "")).strip()[:100]
    organisations = c.request.app.state.organisations
    if org not in organisations:
        return c.render("error.html", 400, message="Choose one of the listed organisations.")
    if not c.db.scalar(
        select(Share).where(Share.person_id == person_id, Share.organisation == org)
    ):
        c.db.add(Share(person_id=person_id, organisation=org, shared_by=c.user.id))
        c.audit("share_person", person_id=person_id, object_type="share", detail=org)
        c.db.commit()
    return redirect(f"/people/{person_id}")


@router.get("/people/{person_id}/plans/new")
def new_plan(c: Annotated[Ctx, page("people")], person_id: str) -> Response:
    who = access.person(c.db, c.user, person_id)
    if who is None:
        raise not_found()
    return c.render(
        "plan_form.html", who=who, plan=None, values=plan_form_values(None), items=QUALITY_ITEMS
    )


@router.post("/people/{person_id}/plans", dependencies=[CSRF])
async def create_plan(c: Annotated[Ctx, page("people")], person_id: str) -> Response:
    """A new care plan: its first version."""
    who = access.person(c.db, c.user, person_id)
    if who is None:
        raise not_found()
    form = await c.request.form()
    plan = CarePlan(person_id=person_id, mdg=who.mdg, created_by=c.user.id, created_date=c.today())
    c.db.add(plan)
    c.db.flush()
    problem = save_version(c, plan, form)
    if problem:
        c.db.rollback()
        return c.render(
            "plan_form.html",
            400,
            who=who,
            plan=None,
            values=plan_form_values(None, form),
            items=QUALITY_ITEMS,
            problem=problem,
        )
    c.audit("create_plan", person_id=person_id, object_type="care_plan", object_id=plan.id)
    c.db.commit()
    return redirect(f"/plans/{plan.id}")


@router.get("/plans/{plan_id}")
def view_plan(
    c: Annotated[Ctx, page("people")], plan_id: int, version: str | None = None
) -> Response:
    """A plan's current version (or the one asked for) and its whole history."""
    found = access.plan(c.db, c.user, plan_id)
    if found is None:
        raise not_found()
    v = int_or_none(version)
    shown = next((x for x in found.versions if x.version == v), None) if v else found.current
    if shown is None:
        raise not_found()
    who = c.db.get(Person, found.person_id)
    c.audit(
        "view_plan",
        person_id=found.person_id,
        object_type="care_plan",
        object_id=found.id,
        detail=f"version {shown.version}",
    )
    c.db.commit()
    return c.render("plan.html", plan=found, shown=shown, who=who, items=QUALITY_ITEMS)


@router.get("/plans/{plan_id}/edit")
def edit_plan(c: Annotated[Ctx, page("people")], plan_id: int) -> Response:
    found = access.plan(c.db, c.user, plan_id)
    if found is None:
        raise not_found()
    who = c.db.get(Person, found.person_id)
    return c.render(
        "plan_form.html",
        who=who,
        plan=found,
        values=plan_form_values(found.current),
        items=QUALITY_ITEMS,
    )


@router.post("/plans/{plan_id}", dependencies=[CSRF])
async def update_plan(c: Annotated[Ctx, page("people")], plan_id: int) -> Response:
    """Save a new version of the plan (the earlier ones are kept as they were)."""
    found = access.plan(c.db, c.user, plan_id)
    if found is None:
        raise not_found()
    form = await c.request.form()
    problem = save_version(c, found, form)
    if problem:
        c.db.rollback()
        who = c.db.get(Person, found.person_id)
        return c.render(
            "plan_form.html",
            400,
            who=who,
            plan=found,
            values=plan_form_values(None, form),
            items=QUALITY_ITEMS,
            problem=problem,
        )
    c.audit(
        "edit_plan",
        person_id=found.person_id,
        object_type="care_plan",
        object_id=found.id,
        detail=f"version {found.current.version}",
    )
    c.db.commit()
    return redirect(f"/plans/{found.id}")


def _page_url(c: Ctx, n: int) -> str:
    query = {k: v for k, v in c.request.query_params.items() if k != "page"}
    return "/cases?" + urlencode({**query, "page": n})
