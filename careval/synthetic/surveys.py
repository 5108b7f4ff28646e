"""Synthetic surveys, MDG meeting transcripts and coded interview segments for a dataset.

``write_surveys(out_dir, seed, meetings, attendance)`` adds to a dataset directory:

- ``surveys/``: the four surveys of the seed evaluation, each a TOML definition and a responses
  file in a different format: professionals (SPSS .sav with value labels and user-missing code
  9; 51 of 200 invited), patients (CSV with text answers; 405 of 2,000), Early Adopter steering
  committees (XLSX with a finite population; 109 of 182) and GPs (Stata .dta with non-response
  weights; 160 of 410 practices, one GP each). The number agreeing with each item is set so that
  the shares reported in the seed come out (78% of patients favourable to integration, 27.7% of
  professionals unclear on their role, 64% not involved in planning, ...); the seed only shuffles
  who says what.
- ``qualitative/transcripts/``: ten transcribed MDG meetings (eight as text, two as CSV) taken
  from the dataset's meetings between November 2011 and April 2012, with ``attendance.csv``
  copied from its attendance table; utterance counts per participant type follow the seed's
  shares over the ten meetings (consultant 15%, presenting GP 39%, chair 8%, non-presenting GP
  2%, allied health professional 5%, the rest nurses, social workers, mental health and others),
  most utterances coded at the individual level.
- ``qualitative/codebook.qdc`` and ``qualitative/coded_segments.csv``: a REFI-QDA codebook of
  the evaluation's themes and interview, focus-group and survey open-text segments coded by two
  coders who agree on about 85% of segments.

Everything comes from ``np.random.default_rng(seed)`` streams and takes well under a second.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval.data.schema import MDG_ROLES

# Seed shares of MDG utterances; the 31% "rest" is split among the other attendees.
UTTERANCE_SHARES = {
    "presenting_gp": 0.39,
    "consultant": 0.15,
    "nurse": 0.12,
    "chair": 0.08,
    "social_worker": 0.08,
    "other": 0.07,
    "allied_health_professional": 0.05,
    "mental_health": 0.04,
    "non_presenting_gp": 0.02,
}
LEVEL_SHARES = {"individual": 0.80, "collective": 0.15, "system": 0.05}
TRANSCRIBED_MEETINGS = 10
UTTERANCES_PER_MEETING = 240

AGREE5 = {
    1: "Strongly disagree",
    2: "Disagree",
    3: "Neither agree nor disagree",
    4: "Agree",
    5: "Strongly agree",
    8: "Don't know",
    9: "No answer",
}


def write_surveys(
    out_dir: str | Path,
    seed: int,
    meetings: pd.DataFrame | None = None,
    attendance: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Write the synthetic surveys and qualitative inputs into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        The dataset directory being built (``surveys/`` and ``qualitative/`` are created).
    seed : int
        The dataset's random seed.
    meetings, attendance : pandas.DataFrame, optional
        The dataset's ``mdg_meetings`` (``meeting_id``, ``mdg``, ``meeting_date``,
        ``cases_discussed``) and ``mdg_attendance`` (``meeting_id``, ``role``, ``attendees``)
        tables; made up when not given.

    Returns
    -------
    dict
        Rows written per output (responses per survey, utterances, coded segments).
    """
    out = Path(out_dir)
    rng = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 5]).spawn(6)]
    (out / "surveys").mkdir(parents=True, exist_ok=True)
    tdir = out / "qualitative" / "transcripts"
    tdir.mkdir(parents=True, exist_ok=True)
    rows = {
        "professionals": _professionals(out / "surveys", rng[0]),
        "patients": _patients(out / "surveys", rng[1]),
        "early_adopters": _early_adopters(out / "surveys", rng[2]),
        "gps": _gps(out / "surveys", rng[3]),
    }
    rows["utterances"] = _transcripts(tdir, meetings, attendance, rng[4])
    rows["coded_segments"] = _coding(out / "qualitative", rng[5])
    return rows


# ------------------------------------------------------------------------------------ surveys


