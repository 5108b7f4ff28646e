"""The machine's share (careval.compute) and the matched study's fits side by side
(careval.impact.parallel): the same results as one by one, the BLAS limit left as it was."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from careval import compute
from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.impact.fastfe import one_blas_thread
from careval.impact.parallel import each
from careval.impact.study import evaluate_impact

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_threads_and_memory_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compute.THREADS, raising=False)
    monkeypatch.delenv(compute.MEMORY_LIMIT, raising=False)
    assert compute.threads() >= 1 and compute.memory_limit() is None
    monkeypatch.setenv(compute.THREADS, "3")
    monkeypatch.setenv(compute.MEMORY_LIMIT, "1.5 GiB")
    assert compute.threads() == 3
    assert compute.duckdb_settings() == ["SET threads = 3", "SET memory_limit = '1.5GiB'"]
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(compute.THREADS, bad)
        with pytest.raises(ConfigError, match="CAREVAL_THREADS.*allowed: a whole number"):
            compute.threads()
    monkeypatch.setenv(compute.MEMORY_LIMIT, "lots")
    with pytest.raises(ConfigError, match="CAREVAL_MEMORY_LIMIT.*allowed: a size"):
        compute.memory_limit()


def test_duckdb_takes_the_setting(synth_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compute.THREADS, "1")
    monkeypatch.setenv(compute.MEMORY_LIMIT, "700MB")
    with Dataset(synth_dir) as ds:
        got = ds.con.raw_sql(
            "SELECT current_setting('threads'), current_setting('memory_limit')"
        ).fetchone()
    assert got[0] == 1
    assert got[1].replace(" ", "") in ("667.5MiB", "700.0MB", "667MiB")  # DuckDB's own units


def test_each_is_the_loop_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compute.THREADS, "2")
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(2_000, 30)) for _ in range(7)]

    def work(m: np.ndarray) -> float:
        with one_blas_thread():
            return float(np.linalg.slogdet(m.T @ m)[1])

    assert each(work, mats) == [work(m) for m in mats]


def test_each_raises_the_first_error_in_the_items_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compute.THREADS, "2")

    def fn(i: int) -> int:
        if i in (2, 4):
            raise ValueError(f"item {i}")
        return i

    with pytest.raises(ValueError, match="item 2"):
        each(fn, list(range(6)))


def test_the_fits_run_on_one_blas_thread_and_leave_the_limits_as_they_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """each's workers and the fits inside them (one_blas_thread, nested) see one BLAS thread;
    the original limits are back after, every time (threadpoolctl ignores a limit set by a
    thread other than the one controlling it, so each sets it in the calling thread; a restore
    left to the last worker out would leave the process on one BLAS thread for good)."""
    before = _blas_threads()
    if not before or max(before) < 2:
        pytest.skip("a one-thread BLAS: no limit to observe")
    monkeypatch.setenv(compute.THREADS, "2")

    def fit(i: int) -> list[int]:
        with one_blas_thread():
            np.linalg.qr(np.ones((300, 30)) + i)
            return _blas_threads()

    for _ in range(5):
        assert each(fit, list(range(6))) == [[1] * len(before)] * 6
        assert _blas_threads() == before
    with one_blas_thread(), one_blas_thread():
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


def test_the_study_on_one_thread_and_on_two(
    synth_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = {}
    for n in ("1", "2"):
        monkeypatch.setenv(compute.THREADS, n)
        with Dataset(synth_dir) as ds:
            got[n] = evaluate_impact(ds, WINDOW).to_dict()
    assert got["1"] == got["2"]
    assert got["1"]["outcomes"]["emergency_admissions"]["rate_ratio"] > 0
