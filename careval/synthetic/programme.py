"""Programme records: care plans with quality items, MDG meetings and the innovation fund."""

from __future__ import annotations

import numpy as np

from careval.data.schema import AUTHOR_ROLES, CARE_PLAN_QUALITY_ITEMS, MDG_ROLES
from careval.synthetic.population import NEVER, Population
from careval.synthetic.settings import PILOT_MDGS, SynthSettings

QUALITY_BASE = {
    "q_goals_agreed": 0.80,
    "q_medication_review": 0.70,
    "q_falls_assessment": 0.50,
    "q_carer_identified": 0.40,
    "q_advance_care_plan": 0.15,
    "q_named_coordinator": 0.60,
}
# Attendance per meeting by role: (mean, minimum).
ATTENDANCE = {
    "chair": (1.0, 1),
    "presenting_gp": (4.0, 1),
    "non_presenting_gp": (2.0, 0),
    "consultant": (1.8, 1),
    "nurse": (1.5, 0),
    "social_worker": (0.9, 0),
    "allied_health_professional": (0.8, 0),
    "mental_health": (0.5, 0),
    "other": (1.0, 0),
}
FUND_YEAR_ONE = 450_000.0  # pounds, shared among MDGs by size
FUND_FROM = "2011-10"  # the fund's first year starts here (the seed's calendar)
RUSH = ("2012-01", "2012-04")  # first and last month of the seed's 'tick box' rush of plans
FUND_PURPOSES = (
    "falls prevention service",
    "community diabetes nurse",
    "care navigator",
    "social prescribing",
    "rapid response nursing",
    "memory service outreach",
    "carer support",
)


def mdg_code(index: np.ndarray | int) -> np.ndarray:
    """MDG codes MDG01..MDG09."""
    return np.char.add("MDG", np.char.zfill(np.asarray(index + 1).astype(str), 2))


def care_plans(
    s: SynthSettings, pop: Population, plan_month: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Care-plan rows: person, window month and columns (MDG, author, quality items)."""
    first = s.first_month
    person = np.flatnonzero(plan_month < NEVER).astype(np.int32)
    month = plan_month[person]
    mdg = pop.practice_mdg[pop.practice[person]]
    cols: dict[str, np.ndarray] = {"mdg": mdg_code(mdg)}
    cols["author_role"] = np.asarray(AUTHOR_ROLES)[
        rng.choice(len(AUTHOR_ROLES), size=person.size, p=[0.70, 0.25, 0.04, 0.01])
    ]
    rush = (month >= s.moved(RUSH[0])) & (month <= s.moved(RUSH[1]))
    quality_mdg = rng.uniform(0.8, 1.15, PILOT_MDGS)
    old = first + month - pop.birth_month[person] >= 75 * 12
    for item in CARE_PLAN_QUALITY_ITEMS:
        p = QUALITY_BASE[item] * quality_mdg[mdg] * np.where(rush, 0.85, 1.0)  # 'tick box' rush
        if item == "q_falls_assessment":
            p = p * np.where(old, 1.4, 0.6)
        cols[item] = rng.random(person.size) < np.clip(p, 0, 0.98)
    return person, month, cols


def mdg_meetings(
    s: SynthSettings, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Monthly meetings of each MDG from the launch, with attendance by role."""
    months = np.arange(s.launch, s.n_months)
    mdg = np.repeat(np.arange(PILOT_MDGS), months.size)
    month = np.tile(months, PILOT_MDGS)
    held = rng.random(mdg.size) < 0.92
    mdg, month = mdg[held], month[held]
    ids = np.char.add("M", np.char.zfill(np.arange(1, mdg.size + 1).astype(str), 6))
    meetings = {
        "meeting_id": ids,
        "mdg": mdg_code(mdg),
        "month": month,
        "duration_minutes": rng.choice([90, 105, 120, 135, 150], size=mdg.size),
        "cases_discussed": rng.integers(4, 13, mdg.size),
    }
    roles = np.tile(np.asarray(MDG_ROLES), mdg.size)
    mean = np.tile([ATTENDANCE[r][0] for r in MDG_ROLES], mdg.size)
    low = np.tile([ATTENDANCE[r][1] for r in MDG_ROLES], mdg.size)
    attendance = {
        "meeting_id": np.repeat(ids, len(MDG_ROLES)),
        "role": roles,
        "attendees": np.maximum(rng.poisson(mean), low).astype(np.int64),
    }
    attendance["attendees"][roles == "chair"] = 1
    return meetings, attendance


def innovation_fund(
    s: SynthSettings, pop: Population, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Allocations: about 39% of the first year's fund allocated after a year, unevenly."""
    start = s.moved(FUND_FROM)
    pilot = pop.area == 0
    size = np.bincount(pop.practice_mdg[pop.practice[pilot]], minlength=PILOT_MDGS).astype(float)
    allowance = FUND_YEAR_ONE * size / size.sum()
    share_y1 = rng.beta(2, 2.5, PILOT_MDGS)
    order = np.argsort(pop.practice_engagement)
    share_y1[order[:2]] = 0.0  # two MDGs allocate nothing in the first year
    share_y1[order[-1]] = max(share_y1[order[-1]], 75_000 / allowance[order[-1]] + 0.05)
    share_y1 *= 0.39 * allowance.sum() / (share_y1 * allowance).sum()
    rows: dict[str, list] = {"mdg": [], "month": [], "amount": [], "purpose": [], "spent": []}
    for m in range(PILOT_MDGS):
        for year, share in ((0, share_y1[m]), (1, min(0.9, share_y1[m] + rng.uniform(0.3, 0.6)))):
            total = share * allowance[m]
            k = int(rng.integers(1, 4)) if total > 0 else 0
            parts = rng.dirichlet(np.ones(k)) * total if k else []
            for amount in parts:
                month = start + 12 * year + int(rng.integers(0, 12))
                if month >= s.n_months or month < 0:
                    continue
                rows["mdg"].append(m)
                rows["month"].append(month)
                rows["amount"].append(round(float(amount), 2))
                rows["purpose"].append(FUND_PURPOSES[int(rng.integers(0, len(FUND_PURPOSES)))])
                elapsed = (s.n_months - month) / 12.0
                rows["spent"].append(round(float(amount) * min(1.0, 0.15 + 0.6 * elapsed), 2))
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["mdg"] = mdg_code(out["mdg"].astype(int)) if len(out["mdg"]) else np.asarray([], str)
    out["allocation_id"] = np.char.add(
        "F", np.char.zfill(np.arange(1, len(out["month"]) + 1).astype(str), 4)
    )
    return out
