"""MDG meetings: the agenda from the case list, attendance by role, the review of each case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import exists, or_, select

from careval.app import access
from careval.app.store import Attendance, CarePlan, Meeting, MeetingCase, Person
from careval.app.web import CSRF, Ctx, date_or_none, int_or_none, not_found, page, redirect
from careval.data.schema import MDG_ROLES

router = APIRouter()
SUGGESTED = 10  # the GP's highest-risk patients offered for a meeting's agenda
MAX_MINUTES = 600


@router.get("/mdg")
def mdgs(c: Annotated[Ctx, page("mdg")]) -> Response:
    """The user's MDGs: their meetings, and the cases brought, highest risk first."""
    codes = c.user.mdg_codes
    meetings = c.db.scalars(
        select(Meeting).where(Meeting.mdg.in_(codes)).order_by(Meeting.meeting_date.desc())
    ).all()
    cases = c.db.execute(
        select(MeetingCase, Meeting, Person)
        .join(Meeting, Meeting.id == MeetingCase.meeting_id)
        .join(Person, Person.person_id == MeetingCase.person_id)
        .where(Meeting.mdg.in_(codes))
        .order_by(MeetingCase.reviewed, Person.risk.desc(), Person.person_id)
    ).all()
    c.audit("view_mdg_cases", object_type="mdg", object_id=",".join(codes))
    c.db.commit()
    return c.render("mdg.html", codes=codes, meetings=meetings, cases=cases, today=c.today())


@router.post("/mdg/meetings", dependencies=[CSRF])
async def create_meeting(c: Annotated[Ctx, page("mdg")]) -> Response:
    form = await c.request.form()
    mdg = str(form.get("mdg", ""))
    day = date_or_none(str(form.get("meeting_date", "")))
    if mdg not in c.user.mdg_codes:
        raise not_found()
    if day is None:
        return c.render("error.html", 400, message="A meeting needs a date (YYYY-MM-DD).")
    m = Meeting(mdg=mdg, meeting_date=day, created_by=c.user.id)
    c.db.add(m)
    c.db.flush()
    c.audit("create_meeting", object_type="meeting", object_id=m.id, detail=mdg)
    c.db.commit()
    return redirect(f"/mdg/meetings/{m.id}")


@router.get("/mdg/meetings/{meeting_id}")
def meeting(c: Annotated[Ctx, page("mdg")], meeting_id: int) -> Response:
    """A meeting's agenda and reviews; a GP is offered their highest-risk patients to bring."""
    m = access.meeting(c.db, c.user, meeting_id)
    if m is None:
        raise not_found()
    people = {
        p.person_id: p
        for p in c.db.scalars(
            select(Person).where(Person.person_id.in_([k.person_id for k in m.cases]))
        )
    }
    suggested: list[Person] = []
    if c.user.role == "gp":
        brought = exists().where(
            MeetingCase.meeting_id == m.id, MeetingCase.person_id == Person.person_id
        )
        planned = or_(Person.plan_in_data, exists().where(CarePlan.person_id == Person.person_id))
        suggested = list(
            c.db.scalars(
                select(Person)
                .where(
                    Person.practice_code == c.user.practice_code,
                    Person.mdg == m.mdg,
                    Person.eligible,
                    ~brought,
                )
                .order_by(planned, Person.risk.desc(), Person.person_id)
                .limit(SUGGESTED)
            )
        )
    counts = {a.role: a.attendees for a in m.attendance}
    for k in m.cases:
        c.audit("view_mdg_case", person_id=k.person_id, object_type="mdg_case", object_id=k.id)
    c.audit("view_meeting", object_type="meeting", object_id=m.id)
    c.db.commit()
    return c.render(
        "meeting.html",
        m=m,
        people=people,
        suggested=suggested,
        roles=MDG_ROLES,
        counts=counts,
        max_minutes=MAX_MINUTES,
    )


@router.post("/mdg/meetings/{meeting_id}/cases", dependencies=[CSRF])
async def bring(c: Annotated[Ctx, page("mdg")], meeting_id: int) -> Response:
    """Bring a person to a meeting (a GP, their own patient, to their practice's MDG)."""
    m = access.meeting(c.db, c.user, meeting_id)
    if m is None:
        raise not_found()
    form = await c.request.form()
    pid = str(form.get("person_id", "")).strip()[:64]
    who = access.person(c.db, c.user, pid)
    if who is None:
        raise not_found()
    if not access.may_bring(c.user, who, m):
        return c.render(
            "error.html", 403, message="Only the person's own GP can bring them to their MDG."
        )
    if not any(k.person_id == pid for k in m.cases):
        m.cases.append(MeetingCase(person_id=pid, added_by=c.user.id))
        c.db.flush()
        c.audit("bring_to_mdg", person_id=pid, object_type="meeting", object_id=m.id)
        c.db.commit()
    back = str(form.get("back", ""))
    return redirect(f"/people/{pid}" if back == "person" else f"/mdg/meetings/{m.id}")


@router.post("/mdg/meetings/{meeting_id}/attendance", dependencies=[CSRF])
async def attendance(c: Annotated[Ctx, page("mdg")], meeting_id: int) -> Response:
    """Record how long the meeting ran and who attended, by professional role."""
    m = access.meeting(c.db, c.user, meeting_id)
    if m is None:
        raise not_found()
    form = await c.request.form()
    minutes = int_or_none(str(form.get("duration_minutes", "")))
    if minutes is not None and not 0 <= minutes <= MAX_MINUTES:
        return c.render("error.html", 400, message=f"Minutes run from 0 to {MAX_MINUTES}.")
    counts = {}
    for role in MDG_ROLES:
        n = int_or_none(str(form.get(f"role_{role}", "")))
        if n is not None and not 0 <= n <= 100:
            return c.render("error.html", 400, message="Attendees per role run from 0 to 100.")
        if n:
            counts[role] = n
    m.duration_minutes = minutes
    m.attendance = [Attendance(role=r, attendees=n) for r, n in counts.items()]
    c.audit("record_attendance", object_type="meeting", object_id=m.id)
    c.db.commit()
    return redirect(f"/mdg/meetings/{m.id}")


@router.post("/mdg/cases/{case_id}", dependencies=[CSRF])
async def review(c: Annotated[Ctx, page("mdg")], case_id: int) -> Response:
    """Record a case's discussion, actions and outcome, and whether it raised a system issue."""
    k = access.case(c.db, c.user, case_id)
    if k is None:
        raise not_found()
    form = await c.request.form()
    k.notes = str(form.get("notes", "")).strip()[:10_000]
    k.actions = str(form.get("actions", "")).strip()[:10_000]
    k.outcome = str(form.get("outcome", "")).strip()[:2_000]
    k.system_issue = form.get("system_issue") == "on"
    k.reviewed = True
    c.audit("review_mdg_case", person_id=k.person_id, object_type="mdg_case", object_id=k.id)
    c.db.commit()
    return redirect(f"/mdg/meetings/{k.meeting_id}")