def _likert(
    rng: np.random.Generator, n: int, agree: int, valid: int, dk: int = 0, neutral: float = 0.15
) -> np.ndarray:
    """``n`` answers: exactly ``agree`` of ``valid`` substantive answers agree (4/5), ``dk``
    don't know (8), the rest no answer (9); neutral about ``neutral`` of the others."""
    others = valid - agree
    n_neutral = min(int(round(neutral * others)), others)
    strong = rng.random(agree) < 0.35
    codes = np.concatenate(
        [
            np.where(strong, 5, 4),
            np.full(n_neutral, 3),
            np.where(rng.random(others - n_neutral) < 0.3, 1, 2),
            np.full(dk, 8),
            np.full(n - valid - dk, 9),
        ]
    )
    return rng.permutation(codes)


def _grouped_likert(
    rng: np.random.Generator, groups: np.ndarray, spec: dict[Any, tuple[int, int]], dk: int = 0
) -> np.ndarray:
    """Per group value: (agree, valid) answers, the rest no answer; ``dk`` don't know overall."""
    out = np.full(groups.size, 9)
    for g, (agree, valid) in spec.items():
        idx = np.flatnonzero(groups == g)
        out[idx] = _likert(rng, idx.size, agree, valid)
    if dk:
        blank = np.flatnonzero(out == 9)
        out[rng.choice(blank, size=min(dk, blank.size), replace=False)] = 8
    return out


def _toml_scale(name: str, labels: dict[int, str] | None, agree: str, extra: str = "") -> str:
    text = f"\n[scales.{name}]\nagree = {agree}\n{extra}"
    if labels:
        text += f"[scales.{name}.labels]\n" + "".join(f'{k} = "{v}"\n' for k, v in labels.items())
    return text


def _toml_groups(groups: list[tuple[Any, str, int, int]]) -> str:
    """``[[groups]]`` tables from (code, label, invited, responded); text codes are quoted."""
    text = ""
    for c, lab, inv, _ in groups:
        code = f'"{c}"' if isinstance(c, str) else c
        text += f'\n[[groups]]\ncode = {code}\nlabel = "{lab}"\ninvited = {inv}\n'
    return text


def _open_answers(rng: np.random.Generator, n: int, share: float, answers: list[str]) -> list[str]:
    """``n`` open-text cells: about ``share`` of them one of ``answers``, the rest blank."""
    answered = rng.random(n) < share
    return [answers[int(rng.integers(len(answers)))] if a else "" for a in answered]


def _questions(items: list[tuple[str, str, str]]) -> str:
    return "".join(
        f'\n[[questions]]\nid = "{qid}"\ntext = "{text}"\n'
        + (f'scale = "{scale}"\n' if scale else 'type = "open"\n')
        for qid, text, scale in items
    )


PROFESSIONAL_ITEMS = [
    # id, text, (agree, valid, don't know)
    (
        "vision_right_direction",
        "The vision of integrated care is a step in the right direction",
        (41, 50, 0),
    ),
    ("role_unclear", "My role and responsibilities within the pilot are unclear", (13, 47, 2)),
    (
        "not_involved_planning",
        "I did not feel involved in planning and developing the pilot",
        (32, 50, 0),
    ),
    (
        "it_access_frustrating",
        "Access to information through the IT tool is frustrating",
        (25, 44, 6),
    ),
    (
        "it_integration_poor",
        "The IT tool is poorly integrated with other clinical systems",
        (28, 50, 0),
    ),
    (
        "mdg_enjoy_contact",
        "I enjoy the face-to-face contact with colleagues at MDG meetings",
        (28, 49, 0),
    ),
    ("mdg_learning", "MDG meetings have enhanced inter-professional learning", (38, 48, 1)),
    ("mdg_knowledge", "MDG meetings have enhanced my clinical knowledge", (38, 50, 0)),
    ("mdg_collaboration", "MDG meetings have enhanced collaborative working", (36, 50, 0)),
    ("care_plan_time", "Care planning takes too much extra time", (29, 50, 0)),
]
PROFESSION_GROUPS = [  # code, label, invited, responded
    (1, "General practitioner", 110, 31),
    (2, "Community or practice nurse", 35, 8),
    (3, "Hospital consultant", 25, 5),
    (4, "Social care professional", 20, 4),
    (5, "Manager or other", 10, 3),
]
OPEN_PRO = [
    "Fewer meetings, with the cases circulated in advance",
    "Better access to hospital letters through the IT tool",
    "Clearer guidance on how the incentive payments are claimed",
    "More time protected for care planning in the practice",
    "Social care colleagues should present cases as well",
    "The IT tool should link to the practice system",
    "Feedback on what happened to the patients we discussed",
    "Involve community teams earlier in the planning",
]


