"""The lines ``careval run`` (and ``careval demo``) print about a run's results at its end.

Drawn from the run's published ``results.json`` (disclosure-controlled on real data), never
from the unpublished result: the time-to-event block's hazard ratios (``impact.survival``,
published by :mod:`careval.report.publish.survival`), one line for death and one for the
first emergency admission.
"""

from __future__ import annotations

from typing import Any


def _hr(fit: Any) -> str | None:
    """``HR 0.91 (95% CI 0.82 to 1.00)``, the model's note when it has no estimate, or None."""
    if not isinstance(fit, dict):
        return None
    hr, lo, hi = (
        fit.get(k) for k in ("hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high")
    )
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (hr, lo, hi)):
        note = fit.get("note")
        return f"no hazard ratio ({note})" if note else "no hazard ratio"
    return f"HR {hr:.2f} (95% CI {lo:.2f} to {hi:.2f})"


def survival_lines(results: dict[str, Any]) -> list[str]:
    """The survival block of ``results`` (a ``results.json`` document) in one or two lines.

    >>> fit = {"hazard_ratio": 1.07, "hazard_ratio_ci_low": 0.88, "hazard_ratio_ci_high": 1.3}
    >>> survival_lines({"impact": {"survival": {"death": {"cox": fit}}}})
    ['time to death (care-planned against matched controls, Cox): HR 1.07 (95% CI 0.88 to 1.30)']
    """
    impact = results.get("impact")
    s = impact.get("survival") if isinstance(impact, dict) else None
    if not isinstance(s, dict) or not s:
        return []
    death, adm = s.get("death"), s.get("first_admission")
    if not isinstance(death, dict) and not isinstance(adm, dict):
        note = s.get("note")
        return [f"time to event: {note}"] if note else []
    lines = []
    if isinstance(death, dict) and (d := _hr(death.get("cox"))):
        lines.append(f"time to death (care-planned against matched controls, Cox): {d}")
    if isinstance(adm, dict) and (a := _hr(adm.get("cox"))):
        line = f"time to first emergency admission (Cox, death censors): {a}"
        if fg := _hr(adm.get("fine_gray")):
            line += f"; with death competing (Fine-Gray): {fg}"
        lines.append(line)
    return lines
