"""``careval follow``: the real-time evaluation, one look per month of data not yet looked at.

The state folder (``--state``) is careval's: it carries the ``.careval.json`` marker (kind
``follow``) and holds ``follow.json`` (what the history was made with: the dataset, the
matched study's settings and the boundary's), ``history.jsonl`` (one look per line, appended,
never rewritten) and ``report.html`` (the section of :mod:`careval.report.sections.follow`,
replaced at each invocation). A folder that exists, is not empty and has no such marker is
refused; so is one made with another dataset or other settings.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from careval.cli.common import err, out, validated
from careval.errors import ConfigError
from careval.impact.follow_state import ENTRIES, HISTORY, REPORT, SETTINGS, parse_history


def _inside(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def check_state(state: Path, data: Path) -> None:
    """Refuse a ``--state`` that careval may not write (exit 2); touches nothing."""
    from careval.folders import MARKER, read_marker

    what = f"--state {state}"
    if state.is_symlink():
        raise ConfigError(f"{what} is a link; give the folder itself")
    if state.exists() and not state.is_dir():
        raise ConfigError(
            f"{what} is a file; give a folder (new, empty, or careval's follow state)"
        )
    if _inside(state, data) or _inside(data, state):
        raise ConfigError(f"{what} and --data {data} must not be inside one another")
    if not state.exists():
        if not state.parent.is_dir():
            raise ConfigError(f"{what}: the directory {state.parent} does not exist")
        return
    marker = read_marker(state)
    if marker is None:
        if os.listdir(state):
            raise ConfigError(
                f"{what} exists, is not empty and was not written by careval follow (it has no "
                f"{MARKER}); nothing was touched: give a new or empty folder"
            )
    elif marker["kind"] != "follow":
        raise ConfigError(
            f"{what} is a careval {marker['kind']} folder, not a follow state; nothing was "
            "touched: give a new or empty folder"
        )


def open_state(state: Path, data: Path) -> None:
    """Make ``state`` careval's follow folder, or check that it is one (exit 2 otherwise)."""
    from careval.folders import read_marker, write_marker

    check_state(state, data)
    state.mkdir(exist_ok=True)
    if read_marker(state) is None:  # new or empty: careval's from now on
        write_marker(state, "follow", ENTRIES)


def read_history(state: Path) -> list[dict[str, Any]]:
    """The looks recorded so far, in the order written."""
    path = state / HISTORY
    if not path.is_file():
        return []
    from careval.files import write_atomic

    text = path.read_text("utf-8")
    rows, kept = parse_history(text, path)
    if kept != text:  # a line cut short by a kill while it was appended: it never was a look
        write_atomic(path, kept.encode("utf-8"))
    return rows


