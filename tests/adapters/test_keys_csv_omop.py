"""``--key-file`` on ``careval import csv`` and ``careval import omop``: person_id becomes the
keyed token ``careval pseudonymise`` and ``careval import hes`` give the same value with the
same key (so extracts imported apart link), references still hold, the key is written nowhere,
and invalid NHS numbers refuse a CSV import whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from careval.data.adapters.pseudonymise import fingerprint, keygen, nhs_number_valid, read_key
from careval.data.adapters.pseudonymise import token as token_of
from careval.data.schema import TABLES
from tests.adapters.cli import exit_code as run
from tests.adapters.test_csv_import import HAND, hashes, write_hand
from tests.adapters.test_hes_import import DEFAULTS
from tests.adapters.test_hes_import import write as write_episodes
from tests.adapters.test_omop import EXTRACT as OMOP_EXTRACT
from tests.adapters.test_omop import write_omop

EXTRACT = "2014-04-01"


def valid_numbers(n: int) -> list[str]:
    """The first ``n`` valid NHS numbers from 943 476 0000 up (independent of the adapter)."""
    found, i = [], 9434760000
    while len(found) < n:
        if nhs_number_valid(str(i)):
            found.append(str(i))
        i += 1
    return found


NHS = dict(zip([f"P0{i}" for i in range(1, 9)], valid_numbers(8), strict=True))


def nhs_hand(folder: Path, spaced: str = "P02") -> Path:
    """The hand-written CSV dataset with NHS numbers as person_id (one person spaced 3-3-4 in
    the spells only, as a different system might write it)."""
    folder.mkdir()
    for name, text in HAND.items():
        for p, number in NHS.items():
            written = number
            if p == spaced and name == "inpatient_spells.csv":
                written = f"{number[:3]} {number[3:6]} {number[6:]}"
            text = text.replace(f",{p},", f",{written},").replace(f"\n{p},", f"\n{written},")
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def new_key(path: Path) -> bytes:
    keygen(path)
    return read_key(path)


def person_ids(out: Path) -> dict[str, list[str | None]]:
    """person_id of every table written that has one."""
    return {
        name: pq.read_table(out / f"{name}.parquet").column("person_id").to_pylist()
        for name, t in TABLES.items()
        if "person_id" in t.column_names and (out / f"{name}.parquet").exists()
    }


def assert_key_nowhere(key: bytes, folder: Path, *texts: str) -> None:
    """Neither the key's bytes nor its hex (either case) in any byte of any file, nor texts."""
    needles = [key, key.hex().encode(), key.hex().upper().encode()]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for p in files:
        data = p.read_bytes()
        for needle in needles:
            assert needle not in data, p
    for text in texts:
        assert key.hex() not in text.lower()


def import_csv_cli(src: Path, out: Path, *more: str | Path) -> int:
    return run("import", "csv", str(src), "--out", str(out), "--extract-date", EXTRACT,
               *map(str, more))  # fmt: skip


# --- csv -----------------------------------------------------------------------------------------


