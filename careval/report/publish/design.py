"""Publication of the study design: the number enrolled and people with full histories."""

from __future__ import annotations

import copy

from careval.design.power import DesignResult
from careval.report.publish.rules import protect_value


def publish_design(result: DesignResult) -> DesignResult:
    """A copy with the number enrolled and the people with full histories as published;
    ``result`` is not changed."""
    d = copy.deepcopy(result)
    d.enrolled = protect_value(d.enrolled)
    for row in d.rows:
        if "people_with_full_history" in row:
            row["people_with_full_history"] = protect_value(row["people_with_full_history"])
    return d
