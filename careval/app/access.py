"""Who may see and do what: every grant of every role, in one place, enforced on the server.

Two checks guard every request. **The route**: a role may use only the pages of its work
(:data:`PAGES`); any other page answers 403. **The object**: a person, plan, meeting or case the
user may not see answers 404, the same as one that does not exist, so changing an id in a URL
tells nothing. A clinician's people are the union of their grants:

- a **GP** sees the people registered at their own practice, and the cases brought to the MDGs
  they belong to;
- an **MDG member** sees the cases brought to their MDGs' meetings, nobody else;
- a **provider clinician** sees the people their organisation has been shared;
- a **programme manager** sees aggregates only, an **evaluator** disclosure-controlled
  aggregates only, and an **administrator** the users and the audit log: none sees a person.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import Session

from careval.app.store import (
    CarePlan,
    Meeting,
    MeetingCase,
    Person,
    Share,
    User,
)

CLINICAL = frozenset({"gp", "mdg_member", "provider_clinician"})
# Each page group and the roles that may use it.
PAGES: dict[str, frozenset[str]] = {
    "cases": frozenset({"gp"}),  # the practice's case list
    "people": CLINICAL,  # a person's record, their plans
    "share": frozenset({"gp"}),  # share a person with an organisation
    "mdg": frozenset({"gp", "mdg_member"}),  # meetings, agendas, case review
    "programme": frozenset({"programme_manager"}),
    "evaluation": frozenset({"evaluator"}),
    "admin": frozenset({"admin"}),
}
HOME = {
    "gp": "/cases",
    "mdg_member": "/mdg",
    "provider_clinician": "/shared",
    "programme_manager": "/programme",
    "evaluator": "/evaluation",
    "admin": "/admin/users",
}


def may_use(user: User, page: str) -> bool:
    return user.active and user.role in PAGES[page]


def visible_people(user: User) -> ColumnElement[bool]:
    """A WHERE clause on :class:`Person` for the people ``user`` may see."""
    if user.role not in CLINICAL or not user.active:
        return false()
    grants: list[ColumnElement[bool]] = []
    if user.role == "gp" and user.practice_code:
        grants.append(Person.practice_code == user.practice_code)
    if user.role in ("gp", "mdg_member") and user.mdg_codes:
        brought = (
            select(MeetingCase.person_id)
            .join(Meeting, Meeting.id == MeetingCase.meeting_id)
            .where(Meeting.mdg.in_(user.mdg_codes))
        )
        grants.append(Person.person_id.in_(brought))
    if user.role == "provider_clinician" and user.organisation:
        shared = select(Share.person_id).where(Share.organisation == user.organisation)
        grants.append(Person.person_id.in_(shared))
    return or_(*grants) if grants else false()


def person(db: Session, user: User, person_id: str) -> Person | None:
    """The person if ``user`` may see them, else None (the caller answers 404)."""
    return db.scalar(select(Person).where(Person.person_id == person_id, visible_people(user)))


def plan(db: Session, user: User, plan_id: int) -> CarePlan | None:
    """A care plan of a person ``user`` may see, else None."""
    found = db.get(CarePlan, plan_id)
    if found is None or person(db, user, found.person_id) is None:
        return None
    return found


def meeting(db: Session, user: User, meeting_id: int) -> Meeting | None:
    """A meeting of one of ``user``'s MDGs, else None."""
    found = db.get(Meeting, meeting_id)
    if found is None or not may_use(user, "mdg") or found.mdg not in user.mdg_codes:
        return None
    return found


def case(db: Session, user: User, case_id: int) -> MeetingCase | None:
    """A case brought to a meeting ``user`` may see, else None."""
    found = db.get(MeetingCase, case_id)
    if found is None or meeting(db, user, found.meeting_id) is None:
        return None
    return found


def may_bring(user: User, who: Person, to: Meeting) -> bool:
    """Whether ``user`` may bring ``who`` to the meeting: a GP, their own patient, their MDG."""
    return (
        user.role == "gp"
        and who.practice_code == user.practice_code
        and who.mdg == to.mdg
        and to.mdg in user.mdg_codes
    )
