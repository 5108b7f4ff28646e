"""Survey summaries: response rates, item distributions, share agreeing, group comparisons.

Methods
-------
- Every answer is one of: a substantive answer (a code of the scale), "don't know" (answered
  but without an opinion), user-missing (a code declared missing by the file or the scale, such
  as 9 "No answer") or blank (system missing). The share agreeing is agreeing answers over
  substantive answers: "don't know" and missing are left out of the denominator and reported
  apart.
- Confidence intervals are Wilson score intervals (95%). With weights the proportion is
  weighted and the interval uses Kish's effective sample size ``(sum w)^2 / sum w^2``; with a
  finite population of size N that sample size is divided by ``(N - n) / (N - 1)`` (n the
  respondents answering), so a census (n = N) has no sampling error.
- Groups are compared with Pearson's chi-square test of independence (no continuity correction)
  when every expected count is at least 5, otherwise with Fisher's exact test (2 x 2 tables) or
  the Fisher-Freeman-Halton exact test by Monte Carlo (larger tables; 9,999 random tables, fixed
  seed). Tests use unweighted counts; with weights this is said in the warnings.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from careval.disclosure import Note
from careval.errors import bad_rows, raise_problems
from careval.surveys.common import code_text
from careval.surveys.definition import Question, Scale, SurveyDefinition
from careval.surveys.intervals import contingency_test, effective_n, wilson_interval
from careval.surveys.readers import Responses, read_responses
from careval.surveys.result import SurveyResult

NO_GROUP = "(no group)"


def analyse(defn: SurveyDefinition, responses: Responses | None = None) -> SurveyResult:
    """Summarise one survey.

    Parameters
    ----------
    defn : SurveyDefinition
    responses : Responses, optional
        Already-read responses (default: read ``defn.data``).

    Returns
    -------
    SurveyResult

    Raises
    ------
    ConfigError
        With every problem found in the file at once: answers outside a scale, unknown groups,
        weights that are not positive numbers.
    """
    resp = responses if responses is not None else read_responses(defn)
    df = resp.frame
    problems: list[str] = []
    groups, group_labels = _groups(defn, resp, problems)
    weights = _weights(defn, resp, problems)
    coded: dict[str, tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]] = {}
    for q in defn.questions:
        if q.type == "open":
            continue
        coded[q.id] = _code_question(q, defn.scales[q.scale or ""], resp, problems)
    raise_problems(problems)

    warnings: list[str] = []
    if defn.weight:
        warnings.append(
            "group comparison tests use unweighted counts; shares and intervals are weighted"
        )
    rates = _response_rates(defn, groups, group_labels, warnings)
    item_rows, dist_rows, group_rows, comp_rows = [], [], [], []
    for q in defn.questions:
        if q.type == "open":
            continue
        scale = defn.scales[q.scale or ""]
        kind, codes, cats = coded[q.id]
        item, dist = _item(q, scale, kind, codes, cats, weights, defn.population)
        item_rows.append(item)
        dist_rows.extend(dist)
        if defn.group:
            group_rows.extend(_by_group(q, scale, kind, codes, weights, groups, group_labels))
            comp_rows.append(_compare(q, scale, kind, codes, cats, groups))
    open_rows = []
    ids = (
        df[defn.respondent_id]
        if defn.respondent_id
        else pd.Series([str(i + 1) for i in range(len(df))])
    )
    for q in defn.questions:
        if q.type != "open":
            continue
        text = df[q.column].astype(str).str.strip()
        for i in np.flatnonzero((text != "").to_numpy()):
            if resp.is_user_missing(q.column, text.iloc[i]):
                continue
            open_rows.append(
                {
                    "question": q.id,
                    "respondent": str(ids.iloc[i]),
                    "group": group_labels.get(groups[i], groups[i]),
                    "text": text.iloc[i],
                }
            )
    return SurveyResult(
        definition=defn,
        n_responses=len(df),
        response_rates=rates,
        items=pd.DataFrame(item_rows, columns=_ITEM_COLUMNS),
        distribution=pd.DataFrame(dist_rows, columns=_DIST_COLUMNS),
        by_group=pd.DataFrame(group_rows, columns=_GROUP_COLUMNS),
        comparisons=pd.DataFrame(comp_rows, columns=_COMP_COLUMNS),
        open_text=pd.DataFrame(open_rows, columns=["question", "respondent", "group", "text"]),
        warnings=warnings,
    )


# The figures of one item (its row of the items table after question, text and type).
ITEM_FIGURES = [
    "n_respondents",
    "n_valid",
    "n_agree",
    "share_agree",
    "ci_low",
    "ci_high",
    "n_dont_know",
    "share_dont_know",
    "n_user_missing",
    "n_blank",
    "n_effective",
]
_ITEM_COLUMNS = ["question", "text", "type", *ITEM_FIGURES]
_DIST_COLUMNS = [
    "question",
    "code",
    "label",
    "kind",
    "role",
    "count",
    "weighted",
    "share_of_valid",
    "share_of_respondents",
]
_GROUP_COLUMNS = [
    "question",
    "group",
    "label",
    "n_valid",
    "n_agree",
    "share_agree",
    "ci_low",
    "ci_high",
    "n_effective",
]
_COMP_COLUMNS = [
    "question",
    "test",
    "statistic",
    "dof",
    "p_value",
    "n",
    "min_expected",
    "table",
    "note",
]


# ------------------------------------------------------------------------------------ reading


def _groups(
    defn: SurveyDefinition, resp: Responses, problems: list[str]
) -> tuple[np.ndarray, dict[str, str]]:
    """Each respondent's group code, and code -> label."""
    n = len(resp.frame)
    if not defn.group:
        return np.full(n, NO_GROUP, dtype=object), {NO_GROUP: NO_GROUP}
    raw = resp.frame[defn.group].astype(str).str.strip().to_numpy(object)
    file_labels = resp.value_labels.get(defn.group, {})
    labels: dict[str, str] = {}
    lookup: dict[str, str] = {}
    if defn.groups:
        for g in defn.groups:
            labels[g.code] = g.label
            for key in (g.code, g.label, file_labels.get(g.code, "")):
                if key:
                    lookup[key.casefold()] = g.code
    else:
        values = sorted({v for v in raw if v}, key=_sort_key)
        for v in values:
            labels[v] = file_labels.get(v, v)
            lookup[v.casefold()] = v
            lookup[labels[v].casefold()] = v
    out = np.empty(n, dtype=object)
    bad = np.zeros(n, bool)
    for i, v in enumerate(raw):
        if v == "" or resp.is_user_missing(defn.group, v):
            out[i] = NO_GROUP
            continue
        code = lookup.get(v.casefold()) or lookup.get(file_labels.get(v, "").casefold())
        if code is None:
            bad[i] = True
            out[i] = NO_GROUP
        else:
            out[i] = code
    bad_rows(
        problems,
        resp.path,
        resp.frame,
        defn.group,
        bad,
        "has a value that is not one of the survey's groups",
        ", ".join(f"{g.code} ({g.label})" for g in defn.groups) + ", or blank",
    )
    if (out == NO_GROUP).any():
        labels[NO_GROUP] = NO_GROUP
    return out, labels


