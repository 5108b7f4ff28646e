"""Publishing the real-time evaluation (``careval run --follow``): its looks' counts."""

from __future__ import annotations

import dataclasses

from careval.disclosure import DisclosureSettings
from careval.impact.follow_state import FollowResult
from careval.report.publish.rules import protect_value

COUNTS = ("n_treated", "n_controls")


def publish_follow(result: FollowResult, d: DisclosureSettings) -> FollowResult:
    """A copy with each look's counts protected. ``careval follow`` protected them when it
    wrote them (and took every number out of a look's reason for having no estimate); the
    protection is idempotent, so this holds whatever disclosure settings the looks had."""
    looks = [
        {k: protect_value(v, d) if k in COUNTS else v for k, v in r.items()} for r in result.looks
    ]
    return dataclasses.replace(result, looks=looks)