def _professionals(folder: Path, rng: np.random.Generator) -> int:
    import pyreadstat

    prof = rng.permutation(
        np.repeat([g[0] for g in PROFESSION_GROUPS], [g[3] for g in PROFESSION_GROUPS])
    )
    n = prof.size
    data: dict[str, Any] = {
        "respondent_id": [f"PRO{i + 1:03d}" for i in range(n)],
        "profession": prof.astype(float),
    }
    for qid, _, (agree, valid, dk) in PROFESSIONAL_ITEMS:
        data[qid] = _likert(rng, n, agree, valid, dk).astype(float)
    data["improve_pilot"] = _open_answers(rng, n, 0.4, OPEN_PRO)
    df = pd.DataFrame(data)
    labels: dict[str, dict[Any, str]] = {q[0]: dict(AGREE5) for q in PROFESSIONAL_ITEMS}
    labels["profession"] = {float(g[0]): g[1] for g in PROFESSION_GROUPS}
    pyreadstat.write_sav(
        df,
        str(folder / "professionals.sav"),
        column_labels={q[0]: q[1] for q in PROFESSIONAL_ITEMS},
        variable_value_labels=labels,
        missing_ranges={q[0]: [9] for q in PROFESSIONAL_ITEMS},
    )
    toml = (
        'name = "professionals"\ntitle = "Survey of health and social care professionals"\n'
        'data = "professionals.sav"\nrespondent_id = "respondent_id"\ngroup = "profession"\n'
        + _toml_groups(PROFESSION_GROUPS)
        + _toml_scale("agree5", None, "[4, 5]", "disagree = [1, 2]\ndont_know = [8]\n")
        + _questions(
            [(q[0], q[1], "agree5") for q in PROFESSIONAL_ITEMS]
            + [("improve_pilot", "What would most improve the pilot?", "")]
        )
    )
    (folder / "professionals.toml").write_text(toml, encoding="utf-8")
    return n


PATIENT_ITEMS = [
    # id, text, {has plan: (agree, valid), no plan: (agree, valid)}
    (
        "favourable_integration",
        "Better communication between my care providers is a good idea",
        {"Yes": (72, 89), "No or not sure": (240, 311)},
    ),
    (
        "involved_decisions",
        "I feel involved in decisions about my care",
        {"Yes": (70, 89), "No or not sure": (206, 311)},
    ),
    (
        "better_gp_relationship",
        "The pilot helped me build a better relationship with my GP",
        {"Yes": (64, 89), "No or not sure": (184, 311)},
    ),
    (
        "understand_roles",
        "I understand better what different professionals do in my care",
        {"Yes": (58, 89), "No or not sure": (158, 311)},
    ),
    (
        "communication_improved",
        "Professionals communicate better about my care needs",
        {"Yes": (65, 89), "No or not sure": (135, 311)},
    ),
    (
        "fewer_questions",
        "Staff ask me fewer questions about my medical history",
        {"Yes": (69, 89), "No or not sure": (147, 311)},
    ),
    (
        "easier_access",
        "It has become easier to use NHS services",
        {"Yes": (56, 89), "No or not sure": (176, 311)},
    ),
    (
        "less_booking_time",
        "I spend less time booking appointments",
        {"Yes": (45, 89), "No or not sure": (139, 311)},
    ),
    (
        "no_change_in_care",
        "I have not noticed any change in the care I receive",
        {"Yes": (40, 89), "No or not sure": (176, 311)},
    ),
    (
        "cannot_recall_joining",
        "I cannot recall when or whether I joined the pilot",
        {"Yes": (30, 89), "No or not sure": (184, 311)},
    ),
    (
        "involved_care_plan_design",
        "I was involved in designing my care plan as I wanted",
        {"Yes": (58, 89)},
    ),
    ("understand_care_planning", "I understand how care planning works", {"Yes": (70, 89)}),
]
OPEN_PATIENT = [
    "My nurse now knows what the hospital said",
    "I did not know I was part of anything new",
    "It would help to have one person to call",
    "The practice was very helpful with my plan",
    "Still waiting a long time for appointments",
    "Nothing has changed for me",
]


