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
  from the dataset's meetings between November 2011 and April 2012 (moved with the dataset's
  programme, as is the workbook's date of December 2014), with ``attendance.csv``
  copied from its attendance table; utterance counts per participant type follow the seed's
  shares over the ten meetings (consultant 15%, presenting GP 39%, chair 8%, non-presenting GP
  2%, allied health professional 5%, the rest nurses, social workers, mental health and others),
  most utterances coded at the individual level.
- ``qualitative/codebook.qdc`` and ``qualitative/coded_segments.csv``: a REFI-QDA codebook of
  the evaluation's themes and interview, focus-group and survey open-text segments coded by two
  coders who agree on about 85% of segments.

The item banks, survey definitions, transcript phrases and codebook are package data
(``surveys_data/*.toml``, read by :mod:`careval.synthetic.survey_data`). Everything comes from
``np.random.default_rng(seed)`` streams and takes well under a second.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval.synthetic.coding import write_coding
from careval.synthetic.settings import moved_date
from careval.synthetic.survey_data import load, value_labels
from careval.synthetic.toml_out import dumps
from careval.synthetic.transcripts import UTTERANCE_SHARES, write_transcripts

__all__ = ["UTTERANCE_SHARES", "write_surveys"]


def write_surveys(
    out_dir: str | Path,
    seed: int,
    meetings: pd.DataFrame | None = None,
    attendance: pd.DataFrame | None = None,
    *,
    programme_offset: int = 0,
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
    programme_offset : int, default 0
        Months the dataset's programme is moved from the seed's calendar
        (``SynthSettings.programme_offset``): the transcripts' observation window and the
        survey workbook's date move with it.

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
        "early_adopters": _early_adopters(out / "surveys", rng[2], programme_offset),
        "gps": _gps(out / "surveys", rng[3]),
    }
    rows["utterances"] = write_transcripts(tdir, meetings, attendance, rng[4], programme_offset)
    rows["coded_segments"] = write_coding(out / "qualitative", rng[5])
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


def _open_answers(rng: np.random.Generator, n: int, share: float, answers: list[str]) -> list[str]:
    """``n`` open-text cells: about ``share`` of them one of ``answers``, the rest blank."""
    answered = rng.random(n) < share
    return [answers[int(rng.integers(len(answers)))] if a else "" for a in answered]


def _survey(name: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A synthetic survey's definition, its answer targets, and its scaled (closed) questions."""
    data = load(name)
    defn = data["definition"]
    return defn, data["synthetic"], [q for q in defn["questions"] if "scale" in q]


def _write_definition(folder: Path, defn: dict[str, Any]) -> None:
    (folder / f"{defn['name']}.toml").write_text(dumps(defn), encoding="utf-8")


def _professionals(folder: Path, rng: np.random.Generator) -> int:
    import pyreadstat

    defn, synth, items = _survey("professionals")
    groups = defn["groups"]
    prof = rng.permutation(np.repeat([g["code"] for g in groups], synth["responded"]))
    n = prof.size
    data: dict[str, Any] = {
        "respondent_id": [f"PRO{i + 1:03d}" for i in range(n)],
        "profession": prof.astype(float),
    }
    for q in items:
        agree, valid, dk = synth["answers"][q["id"]]
        data[q["id"]] = _likert(rng, n, agree, valid, dk).astype(float)
    data["improve_pilot"] = _open_answers(rng, n, synth["open_share"], synth["open_answers"])
    df = pd.DataFrame(data)
    agree5 = value_labels("agree5")
    labels: dict[str, dict[Any, str]] = {q["id"]: dict(agree5) for q in items}
    labels["profession"] = {float(g["code"]): g["label"] for g in groups}
    pyreadstat.write_sav(
        df,
        str(folder / "professionals.sav"),
        column_labels={q["id"]: q["text"] for q in items},
        variable_value_labels=labels,
        missing_ranges={q["id"]: [9] for q in items},
    )
    _write_definition(folder, defn)
    return n


def _patients(folder: Path, rng: np.random.Generator) -> int:
    defn, synth, items = _survey("patients")
    codes = [g["code"] for g in defn["groups"]]
    plan = rng.permutation(
        np.array(
            [c for c, k in zip(codes, synth["responded"], strict=True) for _ in range(k)],
            dtype=object,
        )
    )
    n = plan.size
    data: dict[str, Any] = {
        "respondent_id": [f"PAT{i + 1:04d}" for i in range(n)],
        "has_care_plan": plan,
    }
    text = {**{k: v for k, v in value_labels("agree5").items() if k != 9}, 9: ""}
    for q in items:
        spec = {g: tuple(v) for g, v in synth["answers"][q["id"]].items()}
        answers = _grouped_likert(rng, plan, spec, dk=synth["dont_know"])
        data[q["id"]] = [text[int(c)] for c in answers]
    data["comments"] = _open_answers(rng, n, synth["open_share"], synth["open_answers"])
    pd.DataFrame(data).to_csv(folder / "patients.csv", index=False)
    _write_definition(folder, defn)
    return n


def _early_adopters(folder: Path, rng: np.random.Generator, programme_offset: int) -> int:
    defn, synth, items = _survey("early_adopters")
    groups = defn["groups"]
    sector = rng.permutation(np.repeat([g["code"] for g in groups], synth["responded"]))
    n = sector.size
    data: dict[str, Any] = {"respondent_id": [f"EA{i + 1:03d}" for i in range(n)], "sector": sector}
    for q in items:
        spec = {g: tuple(v) for g, v in synth["answers"][q["id"]].items()}
        data[q["id"]] = _grouped_likert(rng, sector, spec, dk=synth["dont_know"])
    _write_xlsx(folder / "early_adopters.xlsx", pd.DataFrame(data), programme_offset)
    _write_definition(folder, defn)
    return n


SURVEYED = dt.date(2014, 12, 17)  # the workbook's date (the seed's calendar)


def _write_xlsx(path: Path, df: pd.DataFrame, programme_offset: int) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "responses"
    ws.append(list(df.columns))
    for row in df.itertuples(index=False):
        ws.append([v.item() if hasattr(v, "item") else v for v in row])
    day = moved_date(SURVEYED, programme_offset)
    wb.properties.created = dt.datetime(day.year, day.month, day.day)
    wb.properties.modified = wb.properties.created
    wb.save(path)


def _gps(folder: Path, rng: np.random.Generator) -> int:
    import pyreadstat

    defn, synth, items = _survey("gps")
    groups = defn["groups"]
    responded = synth["responded"]
    ccg = rng.permutation(np.repeat([g["code"] for g in groups], responded))
    n = ccg.size
    weight = {  # practices per responding practice
        g["code"]: g["invited"] / r for g, r in zip(groups, responded, strict=True)
    }
    data: dict[str, Any] = {
        "practice_id": [f"GP{i + 1:03d}" for i in range(n)],
        "ccg": ccg,
        "weight": np.round([weight[int(c)] for c in ccg], 4),
    }
    for q in items:
        agree, valid = synth["answers"][q["id"]]
        if q["scale"] == "yesno":
            codes = rng.permutation(
                np.concatenate(
                    [np.ones(agree, int), np.full(valid - agree, 2), np.full(n - valid, 9)]
                )
            )
        else:
            codes = _likert(rng, n, agree, valid)
        data[q["id"]] = codes.astype(np.int64)
    gp_labels: dict[str, dict[Any, str]] = {"ccg": {g["code"]: g["label"] for g in groups}}
    for q in items:
        gp_labels[q["id"]] = value_labels(q["scale"])
    pyreadstat.write_dta(
        pd.DataFrame(data),
        str(folder / "gps.dta"),
        column_labels={"ccg": "Clinical commissioning group", "weight": "Non-response weight"},
        variable_value_labels=gp_labels,
    )
    _write_definition(folder, defn)
    return n
