"""Pseudonymisation: the Modulus 11 check against an implementation written here, keyed tokens
the same across files and runs, invalid numbers counted and never kept, the key in no output,
key files, the CLI's bad input, and validate's warning on NHS numbers in a real dataset."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import duckdb
import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from careval.data.adapters import pseudonymise as ps
from careval.data.schema import TABLES
from careval.data.validate import validate
from careval.errors import ConfigError
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings
from tests.adapters.cli import run_cli_out as run

# --- an independent Modulus 11 check, from the NHS Data Dictionary's description ---------------


def reference_check_digit(first_nine: str) -> int | None:
    """The check digit of nine digits (None when the remainder makes it 10: never issued)."""
    weighted = 0
    for position, ch in enumerate(first_nine):
        weighted += (ord(ch) - ord("0")) * (10 - position)
    check = 11 - weighted % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def reference_valid(digits: str) -> bool:
    """Whether ten characters are digits ending in the check digit of the first nine."""
    if len(digits) != 10 or any(ch not in "0123456789" for ch in digits):
        return False
    return reference_check_digit(digits[:9]) == ord(digits[9]) - ord("0")


def valid_numbers(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct valid NHS numbers (10 digits)."""
    out: set[str] = set()
    while len(out) < n:
        nine = f"{rng.randrange(10**9):09d}"
        if (check := reference_check_digit(nine)) is not None:
            out.add(nine + str(check))
    return sorted(out)


def spaced(number: str, sep: str = " ") -> str:
    return f"{number[:3]}{sep}{number[3:6]}{sep}{number[6:]}"


def test_published_examples() -> None:
    # NHS Digital's example number 943 476 5919: 9*10+4*9+3*8+4*7+7*6+6*5+5*4+9*3+1*2 = 299,
    # 299 mod 11 = 2, 11 - 2 = 9, the last digit.
    assert reference_valid("9434765919")
    for good in ("9434765919", "943 476 5919", "943-476-5919", " 9434765919 ", 9434765919):
        assert ps.nhs_number_valid(good), good
    for bad in ("9434765918", "94347659190", "943476591", "943 476 591X", "94347 65919", "", None):
        assert not ps.nhs_number_valid(bad), bad
    assert ps.nhs_problem("9434765918") == "check_digit"
    assert ps.nhs_problem("943 476 591X") == "non_digit"
    assert ps.nhs_problem("94347 65919") == "layout"
    assert ps.nhs_problem("  ") == "missing"


def _mixed_values(seed: int = 20261201) -> tuple[list[str | None], list[bool]]:
    """Random values of every kind, and whether each is a valid NHS number (by construction
    and :func:`reference_valid`)."""
    rng = random.Random(seed)
    values: list[str | None] = []
    expected: list[bool] = []
    for _ in range(3000):  # random ten digits: about one in eleven valid
        v = f"{rng.randrange(10**10):010d}"
        values.append(v)
        expected.append(reference_valid(v))
    for v in valid_numbers(rng, 600):
        values += [v, spaced(v), spaced(v, "-"), f" {v}\t", v[:5] + " " + v[5:]]
        expected += [True, True, True, True, False]  # the last one's layout is not 3-3-4
        wrong = v[:9] + str((int(v[9]) + rng.randrange(1, 10)) % 10)
        values += [wrong, v[:9], v + "0", v[:4] + "A" + v[5:]]
        expected += [False, False, False, False]
    ten = next(f"{n:09d}" for n in range(10**6) if reference_check_digit(f"{n:09d}") is None)
    values += [ten + d for d in "0123456789"] + [None, "", "   "]
    expected += [False] * 13
    return values, expected


