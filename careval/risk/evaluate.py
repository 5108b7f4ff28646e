"""The risk analysis of a run: temporal validation, the oracle, targeting of care plans."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq

from careval.data.access import Dataset
from careval.report.render import Section, svg, table_html
from careval.risk.metrics import auc_delong
from careval.risk.model import OUTCOME, RiskModel, temporal_validation


@dataclass(frozen=True)
class RiskSettings:
    """Index dates of training and validation (12 months apart by default)."""

    train_date: dt.date = dt.date(2011, 4, 1)
    validate_date: dt.date = dt.date(2012, 4, 1)


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

    def to_dict(self) -> dict[str, Any]:
        """The ``risk`` block of ``results.json``."""
        return {
            "train_date": self.settings.train_date.isoformat(),
            "validate_date": self.settings.validate_date.isoformat(),
            **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.figures.items()},
            "targeting": _records(self.targeting),
            "coefficients": _records(self.coefficients),
            "warnings": self.warnings,
        }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
        for r in df.to_dict(orient="records")
    ]


def evaluate_risk(ds: Dataset, settings: RiskSettings | None = None) -> RiskResult:
    """Train at one date, validate 12 months later; compare with the truth when there is one."""
    st = settings or RiskSettings()
    model, valid, fig = temporal_validation(ds, st.train_date, st.validate_date)
    warnings = []
    truth_file = Path(ds.path) / "true_risk.parquet"
    if truth_file.exists():
        truth = pq.read_table(truth_file).to_pandas()
        truth = truth[pd.to_datetime(truth.index_date).dt.date == st.validate_date]
        both = valid.merge(truth[["person_id", "p_emergency_12m"]], on="person_id")
        if len(both) == len(valid) and len(both):
            oracle = auc_delong(both[OUTCOME].to_numpy(), both.p_emergency_12m.to_numpy())
            fig["oracle_auc"] = oracle.auc
            fig["auc_ratio_to_oracle"] = fig["auc"] / oracle.auc
        else:
            warnings.append("true risk does not cover everyone scored; oracle AUC not shown")
    deciles = valid.assign(decile=pd.qcut(valid.risk.rank(method="first"), 10, labels=False) + 1)
    cal = (
        deciles.groupby("decile")
        .agg(predicted=("risk", "mean"), observed=(OUTCOME, "mean"), people=(OUTCOME, "size"))
        .reset_index()
    )
    targeting = _targeting(ds, valid, st.validate_date)
    return RiskResult(st, fig, cal, model.coefficients(), targeting, warnings, model)


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
    parts += [
        "<h3>Published coefficients (standardised inputs)</h3>",
        table_html(result.coefficients, {}, "risk-coefficients", ("term",)),
    ]
    return Section("risk", "Targeting and risk", "".join(parts))
