"""A person's integrated record from the dataset: GP, hospital, community and social care.

Read on demand from the dataset's Parquet files with DuckDB (one read-only connection, a
cursor per request, so concurrent requests do not share state), newest first. What the app
itself holds (plans, MDG reviews) is added by the page.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from careval.compute import duckdb_settings
from careval.data.codelists import codes
from careval.data.schema import ELECTIVE_METHODS, EMERGENCY_METHODS, MEASURE_UNITS

KINDS = {
    "condition": "Diagnosis",
    "measurement": "Measurement",
    "admission": "Hospital admission",
    "ae": "A&E",
    "outpatient": "Outpatients",
    "community": "Community",
    "social_care": "Social care",
    "medication": "Medicine",
    "care_plan": "Care plan (in the data)",
}

# Each source: its table, the date column, and the SELECT of (kind, date, what) for one person.
_SOURCES: dict[str, str] = {
    "conditions": "SELECT 'condition', date, code_system || ' ' || code, code FROM {t}",
    "measurements": "SELECT 'measurement', date, measure || ' ' || CAST(round(value, 1) AS "
    "VARCHAR), measure FROM {t}",
    "inpatient_spells": "SELECT 'admission', admission_date, CASE WHEN admission_method IN "
    "({emergency}) THEN 'emergency' WHEN admission_method IN ({elective}) THEN 'elective' ELSE "
    "'other' END || ' admission, ' || CAST(discharge_date - admission_date AS VARCHAR) || "
    "' nights' || coalesce(', ' || primary_diagnosis, ''), primary_diagnosis FROM {t}",
    "ae_attendances": "SELECT 'ae', arrival_date, 'A&E attendance: ' || disposal, NULL FROM {t}",
    "outpatient_appointments": "SELECT 'outpatient', appointment_date, 'specialty ' || "
    "specialty || CASE WHEN first_attendance THEN ', first' ELSE ', follow-up' END || CASE "
    "WHEN attended THEN '' ELSE ', did not attend' END, NULL FROM {t}",
    "community_contacts": "SELECT 'community', contact_date, replace(service, '_', ' ') || ' ("
    "' || replace(sector, '_', ' ') || ')', NULL FROM {t}",
    "social_care_services": "SELECT 'social_care', start_date, replace(setting, '_', ' ') || "
    "', ' || replace(support_type, '_', '-') || ' support' || coalesce(' until ' || "
    "CAST(end_date AS VARCHAR), ', open'), NULL FROM {t}",
    "medications": "SELECT 'medication', start_date, code_system || ' ' || code, NULL FROM {t}",
    "care_plans": "SELECT 'care_plan', created_date, 'care plan by ' || replace(author_role, "
    "'_', ' '), NULL FROM {t}",
}


@dataclass(frozen=True)
class Event:
    kind: str
    date: dt.date
    what: str
    label: str  # the condition's name for a diagnosis, the unit of a measurement, else ""

    @property
    def kind_name(self) -> str:
        return KINDS[self.kind]


class Records:
    """The dataset's records of one person at a time."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self._con = duckdb.connect()
        for statement in duckdb_settings():
            self._con.execute(statement)
        self._lock = threading.Lock()
        self._present = {
            name: data / f"{name}.parquet"
            for name in _SOURCES
            if (data / f"{name}.parquet").exists()
        }
        self._labels = {(c.code_system, c.code): c.label for c in codes() if c.match == "exact"}
        quoted = {
            "emergency": ", ".join(f"'{m}'" for m in EMERGENCY_METHODS),
            "elective": ", ".join(f"'{m}'" for m in ELECTIVE_METHODS),
        }
        parts = []
        for name, path in self._present.items():
            view = f"src_{name}"
            self._con.execute(
                f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{_quoted(path)}')"
            )
            select = _SOURCES[name].format(t=view, **quoted)
            parts.append(f"{select} WHERE person_id = $pid")
        self._sql = (
            " UNION ALL ".join(parts) + " ORDER BY 2 DESC, 1, 3"
            if parts
            else "SELECT 1 WHERE false"
        )

    def of(self, person_id: str) -> list[Event]:
        """Every record of ``person_id``, newest first."""
        with self._lock:
            cur = self._con.cursor()
        try:
            rows = cur.execute(self._sql, {"pid": person_id}).fetchall()
        finally:
            cur.close()
        out = []
        for kind, date, what, key in rows:
            label = ""
            if kind == "condition":
                system, _, code = what.partition(" ")
                label = self._labels.get((system, code), "")
            elif kind == "measurement":
                label = MEASURE_UNITS.get(key, "")
            out.append(Event(kind, date, what, label))
        return out

    def close(self) -> None:
        self._con.close()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
