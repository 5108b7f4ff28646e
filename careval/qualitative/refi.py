"""REFI-QDA exchange: read and write projects (``.qdpx``) and codebooks (``.qdc``).

A ``.qdpx`` file is a zip archive holding ``project.qde`` (Project XML in
``urn:QDA-XML:project:1.0``) and the sources under ``sources/``; a ``.qdc`` file is Codebook
XML (``urn:QDA-XML:codebook:1.0``). Both are validated against the REFI-QDA 1.0 schemas
(:mod:`careval.qualitative.refi_schema`) with xmlschema before anything is read or written, and
a file that breaks them is refused with the schema's own reasons (the first five).

Untrusted input is read defensively: XML is parsed with defusedxml, which refuses a DOCTYPE,
entity declarations (the "billion laughs") and external references; an archive is refused when
a member's name is absolute or leaves the archive (``/x``, ``../x``, ``C:x``, backslashes), when
it holds too many members, unpacks to too much, or a member expands implausibly (a zip bomb);
and a selection whose positions fall outside its source's text is refused. Each refusal names
the file and the member or selection.

Reading a project gives the codebook and one row per coding of a text selection: the source
(``document``), the selection's character positions, the selected text (when the project carries
the source's plain text), the coder (the ``creatingUser`` of the coding, by user name), the case
holding the selection or its source, and the case's or source's ``group`` variable.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET  # building exports only: input is parsed by defusedxml
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pandas as pd

from careval.errors import ConfigError
from careval.files import MAX_ARCHIVE_BYTES, check_archive, write_atomic
from careval.qualitative.coding import (
    MAX_DOCUMENT_CHARS,
    SEGMENT_COLUMNS,
    TEXT_COLUMNS,
    Code,
    Codebook,
    stable_guid,
)
from careval.qualitative.refi_schema import CODEBOOK_NS, CODEBOOK_XSD, PROJECT_NS, PROJECT_XSD
from careval.surveys.common import require_file

_P = "{" + PROJECT_NS + "}"
MAX_TOTAL_CHARS = 5 * MAX_DOCUMENT_CHARS  # source text an exported project may hold in all
_C = "{" + CODEBOOK_NS + "}"
MAX_ERRORS = 5

_SCHEMAS: dict[str, Any] = {}


def _schema(kind: str) -> Any:
    import xmlschema

    if kind not in _SCHEMAS:
        _SCHEMAS[kind] = xmlschema.XMLSchema(PROJECT_XSD if kind == "project" else CODEBOOK_XSD)
    return _SCHEMAS[kind]


def validate(root: ET.Element, kind: str, source: str) -> None:
    """Check an XML tree against the REFI-QDA Project or Codebook schema.

    Raises
    ------
    ConfigError
        Naming the file, the number of schema errors and the first few (path and reason).
    """
    expected = _P + "Project" if kind == "project" else _C + "CodeBook"
    if root.tag != expected:
        raise ConfigError(
            f"{source}: the root element is {root.tag!r}; a REFI-QDA {kind} has {expected!r}"
        )
    try:
        errors = list(_schema(kind).iter_errors(root))
    except RecursionError:
        raise ConfigError(
            f"{source}: elements nested too deeply to be a REFI-QDA {kind} (codes within codes "
            "within codes...)"
        ) from None
    if errors:
        shown = "; ".join(f"{e.path}: {e.reason}" for e in errors[:MAX_ERRORS])
        raise ConfigError(
            f"{source}: not a valid REFI-QDA {kind} ({len(errors)} schema error"
            f"{'s' if len(errors) != 1 else ''}): {shown}"
        )


def _parse(data: bytes, source: str) -> ET.Element:
    """XML parsed by defusedxml: no DOCTYPE, entity declaration or external reference."""
    import defusedxml
    import defusedxml.ElementTree as SafeET

    try:
        root: ET.Element = SafeET.fromstring(data, forbid_dtd=True)
    except (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden) as e:
        raise ConfigError(
            f"{source}: XML with a DOCTYPE or entity declarations is not accepted ({e}); a "
            "REFI-QDA file needs neither, and entities can expand without limit"
        ) from None
    except defusedxml.ExternalReferenceForbidden as e:
        raise ConfigError(
            f"{source}: XML referring to external resources is not accepted ({e})"
        ) from None
    except ET.ParseError as e:
        raise ConfigError(f"{source}: not well-formed XML ({e})") from None
    return root


def _read_limited(path: Path, what: str) -> bytes:
    """A bare XML file's bytes, refused when larger than :data:`MAX_ARCHIVE_BYTES`."""
    if path.stat().st_size > MAX_ARCHIVE_BYTES:
        raise ConfigError(
            f"{path}: the {what} is {path.stat().st_size:,} bytes; at most "
            f"{MAX_ARCHIVE_BYTES:,} are read"
        )
    return path.read_bytes()