def _patients(folder: Path, rng: np.random.Generator) -> int:
    plan = rng.permutation(np.array(["Yes"] * 89 + ["No or not sure"] * 316, dtype=object))
    n = plan.size
    data: dict[str, Any] = {
        "respondent_id": [f"PAT{i + 1:04d}" for i in range(n)],
        "has_care_plan": plan,
    }
    text = {**{k: v for k, v in AGREE5.items() if k != 9}, 9: ""}
    for qid, _, spec in PATIENT_ITEMS:
        codes = _grouped_likert(rng, plan, spec, dk=2)
        data[qid] = [text[int(c)] for c in codes]
    data["comments"] = _open_answers(rng, n, 0.1, OPEN_PATIENT)
    pd.DataFrame(data).to_csv(folder / "patients.csv", index=False)
    labels = {k: v for k, v in AGREE5.items() if k != 9}
    toml = (
        'name = "patients"\ntitle = "Survey of patients enrolled in the pilot"\n'
        'data = "patients.csv"\nrespondent_id = "respondent_id"\ngroup = "has_care_plan"\n'
        "invited = 2000\n"
        '\n[[groups]]\ncode = "Yes"\nlabel = "Has a care plan"\n'
        '\n[[groups]]\ncode = "No or not sure"\nlabel = "No care plan, or not sure"\n'
        + _toml_scale("agree5", labels, "[4, 5]", "disagree = [1, 2]\ndont_know = [8]\n")
        + _questions(
            [(q[0], q[1], "agree5") for q in PATIENT_ITEMS]
            + [("comments", "Any other comments about the pilot", "")]
        )
    )
    (folder / "patients.toml").write_text(toml, encoding="utf-8")
    return n


EA_GROUPS = [  # code, label, invited, responded
    ("health", "Health (NHS)", 80, 52),
    ("social_care", "Local authority social care", 40, 25),
    ("voluntary", "Voluntary sector", 30, 17),
    ("lay", "Patient and lay representatives", 32, 15),
]
EA_ITEMS = [
    (
        "progress_on_track",
        "Our early adopter is making good progress",
        {"health": (31, 50), "social_care": (13, 24), "voluntary": (8, 16), "lay": (6, 14)},
    ),
    (
        "toolkit_useful",
        "The Integrated Care Toolkit is useful",
        {"health": (35, 50), "social_care": (14, 24), "voluntary": (9, 16), "lay": (7, 14)},
    ),
    (
        "design_inclusive",
        "The toolkit's design process was inclusive",
        {"health": (27, 50), "social_care": (10, 24), "voluntary": (6, 16), "lay": (6, 14)},
    ),
    (
        "social_care_involved",
        "Social care is fully involved in our early adopter",
        {"health": (29, 50), "social_care": (5, 24), "voluntary": (5, 16), "lay": (5, 14)},
    ),
    (
        "patients_involved",
        "Patients and carers are involved in our early adopter",
        {"health": (24, 50), "social_care": (10, 24), "voluntary": (6, 16), "lay": (4, 14)},
    ),
]


