"""The hardening corpus: every malformed or hostile input is refused with one clear message.

Each case of :mod:`make_corpus` runs its command in a process of its own and must: exit with
code 2, print no traceback, name the file, table or column at fault, write nothing (no new or
changed file anywhere in the case's directory, its output folder included) and leave every
input byte-identical. The ``workbook`` case instead runs an evaluation and checks that no cell
of its workbook is a formula, and the ``protected`` case that no count suppressed in its JSON
can be recovered from what is published beside it. Cases whose fix is on another branch are
strict xfails.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from make_corpus import Case, base_dataset, case_names, make_corpus

CASES = case_names()
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # seconds a case may take (the slow ones run a whole evaluation)


class Ran(NamedTuple):
    """What a command did: exit code and output."""

    returncode: int
    stdout: str
    stderr: str


def _param(case: Case) -> object:
    marks = []
    if case.fixed_on:
        marks.append(pytest.mark.xfail(strict=True, reason=f"fixed on branch {case.fixed_on}"))
    if case.slow:
        marks.append(pytest.mark.slow)
    return pytest.param(case, id=case.name, marks=marks)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole corpus, written once per session from one small dataset."""
    root = tmp_path_factory.mktemp("corpus")
    base_dataset(root / "_base")
    make_corpus(root, root / "_base")
    return root


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and a marker for every directory) under folder."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), folder) + "/"] = "dir"
        for f in filenames:
            path = Path(dirpath, f)
            out[os.path.relpath(path, folder)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# One interpreter imports careval once, then forks a fresh child process per case: each case
# still runs the CLI in a process of its own (its exit code, output and any traceback are the
# child's), without paying the seconds of importing careval and its engines 60 times.
_SERVER = r"""
import json, os, sys, time, traceback
from careval.cli import main
import careval.data.validate, careval.qualitative.evaluate, careval.run, careval.surveys.evaluate
import ibis, openpyxl, pyreadstat
ibis.duckdb
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.chdir(req["cwd"])
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        code = 0
        try:
            main(req["args"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    deadline = time.monotonic() + req["timeout"]
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            done = os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    print(json.dumps({"code": os.waitstatus_to_exitcode(done[1])}), flush=True)
"""


@pytest.fixture(scope="session")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Ran]]:
    """Run ``careval ARGS`` in a child process forked from an interpreter that imported it."""
    logs = tmp_path_factory.mktemp("corpus-logs")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    if not hasattr(os, "fork"):  # no fork (Windows): a fresh interpreter per case

        def spawn(args: list[str], cwd: Path) -> Ran:
            r = subprocess.run(
                [sys.executable, "-c", "from careval.cli import main; main()", *args],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                cwd=cwd,
                env=env,
            )
            return Ran(r.returncode, r.stdout, r.stderr)

        yield spawn
        return
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stdin is not None and server.stdout is not None

    def run(args: list[str], cwd: Path) -> Ran:
        out, err = logs / "stdout", logs / "stderr"
        req = {"args": args, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
        server.stdin.write(json.dumps({**req, "timeout": TIMEOUT}) + "\n")
        server.stdin.flush()
        code = json.loads(server.stdout.readline())["code"]
        return Ran(code, out.read_text("utf-8"), err.read_text("utf-8"))

    yield run
    server.stdin.close()
    server.wait(timeout=30)


def _run(cli: Callable[..., Ran], case: Case, case_dir: Path) -> Ran:
    fill = {"data": str(case_dir / "data"), "out": str(case_dir / "out"), "case": str(case_dir)}
    # the working directory is the case's: a stray file written there shows in the snapshot
    return cli([a.format(**fill) for a in case.args], case_dir)


def _formula_cells(workbook: Path) -> list[str]:
    from openpyxl import load_workbook

    found = []
    for ws in load_workbook(workbook).worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f" or (
                    isinstance(cell.value, str) and cell.value[:1] in ("=", "+", "-", "@")
                ):
                    found.append(f"{ws.title}!{cell.coordinate}: {cell.value!r}")
    return found