def test_python_sql_and_ibis_agree_with_the_reference() -> None:
    values, expected = _mixed_values()
    assert 1000 < sum(expected) < len(expected) - 1000  # both kinds, many of each
    zero = [v for v, e in zip(values, expected, strict=True) if e and v and v[-1] == "0"]
    assert zero  # a check digit of 0 (11 - 0) among the valid ones
    assert [ps.nhs_number_valid(v) for v in values] == expected
    con = duckdb.connect()
    t = pa.table({"i": list(range(len(values))), "v": pa.array(values, pa.string())})
    con.register("t", t)
    rows = con.execute(
        f"SELECT {ps.nhs_valid_sql('v')}, {ps.nhs_reason_sql('v')} FROM t ORDER BY i"
    ).fetchall()
    assert [r[0] for r in rows] == expected
    assert [r[1] for r in rows] == [ps.nhs_problem(v) for v in values]
    it = ibis.duckdb.connect().create_table("t", t)
    got = it.order_by("i").select(ok=ps.nhs_valid_expr(it.v)).to_pyarrow().column("ok")
    assert got.to_pylist() == expected


# --- keys and tokens ------------------------------------------------------------------------


def test_keygen_makes_a_private_key_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k"
    key = ps.keygen(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == key.hex() + "\n" and len(key) == 32
    assert ps.read_key(path) == key
    with pytest.raises(ConfigError, match="already exists"):
        ps.keygen(path)
    assert ps.read_key(path) == key  # untouched
    assert ps.fingerprint(key) == hashlib.sha256(b"careval-key-fingerprint" + key).hexdigest()[:16]
    assert key.hex()[:16] != ps.fingerprint(key)


def test_read_key_refuses_a_shared_or_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "k"
    ps.keygen(path)
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        ps.read_key(path)
    secret = "c0ffee" * 10 + "zzzz"  # 64 characters, four of them not hexadecimal
    bad = tmp_path / "bad"
    bad.write_text(secret + "\n")
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match="64 hexadecimal") as exc:
        ps.read_key(bad)
    assert "c0ffee" not in str(exc.value) and "found 64 characters" in str(exc.value)


def test_tokens_are_the_hmac_of_the_normalised_number() -> None:
    key, other = bytes(range(32)), bytes(range(1, 33))
    want = "P" + hmac.new(key, b"9434765919", hashlib.sha256).hexdigest()[:32]
    assert ps.token(key, "9434765919") == want
    assert ps.token(key, " 943 476 5919") == want == ps.token(key, "943-476-5919")
    assert ps.token(other, "9434765919") != want
    tk = ps.Tokeniser(key)
    assert tk.tokens(["9434765919", "4010232137"]) == [want, ps.token(key, "4010232137")]


def test_pseudonymise_column_drops_or_keeps_invalid_rows_in_order() -> None:
    key = bytes(32)
    rng = random.Random(5)
    good = valid_numbers(rng, 50)
    values = [*good, "9434765918", "123", "", None, "94347 65919", "ABC4765919", good[0]]
    rng.shuffle(values)
    con = duckdb.connect()
    con.register("t", pa.table({"n": values, "i": list(range(len(values)))}))
    rel, rep = ps.pseudonymise_column(con, "t", "n", key)
    assert rep.rows_read == 57 and rep.missing == 2 and rep.invalid == 4
    assert rep.invalid_by_reason == {
        "non_digit": 1,
        "wrong_length": 1,
        "layout": 1,
        "check_digit": 1,
    }
    assert rep.rows_written == 51 and rep.distinct_people == 50
    rows = rel.fetchall()
    keep = [(i, v) for i, v in enumerate(values) if v and ps.nhs_number_valid(v)]
    assert [r[1] for r in rows] == [i for i, _ in keep]  # the order of the input
    assert [r[0] for r in rows] == [ps.token(key, v) for _, v in keep]
    rel, rep = ps.pseudonymise_column(con, "t", "n", key, keep_invalid=True, keep_missing=True)
    rows = rel.fetchall()
    assert rep.rows_written == 57 and [r[1] for r in rows] == list(range(57))
    assert sum(r[0] is None for r in rows) == 6  # invalid and missing kept, with no token
    _, rep = ps.pseudonymise_column(con, "t", "n", key, keep_missing=True)
    assert rep.rows_written == 53


