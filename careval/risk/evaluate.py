"""The risk analysis of a run: temporal validation, the oracle, targeting of care plans."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.report.page import Section, svg, table_html
from careval.report.publish.rules import SUPPRESSED, protect_table
from careval.risk.metrics import (
    SUBGROUP_SHARES,
    auc_delong,
    auc_difference_delong,
    share_tag,
    subgroup_table,
)
from careval.risk.model import OUTCOME, RiskModel, fit_validate, risk_frame

# Age bands of the subgroup table: label, lowest age, first age above the band (None: open).
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("under 65", 0, 65),
    ("65-74", 65, 75),
    ("75-84", 75, 85),
    ("85+", 85, None),
)


@dataclass(frozen=True)
class RiskSettings:
    """Index dates of training and validation (12 months apart by default).

    ``compare_lightgbm`` also fits the gradient-boosted model on the same training frame and
    reports it beside the logistic one, which stays the published model.
    """

    train_date: dt.date = dt.date(2011, 4, 1)
    validate_date: dt.date = dt.date(2012, 4, 1)
    compare_lightgbm: bool = True


@dataclass
class RiskResult:
    """Figures, calibration by decile, coefficients and targeting of one risk analysis."""

    settings: RiskSettings
    figures: dict[str, Any]
    calibration_deciles: pd.DataFrame
    coefficients: pd.DataFrame
    targeting: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    model: RiskModel | None = None  # the fitted model, for scoring at other dates
    by_subgroup: pd.DataFrame = field(default_factory=pd.DataFrame)  # see subgroup_table
    lightgbm: dict[str, Any] = field(default_factory=dict)  # the comparison; empty when not run
    disclosure_control: bool = False  # protect the subgroup counts when published (real data)

    def published_subgroups(self) -> pd.DataFrame:
        """The subgroup table as published (see :func:`protect_subgroups`)."""
        return protect_subgroups(self.by_subgroup, self.disclosure_control)

    def to_dict(self) -> dict[str, Any]:
        """The ``risk`` block of ``results.json``."""
        out = {
            "train_date": self.settings.train_date.isoformat(),
            "validate_date": self.settings.validate_date.isoformat(),
            **{k: _rounded(v) for k, v in self.figures.items()},
            "targeting": _records(self.targeting),
            "coefficients": _records(self.coefficients),
            "by_subgroup": _records(self.published_subgroups()),
        }
        if self.lightgbm:
            out["lightgbm"] = _rounded(self.lightgbm)
        out["warnings"] = self.warnings
        return out


def _rounded(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if _missing(v) else _rounded(v)) for k, v in r.items()}
        for r in df.to_dict(orient="records")
    ]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def subgroups(frame: pd.DataFrame) -> list[tuple[str, str, np.ndarray]]:
    """Everyone, then each age band (:data:`AGE_BANDS`), then each sex, as masks of ``frame``.

    ``frame`` has the ``age`` (whole years on the index date) and ``female`` (0/1) features.
    """
    age = frame["age"].to_numpy()
    female = frame["female"].to_numpy()
    out = [("all", "everyone", np.ones(len(frame), dtype=bool))]
    for label, lo, hi in AGE_BANDS:
        out.append(("age", label, (age >= lo) & (age < hi if hi is not None else True)))
    out += [("sex", "female", female == 1), ("sex", "male", female == 0)]
    return out


SUBGROUP_RATES = ("auc", "auc_ci_low", "auc_ci_high", "calibration_slope", "brier")


def protect_subgroups(df: pd.DataFrame, enabled: bool) -> pd.DataFrame:
    """The subgroup table with disclosure control (unchanged when not ``enabled``).

    Rules 1-3 of :mod:`careval.report.publish.rules`: people, events and flagged counts are
    suppressed (1-7) or rounded to 5, with secondary suppression of each breakdown (age bands,
    sexes) against the ``everyone`` row; AUC, calibration and Brier of fewer than 8 people are
    withheld, and so are a PPV whose flagged count and a sensitivity whose event count is
    suppressed (each would give its small count away).
    """
    if not enabled or df.empty:
        return df
    flagged = [f"flagged_top_{share_tag(s)}pct" for s in SUBGROUP_SHARES]
    counts = ["people", "events", *flagged]
    rates: dict[str, list[str]] = {}
    for s in SUBGROUP_SHARES:
        tag = share_tag(s)
        rates[f"ppv_top_{tag}pct"] = [f"flagged_top_{tag}pct"]
        rates[f"sensitivity_top_{tag}pct"] = ["events"]
    published = df
    for dim in ("age", "sex"):
        published = _subgroup_margin(published, df, counts, dim)
    return protect_table(
        df.assign(**{c: published[c] for c in counts}),
        [],
        rates=[*SUBGROUP_RATES, "calibration_intercept", *rates],
        denominator="people",
        rate_counts=rates,
    )


def _subgroup_margin(
    published: pd.DataFrame, raw: pd.DataFrame, counts: list[str], dim: str
) -> pd.DataFrame:
    """Secondary suppression of one breakdown (age or sex) against the ``all`` row."""
    part = raw[raw["dimension"].isin(["all", dim])]
    done = protect_table(part, counts, group_margin=("dimension", [], [dim], "all"))
    out = published.copy().astype({c: object for c in counts})
    for c in counts:
        for i in done.index:
            if out.at[i, c] != SUPPRESSED:
                out.at[i, c] = done.at[i, c]
    return out


def oracle_figures(
    ds: Dataset, valid: pd.DataFrame, date: dt.date, model_auc: float
) -> tuple[dict, list[str]]:
    """The oracle AUC from ``true_risk.parquet`` (synthetic data) and the model's share of it.

    Parameters
    ----------
    ds
        The dataset; nothing is returned when it has no ``true_risk.parquet``.
    valid
        The scored frame (``person_id``, the outcome and ``risk``).
    date
        Its index date.
    model_auc
        The model's AUC on ``valid`` (already computed by the caller).

    Returns
    -------
    tuple of dict and list of str
        ``oracle_auc`` and ``auc_ratio_to_oracle`` (or nothing), and any warning.
    """
    truth_file = Path(ds.path) / "true_risk.parquet"
    if not truth_file.exists():
        return {}, []
    truth = pq.read_table(
        truth_file,
        columns=["person_id", "index_date", "p_emergency_12m"],
        filters=[("index_date", "=", date)],
    ).to_pandas()
    both = valid.merge(truth[["person_id", "p_emergency_12m"]], on="person_id")
    if len(both) != len(valid) or not len(both):
        return {}, [f"true risk does not cover everyone scored on {date}; oracle AUC not shown"]
    oracle = auc_delong(both[OUTCOME].to_numpy(), both.p_emergency_12m.to_numpy())
    return {"oracle_auc": oracle.auc, "auc_ratio_to_oracle": model_auc / oracle.auc}, []


def calibration_deciles(valid: pd.DataFrame) -> pd.DataFrame:
    """Mean predicted risk and observed share admitted by tenth of risk (1 lowest)."""
    deciles = valid.assign(decile=pd.qcut(valid.risk.rank(method="first"), 10, labels=False) + 1)
    return (
        deciles.groupby("decile")
        .agg(predicted=("risk", "mean"), observed=(OUTCOME, "mean"), people=(OUTCOME, "size"))
        .reset_index()
    )


def evaluate_risk(ds: Dataset, settings: RiskSettings | None = None) -> RiskResult:
    """Train at one date, validate 12 months later; compare with the truth when there is one.

    The logistic model is the published one. Its validation figures are also given by age
    band and sex (:func:`subgroups`, :func:`careval.risk.metrics.subgroup_table`), and, unless
    ``settings.compare_lightgbm`` is off, LightGBM is fitted on the same training frame and
    validated on the same people for comparison (``lightgbm``: its figures and the paired DeLong
    difference of its AUC from the logistic one).
    """
    st = settings or RiskSettings()
    if st.validate_date <= st.train_date:
        raise ConfigError("the validation date must come after the training date")
    train = risk_frame(ds, st.train_date)
    valid_frame = risk_frame(ds, st.validate_date)
    model, valid, fig = fit_validate(train, valid_frame, "logistic")
    extra, warnings = oracle_figures(ds, valid, st.validate_date, fig["auc"])
    fig.update(extra)
    y, p = valid[OUTCOME].to_numpy(), valid["risk"].to_numpy()
    by_subgroup = subgroup_table(y, p, subgroups(valid))
    comparison: dict[str, Any] = {}
    if st.compare_lightgbm:
        try:
            gbm, gbm_valid, gbm_fig = fit_validate(train, valid_frame, "lightgbm")
        except Exception as exc:  # the comparison must never cost the published model
            warnings.append(f"LightGBM comparison not run: {type(exc).__name__}: {exc}")
        else:
            diff = auc_difference_delong(y, p, gbm_valid["risk"].to_numpy())
            comparison = {k: v for k, v in gbm_fig.items() if k not in ("n", "events")}
            comparison.update(
                auc_difference=diff.difference,
                auc_difference_ci_low=diff.ci_low,
                auc_difference_ci_high=diff.ci_high,
                auc_difference_p=diff.p_value,
                params={
                    "n_estimators": gbm.estimator_.n_estimators,
                    "learning_rate": gbm.estimator_.learning_rate,
                    "num_leaves": gbm.estimator_.num_leaves,
                    "min_child_samples": gbm.estimator_.min_child_samples,
                },
            )
    targeting = _targeting(ds, valid, st.validate_date)
    return RiskResult(
        st,
        fig,
        calibration_deciles(valid),
        model.coefficients(),
        targeting,
        warnings,
        model,
        by_subgroup=by_subgroup,
        lightgbm=comparison,
        disclosure_control=not ds.synthetic,
    )


def _targeting(ds: Dataset, valid: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    """Prior emergency use and risk tier of the care-planned, against the eligible and everyone.

    Among people scored at the validation date, those with a care plan created before it.
    """
    if not ds.has("care_plans"):
        return pd.DataFrame()
    cp = ds.table("care_plans").select("person_id", "created_date").to_pandas()
    cp = cp[pd.to_datetime(cp.created_date) < pd.Timestamp(date)]
    planned = valid.person_id.isin(set(cp.person_id))
    pct = valid.risk.rank(pct=True)
    rows = []
    for label, mask in (
        ("care-planned", planned),
        ("eligible", valid.eligible.astype(bool)),
        ("everyone", pd.Series(True, index=valid.index)),
    ):
        g = valid[mask]
        rows.append(
            {
                "group": label,
                "people": int(len(g)),
                "emergency_per_person_year_prior": float(g.emergency_admissions_12m.mean())
                if len(g)
                else None,
                "mean_risk": float(g.risk.mean()) if len(g) else None,
                "share_in_top_5pct": float((pct[mask] > 0.95).mean()) if len(g) else None,
                "share_in_top_1pct": float((pct[mask] > 0.99).mean()) if len(g) else None,
            }
        )
    return pd.DataFrame(rows)


def risk_section(result: RiskResult) -> Section:
    """The report's targeting and risk section."""
    f = result.figures
    oracle = (
        f" The best possible AUC, from the true probabilities the synthetic data were made "
        f"with, is {f['oracle_auc']:.3f}: the model reaches "
        f"{100 * f['auc_ratio_to_oracle']:.0f}% of it."
        if "oracle_auc" in f
        else ""
    )
    st = result.settings
    text = (
        f"<p>A logistic model of an emergency admission in the next 12 months, trained on "
        f"everyone registered on {st.train_date:%d %B %Y} and validated on everyone registered "
        f"on {st.validate_date:%d %B %Y} (temporal validation): AUC <b id='risk-auc'>"
        f"{f['auc']:.3f}</b> (95% CI {f['auc_ci_low']:.3f} to {f['auc_ci_high']:.3f}), "
        f"calibration slope {f['calibration_slope']:.2f}, intercept "
        f"{f['calibration_intercept']:.2f}, Brier score {f['brier']:.4f}.{html.escape(oracle)}</p>"
    )
    yield_rows = pd.DataFrame(
        [
            {
                "flagged": f"top {s}%",
                "ppv": f[f"ppv_top_{s.replace('.', '_')}pct"],
                "sensitivity": f[f"sensitivity_top_{s.replace('.', '_')}pct"],
            }
            for s in ("0.5", "1", "2", "5")
        ]
    )
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    cal = result.calibration_deciles
    top = float(max(cal.predicted.max(), cal.observed.max()) * 1.05)
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
    ax.plot(cal.predicted, cal.observed, marker="o", lw=2)
    ax.set_xlabel("predicted (decile mean)")
    ax.set_ylabel("observed share admitted")
    ax.set_title("Calibration at validation", fontsize=11, loc="left")
    parts = [
        text,
        "<figure>" + svg(fig) + "</figure>",
        "<h3>Case-finding yield</h3>",
        table_html(yield_rows, {"ppv": "PPV", "flagged": "Flagged"}, "risk-yield", ("flagged",)),
    ]
    if len(result.targeting):
        parts += [
            "<h3>Targeting: who got care plans</h3>",
            table_html(
                result.targeting,
                {"emergency_per_person_year_prior": "emergency admissions, prior 12 months"},
                "risk-targeting",
                ("group",),
            ),
            "<p class='note'>The seed evaluation found 0.44 emergency admissions a "
            "person-year among the care-planned against 0.11 in the population, where "
            "schemes elsewhere targeted rates 16 times the population's.</p>",
        ]
    parts += _subgroup_parts(result)
    parts += _comparison_parts(result)
    parts += [
        "<h3>Published coefficients (standardised inputs)</h3>",
        table_html(result.coefficients, {}, "risk-coefficients", ("term",)),
    ]
    return Section("risk", "Targeting and risk", "".join(parts))


