"""Care plans: a form read into a new version, and a version shown back in the form.

A save never changes a version: it adds the next one, with its author, time, goals, notes,
review date, the person's involvement, the quality checklist and the actions (each with an
owner and a due date), so a plan's whole history can be read back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from careval.app.store import QUALITY_ITEMS, CarePlan, PlanAction, PlanVersion

ACTION_ROWS = 3  # blank action rows offered in the form beside the plan's own
MAX_TEXT = 10_000


def _text(form: Any, key: str, limit: int = MAX_TEXT) -> str:
    return str(form.get(key, "") or "").strip()[:limit]


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def actions_from(form: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The form's action rows (those with a description), or a problem."""
    out = []
    i = 0
    while f"action_{i}_description" in form:
        desc = _text(form, f"action_{i}_description", 2000)
        owner = _text(form, f"action_{i}_owner", 200)
        due_text = _text(form, f"action_{i}_due", 10)
        due = _date(due_text)
        if desc:
            if not owner:
                return [], f"action {i + 1} needs an owner"
            if due_text and due is None:
                return [], f"action {i + 1}: the due date must be a date (YYYY-MM-DD)"
            out.append(
                {
                    "description": desc,
                    "owner": owner,
                    "due_date": due,
                    "done": form.get(f"action_{i}_done") == "on",
                }
            )
        i += 1
    return out, None


def save_version(c: Any, plan: CarePlan, form: Any) -> str | None:
    """Add the form's content to ``plan`` as its next version; returns a problem or None."""
    goals = _text(form, "goals")
    if not goals:
        return "a care plan needs its goals"
    review_text = _text(form, "review_date", 10)
    review = _date(review_text)
    if review_text and review is None:
        return "the review date must be a date (YYYY-MM-DD)"
    actions, problem = actions_from(form)
    if problem:
        return problem
    number = (plan.versions[-1].version if plan.versions else 0) + 1
    version = PlanVersion(
        plan_id=plan.id,
        version=number,
        author_id=c.user.id,
        author_role=c.user.role,
        goals=goals,
        notes=_text(form, "notes"),
        review_date=review,
        patient_involved=form.get("patient_involved") == "on",
        patient_views=_text(form, "patient_views"),
        **{q: form.get(q) == "on" for q in QUALITY_ITEMS},
    )
    version.actions = [PlanAction(**a) for a in actions]
    plan.versions.append(version)
    plan.review_date = review
    return None


def plan_form_values(version: PlanVersion | None, form: Any = None) -> dict[str, Any]:
    """What the form shows: a version's content, what was just sent, or nothing."""
    values: dict[str, Any]
    if form is not None:
        actions, _ = actions_from(form)
        values = {k: _text(form, k) for k in ("goals", "notes", "review_date", "patient_views")}
        values["patient_involved"] = form.get("patient_involved") == "on"
        values.update({q: form.get(q) == "on" for q in QUALITY_ITEMS})
    elif version is not None:
        actions = [
            {"description": a.description, "owner": a.owner, "due_date": a.due_date, "done": a.done}
            for a in version.actions
        ]
        values = {
            "goals": version.goals,
            "notes": version.notes,
            "review_date": version.review_date.isoformat() if version.review_date else "",
            "patient_views": version.patient_views,
            "patient_involved": version.patient_involved,
            **version.quality(),
        }
    else:
        actions = []
        values = {"goals": "", "notes": "", "review_date": "", "patient_views": ""}
        values["patient_involved"] = False
        values.update({q: False for q in QUALITY_ITEMS})
    blank = {"description": "", "owner": "", "due_date": None, "done": False}
    values["actions"] = actions + [dict(blank) for _ in range(ACTION_ROWS)]
    return values
