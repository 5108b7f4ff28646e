"""Matching treated to control rows of a table: the settings, the propensity score, the result.

Exact strata first, then greedy nearest neighbour on a score (:mod:`careval.impact.nearest`,
MatchIt's ``method = "nearest"``) or on the Mahalanobis distance of the covariates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from careval.compute import WARNING_FILTERS
from careval.disclosure import Note
from careval.errors import ConfigError
from careval.impact.nearest import UNMATCHED_REASONS, Order, Pairs, nearest, strata_codes
from careval.settings import Settings

__all__ = ["Distance", "MatchResult", "MatchSettings", "Pairs", "match", "nearest"]


Distance = Literal["logit_ps", "ps", "mahalanobis"]


@dataclass(frozen=True)
class MatchSettings(Settings):
    """How to match: exact keys, then nearest neighbour on a score.

    ``distance`` is ``ps`` (the logistic propensity score itself, MatchIt's default),
    ``logit_ps`` (its logit, often better behaved in the tails) or ``mahalanobis`` (on the
    covariates, pooled within-group covariance). ``caliper`` is in standard deviations of the
    score over all units; ``score`` names an existing column to match on instead of a fitted
    propensity score (for example a risk score).
    """

    ratio: int = 1
    caliper: float | None = None
    replace: bool = False
    exact: tuple[str, ...] = ()
    distance: Distance = "ps"
    score: str | None = None
    order: Order = "largest"

    def __post_init__(self) -> None:
        if not isinstance(self.ratio, int) or not 1 <= self.ratio <= 100:
            raise ConfigError(f"ratio must be a whole number from 1 to 100; got {self.ratio}")
        if self.caliper is not None and not self.caliper > 0:
            raise ConfigError(f"caliper must be a positive number of SDs; got {self.caliper}")
        if self.distance not in ("ps", "logit_ps", "mahalanobis"):
            raise ConfigError(
                f"distance must be ps, logit_ps or mahalanobis; got {self.distance!r}"
            )
        if self.distance == "mahalanobis" and self.caliper is not None:
            raise ConfigError("a caliper applies to a score; it cannot be used with mahalanobis")


def propensity_score(x: pd.DataFrame, treated: np.ndarray) -> np.ndarray:
    """Fitted probabilities of an unpenalised logistic regression of treatment on ``x``.

    Newton's method with a Cholesky solve (scikit-learn's ``newton-cholesky``) on standardised
    columns, converged to 1e-10: the same maximum-likelihood fit as R's ``glm`` (the LaLonde
    fixtures agree to 1e-8) and fast on a million rows. Constant columns are dropped.
    """
    from scipy.linalg import LinAlgWarning
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    xv = x.to_numpy(dtype=float)
    sd = xv.std(axis=0)
    keep = sd > 0
    z = (xv[:, keep] - xv[:, keep].mean(axis=0)) / sd[keep]
    y = np.asarray(treated, dtype=int)
    with WARNING_FILTERS, warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # Collinear columns make the Hessian singular; scikit-learn then finishes with lbfgs.
        # The fitted probabilities are unique even when the coefficients are not.
        warnings.simplefilter("ignore", LinAlgWarning)
        try:
            fit = LogisticRegression(
                C=np.inf, solver="newton-cholesky", tol=1e-10, max_iter=200
            ).fit(z, y)
        except (ConvergenceWarning, ValueError, np.linalg.LinAlgError) as exc:
            raise ConfigError(
                f"the propensity-score model could not be fitted ({exc}); check for covariates "
                "that separate treated from controls or that duplicate each other"
            ) from None
    return np.asarray(fit.predict_proba(z)[:, 1], dtype=float)


@dataclass
class MatchResult:
    """A matched sample: pairs, weights, why units went unmatched, and balance.

    ``balance`` (:func:`careval.impact.balance.balance_table`) and ``att``
    (:func:`careval.impact.balance.matched_att`, with its ``outcome``) are filled by
    :func:`careval.impact.generic.match_table`; :func:`match` leaves them empty.
    """

    settings: MatchSettings
    treated_rows: np.ndarray  # row positions (into the input frame) of treated units
    control_rows: np.ndarray
    pairs: Pairs
    score: np.ndarray | None  # per input row (None for mahalanobis)
    weights: np.ndarray  # per input row, 0 for unmatched
    subclass: np.ndarray  # per input row, -1 when not in a pair set (with replacement: -1)
    caliper_width: float | None
    treatment: str = ""
    covariates: tuple[str, ...] = ()
    balance: pd.DataFrame | None = None
    att: dict[str, Any] | None = None

    @property
    def n_treated(self) -> int:
        """Treated units offered for matching."""
        return int(self.treated_rows.size)

    @property
    def n_treated_matched(self) -> int:
        """Treated units with at least one control."""
        return self.pairs.n_treated_matched

    @property
    def n_controls_matched(self) -> int:
        """Distinct controls used."""
        return int(np.unique(self.pairs.control).size)

    @property
    def max_abs_smd_after(self) -> float | None:
        """Largest absolute standardised difference after matching (None without balance)."""
        if self.balance is None:
            return None
        return float(self.balance.smd_after.abs().max())

    def attrition(self) -> dict[str, int]:
        """Treated units by why they were not matched."""
        out = {"offered": self.n_treated, "matched": self.n_treated_matched}
        for r in UNMATCHED_REASONS:
            out[r] = int((self.pairs.reason == r).sum())
        return out

    def tidy(self) -> pd.DataFrame:
        """One row per (treated, control) pair: input row positions, round, both weights."""
        t = self.treated_rows[self.pairs.treated]
        c = self.control_rows[self.pairs.control]
        return pd.DataFrame(
            {
                "treated_row": t.astype(np.int64),
                "control_row": c.astype(np.int64),
                "round": self.pairs.round.astype(np.int64),
                "treated_weight": self.weights[t],
                "control_weight": self.weights[c],
            }
        )

    def summary(self) -> str:
        """The counts, the balance after matching and the ATT, in a few lines."""
        lines = [
            f"matched {self.n_treated_matched:,} of {self.n_treated:,} treated to "
            f"{self.n_controls_matched:,} controls ({self.settings.distance}, ratio "
            f"{self.settings.ratio}, {'with' if self.settings.replace else 'without'} "
            "replacement)"
        ]
        unmatched = {k: v for k, v in self.attrition().items() if k in UNMATCHED_REASONS and v}
        if unmatched:
            lines.append("unmatched: " + ", ".join(f"{v:,} {k}" for k, v in unmatched.items()))
        if self.max_abs_smd_after is not None:
            lines.append(f"max |SMD| after matching {self.max_abs_smd_after:.3f}")
        if self.att is not None:
            a = self.att
            lines.append(
                f"ATT on {a.get('outcome', 'the outcome')} {a['estimate']:.4g} "
                f"(95% CI {a['ci_low']:.4g} to {a['ci_high']:.4g})"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The ``careval match --json`` block (without ``file``): settings, counts, attrition,
        and, when computed, the balance and the ATT."""
        st = self.settings
        out: dict[str, Any] = {
            "settings": {
                "treatment": self.treatment,
                "covariates": list(self.covariates),
                "exact": list(st.exact),
                "ratio": st.ratio,
                "caliper_sd": st.caliper,
                "caliper_width": self.caliper_width,
                "replace": st.replace,
                "distance": st.distance,
                "order": st.order,
            },
            "n_treated": self.n_treated,
            "n_controls": int(self.control_rows.size),
            "n_treated_matched": self.n_treated_matched,
            "n_controls_matched": self.n_controls_matched,
            "attrition": self.attrition(),
        }
        if self.balance is not None:
            out["balance"] = [
                {
                    k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                    for k, v in r.items()
                }
                for r in self.balance.to_dict(orient="records")
            ]
            out["max_abs_smd_after"] = self.max_abs_smd_after
        if self.att is not None:
            out["att"] = dict(self.att)
        return out


