"""The publication of one run: :func:`publish` and the :class:`Publication` it returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from careval import __version__
from careval.cohort.summary import DataSummary
from careval.disclosure import DisclosureSettings
from careval.errors import Problem
from careval.evaluation import ANALYSES, NOT_RUN, Analyses, Evaluation
from careval.report.objectives import table3
from careval.report.publish.areas import publish_areas
from careval.report.publish.data import publish_summary, published_warning
from careval.report.publish.design import publish_design
from careval.report.publish.follow import publish_follow
from careval.report.publish.impact import impact_withheld, publish_impact
from careval.report.publish.indicators import publish_indicators
from careval.report.publish.model import Published
from careval.report.publish.programme import publish_programme
from careval.report.publish.qualitative import publish_qualitative
from careval.report.publish.risk import publish_risk
from careval.report.publish.rules import protect_json, smallest_published
from careval.report.publish.shares import publish_note
from careval.report.publish.surveys import publish_surveys
from careval.report.publish.units import floor_p_values, leaf_paths, units_of
from careval.report.seed import seed_shaped

SIGNIFICANT_DIGITS = 10  # of every float in results.json (see canonical)
# The version of results.json's layout (docs/results.schema.json says what changed and why): a
# reader checks it before reading. Major: a key removed, renamed or changed in meaning (2.0:
# the top-level ``naive`` copy of ``impact.naive`` removed); minor: keys added (2.1: ``follow``).
SCHEMA_VERSION = "2.1"


@dataclass(kw_only=True)
class Publication(Analyses):
    """The published copy of one run: result copies for the sections, the typed document.

    ``disclosure`` holds the numbers of the rules (applied when the data are not
    ``synthetic``); ``seed_shaped`` says whether the data are the seed-shaped synthetic default
    (:func:`careval.report.seed.seed_shaped`), on which the page may compare its figures with
    the pilot's published ones.
    """

    synthetic: bool
    disclosure: DisclosureSettings
    seed_shaped: bool
    summary: DataSummary
    provenance: dict[str, Any]
    results: Published


def publish(ev: Evaluation) -> Publication:
    """The published copy of ``ev`` under ``ev.disclosure``; ``ev`` itself is not changed."""
    synthetic, d = ev.synthetic, ev.disclosure
    a = Analyses(**{name: getattr(ev, name) for name in ANALYSES}, skipped=dict(ev.skipped))
    summary = ev.summary
    if not synthetic:
        # Each publish_* function returns a protected copy; the evaluation keeps its true numbers.
        _protect(a, d)
        a.skipped = {k: publish_note(v, d) for k, v in a.skipped.items()}
        summary = publish_summary(ev.summary, d)
    prov = provenance(ev)
    document = _document(a, summary, synthetic, ev.validation_warnings, d)
    document["provenance"] = {k: v for k, v in prov.items() if k != "dataset"}
    measured = canonical(document)
    if not synthetic:
        # Rules 1 and 3 on every block, whatever its source. Not only a safety net: it is the
        # one protection of counts no publish_* function touches (risk.n and risk.events, the
        # n_obs of impact.outcomes and naive). Idempotent, so published tables are unchanged.
        document = protect_json(document, d)
    document = floor_p_values(canonical(document))
    # Every figure's unit, by its place; a place whose figure was suppressed ("*") keeps its
    # unit (taken from the figures before protection, for the places still published).
    published = leaf_paths(document)
    units = units_of(measured) | units_of(document)
    document["units"] = {p: u for p, u in sorted(units.items()) if p in published}
    results = Published.read(document)
    results.add_objectives([o.to_dict() for o in table3(results)])
    return Publication(
        **{name: getattr(a, name) for name in ANALYSES},
        skipped=a.skipped,
        synthetic=synthetic,
        disclosure=d,
        seed_shaped=seed_shaped(ev.manifest),
        summary=summary,
        provenance=prov,
        results=results,
    )


def provenance(ev: Evaluation) -> dict[str, Any]:
    """Version, dataset, seed, settings and input files of a run.

    Under disclosure control (data not flagged synthetic) the settings name its numbers too,
    as ``disclosure`` beside ``disclosure_control``; synthetic data are published exactly, so
    their provenance has no ``disclosure`` key.
    """
    rs = ev.settings
    settings: dict[str, Any] = {
        "reference_date": rs.summary.reference_date.isoformat(),
        "eligibility": rs.summary.eligibility.to_dict(),
        "risk": rs.risk.to_dict(),
        "design": rs.design.to_dict(),
        "impact": rs.impact.to_dict(),
        "disclosure_control": not ev.synthetic,
    }
    if not ev.synthetic:
        settings["disclosure"] = ev.disclosure.to_dict()
    return {
        "careval_version": __version__,
        "dataset": ev.dataset,
        "synthetic": ev.synthetic,
        "seed": ev.manifest.get("settings", {}).get("seed"),
        "settings": settings,
        "input_files": ev.input_files,
    }


# Each analysis's publication: a protected copy of its result under the run's disclosure
# settings (real data only).
PUBLISHERS: dict[str, Callable[[Any, DisclosureSettings], Any]] = {
    "risk": publish_risk,
    "areas": publish_areas,
    "impact": publish_impact,
    "indicators": publish_indicators,
    "programme": publish_programme,
    "design": publish_design,
    "surveys": publish_surveys,
    "qualitative": publish_qualitative,
    "follow": publish_follow,
}


def _protect(a: Analyses, d: DisclosureSettings) -> None:
    """Disclosure control on every result (real data); a matched study resting on fewer than 8
    people is withheld whole."""
    for name, publish_one in PUBLISHERS.items():
        result = getattr(a, name)
        if result is not None:
            setattr(a, name, publish_one(result, d))
    if a.impact is not None and impact_withheld(a.impact, d):
        treated = a.impact.settings.intervention.treated
        a.impact = None
        a.skipped["impact"] = (
            f"withheld: fewer than {smallest_published(d)} matched {treated} people"
        )


def _document(
    p: Analyses,
    summary: DataSummary,
    synthetic: bool,
    warnings: list[Problem],
    d: DisclosureSettings,
) -> dict[str, Any]:
    """The ``results.json`` blocks, from the (published, on real data) results."""
    data_block = summary.to_dict()
    data_block["validation_warnings"] = [published_warning(w, synthetic, d) for w in warnings]
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "careval_version": __version__,
        "synthetic": synthetic,
        "disclosure_control": not synthetic,
        "data": data_block,
    }
    doc["risk"] = p.risk.to_dict() if p.risk is not None else {"skipped": p.skipped["risk"]}
    doc["monitoring"] = (
        p.areas.to_dict() if p.areas is not None else {"skipped": p.skipped["monitoring"]}
    )
    # The naive before-after contrast is published once, as ``impact.naive``
    # (``Published.naive`` reads it there).
    doc["impact"] = p.impact.to_dict() if p.impact is not None else {"skipped": p.skipped["impact"]}
    if p.indicators is not None:
        doc["indicators"] = p.indicators.to_dict()
    else:
        doc["indicators"] = {"skipped": p.skipped["indicators"]}
    doc["follow"] = p.follow.to_dict() if p.follow is not None else {"skipped": NOT_RUN["follow"]}
    doc["programme"] = (
        p.programme.to_dict() if p.programme is not None else {"skipped": p.skipped["programme"]}
    )
    doc["design"] = p.design.to_dict() if p.design is not None else {"skipped": p.skipped["design"]}
    doc["surveys"] = (
        p.surveys.to_dict() if p.surveys is not None else {"skipped": NOT_RUN["surveys"]}
    )
    doc["qualitative"] = (
        p.qualitative.to_dict()
        if p.qualitative is not None
        else {"skipped": NOT_RUN["qualitative"]}
    )
    return doc


def canonical(obj: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """``obj`` with every float rounded to ``digits`` significant digits (NaN and inf: null).

    Multithreaded numerical libraries can sum in a different order from one run to the next,
    which changes the last bits of a result; rounding the published figures keeps two runs of
    the same data, settings and seed byte-identical.
    """
    if isinstance(obj, dict):
        return {k: canonical(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [canonical(v, digits) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if np.isfinite(obj) else None
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj
