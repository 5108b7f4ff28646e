"""The report: the edge that publishes an evaluation and shows it to its readers.

``publish/`` makes the one published copy (disclosure control, the typed results model);
``sections/`` renders one section per analysis; ``page.py`` lays out the page; ``workbook.py``
writes ``tables.xlsx``; :func:`~careval.report.build.write_report` does all of it for one run.
``seed.py`` says whether the data are the seed-shaped synthetic default, the only data on which
the page sets its figures beside the seed evaluation's.
"""