def _member(z: zipfile.ZipFile, name: str, source: str) -> bytes:
    """One member's bytes (never more than its declared size); a corrupt one is an error."""
    try:
        return z.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        # RuntimeError: an encrypted member (zipfile asks for a password)
        raise ConfigError(f"{source}: archive member {name!r} cannot be read ({e})") from None


# ------------------------------------------------------------------------------------ reading


def read_codebook(path: str | Path) -> Codebook:
    """The codebook of a ``.qdc`` file, or of the project in a ``.qdpx``/``.qde`` file."""
    path = require_file(Path(path), "codebook")
    if path.suffix.lower() == ".qdc":
        root = _parse(_read_limited(path, "codebook"), str(path))
        validate(root, "codebook", str(path))
        return _codes(root.find(_C + "Codes"), _C)
    return read_project(path)[0]


def read_project(
    path: str | Path, group_variable: str = "group"
) -> tuple[Codebook, pd.DataFrame, list[str]]:
    """Read a REFI-QDA project (``.qdpx`` archive or a bare ``project.qde``).

    Returns
    -------
    tuple
        The codebook, the codings (:data:`~careval.qualitative.coding.SEGMENT_COLUMNS`) and
        warnings (e.g. sources whose text the project does not carry).
    """
    path = require_file(Path(path), "REFI-QDA project")
    source = str(path)
    files: dict[str, bytes] = {}
    if path.suffix.lower() == ".qdpx":
        try:
            z = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise ConfigError(
                f"{source}: not a .qdpx archive (not a zip file); a REFI-QDA project export "
                "is a zip holding project.qde and sources/"
            ) from None
        with z:
            check_archive(z, source, "a REFI-QDA project")
            names = z.namelist()
            qde = [n for n in names if n.lower().endswith(".qde")]
            if len(qde) != 1:
                raise ConfigError(
                    f"{source}: a .qdpx archive holds exactly one project.qde; found "
                    f"{len(qde)} ({', '.join(names[:5]) or 'empty archive'})"
                )
            xml = _member(z, qde[0], source)
            for n in names:
                if n.lower().startswith("sources/") and n.lower().endswith(".txt"):
                    files[n.split("/", 1)[1]] = _member(z, n, source)
    else:
        xml = _read_limited(path, "REFI-QDA project")
    root = _parse(xml, source)
    validate(root, "project", source)
    book_el = root.find(_P + "CodeBook")
    book = _codes(book_el.find(_P + "Codes") if book_el is not None else None, _P)
    return book, *_codings(root, book, files, group_variable, source)


def _codes(codes_el: ET.Element | None, ns: str) -> Codebook:
    out: list[Code] = []

    def walk(el: ET.Element, parent: str) -> None:
        for c in el.findall(ns + "Code"):
            desc = c.find(ns + "Description")
            name = c.get("name", "")
            out.append(
                Code(
                    name=name,
                    parent=parent,
                    guid=c.get("guid", ""),
                    description=(desc.text or "").strip() if desc is not None else "",
                    colour=c.get("color", ""),
                )
            )
            walk(c, name)

    if codes_el is not None:
        walk(codes_el, "")
    return Codebook(out)