def _append(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def follow(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory")],
    state: Annotated[
        Path,
        typer.Option(
            "--state",
            help="careval's folder for the history of looks (made if absent; a folder careval "
            "did not make is refused); not inside --data",
        ),
    ],
    spec: Annotated[
        Path | None, typer.Option("--spec", help="Study specification (study.toml)")
    ] = None,
    first_look: Annotated[
        str | None,
        typer.Option(help="Month of the first look, YYYY-MM (default: see --min-treated)"),
    ] = None,
    min_treated: Annotated[
        int,
        typer.Option(help="First look: once this many people have been treated ..."),
    ] = 100,
    follow_months: Annotated[
        int, typer.Option(help="... at least this many months before the look's month end")
    ] = 6,
    every: Annotated[int, typer.Option(help="Months between looks")] = 1,
    sides: Annotated[
        int, typer.Option(help="2: two-sided boundary; 1: one-sided, for a benefit (a fall)")
    ] = 2,
    spending: Annotated[
        str, typer.Option(help="Alpha spending: obrien_fleming or pocock (Lan-DeMets types)")
    ] = "obrien_fleming",
    max_information: Annotated[
        float | None,
        typer.Option(
            help="Planned maximum information (1/se^2 of the log rate ratio); default: that "
            "of one analysis detecting the spec's design.effect at design.alpha, design.power"
        ),
    ] = None,
    use_risk: Annotated[
        bool,
        typer.Option(
            "--risk-model/--no-risk-model",
            help="Match with the risk model's score, fitted once as careval run fits it, from "
            "the first look whose data cover its training year",
        ),
    ] = True,
) -> None:
    """Re-run the matched study's primary outcome for each month of data not yet looked at,
    keep the history in --state, and report each estimate against its sequential boundary."""
    if not data.is_dir():
        raise ConfigError(f"--data {data}: no such directory")
    check_state(state, data)  # before the slow imports: a bad --state is refused at once
    from careval.data.access import Dataset
    from careval.files import write_atomic
    from careval.impact.follow import (
        FollowSettings,
        assess,
        detection,
        estimate_at,
        look_months,
        risk_model,
    )
    from careval.impact.follow_state import follow_impact, made_with
    from careval.report.publish.rules import protect_count
    from careval.report.sections.follow import page
    from careval.spec import LoadedSpec, StudySpec, load
    from careval.spec.check import check, window
    from careval.spec.resolve import resolve

    loaded = load(spec) if spec is not None else LoadedSpec(StudySpec(), None, frozenset())
    s = loaded.spec
    impact = follow_impact(resolve(s).impact)
    first = None
    if first_look is not None:
        try:
            first = dt.date.fromisoformat(first_look + "-01")
        except ValueError:
            why = f"--first-look must be a month as YYYY-MM; got {first_look!r}"
            raise ConfigError(why) from None
    fs = FollowSettings(
        alpha=s.design.alpha,
        sides=sides,
        spending=spending,  # type: ignore[arg-type]  # checked by FollowSettings
        effect=s.design.effect,
        power=s.design.power,
        max_information=max_information,
        first_look=first,
        min_treated=min_treated,
        follow_months=follow_months,
        every=every,
    )
    open_state(state, data)
    validated(data)
    made = made_with(data, impact, fs, s.risk.train_date if use_risk else None)
    settings_file = state / SETTINGS
    if settings_file.is_file():
        before = json.loads(settings_file.read_text("utf-8"))
        if before != made:
            raise ConfigError(
                f"--state {state} holds a history made with another dataset or other settings "
                "(follow.json); give a new folder for a new evaluation"
            )
    else:
        write_atomic(settings_file, (json.dumps(made, indent=2) + "\n").encode())
    with Dataset(data) as ds:
        if spec is not None:
            check(loaded, ds)
        months = look_months(ds, impact, fs, s.study.end)
        start = window(s, ds)[0]
        synthetic = ds.synthetic
    history = read_history(state)
    seen = {r["month"] for r in history}
    new = [m for m in months if f"{m // 12}-{m % 12 + 1:02d}" not in seen]
    risk = risk_model(data, s.risk.train_date, impact) if use_risk and new else None
    for m in new:
        try:
            row = estimate_at(data, m, impact, start, risk)
        except ConfigError as exc:  # this cut cannot support the study: recorded, not retried
            why = str(exc) if synthetic else re.sub(r"\d[\d,]*", "n", str(exc))  # no counts
            row = {"month": f"{m // 12}-{m % 12 + 1:02d}", "not_estimated": why}
        if not synthetic:
            for k in ("n_treated", "n_controls"):
                if k in row:
                    row[k] = protect_count(row[k], s.disclosure)
        _append(state / HISTORY, row)
        history.append(row)
        err.print(f"careval: look {row['month']}", highlight=False)
    rows = assess(sorted(history, key=lambda r: r["month"]), fs)
    found = detection(rows)
    write_atomic(
        state / REPORT,
        page(rows, fs, found, synthetic, data.name, s.disclosure).encode("utf-8"),
    )
    _print(rows, found, len(new))
    out.print(str(state / REPORT))


def _print(rows: list[dict[str, Any]], found: dict[str, Any] | None, new: int) -> None:
    from rich.table import Table

    t = Table(title=f"careval follow: {len(rows)} looks ({new} new)")
    for c in ("look", "estimate", "95% CI", "fraction", "critical |z|", "z", "crossed"):
        t.add_column(c)
    for r in rows:
        if r.get("se") is None:
            t.add_row(r["month"], "-", str(r.get("not_estimated", ""))[:60], "", "", "", "")
            continue
        ratio = r.get("rate_ratio") is not None
        est = r["rate_ratio"] if ratio else r["estimate"]
        lo, hi = (
            (r["rate_ratio_ci_low"], r["rate_ratio_ci_high"])
            if ratio
            else (r["ci_low"], r["ci_high"])
        )
        crit = r.get("critical")
        t.add_row(
            r["month"],
            f"{est:.3f}",
            f"{lo:.3f} to {hi:.3f}",
            f"{r['fraction']:.3f}",
            "-" if crit is None else f"{crit:.2f}",
            f"{r['z']:.2f}",
            "yes" if r.get("crossed") else "",
        )
    err.print(t)
    if found:
        err.print(f"boundary crossed at the look of {found['month']} ({found['direction']})")
    else:
        err.print("no look has crossed its boundary")
