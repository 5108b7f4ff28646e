"""The one data-access layer: every derivation reads a dataset through :class:`Dataset`.

Tables are Ibis expressions over an engine. DuckDB is the embedded default; PySpark is selected
with ``backend="pyspark"`` and gets the same expressions, so derivations are written once. Keep
derivations portable: no ``asof_join`` (use a join and ``row_number``), no ``delta(unit="year")``
for ages (use :func:`age_years`), and windows over days with an explicit ``range=``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from careval.compute import duckdb_settings
from careval.data.schema import TABLES
from careval.errors import SHOW_VALUES, ConfigError, DatasetError

Backend = Literal["duckdb", "pyspark"]
MANIFEST = "dataset.json"
# What the engines raise for a file they cannot read (corrupt pages, impossible sizes, a file
# of another type): caught where the file is named and turned into one DatasetError. pyarrow
# raises OSError for bad pages and ArrowInvalid (a ValueError) for bad values in them.
ENGINE_ERRORS: tuple[type[BaseException], ...] = (duckdb.Error, pa.ArrowException, OSError)
_BATCH_ROWS = 65_536  # rows decoded at a time when every page of a file is read


@dataclass
class Dataset:
    """A canonical dataset directory opened on an engine.

    Parameters
    ----------
    path
        Directory with one ``<table>.parquet`` per table and an optional ``dataset.json``.
    backend
        ``"duckdb"`` (default, in-process) or ``"pyspark"`` (needs the ``spark`` extra and a
        running session passed as ``spark``).
    """

    path: Path
    backend: Backend = "duckdb"
    spark: Any = None
    manifest: dict[str, Any] = field(default_factory=dict)
    con: Any = field(init=False, repr=False)
    _tables: dict[str, ir.Table] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such directory")
        if not self.path.is_dir():
            raise DatasetError(f"{self.path}: is a file; a dataset is a directory of Parquet files")
        manifest_path = self.path / MANIFEST
        if manifest_path.exists():
            try:
                self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DatasetError(f"{manifest_path}: not valid JSON ({exc})") from None
            if not isinstance(self.manifest, dict):
                raise DatasetError(f"{manifest_path}: must hold a JSON object")
        present = [n for n in TABLES if (self.path / f"{n}.parquet").exists()]
        if not present:
            raise DatasetError(
                f"{self.path}: no canonical tables found; expected files such as "
                + ", ".join(f"{n}.parquet" for n in list(TABLES)[:3])
                + " (see docs/data-model.md)"
            )
        self.con = _connect(self.backend, self.spark)
        for name in present:
            file = self.path / f"{name}.parquet"
            try:
                pq.read_schema(file)
            except Exception as exc:  # pyarrow raises several types for a bad file
                raise DatasetError(
                    f"{file}: not a readable Parquet file ({_first_line(exc)})"
                ) from None
            with self.reading(name):
                self._tables[name] = self.con.read_parquet(str(file), table_name=name)

    @property
    def tables(self) -> list[str]:
        """Names of the canonical tables present, in model order."""
        return list(self._tables)

    @property
    def synthetic(self) -> bool:
        """True only when the manifest's ``synthetic`` is the JSON boolean ``true``.

        Disclosure control is off for synthetic data only; anything else (the key absent,
        ``false``, or a value that is not a boolean such as the string ``"false"``, which
        validation refuses) means real data.
        """
        return self.manifest.get("synthetic") is True

    def verify(self) -> None:
        """Read every page of every table once, so that a corrupt file is named up front.

        A Parquet file whose footer is intact opens, and its schema reads, even when its pages
        are garbled or truncated; the damage shows only when a query reaches the page. This
        decodes every column (a batch at a time) and stops at the first file that fails.

        Raises
        ------
        DatasetError
            Naming the file and table whose pages cannot be decoded.
        """
        for name in self._tables:
            with self.reading(name):
                for batch in pq.ParquetFile(self.file(name)).iter_batches(batch_size=_BATCH_ROWS):
                    batch.validate(full=True)  # text must be UTF-8, as the engine will want

    @contextmanager
    def reading(self, name: str) -> Iterator[None]:
        """Turn an engine's error while reading table ``name`` into a DatasetError naming it.

        The engine's message often names no file; when it names another of the dataset's
        files (a table joined to ``name``), that file is the one reported.

        Raises
        ------
        DatasetError
            When the engine cannot read the file (corrupt or truncated pages, impossible sizes
            or offsets, a file of another type).
        """
        try:
            yield
        except ENGINE_ERRORS as exc:
            text = str(exc)
            named = [t for t in self._tables if str(self.file(t)) in text]
            table = named[0] if named else name
            if isinstance(exc, OSError) and exc.errno is not None:  # the system's, not the data's
                why = exc.strerror or _first_line(exc)
                raise DatasetError(f"{self.file(table)}: cannot be read ({why})") from None
            raise DatasetError(
                f"{self.file(table)}: table {table!r} cannot be read: its Parquet data are "
                f"corrupt or truncated ({_unquoted(_first_line(exc))}); export the table again"
            ) from None

    def has(self, name: str) -> bool:
        """Whether table ``name`` is present."""
        return name in self._tables

    def table(self, name: str) -> ir.Table:
        """The Ibis table expression for canonical table ``name``."""
        if name not in TABLES:
            raise KeyError(f"{name!r} is not a canonical table")
        if name not in self._tables:
            raise DatasetError(
                f"{self.path}: table {name!r} is needed but {name}.parquet is absent"
            )
        return self._tables[name]

    def rows(self, name: str) -> int:
        """Rows of table ``name`` (0 when it is absent), from its Parquet metadata."""
        if name not in self._tables:
            return 0
        return int(pq.read_metadata(self.file(name)).num_rows)

    def file(self, name: str) -> Path:
        """Path of a table's Parquet file."""
        return self.path / f"{name}.parquet"

    def close(self) -> None:
        """Release the engine connection."""
        disconnect = getattr(self.con, "disconnect", None)
        if disconnect is not None:
            disconnect()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an engine's message, clipped (they can run to many lines)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unquoted(message: str) -> str:
    """An engine's message with the values it quotes from the data taken out (``"E87004\\xFF"``
    -> ``"..."``), unless messages may quote values (:data:`careval.errors.SHOW_VALUES`)."""
    if SHOW_VALUES.get():
        return message
    return re.sub(r"\"[^\"]*\"|'[^']*'", '"..."', message)


def _connect(backend: str, spark: Any) -> Any:
    if backend == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql("SET preserve_insertion_order = false")
        con.raw_sql("SET enable_progress_bar = false")  # careval draws its own progress
        for sql in duckdb_settings():  # CAREVAL_THREADS, CAREVAL_MEMORY_LIMIT
            con.raw_sql(sql)
        return con
    if backend == "pyspark":
        try:
            return ibis.pyspark.connect(spark)
        except Exception as exc:
            raise ConfigError(
                f"backend 'pyspark' needs the spark extra and a SparkSession ({exc})"
            ) from None
    raise ConfigError(f"backend {backend!r} is not allowed; allowed: duckdb, pyspark")


def month_index(date: ir.DateValue) -> ir.IntegerValue:
    """Months since year 0 (``year*12 + month - 1``): portable month arithmetic."""
    return date.year() * 12 + date.month() - 1


def age_years(birth_month: ir.DateValue, at: ir.DateValue) -> ir.IntegerValue:
    """Completed years of age at ``at`` from a birth month (explicit formula, any engine)."""
    return ((month_index(at) - month_index(birth_month)) / 12).floor().cast("int64")
