"""Publication of the matched study: attrition with its margin, Figure 2, the horizons."""

from __future__ import annotations

import copy

from careval.disclosure import DisclosureSettings
from careval.impact.study import ImpactResult
from careval.report.publish.rules import (
    SUPPRESSED,
    is_small,
    protect_mapping,
    protect_value,
)

IMPACT_MARGIN = (
    ("treated_matched", "unmatched_outside_caliper", "unmatched_no_control_in_stratum"),
    "treated_alive_and_registered_at_entry",
)


def publish_impact(result: ImpactResult, d: DisclosureSettings) -> ImpactResult:
    """A copy with the attrition (with its margin) and the horizons' counts as published under
    ``d``, and no month of Figure 2 from fewer than 8 treated people; ``result`` is not
    changed."""
    r = copy.deepcopy(result)
    r.attrition = protect_mapping(r.attrition, d, [IMPACT_MARGIN])
    m = r.monthly_means
    small = m.treated_people.map(lambda v: is_small(v, d)).astype(bool)
    m.loc[small, ["treated", "matched_controls"]] = float("nan")
    m["treated_people"] = [protect_value(int(v), d) for v in m.treated_people]
    for h in r.horizons:
        n = h.get("treated_with_full_horizon")
        if is_small(n, d):
            for k, v in h.items():
                if isinstance(v, float):
                    h[k] = None
        h["treated_with_full_horizon"] = protect_value(n, d)
        if "n_obs" in h:
            h["n_obs"] = protect_value(h["n_obs"], d)
    return r


def impact_withheld(r: ImpactResult, d: DisclosureSettings) -> bool:
    """Whether the matched study rests on fewer than 8 people (then it is not published)."""
    n = r.attrition.get("treated_matched")
    return n == SUPPRESSED or is_small(n, d)
