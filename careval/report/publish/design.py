"""Publication of the study design: the number enrolled and people with full histories."""

from __future__ import annotations

import copy

from careval.design.power import DesignResult
from careval.disclosure import DisclosureSettings
from careval.report.publish.rules import protect_value


def publish_design(result: DesignResult, d: DisclosureSettings) -> DesignResult:
    """A copy with the number enrolled and the people with full histories as published under
    ``d``; ``result`` is not changed."""
    out = copy.deepcopy(result)
    out.enrolled = protect_value(out.enrolled, d)
    for row in out.rows:
        if "people_with_full_history" in row:
            row["people_with_full_history"] = protect_value(row["people_with_full_history"], d)
    return out
