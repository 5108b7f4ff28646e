"""``careval import hes``: HES-shaped extracts (APC, and A&E and outpatients when given) into a
canonical careval dataset, in DuckDB.

The rules (which episodes are kept, how spells are built, where the people come from) are in
``docs/import-hes.md``; the steps are in :mod:`.hes_spells` (episodes and spells),
:mod:`.hes_events` (A&E and outpatients) and :mod:`.hes_people` (people, registrations,
practices, conditions; or a base dataset). :func:`import_hes` runs them and writes the dataset
through :func:`careval.folders.new_folder`: on any error nothing is left at ``out``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from careval.data.adapters import hes_events, hes_people, hes_spells
from careval.data.adapters.common import (
    ImportReport,
    connect,
    raise_findings,
    read_extract,
    require_columns,
    write_manifest,
    write_tables,
)
from careval.data.adapters.hes_rows import drop_where
from careval.data.schema import TABLES
from careval.errors import ConfigError
from careval.files import sha256
from careval.folders import new_folder

NHS_KEYS = ("nhs_number", "newnhsno")
# What the engine may hold in memory before it spills to its temporary folder: a quarter of the
# machine's memory, at least 4 GiB (never more than DuckDB's own default, 80%). A whole-region
# extract then peaks near 6.5 GiB on a 24 GiB machine, a few seconds slower than unbounded.
MEMORY_SHARE = 0.25
MEMORY_FLOOR = 4 * 2**30
BASE_EXTRAS = ("surveys", "qualitative")  # folders of a base dataset the analyses read
TRUTH_FILES = ("truth.json", "true_risk.parquet")  # a synthetic base's truth


@dataclass(frozen=True)
class HesFiles:
    """The extract's files: APC (required), A&E and outpatients (optional)."""

    apc: Path
    ae: Path | None = None
    op: Path | None = None

    def named(self) -> dict[str, Path]:
        """``{"APC": path, ...}`` for the files given."""
        files = {"APC": self.apc, "A&E": self.ae, "OP": self.op}
        return {k: Path(v) for k, v in files.items() if v is not None}


