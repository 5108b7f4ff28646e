"""Sensitivity of the matched study's headline to how its controls were chosen.

The primary outcome is re-estimated with other calipers, other numbers of controls per treated
person, without replacement and with the control pool cut to one comparator area at a time;
each row gives the estimate, the people matched and the balance achieved. A headline that moves
much between these choices rests on the choice, not on the data. (The placebo test and the
E-values, the other sensitivity analyses, are in :mod:`careval.impact.checks` and
:mod:`careval.impact.calibration`.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from careval.errors import ConfigError
from careval.impact.balance import balance_table
from careval.impact.matching import MatchSettings, match
from careval.impact.outcomes import coef, fit_matched, matched_panel
from careval.impact.parallel import each
from careval.impact.population import StudyPopulation
from careval.impact.settings import ImpactSettings

MIN_TREATED = 20  # a variant matching fewer treated people is reported as not estimated
MAX_AREAS = 4  # comparator areas tried alone
SCORE = "_study_score"  # the study's own score, as a column the variants match on
REGRESSORS = ["impl", "post", "impl_treated", "post_treated"]


def variants(st: ImpactSettings, areas: list[str]) -> list[tuple[str, MatchSettings, str | None]]:
    """The alternative designs: (description, matching settings, the one control area or
    None). The study's own design comes first."""
    m = st.match
    out: list[tuple[str, MatchSettings, str | None]] = [("as analysed", m, None)]
    for cal in (0.1, 0.5, None):
        if cal != m.caliper:
            text = "no caliper" if cal is None else f"caliper {cal:g} SD of the score"
            out.append((text, dataclasses.replace(m, caliper=cal), None))
    for ratio in (1, 10):
        if ratio != m.ratio:
            text = f"{ratio} control{'s' if ratio > 1 else ''} per treated person"
            out.append((text, dataclasses.replace(m, ratio=ratio), None))
    if m.replace:
        out.append(("without replacement", dataclasses.replace(m, replace=False), None))
    else:
        out.append(("with replacement", dataclasses.replace(m, replace=True), None))
    if len(areas) > 1:
        for a in areas:
            out.append((f"controls from {a} only", m, a))
    return out


def sensitivity(
    study: StudyPopulation,
    covariates: list[str],
    st: ImpactSettings,
    score: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """The primary outcome's estimate under each of :func:`variants`.

    ``score`` is the study's fitted propensity score per frame row: given, every variant
    matches on it instead of refitting it (the fit is deterministic, so the caliper, ratio and
    replacement variants are exactly those a refit would give, at a fraction of the cost; the
    one-area pools keep the study's score rather than a score fitted to the smaller pool).

    Each row: ``design``, ``caliper``, ``ratio``, ``replace``, ``control_area``,
    ``treated_matched``, ``controls_matched``, ``max_abs_smd_after`` and the estimate columns
    (for a count outcome, the rate ratio and its interval); a variant that matches fewer than
    :data:`MIN_TREATED` treated people, or whose fit refuses, has ``estimated`` False and the
    reason in ``note``.
    """
    f = study.frame
    o = st.primary
    given = score is not None and st.match.score is None and st.match.distance != "mahalanobis"
    if given:
        s_ = np.asarray(score, dtype=float)
        if st.match.distance == "logit_ps":
            p = np.clip(s_, 1e-12, 1 - 1e-12)
            s_ = np.log(p / (1 - p))
        f = f.assign(**{SCORE: s_})
    # One comparator area at a time: the largest pools, at most MAX_AREAS of them (a national
    # comparator may have dozens of areas, each a whole re-match).
    areas: list[str] = []
    if "area" in f.columns:
        pools = f.loc[f.treated == 0, "area"].dropna().astype(str).value_counts()
        areas = sorted(str(a) for a in pools.index[:MAX_AREAS])

    def estimate(variant: tuple[str, MatchSettings, str | None]) -> dict[str, Any]:
        text, ms, area = variant
        row: dict[str, Any] = {
            "design": text,
            "caliper": ms.caliper,
            "ratio": ms.ratio,
            "replace": ms.replace,
            "control_area": area,
            "estimated": False,
            "note": "",
        }
        keep = np.ones(len(f), bool) if area is None else ((f.treated == 1) | (f.area == area))
        sub = dataclasses.replace(study, frame=f[np.asarray(keep)].reset_index(drop=True))
        try:
            res = match(
                sub.frame,
                "treated",
                covariates,
                dataclasses.replace(ms, score=SCORE) if given else ms,
            )
            row["treated_matched"] = res.n_treated_matched
            row["controls_matched"] = res.n_controls_matched
            if res.n_treated_matched < MIN_TREATED:
                row["note"] = f"fewer than {MIN_TREATED} treated people matched"
                return row
            bal = balance_table(sub.frame, "treated", covariates, res.weights)
            row["max_abs_smd_after"] = float(bal.smd_after.abs().max())
            panel = matched_panel(sub, res, st, [o.name])
            fit = fit_matched(panel, o.name, REGRESSORS, o.model)
            row.update(coef(fit, "post_treated"))
            row["estimated"] = True
        except (ConfigError, ValueError, np.linalg.LinAlgError):
            # The reason may quote counts of people: it stays out of what is published.
            row["note"] = "the matching or the outcome model could not be fitted"
        return row

    return each(estimate, variants(st, areas))  # side by side (careval.impact.parallel)
