"""The risk analysis of a run: temporal validation, the oracle, targeting of care plans."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from careval.cohort.eligibility import EligibilitySettings
from careval.data.access import Dataset
from careval.data.truth import true_risk_file
from careval.errors import CarevalError, ConfigError
from careval.features.index_date import FeatureSettings
from careval.risk.metrics import auc_delong, auc_difference_delong, subgroup_table
from careval.risk.model import OUTCOME, RiskModel, fit_validate, risk_frame
from careval.settings import Settings

# Age bands of the subgroup table: label, lowest age, first age above the band (None: open).
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("under 65", 0, 65),
    ("65-74", 65, 75),
    ("75-84", 75, 85),
    ("85+", 85, None),
)


@dataclass(frozen=True)
class RiskSettings(Settings):
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
    disclosure_control: bool = False  # set on the published copy (careval.report.publish.risk)

    def tidy(self) -> pd.DataFrame:
        """The published logistic model: one row per ``term`` (the intercept, then each
        standardised input) with its ``coefficient`` on the log-odds scale."""
        return self.coefficients.reset_index(drop=True)

    def summary(self) -> str:
        """AUC with its CI, calibration and Brier score at validation, and the oracle's AUC."""
        f, st = self.figures, self.settings
        lines = [
            f"logistic model trained on {st.train_date}, validated on {st.validate_date}",
            f"AUC {f['auc']:.3f} (95% CI {f['auc_ci_low']:.3f} to {f['auc_ci_high']:.3f}), "
            f"calibration slope {f['calibration_slope']:.2f}, Brier score {f['brier']:.4f}",
        ]
        if "oracle_auc" in f:
            lines.append(
                f"oracle AUC {f['oracle_auc']:.3f}: the model reaches "
                f"{100 * f['auc_ratio_to_oracle']:.0f}% of it"
            )
        if self.lightgbm:
            lines.append(f"LightGBM AUC {self.lightgbm['auc']:.3f}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The ``risk`` block of ``results.json``."""
        out = {
            "train_date": self.settings.train_date.isoformat(),
            "validate_date": self.settings.validate_date.isoformat(),
            **{k: rounded(v) for k, v in self.figures.items()},
            "targeting": records(self.targeting),
            "coefficients": records(self.coefficients),
            "by_subgroup": records(self.by_subgroup),
        }
        if self.lightgbm:
            out["lightgbm"] = rounded(self.lightgbm)
        out["warnings"] = self.warnings
        return out


def rounded(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, dict):
        return {k: rounded(x) for k, x in v.items()}
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if _missing(v) else rounded(v)) for k, v in r.items()}
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
    truth_file = true_risk_file(ds)
    if truth_file is None:
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


def evaluate_risk(
    ds: Dataset,
    settings: RiskSettings | None = None,
    eligibility: EligibilitySettings | None = None,
) -> RiskResult:
    """Train at one date, validate 12 months later; compare with the truth when there is one.

    ``eligibility`` (default: the programme's) decides the ``eligible`` column of the features
    and so the "eligible" row of the targeting table; it is not a model input.

    The logistic model is the published one. Its validation figures are also given by age
    band and sex (:func:`subgroups`, :func:`careval.risk.metrics.subgroup_table`), and, unless
    ``settings.compare_lightgbm`` is off, LightGBM is fitted on the same training frame and
    validated on the same people for comparison (``lightgbm``: its figures and the paired DeLong
    difference of its AUC from the logistic one).
    """
    st = settings or RiskSettings()
    if st.validate_date <= st.train_date:
        raise ConfigError("the validation date must come after the training date")
    features = FeatureSettings(eligibility=eligibility or EligibilitySettings())
    train = risk_frame(ds, st.train_date, features)
    valid_frame = risk_frame(ds, st.validate_date, features)
    _two_classes(train, st.train_date, "training")
    _two_classes(valid_frame, st.validate_date, "validation")
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
    )


def _two_classes(frame: pd.DataFrame, date: dt.date, role: str) -> None:
    """Refuse a cohort the model cannot be fitted or judged on: nobody, or everyone or nobody
    with the outcome (data with no emergency admissions, such as OMOP's Eunomia sample)."""
    n = len(frame)
    events = int(frame[OUTCOME].sum()) if n else 0
    if not n:
        raise CarevalError(f"nobody is registered and alive on the {role} date {date}")
    if events in (0, n):
        had = "nobody" if events == 0 else "everyone"
        raise CarevalError(
            f"{had} in the {role} cohort ({date}) had an emergency admission in the 12 months "
            "after it: the model needs people with and without one (are emergency admissions, "
            "admission methods 21-25, 2A-2D, 28, in the data?)"
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
