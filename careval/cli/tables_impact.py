"""Reading and checking the CSV files of ``careval match`` and ``careval did``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError, quoted_value
from careval.impact.diagnostics import DiagnosticSettings, diagnose, equipoise, failure_text
from careval.impact.did import did
from careval.impact.fe import MODELS, Model
from careval.impact.generic import match_table
from careval.impact.matching import Distance, MatchSettings
from careval.impact.staggered import ESTIMATORS


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV file as a frame, or one clear error."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; expected a CSV file")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable CSV file ({exc})") from None
    if df.empty:
        raise ConfigError(f"{path}: has no rows")
    return df


def _need(df: pd.DataFrame, path: Path, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(
            f"{path}: {what} column(s) {', '.join(map(repr, missing))} not found; the file has: "
            + ", ".join(map(str, df.columns[:30]))
        )


def _numeric(df: pd.DataFrame, path: Path, columns: Sequence[str]) -> list[str]:
    problems = []
    for c in columns:
        v = pd.to_numeric(df[c], errors="coerce")
        bad = v.isna() | ~np.isfinite(v.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            example = quoted_value(f"row {i + 2} of the file", df[c].iloc[i])
            problems.append(
                f"{path}: column {c!r} must be a number in every row; {int(bad.sum()):,} rows "
                f"are missing or not numbers (e.g. {example})"
            )
    return problems


def match_csv(
    path: Path,
    treatment: str,
    covariates: list[str],
    exact: list[str],
    ratio: int,
    caliper: float | None,
    replace: bool,
    distance: Distance,
    outcome: str | None,
) -> dict[str, Any]:
    """Match the rows of a CSV file; the ``--json`` output (counts, balance, the ATT)."""
    settings = MatchSettings(
        ratio=ratio, caliper=caliper, replace=replace, exact=tuple(exact), distance=distance
    )
    df = read_csv(path)
    if not covariates:
        raise ConfigError("--covariates must name at least one column")
    _need(df, path, [treatment, *covariates, *exact, *([outcome] if outcome else [])], "the")
    problems = _numeric(df, path, covariates + ([outcome] if outcome else []))
    t = pd.to_numeric(df[treatment], errors="coerce")
    bad = ~t.isin([0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        example = quoted_value(f"row {i + 2}", df[treatment].iloc[i])
        problems.append(
            f"{path}: column {treatment!r} must be 0 (control) or 1 (treated); "
            f"{int(bad.sum()):,} rows are not (e.g. {example})"
        )
    if problems:
        raise ConfigError("\n".join(problems))
    df = df.assign(**{treatment: t.astype(int)})
    res = match_table(df, treatment, covariates, settings, outcome)
    values = {"max_abs_smd": res.max_abs_smd_after}
    if res.score is not None:
        values["equipoise"] = equipoise(res.score, df[treatment].to_numpy())
    checks = diagnose(values, DiagnosticSettings())
    warnings = (
        [
            f"the match fails its diagnostics: {failure_text(checks)}; estimates from it are not "
            "for decisions"
        ]
        if checks["failed"]
        else []
    )
    return {"file": str(path), **res.to_dict(), "diagnostics": checks, "warnings": warnings}


def did_csv(
    path: Path,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    model: Model,
    cluster: str | None,
    estimator: str = "auto",
) -> dict[str, Any]:
    """The staggered-adoption difference-in-differences of a CSV panel (``--json``)."""
    if model not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)}; got {model!r}")
    if estimator not in ESTIMATORS:
        raise ConfigError(f"--estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    df = read_csv(path)
    _need(df, path, [unit, time, outcome, first_treated, *([cluster] if cluster else [])], "the")
    try:
        res = did(
            df,
            unit=unit,
            time=time,
            outcome=outcome,
            first_treated=first_treated,
            model=model,
            cluster=cluster,
            estimator=estimator,
        )
    except ConfigError as exc:  # the estimator checks a frame; the message names the file
        raise ConfigError(f"{path}: {exc}") from None
    result = {"file": str(path), **res.to_dict()}
    pre = res.pretrend or {}
    checks = diagnose({"pretrend_p": pre.get("p_value")}, DiagnosticSettings())
    result["diagnostics"] = checks
    if checks["failed"]:
        result["warnings"] = [
            *result["warnings"],
            f"the ATT is not for decisions: {failure_text(checks)}; the groups did not move "
            "alike before treatment",
        ]
    return result