def test_linkage_share() -> None:
    con = duckdb.connect()
    con.register("ae", pa.table({"p": ["a", "b", "b", "c", None, "d"]}))
    con.register("apc", pa.table({"p": ["a", "x"]}))
    con.register("gp", pa.table({"person": ["c", None]}))
    rep = ps.linkage(con, "ae", ["apc", con.table("gp").select("person AS p")], "p")
    assert (rep.rows, rep.matched_rows, rep.missing_rows) == (6, 2, 1)
    assert (rep.people, rep.matched_people) == (4, 2)
    assert rep.share == pytest.approx(2 / 6)
    assert ps.linkage(con, "ae", "gp", "p", right_key_col="person").matched_rows == 1


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def extracts(tmp_path: Path) -> Iterator[tuple[Path, Path, list[str], int]]:
    """A CSV and a Parquet file of the same 40 people (NHS numbers written differently), and
    the count of invalid numbers in the CSV."""
    rng = random.Random(11)
    people = valid_numbers(rng, 40)
    rows = [f"{i},{spaced(n) if i % 3 else n},ward {i % 4}" for i, n in enumerate(people)]
    rows += ["100,9434765918,bad check", "101,94347659,short", "102,,none"]
    inp = tmp_path / "in"
    inp.mkdir()
    csv_file = inp / "ae.csv"
    csv_file.write_text("attendance,NHS_Number,note\n" + "\n".join(rows) + "\n")
    order = list(range(40))
    rng.shuffle(order)
    pq.write_table(
        pa.table(
            {
                "nhsno": [spaced(people[i], "-") for i in order],
                "days": [i * 2 for i in order],
            }
        ),
        inp / "op.parquet",
    )
    yield csv_file, inp / "op.parquet", people, 2


