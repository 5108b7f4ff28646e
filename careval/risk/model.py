"""Emergency-admission risk models with a scikit-learn interface, and temporal validation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.features.index_date import FeatureSettings, features_at, outcome_12m
from careval.risk.metrics import summarise_score

ModelKind = Literal["logistic", "lightgbm"]
ID_COLUMNS = ("person_id", "practice_code", "area", "mdg", "eligible")
OUTCOME = "emergency_12m"


def risk_frame(
    ds: Dataset, index_date: dt.date, settings: FeatureSettings | None = None
) -> pd.DataFrame:
    """Features at ``index_date`` with the 12-month outcome (0 for no emergency admission)."""
    f = features_at(ds, index_date, settings)
    y = outcome_12m(ds, index_date)
    df = f.left_join(y, "person_id").drop("person_id_right").to_pandas()
    df[OUTCOME] = df[OUTCOME].fillna(0).astype("int64")
    return df.sort_values("person_id", kind="stable").reset_index(drop=True)


def design_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Model inputs: counts and costs on log(1 + x), months since admission capped at 25."""
    cols = [c for c in df.columns if c not in (*ID_COLUMNS, OUTCOME)]
    x = df[cols].astype(float)
    for c in cols:
        if c[-1] == "m" and c[-2].isdigit():
            x[c] = np.log1p(x[c].clip(lower=0))
    x["months_since_emergency"] = x["months_since_emergency"].clip(upper=25)
    x["age_squared"] = (x["age"] / 10.0) ** 2
    return x


@dataclass
class RiskModel:
    """A 12-month emergency-admission risk model (``fit`` / ``predict_proba``).

    ``logistic`` is transparent (standardised inputs, published coefficients); ``lightgbm`` is a
    gradient-boosted alternative. Randomness only through ``random_state``.
    """

    kind: ModelKind = "logistic"
    random_state: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("logistic", "lightgbm"):
            raise ConfigError(f"model kind must be logistic or lightgbm; got {self.kind!r}")

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> RiskModel:
        """Fit on a design matrix and 0/1 outcomes."""
        self.features_ = list(x.columns)
        if self.kind == "logistic":
            est = make_pipeline(
                StandardScaler(), LogisticRegression(max_iter=3000, C=self.params.get("C", 1.0))
            )
        else:
            import lightgbm as lgb

            est = lgb.LGBMClassifier(
                n_estimators=self.params.get("n_estimators", 300),
                learning_rate=self.params.get("learning_rate", 0.05),
                num_leaves=self.params.get("num_leaves", 31),
                min_child_samples=self.params.get("min_child_samples", 100),
                random_state=self.random_state,
                verbose=-1,
                n_jobs=2,
            )
        self.estimator_ = est.fit(x, np.asarray(y))
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        """Probabilities of (no admission, admission), like scikit-learn."""
        return np.asarray(self.estimator_.predict_proba(x[self.features_]))

    def coefficients(self) -> pd.DataFrame:
        """Logistic coefficients per standardised input (the published, transparent model)."""
        if self.kind != "logistic":
            raise ConfigError("coefficients are published for the logistic model only")
        lr = self.estimator_[-1]
        return pd.DataFrame(
            {
                "term": ["intercept", *self.features_],
                "coefficient": [float(lr.intercept_[0]), *map(float, lr.coef_[0])],
            }
        )


def temporal_validation(
    ds: Dataset, train_date: dt.date, validate_date: dt.date, kind: ModelKind = "logistic"
) -> tuple[RiskModel, pd.DataFrame, dict]:
    """Train at one index date, validate at a later one; returns model, scored frame, figures."""
    if validate_date <= train_date:
        raise ConfigError("the validation date must come after the training date")
    train = risk_frame(ds, train_date)
    valid = risk_frame(ds, validate_date)
    model = RiskModel(kind).fit(design_matrix(train), train[OUTCOME].to_numpy())
    valid["risk"] = model.predict_proba(design_matrix(valid))[:, 1]
    figures = summarise_score(valid[OUTCOME].to_numpy(), valid["risk"].to_numpy())
    return model, valid, figures
