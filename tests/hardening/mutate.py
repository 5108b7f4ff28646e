"""The mutations the hardening corpus is made with: each damages a copy of the dataset.

Parquet pages garbled behind an intact footer, sizes a file cannot hold, archives with hostile
members or a zip bomb's header, XML that expands entities, CSV inputs of the table commands,
user files where careval writes. Every function takes the case's directory (or a file in it)
and changes it in place; :mod:`make_corpus` says which case uses which.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SECRET_ID = "SECRET-PERSON-0001"  # a value that must never be printed for real-flagged data


def table(case_dir: Path, name: str) -> Path:
    return case_dir / "data" / f"{name}.parquet"


def rewrite(case_dir: Path, name: str, change: Callable[[pa.Table], pa.Table]) -> None:
    file = table(case_dir, name)
    pq.write_table(change(pq.read_table(file)), file)


def as_csv(case_dir: Path, name: str) -> None:
    """Replace a table's Parquet file by the same rows as CSV (the name kept)."""
    file = table(case_dir, name)
    file.write_bytes(pq.read_table(file).to_pandas().to_csv(index=False).encode())


def set_column(t: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return t.set_column(t.schema.get_field_index(column), column, values)


def first_set(t: pa.Table, column: str, value: object) -> pa.Table:
    """``t`` with the first row's ``column`` replaced by ``value`` (same type)."""
    values = t[column].to_pylist()
    values[0] = value
    return set_column(t, column, pa.array(values, type=t.schema.field(column).type))


def manifest(case_dir: Path, **changes: object) -> None:
    file = case_dir / "data" / "dataset.json"
    manifest = json.loads(file.read_text("utf-8"))
    manifest.update(changes)
    file.write_text(json.dumps(manifest, indent=2), "utf-8")


def _footer_start(raw: bytes) -> int:
    """Offset of the Parquet footer (the Thrift file metadata) in a file's bytes."""
    (length,) = struct.unpack("<I", raw[-8:-4])
    return len(raw) - 8 - length


def garble(case_dir: Path, name: str, start: int, length: int) -> None:
    """Overwrite ``length`` bytes from ``start`` (inside the pages) and keep the footer intact."""
    file = table(case_dir, name)
    raw = bytearray(file.read_bytes())
    end = min(start + length, _footer_start(raw))
    raw[start:end] = bytes((i * 97 + 13) % 256 for i in range(end - start))
    file.write_bytes(bytes(raw))


def garble_middle(case_dir: Path, name: str) -> None:
    """Garble the compressed data of the table's longest column chunk (headers intact)."""
    file = table(case_dir, name)
    meta = pq.read_metadata(file).row_group(0)
    chunk = max(
        (meta.column(i) for i in range(meta.num_columns)), key=lambda c: c.total_compressed_size
    )
    start = chunk.data_page_offset + chunk.total_compressed_size // 3
    garble(case_dir, name, start, chunk.total_compressed_size // 3)


def huge_page_size(case_dir: Path, name: str) -> None:
    """Make the first page header claim a page far larger than the file (same byte length)."""
    file = table(case_dir, name)
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


def zip_members(path: Path) -> dict[str, bytes]:
    """Every member of a zip archive and its bytes, by name."""
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def zip_rewrite(path: Path, extra: dict[str, bytes] | None = None, keep: bool = True) -> None:
    """Rewrite a zip archive (xlsx, qdpx) with the members ``extra`` added, or put in place of
    those of the same name; names are taken as given."""
    members: list[tuple[zipfile.ZipInfo | str, bytes]] = []
    if keep:
        with zipfile.ZipFile(path) as z:
            members = [(i, z.read(i)) for i in z.infolist() if i.filename not in (extra or {})]
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


def claim_huge(path: Path, member_suffix: str) -> None:
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


def replace(path: Path, old: str, new: str, count: int = -1) -> None:
    text = path.read_text("utf-8")
    if old not in text:
        raise ValueError(f"{path}: {old!r} not found")
    path.write_text(text.replace(old, new, count), "utf-8")


def project(case_dir: Path) -> Path:
    """A REFI-QDA project made from the dataset's coded segments and codebook."""
    from careval.qualitative import refi
    from careval.qualitative.evaluate import read_coding_inputs

    q = case_dir / "data" / "qualitative"
    seg, book, _ = read_coding_inputs(q / "coded_segments.csv", q / "codebook.qdc", "group")
    path = case_dir / "project.qdpx"
    refi.write_project(path, book, seg)
    return path


def footer_length(d: Path, name: str) -> None:
    file = table(d, name)
    raw = bytearray(file.read_bytes())
    raw[-8:-4] = struct.pack("<I", 0x7FFF_FFF0)
    file.write_bytes(bytes(raw))


def truncate(path: Path, share: float) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * share)])


