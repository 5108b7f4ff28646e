"""Diagnostics that gate an estimate: is it fit to base a decision on?

Following OHDSI's CohortMethod, every estimate of the matched study is checked against preset
thresholds before it may be judged: the smallest effect the study could detect (minimum
detectable rate ratio, MDRR), the systematic error its negative controls show (expected absolute
systematic error, EASE), covariate balance after matching (largest absolute standardised
difference), equipoise (the share of the study population whose preference score lies between
0.3 and 0.7), a pre-trend test (treated against matched controls before entry) and the
follow-up available. An estimate that fails any of them is reported as *not for decisions*,
with the failing diagnostic, and the report's verdicts do not call it achieved.

The thresholds are settings (:class:`DiagnosticSettings`, the spec's ``[diagnostics]``); their
defaults are CohortMethod's (``createCmDiagnosticThresholds``: EASE 0.25, SMD 0.1, equipoise
0.2) except the MDRR, whose default of 10 suits drug-safety signals, not a programme that plans
a 10% change: here an estimate that could not detect a halving or a doubling (MDRR 2) is not fit
for decisions.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from careval.errors import ConfigError
from careval.settings import Settings

PREFERENCE_BAND = (0.3, 0.7)  # Walker et al. (2013): the band of clinical equipoise
POWER = 0.8  # the MDRR is the rate ratio detectable with this power at a two-sided 5% test


@dataclass(frozen=True)
class DiagnosticSettings(Settings):
    """Thresholds an estimate must meet to be reported as fit for decisions.

    Parameters
    ----------
    max_mdrr
        Largest minimum detectable rate ratio allowed (a fall is taken as its inverse, so 2
        means the study could detect a halving or a doubling).
    max_ease
        Largest expected absolute systematic error allowed (log scale), from the negative
        controls; not applied when there are too few negative controls to estimate it.
    max_abs_smd
        Largest absolute standardised difference of any matching covariate after matching.
    min_equipoise
        Smallest share of the study population (treated and candidate controls) with a
        preference score between 0.3 and 0.7; not applied when matching is on a given score.
    min_pretrend_p
        An estimate fails when the joint test that treated and controls moved alike before
        entry has a p-value below this and the pre-entry difference is material
        (``max_pretrend_change``).
    max_pretrend_change
        The largest pre-entry difference between the arms (a share: 0.05 is 5%, as a rate ratio
        for counts, of the treated arm's pre-entry mean for costs) below which a significant
        pre-trend test does not fail the estimate. With tens of thousands of people the test
        rejects differences far smaller than any effect of interest (Roth 2022): significance
        alone would gate out sound estimates, magnitude alone would pass noisy ones.
    min_median_follow_up
        Fewest months of median follow-up after entry.
    """

    max_mdrr: float = 2.0
    max_ease: float = 0.25
    max_abs_smd: float = 0.1
    min_equipoise: float = 0.2
    min_pretrend_p: float = 0.05
    max_pretrend_change: float = 0.05
    min_median_follow_up: float = 6.0

    def __post_init__(self) -> None:
        problems = []
        if not self.max_mdrr > 1:
            problems.append(f"max_mdrr must be above 1; got {self.max_mdrr}")
        for name in ("max_ease", "max_abs_smd", "max_pretrend_change"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be above 0; got {getattr(self, name)}")
        for name in ("min_equipoise", "min_pretrend_p"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be from 0 to below 1; got {getattr(self, name)}")
        if not 0 <= self.min_median_follow_up <= 120:
            problems.append(
                "min_median_follow_up must be months from 0 to 120; got "
                f"{self.min_median_follow_up}"
            )
        if problems:
            raise ConfigError("diagnostics: " + "; ".join(problems))


# Each diagnostic: (key, what it measures, whether a larger value is worse).
DIAGNOSTICS: tuple[tuple[str, str, bool], ...] = (
    ("mdrr", "minimum detectable rate ratio", True),
    ("ease", "expected absolute systematic error", True),
    ("max_abs_smd", "largest absolute standardised difference after matching", True),
    ("equipoise", "share in equipoise (preference score 0.3-0.7)", False),
    ("pretrend_p", "p-value of the pre-trend test", False),
    ("median_follow_up", "median follow-up (months)", False),
)
_THRESHOLD = {
    "mdrr": "max_mdrr",
    "ease": "max_ease",
    "max_abs_smd": "max_abs_smd",
    "equipoise": "min_equipoise",
    "pretrend_p": "min_pretrend_p",
    "median_follow_up": "min_median_follow_up",
}


_LOG_MAX = math.log(sys.float_info.max)


def mdrr(se: float, alpha: float = 0.05, power: float = POWER) -> float:
    """Minimum detectable rate ratio of an estimate with standard error ``se`` (log scale).

    ``exp((z_{1-alpha/2} + z_{power}) * se)``: the true rate ratio (or its inverse, for a fall)
    that a two-sided test at ``alpha`` would detect with probability ``power``. It is taken from
    the estimate's own standard error, so it reflects the design actually achieved (matched
    numbers, follow-up, overdispersion, clustering) rather than an event-count formula.

    Examples
    --------
    >>> round(mdrr(0.1), 4)
    1.3233
    """
    if not (isinstance(se, int | float) and math.isfinite(se) and se > 0):
        return math.nan
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    log_rr = z * se
    # a separated fit's standard error can be in the hundreds: no ratio is detectable
    return float(math.exp(log_rr)) if log_rr < _LOG_MAX else math.inf


def equipoise(ps: np.ndarray, treated: np.ndarray) -> float:
    """Share of rows whose preference score lies in 0.3-0.7 (Walker et al. 2013).

    The preference score removes the treated share ``P`` from the propensity score ``ps``:
    ``logit(F) = logit(ps) - logit(P)``, so a person with ``F = 0.5`` was as likely to be
    treated as the population's mix implies. NaN without scores.
    """
    ps = np.asarray(ps, dtype=float)
    t = np.asarray(treated)
    ok = np.isfinite(ps)
    if not ok.any() or t[ok].min() == t[ok].max():
        return math.nan
    p = np.clip(ps[ok], 1e-12, 1 - 1e-12)
    share = float(t[ok].mean())
    logit_f = np.log(p / (1 - p)) - math.log(share / (1 - share))
    f = 1 / (1 + np.exp(-logit_f))
    lo, hi = PREFERENCE_BAND
    return float(((f >= lo) & (f <= hi)).mean())


def wald_test(beta: np.ndarray, vcov: np.ndarray) -> dict[str, float]:
    """Joint Wald test that every element of ``beta`` is 0: chi-square statistic, df, p-value.

    A singular covariance is inverted by its pseudo-inverse (df: its rank).
    """
    b = np.asarray(beta, dtype=float)
    v = np.asarray(vcov, dtype=float)
    if b.size == 0:
        return {"statistic": math.nan, "df": 0, "p_value": math.nan}
    rank = int(np.linalg.matrix_rank(v))
    stat = float(b @ np.linalg.pinv(v) @ b)
    return {"statistic": stat, "df": rank, "p_value": float(stats.chi2.sf(stat, rank))}


def diagnose(values: dict[str, Any], settings: DiagnosticSettings) -> dict[str, Any]:
    """Check each diagnostic value against its threshold.

    ``values`` maps diagnostic keys (:data:`DIAGNOSTICS`) to numbers; a missing, None or NaN
    value is *not assessed* and does not fail. ``pretrend_change`` (the largest pre-entry
    difference, a share) qualifies ``pretrend_p``: a significant test fails only when the
    difference exceeds ``max_pretrend_change`` or is unknown. Returns ``{"checks": [...],
    "failed": [...], "for_decisions": bool}``, each check with ``diagnostic``, ``label``, ``value``,
    ``threshold``, ``rule`` (``"at most"`` or ``"at least"``) and ``status`` (``"pass"``,
    ``"fail"`` or ``"not assessed"``).

    Examples
    --------
    >>> d = diagnose({"mdrr": 1.3, "max_abs_smd": 0.25}, DiagnosticSettings())
    >>> d["failed"], d["for_decisions"]
    (['max_abs_smd'], False)
    """
    checks, failed = [], []
    for key, text, larger_is_worse in DIAGNOSTICS:
        threshold = float(getattr(settings, _THRESHOLD[key]))
        v = values.get(key)
        value = float(v) if isinstance(v, int | float) and math.isfinite(v) else None
        beyond = value is not None and (
            (value > threshold) if larger_is_worse else (value < threshold)
        )
        check: dict[str, Any] = {}
        if key == "pretrend_p":
            change = values.get("pretrend_change")
            change = (
                float(change) if isinstance(change, int | float) and math.isfinite(change) else None
            )
            check["largest_change"] = change
            check["max_change"] = float(settings.max_pretrend_change)
            if beyond and change is not None and change <= settings.max_pretrend_change:
                beyond = False  # significant, but too small to matter
        if value is None:
            status = "not assessed"
        elif beyond:
            status = "fail"
            failed.append(key)
        else:
            status = "pass"
        checks.append(
            {
                "diagnostic": key,
                "label": text,
                "value": value,
                "threshold": threshold,
                "rule": "at most" if larger_is_worse else "at least",
                "status": status,
                **check,
            }
        )
    return {"checks": checks, "failed": failed, "for_decisions": not failed}


def failure_text(result: dict[str, Any]) -> str:
    """The failed diagnostics of :func:`diagnose`'s result in words, e.g. ``"largest absolute
    standardised difference after matching 0.246 (at most 0.1)"``; empty when none failed."""
    parts = []
    for c in result.get("checks", []):
        if c["status"] == "fail":
            text = f"{c['label']} {c['value']:.3g} ({c['rule']} {c['threshold']:.3g})"
            if c.get("largest_change") is not None:
                text += (
                    f" with a pre-entry difference of {c['largest_change']:.1%} "
                    f"(more than {c['max_change']:.0%})"
                )
            parts.append(text)
    return "; ".join(parts)