def _codings(
    root: ET.Element, book: Codebook, files: dict[str, bytes], group_var: str, source: str
) -> tuple[pd.DataFrame, list[str]]:
    warnings: list[str] = []
    code_name = {c.guid: c.name for c in book.codes}
    users = {
        u.get("guid"): u.get("name") or u.get("id") or u.get("guid") or ""
        for u in root.iter(_P + "User")
    }
    variables = {v.get("guid"): v.get("name", "") for v in root.iter(_P + "Variable")}

    def group_of(el: ET.Element) -> str:
        for vv in el.findall(_P + "VariableValue"):
            ref = vv.find(_P + "VariableRef")
            if ref is not None and variables.get(ref.get("targetGUID")) == group_var:
                for child in vv:
                    if child.tag != _P + "VariableRef":
                        return (child.text or "").strip()
        return ""

    case_of_sel: dict[str, tuple[str, str]] = {}
    case_of_src: dict[str, tuple[str, str]] = {}
    for case_el in root.iter(_P + "Case"):
        info = (case_el.get("name") or case_el.get("guid") or "", group_of(case_el))
        for ref in case_el.findall(_P + "SelectionRef"):
            case_of_sel[ref.get("targetGUID", "")] = info
        for ref in case_el.findall(_P + "SourceRef"):
            case_of_src[ref.get("targetGUID", "")] = info
    rows: list[dict[str, Any]] = []
    unknown_codes = 0
    bad_positions: list[tuple[str, str, int, int]] = []  # selection, source, start, end
    sources = root.find(_P + "Sources")
    for src in sources.findall(_P + "TextSource") if sources is not None else []:
        guid = src.get("guid", "")
        doc = src.get("name") or guid
        text = _source_text(src, files)
        if text is None and src.find(_P + "PlainTextSelection") is not None:
            warnings.append(
                f"{source}: source {doc!r} has no plain text in the project; its selections "
                "are counted without their text"
            )
        src_group = group_of(src)
        size = len(text) if text is not None else MAX_DOCUMENT_CHARS
        for sel in src.findall(_P + "PlainTextSelection"):
            start = int(sel.get("startPosition", "0"))
            end = int(sel.get("endPosition", "0"))
            if not 0 <= start <= end <= size:
                name = sel.get("name") or sel.get("guid") or ""
                bad_positions.append((name, doc, start, end))
                continue
            case, group = case_of_sel.get(sel.get("guid", ""), case_of_src.get(guid, ("", "")))
            snippet = text[start:end] if text is not None else ""
            for coding in sel.findall(_P + "Coding"):
                code_ref = coding.find(_P + "CodeRef")
                target = code_ref.get("targetGUID", "") if code_ref is not None else ""
                code = code_name.get(target)
                if code is None:
                    unknown_codes += 1
                    continue
                rows.append(
                    {
                        "segment_id": f"{doc}:{start}-{end}",
                        "document": doc,
                        "case": case,
                        "group": group or src_group,
                        "coder": users.get(coding.get("creatingUser"), "")
                        if coding.get("creatingUser")
                        else "",
                        "code": code,
                        "text": snippet,
                        "start": start,
                        "end": end,
                    }
                )
    if bad_positions:
        where, in_doc, start, end = bad_positions[0]
        raise ConfigError(
            f"{source}: {len(bad_positions):,} selection(s) with positions outside their "
            f"source's text, e.g. selection {where!r} of source {in_doc!r}: {start:,}-{end:,}; "
            "allowed: 0 <= startPosition <= endPosition <= the length of the source's text "
            f"(at most {MAX_DOCUMENT_CHARS:,} characters when the project lacks the text)"
        )
    if unknown_codes:
        raise ConfigError(
            f"{source}: {unknown_codes} coding(s) refer to a code GUID that is not in the "
            "project's codebook"
        )
    df = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    for col in ("start", "end"):
        df[col] = df[col].astype("Int64")
    return df, warnings


def _source_text(src: ET.Element, files: dict[str, bytes]) -> str | None:
    inline = src.find(_P + "PlainTextContent")
    if inline is not None:
        return inline.text or ""
    ref = src.get("plainTextPath", "")
    if ref.startswith("internal://"):
        data = files.get(ref[len("internal://") :])
        if data is not None:
            return data.decode("utf-8-sig", errors="replace")
    return None


# ------------------------------------------------------------------------------------ writing


def codebook_xml(book: Codebook, origin: str = "careval", check: bool = True) -> bytes:
    """The codebook as REFI-QDA Codebook XML (validated against the schema when ``check``)."""
    ET.register_namespace("", CODEBOOK_NS)
    root = ET.Element(_C + "CodeBook", {"origin": origin})
    _code_elements(ET.SubElement(root, _C + "Codes"), book, _C)
    if check:
        validate(root, "codebook", "codebook export")
    return _bytes(root)


