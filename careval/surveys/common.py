"""Helpers shared by the survey and qualitative readers: tables of text, problems, safe writes."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError
from careval.files import check_archive


def require_file(path: Path, what: str = "file") -> Path:
    """``path`` as a Path if it is an existing file, else a ConfigError naming it."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file")
    return path


def resolve_inside(path: Path, root: Path) -> Path | None:
    """``path`` made absolute (symbolic links followed) when it lies inside ``root``, else None.

    Examples
    --------
    >>> resolve_inside(Path("/data/set/surveys/x.csv"), Path("/data/set")) is not None
    True
    >>> resolve_inside(Path("/data/set/../elsewhere/x.csv"), Path("/data/set")) is None
    True
    """
    resolved = Path(path).resolve()
    try:
        resolved.relative_to(Path(root).resolve())
    except ValueError:
        return None
    return resolved


def require_inside(path: Path, root: Path, what: str) -> Path:
    """``path`` resolved inside ``root``; else a ConfigError naming both (nothing is read)."""
    inside = resolve_inside(path, root)
    if inside is None:
        raise ConfigError(
            f"{path}: {what} lies outside {root}, the folder it must be in (a symbolic link "
            "counts as where it points)"
        )
    return inside


def read_text_table(path: Path) -> pd.DataFrame:
    """A CSV or XLSX file as text cells (blank cells as ""), headers stripped."""
    path = require_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:  # an xlsx is a zip: no bomb, no escaping member
                check_archive(z, str(path), "an Excel workbook")
            df = pd.read_excel(path, dtype=str, engine="openpyxl").fillna("")
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{path}: the file is empty; expected a header row") from None
    except zipfile.BadZipFile as e:
        raise ConfigError(f"{path}: cannot be read as an Excel workbook (.xlsx) ({e})") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
        kind = "an Excel workbook (.xlsx)" if suffix == ".xlsx" else "CSV"
        raise ConfigError(f"{path}: cannot be read as {kind} ({e})") from None
    except Exception as e:  # openpyxl raises its own errors for broken workbooks
        raise ConfigError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def require_columns(path: Path, df: pd.DataFrame, columns: Iterable[str], what: str = "") -> None:
    """A ConfigError naming every missing column and the columns the file has."""
    absent = [c for c in columns if c not in df.columns]
    if absent:
        have = ", ".join(map(repr, df.columns)) or "(no columns)"
        raise ConfigError(
            f"{path}: column{'s' if len(absent) > 1 else ''} not found: "
            f"{', '.join(map(repr, absent))}{' (' + what + ')' if what else ''}; "
            f"the file has: {have}"
        )


def count_value(v: Any) -> int | str | None:
    """A count for the JSON block: an int, or as published ("*"); None when missing."""
    if v is None or (isinstance(v, float | np.floating) and not math.isfinite(float(v))):
        return None
    return v if isinstance(v, str) else int(v)


def count_text(v: Any) -> str:
    """A count for a summary: with thousands separators, or as published ("*")."""
    return f"{int(v):,}" if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


def share_value(v: Any, digits: int = 4) -> float | None:
    """A share for the JSON block, to ``digits`` decimals; None when missing or not finite."""
    if v is None or (isinstance(v, float | np.floating) and not math.isfinite(float(v))):
        return None
    return round(float(v), digits)


def effective_n_value(v: Any) -> float | int | None:
    """Kish's effective sample size for the JSON block: to 2 decimals (an int as published)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if v is None or not math.isfinite(float(v)):
        return None
    return round(float(v), 2)


def notes_text(notes: Iterable[str]) -> list[str]:
    """Warnings as plain strings (their counts as they stand)."""
    return [str(n) for n in notes]


def plain(v: Any) -> Any:
    """A JSON-ready scalar: numpy to Python, NaN to None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts."""
    return [{k: plain(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def count_matrix(df: pd.DataFrame) -> dict[str, dict[str, int | str | None]]:
    """A square table of counts as ``{row: {column: count}}``."""
    return {str(a): {str(b): count_value(v) for b, v in row.items()} for a, row in df.iterrows()}


def percent(v: Any) -> str:
    """A share as a percentage to one decimal for the report; "withheld" when None or NaN."""
    return "withheld" if v is None or pd.isna(v) else f"{100 * float(v):.1f}%"


def code_text(v: Any) -> str:
    """A response value as a code string: 4.0 -> "4", " yes " -> "yes", missing -> ""."""
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        if not math.isfinite(float(v)):
            return ""
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    text = str(v).strip()
    try:
        f = float(text)
    except ValueError:
        return text
    return str(int(f)) if math.isfinite(f) and f.is_integer() and "e" not in text.lower() else text
