"""Benchmark of ``careval import hes`` on a whole-region extract.

The target (issue 15): about 10 million APC episodes for 2.3 million people import in under 2
minutes on the project's 2-core machine. The extract is made here in DuckDB (seeded hashes, not
the synthetic population: making 2.3 million people's histories with ``careval synth`` takes
longer than the import being measured), with the realism the importer handles: 15% of spells of
two or three consultant episodes, 2% duplicated episode rows, 1% unfinished episodes, regular
attenders, dd/mm/yyyy dates, HES null dates, secondary diagnoses, A&E and outpatient files.

Usage::

    .venv/bin/python bench/bench_import_hes.py [--episodes 10000000] [--persons 2300000]
        [--format csv|parquet] [--keep DIR] [--extract DIR] [--profile N]

It prints the extract's size, then the import's wall time and peak resident memory (its own
process), and the import report's counts. ``--extract DIR`` imports the apc, ae and op files
already in DIR (made by an earlier ``--keep``) instead of making an extract. ``--profile N``
runs the import with every SQL statement timed and prints the N slowest, each with the
process's peak resident memory when it ended (the timing adds little; use the run without it
for the figures).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

PROVIDERS = ("RYJ", "RQM", "RAS", "R1K", "RAL", "RRV", "RKE", "RQN")
PRACTICES = 400
EMERGENCY = ("21", "21", "21", "21", "21", "21", "22", "2A", "2B", "28")


def _pick(options: tuple[str, ...], h: str) -> str:
    arr = "[" + ", ".join(f"'{o}'" for o in options) + "]"
    return f"{arr}[CAST(1 + ({h}) % {len(options)} AS BIGINT)]"


def make_extract(folder: Path, episodes: int, persons: int, fmt: str) -> dict[str, int]:
    """Write apc, ae and op extracts into ``folder``; return their row counts."""
    con = duckdb.connect()
    spells = int(episodes / 1.17)  # 15% of spells of 2-3 episodes, then 3% extra rows

    def r(k: int, mod: int) -> str:
        return f"CAST(hash(i * {k} + 7919) % {mod} AS BIGINT)"

    con.execute(
        f"""
        CREATE TABLE spell AS SELECT
            i AS s,
            {r(3, persons)} AS p,
            DATE '2009-04-01' + CAST({r(5, 1820)} AS INTEGER) AS adm,
            CAST(CASE WHEN {r(7, 10)} < 4 THEN 0 ELSE {r(11, 15)} END AS INTEGER) AS los,
            CASE WHEN {r(13, 100)} < 55 THEN {_pick(EMERGENCY, r(17, 1000))}
                 WHEN {r(13, 100)} < 90 THEN {_pick(("11", "12", "13"), r(19, 1000))}
                 WHEN {r(13, 100)} < 96 THEN '31' ELSE '13' END AS meth,
            CASE WHEN {r(13, 100)} >= 96 THEN '3' WHEN {r(7, 10)} < 4 THEN '2' ELSE '1' END
                AS classpat,
            CASE WHEN {r(23, 100)} < 15 THEN 2 + CAST({r(29, 4)} = 0 AS INTEGER) ELSE 1 END
                AS n_epi,
            {_pick(PROVIDERS, r(31, 1000))} AS prov,
            {_pick(("J189", "N390", "R074", "I10X", "E119", "S720", "R55X", "I639"), r(37, 997))}
                AS diag
        FROM range({spells}) t(i)
        """
    )
    con.execute(
        """
        CREATE TABLE epi AS SELECT
            s.*, k AS epiorder,
            s.adm + CAST(floor(s.los * (k - 1) / s.n_epi) AS INTEGER) AS epistart,
            s.adm + CAST(floor(s.los * k / s.n_epi) AS INTEGER) AS epiend
        FROM spell s, range(1, 4) r(k) WHERE k <= s.n_epi
        """
    )
    date = "strftime({d}, '%d/%m/%Y')"
    apc = f"""
        SELECT 'H' || lpad(CAST(p AS VARCHAR), 9, '0') AS HESID,
               CAST(s * 4 + epiorder AS VARCHAR) AS EPIKEY,
               epiorder AS EPIORDER, '3' AS EPISTAT,
               {date.format(d="adm")} AS ADMIDATE,
               {date.format(d="epistart")} AS EPISTART, {date.format(d="epiend")} AS EPIEND,
               CASE WHEN epiorder = n_epi THEN {date.format(d="epiend")} ELSE '01/01/1800' END
                   AS DISDATE,
               meth AS ADMIMETH, '19' AS ADMISORC, classpat AS CLASSPAT,
               CASE WHEN epiorder = n_epi THEN '19' ELSE NULL END AS DISDEST,
               CASE WHEN epiorder = n_epi THEN '1' ELSE NULL END AS DISMETH,
               prov AS PROCODE3, prov || lpad(CAST(s AS VARCHAR), 10, '0') AS PROVSPNO,
               diag AS DIAG_4_01,
               CASE WHEN s % 3 = 0 THEN 'E119' END AS DIAG_4_02,
               CASE WHEN s % 5 = 0 THEN 'I10X' END AS DIAG_4_03,
               CAST(18 + p % 80 AS VARCHAR) AS STARTAGE,
               lpad(CAST(1 + p % 12 AS VARCHAR), 2, '0') || CAST(1930 + p % 80 AS VARCHAR) AS MYDOB,
               CAST(1 + p % 2 AS VARCHAR) AS SEX,
               'E01' || lpad(CAST(p % 4800 AS VARCHAR), 6, '0') AS LSOA11,
               'E8' || lpad(CAST(p % {PRACTICES} AS VARCHAR), 4, '0') AS GPPRAC
        FROM epi
    """
    con.execute(f"CREATE TABLE apc AS {apc}")
    # 2% duplicated rows, 1% unfinished episodes (EPISTAT 1, no end dates)
    con.execute("INSERT INTO apc SELECT * FROM apc USING SAMPLE 2 PERCENT (bernoulli, 11)")
    con.execute(
        """
        INSERT INTO apc SELECT * REPLACE ('1' AS EPISTAT, '01/01/1800' AS EPIEND,
            '01/01/1800' AS DISDATE, EPIKEY || 'U' AS EPIKEY, PROVSPNO || 'U' AS PROVSPNO)
        FROM apc USING SAMPLE 1 PERCENT (bernoulli, 13)
        """
    )
    n_ae = int(persons * 1.8)
    n_op = int(persons * 2.6)
    con.execute(
        f"""
        CREATE TABLE ae AS SELECT
            'H' || lpad(CAST({r(41, persons)} AS VARCHAR), 9, '0') AS HESID,
            'A' || CAST(i AS VARCHAR) AS AEKEY,
            strftime(DATE '2009-04-01' + CAST({r(43, 1820)} AS INTEGER), '%Y-%m-%d')
                AS ARRIVALDATE,
            {_pick(("01", "02", "03", "04", "10", "12", "14"), r(47, 1000))} AS AEATTENDDISP,
            '1' AS AEATTENDCAT, {_pick(PROVIDERS, r(53, 1000))} AS PROCODE3
        FROM range({n_ae}) t(i)
        """
    )
    con.execute(
        f"""
        CREATE TABLE op AS SELECT
            'H' || lpad(CAST({r(59, persons)} AS VARCHAR), 9, '0') AS HESID,
            'O' || CAST(i AS VARCHAR) AS ATTENDKEY,
            strftime(DATE '2009-04-01' + CAST({r(61, 1820)} AS INTEGER), '%Y-%m-%d') AS APPTDATE,
            {_pick(("5", "5", "5", "5", "6", "3", "2"), r(67, 1000))} AS ATTENDED,
            {_pick(("1", "2", "2", "3", "4"), r(71, 1000))} AS FIRSTATT,
            {_pick(("100", "101", "300", "320", "330", "400", "502"), r(73, 1000))} AS TRETSPEF,
            {_pick(PROVIDERS, r(79, 1000))} AS PROCODE3
        FROM range({n_op}) t(i)
        """
    )
    rows = {}
    for name in ("apc", "ae", "op"):
        target = folder / f"{name}.{fmt}"
        opts = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
        con.execute(f"COPY {name} TO '{target}' ({opts})")
        rows[name] = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    return rows


def profiled_import(apc: Path, ae: Path | None, op: Path | None, out: Path, top: int) -> None:
    """Import with every statement of the import's DuckDB connection timed; print the slowest."""
    import careval.data.adapters.common as common
    import careval.data.adapters.hes as hes

    log: list[tuple[float, float, float, str]] = []
    original = common.connect

    class Timed:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self._con = con

        def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
            t, cpu = time.perf_counter(), time.process_time()
            result = self._con.execute(query, *args, **kwargs)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            took = (time.perf_counter() - t, time.process_time() - cpu)
            log.append((*took, rss, " ".join(str(query).split())))
            return result

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

    def connect(threads: int | None = None) -> Any:
        return Timed(original(threads))

    hes.connect = connect  # type: ignore[assignment]
    t = time.perf_counter()
    hes.import_hes(out, hes.HesFiles(apc, ae, op), overwrite=True)
    total = time.perf_counter() - t
    timed = sum(dt for dt, _, _, _ in log)
    cpu = sum(c for _, c, _, _ in log)
    print(
        f"profiled import: {total:.1f} s, of which {timed:.1f} s ({cpu:.1f} s of CPU) in "
        f"{len(log)} statements"
    )
    print(" seconds  CPU s  peak GiB  statement")
    for dt, c, rss, query in sorted(log, reverse=True)[:top]:
        print(f"{dt:8.2f} {c:6.2f}  {rss:8.2f}  {query[:140]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000_000)
    parser.add_argument("--persons", type=int, default=2_300_000)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--keep", type=Path, help="keep the extract and dataset here")
    parser.add_argument("--extract", type=Path, help="import the extract already in this folder")
    parser.add_argument("--profile", type=int, metavar="N", help="print the N slowest statements")
    parser.add_argument("--profiled-run", nargs=5, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.profiled_run:  # the child process of --profile
        apc, ae, op, out, top = a.profiled_run
        opt = [Path(f) if f != "-" else None for f in (ae, op)]
        profiled_import(Path(apc), opt[0], opt[1], Path(out), int(top))
        return
    root = a.keep or Path(tempfile.mkdtemp(prefix="careval-bench-hes-"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"# {platform.node()} {platform.machine()}, Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}, {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    if a.extract:
        src = a.extract
        a.format = "parquet" if (src / "apc.parquet").is_file() else "csv"
        rows = {
            name: int(
                duckdb.sql(
                    f"SELECT count(*) FROM read_{a.format}('{src / f'{name}.{a.format}'}')"
                ).fetchone()[0]  # type: ignore[index]
            )
            for name in ("apc", "ae", "op")
        }
        made = "given"
    else:
        src = root / "extract"
        src.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        rows = make_extract(src, a.episodes, a.persons, a.format)
        made = f"made in {time.perf_counter() - t0:.0f} s"
    size = sum(f.stat().st_size for f in src.iterdir() if f.stem in ("apc", "ae", "op"))
    print(
        f"extract ({a.format}): {rows['apc']:,} APC episode rows, {rows['ae']:,} A&E, "
        f"{rows['op']:,} outpatient; {size / 2**30:.2f} GiB; {made}",
        flush=True,
    )
    out = root / "dataset"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    files = [src / f"{name}.{a.format}" for name in ("apc", "ae", "op")]
    if a.profile:
        cmd = [sys.executable, __file__, "--profiled-run", *map(str, files), str(out)]
        cmd.append(str(a.profile))
        subprocess.run(cmd, check=True)
    else:
        cmd = [sys.executable, "-m", "careval", "import", "hes"]
        for path, opt in zip(files, ("--apc", "--ae", "--op"), strict=True):
            cmd += [opt, str(path)]
        cmd += ["--out", str(out)]
        if out.exists():
            cmd.append("--overwrite")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 2**20
    report = json.loads((out / "import_report.json").read_text())
    print(f"import: {seconds:.1f} s wall, {peak:.2f} GiB peak RSS", flush=True)
    for step in report["steps"]:
        print(f"  {step['what']}: {step['count']:,}")
    for drop in report["dropped"]:
        print(f"  dropped from {drop['file']}: {drop['count']:,} ({drop['reason']})")
    for name, n in report["tables"].items():
        print(f"  {name}: {n:,} rows")
    if not a.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