def _code_elements(parent_el: ET.Element, book: Codebook, ns: str) -> None:
    by_parent: dict[str, list[Code]] = {}
    for c in book.codes:
        by_parent.setdefault(c.parent, []).append(c)

    def add(el: ET.Element, parent: str) -> None:
        for c in by_parent.get(parent, []):
            attrs = {"guid": _guid(c), "name": c.name, "isCodable": "true"}
            if c.colour:
                attrs["color"] = c.colour
            ce = ET.SubElement(el, ns + "Code", attrs)
            if c.description:
                ET.SubElement(ce, ns + "Description").text = c.description
            add(ce, c.name)

    add(parent_el, "")


def _guid(c: Code) -> str:
    if re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", c.guid or ""):
        return c.guid
    return stable_guid("code", c.name)


def project_xml(
    book: Codebook, segments: pd.DataFrame, name: str = "careval export"
) -> tuple[bytes, dict[str, str]]:
    """Project XML and the plain texts of its sources (``guid.txt`` -> text), validated.

    Each document becomes a text source. Segments with positions keep them when the document's
    text can be rebuilt from them; otherwise the document's text is the segments' texts joined by
    blank lines and positions are assigned in that text. Coders become users; each segment's
    codes by one coder become one selection with one coding per code; cases hold their
    selections and a ``group`` text variable.
    """
    ET.register_namespace("", PROJECT_NS)
    root = ET.Element(_P + "Project", {"name": name, "origin": "careval"})
    seg = segments.copy()
    for col in TEXT_COLUMNS:
        seg[col] = seg[col].fillna("").astype(str)
    seg.loc[seg["document"] == "", "document"] = "(no document)"
    coders = sorted(c for c in seg["coder"].unique() if c)
    user_guid = {c: stable_guid("user", c) for c in coders}
    if coders:
        users = ET.SubElement(root, _P + "Users")
        for c in coders:
            ET.SubElement(users, _P + "User", {"guid": user_guid[c], "name": c})
    if book.codes:
        _code_elements(ET.SubElement(ET.SubElement(root, _P + "CodeBook"), _P + "Codes"), book, _P)
    code_guid = {c.name: _guid(c) for c in book.codes}
    has_groups = (seg["group"] != "").any()
    var_guid = stable_guid("variable", "group")
    if has_groups:
        variables = ET.SubElement(root, _P + "Variables")
        ET.SubElement(
            variables,
            _P + "Variable",
            {"guid": var_guid, "name": "group", "typeOfVariable": "Text"},
        )
    case_sel: dict[str, list[str]] = {}
    case_group: dict[str, str] = {}
    texts: dict[str, str] = {}
    sources_el = ET.Element(_P + "Sources")
    if "end" in seg and seg["end"].notna().any():  # texts built from positions, all together
        ends = seg.groupby("document")["end"].max()
        total = float(ends.clip(0, MAX_DOCUMENT_CHARS).sum())  # one too long: named below
        if total > MAX_TOTAL_CHARS:
            raise ConfigError(
                f"the segments' positions call for {total:,.0f} characters of source text over "
                f"{len(ends):,} documents; allowed: at most {MAX_TOTAL_CHARS:,} in all"
            )
    for doc, part in seg.groupby("document", sort=True):
        src_guid = stable_guid("source", str(doc))
        src = ET.SubElement(
            sources_el,
            _P + "TextSource",
            {"guid": src_guid, "name": str(doc), "plainTextPath": f"internal://{src_guid}.txt"},
        )
        text, spans = _document_text(part)
        texts[f"{src_guid}.txt"] = text
        keys = part[["segment_id", "coder"]].drop_duplicates()
        for k in keys.itertuples():
            rows = part[(part["segment_id"] == k.segment_id) & (part["coder"] == k.coder)]
            start, end = spans[k.segment_id]
            sel_guid = stable_guid("selection", str(doc), k.segment_id, k.coder)
            attrs = {
                "guid": sel_guid,
                "name": k.segment_id,
                "startPosition": str(start),
                "endPosition": str(end),
            }
            if k.coder:
                attrs["creatingUser"] = user_guid[k.coder]
            sel = ET.SubElement(src, _P + "PlainTextSelection", attrs)
            for code in dict.fromkeys(rows["code"]):
                if not code:
                    continue
                c_attrs = {"guid": stable_guid("coding", sel_guid, code)}
                if k.coder:
                    c_attrs["creatingUser"] = user_guid[k.coder]
                coding = ET.SubElement(sel, _P + "Coding", c_attrs)
                ET.SubElement(coding, _P + "CodeRef", {"targetGUID": code_guid[code]})
            case = rows["case"].iloc[0]
            if case:
                case_sel.setdefault(case, []).append(sel_guid)
                case_group.setdefault(case, rows["group"].iloc[0])
    if case_sel:
        cases = ET.SubElement(root, _P + "Cases")
        for case in sorted(case_sel):
            ce = ET.SubElement(
                cases, _P + "Case", {"guid": stable_guid("case", case), "name": case}
            )
            if has_groups and case_group.get(case):
                vv = ET.SubElement(ce, _P + "VariableValue")
                ET.SubElement(vv, _P + "VariableRef", {"targetGUID": var_guid})
                ET.SubElement(vv, _P + "TextValue").text = case_group[case]
            for g in case_sel[case]:
                ET.SubElement(ce, _P + "SelectionRef", {"targetGUID": g})
    if len(sources_el):
        root.append(sources_el)
    validate(root, "project", "project export")
    return _bytes(root), texts


