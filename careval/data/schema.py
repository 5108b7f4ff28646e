"""The canonical linked data model, defined once, as data.

Every table careval reads or the generator writes is described here: its columns with type,
nullability, allowed values, ranges and code patterns, its key, its links to other tables and the
date rules its rows obey. Validation (:mod:`careval.data.validate`), the generator, the Arrow
schemas and ``docs/data-model.md`` (``python -m careval.data.schema``) are all derived from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

ColumnType = Literal["string", "date", "int", "float", "bool"]
Severity = Literal["error", "warning"]  # an error stops every command; a warning is listed

SEXES = ("F", "M")
ETHNIC_GROUPS = ("white", "mixed", "asian", "black", "other", "unknown")
# HES ADMIMETH: emergency 21-25, 2A-2D and legacy 28; elective 11-13; maternity 31-32; other 81-83.
EMERGENCY_METHODS = ("21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28")
ELECTIVE_METHODS = ("11", "12", "13")
MATERNITY_METHODS = ("31", "32")
OTHER_METHODS = ("81", "82", "83")
ADMISSION_METHODS = EMERGENCY_METHODS + ELECTIVE_METHODS + MATERNITY_METHODS + OTHER_METHODS
# HES CLASSPAT: 1 ordinary, 2 day case, 3 regular day attender, 4 regular night attender,
# 5 mother and baby, 8 not applicable, 9 not known. Spell counts exclude 3 and 4.
PATIENT_CLASSIFICATIONS = ("1", "2", "3", "4", "5", "8", "9")
MEASURES = ("hba1c", "total_cholesterol", "sbp", "dbp", "six_cit")
MEASURE_RANGES = {  # plausible (not normal) ranges; outside them a value is an error
    "hba1c": (20.0, 200.0),  # mmol/mol
    "total_cholesterol": (1.0, 20.0),  # mmol/l
    "sbp": (60.0, 260.0),  # mmHg
    "dbp": (30.0, 160.0),  # mmHg
    "six_cit": (0.0, 28.0),  # 6CIT score
}
MEASURE_UNITS = {
    "hba1c": "mmol/mol",
    "total_cholesterol": "mmol/l",
    "sbp": "mmHg",
    "dbp": "mmHg",
    "six_cit": "score 0-28",
}
CODE_SYSTEMS = ("SNOMED", "ICD10")
# A medication's code: RxNorm (and OMOP's RxNorm Extension), NHS dm+d, WHO ATC; OMOP: a concept
# id, when an OMOP source has no vocabulary to name the concept's own code.
MEDICATION_CODE_SYSTEMS = ("RxNorm", "RxNorm Extension", "dm+d", "ATC", "OMOP")
CODE_PATTERNS = {
    "SNOMED": r"^[1-9][0-9]{5,17}$",
    "ICD10": r"^[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?X?$",
}
AE_DISPOSALS = ("admitted", "discharged", "referred", "left", "died", "other")
COMMUNITY_SERVICES = (
    "district_nursing",
    "community_matron",
    "intermediate_care",
    "therapy",
    "mental_health",
    "social_care_assessment",
    "home_care",
    "reablement",
)
SECTORS = ("health", "social_care")
# Adult social care services, shaped like a council's Client Level Data (CLD) and the SALT
# long-term-support return: the setting (CLD service component), whether support is long or short
# term, and the primary support reason. Care homes are the settings a person lives in.
SOCIAL_CARE_SETTINGS = (
    "home_care",
    "reablement",
    "day_care",
    "direct_payment",
    "supported_living",
    "equipment",
    "residential",
    "nursing",
)
CARE_HOME_SETTINGS = ("residential", "nursing")
SUPPORT_TYPES = ("long_term", "short_term")
SUPPORT_REASONS = (
    "physical_support",
    "sensory_support",
    "memory_and_cognition",
    "learning_disability",
    "mental_health",
    "social_support",
)
AUTHOR_ROLES = ("gp", "practice_nurse", "community_matron", "other")
MDG_ROLES = (
    "chair",
    "presenting_gp",
    "non_presenting_gp",
    "consultant",
    "nurse",
    "social_worker",
    "allied_health_professional",
    "mental_health",
    "other",
)
CARE_PLAN_QUALITY_ITEMS = (
    "q_goals_agreed",
    "q_medication_review",
    "q_falls_assessment",
    "q_carer_identified",
    "q_advance_care_plan",
    "q_named_coordinator",
)

# Every date of every table lies between these: no record of this programme predates 1900 (a
# birth in 1799 or an 1800-01-01 placeholder is an entry error), and nothing can have happened
# after the extract was taken (``extract_date`` in ``dataset.json`` or given to validation; today
# when neither is). Both are errors: an admission in 2091 silently stretched the study window.
EARLIEST_DATE = dt.date(1900, 1, 1)
MAX_AGE = 115  # years at death, else at the extract date; older is a warning (see SEVERITY)

# The severity of the rules that are not plainly errors, and why (every other rule is an error).
SEVERITY: dict[str, Severity] = {
    # A person over 115 is possible in principle (a handful of people in the UK at any time) but
    # in linked data it is nearly always a placeholder birth date; their own records stand.
    "max_age": "warning",
    # A care plan is written by the person's practice, so no registration covering the day it was
    # created, or a practice in another MDG, points at late registration data or a move; the plan
    # and its outcomes are still real, and the analyses take the practice from the registrations.
    "registered_on": "warning",
    "registered_mdg": "warning",
    # A practice no registration names (closed before the window, or a reference list wider than
    # the extract) has no one in any analysis; listed in case its registrations went missing.
    "used_by": "warning",
}

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "date": pa.date32(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
}


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    type: ColumnType
    description: str
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None  # regular expression a non-null string must match
    references: str | None = None  # "table.column" every non-null value must exist in
    identifying: bool = False  # a quasi-identifier: never shown in a validation message

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type the generator writes and adapters convert to."""
        return ARROW_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    """One canonical table: columns, key and the row rules validation applies."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    required: bool = False  # a dataset without it cannot be analysed at all
    date_order: tuple[tuple[str, str], ...] = ()  # (earlier, later): later must not precede it
    life_events: tuple[str, ...] = ()  # dates that must fall between birth month and death
    after_birth: tuple[str, ...] = ()  # dates that must not precede the birth month (any after)
    max_age: tuple[str, str] | None = None  # (birth, death): at most MAX_AGE at death or extract
    periods: tuple[str, str, str] | None = None  # (who, start, end): one's periods never overlap
    registered_on: tuple[str, str] | None = None  # (date, mdg): registered then, at that MDG
    used_by: str | None = None  # "table.column" expected to name every value of the key
    value_le: tuple[tuple[str, str], ...] = ()  # (a, b): a must not exceed b
    code_patterns: tuple[str, str, dict[str, str]] | None = None  # (system col, code col, map)
    ranges_by: tuple[str, str, dict[str, tuple[float, float]]] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        """Column names in canonical order."""
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of the table as written to Parquet."""
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns]
        )


