"""Qualitative analysis: MDG transcripts, thematic coding, agreement and REFI-QDA exchange.

References: scipy's ``chisquare`` for the goodness-of-fit tests; scikit-learn's
``cohen_kappa_score`` and the worked example of Cohen's kappa with 50 items (20 yes-yes, 5 yes-no,
10 no-yes, 15 no-no: kappa 0.4; e.g. Wikipedia "Cohen's kappa"); Krippendorff (2011), "Computing
Krippendorff's alpha-reliability", section A, binary data from two observers on ten units
(alpha = 0.095); the REFI-QDA 1.0 Project schema via xmlschema; and a project exported by f4
2025.2.9 (tests/fixtures/qda).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xmlschema
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.qualitative.coding import (
    Code,
    Codebook,
    agreement_table,
    analyse_coding,
    read_codebook_csv,
    read_segments_csv,
)
from careval.qualitative.evaluate import QualitativeResult, evaluate_qualitative
from careval.qualitative.refi import (
    codebook_xml,
    project_xml,
    read_codebook,
    read_project,
    write_codebook,
    write_project,
)
from careval.qualitative.refi_schema import CODEBOOK_XSD, PROJECT_XSD
from careval.qualitative.transcripts import (
    analyse_transcripts,
    read_attendance,
    read_transcript,
    transcripts_from_paths,
)
from careval.report.publish.qualitative import publish_qualitative, publish_transcripts
from careval.report.publish.rules import protect_count
from careval.report.sections.qualitative import section as qualitative_section
from careval.report.sections.qualitative import utterance_chart_svg
from careval.synthetic.surveys import UTTERANCE_SHARES, write_surveys

DC = DisclosureSettings()  # the default disclosure rules

Cli = Callable[..., CompletedProcess[str]]  # the ``cli`` fixture (conftest.py)
FIXTURES = Path(__file__).parent / "fixtures" / "qda"
F4_CODE = "206750b8-d3c8-4bc6-a922-5c8c1475f36f"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qual-synth")
    write_surveys(out, seed=11)
    return out


TRANSCRIPT = """# meeting: M1
# mdg: MDG03
CHAIR: Welcome, first patient please.
Presenting GP [individual]: Mrs A was admitted twice
   last month with a chest infection.
