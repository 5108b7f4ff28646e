"""OMOP concepts as careval codes, and OMOP concept sets as careval code lists.

A concept becomes a code of the canonical tables by its vocabulary (:func:`system_sql`,
:func:`code_sql`): SNOMED concepts their SNOMED CT code, ICD10 and ICD10CM concepts their ICD-10
code (upper case, no dot, at most four characters, as HES writes it), RxNorm, RxNorm Extension,
dm+d and ATC concepts their code in that vocabulary, and any other concept (or every concept,
when the source has no ``concept`` table) its OMOP concept id under the system ``OMOP``. The
medications table and the code lists use the same rule, so a list matches what was imported.

A concept set (``--concept-set NAME=FILE``) is an OHDSI ATLAS concept-set expression (JSON:
``{"items": [{"concept": {"CONCEPT_ID": ...}, "includeDescendants": true, "isExcluded":
false}, ...]}``, or the same inside ``"expression"``) or a CSV file with ``concept_id`` and
optionally ``include_descendants`` and ``exclude`` (true/false, 1/0, yes/no). It is expanded at
import: the listed concepts, with the descendants (``concept_ancestor``) of those marked so,
less the excluded ones (and their descendants when marked so). Without ``concept_ancestor``
only the listed concepts are used, and the import report says so. The result is written into
the dataset as ``codelists/NAME.csv``, a careval code list (``careval/data/codelists/
conditions.csv``'s columns) that a study spec's intervention, eligibility or outcomes name by
its path.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from careval.data.adapters.common import quote
from careval.data.codelists import COLUMNS, conditions
from careval.data.schema import CODE_PATTERNS
from careval.errors import ConfigError

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
OWN_CODES = ("RxNorm", "RxNorm Extension", "dm+d", "ATC")  # vocabularies kept by their code
ICD10_VOCABULARIES = ("ICD10", "ICD10CM")
TRUE = ("true", "1", "yes", "y", "t")
FALSE = ("false", "0", "no", "n", "f", "")


def icd10_sql(expr: str) -> str:
    """SQL: an ICD-10 code as careval keeps it (upper case, no dot or space, four characters
    at most: ICD-10-CM's further characters dropped, as HES's four-character codes)."""
    return f"left(upper(replace(replace(trim({expr}), '.', ''), ' ', '')), 4)"


def system_sql(vocabulary: str) -> str:
    """SQL: the careval code system of a concept of vocabulary ``vocabulary`` (an expression;
    NULL: no concept table row, so the concept id is the code)."""
    own = ", ".join(f"'{v}'" for v in OWN_CODES)
    icd = ", ".join(f"'{v}'" for v in ICD10_VOCABULARIES)
    return (
        f"CASE WHEN {vocabulary} = 'SNOMED' THEN 'SNOMED' "
        f"WHEN {vocabulary} IN ({icd}) THEN 'ICD10' "
        f"WHEN {vocabulary} IN ({own}) THEN {vocabulary} ELSE 'OMOP' END"
    )


def code_sql(vocabulary: str, concept_code: str, concept_id: str) -> str:
    """SQL: the careval code of a concept (see :func:`system_sql` for its system)."""
    own = ", ".join(f"'{v}'" for v in ("SNOMED", *OWN_CODES))
    icd = ", ".join(f"'{v}'" for v in ICD10_VOCABULARIES)
    return (
        f"CASE WHEN {vocabulary} IN ({icd}) THEN {icd10_sql(concept_code)} "
        f"WHEN {vocabulary} IN ({own}) THEN trim({concept_code}) ELSE {concept_id} END"
    )


def icd10_ok_sql(expr: str) -> str:
    """SQL true where ``expr`` is a well-formed ICD-10 code."""
    return f"regexp_full_match(coalesce({expr}, ''), '{CODE_PATTERNS['ICD10'][1:-1]}')"


@dataclass(frozen=True)
class Item:
    """One entry of a concept set."""

    concept_id: str
    descendants: bool
    excluded: bool


def parse_concept_set(name: str, path: Path) -> list[Item]:
    """The entries of a concept-set file (ATLAS JSON or CSV); refused with one message."""
    what = f"--concept-set {name}={path}"
    if not NAME.match(name):
        raise ConfigError(
            f"{what}: the name must be lower-case letters, digits and underscores, starting "
            "with a letter (it names the code list)"
        )
    if name in conditions():
        raise ConfigError(f"{what}: {name} is a built-in code list; give another name")
    if not path.exists():
        raise ConfigError(f"{what}: no such file")
    if not path.is_file():
        raise ConfigError(f"{what}: not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what}: cannot be read as UTF-8 text ({exc})") from None
    if not text.strip():
        raise ConfigError(f"{what}: the file is empty")
    items = _json_items(what, text) if path.suffix.lower() == ".json" else _csv_items(what, text)
    if not items:
        raise ConfigError(f"{what}: no concepts listed")
    return items


def _json_items(what: str, text: str) -> list[Item]:
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise ConfigError(
            f"{what}: JSON nested too deeply to read (an ATLAS concept set is nested four levels)"
        ) from None
    if isinstance(doc, dict) and isinstance(doc.get("expression"), dict):
        doc = doc["expression"]
    raw = doc.get("items") if isinstance(doc, dict) else doc
    if not isinstance(raw, list):
        raise ConfigError(
            f"{what}: expected an ATLAS concept-set expression, an object with a list "
            '"items" of {"concept": {"CONCEPT_ID": ...}, "includeDescendants": ..., '
            '"isExcluded": ...}'
        )
    items, bad, flagged = [], [], []
    for i, entry in enumerate(raw, start=1):
        concept = entry.get("concept") if isinstance(entry, dict) else None
        cid = None
        if isinstance(concept, dict):
            cid = next((v for k, v in concept.items() if k.lower() == "concept_id"), None)
        if not isinstance(cid, int | str) or not re.fullmatch(r"-?[0-9]+(\.0+)?", str(cid)):
            bad.append(i)
            continue
        flags = {k.lower(): v for k, v in entry.items()}
        descendants = _flag(flags.get("includedescendants", False))
        excluded = _flag(flags.get("isexcluded", False))
        if descendants is None or excluded is None:
            flagged.append(i)
            continue
        items.append(Item(str(cid).split(".")[0], descendants, excluded))
    if flagged:
        raise ConfigError(
            f"{what}: item{'s' if len(flagged) > 1 else ''} "
            f"{', '.join(map(str, flagged[:5]))}{', ...' if len(flagged) > 5 else ''} "
            f"({len(flagged)} in all): includeDescendants and isExcluded are true or false"
        )
    if bad:
        raise ConfigError(
            f"{what}: item{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad[:5]))}"
            f"{', ...' if len(bad) > 5 else ''} ({len(bad)} in all) without a numeric "
            "concept.CONCEPT_ID"
        )
    return items


def _flag(value: object) -> bool | None:
    """A JSON item's flag: a boolean, null (false), or a word of :data:`TRUE` / :data:`FALSE`
    (a hand-written ``"false"``, which ``bool`` would read as true); None for anything else."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | str):
        word = str(value).strip().lower()
        if word in TRUE:
            return True
        if word in FALSE:
            return False
    return None


