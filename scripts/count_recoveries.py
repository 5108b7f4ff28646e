"""The counts of 1-7 the output audit recovers from published ``results.json`` files.

Usage: ``PYTHONPATH=. .venv/bin/python scripts/count_recoveries.py OUT/results.json ...``

Works on the results of any careval version (it only reads the JSON), so a run of an older
version on data flagged real can be compared with the current one: how many small counts its
shares, rates and totals gave back, by table.
"""

import collections
import json
import sys

from careval.disclosure import DisclosureSettings
from careval.report.publish.recovery import recoveries

for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        found = list(recoveries(json.load(f), DisclosureSettings()))
    by_table = collections.Counter(getattr(r, "table", "?") for r in found)
    print(f"{path}: {len(found)} recoverable count(s) of 1-7", dict(by_table.most_common()))
