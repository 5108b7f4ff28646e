"""Turn the generator's arrays into canonical Arrow tables (dates, identifiers, codes)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from careval.data.schema import TABLES
from careval.synthetic.settings import days_in_month, month_start_days


def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """String identifiers such as ``P000001234`` built in Arrow (fast for tens of millions)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def event_days(
    abs_month: np.ndarray, last_day: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """A uniform day within each month, not after ``last_day`` (days since epoch) when given."""
    start = month_start_days(abs_month)
    span = days_in_month(abs_month)
    if last_day is not None:
        span = np.clip(np.minimum(span, last_day - start + 1), 1, None)
    return (start + np.floor(rng.random(len(start)) * span)).astype(np.int32)


def dates(days: np.ndarray) -> pa.Array:
    """Days since 1970-01-01 as an Arrow date32 array (null where ``NULL_DAY``)."""
    days = np.asarray(days, dtype=np.int32)
    return pa.array(days, type=pa.date32(), mask=days == np.int32(-(2**31)))


NULL_DAY = np.int32(-(2**31))


def build(name: str, columns: dict[str, pa.Array | np.ndarray]) -> pa.Table:
    """A canonical table from column arrays, in model order and types."""
    schema = TABLES[name].arrow_schema()
    arrays = []
    for field in schema:
        col = columns[field.name]
        if field.type == pa.date32() and not isinstance(col, pa.Array | pa.ChunkedArray):
            col = dates(col)
        elif not isinstance(col, pa.Array | pa.ChunkedArray):
            col = pa.array(col, type=field.type)
        arrays.append(col.cast(field.type) if col.type != field.type else col)
    return pa.Table.from_arrays(arrays, schema=schema)
