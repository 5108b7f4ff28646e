"""Read survey responses from CSV, XLSX, SPSS .sav or Stata .dta, keeping labels and missing codes.

Every answer becomes a code string ("4", "yes"; "" when the cell is blank). SPSS value labels and
user-missing codes (single values and ranges) and Stata extended missing values are read with
pyreadstat (``user_missing=True``), so a code such as 9 "No answer" stays distinguishable from a
blank cell and from a real answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError, bad_rows, raise_problems
from careval.surveys.common import code_text, read_text_table, require_columns, require_file
from careval.surveys.definition import SurveyDefinition


@dataclass
class Responses:
    """Responses as code strings, with what the file itself says about its codes.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per respondent, the file's columns, every cell a code string ("" blank).
    value_labels : dict
        Column -> {code: label} from the file (SPSS/Stata value labels).
    user_missing : dict
        Column -> set of codes the file declares missing (SPSS user-missing values, including
        every declared code that falls in a missing range; Stata extended missing letters).
    missing_ranges : dict
        Column -> list of (low, high) numeric ranges declared missing in a .sav file.
    column_labels : dict
        Column -> its label (question text) when the file has one.
    path : pathlib.Path
    """

    frame: pd.DataFrame
    path: Path
    value_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    user_missing: dict[str, set[str]] = field(default_factory=dict)
    missing_ranges: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    column_labels: dict[str, str] = field(default_factory=dict)

    def is_user_missing(self, column: str, code: str) -> bool:
        """Whether ``code`` is declared missing for ``column`` by the file."""
        if code in self.user_missing.get(column, set()):
            return True
        ranges = self.missing_ranges.get(column)
        if not ranges or code == "":
            return False
        try:
            x = float(code)
        except ValueError:
            return False
        return any(lo <= x <= hi for lo, hi in ranges)


def read_responses(defn: SurveyDefinition) -> Responses:
    """Read the responses file named by a survey definition and check its columns exist.

    Raises
    ------
    ConfigError
        If the file is missing, unreadable or malformed, or lacks a column the definition names.
    """
    path = require_file(defn.data, "survey data file")
    if defn.format in ("csv", "xlsx"):
        resp = Responses(frame=read_text_table(path), path=path)
    else:
        resp = _read_stat(path, defn.format)
    needed = [q.column for q in defn.questions]
    needed += [c for c in (defn.respondent_id, defn.group, defn.weight) if c]
    require_columns(path, resp.frame, dict.fromkeys(needed), f"named in survey {defn.name!r}")
    if resp.frame.empty:
        raise ConfigError(f"{path}: no responses (the file has a header but no rows)")
    if defn.respondent_id:  # one row per respondent, or every count would be wrong
        ids = resp.frame[defn.respondent_id].astype(str).str.strip()
        problems: list[str] = []
        blank = (ids == "").to_numpy()
        bad_rows(problems, path, resp.frame, defn.respondent_id, blank, "is blank", "an id")
        dup = (ids.duplicated(keep=False) & (ids != "")).to_numpy()
        bad_rows(problems, path, resp.frame, defn.respondent_id, dup, "repeats", "each id once")
        raise_problems(problems)
    return resp


def _read_stat(path: Path, fmt: str) -> Responses:
    import pyreadstat

    kind = "an SPSS .sav" if fmt == "sav" else "a Stata .dta"
    reader = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    try:
        df, meta = reader(str(path), user_missing=True, apply_value_formats=False)
    except Exception as e:  # pyreadstat's ReadstatError/PyreadstatError derive from Exception
        raise ConfigError(
            f"{path}: cannot be read as {kind} file ({e}); check the file is not truncated or "
            "of another type (CSV, XLSX, .sav and .dta are allowed)"
        ) from None
    frame = pd.DataFrame({c: [_cell(v) for v in df[c].tolist()] for c in df.columns})
    labels = {
        col: {code_text(k): str(v) for k, v in mapping.items()}
        for col, mapping in (meta.variable_value_labels or {}).items()
    }
    ranges: dict[str, list[tuple[float, float]]] = {}
    user: dict[str, set[str]] = {}
    for col, items in (getattr(meta, "missing_ranges", None) or {}).items():
        for r in items:
            if isinstance(r["lo"], str) or isinstance(r["hi"], str):
                # a text variable's missing values are discrete: user-missing codes
                user.setdefault(col, set()).update({code_text(r["lo"]), code_text(r["hi"])})
            else:
                ranges.setdefault(col, []).append((float(r["lo"]), float(r["hi"])))
    for col, items in (getattr(meta, "missing_user_values", None) or {}).items():
        user.setdefault(col, set()).update(code_text(v) for v in items)
    col_labels = {c: str(lab) for c, lab in (meta.column_names_to_labels or {}).items() if lab}
    return Responses(
        frame=frame,
        path=path,
        value_labels=labels,
        user_missing=user,
        missing_ranges=ranges,
        column_labels=col_labels,
    )


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and math.isnan(v):
        return ""
    if isinstance(v, np.floating) and np.isnan(v):
        return ""
    if v is pd.NaT:
        return ""
    return code_text(v)