def test_csv_nhs_numbers_become_the_tokens_pseudonymise_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "k.key"
    key = new_key(key_file)
    src, out = nhs_hand(tmp_path / "in"), tmp_path / "ds"
    before = hashes(src)
    assert import_csv_cli(src, out, "--key-file", key_file) == 0
    std = capsys.readouterr()
    ids = person_ids(out)
    # Every table: each row's NHS number (in the input's row order) is its token.
    for name, got in ids.items():
        lines = HAND[f"{name}.csv"].splitlines()[1:]
        col = HAND[f"{name}.csv"].splitlines()[0].split(",").index("person_id")
        want = [token_of(key, NHS[line.split(",")[col]]) for line in lines]
        assert sorted(got) == sorted(want), name  # type: ignore[type-var]
    # The token careval pseudonymise gives the same numbers with the same key.
    ps = tmp_path / "ps.csv"
    assert run("pseudonymise", "--key-file", str(key_file), "--in", str(src / "persons.csv"),
               "--columns", "person_id", "--out", str(ps)) == 0  # fmt: skip
    std2 = capsys.readouterr()
    from_ps = pq.read_table(out / "persons.parquet").column("person_id").to_pylist()
    from_cli = [line.split(",")[0] for line in ps.read_text().splitlines()[1:]]
    assert len(from_cli) == 8 and sorted(from_cli) == sorted(from_ps)  # type: ignore[type-var]
    # References hold: every person of every table is a person.
    people = set(ids["persons"])
    assert len(people) == 8 and all(set(v) <= people for v in ids.values())
    manifest = json.loads((out / "dataset.json").read_text())
    report = json.loads((out / "import_report.json").read_text())
    assert manifest["key_fingerprint"] == report["key_fingerprint"] == fingerprint(key)
    assert_key_nowhere(key, out, std.out, std.err, std2.out, std2.err)
    for number in NHS.values():
        for p in out.rglob("*"):
            assert not p.is_file() or number.encode() not in p.read_bytes(), p
    assert hashes(src) == before


def test_csv_and_hes_imported_with_one_key_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "k.key"
    key = new_key(key_file)
    assert import_csv_cli(nhs_hand(tmp_path / "in"), tmp_path / "gp", "--key-file", key_file) == 0
    number = NHS["P05"]
    apc = write_episodes(
        tmp_path / "apc.csv",
        [{**{k: v for k, v in DEFAULTS.items() if k != "HESID"}, "NHS_NUMBER": number,
          "EPIKEY": "E1"}],
    )  # fmt: skip
    assert run("import", "hes", "--apc", str(apc), "--key-file", str(key_file),
               "--out", str(tmp_path / "hes")) == 0  # fmt: skip
    std = capsys.readouterr()
    hes = pq.read_table(tmp_path / "hes" / "persons.parquet").column("person_id").to_pylist()
    gp = pq.read_table(tmp_path / "gp" / "persons.parquet").column("person_id").to_pylist()
    assert hes == [token_of(key, number)]
    assert set(hes) & set(gp) == set(hes)
    assert_key_nowhere(key, tmp_path / "hes", std.out, std.err)


def test_csv_a_different_key_gives_different_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = nhs_hand(tmp_path / "in")
    tokens = []
    for name in ("a", "b"):
        new_key(tmp_path / f"{name}.key")
        assert import_csv_cli(src, tmp_path / name, "--key-file", tmp_path / f"{name}.key") == 0
        tokens.append(set(person_ids(tmp_path / name)["persons"]))
    capsys.readouterr()
    assert len(tokens[0]) == len(tokens[1]) == 8
    assert not tokens[0] & tokens[1]


def test_csv_invalid_nhs_numbers_refuse_the_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "k.key"
    key = new_key(key_file)
    src = nhs_hand(tmp_path / "in")
    bad = NHS["P06"][:9] + str((int(NHS["P06"][9]) + 1) % 10)  # the check digit changed
    regs = src / "registrations.csv"
    lines = regs.read_text().splitlines(keepends=True)
    # Rows 6 and 7 of registrations are P06's (the header is not a row).
    assert lines[6].startswith(NHS["P06"]) and lines[7].startswith(NHS["P06"])
    lines[6] = lines[6].replace(NHS["P06"], bad)
    lines[7] = lines[7].replace(NHS["P06"], bad)
    regs.write_text("".join(lines))
    before = hashes(src)
    out = tmp_path / "ds"
    assert import_csv_cli(src, out, "--key-file", key_file) == 2
    std = capsys.readouterr()
    message = std.err.strip()
    assert "registrations.csv" in message and "person_id" in message
    assert "not a valid NHS number" in message and "(2 rows)" in message
    assert "rows 6, 7" in message
    assert "problems" not in message  # one finding, one message
    assert bad not in std.err + std.out and NHS["P06"] not in std.err + std.out
    assert not out.exists() and not any(p.name.startswith(".ds") for p in tmp_path.iterdir())
    assert hashes(src) == before
    assert key.hex() not in std.err + std.out