def real_duplicate(d: Path) -> None:
    manifest(d, synthetic=False)

    def change(t: pa.Table) -> pa.Table:
        ids = t["person_id"].to_pylist()
        ids[0] = ids[1] = SECRET_ID
        return set_column(t, "person_id", pa.array(ids, pa.string()))

    for table in ("persons",):
        rewrite(d, table, change)


def escape(d: Path, target: str) -> None:
    elsewhere = d / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(d / "data" / "surveys" / "patients.csv", elsewhere / "secret.csv")
    replace(
        d / "data" / "surveys" / "patients.toml",
        'data = "patients.csv"',
        f"data = {json.dumps(target)}",
    )


def intruder(d: Path) -> None:
    folder = d / "data" / "qualitative" / "transcripts"
    file = sorted(folder.glob("*.txt"))[0]
    text = file.read_text("utf-8").rstrip("\n") + "\nINTRUDER [individual]: Nobody asked me in.\n"
    file.write_text(text, "utf-8")


def qdc_laughs(d: Path) -> None:
    file = d / "data" / "qualitative" / "codebook.qdc"
    body = file.read_text("utf-8").split("?>", 1)[1]
    body = body.replace("How the pilot was led", "&lol9; How the pilot was led", 1)
    file.write_bytes(LAUGHS + body.encode())


def xlsx_laughs(d: Path) -> None:
    """A workbook whose shared strings expand an entity a billion times (the billion laughs)."""
    path = d / "data" / "surveys" / "early_adopters.xlsx"
    members = zip_members(path)
    name = (
        "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in members else "xl/worksheets/sheet1.xml"
    )
    body = members[name].split(b"?>", 1)[-1]
    at = re.search(rb"<t[ >]", body).start()  # type: ignore[union-attr]
    at = body.index(b">", at) + 1
    zip_rewrite(path, {name: LAUGHS + body[:at] + b"&lol9;" + body[at:]})


def huge_offset(d: Path) -> None:
    path = project(d)
    members = zip_members(path)
    name = next(n for n in members if n.endswith(".qde"))
    xml = members[name].decode()
    at = xml.index('endPosition="')
    end = xml.index('"', at + len('endPosition="'))
    zip_rewrite(path, {name: (xml[:at] + 'endPosition="999999999999"' + xml[end + 1 :]).encode()})


def huge_csv_offset(d: Path) -> None:
    """Coded segments with character positions, one ending at 999,999,999,999."""
    path = d / "data" / "qualitative" / "coded_segments.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows[0] += ["start", "end"]
    for i, row in enumerate(rows[1:]):
        row += ["0", str(len(row[rows[0].index("text")]))] if i else ["0", "999999999999"]
    _write_csv(path, rows)


def user_files(d: Path, sub: str = "") -> None:
    folder = d / "out" / sub
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my-notes.txt").write_text("a user's file careval did not write\n", "utf-8")
    (folder / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n not careval's")


def real_demo(d: Path) -> None:
    """``demo --out DIR`` where DIR/data is a real dataset (another size, so not reused)."""
    shutil.copytree(d.parent / "_base", d / "demo" / "data")
    (d / "demo" / "data" / "truth.json").unlink(missing_ok=True)
    file = d / "demo" / "data" / "dataset.json"
    manifest = json.loads(file.read_text("utf-8"))
    manifest["synthetic"] = False
    manifest.pop("settings", None)
    file.write_text(json.dumps(manifest, indent=2), "utf-8")


def series(d: Path, bad: dict[int, str]) -> None:
    """24 monthly rates, with ``bad`` values at the given rows."""
    rows = [["month", "rate"]]
    for i in range(24):
        rows.append([f"{2012 + i // 12}-{i % 12 + 1:02d}-01", bad.get(i, f"{10 + (i * 7) % 5}")])
    _write_csv(d / "series.csv", rows)


def units(d: Path, bad: dict[str, tuple[int, str]]) -> None:
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


def panel(d: Path, bad: dict[int, str]) -> None:
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


def small_group(d: Path) -> None:
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


def formulas(d: Path) -> None:
    """Survey labels, open text and code names that a spreadsheet would run as formulas."""
    s = d / "data" / "surveys"
    replace(
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
        replace(q / f, "Role clarity", "@SUM(1+1)")
        replace(q / f, "Escalation", "-2+3")
