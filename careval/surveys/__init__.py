"""Surveys: import (CSV, XLSX, SPSS, Stata), response rates, item summaries, group comparisons.

Kept light at import: analysis modules load pandas, scipy and pyreadstat when used.
"""

from __future__ import annotations
