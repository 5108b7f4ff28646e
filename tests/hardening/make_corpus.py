"""Generate the hardening corpus: malformed and hostile inputs made from one small dataset.

Each case is a directory holding a mutated copy of a synthetic dataset (``data/``, with its
``surveys/`` and ``qualitative/`` inputs), an output folder (``out/``, empty or holding a user's
files), any extra files the case needs, and ``case.json``: the command to run, the words its
message must contain, the words it must not contain, and the branch that fixes it when the
refusal is not in place yet. Every case expects the command to refuse with exit code 2 and one
message, to write nothing and to leave every input byte-identical, except two kinds: a
``workbook`` case expects a run to succeed and its workbook to hold no formula, a ``protected``
case expects a command run with ``--protect`` to succeed and no suppressed count in its JSON to
be recoverable from the counts and shares published beside it.

Usage: ``python tests/hardening/make_corpus.py OUTDIR`` (or :func:`make_corpus`).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mutate as m
import pyarrow as pa

PERSONS = 3_000  # people in the base dataset: about two seconds to generate
SEED = 2011


@dataclass(frozen=True)
class Case:
    """One hostile input and what careval must do with it.

    ``args`` are the command-line arguments; ``{data}``, ``{out}`` and ``{case}`` stand for the
    case's dataset copy, output folder and directory. ``names`` must all appear in the message
    (stdout and stderr together), ``absent`` must not. ``fixed_on`` names the branch whose fix
    the case waits for (None: careval refuses it already). ``expect`` is ``"refused"`` (exit
    2, nothing written), ``"workbook"`` (the run succeeds; no cell of tables.xlsx is a
    formula) or ``"protected"`` (the command succeeds; no suppressed count can be recovered).
    ``slow``: a whole evaluation runs before (or instead of) the refusal.
    """

    name: str
    category: str
    args: tuple[str, ...]
    names: tuple[str, ...]
    absent: tuple[str, ...] = ()
    fixed_on: str | None = None
    expect: str = "refused"
    slow: bool = False


@dataclass
class _Spec:
    case: Case
    mutate: Callable[[Path], None] = field(default=lambda case_dir: None)
    copy_data: bool = True


# ------------------------------------------------------------------------------ the cases


def _specs() -> list[_Spec]:
    V = ("validate", "{data}")
    P = "{data}/persons.parquet"
    S = ("survey", "{data}/surveys/patients.toml", "--json", "{out}/surveys.json")
    T = ("transcripts", "{data}/qualitative/transcripts", "--json", "{out}/transcripts.json")
    Q = ("qda", "--segments", "{case}/project.qdpx", "--json", "{out}/qda.json")
    QC = (
        "qda",
        "--segments",
        "{data}/qualitative/coded_segments.csv",
        "--codebook",
        "{data}/qualitative/codebook.qdc",
        "--json",
        "{out}/qda.json",
    )
    patients_csv = lambda d: d / "data" / "surveys" / "patients.csv"  # noqa: E731
    specs: list[_Spec] = []

    def add(
        name: str,
        category: str,
        args: tuple[str, ...],
        names: tuple[str, ...],
        mutate: Callable[[Path], None] = lambda d: None,
        **kw: object,
    ) -> None:
        copy_data = bool(kw.pop("copy_data", True))
        specs.append(_Spec(Case(name, category, args, names, **kw), mutate, copy_data))  # type: ignore[arg-type]

    # --- corrupt, truncated and impossible Parquet (footer intact where it says so)
    add(
        "parquet_pages_garbled",
        "corrupt Parquet",
        V,
        ("persons.parquet",),
        lambda d: m.garble_middle(d, "persons"),
    )
    add(
        "parquet_page_headers_garbled",
        "corrupt Parquet",
        V,
        ("inpatient_spells.parquet",),
        lambda d: m.garble(d, "inpatient_spells", 4, 4096),
    )
    add(
        "parquet_pages_garbled_unvalidated_column",
        "corrupt Parquet",
        V,
        ("outpatient_appointments.parquet",),
        lambda d: m.garble_middle(d, "outpatient_appointments"),
    )
    add(
        "parquet_pages_garbled_design",
        "corrupt Parquet",
        ("design", "--data", "{data}", "--json", "{out}/design.json", "--replicates", "50"),
        ("persons.parquet",),
        lambda d: m.garble_middle(d, "persons"),
    )
    add(
        "parquet_page_size_impossible",
        "impossible sizes and offsets",
        V,
        ("persons.parquet",),
        lambda d: m.huge_page_size(d, "persons"),
    )
    add(
        "parquet_footer_length_impossible",
        "impossible sizes and offsets",
        V,
        ("registrations.parquet",),
        lambda d: m.footer_length(d, "registrations"),
    )
    add(
        "parquet_truncated",
        "truncated and zero-byte files",
        V,
        ("persons.parquet",),
        lambda d: m.truncate(m.table(d, "persons"), 0.5),
    )
    add(
        "parquet_zero_bytes",
        "truncated and zero-byte files",
        V,
        ("conditions.parquet",),
        lambda d: m.table(d, "conditions").write_bytes(b""),
    )
    add(
        "parquet_is_csv",
        "wrong types",
        V,
        ("persons.parquet",),
        lambda d: m.as_csv(d, "persons"),
    )
    add(
        "parquet_is_directory",
        "wrong types",
        V,
        ("care_plans.parquet",),
        lambda d: (m.table(d, "care_plans").unlink(), m.table(d, "care_plans").mkdir()),
    )
    # --- missing table and column, wrong types
    add(
        "table_missing",
        "missing table and column",
        V,
        ("persons.*: required table missing",),
        lambda d: m.table(d, "persons").unlink(),
    )
    add(
        "column_missing",
        "missing table and column",
        V,
        ("persons.sex",),
        lambda d: m.rewrite(d, "persons", lambda t: t.drop_columns(["sex"])),
    )
    add(
        "type_date_as_string",
        "wrong types",
        V,
        ("persons.birth_month: wrong type",),
        lambda d: m.rewrite(
            d,
            "persons",
            lambda t: m.set_column(t, "birth_month", t["birth_month"].cast(pa.string())),
        ),
    )
    add(
        "type_int_as_string",
        "wrong types",
        V,
        ("mdg_attendance.attendees: wrong type",),
        lambda d: m.rewrite(
            d,
            "mdg_attendance",
            lambda t: m.set_column(t, "attendees", t["attendees"].cast(pa.string())),
        ),
    )
    add(
        "type_bool_as_int",
        "wrong types",
        V,
        ("care_plans.q_goals_agreed: wrong type",),
        lambda d: m.rewrite(
            d,
            "care_plans",
            lambda t: m.set_column(t, "q_goals_agreed", t["q_goals_agreed"].cast(pa.int8())),
        ),
    )
    add(
        "type_struct_column",
        "wrong types",
        V,
        ("persons.sex: wrong type",),
        lambda d: m.rewrite(
            d,
            "persons",
            lambda t: m.set_column(
                t, "sex", pa.StructArray.from_arrays([t["sex"].combine_chunks()], ["value"])
            ),
        ),
    )
    add(
        "manifest_not_json",
        "wrong types",
        V,
        ("dataset.json",),
        lambda d: (d / "data" / "dataset.json").write_text("{'synthetic': True,", "utf-8"),
    )
    add(
        "manifest_synthetic_string",
        "synthetic flag as a string",
        V,
        ("dataset.json", "synthetic"),
        lambda d: m.manifest(d, synthetic="false"),
    )
    # --- null and duplicate keys, orphans, NaN and infinity
    add(
        "key_null",
        "null and duplicate keys",
        V,
        ("persons.person_id: missing values",),
        lambda d: m.rewrite(d, "persons", lambda t: m.first_set(t, "person_id", None)),
    )
    add(
        "key_duplicate",
        "null and duplicate keys",
        V,
        ("inpatient_spells.spell_id: duplicate",),
        lambda d: m.rewrite(
            d, "inpatient_spells", lambda t: m.first_set(t, "spell_id", t["spell_id"][1].as_py())
        ),
    )
    add(
        "orphan_person",
        "orphans",
        V,
        ("inpatient_spells.person_id: not found",),
        lambda d: m.rewrite(d, "inpatient_spells", lambda t: m.first_set(t, "person_id", "NOBODY")),
    )
    add(
        "orphan_practice",
        "orphans",
        V,
        ("registrations.practice_code: not found",),
        lambda d: m.rewrite(
            d, "registrations", lambda t: m.first_set(t, "practice_code", "Z99999")
        ),
    )
    add(
        "float_nan",
        "NaN and infinity",
        V,
        ("measurements.value",),
        lambda d: m.rewrite(d, "measurements", lambda t: m.first_set(t, "value", float("nan"))),
    )
    add(
        "float_inf",
        "NaN and infinity",
        V,
        ("inpatient_spells.cost",),
        lambda d: m.rewrite(d, "inpatient_spells", lambda t: m.first_set(t, "cost", float("inf"))),
    )
    add(
        "float_minus_inf",
        "NaN and infinity",
        V,
        ("innovation_fund.spent",),
        lambda d: m.rewrite(d, "innovation_fund", lambda t: m.first_set(t, "spent", float("-inf"))),
    )
    # --- real data: no example value printed
    add(
        "real_data_example_rows",
        "validation messages on real data",
        V,
        ("persons.person_id: duplicate key",),
        m.real_duplicate,
        absent=(m.SECRET_ID,),
    )
    # --- surveys: encodings, delimiters, columns, keys, truncation, bombs, entities, paths
    add(
        "survey_wrong_delimiter",
        "wrong delimiter",
        S,
        ("patients.csv", "respondent_id"),
        lambda d: patients_csv(d).write_text(
            patients_csv(d).read_text("utf-8").replace(",", ";"), "utf-8"
        ),
    )
    add(
        "survey_utf16_bom",
        "encoding and BOM",
        S,
        ("patients.csv",),
        lambda d: patients_csv(d).write_bytes(patients_csv(d).read_text("utf-8").encode("utf-16")),
    )
    add(
        "survey_latin1",
        "encoding and BOM",
        S,
        ("patients.csv",),
        lambda d: patients_csv(d).write_bytes(
            patients_csv(d).read_text("utf-8").replace(",,\n", ",Très bien\n", 1).encode("latin-1")
        ),
    )
    add(
        "manifest_utf8_bom",
        "encoding and BOM",
        V,
        ("dataset.json",),
        lambda d: (d / "data" / "dataset.json").write_bytes(
            b"\xef\xbb\xbf" + (d / "data" / "dataset.json").read_bytes()
        ),
    )
    add(
        "survey_column_missing",
        "missing table and column",
        S,
        ("patients.csv", "respondent_id"),
        lambda d: m.replace(patients_csv(d), "respondent_id,", "id,", 1),
    )
    add(
        "survey_duplicate_respondent",
        "null and duplicate keys",
        S,
        ("patients.csv", "respondent_id"),
        lambda d: m.replace(patients_csv(d), "PAT0002,", "PAT0001,", 1),
    )
    add(
        "survey_zero_bytes",
        "truncated and zero-byte files",
        S,
        ("patients.csv",),
        lambda d: patients_csv(d).write_bytes(b""),
    )
    add(
        "survey_sav_truncated",
        "truncated and zero-byte files",
        ("survey", "{data}/surveys/professionals.toml", "--json", "{out}/surveys.json"),
        ("professionals.sav",),
        lambda d: m.truncate(d / "data" / "surveys" / "professionals.sav", 0.4),
    )
    add(
        "survey_xlsx_truncated",
        "truncated and zero-byte files",
        ("survey", "{data}/surveys/early_adopters.toml", "--json", "{out}/surveys.json"),
        ("early_adopters.xlsx",),
        lambda d: m.truncate(d / "data" / "surveys" / "early_adopters.xlsx", 0.6),
    )
    add(
        "survey_xlsx_zip_bomb",
        "zip bombs",
        ("survey", "{data}/surveys/early_adopters.toml", "--json", "{out}/surveys.json"),
        ("early_adopters.xlsx",),
        lambda d: m.claim_huge(d / "data" / "surveys" / "early_adopters.xlsx", "sheet1.xml"),
    )
    add(
        "survey_xlsx_entity_expansion",
        "entity expansion",
        ("survey", "{data}/surveys/early_adopters.toml", "--json", "{out}/surveys.json"),
        ("early_adopters.xlsx",),
        m.xlsx_laughs,
    )
    add(
        "survey_toml_malformed",
        "wrong types",
        S,
        ("patients.toml",),
        lambda d: (d / "data" / "surveys" / "patients.toml").write_text(
            "name = [unclosed\n", "utf-8"
        ),
    )
    add(
        "survey_invited_not_number",
        "wrong types",
        S,
        ("patients.toml", "invited"),
        lambda d: m.replace(
            d / "data" / "surveys" / "patients.toml", "invited = 2000", 'invited = "many"'
        ),
    )
    add(
        "survey_path_escapes",
        "paths escaping",
        S,
        ("patients.toml", "secret.csv"),
        lambda d: m.escape(d, "../../elsewhere/secret.csv"),
    )
    add(
        "survey_path_absolute",
        "paths escaping",
        S,
        ("patients.toml", "secret.csv"),
        lambda d: m.escape(d, str((d / "elsewhere" / "secret.csv").resolve())),
    )
    # --- qualitative: roles, members, offsets, entities, bombs, columns
    add(
        "transcript_undeclared_role",
        "unchecked names",
        T,
        ("M000", "not declared", "line "),
        m.intruder,
        absent=("INTRUDER", "intruder"),  # a speaker written by name is not quoted
    )
    add(
        "attendance_column_missing",
        "missing table and column",
        T,
        ("attendance.csv", "attendees"),
        lambda d: m.replace(
            d / "data" / "qualitative" / "transcripts" / "attendance.csv",
            "meeting_id,role,attendees",
            "meeting_id,role,people",
            1,
        ),
    )
    add(
        "segments_column_missing",
        "missing table and column",
        QC,
        ("coded_segments.csv", "code"),
        lambda d: m.replace(
            d / "data" / "qualitative" / "coded_segments.csv",
            "coder,code,text",
            "coder,kode,text",
            1,
        ),
    )
    add("codebook_entity_expansion", "entity expansion", QC, ("codebook.qdc",), m.qdc_laughs)
    add(
        "qdpx_member_parent",
        "unchecked names",
        Q,
        ("project.qdpx", "../../x"),
        lambda d: m.zip_rewrite(m.project(d), {"sources/../../x.txt": b"escaped"}),
    )
    add(
        "qdpx_member_absolute",
        "unchecked names",
        Q,
        ("project.qdpx", "/tmp/"),
        lambda d: m.zip_rewrite(m.project(d), {"/tmp/careval-absolute.txt": b"absolute"}),
    )
    add(
        "qdpx_zip_bomb",
        "zip bombs",
        Q,
        ("project.qdpx",),
        lambda d: m.claim_huge(m.project(d), "project.qde"),
    )
    add(
        "qdpx_not_zip",
        "truncated and zero-byte files",
        Q,
        ("project.qdpx",),
        lambda d: m.truncate(m.project(d), 0.5),
    )
    add(
        "qdpx_segment_offset_huge",
        "segment offsets",
        (*Q, "--export-qdpx", "{out}/export.qdpx"),
        ("project.qdpx", "endPosition"),
        m.huge_offset,
    )
    add(
        "segments_csv_offset_huge",
        "segment offsets",
        (*QC, "--export-qdpx", "{out}/export.qdpx"),
        ("coded_segments.csv", "end"),
        m.huge_csv_offset,
    )
    # --- user files, markers and output folders
    add(
        "synth_overwrite_user_folder",
        "user files deleted",
        ("synth", "--out", "{out}", "--persons", "1000", "--overwrite"),
        ("{out}",),
        m.user_files,
        copy_data=False,
    )
    add(
        "run_out_inside_data",
        "user files deleted",
        ("run", "--data", "{data}", "--out", "{data}/report"),
        ("--out",),
        slow=True,
    )
    add(
        "run_figures_user_files",
        "user files deleted",
        ("run", "--data", "{data}", "--out", "{out}"),
        ("{out}", "figures"),
        lambda d: m.user_files(d, "figures"),
        slow=True,
    )
    add(
        "demo_over_real_dataset",
        "user files deleted",
        ("demo", "--out", "{case}/demo", "--persons", "1000"),
        ("dataset.json",),
        m.real_demo,
        copy_data=False,
        slow=True,
    )
    # --- bad command-line arguments
    add(
        "cli_data_missing",
        "bad CLI arguments",
        ("validate", "{case}/nowhere"),
        ("nowhere",),
        copy_data=False,
    )
    add("cli_data_is_file", "bad CLI arguments", ("validate", P), ("persons.parquet",))
    add(
        "cli_extract_date_impossible",
        "bad CLI arguments",
        ("validate", "{data}", "--extract-date", "2014-02-30"),
        ("--extract-date",),
    )
    add(
        "cli_synth_negative_persons",
        "bad CLI arguments",
        ("synth", "--out", "{out}/new", "--persons", "-5"),
        ("persons",),
        copy_data=False,
    )
    add(
        "cli_json_is_directory",
        "bad CLI arguments",
        ("survey", "{data}/surveys/patients.toml", "--json", "{out}"),
        ("--json",),
    )
    add("cli_qda_two_coders", "bad CLI arguments", (*QC, "--coders", "coder_a"), ("--coders",))
    add(
        "cli_qda_by_unknown",
        "bad CLI arguments",
        (*QC, "--by", "nothing"),
        ("nothing", "group or case"),
    )
    add(
        "cli_init_never_overwrites",
        "bad CLI arguments",
        ("init", "--data", "{data}", "--out", "{out}/study.toml"),
        ("study.toml",),
        lambda d: (d / "out" / "study.toml").write_text("# mine\n", "utf-8"),
    )
    add(
        "cli_unknown_option",
        "bad CLI arguments",
        ("validate", "{data}", "--frobnicate"),
        ("--frobnicate",),
    )
    # --- the generic table commands (spc, match, did) on a CSV of their own
    SPC = (
        "spc",
        "--csv",
        "{case}/series.csv",
        "--date",
        "month",
        "--value",
        "rate",
        "--json",
        "{out}/spc.json",
    )
    MATCH = (
        "match",
        "--csv",
        "{case}/units.csv",
        "--treatment",
        "treated",
        "--covariates",
        "age,risk",
        "--json",
        "{out}/match.json",
    )
    DID = (
        "did",
        "--csv",
        "{case}/panel.csv",
        "--unit",
        "unit",
        "--time",
        "period",
        "--outcome",
        "y",
        "--first-treated",
        "first",
        "--json",
        "{out}/did.json",
    )
    add(
        "spc_value_inf",
        "NaN and infinity",
        SPC,
        ("series.csv", "rate"),
        lambda d: m.series(d, {5: "inf"}),
        copy_data=False,
    )
    add(
        "spc_value_text",
        "wrong types",
        SPC,
        ("series.csv", "rate"),
        lambda d: m.series(d, {3: "n/a?"}),
        copy_data=False,
    )
    add(
        "spc_zero_bytes",
        "truncated and zero-byte files",
        SPC,
        ("series.csv",),
        lambda d: (d / "series.csv").write_bytes(b""),
        copy_data=False,
    )
    add(
        "match_csv_is_parquet",
        "wrong types",
        (*MATCH[:2], "{data}/persons.parquet", *MATCH[3:]),
        ("persons.parquet",),
    )
    add(
        "match_covariate_nan",
        "NaN and infinity",
        MATCH,
        ("units.csv", "risk"),
        lambda d: m.units(d, {"risk": (4, "nan")}),
        copy_data=False,
    )
    add(
        "match_treatment_not_binary",
        "wrong types",
        MATCH,
        ("units.csv", "treated"),
        lambda d: m.units(d, {"treated": (2, "2")}),
        copy_data=False,
    )
    add(
        "did_outcome_inf",
        "NaN and infinity",
        DID,
        ("panel.csv", "y"),
        lambda d: m.panel(d, {7: "-inf"}),
        copy_data=False,
    )
    add(
        "did_column_missing",
        "missing table and column",
        (*DID[:8], "visits", *DID[9:]),
        ("panel.csv", "visits"),
        lambda d: m.panel(d, {}),
        copy_data=False,
    )
    # --- small counts: suppressed in the protected output, and not recoverable from the rest
    add(
        "survey_small_group_recoverable",
        "small counts recoverable",
        (*S, "--protect"),
        (),
        m.small_group,
        expect="protected",
    )
    # --- formula injection into tables.xlsx: the run succeeds and the workbook holds no formula
    add(
        "workbook_formula_injection",
        "formula injection",
        ("run", "--data", "{data}", "--out", "{out}/run"),
        (),
        m.formulas,
        expect="workbook",
        slow=True,
    )
    return specs


# ------------------------------------------------------------------------------ generation


def base_dataset(out: Path) -> Path:
    """The small synthetic dataset every case is made from (``out``, created)."""
    from careval.synthetic.generate import generate
    from careval.synthetic.settings import SynthSettings

    generate(out, SynthSettings(persons=PERSONS, seed=SEED))
    return out


def make_corpus(outdir: str | Path, base: Path | None = None) -> list[Case]:
    """Write every case under ``outdir`` (one directory each) and return the cases.

    Parameters
    ----------
    outdir
        A directory to create (it must not exist yet, or be empty).
    base
        A dataset made by :func:`base_dataset`; one is generated in ``outdir/_base`` otherwise.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if any(p.name != "_base" for p in outdir.iterdir()):
        raise SystemExit(f"{outdir} is not empty")
    if base is None:
        base = base_dataset(outdir / "_base")
    elif base != outdir / "_base":
        shutil.copytree(base, outdir / "_base")
    cases = []
    for spec in _specs():
        case_dir = outdir / spec.case.name
        case_dir.mkdir()
        (case_dir / "out").mkdir()
        if spec.copy_data:
            shutil.copytree(base, case_dir / "data")
        spec.mutate(case_dir)
        (case_dir / "case.json").write_text(json.dumps(asdict(spec.case), indent=2), "utf-8")
        cases.append(spec.case)
    return cases


def load_cases(outdir: str | Path) -> list[Case]:
    """The cases written by :func:`make_corpus` in ``outdir``."""
    out = []
    for f in sorted(Path(outdir).glob("*/case.json")):
        raw = json.loads(f.read_text("utf-8"))
        out.append(Case(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}))
    return out


def case_names() -> list[Case]:
    """Every case, without writing anything (for test parametrisation)."""
    return [s.case for s in _specs()]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/hardening/make_corpus.py OUTDIR")
    made = make_corpus(sys.argv[1])
    print(f"{len(made)} cases in {sys.argv[1]}")
