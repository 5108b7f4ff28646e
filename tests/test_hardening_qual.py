"""Hardening of survey and qualitative inputs (issue 16, items 5b, 6 and 7).

Paths stay inside the dataset and every file read is hashed; transcript roles come from a
declared list; REFI-QDA archives cannot escape or explode and their XML cannot expand or reach
out; positions beyond a document stop the command before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pandas as pd
import pytest

import careval
from careval.errors import ConfigError, showing_values
from careval.evaluation import input_hashes
from careval.files import MAX_MEMBERS
from careval.qualitative.coding import MAX_DOCUMENT_CHARS, Code, Codebook
from careval.qualitative.evaluate import evaluate_qualitative
from careval.qualitative.refi import (
    project_xml,
    read_codebook,
    read_project,
    write_project,
)
from careval.qualitative.roles import DEFAULT_ROLES, TranscriptSettings
from careval.qualitative.transcripts import read_transcript
from careval.spec import load
from careval.spec.model import QualitativeSection
from careval.spec.resolve import resolve, transcript_settings
from careval.surveys.evaluate import evaluate_surveys

Cli = Callable[..., CompletedProcess[str]]  # the ``cli`` fixture (conftest.py)
SECRET = "nhs_number_9434765919"  # a header that must never be echoed


# ------------------------------------------------------------------------------------ surveys


def survey_dataset(tmp: Path, data: str) -> Path:
    """A dataset folder ``ds`` with ``surveys/s.toml`` naming ``data`` (one open question),
    and a responses file with a secret header outside it, at ``tmp/elsewhere/secret.csv``."""
    ds = tmp / "ds"
    (ds / "surveys").mkdir(parents=True)
    (ds / "surveys" / "s.toml").write_text(
        f'name = "s"\ndata = {json.dumps(data)}\n'
        '[[questions]]\nid = "q"\ntext = "Any comments?"\ntype = "open"\n',
        encoding="utf-8",
    )
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "secret.csv").write_text(f"{SECRET},q\n1,fine\n", encoding="utf-8")
    return ds


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_survey_data_outside_the_dataset_is_refused_naming_the_definition(
    tmp_path: Path, cli: Cli, how: str
) -> None:
    outside = tmp_path / "elsewhere" / "secret.csv"
    data = {"relative": "../../elsewhere/secret.csv", "absolute": str(outside)}.get(how, "r.csv")
    ds = survey_dataset(tmp_path, data)
    if how == "symlink":  # a link inside the dataset that points out of it
        (ds / "surveys" / "r.csv").symlink_to(outside)
    definition = ds / "surveys" / "s.toml"
    with pytest.raises(ConfigError) as e:
        evaluate_surveys(ds)
    msg = str(e.value)
    assert str(definition) in msg and "lies outside" in msg and str(ds.resolve()) in msg
    assert SECRET not in msg
    out = tmp_path / "s.json"
    root = ["--root", str(ds)] if how == "relative" else []  # else: the definition's folder
    res = cli("survey", str(definition), "--json", str(out), *root)
    assert res.returncode == 2, res.stderr
    assert "s.toml" in res.stderr and "lies outside" in res.stderr
    assert SECRET not in res.stderr + res.stdout and "Traceback" not in res.stderr
    assert not out.exists()


def test_survey_data_anywhere_inside_the_dataset_is_read_and_hashed(tmp_path: Path) -> None:
    ds = survey_dataset(tmp_path, "../responses/r.csv")
    (ds / "responses").mkdir()
    content = b"id,q\n1,fine\n2,\n3,good\n"
    (ds / "responses" / "r.csv").write_bytes(content)
    result = evaluate_surveys(ds)
    assert result is not None and result.surveys[0].n_responses == 3
    hashes = input_hashes(ds, result, None)
    # The data file lies outside surveys/ and is hashed by its path in the dataset; the
    # definition too; nothing else.
    assert hashes == {
        "responses/r.csv": hashlib.sha256(content).hexdigest(),
        "surveys/s.toml": hashlib.sha256((ds / "surveys" / "s.toml").read_bytes()).hexdigest(),
    }


def test_dataset_transcripts_must_lie_inside_the_dataset(tmp_path: Path) -> None:
    tdir = tmp_path / "ds" / "qualitative" / "transcripts"
    tdir.mkdir(parents=True)
    (tdir / "m1.txt").write_text("CHAIR: welcome\nNURSE: thanks\n", encoding="utf-8")
    result = evaluate_qualitative(tmp_path / "ds")
    assert result is not None and result.inputs == [(tdir / "m1.txt").resolve()]
    assert list(input_hashes(tmp_path / "ds", None, result)) == ["qualitative/transcripts/m1.txt"]
    (tmp_path / "outside.txt").write_text("CHAIR: from elsewhere\n", encoding="utf-8")
    (tdir / "m2.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(ConfigError, match=r"m2\.txt: transcript file lies outside .*/ds"):
        evaluate_qualitative(tmp_path / "ds")
    # A link pointing out that no analysis reads is not followed for the hashes either.
    (tdir / "m2.txt").unlink()
    (tmp_path / "ds" / "qualitative" / "notes.md").symlink_to(tmp_path / "outside.txt")
    assert "qualitative/notes.md" not in input_hashes(tmp_path / "ds", None, result)


# ------------------------------------------------------------------------------------ roles


def test_an_undeclared_role_is_an_error_naming_file_line_role_and_allowed(
    tmp_path: Path, cli: Cli
) -> None:
    tdir = tmp_path / "transcripts"
    tdir.mkdir()
    (tdir / "m1.txt").write_text(
        "# meeting: M1\nCHAIR: welcome\nWIZARD: I see a patient in my crystal ball\n"
        "NURSE: thanks\nWizard: another vision\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as e:
        read_transcript(tdir / "m1.txt")
    hidden = str(e.value)  # a role as written may be a name: not quoted unless asked
    assert "m1.txt: 2 utterances by a role that is not declared; lines 3, 5;" in hidden
    assert "wizard" not in hidden.lower() and "crystal ball" not in hidden
    with showing_values(True), pytest.raises(ConfigError) as e:
        read_transcript(tdir / "m1.txt")
    msg = str(e.value)
    assert "m1.txt: 2 utterances by a role that is not declared (wizard)" in msg
    assert "line 3: 'WIZARD'" in msg and "crystal ball" not in msg
    assert "allowed: " + ", ".join(DEFAULT_ROLES) in hidden
    pd.DataFrame({"role": ["chair", "sorcerer"], "text": ["hello", "abracadabra"]}).to_csv(
        tmp_path / "m2.csv", index=False
    )
    with pytest.raises(ConfigError, match=r"m2\.csv: 1 utterance by .*declared; line 3;"):
        read_transcript(tmp_path / "m2.csv")
    (tdir / "m1.txt").write_text("# meeting: M1\nCHAIR: welcome\n", encoding="utf-8")
    (tdir / "attendance.csv").write_text(
        "meeting_id,role,attendees\nM1,chair,1\nM1,wizard,2\n", encoding="utf-8"
    )
    out = tmp_path / "t.json"
    res = cli("transcripts", str(tdir), "--json", str(out))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "attendance.csv: 1 attendance row by a role that is not declared; line 3" in res.stderr
    shown = cli("--show-examples", "transcripts", str(tdir), "--json", str(out))
    assert shown.returncode == 2 and "not declared (wizard)" in shown.stderr
    assert "line 3" in res.stderr and not out.exists()


def test_a_role_declared_in_the_spec_is_accepted(tmp_path: Path, cli: Cli) -> None:
    tdir = tmp_path / "ds" / "qualitative" / "transcripts"
    tdir.mkdir(parents=True)
    text = "CHAIR: welcome\nWIZARD: a vision\nCare-Navigator: a referral\nWIZARD: another\n"
    (tdir / "m1.txt").write_text(text, encoding="utf-8")
    spec = tmp_path / "study.toml"
    spec.write_text('[qualitative]\nroles = ["Wizard", "care navigator"]\n', encoding="utf-8")
    settings = transcript_settings(load(spec).spec)
    assert settings.roles == (*DEFAULT_ROLES, "wizard", "care_navigator")
    assert resolve(load(spec).spec).transcripts == settings  # what `careval run` uses
    with pytest.raises(ConfigError, match="not declared"):
        evaluate_qualitative(tmp_path / "ds")  # the built-in roles only
    result = evaluate_qualitative(tmp_path / "ds", settings)
    assert result is not None and result.transcripts is not None
    counts = dict(
        zip(*(result.transcripts.overall[c] for c in ("role", "utterances")), strict=True)
    )
    assert counts == {"wizard": 2, "chair": 1, "care_navigator": 1}
    out = tmp_path / "t.json"
    res = cli("transcripts", str(tdir), "--json", str(out), "--spec", str(spec))
    assert res.returncode == 0, res.stderr
    overall = {r["role"]: r["utterances"] for r in json.loads(out.read_text())["overall"]}
    assert overall == {"wizard": 2, "chair": 1, "care_navigator": 1}
    with pytest.raises(ConfigError, match="qualitative.roles: '9 lives' is not a role name"):
        QualitativeSection(roles=("9 lives",))
    with pytest.raises(ConfigError, match="declare at least one role"):
        TranscriptSettings(roles=())


def test_careval_run_checks_the_roles_of_the_datasets_transcripts(
    synth_dir: Path, tmp_path: Path, cli: Cli
) -> None:
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    tdir = data / "qualitative" / "transcripts"
    assert tdir.is_dir()  # the generated dataset carries transcripts
    (tdir / "extra.txt").write_text("# meeting: X1\nCHAIR: hi\nWIZARD: boo\n", encoding="utf-8")
    out = tmp_path / "out"
    res = cli("run", "--data", str(data), "--out", str(out))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "extra.txt: 1 utterance by a role that is not declared (wizard)" in res.stderr
    assert not out.exists()


# ------------------------------------------------------------------------------------ REFI-QDA

BOOK = Codebook([Code("Access", "", "Access to data"), Code("Time", "", "Time taken")])


def segments(end: int = 11) -> pd.DataFrame:
    """Two positioned segments of one document, "hello world" (11 characters)."""
    df = pd.DataFrame(
        {
            "segment_id": ["a", "b"],
            "document": ["int1", "int1"],
            "case": ["p1", "p1"],
            "group": ["GP", "GP"],
            "coder": ["ann", "ann"],
            "code": ["Access", "Time"],
            "text": ["hello", "world"],
        }
    )
    df["start"] = pd.array([0, 6], dtype="Int64")
    df["end"] = pd.array([5, end], dtype="Int64")
    return df


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def rezip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A valid .qdpx whose source text is "hello world"."""
    write_project(tmp_path / "good.qdpx", BOOK, segments())
    book, seg, _ = read_project(tmp_path / "good.qdpx")
    assert list(seg["text"]) == ["hello", "world"]  # the text travels with the project
    return tmp_path / "good.qdpx"