def _recoverable(payload: dict) -> list[str]:
    """Suppressed survey counts ("*") that the protected JSON gives away all the same.

    Two ways: a share published in the row of a suppressed count, and a group's suppressed
    count (small, 1 to 7) equal to the whole survey's count less the other groups' published
    ones.
    """
    found = []
    for name, s in payload["surveys"].items():
        for part in ("items", "by_group", "distribution"):
            for row in s[part]:
                for key, v in row.items():
                    if v != "*":
                        continue
                    shares = (
                        ["share_of_valid", "share_of_respondents"]
                        if key == "count"
                        else ["share_" + key[2:]]
                    )
                    for share in shares:
                        if row.get(share) is not None:
                            found.append(f"{name}.{part}: {row.get('question')} {key} by {share}")
        items = {r["question"]: r for r in s["items"]}
        for key in ("n_valid", "n_agree"):
            by_q: dict[str, list[dict]] = {}
            for row in s["by_group"]:
                by_q.setdefault(row["question"], []).append(row)
            for q, rows in by_q.items():
                hidden = [r for r in rows if r.get(key) == "*"]
                total = items.get(q, {}).get(key)
                shown = [r[key] for r in rows if r.get(key) != "*"]
                if (
                    len(hidden) == 1
                    and isinstance(total, int)
                    and all(isinstance(v, int) for v in shown)
                ):
                    left = total - sum(shown)
                    if 1 <= left <= 7:
                        found.append(f"{name}.by_group: {q} {key} of {hidden[0]['group']} = {left}")
    return found


def test_corpus_is_large_and_covers_every_category() -> None:
    categories = {c.category for c in CASES}
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    assert {
        "corrupt Parquet",
        "impossible sizes and offsets",
        "truncated and zero-byte files",
        "missing table and column",
        "wrong types",
        "null and duplicate keys",
        "orphans",
        "NaN and infinity",
        "wrong delimiter",
        "encoding and BOM",
        "zip bombs",
        "entity expansion",
        "bad CLI arguments",
        "formula injection",
        "synthetic flag as a string",
        "user files deleted",
        "paths escaping",
        "unchecked names",
        "segment offsets",
        "validation messages on real data",
        "small counts recoverable",
    } <= categories


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case: Case, corpus: Path, cli_server: Callable[..., Ran]) -> None:
    case_dir = corpus / case.name
    before = _snapshot(case_dir)
    result = _run(cli_server, case, case_dir)
    message = result.stdout + result.stderr
    assert "Traceback" not in message, message
    if case.expect == "workbook":
        assert result.returncode == 0, message
        assert _formula_cells(case_dir / "out" / "run" / "tables.xlsx") == []
        return
    if case.expect == "protected":
        assert result.returncode == 0, message
        payload = json.loads((case_dir / "out" / "surveys.json").read_text("utf-8"))
        assert _recoverable(payload) == []
        return
    assert result.returncode == 2, message
    fill = {"data": str(case_dir / "data"), "out": str(case_dir / "out"), "case": str(case_dir)}
    for word in case.names:
        assert word.format(**fill) in message, message
    for word in case.absent:
        assert word not in message, message
    after = _snapshot(case_dir)
    assert sorted(set(after) - set(before)) == [], "written despite the refusal"
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert changed == [], "inputs changed or deleted"


def test_engine_errors_name_the_file_they_mention(corpus: Path) -> None:
    import errno

    import duckdb

    from careval.data.access import Dataset
    from careval.errors import DatasetError

    with Dataset(corpus / "_base") as ds:
        ds.verify()  # a sound dataset reads through
        spells = ds.file("inpatient_spells")
        with pytest.raises(
            DatasetError, match="inpatient_spells.parquet: table 'inpatient_spells'"
        ):
            with ds.reading("persons"):  # the engine names the joined table's file: that one
                raise duckdb.IOException(f'Failed to read file "{spells}": corrupt')
        with pytest.raises(DatasetError, match=r"persons.parquet: table 'persons' .*\(bad page\)"):
            with ds.reading("persons"):
                raise duckdb.Error("bad page\nmore detail")
        with pytest.raises(DatasetError, match=r"persons.parquet: cannot be read \(Permission"):
            with ds.reading("persons"):
                raise PermissionError(errno.EACCES, "Permission denied")
        with pytest.raises(KeyError):  # not an engine error: left alone
            with ds.reading("persons"):
                raise KeyError("x")