def test_same_key_same_token_in_csv_and_parquet(
    tmp_path: Path, extracts: tuple[Path, Path, list[str], int], capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file, pq_file, people, invalid = extracts
    out, key_dir = tmp_path / "out", tmp_path / "keys"
    out.mkdir()
    key_dir.mkdir()
    code, stdout, stderr = run(capsys, "keygen", "--out", key_dir / "k")
    assert code == 0 and "fingerprint" in stdout and "away" in stderr
    key = bytes.fromhex((key_dir / "k").read_text().strip())
    streams = [stdout, stderr]
    for src, col, dst in ((csv_file, "nhs_number", "ae.csv"), (pq_file, "NHSNO", "op.parquet")):
        code, stdout, stderr = run(
            capsys, "pseudonymise", "--key-file", key_dir / "k", "--in", src, "--columns", col,
            "--out", out / dst,
        )  # fmt: skip
        assert code == 0, stderr
        streams += [stdout, stderr]
    assert f"{invalid} invalid" in streams[2] and "1 missing" in streams[2]
    assert ps.fingerprint(key) in streams[2]
    ae = duckdb.sql(f"SELECT * FROM read_csv('{out / 'ae.csv'}', all_varchar=true)").fetchall()
    op = pq.read_table(out / "op.parquet").to_pylist()
    want = {
        i: "P" + hmac.new(key, n.encode(), "sha256").hexdigest()[:32] for i, n in enumerate(people)
    }
    assert len(ae) == 40 and {int(r[0]): r[1] for r in ae} == want  # invalid rows not kept
    assert [r[2] for r in ae] == [f"ward {i % 4}" for i in range(40)]  # other columns as they were
    assert {r["days"] // 2: r["nhsno"] for r in op} == want
    assert pq.read_schema(out / "op.parquet").field("days").type == pa.int64()
    # Nothing of the key, nor any NHS number, in any output or message.
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()] + [s.encode() for s in streams]
    assert len(blobs) == 2 + len(streams) and sorted(os.listdir(out)) == ["ae.csv", "op.parquet"]
    for blob in blobs:
        for secret in (key, key.hex().encode(), key.hex().upper().encode()):
            assert secret not in blob
        for n in people:
            assert n.encode() not in blob and spaced(n).encode() not in blob
    # Another key: every token differs.
    ps.keygen(key_dir / "k2")
    code, _, _ = run(
        capsys, "pseudonymise", "--key-file", key_dir / "k2", "--in", csv_file, "--columns",
        "NHS_NUMBER", "--out", out / "ae2.csv",
    )  # fmt: skip
    ae2 = duckdb.sql(f"SELECT * FROM read_csv('{out / 'ae2.csv'}', all_varchar=true)").fetchall()
    assert code == 0 and len(ae2) == 40
    assert not {r[1] for r in ae2} & set(want.values())


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize(
    ("content", "columns", "words"),
    [
        (b"a,b\n1,2\n", "nhs", ["no column 'nhs'", "'a', 'b'"]),
        (b"", "a", ["the file is empty"]),
        (b"a,b\n", "a", ["no rows"]),
        (b"a;nhs\n1;9434765919\n", "nhs", ["no column 'nhs'", "semicolons"]),
        (b"nhs,b\n9434765919,x\n4010232137,\xe9t\xe9\n", "nhs", ["line 3", "not UTF-8"]),
        (b"nhs,b\n9434765919,x\n4010232137,y,z\n", "nhs", ["line 3", "has 3 fields"]),
    ],
)
def test_bad_input_one_message_exit_2_input_unchanged(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    columns: str,
    words: list[str],
) -> None:
    key = tmp_path / "keys" / "k"
    key.parent.mkdir()
    ps.keygen(key)
    data = tmp_path / "data"
    data.mkdir()
    src = data / "in.csv"
    src.write_bytes(content)
    before = _digest(data)
    code, stdout, stderr = run(
        capsys, "pseudonymise", "--key-file", key, "--in", src, "--columns", columns,
        "--out", data / "out.csv",
    )  # fmt: skip
    assert code == 2 and stdout == ""
    assert stderr.startswith("careval: error: --in ") and stderr.count("\n") == 1
    assert str(src) in stderr and all(w in stderr for w in words), stderr
    assert "9434765919" not in stderr and "4010232137" not in stderr
    assert _digest(data) == before  # nothing written, nothing changed, no leftover


def test_bad_key_and_paths_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text("nhs\n9434765919\n")
    (tmp_path / "taken.csv").write_text("careval did not write this\n")
    key = tmp_path / "k"
    ps.keygen(key)
    open_key = tmp_path / "open"
    shutil.copy(key, open_key)
    open_key.chmod(0o644)
    short = tmp_path / "short"
    short.write_text("00ff\n")
    short.chmod(0o600)
    before = _digest(tmp_path)
    cases = [
        (open_key, tmp_path / "o.csv", "chmod 600"),
        (short, tmp_path / "o.csv", "64 hexadecimal"),
        (tmp_path / "none", tmp_path / "o.csv", "no such file"),
        (key, src, "is the input file"),
        (key, tmp_path / "taken.csv", "already exists"),
        (key, tmp_path / "o.parquet", "name it *.csv"),
    ]
    for k, dst, words in cases:
        code, _, stderr = run(
            capsys, "pseudonymise", "--key-file", k, "--in", src, "--columns", "NHS",
            "--out", dst,
        )  # fmt: skip
        assert code == 2 and words in stderr and stderr.count("\n") == 1, stderr
        assert "00ff" not in stderr
    code, _, stderr = run(capsys, "keygen", "--out", key)
    assert code == 2 and "already exists" in stderr
    assert _digest(tmp_path) == before


# --- validate's warning -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pseudo") / "data"
    generate(out, SynthSettings(persons=1500, seed=3))
    return out


def _copy(src: Path, dst: Path, synthetic: bool, numbers: dict[str, str] | None) -> dict[str, int]:
    """A copy of a dataset with its synthetic flag set, its person ids replaced by ``numbers``
    in every table; the count of rows with a person id in each table."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "dataset.json").read_text())
    manifest["synthetic"] = synthetic
    (dst / "dataset.json").write_text(json.dumps(manifest))
    counts = {}
    for name, table in TABLES.items():
        file = dst / f"{name}.parquet"
        if "person_id" not in table.column_names or not file.exists():
            continue
        t = pq.read_table(file)
        ids = t.column("person_id").to_pylist()
        counts[name] = sum(v is not None for v in ids)
        if numbers is not None:
            new = pa.array([None if v is None else numbers[v] for v in ids], pa.string())
            t = t.set_column(
                t.schema.get_field_index("person_id"), t.schema.field("person_id"), new
            )
            pq.write_table(t, file)
    return counts


def test_validate_warns_of_nhs_numbers_in_real_data_only(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = pq.read_table(small / "persons.parquet").column("person_id").to_pylist()
    numbers = valid_numbers(random.Random(9), len(ids))
    numbers = [spaced(n) if i % 4 == 0 else n for i, n in enumerate(numbers)]
    mapping = dict(zip(ids, numbers, strict=True))
    counts = _copy(small, tmp_path / "real", synthetic=False, numbers=mapping)
    assert len(counts) >= 6
    problems = validate(tmp_path / "real", show_examples=True)
    assert not [p for p in problems if p.severity == "error"]
    found = {p.table: p for p in problems if "NHS numbers" in p.rule}
    assert {t: p.count for t, p in found.items()} == counts
    assert all(p.column == "person_id" and p.severity == "warning" for p in found.values())
    assert all(p.example == "" and "careval pseudonymise" in p.allowed for p in found.values())
    code, _, stderr = run(capsys, "validate", tmp_path / "real")
    assert code == 0 and "warning: persons.person_id: values that look like NHS numbers" in stderr
    for n in numbers:
        assert n not in stderr and n.replace(" ", "") not in stderr
    # The synthetic ids flagged real, and the NHS numbers flagged synthetic: no such warning.
    _copy(small, tmp_path / "ids", synthetic=False, numbers=None)
    _copy(small, tmp_path / "synth", synthetic=True, numbers=mapping)
    for ds in ("ids", "synth"):
        assert not [p for p in validate(tmp_path / ds) if "NHS numbers" in p.rule]


def test_several_columns_and_integer_numbers(tmp_path: Path) -> None:
    from careval.cli.pseudonymise import pseudonymise_file

    key = bytes(range(32))
    rng = random.Random(3)
    # As integers: none may start with 0 (see the limits in docs/pseudonymisation.md).
    people = [n for n in valid_numbers(rng, 60) if n[0] != "0"][:30]
    src = tmp_path / "births.parquet"
    pq.write_table(
        pa.table(
            {
                "NHS_NUMBER": pa.array([int(n) for n in people], pa.int64()),
                "mother_nhsno": [people[(i + 1) % 30] if i % 2 else None for i in range(30)],
                "weight": [3.0 + i / 10 for i in range(30)],
            }
        ),
        src,
    )
    reports = pseudonymise_file(
        key, src, ["nhs_number", "MOTHER_NHSNO"], tmp_path / "out.parquet", keep_missing=True
    )
    assert [(r.rows_read, r.rows_written, r.missing) for r in reports] == [
        (30, 30, 0),
        (30, 30, 15),
    ]
    got = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["NHS_NUMBER"] for r in got] == [ps.token(key, n) for n in people]
    mothers = [r["mother_nhsno"] for r in got]
    assert mothers == [ps.token(key, people[(i + 1) % 30]) if i % 2 else None for i in range(30)]
    assert [r["weight"] for r in got] == [3.0 + i / 10 for i in range(30)]
    # Every mother is one of the people: linked through the tokens alone.
    con = duckdb.connect()
    rel = con.read_parquet(str(tmp_path / "out.parquet"))
    link = ps.linkage(con, rel, rel, "mother_nhsno", right_key_col="NHS_NUMBER")
    assert (link.rows, link.matched_rows, link.missing_rows, link.matched_people) == (
        30,
        15,
        15,
        15,
    )
