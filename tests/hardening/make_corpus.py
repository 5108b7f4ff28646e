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

import csv
import io
import json
import re
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PERSONS = 3_000  # people in the base dataset: about two seconds to generate
SEED = 2011
SECRET_ID = "SECRET-PERSON-0001"  # a value that must never be printed for real-flagged data


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


# ------------------------------------------------------------------------------ file helpers


def _table(case_dir: Path, name: str) -> Path:
    return case_dir / "data" / f"{name}.parquet"


def _rewrite(case_dir: Path, name: str, change: Callable[[pa.Table], pa.Table]) -> None:
    file = _table(case_dir, name)
    pq.write_table(change(pq.read_table(file)), file)


def _set_column(t: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return t.set_column(t.schema.get_field_index(column), column, values)


def _first_set(t: pa.Table, column: str, value: object) -> pa.Table:
    """``t`` with the first row's ``column`` replaced by ``value`` (same type)."""
    values = t[column].to_pylist()
    values[0] = value
    return _set_column(t, column, pa.array(values, type=t.schema.field(column).type))


def _manifest(case_dir: Path, **changes: object) -> None:
    file = case_dir / "data" / "dataset.json"
    manifest = json.loads(file.read_text("utf-8"))
    manifest.update(changes)
    file.write_text(json.dumps(manifest, indent=2), "utf-8")


def _footer_start(raw: bytes) -> int:
    """Offset of the Parquet footer (the Thrift file metadata) in a file's bytes."""
    (length,) = struct.unpack("<I", raw[-8:-4])
    return len(raw) - 8 - length


def _garble(case_dir: Path, name: str, start: int, length: int) -> None:
    """Overwrite ``length`` bytes from ``start`` (inside the pages) and keep the footer intact."""
    file = _table(case_dir, name)
    raw = bytearray(file.read_bytes())
    end = min(start + length, _footer_start(raw))
    raw[start:end] = bytes((i * 97 + 13) % 256 for i in range(end - start))
    file.write_bytes(bytes(raw))


def _garble_middle(case_dir: Path, name: str) -> None:
    """Garble the compressed data of the table's longest column chunk (headers intact)."""
    file = _table(case_dir, name)
    meta = pq.read_metadata(file).row_group(0)
    chunk = max(
        (meta.column(i) for i in range(meta.num_columns)), key=lambda c: c.total_compressed_size
    )
    start = chunk.data_page_offset + chunk.total_compressed_size // 3
    _garble(case_dir, name, start, chunk.total_compressed_size // 3)


def _huge_page_size(case_dir: Path, name: str) -> None:
    """Make the first page header claim a page far larger than the file (same byte length)."""
    file = _table(case_dir, name)
    raw = bytearray(file.read_bytes())
    pos = pq.read_metadata(file).row_group(0).column(0).data_page_offset
    pos = _page_header_sizes(raw, pos)
    raw[pos[0] : pos[1]] = _max_varint(pos[1] - pos[0])
    raw[pos[2] : pos[3]] = _max_varint(pos[3] - pos[2])
    file.write_bytes(bytes(raw))


def _page_header_sizes(raw: bytearray, at: int) -> tuple[int, int, int, int]:
    """Byte spans of uncompressed_page_size and compressed_page_size in a Thrift page header."""
    spans, pos = [], at
    for _ in range(3):  # fields 1-3, each an i32 in the compact protocol (header byte 0x15)
        if raw[pos] != 0x15:
            raise ValueError(f"unexpected Thrift field header {raw[pos]:#x} at {pos}")
        start = pos = pos + 1
        while raw[pos] & 0x80:
            pos += 1
        pos += 1
        spans.append((start, pos))
    return spans[1][0], spans[1][1], spans[2][0], spans[2][1]


def _max_varint(n: int) -> bytes:
    """The largest even (positive zig-zag) varint of ``n`` bytes."""
    return bytes([0xFE] + [0xFF] * (n - 2) + [0x7F]) if n > 1 else b"\x7e"


def _zip_rewrite(path: Path, extra: dict[str, bytes] | None = None, keep: bool = True) -> None:
    """Rewrite a zip archive (xlsx, qdpx), adding members; names are taken as given."""
    members: list[tuple[zipfile.ZipInfo | str, bytes]] = []
    if keep:
        with zipfile.ZipFile(path) as z:
            members = [(i, z.read(i)) for i in z.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for info, data in members:
            z.writestr(info, data)
        for name, data in (extra or {}).items():
            info = zipfile.ZipInfo(name, date_time=(2011, 7, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.filename = name  # ZipInfo strips a leading "/" and "../"; a hostile one does not
            z.writestr(info, data)
    path.write_bytes(buf.getvalue())


def _claim_huge(path: Path, member_suffix: str) -> None:
    """Make a zip member declare an uncompressed size of 3.75 GiB (a zip bomb's header)."""
    raw = bytearray(path.read_bytes())
    huge = struct.pack("<I", 0xF000_0000)
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        infos = [i for i in z.infolist() if i.filename.endswith(member_suffix)]
    for info in infos:
        raw[info.header_offset + 22 : info.header_offset + 26] = huge  # local header
    pos = 0
    while (pos := raw.find(b"PK\x01\x02", pos)) != -1:  # central directory entries
        (n,) = struct.unpack("<H", raw[pos + 28 : pos + 30])
        if bytes(raw[pos + 46 : pos + 46 + n]).decode().endswith(member_suffix):
            raw[pos + 24 : pos + 28] = huge
        pos += 4
    path.write_bytes(bytes(raw))


LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]>\n"
)


def _replace(path: Path, old: str, new: str, count: int = -1) -> None:
    text = path.read_text("utf-8")
    if old not in text:
        raise ValueError(f"{path}: {old!r} not found")
    path.write_text(text.replace(old, new, count), "utf-8")


def _project(case_dir: Path) -> Path:
    """A REFI-QDA project made from the dataset's coded segments and codebook."""
    from careval.qualitative import refi
    from careval.qualitative.evaluate import read_coding_inputs

    q = case_dir / "data" / "qualitative"
    seg, book, _ = read_coding_inputs(q / "coded_segments.csv", q / "codebook.qdc", "group")
    path = case_dir / "project.qdpx"
    refi.write_project(path, book, seg)
    return path


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
        lambda d: _garble_middle(d, "persons"),
    )
    add(
        "parquet_page_headers_garbled",
        "corrupt Parquet",
        V,
        ("inpatient_spells.parquet",),
        lambda d: _garble(d, "inpatient_spells", 4, 4096),
    )
    add(
        "parquet_pages_garbled_unvalidated_column",
        "corrupt Parquet",
        V,
        ("outpatient_appointments.parquet",),
        lambda d: _garble_middle(d, "outpatient_appointments"),
    )
    add(
        "parquet_pages_garbled_design",
        "corrupt Parquet",
        ("design", "--data", "{data}", "--json", "{out}/design.json", "--replicates", "50"),
        ("persons.parquet",),
        lambda d: _garble_middle(d, "persons"),
    )
    add(
        "parquet_page_size_impossible",
        "impossible sizes and offsets",
        V,
        ("persons.parquet",),
        lambda d: _huge_page_size(d, "persons"),
    )
    add(
        "parquet_footer_length_impossible",
        "impossible sizes and offsets",
        V,
        ("registrations.parquet",),
        lambda d: _footer_length(d, "registrations"),
    )
    add(
        "parquet_truncated",
        "truncated and zero-byte files",
        V,
        ("persons.parquet",),
        lambda d: _truncate(_table(d, "persons"), 0.5),
    )
    add(
        "parquet_zero_bytes",
        "truncated and zero-byte files",
        V,
        ("conditions.parquet",),
        lambda d: _table(d, "conditions").write_bytes(b""),
    )
    add(
        "parquet_is_csv",
        "wrong types",
        V,
        ("persons.parquet",),
        lambda d: _table(d, "persons").write_bytes(
            pq.read_table(_table(d, "persons")).to_pandas().to_csv(index=False).encode()
        ),
    )
    add(
        "parquet_is_directory",
        "wrong types",
        V,
        ("care_plans.parquet",),
        lambda d: (_table(d, "care_plans").unlink(), _table(d, "care_plans").mkdir()),
    )
    # --- missing table and column, wrong types
    add(
        "table_missing",
        "missing table and column",
        V,
        ("persons.*: required table missing",),
        lambda d: _table(d, "persons").unlink(),
    )
    add(
        "column_missing",
        "missing table and column",
        V,
        ("persons.sex",),
        lambda d: _rewrite(d, "persons", lambda t: t.drop_columns(["sex"])),
    )
    add(
        "type_date_as_string",
        "wrong types",
        V,
        ("persons.birth_month: wrong type",),
        lambda d: _rewrite(
            d,
            "persons",
            lambda t: _set_column(t, "birth_month", t["birth_month"].cast(pa.string())),
        ),
    )
    add(
        "type_int_as_string",
        "wrong types",
        V,
        ("mdg_attendance.attendees: wrong type",),
        lambda d: _rewrite(
            d,
            "mdg_attendance",
            lambda t: _set_column(t, "attendees", t["attendees"].cast(pa.string())),
        ),
    )
    add(
        "type_bool_as_int",
        "wrong types",
        V,
        ("care_plans.q_goals_agreed: wrong type",),
        lambda d: _rewrite(
            d,
            "care_plans",
            lambda t: _set_column(t, "q_goals_agreed", t["q_goals_agreed"].cast(pa.int8())),
        ),
    )
    add(
        "type_struct_column",
        "wrong types",
        V,
        ("persons.sex: wrong type",),
        lambda d: _rewrite(
            d,
            "persons",
            lambda t: _set_column(
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
        lambda d: _manifest(d, synthetic="false"),
        fixed_on="h-input",
    )
    # --- null and duplicate keys, orphans, NaN and infinity
    add(
        "key_null",
        "null and duplicate keys",
        V,
        ("persons.person_id: missing values",),
        lambda d: _rewrite(d, "persons", lambda t: _first_set(t, "person_id", None)),
    )
    add(
        "key_duplicate",
        "null and duplicate keys",
        V,
        ("inpatient_spells.spell_id: duplicate",),
        lambda d: _rewrite(
            d, "inpatient_spells", lambda t: _first_set(t, "spell_id", t["spell_id"][1].as_py())
        ),
    )
    add(
        "orphan_person",
        "orphans",
        V,
        ("inpatient_spells.person_id: not found",),
        lambda d: _rewrite(d, "inpatient_spells", lambda t: _first_set(t, "person_id", "NOBODY")),
    )
    add(
        "orphan_practice",
        "orphans",
        V,
        ("registrations.practice_code: not found",),
        lambda d: _rewrite(d, "registrations", lambda t: _first_set(t, "practice_code", "Z99999")),
    )
    add(
        "float_nan",
        "NaN and infinity",
        V,
        ("measurements.value",),
        lambda d: _rewrite(d, "measurements", lambda t: _first_set(t, "value", float("nan"))),
    )
    add(
        "float_inf",
        "NaN and infinity",
        V,
        ("inpatient_spells.cost",),
        lambda d: _rewrite(d, "inpatient_spells", lambda t: _first_set(t, "cost", float("inf"))),
    )
    add(
        "float_minus_inf",
        "NaN and infinity",
        V,
        ("innovation_fund.spent",),
        lambda d: _rewrite(d, "innovation_fund", lambda t: _first_set(t, "spent", float("-inf"))),
    )
    # --- real data: no example value printed
    add(
        "real_data_example_rows",
        "validation messages on real data",
        V,
        ("persons.person_id: duplicate key",),
        _real_duplicate,
        absent=(SECRET_ID,),
        fixed_on="h-input",
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
        lambda d: _replace(patients_csv(d), "respondent_id,", "id,", 1),
    )
    add(
        "survey_duplicate_respondent",
        "null and duplicate keys",
        S,
        ("patients.csv", "respondent_id"),
        lambda d: _replace(patients_csv(d), "PAT0002,", "PAT0001,", 1),
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
        lambda d: _truncate(d / "data" / "surveys" / "professionals.sav", 0.4),
    )
    add(
        "survey_xlsx_truncated",
        "truncated and zero-byte files",
        ("survey", "{data}/surveys/early_adopters.toml", "--json", "{out}/surveys.json"),
        ("early_adopters.xlsx",),
        lambda d: _truncate(d / "data" / "surveys" / "early_adopters.xlsx", 0.6),
    )
    add(
        "survey_xlsx_zip_bomb",
        "zip bombs",
        ("survey", "{data}/surveys/early_adopters.toml", "--json", "{out}/surveys.json"),
        ("early_adopters.xlsx",),
        lambda d: _claim_huge(d / "data" / "surveys" / "early_adopters.xlsx", "sheet1.xml"),
        fixed_on="h-qual",
    )
    add(
        "survey_xlsx_entity_expansion",
        "entity expansion",
        ("survey", "{data}/surveys/early_adopters.toml", "--json", "{out}/surveys.json"),
        ("early_adopters.xlsx",),
        _xlsx_laughs,
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
        lambda d: _replace(
            d / "data" / "surveys" / "patients.toml", "invited = 2000", 'invited = "many"'
        ),
    )
    add(
        "survey_path_escapes",
        "paths escaping",
        S,
        ("patients.toml", "secret.csv"),
        lambda d: _escape(d, "../../elsewhere/secret.csv"),
        fixed_on="h-qual",
    )
    add(
        "survey_path_absolute",
        "paths escaping",
        S,
        ("patients.toml", "secret.csv"),
        lambda d: _escape(d, str((d / "elsewhere" / "secret.csv").resolve())),
        fixed_on="h-qual",
    )
    # --- qualitative: roles, members, offsets, entities, bombs, columns
    add(
        "transcript_undeclared_role",
        "unchecked names",
        T,
        ("M000", "INTRUDER"),
        _intruder,
        fixed_on="h-qual",
    )
    add(
        "attendance_column_missing",
        "missing table and column",
        T,
        ("attendance.csv", "attendees"),
        lambda d: _replace(
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
        lambda d: _replace(
            d / "data" / "qualitative" / "coded_segments.csv",
            "coder,code,text",
            "coder,kode,text",
            1,
        ),
    )
    add("codebook_entity_expansion", "entity expansion", QC, ("codebook.qdc",), _qdc_laughs)
    add(
        "qdpx_member_parent",
        "unchecked names",
        Q,
        ("project.qdpx", "../../x"),
        lambda d: _zip_rewrite(_project(d), {"sources/../../x.txt": b"escaped"}),
        fixed_on="h-qual",
    )
    add(
        "qdpx_member_absolute",
        "unchecked names",
        Q,
        ("project.qdpx", "/tmp/"),
        lambda d: _zip_rewrite(_project(d), {"/tmp/careval-absolute.txt": b"absolute"}),
        fixed_on="h-qual",
    )
    add(
        "qdpx_zip_bomb",
        "zip bombs",
        Q,
        ("project.qdpx",),
        lambda d: _claim_huge(_project(d), "project.qde"),
    )
    add(
        "qdpx_not_zip",
        "truncated and zero-byte files",
        Q,
        ("project.qdpx",),
        lambda d: _truncate(_project(d), 0.5),
    )
    add(
        "qdpx_segment_offset_huge",
        "segment offsets",
        (*Q, "--export-qdpx", "{out}/export.qdpx"),
        ("project.qdpx", "endPosition"),
        _huge_offset,
        fixed_on="h-qual",
    )
    add(
        "segments_csv_offset_huge",
        "segment offsets",
        (*QC, "--export-qdpx", "{out}/export.qdpx"),
        ("coded_segments.csv", "end"),
        _huge_csv_offset,
        fixed_on="h-qual",
    )
    # --- user files, markers and output folders
    add(
        "synth_overwrite_user_folder",
        "user files deleted",
        ("synth", "--out", "{out}", "--persons", "1000", "--overwrite"),
        ("{out}",),
        _user_files,
        copy_data=False,
        fixed_on="h-files",
    )
    add(
        "run_out_inside_data",
        "user files deleted",
        ("run", "--data", "{data}", "--out", "{data}/report"),
        ("--out",),
        fixed_on="h-files",
        slow=True,
    )
    add(
        "run_figures_user_files",
        "user files deleted",
        ("run", "--data", "{data}", "--out", "{out}"),
        ("{out}", "figures"),
        lambda d: _user_files(d, "figures"),
        fixed_on="h-files",
        slow=True,
    )
    add(
        "demo_over_real_dataset",
        "user files deleted",
        ("demo", "--out", "{case}/demo", "--persons", "1000"),
        ("dataset.json",),
        _real_demo,
        copy_data=False,
        fixed_on="h-files",
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
        lambda d: _series(d, {5: "inf"}),
        copy_data=False,
    )
    add(
        "spc_value_text",
        "wrong types",
        SPC,
        ("series.csv", "rate"),
        lambda d: _series(d, {3: "n/a?"}),
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
        lambda d: _units(d, {"risk": (4, "nan")}),
        copy_data=False,
    )
    add(
        "match_treatment_not_binary",
        "wrong types",
        MATCH,
        ("units.csv", "treated"),
        lambda d: _units(d, {"treated": (2, "2")}),
        copy_data=False,
    )
    add(
        "did_outcome_inf",
        "NaN and infinity",
        DID,
        ("panel.csv", "y"),
        lambda d: _panel(d, {7: "-inf"}),
        copy_data=False,
    )
    add(
        "did_column_missing",
        "missing table and column",
        (*DID[:8], "visits", *DID[9:]),
        ("panel.csv", "visits"),
        lambda d: _panel(d, {}),
        copy_data=False,
    )
    # --- small counts: suppressed in the protected output, and not recoverable from the rest
    add(
        "survey_small_group_recoverable",
        "small counts recoverable",
        (*S, "--protect"),
        (),
        _small_group,
        expect="protected",
        fixed_on="h-audit",
    )
    # --- formula injection into tables.xlsx: the run succeeds and the workbook holds no formula
    add(
        "workbook_formula_injection",
        "formula injection",
        ("run", "--data", "{data}", "--out", "{out}/run"),
        (),
        _formulas,
        expect="workbook",
        fixed_on="h-input",
        slow=True,
    )
    return specs


def _footer_length(d: Path, name: str) -> None:
    file = _table(d, name)
    raw = bytearray(file.read_bytes())
    raw[-8:-4] = struct.pack("<I", 0x7FFF_FFF0)
    file.write_bytes(bytes(raw))


def _truncate(path: Path, share: float) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * share)])


def _real_duplicate(d: Path) -> None:
    _manifest(d, synthetic=False)

    def change(t: pa.Table) -> pa.Table:
        ids = t["person_id"].to_pylist()
        ids[0] = ids[1] = SECRET_ID
        return _set_column(t, "person_id", pa.array(ids, pa.string()))

    for table in ("persons",):
        _rewrite(d, table, change)


def _escape(d: Path, target: str) -> None:
    elsewhere = d / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(d / "data" / "surveys" / "patients.csv", elsewhere / "secret.csv")
    _replace(
        d / "data" / "surveys" / "patients.toml",
        'data = "patients.csv"',
        f"data = {json.dumps(target)}",
    )


def _intruder(d: Path) -> None:
    folder = d / "data" / "qualitative" / "transcripts"
    file = sorted(folder.glob("*.txt"))[0]
    text = file.read_text("utf-8").rstrip("\n") + "\nINTRUDER [individual]: Nobody asked me in.\n"
    file.write_text(text, "utf-8")


def _qdc_laughs(d: Path) -> None:
    file = d / "data" / "qualitative" / "codebook.qdc"
    body = file.read_text("utf-8").split("?>", 1)[1]
    body = body.replace("How the pilot was led", "&lol9; How the pilot was led", 1)
    file.write_bytes(LAUGHS + body.encode())


def _xlsx_laughs(d: Path) -> None:
    """A workbook whose shared strings expand an entity a billion times (the billion laughs)."""
    path = d / "data" / "surveys" / "early_adopters.xlsx"
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    name = (
        "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in members else "xl/worksheets/sheet1.xml"
    )
    body = members[name].split(b"?>", 1)[-1]
    at = re.search(rb"<t[ >]", body).start()  # type: ignore[union-attr]
    at = body.index(b">", at) + 1
    members[name] = LAUGHS + body[:at] + b"&lol9;" + body[at:]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, data in members.items():
            z.writestr(n, data)
    path.write_bytes(buf.getvalue())


def _huge_offset(d: Path) -> None:
    path = _project(d)
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    name = next(n for n in members if n.endswith(".qde"))
    xml = members[name].decode()
    at = xml.index('endPosition="')
    end = xml.index('"', at + len('endPosition="'))
    members[name] = (xml[:at] + 'endPosition="999999999999"' + xml[end + 1 :]).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, data in members.items():
            z.writestr(n, data)
    path.write_bytes(buf.getvalue())


def _huge_csv_offset(d: Path) -> None:
    """Coded segments with character positions, one ending at 999,999,999,999."""
    path = d / "data" / "qualitative" / "coded_segments.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows[0] += ["start", "end"]
    for i, row in enumerate(rows[1:]):
        row += ["0", str(len(row[rows[0].index("text")]))] if i else ["0", "999999999999"]
    _write_csv(path, rows)


def _user_files(d: Path, sub: str = "") -> None:
    folder = d / "out" / sub
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my-notes.txt").write_text("a user's file careval did not write\n", "utf-8")
    (folder / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n not careval's")


def _real_demo(d: Path) -> None:
    """``demo --out DIR`` where DIR/data is a real dataset (another size, so not reused)."""
    shutil.copytree(d.parent / "_base", d / "demo" / "data")
    (d / "demo" / "data" / "truth.json").unlink(missing_ok=True)
    file = d / "demo" / "data" / "dataset.json"
    manifest = json.loads(file.read_text("utf-8"))
    manifest["synthetic"] = False
    manifest.pop("settings", None)
    file.write_text(json.dumps(manifest, indent=2), "utf-8")


def _series(d: Path, bad: dict[int, str]) -> None:
    """24 monthly rates, with ``bad`` values at the given rows."""
    rows = [["month", "rate"]]
    for i in range(24):
        rows.append([f"{2012 + i // 12}-{i % 12 + 1:02d}-01", bad.get(i, f"{10 + (i * 7) % 5}")])
    _write_csv(d / "series.csv", rows)


def _units(d: Path, bad: dict[str, tuple[int, str]]) -> None:
    """60 units (a third treated) with two covariates, with ``bad`` cells (column: row, value)."""
    rows = [["unit", "treated", "age", "risk"]]
    for i in range(60):
        row = {
            "unit": f"U{i:03d}",
            "treated": str(int(i % 3 == 0)),
            "age": str(60 + i % 25),
            "risk": f"{(i * 37 % 100) / 100:.2f}",
        }
        for col, (at, value) in bad.items():
            if i == at:
                row[col] = value
        rows.append(list(row.values()))
    _write_csv(d / "units.csv", rows)


def _panel(d: Path, bad: dict[int, str]) -> None:
    """20 units over 8 periods (half first treated in period 5), with ``bad`` outcomes."""
    rows = [["unit", "period", "y", "first"]]
    for u in range(20):
        for t in range(1, 9):
            i = len(rows) - 1
            y = bad.get(i, f"{(u * 3 + t * 5) % 11 + (2 if u % 2 and t >= 5 else 0)}")
            rows.append([f"U{u:02d}", str(t), y, "5" if u % 2 else ""])
    _write_csv(d / "panel.csv", rows)


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def _small_group(d: Path) -> None:
    """Only five patients with a care plan: their group's counts are all small."""
    path = d / "data" / "surveys" / "patients.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    group, seen = rows[0].index("has_care_plan"), 0
    for row in rows[1:]:
        if row[group] == "Yes":
            seen += 1
            if seen > 5:
                row[group] = "No or not sure"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def _formulas(d: Path) -> None:
    """Survey labels, open text and code names that a spreadsheet would run as formulas."""
    s = d / "data" / "surveys"
    _replace(
        s / "patients.toml",
        'label = "Has a care plan"',
        'label = "=HYPERLINK(\\"http://x\\",\\"a\\")"',
    )
    with open(s / "patients.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    comments = rows[0].index("comments")
    for row, text in zip(rows[1:4], ("+1+cmd|' /C calc'!A0", "=1+1", "@SUM(A1:A9)"), strict=True):
        row[comments] = text
    with open(s / "patients.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    q = d / "data" / "qualitative"
    for f in ("coded_segments.csv", "codebook.qdc"):
        _replace(q / f, "Role clarity", "@SUM(1+1)")
        _replace(q / f, "Escalation", "-2+3")


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