def test_csv_any_id_hashes_the_value_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "k.key"
    key = new_key(key_file)
    src = write_hand(tmp_path / "in")
    # Without --any-id, ids that are not NHS numbers are refused.
    assert import_csv_cli(src, tmp_path / "no", "--key-file", key_file) == 2
    assert "not a valid NHS number" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
    out = tmp_path / "ds"
    assert import_csv_cli(src, out, "--key-file", key_file, "--any-id") == 0
    std = capsys.readouterr()
    got = sorted(person_ids(out)["persons"])  # type: ignore[type-var]
    assert got == sorted(token_of(key, p, nhs=False) for p in NHS)
    ps = tmp_path / "ps.csv"
    assert run("pseudonymise", "--key-file", str(key_file), "--in", str(src / "persons.csv"),
               "--columns", "person_id", "--any-id", "--out", str(ps)) == 0  # fmt: skip
    capsys.readouterr()
    assert sorted(line.split(",")[0] for line in ps.read_text().splitlines()[1:]) == got
    assert_key_nowhere(key, out, std.out, std.err)
    # --any-id alone is refused: it says how a key hashes.
    assert import_csv_cli(src, tmp_path / "x", "--any-id") == 2
    assert "--key-file" in capsys.readouterr().err


def test_csv_synthetic_dataset_keyed_keeps_every_row_and_reference(
    synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.adapters.test_csv_import import export_csv

    key_file = tmp_path / "k.key"
    key = new_key(key_file)
    src = tmp_path / "csv"
    export_csv(synth_dir, src)
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out), "--synthetic",
               "--key-file", str(key_file), "--any-id") == 0  # fmt: skip
    capsys.readouterr()
    plain = person_ids(synth_dir)
    keyed = person_ids(out)
    tok = {p: token_of(key, p, nhs=False) for p in plain["persons"] if p is not None}
    for name, values in plain.items():
        assert sorted(keyed[name]) == sorted(tok[v] for v in values if v), name  # type: ignore[type-var]
    assert_key_nowhere(key, out)
    shutil.rmtree(src)


# --- omop ----------------------------------------------------------------------------------------


def test_omop_person_ids_become_any_id_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_omop(tmp_path / "omop")
    before = hashes(src)
    base = ["import", "omop", "--dir", str(src), "--extract-date", OMOP_EXTRACT]
    assert run(*base, "--out", str(tmp_path / "plain")) == 0
    keys = {}
    for name in ("a", "b"):
        keys[name] = new_key(tmp_path / f"{name}.key")
        assert run(*base, "--out", str(tmp_path / name), "--key-file",
                   str(tmp_path / f"{name}.key")) == 0  # fmt: skip
    std = capsys.readouterr()
    plain = person_ids(tmp_path / "plain")
    for name, key in keys.items():
        keyed = person_ids(tmp_path / name)
        assert keyed.keys() == plain.keys()
        for table, values in plain.items():
            want = sorted(token_of(key, v, nhs=False) for v in values if v)
            assert sorted(keyed[table]) == want, table  # type: ignore[type-var]
        manifest = json.loads((tmp_path / name / "dataset.json").read_text())
        report = json.loads((tmp_path / name / "import_report.json").read_text())
        assert manifest["key_fingerprint"] == report["key_fingerprint"] == fingerprint(key)
        assert_key_nowhere(key, tmp_path / name, std.out, std.err)
    assert len(plain["persons"]) >= 3
    assert not set(person_ids(tmp_path / "a")["persons"]) & set(
        person_ids(tmp_path / "b")["persons"]
    )
    assert "key_fingerprint" not in json.loads((tmp_path / "plain" / "dataset.json").read_text())
    assert hashes(src) == before