def _ci(est: Any, lo: Any, hi: Any, digits: int = 3) -> str | None:
    if _missing(est):
        return None
    return f"{est:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def _subgroup_parts(result: RiskResult) -> list[str]:
    df = result.published_subgroups()
    if df.empty:
        return []
    names = [g if d != "age" else f"aged {g}" for d, g in zip(df.dimension, df.group, strict=True)]
    show = pd.DataFrame(
        {
            "group": names,
            "people": df.people,
            "events": df.events,
            "auc": [_ci(*r) for r in zip(df.auc, df.auc_ci_low, df.auc_ci_high, strict=True)],
            "calibration_slope": df.calibration_slope,
            "calibration_intercept": df.calibration_intercept,
            "brier": df.brier,
        }
    )
    for s in SUBGROUP_SHARES:
        tag = share_tag(s)
        show[f"flagged_top_{tag}pct"] = df[f"flagged_top_{tag}pct"]
        show[f"ppv_top_{tag}pct"] = df[f"ppv_top_{tag}pct"]
        show[f"sensitivity_top_{tag}pct"] = df[f"sensitivity_top_{tag}pct"]
    labels = {"auc": "AUC (95% CI)", "events": "admitted in 12 months"}
    for s in SUBGROUP_SHARES:
        tag, pct = share_tag(s), f"{s * 100:g}%"
        labels[f"flagged_top_{tag}pct"] = f"in top {pct}"
        labels[f"ppv_top_{tag}pct"] = f"PPV top {pct}"
        labels[f"sensitivity_top_{tag}pct"] = f"sensitivity top {pct}"
    return [
        "<h3>By age band and sex</h3>",
        table_html(show, labels, "risk-subgroups", ("group", "auc")),
        "<p class='note'>The top 1% and 5% are of everyone scored: one list for the whole "
        "population, as the programme would use it. Within each group, <i>in top</i> counts "
        "its people on that list, PPV is the share of them admitted in the 12 months, and "
        "sensitivity the share of the group's admitted people who are on the list. AUC, "
        "calibration and Brier score are of the group alone: within a narrow age band age "
        "itself no longer separates people, so its AUC measures the rest of the model."
        + (" Counts are rounded to 5, 1 to 7 suppressed." if result.disclosure_control else "")
        + "</p>",
    ]