def _mahalanobis_pairs(
    xt: np.ndarray,
    xc: np.ndarray,
    vinv: np.ndarray,
    kt: np.ndarray,
    kc: np.ndarray,
    ratio: int,
    replace: bool,
    order_seq: np.ndarray,
) -> Pairs:
    """Greedy nearest neighbours on the Mahalanobis distance (brute force; analysts' sizes)."""
    if xt.shape[0] * xc.shape[0] > 200_000_000:
        raise ConfigError(
            "mahalanobis matching compares every treated unit with every control; "
            f"{xt.shape[0]:,} x {xc.shape[0]:,} is too many: use a propensity score instead"
        )
    free = np.ones(xc.shape[0], dtype=bool)
    t_out: list[int] = []
    c_out: list[int] = []
    r_out: list[int] = []
    for rnd in range(1, ratio + 1):
        for t in order_seq.tolist():
            ok = (kc == kt[t]) & (free | replace)
            idx = np.flatnonzero(ok)
            if replace and rnd > 1:
                taken = [c for tt, c in zip(t_out, c_out, strict=True) if tt == t]
                idx = np.setdiff1d(idx, taken, assume_unique=False)
            if idx.size == 0:
                continue
            diff = xc[idx] - xt[t]
            d = np.einsum("ij,jk,ik->i", diff, vinv, diff)
            j = int(idx[np.argmin(d)])  # argmin: the first in the data on a tie
            t_out.append(t)
            c_out.append(j)
            r_out.append(rnd)
            if not replace:
                free[j] = False
    reason = np.full(xt.shape[0], "", dtype=object)
    got = np.zeros(xt.shape[0], dtype=bool)
    got[np.asarray(t_out, dtype=np.int64)] = True
    no_stratum = ~np.isin(kt, kc)
    reason[no_stratum] = UNMATCHED_REASONS[0]
    reason[~got & ~no_stratum] = UNMATCHED_REASONS[1]
    t_arr = np.asarray(t_out, dtype=np.int64)
    c_arr = np.asarray(c_out, dtype=np.int64)
    r_arr = np.asarray(r_out, dtype=np.int64)
    keep = np.lexsort((r_arr, t_arr))
    return Pairs(t_arr[keep], c_arr[keep], r_arr[keep], reason)


