"""Unit costs: what an event costs when a source carries no cost of its own.

The synthetic generator costs its events with them, and the adapters cost imported HES, OMOP
and CSV events the same way when the extract has no cost column, so that an imported extract
and the canonical data it came from cost the same. Pounds, 2016/17 reference costs (see
../shared/DESIGN.md, "Facts for realism").
"""

from __future__ import annotations

UNIT_COST = {  # pounds (2016/17 reference costs)
    "non_elective": 1590.0,
    "elective": 3684.0,
    "day_case": 698.0,
    "excess_bed_day": 313.0,
    "maternity": 1700.0,
    "regular_attender": 300.0,
    "outpatient": 120.0,
    "ae": 148.0,
}
TRIM_DAYS = 5  # bed days beyond this cost an excess bed day each
EMERGENCY_METHODS = ("21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28")
MATERNITY_METHODS = ("31", "32")


def spell_cost_sql(method: str, classification: str, los: str) -> str:
    """SQL for an inpatient spell's unit cost from its admission method, patient classification
    and length of stay in days (three SQL expressions).

    Regular day and night attenders (classification 3, 4) cost a regular attendance; maternity
    (methods 31, 32) a maternity spell; a day case (classification 2) a day case; other elective
    and non-elective spells their tariff plus an excess bed day for each day beyond
    :data:`TRIM_DAYS`. Methods 81-83 (transfers and other) are costed as non-elective.
    """
    c = UNIT_COST
    emergency = ", ".join(f"'{m}'" for m in EMERGENCY_METHODS)
    maternity = ", ".join(f"'{m}'" for m in MATERNITY_METHODS)
    excess = f"{c['excess_bed_day']} * greatest(({los}) - {TRIM_DAYS}, 0)"
    return (
        f"CASE WHEN ({classification}) IN ('3', '4') THEN {c['regular_attender']} "
        f"WHEN ({method}) IN ({maternity}) THEN {c['maternity']} "
        f"WHEN ({method}) IN ('11', '12', '13') AND ({classification}) = '2' "
        f"THEN {c['day_case']} "
        f"WHEN ({method}) IN ('11', '12', '13') THEN {c['elective']} + {excess} "
        f"WHEN ({method}) IN ({emergency}) OR ({method}) IN ('81', '82', '83') "
        f"THEN {c['non_elective']} + {excess} "
        f"ELSE {c['non_elective']} + {excess} END"
    )