CONSULTANT [individual]: I would review her inhaler technique.
presenting_gp [individual]: We could ask the community matron.
NURSE [collective]: Several of our patients have the same problem.
CHAIR: Thank you. Next case.
PRESENTING-GP [system]: The fund could pay for a rapid response team.
"""


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


# --------------------------------------------------------------------------------- transcripts


def test_transcript_lines_roles_levels_and_words(tmp_path: Path) -> None:
    t = read_transcript(write(tmp_path, "m1.txt", TRANSCRIPT))
    u = t.utterances
    assert t.meeting == "M1" and t.mdg == "MDG03"
    assert list(u["role"]) == [
        "chair",
        "presenting_gp",
        "consultant",
        "presenting_gp",
        "nurse",
        "chair",
        "presenting_gp",
    ]
    assert list(u["level"]) == [
        "",
        "individual",
        "individual",
        "individual",
        "collective",
        "",
        "system",
    ]
    assert u["text"].iloc[1] == "Mrs A was admitted twice last month with a chest infection."
    assert list(u["words"]) == [4, 11, 6, 6, 8, 4, 9]


def test_counts_and_chi_square_against_equal_shares_match_scipy(tmp_path: Path) -> None:
    write(tmp_path, "m1.txt", TRANSCRIPT)
    pd.DataFrame(
        {
            "role": ["chair", "consultant", "presenting_gp", "presenting_gp", "social worker"],
            "text": ["Next.", "Stop the statin", "Agreed", "Will do", "I can visit on Monday"],
        }
    ).to_csv(tmp_path / "m2.csv", index=False)
    r = transcripts_from_paths([tmp_path])
    # Independent count: role prefixes of the lines, by hand.
    expected = {"presenting_gp": 5, "chair": 3, "consultant": 2, "nurse": 1, "social_worker": 1}
    got = dict(zip(r.overall["role"], r.overall["utterances"], strict=True))
    assert got == expected
    test = r.tests[0]
    assert test["against"] == "equal shares"
    ref = stats.chisquare([expected[k] for k in sorted(expected)])  # equal expected by default
    assert test["statistic"] == pytest.approx(ref.statistic) and test["dof"] == 4
    assert test["p_value"] == pytest.approx(ref.pvalue)
    per = r.by_meeting.set_index(["meeting", "role"])
    assert per.loc[("m2", "presenting_gp"), "share_utterances"] == pytest.approx(2 / 5)
    assert per.loc[("M1", "presenting_gp"), "words"] == 11 + 6 + 9


def test_chi_square_against_attendance_matches_scipy(tmp_path: Path) -> None:
    write(tmp_path, "m1.txt", TRANSCRIPT)
    att = pd.DataFrame(
        {
            "meeting_id": ["M1"] * 4,
            "role": ["chair", "presenting_gp", "consultant", "nurse"],
            "attendees": [1, 3, 2, 4],
        }
    )
    att.to_csv(tmp_path / "att.csv", index=False)
    r = transcripts_from_paths([tmp_path / "m1.txt"], tmp_path / "att.csv")
    test = next(t for t in r.tests if t["against"] == "attendance")
    obs = {"chair": 2, "consultant": 1, "nurse": 1, "presenting_gp": 3}
    people = {"chair": 1, "consultant": 2, "nurse": 4, "presenting_gp": 3}
    roles = sorted(people)
    f_obs = np.array([obs[k] for k in roles], float)
    f_exp = np.array([people[k] for k in roles], float) / 10 * f_obs.sum()
    ref = stats.chisquare(f_obs, f_exp)
    assert test["roles"] == roles
    assert test["statistic"] == pytest.approx(ref.statistic)
    assert test["p_value"] == pytest.approx(ref.pvalue)
    shares = dict(zip(r.overall["role"], r.overall["share_attendees"], strict=True))
    assert shares["nurse"] == pytest.approx(0.4)


def test_turn_matrix_counts_who_follows_whom_within_meetings(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "A: one\nB: two\nA: three\nC: four\n")
    write(tmp_path, "b.txt", "C: five\nA: six\n")
    r = transcripts_from_paths([tmp_path / "a.txt", tmp_path / "b.txt"], roles=("a", "b", "c"))
    t = r.turns
    assert t.loc["a", "b"] == 1 and t.loc["b", "a"] == 1 and t.loc["a", "c"] == 1
    assert t.loc["c", "a"] == 1  # in meeting b; no turn from a's last speaker to b's first
    assert int(t.to_numpy().sum()) == (4 - 1) + (2 - 1)


def test_levels_are_shares_of_coded_utterances(tmp_path: Path) -> None:
    r = analyse_transcripts([read_transcript(write(tmp_path, "m1.txt", TRANSCRIPT))])
    lv = r.levels.set_index("level")
    assert list(lv["utterances"]) == [3, 1, 1]
    assert lv.loc["individual", "share_utterances"] == pytest.approx(3 / 5)
    assert any("2 of 7 utterances carry no level code" in w for w in r.warnings)


def test_protected_transcripts_withhold_shares_of_small_counts_and_protect_warnings(
    tmp_path: Path,
) -> None:
    text = (
        "# meeting: M1\n"
        + "CHAIR [individual]: ok\n" * 20
        + "PRESENTING GP [collective]: yes indeed\n" * 17
        + "NURSE: fine\n" * 3
    )
    write(tmp_path, "m1.txt", text)
    write(tmp_path, "m2.txt", "# meeting: M2\nCHAIR [system]: hello\n")
    pd.DataFrame({"meeting_id": ["M1"], "role": ["chair"], "attendees": [12]}).to_csv(
        tmp_path / "att.csv", index=False
    )
    r = transcripts_from_paths([tmp_path / "m1.txt", tmp_path / "m2.txt"], tmp_path / "att.csv")
    assert any("3 of 41 utterances carry no level code" in w for w in r.warnings)
    assert any(w.startswith("1 meeting(s) without attendance") for w in r.warnings)
    raw = {x["role"]: x for x in r.to_dict()["overall"]}
    assert raw["nurse"]["share_utterances"] == pytest.approx(3 / 41, abs=1e-4)
    d = publish_transcripts(r, DC).to_dict()
    nurse = {x["role"]: x for x in d["overall"]}["nurse"]
    # 3 of 41 utterances: the count is suppressed, so its share (x 41) is withheld too.
    assert nurse["utterances"] == "*" and nurse["words"] == "*"
    assert nurse["share_utterances"] is None and nurse["share_words"] is None
    for rec in d["overall"] + d["by_meeting"] + d["levels"]["levels"]:
        for k in ("utterances", "words"):
            if rec[k] == "*":
                assert rec[f"share_{k}"] is None, rec
    assert d["n_meetings"] == "*"  # 2 meetings
    assert (
        "* of 40 utterances carry no level code; level shares are of coded utterances"
        in (d["warnings"])
    )
    assert any(w.startswith("* meeting(s) without attendance") for w in d["warnings"])
    page = qualitative_section(publish_qualitative(QualitativeResult(transcripts=r), DC)).html
    assert "3 of 41" not in page and "* of 40 utterances" in page
    assert "<span class='n'>*</span> transcribed meetings" in page


# (role line, times) per meeting; words per line: 4, 5, 3, 1 in M1 and 3, 4, 3 in M2.
HAND_MEETINGS = {
    "M1": [
        ("CHAIR [individual]: shall we start now", 23),
        ("PRESENTING GP [collective]: the practice list is long", 41),
        ("CONSULTANT [system]: the hospital pathway", 18),
        ("NURSE: agreed", 12),
    ],
    "M2": [
        ("CHAIR [individual]: next case please", 18),
        ("PRESENTING GP [individual]: she was admitted twice", 28),
        ("SOCIAL WORKER: I can visit", 11),
    ],
}
HAND_ATTENDANCE = [  # people attending: chair 12, presenting GP 23, consultant 9, nurse 7, SW 8
    ("M1", "chair", 1),
    ("M1", "presenting_gp", 6),
    ("M1", "consultant", 9),
    ("M1", "nurse", 7),
    ("M2", "chair", 11),
    ("M2", "presenting_gp", 17),
    ("M2", "social_worker", 8),
]


def hand_transcripts(tmp: Path) -> Any:
    """Two meetings written out from :data:`HAND_MEETINGS`, with attendance."""
    for meeting, lines in HAND_MEETINGS.items():
        text = f"# meeting: {meeting}\n" + "".join((line + "\n") * n for line, n in lines)
        write(tmp, f"{meeting.lower()}.txt", text)
    pd.DataFrame(HAND_ATTENDANCE, columns=["meeting_id", "role", "attendees"]).to_csv(
        tmp / "attendance.csv", index=False
    )
    return transcripts_from_paths([tmp])


def hand_totals() -> dict[str, Any]:
    """Utterances and words per role, meeting and level, counted from HAND_MEETINGS by hand."""
    by_role: dict[str, dict[str, int]] = {}
    by_meeting: dict[tuple[str, str], dict[str, int]] = {}
    by_level: dict[str, dict[str, int]] = {}
    for meeting, lines in HAND_MEETINGS.items():
        for line, n in lines:
            head, text = line.split(":", 1)
            level = head.split("[")[1].rstrip("]") if "[" in head else ""
            role = head.split("[")[0].strip().lower().replace(" ", "_")
            words = len(text.split()) * n
            for key, table in ((role, by_role), ((meeting, role), by_meeting)):
                cell = table.setdefault(key, {"utterances": 0, "words": 0})  # type: ignore[attr-defined]
                cell["utterances"] += n
                cell["words"] += words
            if level:
                cell = by_level.setdefault(level, {"utterances": 0, "words": 0})
                cell["utterances"] += n
                cell["words"] += words
    people: dict[str, int] = {}
    for _, role, k in HAND_ATTENDANCE:
        people[role] = people.get(role, 0) + k
    return {"role": by_role, "meeting": by_meeting, "level": by_level, "people": people}


def test_protected_transcript_shares_are_of_the_published_counts(tmp_path: Path) -> None:
    r = hand_transcripts(tmp_path)
    raw = hand_totals()
    pc = partial(protect_count, d=DC)
    d = json.loads(json.dumps(publish_transcripts(r, DC).to_dict()))
    n_utt = sum(c["utterances"] for c in raw["role"].values())
    n_words = sum(c["words"] for c in raw["role"].values())
    n_people = sum(raw["people"].values())
    assert (n_utt, n_words, n_people) == (151, 562, 59)
    assert d["n_utterances"] == pc(151) == 150
    checked: list[tuple[str, Any, Any, Any]] = []
    for rec in d["overall"]:
        true = raw["role"][rec["role"]]
        assert (rec["utterances"], rec["words"]) == (pc(true["utterances"]), pc(true["words"]))
        checked.append(("utterances", rec["share_utterances"], rec["utterances"], pc(n_utt)))
        checked.append(("words", rec["share_words"], rec["words"], pc(n_words)))
        assert rec["attendees"] == pc(raw["people"][rec["role"]])
        if rec["attendees"] == "*":  # the nurses' 7: withheld, as before
            assert rec["share_attendees"] is None
        else:
            checked.append(("attendees", rec["share_attendees"], rec["attendees"], pc(n_people)))
    meetings = {m["meeting"]: m for m in d["meetings"]}
    for rec in d["by_meeting"]:
        true = raw["meeting"][(rec["meeting"], rec["role"])]
        assert (rec["utterances"], rec["words"]) == (pc(true["utterances"]), pc(true["words"]))
        m = meetings[rec["meeting"]]
        checked.append(("by meeting", rec["share_utterances"], rec["utterances"], m["utterances"]))
        checked.append(("by meeting", rec["share_words"], rec["words"], m["words"]))
    lv = d["levels"]
    coded_words = sum(c["words"] for c in raw["level"].values())
    for rec in lv["levels"]:
        base = lv["n_coded_utterances"]
        checked.append(("level", rec["share_utterances"], rec["utterances"], base))
        checked.append(("level", rec["share_words"], rec["words"], pc(coded_words)))
    share_coded = lv["share_of_utterances_coded"]
    checked.append(("coded", share_coded, lv["n_coded_utterances"], d["n_utterances"]))
    assert len(checked) == 5 * 2 + 4 + 7 * 2 + 3 * 2 + 1
    for where, share, count, base in checked:
        assert isinstance(count, int) and isinstance(base, int), where
        assert share == round(count / base, 4), (where, share, count, base)
        implied = share * base
        assert abs(implied - round(implied)) < 0.05 and round(implied) % 5 == 0, where
    # The goodness-of-fit tests' expected counts are of the published total, not the true one.
    for t in d["tests"]:
        assert t["n"] == pc(sum(raw["role"][r]["utterances"] for r in t["roles"]))
        assert sum(t["expected"]) == pytest.approx(t["n"], abs=0.01)
        if t["against"] == "equal shares":
            assert t["expected"] == [round(150 / len(t["roles"]), 3)] * len(t["roles"])
    assert r.tests[0]["expected"][0] == round(151 / len(r.tests[0]["roles"]), 3)  # unprotected
    # The gap closed: the chair's 41 of 151 utterances is published as 40 of 150.
    chair = next(rec for rec in d["overall"] if rec["role"] == "chair")
    assert chair["share_utterances"] == round(40 / 150, 4) != round(41 / 151, 4)
    # The page and the chart show the published shares.
    page = qualitative_section(publish_qualitative(QualitativeResult(transcripts=r), DC)).html
    assert f"{100 * 40 / 150:.1f}%" in page and f"{100 * 41 / 151:.1f}%" not in page
    svg = utterance_chart_svg(publish_transcripts(r, DC))
    assert f">{100 * 70 / 150:.0f}%<" in svg and f">{100 * 69 / 151:.0f}%<" not in svg
    assert f">{100 * 25 / 60:.0f}%<" in svg and f">{100 * 23 / 59:.0f}%<" not in svg


def test_unprotected_transcript_shares_are_the_raw_ones(tmp_path: Path) -> None:
    r = hand_transcripts(tmp_path)
    raw = hand_totals()
    d = json.loads(json.dumps(r.to_dict()))
    for rec in d["overall"]:
        true = raw["role"][rec["role"]]
        assert (rec["utterances"], rec["words"]) == (true["utterances"], true["words"])
        assert rec["share_utterances"] == round(true["utterances"] / 151, 4)
        assert rec["share_words"] == round(true["words"] / 562, 4)
        assert rec["attendees"] == raw["people"][rec["role"]]
        assert rec["share_attendees"] == round(raw["people"][rec["role"]] / 59, 4)
    totals: dict[str, dict[str, int]] = {}
    for (meeting, _), c in raw["meeting"].items():
        t = totals.setdefault(meeting, {"utterances": 0, "words": 0})
        t["utterances"] += c["utterances"]
        t["words"] += c["words"]
    for rec in d["by_meeting"]:
        true, t = raw["meeting"][(rec["meeting"], rec["role"])], totals[rec["meeting"]]
        assert rec["share_utterances"] == round(true["utterances"] / t["utterances"], 4)
        assert rec["share_words"] == round(true["words"] / t["words"], 4)
    coded = sum(c["utterances"] for c in raw["level"].values())
    coded_words = sum(c["words"] for c in raw["level"].values())
    for rec in d["levels"]["levels"]:
        true = raw["level"][rec["level"]]
        assert rec["share_utterances"] == round(true["utterances"] / coded, 4)
        assert rec["share_words"] == round(true["words"] / coded_words, 4)
    assert d["levels"]["share_of_utterances_coded"] == round(coded / 151, 4)


def test_a_malformed_transcript_is_one_clear_error(tmp_path: Path, cli: Cli) -> None:
    bad = write(
        tmp_path,
        "bad.txt",
        "CHAIR: Welcome\nthis line has no speaker\nCONSULTANT [patient]: hmm\nno speaker again\n",
    )
    with pytest.raises(ConfigError) as e:
        read_transcript(bad)
    msg = str(e.value)
    assert "2 problems" in msg and "bad.txt" in msg
    assert "2 lines not in the form 'ROLE: words'" in msg and "line 2" in msg
    assert (
        "unknown level code" in msg and "line 3" in msg and "individual, collective, system" in msg
    )
    res = cli("transcripts", str(bad), "--json", str(tmp_path / "t.json"))
    assert res.returncode == 2 and "bad.txt" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "t.json").exists()
    pd.DataFrame({"role": ["chair", ""], "text": ["a", "b"], "level": ["", "team"]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    with pytest.raises(ConfigError, match="'role' is blank.*\n.*'level' is not a level code"):
        read_transcript(tmp_path / "bad.csv")
    with pytest.raises(ConfigError, match="attendees' is not a whole number"):
        (tmp_path / "att.csv").write_text("meeting_id,role,attendees\nM1,chair,one\n")
        read_attendance(tmp_path / "att.csv")


def test_synthetic_transcripts_follow_the_seed_shares(synth: Path) -> None:
    result = evaluate_qualitative(synth)
    assert result is not None and result.transcripts is not None
    t = result.transcripts
    assert len(t.meetings) == 10
    assert {f[-3:] for f in t.meetings["file"]} == {"txt", "csv"}
    shares = dict(zip(t.overall["role"], t.overall["share_utterances"], strict=True))
    for role, share in UTTERANCE_SHARES.items():
        assert shares[role] == pytest.approx(share, abs=0.005), role
    assert [x["against"] for x in t.tests] == ["equal shares", "attendance"]
    assert all(x["p_value"] < 0.001 for x in t.tests)
    lv = t.levels.set_index("level")["share_utterances"]
    assert lv["individual"] > 0.7 and lv["system"] < 0.1


# ------------------------------------------------------------------------------------- coding


def small_segments() -> pd.DataFrame:
    rows = [
        # segment, document, case, group, coder, code, text
        ("s1", "int1", "p1", "GP", "ann", "Role clarity", "Not sure of my role; meetings drag"),
        ("s1", "int1", "p1", "GP", "ann", "Time", "Not sure of my role; meetings drag"),
        ("s2", "int1", "p1", "GP", "ann", "Access", "The tool is slow"),
        ("s3", "int2", "p2", "Nurse", "ann", "Role clarity", "Nobody said who follows up"),
        ("s4", "int2", "p2", "Nurse", "ann", "Time", "Two hours away from clinic"),
        ("s4", "int2", "p2", "Nurse", "ann", "Access", "Two hours away from clinic"),
        ("s5", "fg1", "p3", "Nurse", "ann", "", "An uncoded remark"),
    ]
    df = pd.DataFrame(
        rows, columns=["segment_id", "document", "case", "group", "coder", "code", "text"]
    )
    df["start"] = pd.array([pd.NA] * len(df), dtype="Int64")
    df["end"] = pd.array([pd.NA] * len(df), dtype="Int64")
    return df


BOOK = Codebook(
    [
        Code("Governance", "", "Leadership"),
        Code("Role clarity", "Governance", "Roles"),
        Code("MDG", "", "Meetings"),
        Code("Time", "MDG", "Time taken"),
        Code("IT", "", "Technology"),
        Code("Access", "IT", "Access to data"),
    ]
)


def test_frequencies_framework_and_cooccurrence_by_hand() -> None:
    r = analyse_coding(small_segments(), BOOK)
    f = r.frequencies.set_index("code")
    assert f.loc["Role clarity", "segments"] == 2 and f.loc["Governance", "segments"] == 2
    assert f.loc["Access", "group:GP"] == 1 and f.loc["Access", "group:Nurse"] == 1
    assert f.loc["Time", "documents"] == 2 and f.loc["MDG", "depth"] == 0
    fw = r.framework.set_index(["theme", "column"])
    assert fw.loc[("MDG", "Nurse"), "segments"] == 1
    assert fw.loc[("MDG", "Nurse"), "items"][0]["text"] == "Two hours away from clinic"
    co = r.cooccurrence
    assert co.loc["Role clarity", "Time"] == 1 and co.loc["Time", "Access"] == 1
    assert co.loc["Role clarity", "Access"] == 0 and co.loc["Access", "Access"] == 2
    assert (co.to_numpy() == co.to_numpy().T).all()
    by_case = analyse_coding(small_segments(), BOOK, by="case").framework
    assert set(by_case["column"]) == {"p1", "p2"}


def test_overlapping_positions_co_occur() -> None:
    seg = small_segments().iloc[:3].copy()
    seg["segment_id"] = ["a", "b", "c"]
    seg["document"] = "int1"
    seg["start"] = pd.array([0, 10, 40], dtype="Int64")
    seg["end"] = pd.array([20, 30, 50], dtype="Int64")
    co = analyse_coding(seg, BOOK).cooccurrence
    assert co.loc["Role clarity", "Time"] == 1  # 0-20 overlaps 10-30
    assert co.loc["Time", "Access"] == 0  # 10-30 does not reach 40-50


def test_kappa_matches_sklearn_and_the_worked_example() -> None:
    # Worked example: 50 items, yes-yes 20, yes-no 5, no-yes 10, no-no 15 -> kappa = 0.4.
    a = ["Yes"] * 25 + ["No"] * 25
    b = ["Yes"] * 20 + ["No"] * 5 + ["Yes"] * 10 + ["No"] * 15
    rows = [
        (f"u{i}", "d", "", "", c, code, "t")
        for i, (x, y) in enumerate(zip(a, b, strict=True))
        for c, code in (("A", x), ("B", y))
    ]
    seg = pd.DataFrame(
        rows, columns=["segment_id", "document", "case", "group", "coder", "code", "text"]
    )
    book = Codebook([Code("Yes"), Code("No")])
    table, method = agreement_table(seg, book, "A", "B")
    overall = table.set_index("code").loc["(overall)"]
    assert "one code per unit" in method
    assert overall["kappa"] == pytest.approx(0.4)
    assert overall["kappa"] == pytest.approx(cohen_kappa_score(a, b))
    assert overall["percent_agreement"] == pytest.approx(35 / 50)


def test_alpha_matches_krippendorffs_published_binary_example() -> None:
    # Krippendorff (2011) section A: two observers, ten units, alpha = 0.095.
    obs_a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    obs_b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    rows = []
    for i, (x, y) in enumerate(zip(obs_a, obs_b, strict=True)):
        for coder, v in (("A", x), ("B", y)):
            rows.append((f"u{i}", "d", "", "", coder, "Theme" if v else "", "t"))
    seg = pd.DataFrame(
        rows, columns=["segment_id", "document", "case", "group", "coder", "code", "text"]
    )
    table, method = agreement_table(seg, Codebook([Code("Theme")]), "A", "B")
    row = table.set_index("code").loc["Theme"]
    assert row["alpha"] == pytest.approx(0.095, abs=5e-4)
    assert row["kappa"] == pytest.approx(cohen_kappa_score(obs_a, obs_b))
    assert (row["units"], row["n_a"], row["n_b"], row["both"]) == (10, 2, 4, 1)
    assert "presence or absence" in method


def test_coding_input_errors_are_clear(tmp_path: Path) -> None:
    small_segments().to_csv(tmp_path / "seg.csv", index=False)
    with pytest.raises(ConfigError) as e:
        analyse_coding(
            read_segments_csv(tmp_path / "seg.csv"),
            Codebook([Code("Role clarity")]),
            source="seg.csv",
        )
    msg = str(e.value)
    assert "seg.csv" in msg and "4 coded segment row(s) use 2 code(s) not in the codebook" in msg
    assert "allowed: Role clarity" in msg
    pd.DataFrame({"code": ["A", "B"], "parent": ["", "Z"]}).to_csv(tmp_path / "cb.csv", index=False)
    with pytest.raises(ConfigError, match="'parent' names a code that is not in the codebook"):
        read_codebook_csv(tmp_path / "cb.csv")
    pd.DataFrame(
        {"segment_id": ["s"], "code": ["A"], "text": ["x"], "start": ["5"], "end": ["2"]}
    ).to_csv(tmp_path / "pos.csv", index=False)
    with pytest.raises(ConfigError, match="'end' is before start"):
        read_segments_csv(tmp_path / "pos.csv")


# ------------------------------------------------------------------------------------ REFI-QDA


def test_reads_the_f4_project_as_qde_and_as_qdpx() -> None:
    for name in ("f4-project.qde", "f4-project.qdpx"):
        book, seg, warnings = read_project(FIXTURES / name)
        (code,) = book.codes
        assert code.name == "Dies ist ein Test-Code" and code.guid == F4_CODE
        assert code.description == "Dies ist der Kommentar vom Test-Code"
        assert code.colour == "#044B9B"
        assert list(seg["document"]) == ["Interview 60mins"] * 2
        assert list(seg["start"]) == [320, 995] and list(seg["end"]) == [416, 1260]
        assert (seg["code"] == code.name).all()
        assert any("no plain text" in w for w in warnings)  # f4 left the sources out
    assert read_codebook(FIXTURES / "f4-project.qdpx").codes == book.codes


def test_malformed_refi_files_give_clear_errors(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "not-zip.qdpx").write_bytes(b"PK? no")
    with pytest.raises(ConfigError, match="not a .qdpx archive"):
        read_project(tmp_path / "not-zip.qdpx")
    with zipfile.ZipFile(tmp_path / "empty.qdpx", "w") as z:
        z.writestr("readme.txt", "nothing")
    with pytest.raises(ConfigError, match="exactly one project.qde; found 0"):
        read_project(tmp_path / "empty.qdpx")
    text = (FIXTURES / "f4-project.qde").read_text(encoding="utf-8")
    broken = text.replace(' isCodable="true"', "").replace(
        'startPosition="320"', 'startPosition="x"'
    )
    (tmp_path / "invalid.qde").write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        read_project(tmp_path / "invalid.qde")
    msg = str(e.value)
    assert "invalid.qde: not a valid REFI-QDA project (2 schema errors)" in msg
    assert "isCodable" in msg and "startPosition" in msg
    (tmp_path / "cut.qde").write_text(text[:500], encoding="utf-8")
    with pytest.raises(ConfigError, match="not well-formed XML"):
        read_project(tmp_path / "cut.qde")
    res = cli(
        "qda", "--segments", str(tmp_path / "invalid.qde"), "--json", str(tmp_path / "q.json")
    )
    assert res.returncode == 2 and "schema error" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "q.json").exists()


def test_exports_validate_against_the_schemas_and_read_back(tmp_path: Path) -> None:
    seg = small_segments()
    extra = seg.copy()
    extra["coder"] = "bob"
    both = pd.concat([seg, extra], ignore_index=True)
    write_project(tmp_path / "p.qdpx", BOOK, both)
    write_codebook(tmp_path / "c.qdc", BOOK)
    with zipfile.ZipFile(tmp_path / "p.qdpx") as z:
        names = z.namelist()
        xml = z.read("project.qde")
    assert "project.qde" in names and sum(n.startswith("sources/") for n in names) == 3
    xmlschema.XMLSchema(PROJECT_XSD).validate(xml.decode("utf-8"))  # raises if invalid
    xmlschema.XMLSchema(CODEBOOK_XSD).validate((tmp_path / "c.qdc").read_text("utf-8"))
    book, back, _ = read_project(tmp_path / "p.qdpx")
    assert [(c.name, c.parent, c.description) for c in book.codes] == [
        (c.name, c.parent, c.description) for c in BOOK.codes
    ]
    coded = back[back["code"] != ""]
    orig = both[both["code"] != ""]
    key = ["coder", "document", "case", "group", "code", "text"]
    assert sorted(map(tuple, coded[key].to_numpy())) == sorted(map(tuple, orig[key].to_numpy()))
    again = read_codebook(tmp_path / "c.qdc")
    assert [(c.name, c.parent) for c in again.codes] == [(c.name, c.parent) for c in BOOK.codes]
    # A round trip through REFI-QDA keeps the agreement figures.
    a1 = analyse_coding(both, BOOK).agreement
    a2 = analyse_coding(back, book).agreement
    assert a1 is not None and a2 is not None
    assert list(a1["kappa"].fillna(-9)) == pytest.approx(list(a2["kappa"].fillna(-9)))
    assert project_xml(BOOK, both)[0] == project_xml(BOOK, both)[0]  # reproducible


def test_synthetic_codebook_is_valid_refi_and_coders_agree_about_85_percent(synth: Path) -> None:
    xmlschema.XMLSchema(CODEBOOK_XSD).validate(
        (synth / "qualitative" / "codebook.qdc").read_text("utf-8")
    )
    assert codebook_xml(read_codebook(synth / "qualitative" / "codebook.qdc"))
    # Read back and written again, the codebook is the same file, byte for byte.
    qdc = synth / "qualitative" / "codebook.qdc"
    assert codebook_xml(read_codebook(qdc), origin="careval synth") == qdc.read_bytes()
    assert len(read_codebook(qdc).codes) == 14
    result = evaluate_qualitative(synth)
    assert result is not None and result.coding is not None
    c = result.coding
    assert len(c.codebook.themes) == 4 and c.primary_coder == "coder_a"
    overall = c.agreement.set_index("code").loc["(overall)"]
    seg = pd.read_csv(synth / "qualitative" / "coded_segments.csv", keep_default_na=False)
    wide = seg.pivot(index="segment_id", columns="coder", values="code")
    assert overall["kappa"] == pytest.approx(cohen_kappa_score(wide["coder_a"], wide["coder_b"]))
    assert 0.7 < overall["kappa"] < 0.95


def test_block_and_section_content(synth: Path) -> None:
    result = evaluate_qualitative(synth)
    assert result is not None
    open_block = json.loads(json.dumps(result.to_dict()))
    block = json.loads(json.dumps(publish_qualitative(result, DC).to_dict()))
    t = block["transcripts"]
    assert t["n_meetings"] == 10 and t["n_utterances"] == 2400
    nph = next(r for r in t["overall"] if r["role"] == "non_presenting_gp")
    # 48 of 2,400 utterances, published as 50 of 2,400: the share is of the published counts
    # (48 / 2400 = 0.02 would give the 48 back).
    assert nph["utterances"] == 50 and nph["share_utterances"] == round(50 / 2400, 4)
    raw_nph = next(r for r in open_block["transcripts"]["overall"] if r["role"] == nph["role"])
    assert raw_nph["utterances"] == 48 and raw_nph["share_utterances"] == 0.02
    assert "items" not in block["coding"]["framework"][0]
    assert "items" in open_block["coding"]["framework"][0]
    section = qualitative_section(publish_qualitative(result, DC))
    assert section.id == "qualitative"
    html = section.html
    for anchor in (
        "mdg-utterances",
        "mdg-turns",
        "mdg-levels",
        "qda-frequencies",
        "qda-framework",
        "qda-cooccurrence",
        "qda-agreement",
    ):
        assert f'id="{anchor}"' in html
    assert "39.0%" in html and "Presenting GP" in html and "<svg" in html
    assert "An example segment per cell" not in html  # verbatim text withheld when protected
    assert "An example segment per cell" in qualitative_section(result).html


def test_qda_command_exports_and_agreement(synth: Path, tmp_path: Path, cli: Cli) -> None:
    q = synth / "qualitative"
    res = cli(
        "qda",
        "--segments",
        str(q / "coded_segments.csv"),
        "--codebook",
        str(q / "codebook.qdc"),
        "--json",
        str(tmp_path / "q.json"),
        "--export-qdpx",
        str(tmp_path / "p.qdpx"),
        "--export-qdc",
        str(tmp_path / "c.qdc"),
        "--export-csv",
        str(tmp_path / "s.csv"),
        "--coders",
        "coder_b,coder_a",
    )
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "q.json").read_text())
    overall = next(r for r in data["agreement"] if r["code"] == "(overall)")
    assert overall["coders"] == "coder_b vs coder_a" and "agreement kappa" in res.stdout
    assert read_segments_csv(tmp_path / "s.csv").shape[0] == 300
    assert "150 segments, 14 codes" in res.stdout
    assert f"agreement kappa {overall['kappa']:.3f}, alpha {overall['alpha']:.3f}" in res.stdout
    # The exports read back: the codebook's 14 codes, and every one of the 300 codings.
    exported = read_codebook(tmp_path / "c.qdc")
    assert [c.name for c in exported.codes] == [
        c.name for c in read_codebook(q / "codebook.qdc").codes
    ]
    book, codings, _ = read_project(tmp_path / "p.qdpx")
    assert len(book.codes) == 14 and len(codings) == 300
    res = cli("transcripts", str(q / "transcripts"), "--json", str(tmp_path / "t.json"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "t.json").read_text())["n_meetings"] == 10
    bad = cli(
        "qda",
        "--segments",
        str(q / "coded_segments.csv"),
        "--json",
        str(tmp_path / "x.json"),
        "--coders",
        "coder_a",
    )
    assert bad.returncode == 2 and "--coders must name two coders" in bad.stderr


def test_evaluate_qualitative_is_none_without_inputs(tmp_path: Path) -> None:
    assert evaluate_qualitative(tmp_path) is None
    (tmp_path / "qualitative").mkdir()
    assert evaluate_qualitative(tmp_path) is None


def test_generated_dataset_carries_surveys_and_transcripts_of_its_own_meetings(
    synth_dir: Path,
) -> None:
    meetings = pd.read_parquet(synth_dir / "mdg_meetings.parquet")
    attendance = pd.read_parquet(synth_dir / "mdg_attendance.parquet")
    result = evaluate_qualitative(synth_dir)
    assert result is not None and result.transcripts is not None
    ids = set(result.transcripts.meetings["meeting"])
    assert len(ids) == 10 and ids <= set(meetings["meeting_id"])
    dates = pd.to_datetime(meetings.set_index("meeting_id").loc[sorted(ids), "meeting_date"])
    assert dates.min() >= pd.Timestamp("2011-11-01") and dates.max() < pd.Timestamp("2012-05-01")
    copied = read_attendance(synth_dir / "qualitative" / "transcripts" / "attendance.csv")
    original = attendance[attendance["meeting_id"].isin(ids)]
    assert copied["attendees"].sum() == original["attendees"].sum()
    spoke = result.transcripts.by_meeting[["meeting", "role"]]
    present = set(zip(copied["meeting"], copied["role"], strict=True)) - set(
        zip(
            copied.loc[copied["attendees"] == 0, "meeting"],
            copied.loc[copied["attendees"] == 0, "role"],
            strict=True,
        )
    )
    assert set(zip(spoke["meeting"], spoke["role"], strict=True)) <= present  # only attendees speak
    assert {p.name for p in (synth_dir / "surveys").iterdir()} >= {
        "professionals.sav",
        "patients.csv",
        "early_adopters.xlsx",
        "gps.dta",
        "gps.toml",
    }


# ------------------------------------------------------------------ result classes and publishing


def test_qualitative_results_have_tidy_summary_and_to_dict(synth: Path) -> None:
    result = evaluate_qualitative(synth)
    assert result is not None and result.transcripts is not None and result.coding is not None
    t = result.transcripts
    tidy = t.tidy()
    assert list(tidy.columns[:5]) == [
        "role",
        "utterances",
        "words",
        "share_utterances",
        "share_words",
    ]
    assert tidy.iloc[0]["role"] == "presenting_gp" and tidy["utterances"].sum() == 2400
    assert "2,400 utterances" in t.summary()
    c = result.coding
    ctidy = c.tidy()
    assert list(ctidy.columns[:5]) == ["code", "parent", "theme", "depth", "segments"]
    assert int(ctidy[ctidy["depth"] == 0]["segments"].sum()) == 150
    assert "150 segments" in c.summary()
    assert list(result.tidy().columns) == list(tidy.columns)
    assert "2,400 utterances" in result.summary() and "150 segments" in result.summary()
    assert result.to_dict()["disclosure_control"] is False


def test_publishing_qualitative_makes_a_protected_copy(synth: Path) -> None:
    result = evaluate_qualitative(synth)
    assert result is not None and result.transcripts is not None and result.coding is not None
    before = json.dumps(result.to_dict())
    published = publish_qualitative(result, DC)
    assert json.dumps(result.to_dict()) == before  # the input is not changed
    block = published.to_dict()
    assert block["disclosure_control"] is True
    assert block["transcripts"]["n_utterances"] == protect_count(2400, DC)
    assert all("items" not in cell for cell in block["coding"]["framework"])
    assert published.coding is not None and set(published.coding.segments["text"]) == {""}
    assert block["coding"]["n_segments"] == protect_count(150, DC)


def test_summaries_of_published_copies_show_only_published_counts(synth: Path) -> None:
    """A published copy's summary reads its published counts ("*" where suppressed, shares
    withheld) and never the true totals behind them."""
    import copy

    result = evaluate_qualitative(synth)
    assert result is not None and result.transcripts is not None and result.coding is not None
    t = copy.deepcopy(result.transcripts)
    t.meetings.loc[t.meetings.index[0], "utterances"] = 5  # a meeting with a small count
    t.overall.loc[t.overall.index[-1], "utterances"] = 3  # and a rare role
    published = publish_qualitative(type(result)(transcripts=t, coding=result.coding), DC)
    assert published.transcripts is not None and published.coding is not None
    text = published.transcripts.summary()
    block = published.transcripts.to_dict()
    assert text.startswith(f"{block['n_meetings']} meetings, {block['n_utterances']:,} utterances")
    role = str(t.overall.role.iloc[-1])
    assert f"  {role}: withheld of utterances" in text
    coding = published.coding.summary()
    assert coding.startswith(f"{protect_count(150, DC)} segments")