def _document_text(part: pd.DataFrame) -> tuple[str, dict[str, tuple[int, int]]]:
    """The document's text and each segment's (start, end) in it."""
    segs = part.drop_duplicates("segment_id")
    positioned = segs["start"].notna().all() and segs["end"].notna().all() if len(segs) else False
    if positioned:
        size = int(segs["end"].max())
        outside = ((segs["end"] > MAX_DOCUMENT_CHARS) | (segs["start"] < 0)).to_numpy(bool)
        if outside.any():
            r = segs[outside].iloc[0]
            raise ConfigError(
                f"segment {r['segment_id']!r} of document {r['document']!r}: positions "
                f"{int(r['start']):,}-{int(r['end']):,}; allowed: 0 to {MAX_DOCUMENT_CHARS:,} "
                "characters"
            )
        # Positions that the texts contradict (a text of another length) are not used, and
        # nothing is allocated for them.
        consistent = all(len(r.text) == int(r.end) - int(r.start) for r in segs.itertuples())
        buf = [" "] * size if consistent else []
        for r in segs.itertuples() if consistent else ():
            s = int(r.start)
            for i, ch in enumerate(r.text):
                if buf[s + i] not in (" ", ch):
                    consistent = False
                buf[s + i] = ch
        if consistent:
            return "".join(buf), {
                r.segment_id: (int(r.start), int(r.end)) for r in segs.itertuples()
            }
    pieces, spans, pos = [], {}, 0
    for r in segs.itertuples():
        spans[r.segment_id] = (pos, pos + len(r.text))
        pieces.append(r.text)
        pos += len(r.text) + 2
    return "\n\n".join(pieces), spans


def _bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_codebook(path: str | Path, book: Codebook) -> None:
    """Write a ``.qdc`` codebook (atomically)."""
    write_atomic(Path(path), codebook_xml(book))


def project_archive(book: Codebook, segments: pd.DataFrame, name: str = "careval export") -> bytes:
    """A ``.qdpx`` project's bytes: ``project.qde`` and ``sources/*.txt``, validated, so that a
    caller can build every output before writing any."""
    xml, texts = project_xml(book, segments, name=name)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(_zinfo("project.qde"), xml)
        for member, text in sorted(texts.items()):
            z.writestr(_zinfo(f"sources/{member}"), text.encode("utf-8"))
    return buf.getvalue()


def write_project(path: str | Path, book: Codebook, segments: pd.DataFrame) -> None:
    """Write a ``.qdpx`` project: ``project.qde`` and ``sources/*.txt`` (atomically)."""
    write_atomic(Path(path), project_archive(book, segments, name=Path(path).stem))


def _zinfo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2011, 7, 1, 0, 0, 0))  # reproducible archives
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
