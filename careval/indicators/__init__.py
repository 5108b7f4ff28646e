"""Clinical indicators of the seed evaluation: diabetes control (Figure 3) and dementia (Figure 4).

Three analyses, one entry point (:func:`evaluate_indicators`, in :mod:`.evaluate`):

Diabetes control by month and area (Figure 3)
    On the first day of each month, everyone registered, alive and with diabetes coded on or
    before that day. For each indicator (HbA1c <= 59 mmol/mol, total cholesterol <= 5 mmol/l,
    blood pressure <= 140/80 mmHg: systolic <= 140 *and* diastolic <= 80; all settings) the
    person's latest reading in the previous 12 months (``[day - 12 months, day)``) decides
    whether they are in control; people with no reading in those months count as not in control,
    and the share with a reading is reported too. Shares are by area (the programme's areas,
    ``programme_areas``, pooled into one series; every other area of the data on its own) and
    for the comparison areas (``comparison_areas``, default every other area) pooled, with a
    rolling average over 3 months (the mean of the monthly shares). The series
    starts 12 months into the data window so the look-back lies inside it. Several readings of a
    measure on one day are averaged. Blood pressure takes the latest systolic and the latest
    diastolic value in the look-back (one reading when both are recorded together; the synthetic
    data date them on different days of the review month).

Before and after a care plan
    People with diabetes (coded on or before their first care plan) who were alive at least 3
    months after the plan, which itself falls at least 3 months before the end of the window.
    Each person's latest value in the 12 months before the plan (plan day included) is paired
    with their latest value from 3 to 15 months after it (cut at the end of the window). Means
    are compared with a paired t-test (``scipy.stats.ttest_rel``) and the share in control with
    McNemar's test (``statsmodels``; exact binomial when the discordant pairs are fewer than
    ``mcnemar_exact_below``, else chi-square with continuity correction). The seed evaluation's
    unpaired comparison (everyone with a value before against everyone with a value after:
    two-proportion z-test, Welch t-test for means) is reported alongside, labelled. A before-after
    change also holds any secular trend, so the same change is measured in a comparison group
    (people with diabetes registered in the comparison areas, each given an index date drawn at
    random from the care-planned's plan dates) and the difference in mean change is tested
    (Welch t-test on the person-level changes).

Dementia (Figure 4)
    New dementia diagnoses (first coded in the month, GP or hospital record) among people aged
    75+ registered and alive on the first day of the month, per 1,000 of them, by area; 6CIT tests
    of those people; and care plans for people with dementia. The ``care_plans`` table records no
    content or condition, so "care plans mentioning dementia" is approximated by plans made for
    people with a dementia diagnosis recorded on or before the plan date. An interrupted time
    series on the pilot's monthly rate (and on the pooled comparators' as a control series, and
    on the pilot's minus the comparators' as a controlled ITS) fits
    ``rate = b0 + b1 t + b2 post + b3 (t - t0) post`` by OLS with Newey-West (Bartlett kernel)
    HAC standard errors, the lag a setting (default ``floor(4 (n / 100) ** (2 / 9))``), and the
    same terms in a Poisson GLM of the counts with the registered 75+ as exposure (HAC errors,
    same lag): level change ``b2`` at the programme start ``t0`` and slope change ``b3`` a month.
    The synthetic dementia onsets rise through the window, so the comparators' series matters:
    a single series' level change mixes the programme with any bend in the secular trend.

The tables are read through Ibis (filters and joins, portable across engines); the month-by-month
look-ups run once over all months in numpy on the extracted rows (a few million at 1.1M people)
instead of one query per month.

The modules follow the steps: :mod:`.settings` (thresholds, windows, the constants),
:mod:`.readings` (dates as day numbers, person-months and the latest readings),
:mod:`.diabetes` (monthly shares, Figure 3), :mod:`.before_after` (the pairs and the
before/after table) with :mod:`.significance` (its tests), :mod:`.dementia` (Figure 4's
monthly counts), :mod:`.its` (the interrupted time series), :mod:`.result`
(:class:`IndicatorsResult`) and :mod:`.evaluate` (the orchestration).
"""

from careval.indicators.evaluate import evaluate_indicators
from careval.indicators.its import difference_name, fit_its, its_design, newey_west_lags
from careval.indicators.result import IndicatorsResult
from careval.indicators.settings import COMPARATORS, INDICATORS, IndicatorSettings
from careval.indicators.significance import mcnemar_test

__all__ = [
    "COMPARATORS",
    "INDICATORS",
    "IndicatorSettings",
    "IndicatorsResult",
    "difference_name",
    "evaluate_indicators",
    "fit_its",
    "its_design",
    "mcnemar_test",
    "newey_west_lags",
]
