"""The report's sections, one module per analysis, in the board's reading order.

Each analysis module has a function that renders a :class:`~careval.report.page.Section` from
that analysis's *published* result (the copy :func:`careval.report.publish.publish` made); the
reading sections (summary of findings, Table 3, methods) render from the typed results document.
"""

from __future__ import annotations

from careval.report.page import Section
from careval.report.sections.data import not_run_section

# The report's sections in navigation order, with the title used when one did not run.
SECTION_ORDER: tuple[tuple[str, str], ...] = (
    ("summary", "Summary of findings"),
    ("data", "Data and attrition"),
    ("risk", "Targeting and risk"),
    ("monitoring", "Area comparison (Table 2)"),
    ("impact", "Matched-control results"),
    ("follow", "Real-time evaluation"),
    ("indicators", "Clinical indicators"),
    ("programme", "Programme monitoring"),
    ("surveys", "Surveys"),
    ("qualitative", "Qualitative findings"),
    ("design", "Study design and power"),
    ("objectives", "Progress against objectives"),
    ("methods", "Methods, assumptions and limitations"),
    ("glossary", "Glossary"),
    ("provenance", "Provenance"),
    ("appendix", "Appendix: code names"),
)


def in_order(built: dict[str, Section], skipped: dict[str, str]) -> list[Section]:
    """The sections in :data:`SECTION_ORDER`; one that did not run says why."""
    out = []
    for sid, title in SECTION_ORDER:
        if sid in built:
            out.append(built[sid])
        else:
            out.append(not_run_section(sid, title, skipped.get(sid) or "not available"))
    return out
