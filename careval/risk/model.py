"""Emergency-admission risk models with a scikit-learn interface, and temporal validation."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import careval
from careval.cohort.eligibility import EligibilitySettings
from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.features.dates import months_before
from careval.features.index_date import (
    FeatureSettings,
    features_at,
    outcome_12m,
)
from careval.risk.metrics import summarise_score

ModelKind = Literal["logistic", "lightgbm"]
MODEL_KINDS: tuple[str, ...] = ("logistic", "lightgbm")
ID_COLUMNS = ("person_id", "practice_code", "area", "mdg", "eligible")
OUTCOME = "emergency_12m"
MODEL_FILE = "model.joblib"  # the fitted RiskModel (joblib pickle: load only files you trust)
META_FILE = "model.json"  # what the model is, readable without unpickling anything
BASELINE = "(baseline)"
# Stand-in for a measurement not taken in the window (its "_recorded" indicator carries the
# difference): typical healthy values, so a linear term reads sensibly.
UNRECORDED_VALUE = {
    "hba1c": 40.0,
    "total_cholesterol": 5.0,
    "sbp": 130.0,
    "dbp": 80.0,
    "six_cit": 0.0,
}  # column of :meth:`RiskModel.contributions` that is not a feature
# An IMD decile not known (null in persons.imd_decile): the middle of deciles 1-10, with the
# indicator IMD_RECORDED (1 known, 0 not). The indicator is an input only where some decile is
# unknown, so a model of complete data has exactly the inputs (and results) it always had.
IMD_UNKNOWN_VALUE = 5.5
IMD_RECORDED = "imd_decile_recorded"
# Inputs design_matrix adds only when the data need them, with the value they take otherwise.
OPTIONAL_INPUTS = {IMD_RECORDED: 1.0}


def _lightgbm() -> ModuleType:
    """Import LightGBM with passive OpenMP waiting.

    With the default active waiting, ``n_jobs=2`` on a machine whose cores are also busy with
    other work spins instead of sleeping and fitted about 10 times slower than one thread
    (measured: 28-44 s against 3 s on 100,000 people). The setting must be in the environment
    before the OpenMP runtime starts, that is, before LightGBM is first imported; a value the
    user set is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import lightgbm

    return lightgbm


def risk_frame(
    ds: Dataset, index_date: dt.date, settings: FeatureSettings | None = None
) -> pd.DataFrame:
    """Features at ``index_date`` with the 12-month outcome (0 for no emergency admission)."""
    f = features_at(ds, index_date, settings)
    y = outcome_12m(ds, index_date)
    # Through Arrow: Ibis's own to_pandas converts every column holding a null value by way
    # of Python lists (measurements and MDG are mostly null), which cost half a minute at 2M.
    joined = f.left_join(y, "person_id").drop("person_id_right").order_by("person_id")
    df = joined.to_pyarrow().to_pandas(split_blocks=True, self_destruct=True)
    df[OUTCOME] = df[OUTCOME].fillna(0).astype("int64")
    return df


def follow_up_end(index_date: dt.date) -> dt.date:
    """First day after the 12-month outcome period of ``index_date`` (as :func:`outcome_12m`)."""
    return months_before(index_date, -12)


def require_follow_up(window: tuple[dt.date, dt.date], index_date: dt.date, what: str) -> None:
    """Refuse an index date whose 12 months of outcome the data do not cover.

    Parameters
    ----------
    window
        First and last admission date of the data (:func:`careval.cohort.summary.data_window`).
    index_date
        The index date.
    what
        How the date was given, for the message (``"--index-date"``).

    Raises
    ------
    ConfigError
        When the date is before the data start or its follow-up runs past their end.
    """
    end = follow_up_end(index_date)
    if index_date < window[0] or end > window[1] + dt.timedelta(days=1):
        raise ConfigError(
            f"{what} {index_date}: the data ({window[0]} to {window[1]}) do not cover the 12 "
            f"months of follow-up after it (to {end - dt.timedelta(days=1)}); choose a date "
            f"between {window[0]} and {months_before(window[1] + dt.timedelta(days=1), 12)}"
        )


def history_warning(
    window: tuple[dt.date, dt.date], index_date: dt.date, settings: FeatureSettings
) -> str | None:
    """A warning when the data start less than the longest history window before the date."""
    start = months_before(index_date, max(settings.windows))
    if start < window[0]:
        return (
            f"the data start on {window[0]}, less than {max(settings.windows)} months before "
            f"{index_date}: the longest history windows are cut short"
        )
    return None


def design_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Model inputs: counts and costs on log(1 + x), months since admission capped at 25.

    Each latest measurement becomes its value (a typical one when not recorded) and an
    indicator of being recorded; an unknown IMD decile likewise (:func:`fill_unknown_imd`), its
    indicator added only where some decile is unknown.
    """
    cols = [c for c in df.columns if c not in (*ID_COLUMNS, OUTCOME)]
    # One C-ordered float block, whatever the frame's layout: the fits' floating-point sums
    # then run in the same order on every call, so the same data give the same model bit for bit.
    x = pd.DataFrame(
        np.ascontiguousarray(df[cols].to_numpy(dtype=float)), columns=cols, index=df.index
    )
    for c in cols:
        if c[-1] == "m" and c[-2].isdigit():
            x[c] = np.log1p(x[c].clip(lower=0))
    x["months_since_emergency"] = x["months_since_emergency"].clip(upper=25)
    x["age_squared"] = (x["age"] / 10.0) ** 2
    for c in cols:  # latest measurements: whether recorded, and the value (a fixed one if not)
        if c.startswith("latest_"):
            recorded = x[c].notna()
            x[f"{c}_recorded"] = recorded.astype(float)
            x[c] = x[c].where(recorded, UNRECORDED_VALUE.get(c[len("latest_") :], 0.0))
    return fill_unknown_imd(x)


def fill_unknown_imd(x: pd.DataFrame) -> pd.DataFrame:
    """Unknown IMD deciles as :data:`IMD_UNKNOWN_VALUE` plus the indicator :data:`IMD_RECORDED`.

    Parameters
    ----------
    x
        A frame with an ``imd_decile`` column (NaN where not known); changed in place.

    Returns
    -------
    pandas.DataFrame
        ``x``: unchanged when every decile is known (no indicator column is added, so a model of
        complete data is the one it always was); otherwise with the indicator appended last
        (1 known, 0 not) and the unknown deciles at the middle value.
    """
    if "imd_decile" in x.columns and x["imd_decile"].isna().any():
        known = x["imd_decile"].notna()
        x[IMD_RECORDED] = known.astype(float)
        x["imd_decile"] = x["imd_decile"].where(known, IMD_UNKNOWN_VALUE)
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
            # Newton's method to a tight tolerance: the optimum itself, the same on every run.
            # (L-BFGS at scikit-learn's default tolerance stopped short of it, at a point that
            # moved in the 6th decimal with library load order; on 12,000 people its
            # coefficients of correlated features were up to 0.01 from the optimum.)
            solver = LogisticRegression(
                solver="newton-cholesky", tol=1e-10, max_iter=100, C=self.params.get("C", 1.0)
            )
            est = make_pipeline(StandardScaler(), solver)
        else:
            lgb = _lightgbm()
            est = lgb.LGBMClassifier(
                n_estimators=self.params.get("n_estimators", 300),
                learning_rate=self.params.get("learning_rate", 0.05),
                num_leaves=self.params.get("num_leaves", 31),
                min_child_samples=self.params.get("min_child_samples", 100),
                random_state=self.random_state,
                verbose=-1,
                n_jobs=self.params.get("n_jobs", 2),
                deterministic=True,  # the same model from the same data on every run
                force_row_wise=True,
            )
        self.estimator_ = est.fit(x, np.asarray(y))
        return self

    def inputs(self, x: pd.DataFrame) -> pd.DataFrame:
        """The model's inputs, in model order, of a design matrix (:func:`design_matrix`).

        An optional input (:data:`OPTIONAL_INPUTS`) the model was fitted with and ``x`` lacks
        takes its value for complete data: a matrix without :data:`IMD_RECORDED` is of people
        whose IMD deciles are all known. Any other input missing raises ``KeyError``.
        """
        absent = [c for c in self.features_ if c not in x.columns]
        if absent and all(c in OPTIONAL_INPUTS for c in absent):
            x = x.assign(**{c: OPTIONAL_INPUTS[c] for c in absent})
        return x[self.features_]

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        """Probabilities of (no admission, admission), like scikit-learn.

        For the logistic model the linear predictor is summed here, input by input in model
        order (:meth:`linear_predictor`), rather than by scikit-learn's BLAS matrix-vector
        product: OpenBLAS sums a row in an order that depends on where the row falls in its
        blocks and threads, so the same person could score 1 ulp apart in two frames (seen:
        ``careval risk score`` against the same model in memory). Here a person's score
        depends on their inputs only.
        """
        if self.kind != "logistic":
            return np.asarray(self.estimator_.predict_proba(self.inputs(x)))
        p = expit(self.linear_predictor(x))
        return np.column_stack([1 - p, p])

    def linear_predictor(self, x: pd.DataFrame) -> np.ndarray:
        """The logistic model's log-odds: intercept + sum of coefficient x standardised input.

        Parameters
        ----------
        x
            Design matrix (:func:`design_matrix`).

        Returns
        -------
        numpy.ndarray
            One value per row, summed elementwise in model order (no BLAS), so that it does
            not depend on the frame's layout, length or the BLAS threads.
        """
        if self.kind != "logistic":
            raise ConfigError("the linear predictor is that of the logistic model")
        scaler, lr = self.estimator_[0], self.estimator_[-1]
        z = (self.inputs(x).to_numpy(dtype=float) - scaler.mean_) / scaler.scale_
        eta = np.zeros(len(z))
        for j, coef in enumerate(lr.coef_[0]):
            eta += z[:, j] * coef
        return eta + lr.intercept_[0]

    def contributions(self, x: pd.DataFrame) -> pd.DataFrame:
        """Each input's additive contribution to each person's score on the log-odds scale.

        Logistic: coefficient x standardised value (``(x - mean) / sd`` with the training mean
        and SD of the scaler). LightGBM: its SHAP values (``pred_contrib=True``). Each row plus
        the column :data:`BASELINE` (the intercept; the expected raw score for LightGBM) sums
        to the logit of :meth:`predict_proba`'s admission probability.

        Parameters
        ----------
        x
            Design matrix (:func:`design_matrix`).

        Returns
        -------
        pandas.DataFrame
            One column per input in model order, then :data:`BASELINE`; ``x``'s index.
        """
        xs = self.inputs(x)
        if self.kind == "logistic":
            scaler, lr = self.estimator_[0], self.estimator_[-1]
            z = (xs.to_numpy(dtype=float) - scaler.mean_) / scaler.scale_
            values = np.column_stack([z * lr.coef_[0], np.full(len(xs), lr.intercept_[0])])
        else:
            values = np.asarray(self.estimator_.predict(xs, pred_contrib=True), dtype=float)
        return pd.DataFrame(values, columns=[*self.features_, BASELINE], index=x.index)

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


def fit_validate(
    train: pd.DataFrame, valid: pd.DataFrame, kind: ModelKind = "logistic"
) -> tuple[RiskModel, pd.DataFrame, dict[str, Any]]:
    """Fit on one risk frame and score another (:func:`risk_frame`): model, scored copy, figures.

    The scored copy of ``valid`` has a ``risk`` column; the figures are :func:`summarise_score`'s.
    """
    model = RiskModel(kind).fit(design_matrix(train), train[OUTCOME].to_numpy())
    valid = valid.copy()
    valid["risk"] = model.predict_proba(design_matrix(valid))[:, 1]
    figures = summarise_score(valid[OUTCOME].to_numpy(), valid["risk"].to_numpy())
    return model, valid, figures


def temporal_validation(
    ds: Dataset, train_date: dt.date, validate_date: dt.date, kind: ModelKind = "logistic"
) -> tuple[RiskModel, pd.DataFrame, dict]:
    """Train at one index date, validate at a later one; returns model, scored frame, figures."""
    if validate_date <= train_date:
        raise ConfigError("the validation date must come after the training date")
    return fit_validate(risk_frame(ds, train_date), risk_frame(ds, validate_date), kind)


# --- model files -------------------------------------------------------------------------------


def settings_to_dict(settings: FeatureSettings) -> dict[str, Any]:
    """Feature definitions as JSON-ready values (windows, conditions, eligibility)."""
    return settings.to_dict()


def settings_from_dict(d: dict[str, Any]) -> FeatureSettings:
    """The inverse of :func:`settings_to_dict`.

    Reads the files of earlier versions too, whose eligibility had one ``condition`` and whose
    features flagged it (``has_<condition>``) beside ``conditions``: the condition becomes the
    last of the feature conditions, so the model's inputs are the same.
    """
    try:
        conditions = tuple(str(c) for c in d["conditions"])
        el = dict(d["eligibility"])
        if "condition" in el:  # written before eligibility took a list of conditions
            old = str(el.pop("condition"))
            el["conditions"] = [old]
            conditions += (old,) if old not in conditions else ()
        return FeatureSettings(
            windows=tuple(int(w) for w in d["windows"]),
            conditions=conditions,
            eligibility=EligibilitySettings.from_dict(el),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the model's feature definitions cannot be read ({exc})") from None


def design_columns(ds: Dataset, index_date: dt.date, settings: FeatureSettings) -> list[str]:
    """The inputs, in order, :func:`design_matrix` makes of ``features_at`` on this dataset.

    Read from the features' schema: nothing is computed.
    """
    schema = features_at(ds, index_date, settings).schema()
    empty = pd.DataFrame({name: pd.Series(dtype="float64") for name in schema.names})
    return list(design_matrix(empty).columns)


def model_metadata(
    model: RiskModel,
    index_date: dt.date,
    settings: FeatureSettings,
    train: pd.DataFrame,
    data: Path,
    synthetic: bool,
) -> dict[str, Any]:
    """What ``model.json`` says: definitions, training counts and the published coefficients."""
    y = train[OUTCOME].to_numpy()
    meta: dict[str, Any] = {
        "careval_version": careval.__version__,
        "model_kind": model.kind,
        "index_date": index_date.isoformat(),
        "outcome": "an emergency admission in the 12 months from the index date",
        "features": list(model.features_),
        "feature_settings": settings_to_dict(settings),
        "transforms": (
            "counts, costs and bed days (names ending in <n>m) on log(1 + x); "
            "months_since_emergency capped at 25 (999 = never, before the cap); "
            "age_squared = (age / 10)^2; an unknown imd_decile at 5.5 with "
            "imd_decile_recorded 0 (that input only where the training data had one)"
        ),
        "random_state": model.random_state,
        "params": model.params,
        "training": {
            "data": str(data),
            "synthetic": synthetic,
            "people": int(len(y)),
            "events": int(y.sum()),
            "outcome_prevalence": float(y.mean()) if len(y) else None,
        },
        "libraries": _library_versions(),
    }
    if model.kind == "logistic":
        scaler = model.estimator_[0]
        meta["coefficients"] = model.coefficients().to_dict(orient="records")
        meta["standardisation"] = {
            "mean": dict(zip(model.features_, map(float, scaler.mean_), strict=True)),
            "sd": dict(zip(model.features_, map(float, scaler.scale_), strict=True)),
        }
    else:
        gain = model.estimator_.booster_.feature_importance(importance_type="gain")
        meta["feature_importance_gain"] = dict(zip(model.features_, map(float, gain), strict=True))
    return meta


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("scikit-learn", "lightgbm", "joblib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = "absent"
    return out


def save_model(model: RiskModel, meta: dict[str, Any], directory: Path) -> None:
    """Write ``model.joblib`` and ``model.json`` into an existing (temporary) directory."""
    import joblib

    joblib.dump(model, directory / MODEL_FILE)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def read_metadata(directory: Path) -> dict[str, Any]:
    """``model.json`` of a model directory, checked enough to plan a command on it.

    Raises
    ------
    ConfigError
        When the directory, either file or a needed entry is missing or unreadable.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(
            f"--model {directory}: no such model directory (make one with careval risk train)"
        )
    for name in (META_FILE, MODEL_FILE):
        if not (directory / name).is_file():
            raise ConfigError(f"--model {directory}: {name} is missing; not a model directory")
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        dt.date.fromisoformat(meta["index_date"])
        if meta["model_kind"] not in MODEL_KINDS or not isinstance(meta["features"], list):
            raise ValueError("unknown model kind or no feature list")
        settings_from_dict(meta["feature_settings"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"--model {directory}: {META_FILE} is not valid ({exc})") from None
    return dict(meta)


def load_model(directory: Path, ds: Dataset | None = None) -> tuple[RiskModel, dict[str, Any]]:
    """A fitted model and its metadata, refused when it no longer fits the features code.

    Parameters
    ----------
    directory
        A directory written by ``careval risk train``. ``model.joblib`` is a pickle: load only
        model files you trust.
    ds
        When given, the model's inputs must be exactly those ``features_at`` now makes of this
        dataset with the model's feature definitions (same names, same order).

    Returns
    -------
    tuple of RiskModel and dict
        The model and ``model.json``.

    Raises
    ------
    ConfigError
        When the files are missing, unreadable, disagree with each other, or the inputs differ.
    """
    import joblib

    meta = read_metadata(directory)
    if meta["model_kind"] == "lightgbm":
        _lightgbm()  # before unpickling imports it: passive OpenMP waiting
    try:
        model = joblib.load(Path(directory) / MODEL_FILE)
    except Exception as exc:  # unpickling raises many types
        raise ConfigError(f"--model {directory}: {MODEL_FILE} cannot be read ({exc})") from None
    if not isinstance(model, RiskModel) or not hasattr(model, "estimator_"):
        raise ConfigError(f"--model {directory}: {MODEL_FILE} does not hold a fitted RiskModel")
    if model.kind != meta["model_kind"] or list(model.features_) != list(meta["features"]):
        raise ConfigError(f"--model {directory}: {MODEL_FILE} and {META_FILE} disagree")
    if ds is not None:
        settings = settings_from_dict(meta["feature_settings"])
        now = design_columns(ds, dt.date.fromisoformat(meta["index_date"]), settings)
        # An optional input is in the model when its training data needed it (unknown IMD).
        wanted = [c for c in model.features_ if c not in OPTIONAL_INPUTS]
        if now != wanted:
            missing = [c for c in wanted if c not in now]
            new = [c for c in now if c not in wanted]
            detail = (
                f"missing now: {', '.join(missing) or 'none'}; new: {', '.join(new) or 'none'}"
                if missing or new
                else "same names in another order"
            )
            raise ConfigError(
                f"--model {directory}: the model's inputs differ from the features careval "
                f"{careval.__version__} computes on this dataset ({detail}); retrain it with "
                "careval risk train"
            )
    return model, meta
