"""The side analyses (Table 2, programme monitoring, clinical indicators) in a process of their
own, as ``careval run`` gives them one on a large dataset: the same results as in this one."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from careval import evaluation
from careval.cohort.summary import summarise
from careval.data.access import Dataset
from careval.spec.check import window


def test_the_side_analyses_in_their_own_process(synth_dir: Path) -> None:
    with Dataset(synth_dir) as ds:
        rs = evaluation._resolved(None, ds)
        summary = summarise(ds, rs.summary, window(rs.spec, ds))
        unmet = {name: evaluation.unmet(ds, n) for name, n in evaluation.needs(rs.impact).items()}
        here = evaluation._side(ds, summary.window, rs, summary, unmet)
        assert evaluation.people(ds) == ds.table("persons").to_pyarrow().num_rows
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        args = (synth_dir, summary.window, rs, summary, unmet, False)
        there = pool.submit(evaluation.side_analyses, *args).result()
    assert here.areas is not None and there.areas is not None
    assert here.programme is not None and there.programme is not None
    assert here.indicators is not None and there.indicators is not None
    assert there.areas.to_dict() == here.areas.to_dict()
    assert there.programme.to_dict() == here.programme.to_dict()
    assert there.indicators.to_dict() == here.indicators.to_dict()
    assert (there.why_areas, there.why_programme, there.why_indicators) == ("", "", "")