PERSON = Column(
    "person_id", "string", "Pseudonymous person identifier", references="persons.person_id"
)
MDG = Column(
    "mdg",
    "string",
    "Multidisciplinary group (locality) code",
    pattern=r"^MDG[0-9]{2}$",
    references="practices.mdg",  # an MDG no practice belongs to is an error
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "persons",
            "One row per person: demographics and death.",
            (
                Column("person_id", "string", "Pseudonymous person identifier"),
                Column("birth_month", "date", "First day of the month of birth", identifying=True),
                Column("sex", "string", "Sex as recorded", allowed=SEXES),
                Column("ethnic_group", "string", "ONS broad ethnic group", allowed=ETHNIC_GROUPS),
                Column(
                    "lsoa",
                    "string",
                    "Lower-layer super output area of residence; null when not known",
                    nullable=True,
                    pattern=r"^[EW]01[0-9]{6}$",
                    identifying=True,
                ),
                Column(
                    "imd_decile",
                    "int",
                    "IMD decile of the LSOA (1 most deprived); null when not known (the models "
                    "then use a middle value and an indicator: docs/risk.md)",
                    nullable=True,
                    min=1,
                    max=10,
                ),
                Column(
                    "death_date",
                    "date",
                    "Date of death, if died",
                    nullable=True,
                    identifying=True,
                ),
            ),
            key=("person_id",),
            required=True,
            date_order=(("birth_month", "death_date"),),
            max_age=("birth_month", "death_date"),
        ),
        Table(
            "practices",
            "One row per GP practice, with its MDG (pilot only) and its area.",
            (
                Column(
                    "practice_code",
                    "string",
                    "ODS practice code; the ODS pseudo-codes V81997 (no registered practice), "
                    "V81998 (not applicable) and V81999 (not known) are accepted",
                    pattern=r"^[A-Z][0-9]{5}$",
                ),
                Column(
                    "mdg",
                    "string",
                    "MDG the practice belongs to (pilot practices)",
                    nullable=True,
                    pattern=r"^MDG[0-9]{2}$",
                ),
                Column("locality", "string", "Borough or locality name"),
                Column(
                    "area",
                    "string",
                    "Evaluation area: any name; the settings name the programme's areas and "
                    "its comparators (careval.data.areas)",
                    pattern=r".*\S.*",
                ),
            ),
            key=("practice_code",),
            required=True,
            used_by="registrations.practice_code",
        ),
        Table(
            "registrations",
            "Periods of registration with a practice.",
            (
                PERSON,
                Column(
                    "practice_code",
                    "string",
                    "Practice registered with",
                    references="practices.practice_code",
                ),
                Column("start_date", "date", "First day registered"),
                Column(
                    "end_date",
                    "date",
                    "Last day registered (null: still registered)",
                    nullable=True,
                ),
            ),
            key=("person_id", "start_date"),
            required=True,
            date_order=(("start_date", "end_date"),),
            # Not before birth; an end_date after death is ordinary (deregistration follows it).
            after_birth=("start_date",),
            # A person is registered at one practice at a time (an error: person-time counted
            # twice). end_date is the last day registered, so a registration that starts on the
            # end_date of another is a same-day transfer, as GP systems record one, and allowed
            # (the derivations take the later-starting one that day); starting before it is not.
            periods=("person_id", "start_date", "end_date"),
        ),
        Table(
            "conditions",
            "Diagnoses from GP (SNOMED CT) and hospital (ICD-10) records.",
            (
                PERSON,
                Column("code_system", "string", "Coding system", allowed=CODE_SYSTEMS),
                Column("code", "string", "Diagnosis code in that system"),
                Column("date", "date", "Date first recorded"),
            ),
            life_events=("date",),
            code_patterns=("code_system", "code", CODE_PATTERNS),
        ),
        Table(
            "measurements",
            "Clinical measurements: HbA1c, total cholesterol, blood pressure, 6CIT.",
            (
                PERSON,
                Column("date", "date", "Date measured"),
                Column("measure", "string", "What was measured", allowed=MEASURES),
                Column(
                    "value",
                    "float",
                    "Value in the measure's unit (mmol/mol, mmol/l, mmHg, 6CIT score)",
                ),
            ),
            life_events=("date",),
            ranges_by=("measure", "value", MEASURE_RANGES),
        ),
        Table(
            "inpatient_spells",
            "Hospital inpatient spells shaped like HES APC.",
            (
                Column("spell_id", "string", "Spell identifier"),
                PERSON,
                Column("admission_date", "date", "Admission date"),
                Column("discharge_date", "date", "Discharge date"),
                Column(
                    "admission_method", "string", "HES ADMIMETH code", allowed=ADMISSION_METHODS
                ),
                Column(
                    "patient_classification",
                    "string",
                    "HES CLASSPAT code",
                    allowed=PATIENT_CLASSIFICATIONS,
                ),
                Column(
                    "primary_diagnosis",
                    "string",
                    "Primary diagnosis, ICD-10 (null: not recorded in ICD-10)",
                    nullable=True,
                    pattern=CODE_PATTERNS["ICD10"],
                ),
                Column("cost", "float", "Cost in pounds from unit costs", min=0, max=500_000),
            ),
            key=("spell_id",),
            required=True,
            date_order=(("admission_date", "discharge_date"),),
            life_events=("admission_date", "discharge_date"),
        ),
        Table(
            "medications",
            "Medicines prescribed or dispensed (OMOP drug exposures).",
            (
                PERSON,
                Column("code_system", "string", "Coding system", allowed=MEDICATION_CODE_SYSTEMS),
                Column("code", "string", "Medicine code in that system"),
                Column("start_date", "date", "First day of the exposure"),
                Column("end_date", "date", "Last day of the exposure", nullable=True),
            ),
            date_order=(("start_date", "end_date"),),
            life_events=("start_date",),
        ),
        Table(
            "ae_attendances",
            "Accident and emergency attendances.",
            (
                Column("attendance_id", "string", "Attendance identifier"),
                PERSON,
                Column("arrival_date", "date", "Arrival date"),
                Column("disposal", "string", "What happened next", allowed=AE_DISPOSALS),
                Column("cost", "float", "Cost in pounds", min=0, max=50_000),
            ),
            key=("attendance_id",),
            life_events=("arrival_date",),
        ),
        Table(
            "outpatient_appointments",
            "Outpatient appointments, attended or not.",
            (
                Column("appointment_id", "string", "Appointment identifier"),
                PERSON,
                Column("appointment_date", "date", "Appointment date"),
                Column("specialty", "string", "Treatment function code", pattern=r"^[0-9]{3}$"),
                Column("first_attendance", "bool", "First (not follow-up) appointment"),
                Column("attended", "bool", "Whether the patient attended"),
                Column("cost", "float", "Cost in pounds (0 when not attended)", min=0, max=50_000),
            ),
            key=("appointment_id",),
            life_events=("appointment_date",),
        ),
        Table(
            "community_contacts",
            "Community health and social care contacts.",
            (
                Column("contact_id", "string", "Contact identifier"),
                PERSON,
                Column("contact_date", "date", "Date of contact"),
                Column("service", "string", "Service", allowed=COMMUNITY_SERVICES),
                Column("sector", "string", "Health or social care", allowed=SECTORS),
            ),
            key=("contact_id",),
            life_events=("contact_date",),
        ),
        Table(
            "social_care_services",
            "Adult social care services (packages and care home stays), one row per service "
            "episode, as in a council's Client Level Data.",
            (
                Column("service_id", "string", "Service episode identifier"),
                PERSON,
                Column(
                    "start_date", "date", "First day of the service (admission, for a care home)"
                ),
                Column(
                    "end_date",
                    "date",
                    "Day the service ended (left the care home or died; null: still open at the "
                    "extract); days in care run from start_date to end_date, the end not counted",
                    nullable=True,
                ),
                Column("setting", "string", "CLD service component", allowed=SOCIAL_CARE_SETTINGS),
                Column(
                    "support_type",
                    "string",
                    "Long-term support or short-term support to maximise independence (SALT)",
                    allowed=SUPPORT_TYPES,
                ),
                Column(
                    "support_reason",
                    "string",
                    "Primary support reason (null: not recorded)",
                    nullable=True,
                    allowed=SUPPORT_REASONS,
                ),
                Column(
                    "weekly_cost",
                    "float",
                    "Planned cost in pounds a week (null: not recorded)",
                    nullable=True,
                    min=0,
                    max=20_000,
                ),
            ),
            key=("service_id",),
            date_order=(("start_date", "end_date"),),
            # A council closes a service some days after a death, so only the start is bounded.
            life_events=("start_date",),
        ),
        Table(
            "care_plans",
            "Care plans created in the programme, with their quality items.",
            (
                Column("care_plan_id", "string", "Care plan identifier"),
                PERSON,
                Column("created_date", "date", "Date the plan was created"),
                MDG,
                Column("author_role", "string", "Who wrote the plan", allowed=AUTHOR_ROLES),
            )
            + tuple(
                Column(q, "bool", f"Quality item: {q[2:].replace('_', ' ')}")
                for q in CARE_PLAN_QUALITY_ITEMS
            ),
            key=("care_plan_id",),
            life_events=("created_date",),
            registered_on=("created_date", "mdg"),
        ),
        Table(
            "mdg_meetings",
            "Multidisciplinary group case-review meetings.",
            (
                Column("meeting_id", "string", "Meeting identifier"),
                MDG,
                Column("meeting_date", "date", "Date of the meeting"),
                Column("duration_minutes", "int", "Length of the meeting", min=0, max=600),
                Column("cases_discussed", "int", "Patients discussed", min=0, max=200),
            ),
            key=("meeting_id",),
        ),
        Table(
            "mdg_attendance",
            "Attendance at MDG meetings by professional role.",
            (
                Column("meeting_id", "string", "Meeting", references="mdg_meetings.meeting_id"),
                Column("role", "string", "Professional role", allowed=MDG_ROLES),
                Column("attendees", "int", "Number attending in that role", min=0, max=100),
            ),
            key=("meeting_id", "role"),
        ),
        Table(
            "innovation_fund",
            "Innovation fund allocations by MDG.",
            (
                Column("allocation_id", "string", "Allocation identifier"),
                MDG,
                Column("allocation_date", "date", "Date allocated"),
                Column("amount", "float", "Amount allocated, pounds", min=0, max=10_000_000),
                Column("purpose", "string", "What the money is for"),
                Column("spent", "float", "Amount spent so far, pounds", min=0, max=10_000_000),
            ),
            key=("allocation_id",),
            value_le=(("spent", "amount"),),
        ),
    )
}

EVENT_DATE = {  # the date that places an event in time, per event table
    "conditions": "date",
    "measurements": "date",
    "medications": "start_date",
    "inpatient_spells": "admission_date",
    "ae_attendances": "arrival_date",
    "outpatient_appointments": "appointment_date",
    "community_contacts": "contact_date",
    "social_care_services": "start_date",
    "care_plans": "created_date",
    "mdg_meetings": "meeting_date",
    "innovation_fund": "allocation_date",
}
