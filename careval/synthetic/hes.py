"""The canonical tables written as HES-shaped extracts: ``write_hes(source, out, seed)``.

Three files, CSV (or Parquet), with the HES data dictionary's upper-case field names:

``apc`` (one row per consultant episode)
    ``HESID`` (the ``person_id``), ``EPIKEY`` (unique episode key), ``EPIORDER`` (1, 2, ... within
    the provider spell), ``EPISTAT`` (3 finished, 1 unfinished), ``PROVSPNO``, ``PROCODE3``,
    ``ADMIDATE``, ``EPISTART``, ``EPIEND``, ``DISDATE``, ``ADMIMETH``, ``ADMISORC``, ``CLASSPAT``,
    ``DISDEST``, ``DISMETH``, ``DIAG_4_01`` to ``DIAG_4_05``, ``OPERTN_4_01``, ``STARTAGE``,
    ``MYDOB`` (``mmyyyy``), ``SEX`` (1 male, 2 female), ``LSOA11``, ``GPPRAC`` (the practice
    registered with on ``ADMIDATE``, ``V81999`` when none) and ``COST`` (not a HES field: the
    spell's canonical cost on its first episode, 0 on the others).
``ae`` (one row per attendance)
    ``HESID``, ``AEKEY`` (the ``attendance_id``), ``ARRIVALDATE``, ``AEATTENDDISP``,
    ``AEATTENDCAT`` (1), ``PROCODE3``, ``SEX``, ``STARTAGE``, ``MYDOB``, ``LSOA11``, ``GPPRAC``,
    ``COST``.
``op`` (one row per appointment)
    ``HESID``, ``ATTENDKEY`` (the ``appointment_id``), ``APPTDATE``, ``ATTENDED``, ``FIRSTATT``,
    ``TRETSPEF`` (the specialty), ``PROCODE3``, ``SEX``, ``STARTAGE``, ``MYDOB``, ``LSOA11``,
    ``GPPRAC``, ``COST``.

Dates are ISO ``yyyy-mm-dd`` (``date_format="dmy"``: ``dd/mm/yyyy``); a date an episode does not
have is the HES null date ``1800-01-01``. Realism injected, each share in :data:`SHARES` and the
counts achieved in the summary returned: provider spells of 2 or 3 consultant episodes with
contiguous dates; transfers, an emergency spell written as two provider spells at two providers
(the first ending ``DISDEST`` 51, the second starting ``ADMISORC`` 51, ``ADMIMETH`` 81,
``PROVSPNO`` the spell id with ``T`` appended, the same day); exact duplicate episode rows;
unfinished episodes (``EPISTAT`` 1) that are no canonical spell; regular day attenders kept with
their canonical ``CLASSPAT``. The rules that give back the canonical tables, and every code, are
in ``docs/hes-extracts.md``; rows are in a seeded random order (a reader must not rely on it).

Everything is vectorised (NumPy for the structure, DuckDB for the joins and the writing), and
deterministic with the seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from careval.data.schema import EMERGENCY_METHODS
from careval.errors import ConfigError
from careval.synthetic.hes_sql import (
    DATE_FORMATS,
    ae_sql,
    apc_sql,
    copy,
    op_sql,
    register_conditions,
    register_registrations,
)
from careval.synthetic.tables import NULL_DAY, dates

FileFormat = Literal["csv", "parquet"]
DateFormat = Literal["iso", "dmy"]
FILE_FORMATS = ("csv", "parquet")
NEEDED = ("persons", "registrations", "inpatient_spells")
OPTIONAL = ("conditions", "ae_attendances", "outpatient_appointments")
FILES = {"apc": "inpatient_spells", "ae": "ae_attendances", "op": "outpatient_appointments"}

SHARES = {
    "two_episodes": 0.11,  # of provider spells other than regular attenders (CLASSPAT 3, 4)
    "three_episodes": 0.04,
    "transferred": 0.02,  # of emergency spells of 2+ days (those isolated; see below)
    "unfinished": 0.01,  # extra EPISTAT 1 episodes, as a share of the finished episodes
    "duplicated": 0.02,  # of all episode rows, written twice
}
HOME_PROVIDER = 0.85  # share of a person's spells, attendances and appointments at their own
LOCAL_PROVIDERS = ("RYJ", "RQM", "RV8", "RC3", "RAS", "RFW")  # NW London acute trusts
TERTIARY_PROVIDERS = ("RRV", "RJ1", "RT3", "RAL")  # where transfers go
PROVIDERS = LOCAL_PROVIDERS + TERTIARY_PROVIDERS
ISOLATION_DAYS = 3  # no other spell of the person starts or ends this close to a transfer
UNFINISHED_DAYS = 90  # unfinished episodes start within this many days of the last discharge
TRANSFER_CODE = "51"  # DISDEST and ADMISORC: NHS other hospital provider, general ward
TRANSFER_METHOD = "81"  # ADMIMETH: transfer of an admitted patient from another provider
HOME = "19"  # ADMISORC and DISDEST: usual place of residence
DIED_DEST = "79"  # DISDEST: not applicable, patient died
DISCHARGED, DIED, STILL_IN = "1", "4", "8"  # DISMETH (8: not applicable, still in hospital)
STILL_IN_DEST = "98"  # DISDEST: not applicable, still in hospital
LATER_DIAGNOSES = ("Z501", "R268", "R296", "Z751", "J189", "N390")  # a later episode's own
UNFINISHED_DIAGNOSES = ("J189", "N390", "R074", "I509", "J441", "S720")
UNFINISHED_METHODS = (("21", "22", "2A", "11"), (0.6, 0.1, 0.1, 0.2))
OPERATIONS = {  # OPERTN_4_01 on a spell's first episode, by its primary diagnosis
    "H251": "C712", "H269": "C751", "K409": "T202", "M171": "W401", "M161": "W371",
    "Z511": "X352", "K802": "J183", "N40X": "M651", "D126": "H221", "N185": "X403",
    "O800": "R241", "S720": "W461",
}  # fmt: skip
AE_DISPOSAL_CODES = {  # canonical disposal -> (AEATTENDDISP codes, shares)
    "admitted": (("01",), (1.0,)),
    "discharged": (("02", "03"), (0.7, 0.3)),
    "referred": (("04", "05", "06", "07", "11"), (0.2, 0.4, 0.2, 0.1, 0.1)),
    "died": (("10",), (1.0,)),
    "left": (("12", "13"), (0.5, 0.5)),
    "other": (("14",), (1.0,)),
}
OP_ATTENDED_CODES = {True: (("5", "6"), (0.9, 0.1)), False: (("3", "2", "4"), (0.7, 0.2, 0.1))}
OP_FIRST_CODES = {True: (("1", "3"), (0.9, 0.1)), False: (("2", "4"), (0.9, 0.1))}


def write_hes(
    source: str | Path | Mapping[str, pa.Table],
    out: str | Path,
    seed: int,
    *,
    file_format: FileFormat = "csv",
    date_format: DateFormat = "iso",
) -> dict[str, Any]:
    """Write the canonical tables of ``source`` as HES-shaped extracts into the folder ``out``.

    Parameters
    ----------
    source
        A dataset directory (``<table>.parquet`` files) or the tables themselves, by name:
        ``persons``, ``registrations`` and ``inpatient_spells`` are needed; ``conditions``,
        ``ae_attendances`` and ``outpatient_appointments`` are used when present (no ``ae`` or
        ``op`` file is written without its table).
    out
        Folder to write ``apc``, ``ae`` and ``op`` into (``.csv`` or ``.parquet``); created if
        absent. A file already there is never replaced.
    seed
        Seed of every random choice: the same tables and seed give the same files.
    file_format
        ``csv`` (text; empty fields are nulls) or ``parquet`` (ISO dates as Parquet dates).
    date_format
        ``iso`` (``yyyy-mm-dd``) or ``dmy`` (``dd/mm/yyyy``, text in Parquet too).

    Returns
    -------
    dict
        What was written: the files and rows of each, the counts of spells, provider spells,
        transfers, episodes by spell, unfinished episodes and duplicate rows, and the shares
        aimed at (:data:`SHARES`).

    Raises
    ------
    ConfigError
        A needed table missing, a person key no ``persons`` row has, an unknown option, or a
        file in the way.
    """
    if file_format not in FILE_FORMATS:
        raise ConfigError(f"HES extracts: file format {file_format!r} is not one of csv, parquet")
    if date_format not in DATE_FORMATS:
        raise ConfigError(f"HES extracts: date format {date_format!r} is not one of iso, dmy")
    tables = _read(source)
    out = Path(out)
    names = {k: f"{k}.{file_format}" for k, t in FILES.items() if t in tables}
    in_way = sorted(n for n in names.values() if (out / n).exists())
    if in_way:
        raise ConfigError(f"HES extracts: {out} already holds {', '.join(in_way)}; nothing written")
    out.mkdir(parents=True, exist_ok=True)
    rng = [np.random.default_rng(s) for s in np.random.SeedSequence(seed, spawn_key=(15,)).spawn(3)]
    people = _people(tables["persons"], rng[0])
    summary: dict[str, Any] = {
        "format": file_format,
        "date_format": date_format,
        "seed": seed,
        "files": names,
        "shares": dict(SHARES),
    }
    con = duckdb.connect(":memory:")
    try:
        con.register("people", people.table)
        register_registrations(con, tables["registrations"])
        apc, counts = _apc(tables, people, rng[0])
        con.register("apc", apc)
        register_conditions(con, tables.get("conditions"))
        copy(con, apc_sql(file_format, date_format), out / names["apc"], file_format)
        summary.update(counts)
        rows = {"apc": apc.num_rows}
        if "ae" in names:
            con.register("ae", _ae(tables["ae_attendances"], people, rng[1]))
            copy(con, ae_sql(file_format, date_format), out / names["ae"], file_format)
            rows["ae"] = tables["ae_attendances"].num_rows
        if "op" in names:
            con.register("op", _op(tables["outpatient_appointments"], people, rng[2]))
            copy(con, op_sql(file_format, date_format), out / names["op"], file_format)
            rows["op"] = tables["outpatient_appointments"].num_rows
    finally:
        con.close()
    summary["rows"] = rows
    return summary


@dataclass(frozen=True)
class _People:
    """The persons table as the writer needs it, with each person's home provider."""

    ids: pa.ChunkedArray
    birth: np.ndarray  # days since 1970-01-01
    death: np.ndarray  # days, NULL_DAY when alive
    home: np.ndarray  # provider code
    table: pa.Table  # person_id, birth_month, sex, lsoa: joined in the engine

    def index(self, person_id: pa.ChunkedArray, table: str) -> np.ndarray:
        """Row of ``persons`` of each key; refused when a key has none."""
        found = pc.index_in(person_id, value_set=self.ids)
        missing = found.null_count
        if missing:
            raise ConfigError(
                f"HES extracts: {table}.person_id holds {missing:,} rows whose person is not in "
                "persons; validate the dataset first (careval validate DIR)"
            )
        return found.to_numpy(zero_copy_only=False).astype(np.int64)

    def provider(self, who: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A provider for each event: the person's own (:data:`HOME_PROVIDER`) or any."""
        other = np.asarray(PROVIDERS)[rng.integers(0, len(PROVIDERS), who.size)]
        return np.where(rng.random(who.size) < HOME_PROVIDER, self.home[who], other)


def _read(source: str | Path | Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """The tables the writer uses, from a mapping or a dataset directory."""
    if isinstance(source, Mapping):
        tables = {n: source[n] for n in (*NEEDED, *OPTIONAL) if n in source}
        where = "the tables given"
    else:
        folder = Path(source)
        tables = {
            n: pq.read_table(folder / f"{n}.parquet")
            for n in (*NEEDED, *OPTIONAL)
            if (folder / f"{n}.parquet").is_file()
        }
        where = str(folder)
    missing = [n for n in NEEDED if n not in tables]
    if missing:
        raise ConfigError(f"HES extracts: {where} has no {', '.join(missing)} table")
    return tables


def _days(column: pa.ChunkedArray) -> np.ndarray:
    """A date column as days since 1970-01-01 (``NULL_DAY`` for null)."""
    days = pc.fill_null(pc.cast(column, pa.int32()), pa.scalar(int(NULL_DAY), pa.int32()))
    return days.to_numpy().astype(np.int32)


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _pick(rng: np.random.Generator, choices: tuple[tuple[str, ...], tuple[float, ...]], k: int):
    values, p = choices
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=k, p=np.asarray(p))]


