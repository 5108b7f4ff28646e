"""Demo users of every role on a snapshot, with fresh random passwords each time.

The two GPs work at the two practices with the most eligible people in the MDG with the most (so
each sees their own patients and not the other's); a third GP is in another MDG. The MDG
member belongs to the first MDG; the provider clinician to community health services.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select

from careval.app import security
from careval.app.store import Person, Store, User, UserMdg
from careval.app.web import ORGANISATIONS


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    grants: str


def _places(store: Store) -> tuple[str, list[str], str | None, str | None]:
    with store.session() as db:
        by_mdg = db.execute(
            select(Person.mdg, func.count())
            .where(Person.eligible, Person.mdg.is_not(None))
            .group_by(Person.mdg)
            .order_by(func.count().desc(), Person.mdg)
        ).all()
        if not by_mdg:
            raise ValueError("the snapshot has no practice in an MDG: no demo users can be made")
        mdg = by_mdg[0][0]
        practices = [
            p
            for p, _ in db.execute(
                select(Person.practice_code, func.count())
                .where(Person.mdg == mdg, Person.eligible)
                .group_by(Person.practice_code)
                .order_by(func.count().desc(), Person.practice_code)
            )
        ]
        other_mdg = by_mdg[1][0] if len(by_mdg) > 1 else None
        other_practice = None
        if other_mdg:
            other_practice = db.scalar(
                select(Person.practice_code)
                .where(Person.mdg == other_mdg, Person.eligible)
                .group_by(Person.practice_code)
                .order_by(func.count().desc(), Person.practice_code)
            )
    return mdg, practices[:2], other_mdg, other_practice


def demo_users(store: Store) -> list[DemoUser]:
    """Create (or reset the passwords of) the demo users; returns their log-ins."""
    mdg, practices, other_mdg, other_practice = _places(store)
    plan: list[tuple[str, str, str, str | None, str | None, list[str]]] = [
        ("gp1", "Dr Demo One", "gp", practices[0], None, [mdg]),
    ]
    if len(practices) > 1:
        plan.append(("gp2", "Dr Demo Two", "gp", practices[1], None, [mdg]))
    if other_mdg and other_practice:
        plan.append(("gp3", "Dr Demo Three", "gp", other_practice, None, [other_mdg]))
    plan += [
        ("mdg1", "Demo MDG member", "mdg_member", None, None, [mdg]),
        ("provider1", "Demo community nurse", "provider_clinician", None, ORGANISATIONS[1], []),
        ("manager1", "Demo programme manager", "programme_manager", None, None, []),
        ("evaluator1", "Demo evaluator", "evaluator", None, None, []),
        ("admin1", "Demo administrator", "admin", None, None, []),
    ]
    out = []
    with store.session() as db:
        for username, name, role, practice, org, mdgs in plan:
            password = secrets.token_urlsafe(12)
            user = db.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, display_name=name, password_hash="", role=role)
                db.add(user)
            user.password_hash = security.hash_password(password)
            user.role, user.practice_code, user.organisation = role, practice, org
            user.active = True
            user.mdgs = [UserMdg(mdg=m) for m in mdgs]
            grants = ", ".join(
                x
                for x in (
                    f"practice {practice}" if practice else "",
                    f"MDG {', '.join(mdgs)}" if mdgs else "",
                    org or "",
                )
                if x
            )
            out.append(DemoUser(username, password, role, grants))
        db.commit()
    with store.session() as db:
        security.forget_failures(db)
    return out