def _early_adopters(folder: Path, rng: np.random.Generator) -> int:
    sector = rng.permutation(np.repeat([g[0] for g in EA_GROUPS], [g[3] for g in EA_GROUPS]))
    n = sector.size
    data: dict[str, Any] = {"respondent_id": [f"EA{i + 1:03d}" for i in range(n)], "sector": sector}
    for qid, _, spec in EA_ITEMS:
        data[qid] = _grouped_likert(rng, sector, spec, dk=3)
    _write_xlsx(folder / "early_adopters.xlsx", pd.DataFrame(data))
    toml = (
        'name = "early_adopters"\ntitle = "Survey of Early Adopter steering committee members"\n'
        'data = "early_adopters.xlsx"\nrespondent_id = "respondent_id"\ngroup = "sector"\n'
        "population = 182\n"
        + _toml_groups(EA_GROUPS)
        + _toml_scale(
            "agree5", AGREE5, "[4, 5]", "disagree = [1, 2]\ndont_know = [8]\nmissing = [9]\n"
        )
        + _questions([(q[0], q[1], "agree5") for q in EA_ITEMS])
    )
    (folder / "early_adopters.toml").write_text(toml, encoding="utf-8")
    return n


def _write_xlsx(path: Path, df: pd.DataFrame) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "responses"
    ws.append(list(df.columns))
    for row in df.itertuples(index=False):
        ws.append([v.item() if hasattr(v, "item") else v for v in row])
    wb.properties.created = dt.datetime(2014, 12, 17)
    wb.properties.modified = dt.datetime(2014, 12, 17)
    wb.save(path)


GP_CCGS = [  # code, label, practices invited, responded
    (1, "Brent", 66, 24),
    (2, "Central London", 36, 15),
    (3, "Ealing", 79, 30),
    (4, "Hammersmith and Fulham", 31, 13),
    (5, "Harrow", 34, 13),
    (6, "Hillingdon", 48, 19),
    (7, "Hounslow", 54, 20),
    (8, "West London", 62, 26),
]
GP_ITEMS = [
    (
        "aware_wsic",
        "I am aware of the Whole Systems Integrated Care programme",
        "yesno",
        (104, 158),
    ),
    (
        "good_relationship_social_care",
        "My practice has a good working relationship with social care",
        "agree5",
        (66, 155),
    ),
    (
        "good_relationship_hospital",
        "My practice has a good working relationship with the local hospital",
        "agree5",
        (88, 156),
    ),
    ("integration_priority", "Integrated care should be a priority locally", "agree5", (131, 157)),
    (
        "change_needs_funding",
        "Change locally needs funding moved out of hospitals",
        "agree5",
        (117, 154),
    ),
]


def _gps(folder: Path, rng: np.random.Generator) -> int:
    import pyreadstat

    ccg = rng.permutation(np.repeat([g[0] for g in GP_CCGS], [g[3] for g in GP_CCGS]))
    n = ccg.size
    weight = {g[0]: g[2] / g[3] for g in GP_CCGS}  # practices per responding practice
    data: dict[str, Any] = {
        "practice_id": [f"GP{i + 1:03d}" for i in range(n)],
        "ccg": ccg,
        "weight": np.round([weight[int(c)] for c in ccg], 4),
    }
    for qid, _, scale, (agree, valid) in GP_ITEMS:
        if scale == "yesno":
            codes = rng.permutation(
                np.concatenate(
                    [np.ones(agree, int), np.full(valid - agree, 2), np.full(n - valid, 9)]
                )
            )
        else:
            codes = _likert(rng, n, agree, valid)
        data[qid] = codes.astype(np.int64)
    gp_labels: dict[str, dict[Any, str]] = {"ccg": {g[0]: g[1] for g in GP_CCGS}}
    for q in GP_ITEMS:
        gp_labels[q[0]] = {1: "Yes", 2: "No", 9: "No answer"} if q[2] == "yesno" else AGREE5
    pyreadstat.write_dta(
        pd.DataFrame(data),
        str(folder / "gps.dta"),
        column_labels={"ccg": "Clinical commissioning group", "weight": "Non-response weight"},
        variable_value_labels=gp_labels,
    )
    toml = (
        'name = "gps"\ntitle = "Survey of GPs in North West London (one per practice)"\n'
        'data = "gps.dta"\nrespondent_id = "practice_id"\ngroup = "ccg"\nweight = "weight"\n'
        "population = 410\n"
        + _toml_groups(GP_CCGS)
        + _toml_scale(
            "agree5", None, "[4, 5]", "disagree = [1, 2]\ndont_know = [8]\nmissing = [9]\n"
        )
        + _toml_scale("yesno", None, "[1]", "missing = [9]\n")
        + _questions([(q[0], q[1], q[2]) for q in GP_ITEMS])
    )
    (folder / "gps.toml").write_text(toml, encoding="utf-8")
    return n


