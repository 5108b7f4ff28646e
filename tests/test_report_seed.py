"""The seed evaluation's figures appear on the page only when the data are seed-shaped.

The small synthetic dataset is evaluated once; its report is then written three times from the
same evaluation: as it is (the seed-shaped default, :func:`careval.report.seed.seed_shaped`),
with one generator setting changed in its manifest, and flagged as real data. Only the first
page quotes the North West London pilot's published figures; the others speak of the data they
were given, and ``results.json`` does not change with the page's wording.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest

from careval.evaluation import Evaluation, evaluate
from careval.report.build import write_report
from careval.report.seed import seed_shaped

# One marker of each sentence (or clause) that quotes the seed evaluation's figures.
SEED_SENTENCES = (
    "The seed evaluation found 0.44 emergency admissions a person-year",  # targeting
    "The seed evaluation matched 1,236 people to 5 controls each",  # design
    "(the seed reported about 30%)",  # care-plan coverage
    "(the seed: 39%)",  # innovation fund
    "(the seed evaluation had about three)",  # follow-up horizons
    "; the seed evaluation had about three.",  # methods: follow-up
)
# Its replacement in the targeting section, from the run's own published rates.
OWN_TARGETING = re.compile(
    r"the care-planned had \d+\.\d\d emergency admissions a person-year against \d+\.\d\d "
    r"among everyone scored: \d+\.\d times the population's rate"
)


@pytest.fixture(scope="module")
def seed_evaluation(synth_dir: Path) -> Evaluation:
    """The evaluation of the small seed-shaped dataset (12,000 people, seed 7)."""
    return evaluate(synth_dir)


def _report(ev: Evaluation, out: Path) -> tuple[str, str]:
    write_report(ev, out)
    return (out / "report.html").read_text(), (out / "results.json").read_text()


def test_the_seed_shaped_default_quotes_the_seed(
    seed_evaluation: Evaluation, tmp_path: Path
) -> None:
    assert seed_shaped(seed_evaluation.manifest)
    page, _ = _report(seed_evaluation, tmp_path)
    assert [s for s in SEED_SENTENCES if s not in page] == []
    assert not OWN_TARGETING.search(page)


def test_other_synthetic_settings_quote_no_seed_figure(
    seed_evaluation: Evaluation, tmp_path: Path
) -> None:
    manifest = copy.deepcopy(seed_evaluation.manifest)
    manifest["settings"]["effect"] = 0.0  # another population: no care-plan effect
    other = dataclasses.replace(seed_evaluation, manifest=manifest)
    assert not seed_shaped(other.manifest)
    page, results = _report(other, tmp_path / "other")
    assert [s for s in SEED_SENTENCES if s in page] == []
    assert OWN_TARGETING.search(page)
    # The wording of the page is all that changes.
    _, default_results = _report(seed_evaluation, tmp_path / "default")
    assert results == default_results


def test_data_not_flagged_synthetic_quote_no_seed_figure(
    seed_evaluation: Evaluation, tmp_path: Path
) -> None:
    manifest = {**seed_evaluation.manifest, "synthetic": False}
    real = dataclasses.replace(seed_evaluation, manifest=manifest, synthetic=False)
    page, _ = _report(real, tmp_path)
    assert "Disclosure control is <b>on</b>" in page
    assert [s for s in SEED_SENTENCES if s in page] == []
    assert OWN_TARGETING.search(page)


def test_the_reason_an_analysis_did_not_run_quotes_its_counts_protected(
    seed_evaluation: Evaluation,
) -> None:
    """A skip reason raised with a Note keeps its counts apart; published from data flagged
    real they are protected (1-7 suppressed, others rounded), from synthetic data exact."""
    from careval.disclosure import Note, because
    from careval.errors import ConfigError
    from careval.report.publish.publication import publish

    exc = ConfigError(Note("only {people} people of {total} are followed", people=5, total=1234))
    reason = because("design not computed: ", exc)
    assert reason == "design not computed: only 5 people of 1,234 are followed"
    assert because("x: ", ConfigError("plain 5")) == "x: plain 5"
    skipped = {**seed_evaluation.skipped, "design": reason}
    real = dataclasses.replace(seed_evaluation, synthetic=False, design=None, skipped=skipped)
    published = publish(real)
    assert published.skipped["design"] == "design not computed: only * people of 1,235 are followed"
    assert published.results.to_json()["design"] == {"skipped": published.skipped["design"]}
    synthetic = publish(dataclasses.replace(seed_evaluation, design=None, skipped=skipped))
    assert synthetic.skipped["design"] == reason