def _csv_items(what: str, text: str) -> list[Item]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "concept_id" not in header:
        raise ConfigError(
            f"{what}: missing column concept_id; the columns are concept_id, "
            "include_descendants, exclude (an ATLAS concept set may be given as .json)"
        )
    items, problems = [], []
    for i, row in enumerate(reader, start=2):
        r = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        cid = r.get("concept_id", "")
        flags = [r.get("include_descendants", "").lower(), r.get("exclude", "").lower()]
        if not re.fullmatch(r"[0-9]+", cid):
            problems.append(f"line {i}: concept_id is not a whole number")
        elif any(f not in TRUE + FALSE for f in flags):
            problems.append(f"line {i}: include_descendants and exclude are true or false")
        else:
            items.append(Item(cid, flags[0] in TRUE, flags[1] in TRUE))
    if problems:
        raise ConfigError(f"{what}: " + "; ".join(problems[:5]) + f" ({len(problems)} in all)")
    return items


def expand(
    con: duckdb.DuckDBPyConnection,
    name: str,
    items: list[Item],
    *,
    has_concept: bool,
    has_ancestor: bool,
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The code-list rows of a concept set, and its sizes for the import report."""
    t = quote(f"cs_{name}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {t} (concept_id VARCHAR, d BOOLEAN, x BOOLEAN)")
    con.executemany(
        f"INSERT INTO {t} VALUES (?, ?, ?)",
        [(i.concept_id, i.descendants, i.excluded) for i in items],
    )
    if has_ancestor:
        reach = (
            f"SELECT concept_id AS c, x FROM {t} UNION "
            f"SELECT a.descendant AS c, s.x FROM {t} s JOIN o_concept_ancestor a "
            "ON a.ancestor = s.concept_id WHERE s.d"
        )
    else:
        reach = f"SELECT concept_id AS c, x FROM {t}"
    kept = f"SELECT c FROM ({reach}) WHERE NOT x EXCEPT SELECT c FROM ({reach}) WHERE x"
    if has_concept:
        rows = con.execute(
            f"SELECT k.c, {system_sql('v.vocabulary_id')}, "
            f"{code_sql('v.vocabulary_id', 'v.concept_code', 'k.c')}, "
            f"coalesce(v.concept_name, ''), v.concept_id IS NULL "
            f"FROM ({kept}) k LEFT JOIN o_concept v ON v.concept_id = k.c ORDER BY 2, 3"
        ).fetchall()
    else:
        rows = [
            (r[0], "OMOP", r[0], "", True)
            for r in con.execute(f"SELECT c FROM ({kept}) ORDER BY 1").fetchall()
        ]
    out: dict[tuple[str, str], dict[str, str]] = {}
    for _cid, system, code, label, _missing in rows:
        if system == "ICD10" and not re.match(CODE_PATTERNS["ICD10"], code or ""):
            continue
        out.setdefault(
            (system, code),
            {
                "condition": name,
                "label": name.replace("_", " "),
                "code_system": system,
                "code": code,
                "match": "exact",
                "description": label,
            },
        )
    systems: dict[str, int] = {}
    for system, _ in out:
        systems[system] = systems.get(system, 0) + 1
    sizes = {
        "listed": len(items),
        "listed_with_descendants": sum(i.descendants for i in items),
        "listed_excluded": sum(i.excluded for i in items),
        "concepts": len(rows),
        "not_in_concept_table": sum(1 for r in rows if r[4]) if has_concept else len(rows),
        "codes": len(out),
        "codes_by_system": systems,
        "descendants_used": has_ancestor,
    }
    return list(out.values()), sizes


def write_code_list(folder: Path, name: str, rows: list[dict[str, str]]) -> Path:
    """Write ``codelists/NAME.csv`` into the dataset folder."""
    target = folder / "codelists" / f"{name}.csv"
    target.parent.mkdir(exist_ok=True)
    with open(target, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return target