# -------------------------------------------------------------------------------- transcripts

_PHRASES = {
    "individual": [
        "she was admitted twice last month with a chest infection",
        "his sugars have been running high since the steroids",
        "the daughter is worried about falls at night",
        "could we review the diuretic dose before the weekend",
        "I would suggest a community matron visit this week",
        "the memory clinic letter is still outstanding",
        "he lives alone and the care package finishes on Friday",
        "a medication review might reduce the dizziness",
        "we should check the kidney function again",
        "she would prefer to stay at home if possible",
    ],
    "collective": [
        "several of our patients on this list have the same problem",
        "we keep seeing people discharged without a follow-up plan",
        "perhaps the practices could share one falls pathway",
        "most of the diabetic patients we discussed miss their reviews",
    ],
    "system": [
        "the innovation fund could pay for a rapid response service",
        "the hospital and social services need one shared record",
        "we should ask the board how the incentives will work",
    ],
    "procedural": [
        "thank you, shall we move to the next patient",
        "welcome everyone, we have eight cases today",
        "can we keep this one brief please",
        "let us record the actions and move on",
    ],
}


def _transcripts(
    folder: Path,
    meetings: pd.DataFrame | None,
    attendance: pd.DataFrame | None,
    rng: np.random.Generator,
) -> int:
    meets, att = _pick_meetings(meetings, attendance, rng)
    ids = list(meets["meeting_id"])
    att = att[att["meeting_id"].isin(ids)]
    att.to_csv(folder / "attendance.csv", index=False, columns=["meeting_id", "role", "attendees"])
    total = TRANSCRIBED_MEETINGS * UTTERANCES_PER_MEETING
    counts = pd.DataFrame(0, index=ids, columns=list(UTTERANCE_SHARES))
    for role, share in UTTERANCE_SHARES.items():
        people = (
            att[att["role"] == role]
            .set_index("meeting_id")["attendees"]
            .reindex(ids, fill_value=0)
            .to_numpy(float)
        )
        target = int(round(share * total))
        if people.sum() == 0:
            continue
        counts[role] = _split(target, people)
    n_written = 0
    for k, m in enumerate(meets.itertuples()):
        seq = _order(rng, counts.loc[m.meeting_id], int(m.cases_discussed))
        lines = []
        for role in seq:
            level = (
                ""
                if role == "chair"
                else rng.choice(list(LEVEL_SHARES), p=list(LEVEL_SHARES.values()))
            )
            pool = _PHRASES["procedural" if role == "chair" else level]
            k_phr = 1 + int(
                rng.random() < (0.6 if role in ("presenting_gp", "consultant") else 0.25)
            )
            text = "; ".join(pool[int(i)] for i in rng.choice(len(pool), size=k_phr)) + "."
            lines.append((role, level, text[0].upper() + text[1:]))
        n_written += len(lines)
        if k >= TRANSCRIBED_MEETINGS - 2:
            pd.DataFrame(lines, columns=["role", "level", "text"]).to_csv(
                folder / f"{m.meeting_id}.csv", index=False
            )
            continue
        head = [
            f"# meeting: {m.meeting_id}",
            f"# mdg: {m.mdg}",
            f"# date: {m.meeting_date}",
            "# transcribed MDG case discussion (synthetic)",
        ]
        body = [
            f"{role.upper()}{' [' + level + ']' if level else ''}: {text}"
            for role, level, text in lines
        ]
        (folder / f"{m.meeting_id}.txt").write_text("\n".join(head + body) + "\n", encoding="utf-8")
    return n_written


