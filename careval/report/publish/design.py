"""Publication of the study design: the number enrolled and people with full histories."""

from __future__ import annotations

import copy

from careval.design.power import DesignResult
from careval.disclosure import DisclosureSettings
from careval.report.publish.derived import derived
from careval.report.publish.rules import protect_value


def publish_design(result: DesignResult, d: DisclosureSettings) -> DesignResult:
    """A copy with the number enrolled, the people with full histories and the baseline rate
    as published under ``d``; ``result`` is not changed."""
    out = copy.deepcopy(result)
    out.enrolled = protect_value(out.enrolled, d)
    # The baseline rate is 12 x the histories' admissions in their first month over the
    # histories: by the derived-figure rule, from both as published.
    people = result.baseline_people
    if isinstance(people, int) and people > 0 and result.baseline_rate_per_person_year is not None:
        events = result.baseline_rate_per_person_year / 12 * people
        out.baseline_rate_per_person_year = derived(events, people, d, scale=12)
        out.baseline_people = protect_value(people, d)
    for row in out.rows:
        if "people_with_full_history" in row:
            row["people_with_full_history"] = protect_value(row["people_with_full_history"], d)
    return out
