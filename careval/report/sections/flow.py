"""The flow of people through the evaluation (CONSORT-style), drawn as SVG.

One pure function, :func:`flow_boxes`, computes every box from the published results: the
people registered on the reference date, the eligible, the care-planned among them, every
care-planned person (also those not eligible on the reference date, an explicit branch), those
who entered the matched study and those matched; and the pool of candidate controls and the
matched controls. Each box names its parent and its exclusions (and, for the one box that
gathers people from outside its parent, its additions), so that a test can check that every
box equals its parent minus its exclusions plus its additions. :func:`flow_svg` draws them.

Coverage is defined here once (:func:`coverage`): the care-planned among the people eligible
on the reference date, as a share of those eligible. The board summary, the data section and
Table 3 all quote it from here.

Under disclosure control the boxes hold the published (rounded or suppressed) counts, so a box
may differ from its parent minus its exclusions by the rounding (:func:`adds_up` allows it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from careval.disclosure import DisclosureSettings
from careval.impact.settings import DEFAULT_LABEL
from careval.report import format as fmt
from careval.report.publish.model import ImpactBlock, Published
from careval.report.publish.rules import SUPPRESSED, is_suppressed


@dataclass(frozen=True)
class Step:
    """An exclusion (or addition) beside a box: why, how many, where in results.json."""

    reason: str
    count: Any
    paths: tuple[str, ...] = ()
    derived: bool = False  # the difference of two published counts, not a count of its own


@dataclass(frozen=True)
class Box:
    """One box of the flow diagram."""

    id: str
    label: str
    count: Any
    paths: tuple[str, ...] = ()  # the results.json values summed into ``count``
    parent: str | None = None
    exclusions: tuple[Step, ...] = ()
    additions: tuple[Step, ...] = field(default=())
    arm: str = "treated"  # "treated" or "control"


def count_of(v: Any) -> int | None:
    """A published count as an int; None for a suppressed (``*``), missing or other value."""
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _attrition_step(pub: Published, step: int, areas: tuple[str, ...]) -> tuple[Any, tuple]:
    """The data attrition table's count at ``step`` summed over ``areas`` (None if missing,
    ``*`` if any part is suppressed), and the paths of its parts."""
    rows = (pub.data.attrition or []) if pub.data else []
    for i, r in enumerate(rows):
        if r.get("step") == step:
            parts = [r.get(a) for a in areas]
            paths = tuple(f"data.attrition[{i}].{a}" for a in areas)
            if any(p is None for p in parts):
                return None, paths
            nums = [n for n in (count_of(p) for p in parts) if n is not None]
            return (sum(nums) if len(nums) == len(parts) else SUPPRESSED), paths
    return None, ()


def _difference(a: Any, b: Any, d: DisclosureSettings | None = None) -> Any:
    """``a - b`` of two published counts (None when either is not a number); with ``d`` (real
    data), a difference that disclosure control would suppress is shown suppressed."""
    x, y = count_of(a), count_of(b)
    if x is None or y is None:
        return None
    return SUPPRESSED if d is not None and is_suppressed(x - y, d) else x - y


def flow_boxes(
    pub: Published,
    programme_areas: tuple[str, ...] = ("pilot",),
    disclosure: DisclosureSettings | None = None,
) -> list[Box]:
    """Every box of the flow, in drawing order, from the published results of ``pub``.

    On real data (``pub.synthetic`` false) a difference of two published counts that
    disclosure control would suppress (``disclosure``, default its defaults) is shown as
    suppressed too.
    """
    areas = programme_areas
    d = None if pub.synthetic else (disclosure or DisclosureSettings())

    def _diff(a: Any, b: Any) -> Any:
        return _difference(a, b, d)

    ever, p_ever = _attrition_step(pub, 1, areas)
    reg, p_reg = _attrition_step(pub, 2, areas)
    alive, p_alive = _attrition_step(pub, 3, areas)
    elig, p_elig = _attrition_step(pub, 4, areas)
    planned, p_planned = _attrition_step(pub, 5, areas)
    boxes: list[Box] = []
    if ever is not None:
        boxes.append(
            Box("ever", "People ever registered with the programme's practices", ever, p_ever)
        )
    if reg is not None:
        boxes.append(
            Box(
                "registered",
                "Registered on the reference date",
                reg,
                p_reg,
                "ever" if ever is not None else None,
                (Step("not registered on the reference date", _diff(ever, reg), derived=True),)
                if ever is not None
                else (),
            )
        )
    if alive is not None:
        boxes.append(
            Box(
                "alive",
                "Registered and alive on the reference date",
                alive,
                p_alive,
                "registered",
                (Step("died before the reference date", _diff(reg, alive), derived=True),),
            )
        )
    if elig is not None:
        boxes.append(
            Box(
                "eligible",
                "Eligible on the reference date",
                elig,
                p_elig,
                "alive",
                (Step("not eligible", _diff(alive, elig), derived=True),),
            )
        )
    if planned is not None:
        boxes.append(
            Box(
                "planned_eligible",
                "Eligible on the reference date and care-planned by the end of the data",
                planned,
                p_planned,
                "eligible",
                (Step("eligible, no care plan", _diff(elig, planned), derived=True),),
            )
        )
    imp = pub.impact if isinstance(pub.impact, ImpactBlock) else None
    att = (imp.attrition or {}) if imp else {}
    if imp is not None and att:
        label = str(((imp.settings or {}).get("intervention") or {}).get("label") or DEFAULT_LABEL)
        a = "impact.attrition."
        all_planned = att.get("care_planned")
        parent = "planned_eligible" if planned is not None else None
        boxes.append(
            Box(
                "planned_all",
                f"Everyone with a {label} (first {label} in the data)",
                all_planned,
                (a + "care_planned",),
                parent,
                (),
                (
                    Step(
                        "care-planned but not eligible, registered and alive on the reference "
                        "date (eligible or registered later)",
                        _diff(all_planned, planned),
                        derived=True,
                    ),
                )
                if parent
                else (),
            )
        )
        entered = att.get("entered_in_study_window")
        boxes.append(
            Box(
                "entered",
                "First care plan in the study's entry window",
                entered,
                (a + "entered_in_study_window",),
                "planned_all",
                (
                    Step(
                        "first care plan before the year of history or too late for follow-up",
                        _diff(all_planned, entered),
                        derived=True,
                    ),
                ),
            )
        )
        at_entry = att.get("treated_alive_and_registered_at_entry")
        boxes.append(
            Box(
                "at_entry",
                "Alive, registered and eligible at entry",
                at_entry,
                (a + "treated_alive_and_registered_at_entry",),
                "entered",
                (
                    Step(
                        "not alive, registered or eligible in the month of entry",
                        _diff(entered, at_entry),
                        derived=True,
                    ),
                ),
            )
        )
        boxes.append(
            Box(
                "matched",
                "Matched to controls: in the study",
                att.get("treated_matched"),
                (a + "treated_matched",),
                "at_entry",
                (
                    Step(
                        "no control in the same stratum",
                        att.get("unmatched_no_control_in_stratum"),
                        (a + "unmatched_no_control_in_stratum",),
                    ),
                    Step(
                        "no control close enough (outside the caliper)",
                        att.get("unmatched_outside_caliper"),
                        (a + "unmatched_outside_caliper",),
                    ),
                ),
            )
        )
        pool = att.get("candidate_control_rows")
        boxes.append(
            Box(
                "pool",
                "Candidate controls: person-months of "
                f"{fmt.count(att.get('candidate_control_people'))} people like the care-planned",
                pool,
                (a + "candidate_control_rows",),
                None,
                arm="control",
            )
        )
        controls = att.get("controls_matched")
        boxes.append(
            Box(
                "controls",
                "Matched controls (person-months)",
                controls,
                (a + "controls_matched",),
                "pool",
                (Step("not chosen as a control", _diff(pool, controls), derived=True),),
                arm="control",
            )
        )
    return boxes


def adds_up(boxes: list[Box], tolerance: int = 0) -> list[str]:
    """The boxes that do not equal their parent minus exclusions plus additions (by more than
    ``tolerance`` per count involved: the rounding of disclosure control), as messages."""
    by_id = {b.id: b for b in boxes}
    bad = []
    for b in boxes:
        if b.parent is None or b.parent not in by_id:
            continue
        terms = [by_id[b.parent].count, b.count, *(s.count for s in b.exclusions + b.additions)]
        maybe = [count_of(t) for t in terms]
        nums = [n for n in maybe if n is not None]
        if len(nums) < len(maybe):
            continue  # a suppressed or missing count: nothing to check
        parent, own, *rest = nums
        k = len(b.exclusions)
        want = parent - sum(rest[:k]) + sum(rest[k:])
        if abs(want - own) > tolerance * len(terms):
            bad.append(f"{b.label}: {own} is not {want}")
    return bad


def coverage(pub: Published, programme_areas: tuple[str, ...] = ("pilot",)) -> tuple[Any, Any, Any]:
    """Coverage as the report defines it once: the people eligible on the reference date who
    were care-planned by the end of the data, over the people eligible on that date.

    Returns ``(share, care-planned, eligible)``; the share is None when either count is
    missing or suppressed.
    """
    elig, _ = _attrition_step(pub, 4, programme_areas)
    planned, _ = _attrition_step(pub, 5, programme_areas)
    e, p = count_of(elig), count_of(planned)
    share = round(p / e, 4) if e and p is not None else None
    return share, planned, elig


def coverage_paths(
    pub: Published, programme_areas: tuple[str, ...] = ("pilot",)
) -> tuple[str, ...]:
    """The results.json paths coverage is computed from: the eligible, then the care-planned
    (each space-separated over the programme's areas); empty when the data lack them."""
    _, elig = _attrition_step(pub, 4, programme_areas)
    _, planned = _attrition_step(pub, 5, programme_areas)
    return (" ".join(elig), " ".join(planned)) if elig and planned else ()


COVERAGE_DEFINITION = (
    "coverage is the share of the people eligible on the reference date who had a care plan "
    "by the end of the data"
)