def _weights(defn: SurveyDefinition, resp: Responses, problems: list[str]) -> np.ndarray:
    n = len(resp.frame)
    if not defn.weight:
        return np.ones(n)
    raw = resp.frame[defn.weight].astype(str).str.strip()
    w = pd.to_numeric(raw.mask(raw == ""), errors="coerce").to_numpy(float)
    bad = ~np.isfinite(w) | (w <= 0)
    bad_rows(
        problems,
        resp.path,
        resp.frame,
        defn.weight,
        bad,
        "is not a positive number",
        "numbers above 0 such as 1.25",
    )
    return np.where(bad, 1.0, w)


def _categories(scale: Scale, resp: Responses, column: str) -> list[tuple[str, str]]:
    """(code, label) of the scale's substantive answers in display order."""
    file_labels = resp.value_labels.get(column, {})
    if scale.labels:  # the definition lists the categories: nothing else is allowed
        cats = list(scale.labels)
    else:  # every code labelled in the file, declared in the scale or seen in the data
        seen = {code_text(v) for v in resp.frame[column]} - {""}
        declared = set(scale.agree) | set(scale.disagree) | set(file_labels)
        labelled = {lab.casefold() for lab in file_labels.values()}
        seen = {c for c in seen if c.casefold() not in labelled}  # labels written as text
        cats = [(c, file_labels.get(c, c)) for c in sorted(seen | declared, key=_sort_key)]
    skip = set(scale.dont_know) | set(scale.missing)
    return [(c, lab) for c, lab in cats if c not in skip and not resp.is_user_missing(column, c)]