def _comparison_parts(result: RiskResult) -> list[str]:
    g, f = result.lightgbm, result.figures
    if not g:
        return []
    rows = []
    for name, fig in (("logistic (published)", f), ("LightGBM", g)):
        rows.append(
            {
                "model": name,
                "auc": _ci(fig["auc"], fig["auc_ci_low"], fig["auc_ci_high"]),
                "calibration_slope": fig["calibration_slope"],
                "calibration_intercept": fig["calibration_intercept"],
                "brier": fig["brier"],
                "ppv_top_1pct": fig["ppv_top_1pct"],
                "ppv_top_5pct": fig["ppv_top_5pct"],
                "sensitivity_top_5pct": fig["sensitivity_top_5pct"],
            }
        )
    labels = {
        "auc": "AUC (95% CI)",
        "ppv_top_1pct": "PPV top 1%",
        "ppv_top_5pct": "PPV top 5%",
        "sensitivity_top_5pct": "sensitivity top 5%",
    }
    text = (
        f"<p>Gradient-boosted trees (LightGBM, {g['params']['n_estimators']} trees) on the same "
        f"training people and inputs, validated on the same people: AUC difference "
        f"{g['auc_difference']:+.3f} (95% CI {g['auc_difference_ci_low']:+.3f} to "
        f"{g['auc_difference_ci_high']:+.3f}, paired DeLong p = {g['auc_difference_p']:.2g}). "
        "The logistic model stays the published one: each of its coefficients can be read, "
        "checked and explained to the people it flags.</p>"
    )
    return [
        "<h3>Logistic against gradient boosting</h3>",
        text,
        table_html(pd.DataFrame(rows), labels, "risk-models", ("model", "auc")),
    ]