def memory_limit() -> str | None:
    """The engine's memory limit for an import (:data:`MEMORY_SHARE`), None when the machine's
    memory cannot be read (DuckDB's default then)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    limit = min(max(MEMORY_FLOOR, int(total * MEMORY_SHARE)), int(total * 0.8))
    return f"{limit // 2**20}MiB"


def person_column(columns: list[str], path: Path, what: str, keyed: bool) -> tuple[str, bool]:
    """The person key column of a file and whether it holds NHS numbers.

    With a key: NHS_NUMBER or NEWNHSNO when present, else HESID (tokenised too). Without one:
    HESID; a file with NHS numbers only is refused (they must not become person ids).
    """
    if keyed:
        nhs = next((c for c in NHS_KEYS if c in columns), None)
        if nhs:
            return nhs, True
    if "hesid" in columns:
        return "hesid", False
    if not keyed and any(c in columns for c in NHS_KEYS):
        raise ConfigError(
            f"{what} {path}: the person key is an NHS number (NHS_NUMBER or NEWNHSNO) and no "
            "--key-file was given: NHS numbers are pseudonymised on the way in (make a key "
            "with careval keygen), or give HESID"
        )
    require_columns(columns, path, what, [("hesid", *NHS_KEYS)])
    raise AssertionError("unreachable")  # pragma: no cover


def pseudonymise_person_keys(
    con: duckdb.DuckDBPyConnection,
    table: str,
    key: bytes,
    nhs: bool,
    file: str,
    report: ImportReport,
) -> None:
    """Replace ``person`` in ``table`` by keyed tokens (:mod:`.pseudonymise`); rows whose NHS
    number fails its check are dropped and counted by reason. The key is not kept anywhere."""
    from careval.data.adapters.pseudonymise import REASONS, pseudonymise_column

    rel, done = pseudonymise_column(con, table, "person", key, nhs=nhs)
    rel.to_table(f"{table}_keyed")
    con.execute(f"DROP TABLE {table}; ALTER TABLE {table}_keyed RENAME TO {table}")
    for reason, n in done.invalid_by_reason.items():
        report.drop(file, f"NHS number invalid: {REASONS[reason]}", n)
    report.drop(file, "person key blank", done.missing)
    report.key_fingerprint = done.key_fingerprint


def import_hes(
    out: Path,
    files: HesFiles,
    *,
    key_file: Path | None = None,
    base: Path | None = None,
    practices: Path | None = None,
    imd_lookup: Path | None = None,
    cips: bool = False,
    extract_date: dt.date | None = None,
    encoding: str = "utf-8",
    synthetic: bool = False,
    overwrite: bool = False,
) -> ImportReport:
    """Import a HES extract into a new dataset at ``out``; return the import report.

    Parameters
    ----------
    out
        The dataset folder to write (nothing is left there on an error).
    files
        The APC extract, and the A&E and outpatient extracts when given.
    key_file
        A key (``careval keygen``): NHS numbers (or HESIDs) become keyed tokens.
    base
        A canonical dataset giving the persons, registrations, practices and every table that
        is not a hospital table; the HES tables replace its hospital tables.
    practices, imd_lookup
        Without ``base``: a CSV of practice_code, area (locality, mdg), and one of LSOA11,
        IMD_DECILE.
    cips
        Join provider spells into continuous inpatient spells.
    extract_date
        The day the extract was taken (default: the latest date in it, or the base's).
    synthetic
        Flag the dataset synthetic: only for a synthetic extract, and refused with a base not
        flagged synthetic.
    """
    named = files.named()
    base_manifest = _check_options(base, practices, imd_lookup, synthetic, extract_date)
    key = None
    if key_file is not None:
        from careval.data.adapters.pseudonymise import read_key

        key = read_key(key_file)
    report = ImportReport("hes")
    for name, path in named.items():
        if not path.is_file():
            what = "a directory, not a file" if path.is_dir() else "no such file"
            raise ConfigError(f"the {name} extract {path}: {what}")
    _check_inputs_outside(Path(out), [*named.values(), practices, imd_lookup, base])
    hashes = {name: sha256(path) for name, path in named.items()}
    with new_folder(out, "dataset", overwrite=overwrite) as tmp:
        con = connect()
        limit = memory_limit()
        if limit:
            con.execute(f"SET memory_limit = '{limit}'")
        try:
            made = _run(
                con,
                named,
                report,
                key,
                base,
                practices,
                imd_lookup,
                cips,
                extract_date,
                base_manifest,
                encoding,
            )
            rows = write_tables(con, tmp, made.tables)
        finally:
            con.close()
        if base is not None:
            rows = {**_copy_base(base, tmp, synthetic, set(made.tables)), **rows}
        report.tables = {n: rows[n] for n in TABLES if n in rows}
        report.write(tmp)
        inputs = {
            name: {"file": path.name, "sha256": hashes[name], "rows": report.files[name]["rows"]}
            for name, path in named.items()
        }
        more: dict[str, Any] = {"inputs": inputs, "continuous_inpatient_spells": cips}
        if base is not None:
            more["base"] = {"path": str(base), "synthetic": base_manifest.get("synthetic") is True}
            if synthetic and "settings" in base_manifest:  # the generator's: the same people
                more["settings"] = base_manifest["settings"]
        if report.key_fingerprint:
            more["key_fingerprint"] = report.key_fingerprint
        write_manifest(
            tmp,
            generator="careval import hes",
            synthetic=synthetic,
            extract_date=made.extract_date.isoformat(),
            rows=report.tables,
            more=more,
        )
    return report


def _check_inputs_outside(out: Path, inputs: list[Path | None]) -> None:
    """Refuse an --out that is, or holds, an input: replacing it would remove the input."""
    where = out.resolve()
    for path in inputs:
        if path is not None and Path(path).resolve().is_relative_to(where):
            raise ConfigError(
                f"--out {out} holds the input {path}: write the dataset somewhere else (the "
                "inputs are never altered or removed)"
            )
        if path is not None and Path(path).is_dir() and where.is_relative_to(Path(path).resolve()):
            raise ConfigError(
                f"--out {out} is inside the input {path}: write the dataset outside it (a "
                "dataset is never written into another)"
            )


def _check_options(
    base: Path | None,
    practices: Path | None,
    imd_lookup: Path | None,
    synthetic: bool,
    extract_date: dt.date | None,
) -> dict[str, Any]:
    """Refuse options that do not go together; the base's manifest ({} without a base)."""
    if extract_date is not None and extract_date > dt.date.today():
        raise ConfigError(f"--extract-date {extract_date} is after today")
    if base is None:
        return {}
    if practices is not None or imd_lookup is not None:
        raise ConfigError(
            "--practices and --imd-lookup describe the people of an extract without --base; "
            "with --base the practices and persons come from the base"
        )
    base = Path(base)
    if not (base / "persons.parquet").is_file():
        raise ConfigError(f"--base {base}: not a careval dataset (no persons.parquet)")
    manifest: dict[str, Any] = {}
    if (base / "dataset.json").is_file():
        try:
            manifest = json.loads((base / "dataset.json").read_text("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"--base {base}: dataset.json is not valid JSON") from None
    if synthetic and manifest.get("synthetic") is not True:
        raise ConfigError(
            f"--synthetic: the base {base} is not flagged synthetic; a dataset linked to real "
            "data is real"
        )
    return manifest


@dataclass
class _Made:
    tables: dict[str, str]
    extract_date: dt.date


def _load(
    con: duckdb.DuckDBPyConnection,
    named: dict[str, Path],
    report: ImportReport,
    keyed: bool,
    with_base: bool,
    encoding: str,
) -> dict[str, tuple[list[str], str, bool]]:
    """Read every file, check its columns, dates and costs (one message for all problems)."""
    spec = {
        "APC": ("apc_raw", hes_spells.COLUMNS, "the APC extract"),
        "A&E": ("ae_raw", hes_events.AE_COLUMNS, "the A&E extract"),
        "OP": ("op_raw", hes_events.OP_COLUMNS, "the outpatient extract"),
    }
    loaded: dict[str, tuple[list[str], str, bool]] = {}
    findings = []
    for name, path in named.items():
        table, wanted, what = spec[name]
        columns = read_extract(
            con, path, table, what=what, encoding=encoding, only=wanted, view=True
        )
        person, nhs = person_column(columns, path, what, keyed)
        kept = [c for c in columns if c in wanted]
        if name == "APC":
            needed = list(hes_spells.REQUIRED)
            if not with_base:
                needed += ["sex", ("mydob", "startage")]
            require_columns(columns, path, what, needed)
            hes_spells.load_episodes(con, kept, person)  # typed once, checked from that
            findings += hes_spells.check_apc(con, columns, path)
            typed = "ep"
        else:
            required = hes_events.AE_REQUIRED if name == "A&E" else hes_events.OP_REQUIRED
            require_columns(columns, path, what, required)
            typed = table.removesuffix("_raw")
            load = hes_events.load_ae if name == "A&E" else hes_events.load_op
            load(con, kept, person)
            findings += hes_events.check_file(con, typed, columns, path, what)
        rows = int(con.execute(f"SELECT count(*) FROM {typed}").fetchall()[0][0])
        report.read(name, path, rows)
        loaded[name] = (kept, person, nhs)
    raise_findings(findings)
    kinds = {nhs for _, _, nhs in loaded.values()}
    if len(kinds) > 1:  # tokens of NHS numbers and of HESIDs never match: nothing would link
        by = {n: ("NHS numbers" if nhs else "HESID") for n, (_, _, nhs) in loaded.items()}
        raise ConfigError(
            "the files are keyed by different person keys ("
            + ", ".join(f"{n}: {k}" for n, k in by.items())
            + "): their tokens could never link. Give every file the same key column (NHS_NUMBER "
            "or NEWNHSNO in all, or HESID in all)"
        )
    return loaded


def _run(
    con: duckdb.DuckDBPyConnection,
    named: dict[str, Path],
    report: ImportReport,
    key: bytes | None,
    base: Path | None,
    practices: Path | None,
    imd_lookup: Path | None,
    cips: bool,
    extract_date: dt.date | None,
    base_manifest: dict[str, Any],
    encoding: str,
) -> _Made:
    """Every step from the files to the SQL of each table written (the hospital tables in
    order of their ids: the same dataset whatever the order of the extract's rows)."""
    loaded = _load(con, named, report, key is not None, base is not None, encoding)
    if practices is not None:
        hes_people.read_practices(con, practices, encoding)
    if imd_lookup is not None:
        hes_people.read_imd(con, imd_lookup, encoding)

    _, person, nhs = loaded["APC"]
    hes_spells.episodes(con, report)
    if key is not None:
        pseudonymise_person_keys(con, "ep", key, nhs, "APC", report)
    hes_spells.drop_undated(con, report)
    unique = hes_spells.provider_spells(con, report)
    hes_spells.spells(con, report, cips=cips, unique_ids=unique)
    events = {"A&E": ("ae", hes_events.ae_rows), "OP": ("op", hes_events.op_rows)}
    present = []
    for name, (table, build) in events.items():
        if name in loaded:
            _, person, nhs = loaded[name]
            build(con, report)
            if key is not None:
                pseudonymise_person_keys(con, table, key, nhs, name, report)
            hes_events.drop_undated(con, table, report)
            present.append((name, table))

    when = extract_date or _latest(con, present, base_manifest)
    hes_spells.drop_out_of_range(con, report, when)
    dated = {"ae": "arrival_date", "op": "appointment_date"}
    for name, table in present:
        drop_where(
            con, table, f"{dated[table]} < DATE '1900-01-01'", report, name, "dated before 1900"
        )
        drop_where(
            con,
            table,
            f"{dated[table]} > DATE '{when.isoformat()}'",
            report,
            name,
            f"dated after the extract date {when.isoformat()}",
        )

    if base is None:
        hes_people.extract_people(con, report, imd_lookup is not None)
        con.execute("DROP TABLE ep")  # the people hold what the rest needs of the episodes
        hes_people.outside_life(con, "spell", "admission_date", "admission_date", "APC", report)
        hes_people.set_deaths(con)
        hes_people.outside_life(con, "spell", "admission_date", "discharge_date", "APC", report)
        against = "APC persons"
    else:
        con.execute("DROP TABLE ep")
        hes_people.base_people(con, Path(base))
        report.linkage["APC"] = hes_people.match(con, "spell", "APC", report, "base persons")
        hes_people.outside_life(con, "spell", "admission_date", "discharge_date", "APC", report)
        against = "base persons"
    for name, table in present:
        report.linkage[name] = hes_people.match(con, table, name, report, against)
        hes_people.outside_life(con, table, dated[table], dated[table], name, report)

    written = hes_spells.count(con, "spell")
    if not written:  # every spell dropped: say why rather than write an empty dataset
        why = "; ".join(f"{f}: {c:,} {r}" for f, r, c in report.dropped[:6]) or "none recorded"
        raise ConfigError(
            f"the APC extract {named['APC']}: no spell is left to import (rows dropped: {why}). "
            "Check --extract-date, the person key and the columns' codes"
        )
    report.step("spells written", written)
    report.step("emergency spells (regular attenders left out)", hes_spells.emergency_count(con))
    tables = {
        "inpatient_spells": (
            "SELECT spell_id, person AS person_id, admission_date, discharge_date, "
            "admission_method, patient_classification, primary_diagnosis, "
            f"{hes_spells.cost_sql()} AS cost FROM spell ORDER BY spell_id"
        ),
    }
    if "A&E" in loaded:
        tables["ae_attendances"] = (
            "SELECT aekey AS attendance_id, person AS person_id, arrival_date, disposal, cost "
            "FROM ae ORDER BY aekey"
        )
    if "OP" in loaded:
        tables["outpatient_appointments"] = (
            "SELECT attendkey AS appointment_id, person AS person_id, appointment_date, "
            "specialty, first_attendance, attended, cost FROM op ORDER BY attendkey"
        )
    if base is None:
        start = _earliest(con, present)
        hes_people.registrations(con, start)
        hes_people.practices(con, practices is not None)
        bad = hes_people.unusable_diagnoses(con)
        if bad:
            report.step("episode diagnoses that are no ICD-10 code (left out of conditions)", bad)
        tables = {
            "persons": "SELECT * FROM people ORDER BY person_id",
            "practices": "SELECT * FROM prac ORDER BY practice_code",
            "registrations": "SELECT * FROM reg ORDER BY person_id, start_date",
            "conditions": hes_people.conditions_sql() + " ORDER BY person_id, date, code",
            **tables,
        }
    return _Made(tables, when)


def _dates(present: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(table, first date, last date) of every table of events."""
    cols = {"ae": "arrival_date", "op": "appointment_date"}
    return [("spell", "admission_date", "discharge_date")] + [
        (t, cols[t], cols[t]) for _, t in present
    ]


def _latest(
    con: duckdb.DuckDBPyConnection, present: list[tuple[str, str]], base: dict[str, Any]
) -> dt.date:
    """The latest date in the extract (and the base's extract date), no later than today."""
    today = dt.date.today()
    found = [
        con.execute(f"SELECT max({last}) FROM {t} WHERE {last} <= DATE '{today}'").fetchall()[0][0]
        for t, _, last in _dates(present)
    ]
    if isinstance(base.get("extract_date"), str):
        try:
            found.append(dt.date.fromisoformat(base["extract_date"]))
        except ValueError:
            pass
    dates = [d for d in found if d is not None]
    return min(max(dates), today) if dates else today


def _earliest(con: duckdb.DuckDBPyConnection, present: list[tuple[str, str]]) -> dt.date:
    """The first day of the month of the earliest event kept."""
    found = [
        con.execute(f"SELECT min({first}) FROM {t}").fetchall()[0][0]
        for t, first, _ in _dates(present)
    ]
    dates = [d for d in found if d is not None]
    first = min(dates) if dates else dt.date.today()
    return first.replace(day=1)


def _copy_base(base: Path, folder: Path, synthetic: bool, written: set[str]) -> dict[str, int]:
    """Copy the base's tables the import did not write (its hospital tables only when no HES
    file of that kind was given), its surveys and qualitative folders, and its truth when the
    output is synthetic, as they are; their rows."""
    import pyarrow.parquet as pq

    rows: dict[str, int] = {}
    for name in TABLES:
        src = base / f"{name}.parquet"
        if name in written or not src.is_file():
            continue
        shutil.copyfile(src, folder / src.name)
        rows[name] = int(pq.ParquetFile(folder / src.name).metadata.num_rows)
    for sub in BASE_EXTRAS:
        if (base / sub).is_dir():
            shutil.copytree(base / sub, folder / sub)
    for name in TRUTH_FILES if synthetic else ():
        if (base / name).is_file():
            shutil.copyfile(base / name, folder / name)
    return rows