def _code_question(
    q: Question, scale: Scale, resp: Responses, problems: list[str]
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Per respondent: kind (answer/dont_know/user_missing/blank) and the answer code."""
    cats = _categories(scale, resp, q.column)
    file_labels = resp.value_labels.get(q.column, {})
    lookup: dict[str, str] = {}
    for c, lab in cats:
        lookup[c.casefold()] = c
        lookup[lab.casefold()] = c
    dk = {c.casefold() for c in scale.dont_know}
    dk |= {lab.casefold() for c, lab in scale.labels if c in scale.dont_know}
    dk |= {lab.casefold() for c, lab in file_labels.items() if c in scale.dont_know}
    miss = {c.casefold() for c in scale.missing}
    raw = [code_text(v) for v in resp.frame[q.column]]
    n = len(raw)
    kind = np.empty(n, dtype=object)
    codes = np.full(n, "", dtype=object)
    bad = np.zeros(n, bool)
    for i, v in enumerate(raw):
        key = v.casefold()
        if v == "":
            kind[i] = "blank"
        elif key in miss or resp.is_user_missing(q.column, v):
            kind[i] = "user_missing"
        elif key in dk:
            kind[i] = "dont_know"
        elif key in lookup:
            kind[i], codes[i] = "answer", lookup[key]
        else:
            kind[i], bad[i] = "blank", True
    allowed = ", ".join(f"{c} ({lab})" if lab != c else c for c, lab in cats)
    extra = [*scale.dont_know, *scale.missing]
    if extra:
        allowed += ", " + ", ".join(extra)
    bad_rows(
        problems,
        resp.path,
        resp.frame,
        q.column,
        bad,
        f"has answers outside scale {scale.name!r} (question {q.id!r})",
        (allowed or "(no categories)") + ", or blank",
    )
    return kind, codes, cats


# ----------------------------------------------------------------------------------- summaries


def _response_rates(
    defn: SurveyDefinition,
    groups: np.ndarray,
    labels: dict[str, str],
    warnings: list[str],
) -> pd.DataFrame:
    rows = []
    if defn.group:
        listed = [g.code for g in defn.groups] or [k for k in labels if k != NO_GROUP]
        invited = {g.code: g.invited for g in defn.groups}
        if NO_GROUP in labels:
            listed.append(NO_GROUP)
        for code in listed:
            n = int((groups == code).sum())
            inv = invited.get(code)
            rows.append((code, labels.get(code, code), inv, n, n / inv if inv else None))
            if inv is not None and n > inv:
                label = repr(code).replace("{", "{{").replace("}", "}}")
                warnings.append(
                    Note(
                        f"group {label}: {{n}} responses but {{invited}} invited; "
                        "check the numbers invited",
                        n=n,
                        invited=inv,
                    )
                )
    total = defn.total_invited
    n_all = len(groups)
    rows.append(("all", "All respondents", total, n_all, n_all / total if total else None))
    if total is not None and n_all > total:
        warnings.append(
            Note(
                "{n} responses but {invited} invited; check the number invited",
                n=n_all,
                invited=total,
            )
        )
    return pd.DataFrame(rows, columns=["group", "label", "invited", "responded", "response_rate"])


def _role(scale: Scale, code: str) -> str:
    if code in scale.agree:
        return "agree"
    if code in scale.disagree:
        return "disagree"
    if scale.agree and not scale.disagree:
        return "disagree"  # e.g. "No" on a yes/no item: every other answer is not agreeing
    if scale.agree:
        return "neutral"
    return "other"


def _item(
    q: Question,
    scale: Scale,
    kind: np.ndarray,
    codes: np.ndarray,
    cats: list[tuple[str, str]],
    weights: np.ndarray,
    population: int | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    n_resp = len(kind)
    valid = kind == "answer"
    w_valid = weights[valid]
    n_valid = int(valid.sum())
    n_dk = int((kind == "dont_know").sum())
    agree = valid & np.isin(codes, list(scale.agree))
    share = ci = None
    n_eff = effective_n(w_valid, population) if n_valid else 0.0
    if scale.agree and n_valid:
        share = float(weights[agree].sum() / w_valid.sum())
        ci = wilson_interval(share, n_eff)
    item = {
        "question": q.id,
        "text": q.text,
        "type": q.type,
        "n_respondents": n_resp,
        "n_valid": n_valid,
        "n_agree": int(agree.sum()) if scale.agree else None,
        "share_agree": share,
        "ci_low": ci[0] if ci else None,
        "ci_high": ci[1] if ci else None,
        "n_dont_know": n_dk,
        "share_dont_know": n_dk / (n_valid + n_dk) if n_valid + n_dk else None,
        "n_user_missing": int((kind == "user_missing").sum()),
        "n_blank": int((kind == "blank").sum()),
        "n_effective": n_eff if math.isfinite(n_eff) else None,
    }
    dist = []
    for c, lab in cats:
        hit = valid & (codes == c)
        dist.append(
            {
                "question": q.id,
                "code": c,
                "label": lab,
                "kind": "answer",
                "role": _role(scale, c),
                "count": int(hit.sum()),
                "weighted": float(weights[hit].sum()),
                "share_of_valid": float(weights[hit].sum() / w_valid.sum()) if n_valid else None,
                "share_of_respondents": float(hit.sum() / n_resp),
            }
        )
    dk_label = dict(scale.labels).get(scale.dont_know[0], "Don't know") if scale.dont_know else ""
    for k, code, lab in (
        ("dont_know", ",".join(scale.dont_know), dk_label or "Don't know"),
        ("user_missing", ",".join(scale.missing), "Missing (coded)"),
        ("blank", "", "No answer (blank)"),
    ):
        hit = kind == k
        dist.append(
            {
                "question": q.id,
                "code": code,
                "label": lab,
                "kind": k,
                "role": "none",
                "count": int(hit.sum()),
                "weighted": float(weights[hit].sum()),
                "share_of_valid": None,
                "share_of_respondents": float(hit.sum() / n_resp),
            }
        )
    return item, dist


def _by_group(
    q: Question,
    scale: Scale,
    kind: np.ndarray,
    codes: np.ndarray,
    weights: np.ndarray,
    groups: np.ndarray,
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    if not scale.agree:
        return []
    rows = []
    for g, lab in labels.items():
        valid = (kind == "answer") & (groups == g)
        n = int(valid.sum())
        agree = valid & np.isin(codes, list(scale.agree))
        share = float(weights[agree].sum() / weights[valid].sum()) if n else None
        n_eff = effective_n(weights[valid]) if n else None
        ci = wilson_interval(share, n_eff) if share is not None and n_eff is not None else None
        rows.append(
            {
                "question": q.id,
                "group": g,
                "label": lab,
                "n_valid": n,
                "n_agree": int(agree.sum()),
                "share_agree": share,
                "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None,
                "n_effective": n_eff,
            }
        )
    return rows


def _compare(
    q: Question,
    scale: Scale,
    kind: np.ndarray,
    codes: np.ndarray,
    cats: list[tuple[str, str]],
    groups: np.ndarray,
) -> dict[str, Any]:
    valid = (kind == "answer") & (groups != NO_GROUP)
    gs = list(dict.fromkeys(groups[valid]))
    if scale.agree:
        cols = ["agree", "not agree"]
        is_agree = np.isin(codes, list(scale.agree))
        table = np.array(
            [
                [
                    int((valid & (groups == g) & is_agree).sum()),
                    int((valid & (groups == g) & ~is_agree).sum()),
                ]
                for g in gs
            ]
        )
    else:
        cols = [c for c, _ in cats]
        table = np.array(
            [[int((valid & (groups == g) & (codes == c)).sum()) for c in cols] for g in gs]
        ).reshape(len(gs), len(cols))
    if table.size:
        keep = table.sum(axis=0) > 0
        table, cols = table[:, keep], [c for c, k in zip(cols, keep, strict=True) if k]
    base = {
        "question": q.id,
        "n": int(valid.sum()),
        "table": {"rows": gs, "columns": cols, "counts": table.tolist()},
    }
    if len(gs) < 2 or len(cols) < 2:
        return {
            **base,
            "test": None,
            "statistic": None,
            "dof": None,
            "p_value": None,
            "min_expected": None,
            "note": "not tested: fewer than two groups or answer categories with answers",
        }
    return {**base, **contingency_test(table), "note": ""}


def _sort_key(code: str) -> tuple[int, float, str]:
    try:
        return (0, float(code), code)
    except ValueError:
        return (1, 0.0, code)