def _split(target: int, weights: np.ndarray) -> np.ndarray:
    """``target`` split in proportion to ``weights`` (largest remainders)."""
    raw = target * weights / weights.sum()
    out = np.floor(raw).astype(int)
    out[np.argsort(-(raw - out), kind="stable")[: target - out.sum()]] += 1
    return out


def _order(rng: np.random.Generator, counts: pd.Series, cases: int) -> list[str]:
    """A speaking order: the chair opens each case, the rest shuffled within cases."""
    others = [r for r in counts.index if r != "chair" for _ in range(int(counts[r]))]
    others = list(rng.permutation(np.array(others, dtype=object)))
    chair = int(counts.get("chair", 0))
    blocks = max(1, min(cases, chair or 1))
    seq: list[str] = []
    bounds = np.linspace(0, len(others), blocks + 1).astype(int)
    chairs = _split(chair, np.ones(blocks)) if chair else np.zeros(blocks, int)
    for b in range(blocks):
        seq.extend(["chair"] * int(chairs[b]))
        seq.extend(others[bounds[b] : bounds[b + 1]])
    return seq


def _pick_meetings(
    meetings: pd.DataFrame | None, attendance: pd.DataFrame | None, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten meetings observed between November 2011 and April 2012, every role attending one."""
    if meetings is None or attendance is None or meetings.empty:
        ids = [f"M9{i:05d}" for i in range(1, TRANSCRIBED_MEETINGS + 1)]
        start = dt.date(2011, 11, 8)
        meetings = pd.DataFrame(
            {
                "meeting_id": ids,
                "mdg": [f"MDG{i % 9 + 1:02d}" for i in range(len(ids))],
                "meeting_date": [start + dt.timedelta(days=14 * i) for i in range(len(ids))],
                "cases_discussed": rng.integers(5, 10, len(ids)),
            }
        )
        mean = {
            "chair": 1,
            "presenting_gp": 4,
            "non_presenting_gp": 2,
            "consultant": 2,
            "nurse": 2,
            "social_worker": 1,
            "allied_health_professional": 1,
            "mental_health": 1,
            "other": 1,
        }
        attendance = pd.DataFrame(
            [(i, r, mean[r]) for i in ids for r in MDG_ROLES],
            columns=["meeting_id", "role", "attendees"],
        )
    dates = pd.to_datetime(meetings["meeting_date"])
    window = meetings[(dates >= "2011-11-01") & (dates < "2012-05-01")]
    if len(window) < TRANSCRIBED_MEETINGS:
        window = meetings
    order = list(rng.permutation(window["meeting_id"].to_numpy()))
    att = attendance[attendance["attendees"] > 0]
    roles_of = att.groupby("meeting_id")["role"].agg(set).to_dict()
    chosen: list[str] = []
    covered: set[str] = set()
    for mid in order:  # greedy: first meetings that add a role nobody chosen has
        if len(chosen) >= TRANSCRIBED_MEETINGS:
            break
        if roles_of.get(mid, set()) - covered:
            chosen.append(mid)
            covered |= roles_of.get(mid, set())
    for mid in order:
        if len(chosen) >= TRANSCRIBED_MEETINGS:
            break
        if mid not in chosen:
            chosen.append(mid)
    picked = window.set_index("meeting_id").loc[chosen].reset_index()
    picked = picked.sort_values(["meeting_date", "meeting_id"]).reset_index(drop=True)
    return picked, attendance[attendance["meeting_id"].isin(chosen)].copy()


# --------------------------------------------------------------------------------- the coding

CODEBOOK = [  # name, parent, description
    ("Governance and accountability", "", "How the pilot was led and who answers for what"),
    (
        "Role clarity",
        "Governance and accountability",
        "Whether people know their role and responsibilities in the pilot",
    ),
    ("Escalation", "Governance and accountability", "Which issues go to the board, and how"),
    (
        "Financial incentives",
        "Governance and accountability",
        "Understanding of payments and how they are claimed",
    ),
    ("Information technology", "", "The IT tool and the sharing of records"),
    ("Access to information", "Information technology", "Getting the data needed from the tool"),
    (
        "Integration with clinical systems",
        "Information technology",
        "Links between the tool and practice or hospital systems",
    ),
    ("Multidisciplinary groups", "", "The MDG case-review meetings"),
    (
        "Inter-professional learning",
        "Multidisciplinary groups",
        "Learning from colleagues in other organisations",
    ),
    ("Time commitment", "Multidisciplinary groups", "The number and length of meetings"),
    (
        "Who speaks",
        "Multidisciplinary groups",
        "Discussion dominated by presenting GPs and consultants",
    ),
    ("Care planning", "", "Making and using care plans"),
    ("Tick-box exercise", "Care planning", "Plans made to hit a number rather than for use"),
    ("Patient involvement", "Care planning", "Patients taking part in planning their care"),
]
_SEGMENT_TEXT = {
    "Role clarity": [
        "Nobody told us who was meant to follow up the actions",
        "I am still not sure what my part in all this is",
    ],
    "Escalation": [
        "We did not know which problems should go up to the board",
        "Issues were raised but never came back down to us",
    ],
    "Financial incentives": [
        "The way the money comes back to the practice is a mystery",
        "Claiming the payment took longer than the work itself",
    ],
    "Access to information": [
        "Half the time the tool would not show the latest results",
        "Getting into the record needs three passwords",
    ],
    "Integration with clinical systems": [
        "It does not talk to our practice system at all",
        "We type everything twice, once in each system",
    ],
    "Inter-professional learning": [
        "I learnt a lot from the geriatrician about medication",
        "Hearing the social worker's view changed my plan",
    ],
    "Time commitment": [
        "Two hours a month away from surgery is a lot for a single-hander",
        "The meetings run over and I lose my afternoon list",
    ],
    "Who speaks": [
        "It is mostly the presenting GP and the consultant talking",
        "The nurses hardly get a word in",
    ],
    "Tick-box exercise": [
        "We rushed the plans in March to get the numbers up",
        "Some plans were done just to be counted",
    ],
    "Patient involvement": [
        "She helped write her own goals for the plan",
        "Most patients did not know they had a plan",
    ],
}
_SEGMENT_GROUPS = ["Senior leader", "General practitioner", "Nurse", "Social care", "Manager"]


def _coding(folder: Path, rng: np.random.Generator) -> int:
    from careval.qualitative.coding import Code, Codebook
    from careval.qualitative.refi import codebook_xml

    book = Codebook([Code(n, p, d) for n, p, d in CODEBOOK])
    (folder / "codebook.qdc").write_bytes(codebook_xml(book, origin="careval synth", check=False))
    leaves = list(_SEGMENT_TEXT)
    docs = [f"interview-{i:02d}" for i in range(1, 13)] + [f"focus-group-{i}" for i in range(1, 5)]
    rows = []
    for k in range(150):
        doc = docs[int(rng.integers(len(docs)))]
        code = leaves[int(rng.integers(len(leaves)))]
        text = _SEGMENT_TEXT[code][int(rng.integers(2))]
        group = _SEGMENT_GROUPS[int(rng.integers(len(_SEGMENT_GROUPS)))]
        if doc.startswith("interview"):
            case = f"{doc}-participant"
        else:
            case = f"{doc}-P{int(rng.integers(1, 7))}"
        other = code if rng.random() < 0.85 else leaves[int(rng.integers(len(leaves)))]
        sid = f"S{k + 1:03d}"
        rows.append((sid, doc, case, group, "coder_a", code, text))
        rows.append((sid, doc, case, group, "coder_b", other, text))
    pd.DataFrame(
        rows, columns=["segment_id", "document", "case", "group", "coder", "code", "text"]
    ).to_csv(folder / "coded_segments.csv", index=False)
    return len(rows)