def _people(persons: pa.Table, rng: np.random.Generator) -> _People:
    home = np.asarray(LOCAL_PROVIDERS, dtype=object)[
        rng.integers(0, len(LOCAL_PROVIDERS), persons.num_rows)
    ]
    return _People(
        ids=persons["person_id"],
        birth=_days(persons["birth_month"]),
        death=_days(persons["death_date"]),
        home=home,
        table=persons.select(["person_id", "birth_month", "sex", "lsoa"]),
    )


def _within(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal values of a sorted array."""
    if group.size == 0:
        return group
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return np.arange(group.size) - np.repeat(starts, np.diff(np.r_[starts, group.size]))


def _isolated(person: np.ndarray, adm: np.ndarray, dis: np.ndarray) -> np.ndarray:
    """Spells no other spell of the person starts or ends within ``ISOLATION_DAYS`` of.

    Sorted by person and admission, a spell is isolated when every earlier spell of the person
    ended more than the margin before it was admitted and the next one starts more than the
    margin after its discharge (a spell holding it whole counts against it too: conservative).
    """
    order = np.lexsort((np.arange(person.size), adm, person))
    p, a, d = person[order], adm[order].astype(np.int64), dis[order].astype(np.int64)
    same_prev = np.r_[False, p[1:] == p[:-1]]
    same_next = np.r_[p[1:] == p[:-1], False]
    big = np.int64(1 << 22)  # more than any span of days: runs of one person stay apart
    running = np.maximum.accumulate(p.astype(np.int64) * big + (d + (1 << 21)))
    prev_max = np.r_[np.int64(-1), running[:-1]] - p * big - (1 << 21)
    clash_before = same_prev & (prev_max >= a - ISOLATION_DAYS)
    clash_after = same_next & (np.r_[a[1:], np.int64(0)] <= d + ISOLATION_DAYS)
    ok = np.empty(person.size, dtype=bool)
    ok[order] = ~(clash_before | clash_after)
    return ok


def _apc(
    tables: Mapping[str, pa.Table], people: _People, rng: np.random.Generator
) -> tuple[pa.Table, dict[str, Any]]:
    """The episodes (finished, unfinished and duplicated, shuffled) and their counts.

    Columns are the extract's, but person fields, ``GPPRAC`` and secondary diagnoses, which the
    engine joins on (:func:`_apc_sql`), and ``pos``, the row's place in the file.
    """
    sp = tables["inpatient_spells"]
    n = sp.num_rows
    person = people.index(sp["person_id"], "inpatient_spells")
    adm, dis = _days(sp["admission_date"]), _days(sp["discharge_date"])
    method = _strings(sp["admission_method"])
    classpat = _strings(sp["patient_classification"])
    diag = _strings(sp["primary_diagnosis"])
    cost = sp["cost"].to_numpy().astype(np.float64)
    regular = np.isin(classpat, ["3", "4"])

    # Transfers: a share of the emergency spells of 2+ days, among those isolated.
    long_emergency = np.isin(method, EMERGENCY_METHODS) & (dis - adm >= 2) & ~regular
    pool = np.flatnonzero(long_emergency & _isolated(person, adm, dis))
    k = min(int(round(SHARES["transferred"] * long_emergency.sum())), pool.size)
    moved = np.sort(rng.choice(pool, size=k, replace=False)) if k else pool[:0]
    split = adm[moved] + 1 + np.floor(rng.random(k) * (dis[moved] - adm[moved] - 1)).astype(int)
    cut = dis.copy()
    cut[moved] = split
    died = (people.death[person] == dis) & (people.death[person] != NULL_DAY)
    first_provider = people.provider(person, rng)
    j = rng.integers(0, len(TERTIARY_PROVIDERS), k)
    second_provider = np.asarray(TERTIARY_PROVIDERS, dtype=object)[j]
    clash = second_provider == first_provider[moved]
    second_provider[clash] = np.asarray(TERTIARY_PROVIDERS, dtype=object)[
        (j[clash] + 1) % len(TERTIARY_PROVIDERS)
    ]
    is_moved = np.zeros(n, dtype=bool)
    is_moved[moved] = True
    end_dest = np.where(is_moved, TRANSFER_CODE, np.where(died, DIED_DEST, HOME))
    end_meth = np.where(died & ~is_moved, DIED, DISCHARGED)
    operation = np.array([OPERATIONS.get(d) for d in diag], dtype=object)

    # Provider spells: every canonical spell (the first part of a transfer), then second parts.
    ps = {
        "person": np.r_[person, person[moved]],
        "adm": np.r_[adm, split],
        "dis": np.r_[cut, dis[moved]],
        "method": np.r_[method, np.full(k, TRANSFER_METHOD, dtype=object)],
        "source": np.r_[np.full(n, HOME, dtype=object), np.full(k, TRANSFER_CODE, dtype=object)],
        "classpat": np.r_[classpat, classpat[moved]],
        "dest": np.r_[end_dest, np.where(died[moved], DIED_DEST, HOME)],
        "dismeth": np.r_[end_meth, np.where(died[moved], DIED, DISCHARGED)],
        "provider": np.r_[first_provider, second_provider],
        "diag": np.r_[diag, diag[moved]],
        "operation": np.r_[operation, np.full(k, None, dtype=object)],
        "cost": np.r_[cost, np.zeros(k)],
    }
    provspno = pa.concat_arrays(
        [
            sp["spell_id"].combine_chunks(),
            pc.binary_join_element_wise(pc.take(sp["spell_id"], moved).combine_chunks(), "T", ""),
        ]
    )
    m = n + k

    # Consultant episodes: 1, 2 or 3 a provider spell, the spell's days split between them.
    draw = rng.random(m)
    n_ep = np.where(draw < SHARES["three_episodes"], 3, np.where(
        draw < SHARES["three_episodes"] + SHARES["two_episodes"], 2, 1))  # fmt: skip
    n_ep[np.r_[regular, regular[moved]]] = 1
    span = ps["dis"] - ps["adm"] + 1
    c1 = ps["adm"] + np.floor(rng.random(m) * span).astype(int)
    c2 = ps["adm"] + np.floor(rng.random(m) * span).astype(int)
    lo, hi = np.minimum(c1, c2), np.maximum(c1, c2)
    bounds = np.column_stack(
        [
            ps["adm"],
            np.where(n_ep == 1, ps["dis"], np.where(n_ep == 2, c1, lo)),
            np.where(n_ep == 3, hi, ps["dis"]),
            ps["dis"],
        ]
    ).astype(np.int32)
    rep = np.repeat(np.arange(m), n_ep)
    order = _within(rep)
    last = order == n_ep[rep] - 1
    first = order == 0
    later_diag = _pick(rng, (LATER_DIAGNOSES, (1 / len(LATER_DIAGNOSES),) * 6), rep.size)
    keep_diag = first | (rng.random(rep.size) < 0.5)
    finished = {
        "person": ps["person"][rep],
        "EPIORDER": order + 1,
        "EPISTAT": np.full(rep.size, 3),
        "PROCODE3": ps["provider"][rep],
        "ADMIDATE": ps["adm"][rep],
        "EPISTART": bounds[rep, order],
        "EPIEND": bounds[rep, order + 1],
        "DISDATE": np.where(last, ps["dis"][rep], NULL_DAY),
        "ADMIMETH": ps["method"][rep],
        "ADMISORC": ps["source"][rep],
        "CLASSPAT": ps["classpat"][rep],
        "DISDEST": np.where(last, ps["dest"][rep], None),
        "DISMETH": np.where(last, ps["dismeth"][rep], None),
        "DIAG_4_01": np.where(keep_diag, ps["diag"][rep], later_diag),
        "OPERTN_4_01": np.where(first, ps["operation"][rep], None),
        "COST": np.where(first, ps["cost"][rep], 0.0),
    }
    unfinished, unfinished_spells = _unfinished(
        person, dis, people, int(round(SHARES["unfinished"] * rep.size)), rng
    )
    episodes = {c: np.r_[finished[c], unfinished[c]] for c in finished}
    spell_numbers = pa.concat_arrays([pc.take(provspno, pa.array(rep)), unfinished_spells])
    total = len(spell_numbers)
    keys = pc.cast(pa.array(10**11 + rng.permutation(total), pa.int64()), pa.string())

    # Exact duplicates, then every row in a seeded random order.
    d = int(round(SHARES["duplicated"] * total))
    rows = np.r_[np.arange(total), rng.choice(total, size=d, replace=False)]
    rows = rows[rng.permutation(rows.size)]
    take = pa.array(rows)
    cols: dict[str, pa.Array] = {
        "HESID": pc.take(people.ids, pa.array(episodes["person"][rows])),
        "EPIKEY": pc.take(keys, take),
        "PROVSPNO": pc.take(spell_numbers, take),
    }
    for name, values in episodes.items():
        if name == "person":
            continue
        v = values[rows]
        if name in ("ADMIDATE", "EPISTART", "EPIEND", "DISDATE"):
            cols[name] = dates(v)
        elif name in ("EPIORDER", "EPISTAT"):
            cols[name] = pa.array(v, pa.int64())
        elif name == "COST":
            cols[name] = pa.array(v, pa.float64())
        else:
            cols[name] = pa.array(v, pa.string())
    cols["pos"] = pa.array(np.arange(rows.size), pa.int64())
    counts = {
        "spells": n,
        "regular_attender_spells": int(regular.sum()),
        "transfers": k,
        "transfer_candidates": int(long_emergency.sum()),
        "provider_spells": m,
        "provider_spells_by_episodes": {str(x): int((n_ep == x).sum()) for x in (1, 2, 3)},
        "finished_episodes": int(rep.size),
        "extra_episodes": int(rep.size - m),
        "unfinished_episodes": int(len(unfinished_spells)),
        "duplicate_rows": d,
        "episode_rows": int(rows.size),
    }
    return pa.table(cols), counts


def _unfinished(
    person: np.ndarray, dis: np.ndarray, people: _People, count: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], pa.Array]:
    """Episodes still open at the end of the extract (``EPISTAT`` 1), for people with spells
    alive then, starting within :data:`UNFINISHED_DAYS` of the last discharge; their provider
    spell numbers are ``U`` and nine digits."""
    if dis.size == 0:
        count = 0
        last_day = 0
    else:
        last_day = int(dis.max())
    who = np.unique(person)
    start_lo = last_day - UNFINISHED_DAYS + 1
    alive = (people.death[who] == NULL_DAY) | (people.death[who] > last_day)
    who = who[alive & (people.birth[who] <= start_lo)]
    if who.size == 0:
        count = 0
    picked = rng.choice(who, size=count) if count else who[:0]
    start = (start_lo + rng.integers(0, UNFINISHED_DAYS, count)).astype(np.int32)
    null = np.full(count, NULL_DAY, dtype=np.int32)
    none = np.full(count, None, dtype=object)
    cols = {
        "person": picked,
        "EPIORDER": np.ones(count, dtype=int),
        "EPISTAT": np.ones(count, dtype=int),
        "PROCODE3": people.provider(picked, rng),
        "ADMIDATE": start,
        "EPISTART": start,
        "EPIEND": null,
        "DISDATE": null,
        "ADMIMETH": _pick(rng, UNFINISHED_METHODS, count),
        "ADMISORC": np.full(count, HOME, dtype=object),
        "CLASSPAT": np.full(count, "1", dtype=object),
        "DISDEST": np.full(count, STILL_IN_DEST, dtype=object),
        "DISMETH": np.full(count, STILL_IN, dtype=object),
        "DIAG_4_01": _pick(rng, (UNFINISHED_DIAGNOSES, (1 / 6,) * 6), count),
        "OPERTN_4_01": none,
        "COST": np.zeros(count),
    }
    numbers = pc.binary_join_element_wise(
        "U", pc.utf8_lpad(pc.cast(pa.array(np.arange(1, count + 1)), pa.string()), 9, "0"), ""
    )
    return cols, numbers


def _ae(ae: pa.Table, people: _People, rng: np.random.Generator) -> pa.Table:
    """A&E attendances with their HES disposal codes and provider (joined in the engine)."""
    who = people.index(ae["person_id"], "ae_attendances")
    disposal = _strings(ae["disposal"])
    code = np.full(ae.num_rows, None, dtype=object)
    for name, choices in AE_DISPOSAL_CODES.items():  # over the six disposals, not the rows
        hit = disposal == name
        code[hit] = _pick(rng, choices, int(hit.sum()))
    return (
        ae.append_column("x_disp", pa.array(code, pa.string()))
        .append_column("x_provider", pa.array(people.provider(who, rng), pa.string()))
        .append_column("pos", pa.array(rng.permutation(ae.num_rows), pa.int64()))
    )


def _op(op: pa.Table, people: _People, rng: np.random.Generator) -> pa.Table:
    """Outpatient appointments with their HES attendance codes and provider."""
    who = people.index(op["person_id"], "outpatient_appointments")
    extra = {}
    for column, name, mapping in (
        ("attended", "x_attended", OP_ATTENDED_CODES),
        ("first_attendance", "x_first", OP_FIRST_CODES),
    ):
        flag = op[column].to_numpy(zero_copy_only=False).astype(bool)
        code = np.full(op.num_rows, None, dtype=object)
        for value, choices in mapping.items():
            hit = flag == value
            code[hit] = _pick(rng, choices, int(hit.sum()))
        extra[name] = pa.array(code, pa.string())
    extra["x_provider"] = pa.array(people.provider(who, rng), pa.string())
    extra["pos"] = pa.array(rng.permutation(op.num_rows), pa.int64())
    for name, values in extra.items():
        op = op.append_column(name, values)
    return op
