"""Areas named from the data: which areas a dataset has, and the settings that name them.

Every practice belongs to one area (``practices.area``, any non-blank name). The analyses that
compare areas take the programme's areas and their comparators from their settings
(``programme_areas``, and ``comparator_areas``, ``comparison_areas`` or ``control_areas``), and
check them here against the areas the data have, once the data are known.

The rules, shared by every analysis:

- **The data's order.** A dataset's areas are listed in the order they first appear in the
  practices table (:func:`data_areas`). The synthetic generator writes the pilot's practices
  first and the comparators after them, so the seed's order comes out as the seed had it.
- **Every other area.** A comparator setting left ``None`` means every area of the data that is
  not a programme area, in the data's order.
- **One programme series.** Several programme areas are pooled into one series, named by
  :func:`pooled_name`: the area's own name for one area (``"pilot"`` by default), the names
  joined by ``" + "`` for several (``"Tower Hamlets + Hackney"``).

Examples
--------
>>> pooled_name(("pilot",))
'pilot'
>>> pooled_name(("Tower Hamlets", "Hackney"))
'Tower Hamlets + Hackney'
>>> c = resolve_areas(("pilot", "outer_nwl", "rest_of_england"), ("pilot",))
>>> c.comparators, c.name
(('outer_nwl', 'rest_of_england'), 'pilot')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow.parquet as pq

from careval.data.access import Dataset
from careval.errors import ConfigError

POOL_SEPARATOR = " + "  # between the names of pooled programme areas


def data_areas(ds: Dataset) -> tuple[str, ...]:
    """The areas of ``ds``'s practices, in the order they first appear in the practices table.

    Read from the Parquet file itself, whose row order is fixed whatever the engine.
    """
    ds.table("practices")  # a clear error when the table is absent
    column = pq.read_table(ds.file("practices"), columns=["area"]).column("area").to_pylist()
    return tuple(dict.fromkeys(str(a) for a in column if a is not None))


def pooled_name(areas: Sequence[str]) -> str:
    """The name of the series pooling ``areas``: the one name, or the names joined by " + "."""
    return POOL_SEPARATOR.join(areas)


def area_problems(field: str, value: object, optional: bool = False) -> list[str]:
    """What is wrong with a settings field naming areas (none: an empty list).

    ``value`` must be a non-empty tuple (or list) of distinct non-blank names; with
    ``optional``, ``None`` is allowed too (every other area of the data).
    """
    if value is None and optional:
        return []
    names = list(value) if isinstance(value, tuple | list) else []
    if not names or not all(isinstance(a, str) and a.strip() for a in names):
        also = " (or None: every other area in the data)" if optional else ""
        return [f"{field} must be a non-empty tuple of area names{also}; got {value!r}"]
    if len(set(names)) != len(names):
        return [f"{field} must name each area once; got {names!r}"]
    return []


def overlap_problems(
    programme: object, others: object, field: str, programme_field: str = "programme_areas"
) -> list[str]:
    """A problem when an area is both a programme area and one of ``others`` (a comparator)."""
    if not isinstance(programme, tuple | list) or not isinstance(others, tuple | list):
        return []
    both = [a for a in others if a in programme]
    if not both:
        return []
    return [
        f"{field} must not name a programme area ({programme_field}); both name "
        + ", ".join(repr(a) for a in both)
    ]


@dataclass(frozen=True)
class Comparison:
    """The programme's areas and its comparators, checked against the data's areas."""

    programme: tuple[str, ...]
    comparators: tuple[str, ...]
    data: tuple[str, ...]  # every area of the data, in its order

    @property
    def name(self) -> str:
        """The programme series' name (:func:`pooled_name`)."""
        return pooled_name(self.programme)

    @property
    def others(self) -> tuple[str, ...]:
        """The data's areas that are not programme areas, in the data's order."""
        return tuple(a for a in self.data if a not in self.programme)


def resolve_areas(
    areas: Sequence[str],
    programme: Sequence[str],
    comparators: Sequence[str] | None = None,
    fields: tuple[str, str] = ("programme_areas", "comparator_areas"),
) -> Comparison:
    """Check the named areas against the data's ``areas``; ``None`` comparators: every other.

    Raises :class:`~careval.errors.ConfigError` naming every area the data do not have (with
    the field that names it) and listing the areas they do have.
    """
    known = tuple(areas)
    problems = []
    for field, names in zip(fields, (programme, comparators or ()), strict=True):
        missing = [a for a in names if a not in known]
        if missing:
            what = "is not an area" if len(missing) == 1 else "are not areas"
            problems.append(f"{field}: {', '.join(map(repr, missing))} {what} of the data")
    name = pooled_name(programme)
    if len(programme) > 1 and name in known:
        problems.append(
            f"{fields[0]}: the pooled programme would be named {name!r}, which is also an "
            "area of the data; rename that area"
        )
    if problems:
        raise ConfigError(
            "; ".join(problems)
            + "; the practices table has the areas "
            + (", ".join(map(repr, known)) or "(none)")
        )
    chosen = tuple(comparators) if comparators is not None else ()
    if comparators is None:
        chosen = tuple(a for a in known if a not in programme)
    return Comparison(tuple(programme), chosen, known)