def match(
    df: pd.DataFrame,
    treatment: str,
    covariates: list[str],
    settings: MatchSettings | None = None,
) -> MatchResult:
    """Match treated rows (``treatment`` == 1) to control rows (== 0) of ``df``.

    The propensity score is a logistic regression of treatment on ``covariates`` (unless
    ``settings.score`` names a score column); matching is exact on ``settings.exact`` and
    nearest-neighbour on the score within them.
    """
    st = settings or MatchSettings()
    t = df[treatment].to_numpy()
    tr_rows = np.flatnonzero(t == 1)
    co_rows = np.flatnonzero(t == 0)
    if tr_rows.size == 0 or co_rows.size == 0:
        raise ConfigError(
            Note(
                f"column {treatment!r} needs both treated (1) and control (0) rows; "
                "found {treated} treated and {controls} controls",
                treated=int(tr_rows.size),
                controls=int(co_rows.size),
            )
        )
    x = df[covariates]
    if st.exact:
        key = df.groupby(list(st.exact), sort=True, dropna=False).ngroup().to_numpy()
    else:
        key = np.zeros(len(df), dtype=np.int64)
    kt, kc = strata_codes(key[tr_rows], key[co_rows], tr_rows.size, co_rows.size)
    score: np.ndarray | None
    width: float | None = None
    if st.distance == "mahalanobis":
        xv = x.to_numpy(dtype=float)
        xt_, xc_ = xv[tr_rows], xv[co_rows]
        cov = (np.cov(xt_, rowvar=False) * (xt_.shape[0] - 1)) + (
            np.cov(xc_, rowvar=False) * (xc_.shape[0] - 1)
        )
        cov /= xv.shape[0] - 2
        vinv = np.linalg.pinv(np.atleast_2d(cov))
        score = None
        pairs = _mahalanobis_pairs(
            xt_, xc_, vinv, kt, kc, st.ratio, st.replace, np.arange(tr_rows.size)
        )
    else:
        if st.score is not None:
            score = df[st.score].to_numpy(dtype=float)
        else:
            score = propensity_score(x, t)
        s = score
        if st.distance == "logit_ps" and st.score is None:
            p = np.clip(score, 1e-12, 1 - 1e-12)
            s = np.log(p / (1 - p))
        if st.caliper is not None:
            width = float(st.caliper * np.std(s, ddof=1))
        pairs = nearest(
            s[tr_rows],
            s[co_rows],
            strata_t=kt,
            strata_c=kc,
            ratio=st.ratio,
            caliper=width,
            replace=st.replace,
            order=st.order,
        )
    wt, wc = pairs.weights(tr_rows.size, co_rows.size)
    weights = np.zeros(len(df))
    weights[tr_rows] = wt
    weights[co_rows] = wc
    subclass = np.full(len(df), -1, dtype=np.int64)
    if not st.replace:
        subclass[tr_rows[pairs.treated]] = pairs.treated
        subclass[co_rows[pairs.control]] = pairs.treated
    return MatchResult(
        st,
        tr_rows,
        co_rows,
        pairs,
        score,
        weights,
        subclass,
        width,
        treatment=treatment,
        covariates=tuple(covariates),
    )
