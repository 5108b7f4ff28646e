"""Qualitative analysis: MDG transcripts (who speaks), thematic coding and REFI-QDA exchange.

Kept light at import: analysis modules load pandas, scipy, statsmodels and xmlschema when used.
"""

from __future__ import annotations