def refused(cli: Cli, path: Path, tmp: Path, *expected: str) -> str:
    """``careval qda`` on ``path``: exit 2, each expected text in the message, nothing written."""
    out, qdpx = tmp / "q.json", tmp / "out.qdpx"
    res = cli("qda", "--segments", str(path), "--json", str(out), "--export-qdpx", str(qdpx))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and str(path) in res.stderr
    for text in expected:
        assert text in res.stderr, res.stderr
    assert not out.exists() and not qdpx.exists()
    return res.stderr


@pytest.mark.parametrize(
    "name", ["../x.txt", "sources/../../x.txt", "/etc/x.txt", "C:/x.txt", "sources\\x.txt"]
)
def test_archive_members_outside_the_archive_are_refused(
    project: Path, tmp_path: Path, name: str
) -> None:
    bad = rezip(tmp_path / "bad.qdpx", {**members(project), name: b"x"})
    with pytest.raises(ConfigError) as e:
        read_project(bad)
    msg = str(e.value)
    assert msg.startswith(f"{bad}: archive member {name!r} has an absolute or parent-directory")


def test_archive_member_escape_via_the_command(project: Path, tmp_path: Path, cli: Cli) -> None:
    bad = rezip(tmp_path / "bad.qdpx", {**members(project), "../../x.txt": b"x"})
    refused(cli, bad, tmp_path, "archive member '../../x.txt'", "parent-directory path")


