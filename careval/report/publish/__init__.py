"""Publishing: the one step that turns an evaluation's true results into the published copy.

:func:`publish` applies disclosure control once (on data not flagged synthetic), to copies of
the result objects, and builds the ``results.json`` document from them: floats canonicalised,
then read into the typed model (:class:`~careval.report.publish.model.Published`). The page's
analysis sections render from the published result copies, its reading sections (summary,
Table 3, methods), the workbook and ``results.json`` from the typed document: every output
shows the same published numbers. The rules themselves are in :mod:`.rules`; each analysis's
publication (which tables, which margins) in the module named for it.
"""
