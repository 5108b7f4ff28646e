"""careval: evaluate integrated health and social care programmes from linked patient-level data."""

from __future__ import annotations

__version__ = "0.1.0"