def _patch_sizes(data: bytes, name: str, size: int, compressed: int | None = None) -> bytes:
    """``data`` (a zip) with ``name``'s uncompressed (and compressed) size in the central
    directory set to ``size`` (``compressed``): what a crafted archive declares."""
    buf = bytearray(data)
    pos = buf.find(b"PK\x01\x02")  # central directory headers
    while pos >= 0:
        n = struct.unpack("<H", buf[pos + 28 : pos + 30])[0]
        if buf[pos + 46 : pos + 46 + n].decode() == name:
            struct.pack_into("<I", buf, pos + 24, size)
            if compressed is not None:
                struct.pack_into("<I", buf, pos + 20, compressed)
            return bytes(buf)
        pos = buf.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"{name} not in the archive")


def test_zip_bombs_are_refused(project: Path, tmp_path: Path, cli: Cli) -> None:
    files = members(project)
    # Actual expansion: 40 MiB of zeros packed into about 40 KiB.
    bomb = rezip(tmp_path / "bomb.qdpx", {**files, "sources/zeros.txt": bytes(40 * 2**20)})
    assert bomb.stat().st_size < 200_000
    refused(cli, bomb, tmp_path, "member 'sources/zeros.txt' expands from", "zip bomb")
    # Declared expansion: a small member claiming 4 GiB.
    small = rezip(tmp_path / "small.qdpx", {**files, "sources/x.txt": b"tiny"}).read_bytes()
    claim = tmp_path / "claim.qdpx"
    claim.write_bytes(_patch_sizes(small, "sources/x.txt", 2**32 - 1))
    with pytest.raises(ConfigError, match=r"'sources/x\.txt' expands from .* zip bomb"):
        read_project(claim)
    # Declared total beyond the limit at a plausible ratio: the total is refused.
    total = tmp_path / "total.qdpx"
    total.write_bytes(_patch_sizes(small, "sources/x.txt", 600 * 2**20, 300 * 2**20))
    with pytest.raises(ConfigError, match=r"unpacks to 629,\d{3},\d{3} bytes.*'sources/x\.txt'"):
        read_project(total)
    # Actual expansion beyond what is declared: never more than the declared size is unpacked.
    lying = tmp_path / "lying.qdpx"
    raw = rezip(tmp_path / "l.qdpx", {**files, "sources/y.txt": b"y" * 100_000}).read_bytes()
    lying.write_bytes(_patch_sizes(raw, "sources/y.txt", 10))
    with pytest.raises(ConfigError, match=r"archive member 'sources/y\.txt' cannot be read"):
        read_project(lying)
    many = {f"sources/{i}.txt": b"" for i in range(MAX_MEMBERS)}
    crowd = rezip(tmp_path / "crowd.qdpx", {**files, **many})
    with pytest.raises(ConfigError, match=f"has {MAX_MEMBERS + len(files):,} members"):
        read_project(crowd)


LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + ']>\n<Project xmlns="urn:QDA-XML:project:1.0" name="x">&lol9;</Project>\n'
)
EXTERNAL = (
    '<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    '<Project xmlns="urn:QDA-XML:project:1.0" name="&xxe;"/>\n'
)


@pytest.mark.parametrize("xml", [LAUGHS, EXTERNAL], ids=["billion-laughs", "external-entity"])
def test_entity_expansion_and_external_entities_are_refused(
    tmp_path: Path, cli: Cli, xml: str
) -> None:
    qde = tmp_path / "project.qde"
    qde.write_text(xml, encoding="utf-8")
    msg = refused(cli, qde, tmp_path, "XML with a DOCTYPE or entity declarations is not accepted")
    assert "root:" not in msg and "lollol" not in msg
    archive = rezip(tmp_path / "p.qdpx", {"project.qde": xml.encode()})
    with pytest.raises(ConfigError, match="DOCTYPE or entity declarations"):
        read_project(archive)
    (tmp_path / "c.qdc").write_text(xml.replace("Project", "CodeBook"), encoding="utf-8")
    with pytest.raises(ConfigError, match="DOCTYPE or entity declarations"):
        read_codebook(tmp_path / "c.qdc")


def test_every_xml_parse_in_careval_goes_through_defusedxml() -> None:
    import openpyxl.xml

    unsafe = re.compile(
        r"\b(?:ET|ElementTree|etree)\.(?:fromstring|parse|iterparse|XML|XMLParser)\(|"
        r"xml\.(?:dom|sax|parsers)|\blxml\b|\bminidom\b"
    )
    hits = [
        f"{p.name}:{i}"
        for p in Path(careval.__file__).parent.rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if unsafe.search(line)
    ]
    assert hits == []
    assert openpyxl.xml.DEFUSEDXML  # survey workbooks (.xlsx) are parsed by defusedxml too


# ------------------------------------------------------------------------------ positions


def test_a_selection_beyond_its_source_text_is_refused_and_nothing_written(
    project: Path, tmp_path: Path, cli: Cli
) -> None:
    files = members(project)
    xml = files["project.qde"].decode()
    assert xml.count('endPosition="11"') == 1
    files["project.qde"] = xml.replace('endPosition="11"', 'endPosition="50"').encode()
    beyond = rezip(tmp_path / "beyond.qdpx", files)
    refused(
        cli,
        beyond,
        tmp_path,
        "1 selection(s) with positions outside their source's text",
        "of source 'int1': 6-50",
    )


@pytest.mark.parametrize("end", [10**15, 10**40, MAX_DOCUMENT_CHARS + 1])
def test_an_enormous_segment_offset_is_refused_and_nothing_written(
    tmp_path: Path, cli: Cli, end: int
) -> None:
    csv = tmp_path / "segments.csv"
    seg = segments().astype({"end": object})
    seg.loc[1, "end"] = end
    seg.to_csv(csv, index=False)
    refused(
        cli,
        csv,
        tmp_path,
        "column 'end' is beyond the longest document accepted (1 row)",
        f"character positions up to {MAX_DOCUMENT_CHARS:,}",
        "line 3",
    )
    with pytest.raises(ConfigError, match="positions 6-1,000,000,000,000; allowed: 0 to"):
        project_xml(BOOK, segments(end=10**12))  # built in code: refused, not allocated


def test_an_export_that_cannot_be_written_stops_before_the_json(
    project: Path, tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "q.json"

    def export(qdpx: Path) -> CompletedProcess[str]:
        return cli(
            "qda", "--segments", str(project), "--json", str(out), "--export-qdpx", str(qdpx)
        )

    res = export(tmp_path / "missing" / "p.qdpx")
    assert res.returncode == 2 and "--export-qdpx" in res.stderr and "does not exist" in res.stderr
    assert not out.exists()
    res = export(tmp_path / "p.qdpx")
    assert res.returncode == 0, res.stderr
    assert read_project(tmp_path / "p.qdpx")[1]["text"].tolist() == ["hello", "world"]
    assert json.loads(out.read_text())["n_segments"] == 2


def test_an_encrypted_member_and_deep_nesting_are_clear_errors(
    project: Path, tmp_path: Path
) -> None:
    """Found in review: an encrypted member raised zipfile's RuntimeError, and codes nested
    thousands deep the schema validator's RecursionError; both are one clear message now."""
    files = members(project)
    raw = bytearray(rezip(tmp_path / "plain.qdpx", files).read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # the general purpose flags
        pos = raw.find(sig)
        while pos >= 0:
            raw[pos + at] |= 0x1  # "encrypted": reading a member asks for a password
            pos = raw.find(sig, pos + 4)
    locked = tmp_path / "locked.qdpx"
    locked.write_bytes(bytes(raw))
    with pytest.raises(ConfigError, match=r"archive member 'project\.qde' cannot be read"):
        read_project(locked)
    deep = tmp_path / "deep.qdc"
    ns = "urn:QDA-XML:codebook:1.0"
    depth = 5000
    deep.write_text(
        f'<?xml version="1.0" encoding="utf-8"?><CodeBook xmlns="{ns}" origin="x"><Codes>'
        + "".join(
            f'<Code guid="{i:08d}-0000-0000-0000-000000000000" name="c{i}">' for i in range(depth)
        )
        + "</Code>" * depth
        + "</Codes></CodeBook>",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_codebook(deep)


def test_a_text_variable_s_missing_values_in_spss(tmp_path: Path) -> None:
    """Found in review: a .sav whose text variable has discrete missing values crashed the
    reader (float('NA')); they are user-missing codes of that variable."""
    import pyreadstat

    from careval.surveys.readers import _read_stat

    df = pd.DataFrame({"id": ["1", "2", "3"], "q1": ["yes", "NA", "no"]})
    path = tmp_path / "s.sav"
    pyreadstat.write_sav(df, str(path), missing_ranges={"q1": ["NA"]})
    resp = _read_stat(path, "sav")
    assert resp.user_missing == {"q1": {"NA"}} and resp.missing_ranges == {}
    assert resp.frame["q1"].tolist() == ["yes", "NA", "no"]


def test_many_documents_at_the_largest_positions_are_refused_before_any_allocation() -> None:
    """Found in review: each document under the limit, but 1,000 of them at the last position
    would ask for about ten thousand million characters in all."""
    from careval.qualitative.refi import MAX_TOTAL_CHARS

    n = 1000
    df = pd.DataFrame(
        {
            "segment_id": [f"s{i}" for i in range(n)],
            "document": [f"d{i}" for i in range(n)],
            "case": ["p1"] * n,
            "group": ["GP"] * n,
            "coder": ["ann"] * n,
            "code": ["Access"] * n,
            "text": ["x"] * n,
            "start": [MAX_DOCUMENT_CHARS - 1] * n,
            "end": [MAX_DOCUMENT_CHARS] * n,
        }
    )
    with pytest.raises(ConfigError, match=f"allowed: at most {MAX_TOTAL_CHARS:,} in all"):
        project_xml(BOOK, df)
