"""Study design: the smallest effect a matched study can detect, and the follow-up it needs.

The estimator is the impact study's: a matched difference-in-differences with unit and month
fixed effects, Poisson for emergency admissions, each treated person against the mean of their
``k`` controls, clustered on the matched set. When everyone is followed for the same months
around entry, its estimate is exactly the ratio of ratios of the arms' totals after and before
entry, and its cluster-robust variance is the sum of the squared per-set influences (a test
checks both against :func:`careval.impact.fe.fit_fe`). Two methods then check each other:

* **Analytic**: from untreated histories of people like the treated (the matched controls),
  the per-person mean, variance and covariance of the totals before (``pre`` months) and after
  (``m`` months) entry give ``V = var(y1)/mu1^2 + var(y0)/mu0^2 - 2 cov(y0, y1)/(mu0 mu1)``;
  the standard error of the log rate ratio is ``sqrt(V (1 + 1/k) / n)``.
* **Simulation**: draw ``n`` treated and ``n k`` controls from the same histories, inject the
  effect into the treated's months after entry (binomial thinning for a fall), compute the
  estimator and its clustered standard error, and count how often the test rejects and the CI
  covers the injected effect.

Costs use the same machinery on the linear scale (difference in means of the change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from careval.disclosure import Note
from careval.errors import ConfigError
from careval.settings import Settings


@dataclass(frozen=True)
class DesignSettings(Settings):
    """What to plan for; ``enrolled`` defaults to the people matched in the data."""

    enrolled: int | None = None
    ratio: int = 5
    followup_months: tuple[int, ...] = (3, 6, 12, 18, 24)
    effect: float = -0.10
    alpha: float = 0.05
    power: float = 0.80
    pre_months: int = 12
    replicates: int = 1000
    seed: int = 2011

    def __post_init__(self) -> None:
        problems = []
        if self.enrolled is not None and self.enrolled < 10:
            problems.append(f"enrolled must be at least 10 people; got {self.enrolled}")
        if not 1 <= self.ratio <= 50:
            problems.append(f"ratio must be between 1 and 50 controls each; got {self.ratio}")
        if not self.followup_months or min(self.followup_months) < 1:
            problems.append("follow-up lengths must be whole months of at least 1")
        if not -0.9 <= self.effect <= 1.0 or self.effect == 0:
            problems.append(
                f"effect must be a non-zero rate ratio - 1 between -0.9 and 1; got {self.effect}"
            )
        if not 0 < self.alpha < 0.5:
            problems.append(f"alpha must be between 0 and 0.5; got {self.alpha}")
        if not 0.5 <= self.power < 1:
            problems.append(f"power must be at least 0.5 and below 1; got {self.power}")
        if not 3 <= self.pre_months <= 36:
            problems.append("pre_months must be between 3 and 36")
        if not 50 <= self.replicates <= 100_000:
            problems.append("replicates must be between 50 and 100,000")
        if problems:
            raise ConfigError("; ".join(problems))


def z_sum(alpha: float, power: float) -> float:
    """``z(1 - alpha/2) + z(power)``: the distance, in standard errors, a detectable effect
    must lie from zero (two-sided test)."""
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def two_group_mde(sd: float, n1: int, ratio: float, alpha: float, power: float) -> float:
    """Smallest detectable difference in means between two independent groups (normal
    approximation): ``(z_a + z_b) sd sqrt(1/n1 + 1/(ratio n1))``."""
    return z_sum(alpha, power) * sd * float(np.sqrt(1 / n1 + 1 / (ratio * n1)))


def power_at(effect: float, se: float, alpha: float) -> float:
    """Two-sided power of a normal test of an effect with standard error ``se``."""
    z = stats.norm.ppf(1 - alpha / 2)
    d = abs(effect) / se
    return float(stats.norm.cdf(d - z) + stats.norm.cdf(-d - z))


@dataclass
class Components:
    """Per-person moments of the totals before and after entry."""

    people: int
    mean_before: float
    mean_after: float
    var_before: float
    var_after: float
    cov: float

    @property
    def v_log(self) -> float:
        """Per-person variance of the log rate ratio (delta method)."""
        return (
            self.var_after / self.mean_after**2
            + self.var_before / self.mean_before**2
            - 2 * self.cov / (self.mean_before * self.mean_after)
        )

    @property
    def v_diff(self) -> float:
        """Per-person variance of the change (after minus before), for linear outcomes."""
        return self.var_after + self.var_before - 2 * self.cov


def components(y: np.ndarray, pre_total_months: int, pre: int, m: int) -> Components:
    """Moments from untreated histories ``y`` (people x months, ``pre_total_months`` before
    entry then months after; NaN where not observed)."""
    if y.shape[1] <= pre_total_months:
        raise ConfigError("the histories hold no months after entry")
    y0, y1 = _complete_at(y, pre_total_months, pre, m)
    if y0.size < 30:
        raise ConfigError(
            Note(
                f"only {{people}} people are followed for {pre} months before and {m} after "
                "entry; at least 30 are needed to estimate the variance",
                people=int(y0.size),
            )
        )
    c = np.cov(np.vstack([y0, y1]))
    return Components(
        int(y0.size),
        float(y0.mean()),
        float(y1.mean()),
        float(c[0, 0]),
        float(c[1, 1]),
        float(c[0, 1]),
    )


def _complete_at(y: np.ndarray, zero: int, pre: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    if pre > zero:
        raise ConfigError(f"the histories hold {zero} months before entry; {pre} were asked")
    if zero + m > y.shape[1]:
        return np.zeros(0), np.zeros(0)
    window = y[:, zero - pre : zero + m]
    ok = ~np.isnan(window).any(axis=1)
    return window[ok, :pre].sum(1), window[ok, pre:].sum(1)


def analytic(c: Components, n: int, k: int, log_scale: bool = True) -> float:
    """Standard error of the estimate (log rate ratio, or difference for a linear outcome).

    Raises :class:`~careval.errors.ConfigError` for a log rate ratio when the histories hold no
    events before or after entry (the ratio, and its variance, are undefined).
    """
    if log_scale and (c.mean_before <= 0 or c.mean_after <= 0):
        side = "before" if c.mean_before <= 0 else "after"
        raise ConfigError(
            Note(
                f"the {{people}} histories hold no events {side} entry: no rate ratio",
                people=c.people,
            )
        )
    v = c.v_log if log_scale else c.v_diff
    return float(np.sqrt(max(v, 0.0) * (1 + 1 / k) / n))


def simulate(
    y: np.ndarray,
    zero: int,
    pre: int,
    m: int,
    n: int,
    k: int,
    effect: float,
    replicates: int,
    rng: np.random.Generator,
    alpha: float,
    count: bool = True,
) -> dict[str, float]:
    """Resample untreated histories, inject ``effect`` after entry, run the estimator.

    For counts the effect is a rate ratio ``1 + effect`` (binomial thinning of the treated's
    admissions after entry for a fall; extra binomial draws for a rise); for a linear outcome it
    is a proportional change of the treated's mean after entry.
    """
    y0, y1 = _complete_at(y, zero, pre, m)
    if y0.size < 30:
        raise ConfigError(
            Note(
                f"too few complete histories ({{people}}) for {m} months of follow-up",
                people=int(y0.size),
            )
        )
    z = stats.norm.ppf(1 - alpha / 2)
    est = np.empty(replicates)
    se = np.empty(replicates)
    truth = np.log1p(effect) if count else None
    chunk = max(1, 4_000_000 // (n * (k + 1)))
    done = 0
    shift = float(effect * y1.mean())
    while done < replicates:
        r = min(chunk, replicates - done)
        ti = rng.integers(0, y0.size, size=(r, n))
        ci = rng.integers(0, y0.size, size=(r, n, k))
        t0, t1 = y0[ti], y1[ti]
        if count:
            t1i = t1.astype(np.int64)
            if effect < 0:
                t1 = rng.binomial(t1i, 1 + effect).astype(float)
            else:
                t1 = t1 + rng.binomial(t1i, effect)
        else:
            t1 = t1 + shift
        c0, c1 = y0[ci].mean(2), y1[ci].mean(2)
        if count:
            s = [a.sum(1, keepdims=True) for a in (t1, t0, c1, c0)]
            with np.errstate(divide="ignore", invalid="ignore"):  # empty arms: dropped below
                e = np.log(s[0] / s[1]) - np.log(s[2] / s[3])
                infl = t1 / s[0] - t0 / s[1] - c1 / s[2] + c0 / s[3]
        else:
            d = (t1 - t0) - (c1 - c0)
            e = d.mean(1, keepdims=True)
            infl = (d - e) / n
        est[done : done + r] = e[:, 0]
        se[done : done + r] = np.sqrt((infl**2).sum(1) * n / (n - 1))
        done += r
    ok = np.isfinite(est) & (se > 0)
    est, se = est[ok], se[ok]
    target = truth if count else shift
    return {
        "replicates": int(ok.sum()),
        "power": float((np.abs(est / se) > z).mean()),
        "coverage": float(((est - z * se <= target) & (target <= est + z * se)).mean()),
        "sd_estimate": float(est.std(ddof=1)),
        "mean_se": float(se.mean()),
        "mean_estimate": float(est.mean()),
    }


MDE_COLUMNS = (
    "followup_months",
    "people_with_full_history",
    "se_log_rate_ratio",
    "mde_rate_ratio",
    "power_at_effect",
    "sim_sd_log_rate_ratio",
    "sim_mde_rate_ratio",
    "sim_power_at_effect",
    "sim_coverage",
    "sim_mean_rate_ratio",
    "sim_replicates",
)


@dataclass
class DesignResult:
    """Minimum detectable effects per follow-up length, both ways, and the follow-up needed."""

    settings: DesignSettings
    enrolled: int
    baseline_rate_per_person_year: float | None
    rows: list[dict[str, Any]]
    followup_needed_months: int | None
    cost_rows: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    baseline_people: int | str = 0  # the histories the baseline rate is the mean of (a count)

    def tidy(self) -> pd.DataFrame:
        """One row per follow-up length: the minimum detectable rate ratio and the power for
        the planned effect, analytic and simulated."""
        return pd.DataFrame(self.rows, columns=list(MDE_COLUMNS))

    def summary(self) -> str:
        """The minimum detectable effect per follow-up length and the follow-up needed."""
        st = self.settings
        enrolled = f"{self.enrolled:,}" if isinstance(self.enrolled, int) else str(self.enrolled)
        lines = [
            f"{enrolled} care-planned people, {st.ratio} controls each, "
            + (
                "no baseline rate published"
                if self.baseline_rate_per_person_year is None
                else f"{self.baseline_rate_per_person_year:.2f} emergency admissions a person-year"
            )
        ]
        for r in self.rows:
            lines.append(
                f"{r['followup_months']} months: MDE rate ratio {r['mde_rate_ratio']:.3f} "
                f"(simulation {r['sim_mde_rate_ratio']:.3f}); power for {1 + st.effect:.2f}: "
                f"{r['power_at_effect']:.2f}"
            )
        needed = self.followup_needed_months
        lines.append(
            f"follow-up needed for {1 + st.effect:.2f} at {100 * st.power:.0f}% power: "
            + (f"{needed} months" if needed else "beyond the data")
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The ``design`` block of ``results.json``."""
        return {
            "settings": self.settings.to_dict(),
            "enrolled": self.enrolled,
            "source": self.source,
            "baseline_rate_per_person_year": (
                None
                if self.baseline_rate_per_person_year is None
                else round(self.baseline_rate_per_person_year, 6)
            ),
            "baseline_people": self.baseline_people,
            "mde": [_round(r) for r in self.rows],
            "followup_needed_months": self.followup_needed_months,
            "costs": [_round(r) for r in self.cost_rows],
        }


def _round(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in d.items()}


def plan(
    untreated: dict[str, np.ndarray],
    zero: int,
    settings: DesignSettings,
    enrolled: int,
    source: str,
) -> DesignResult:
    """The design table from untreated histories (``zero`` = the column of entry month)."""
    st = settings
    n = st.enrolled or enrolled
    if n < 10:
        raise ConfigError(Note("too few people to plan for ({people})", people=int(n)))
    y = untreated["emergency_admissions"]
    rng = np.random.default_rng(st.seed)
    zz = z_sum(st.alpha, st.power)
    target = abs(np.log1p(st.effect))
    rows = []
    base = components(y, zero, st.pre_months, 1)
    last: ConfigError | None = None
    for m in st.followup_months:
        try:
            c = components(y, zero, st.pre_months, m)
            se = analytic(c, n, st.ratio)
        except ConfigError as exc:
            last = exc
            continue
        sim = simulate(
            y, zero, st.pre_months, m, n, st.ratio, st.effect, st.replicates, rng, st.alpha
        )
        rows.append(
            {
                "followup_months": m,
                "people_with_full_history": c.people,
                "se_log_rate_ratio": se,
                "mde_rate_ratio": float(np.exp(-zz * se)),
                "power_at_effect": power_at(target, se, st.alpha),
                "sim_sd_log_rate_ratio": sim["sd_estimate"],
                "sim_mde_rate_ratio": float(np.exp(-zz * sim["sd_estimate"])),
                "sim_power_at_effect": sim["power"],
                "sim_coverage": sim["coverage"],
                "sim_mean_rate_ratio": float(np.exp(sim["mean_estimate"])),
                "sim_replicates": sim["replicates"],
            }
        )
    needed = None
    for m in range(1, y.shape[1] - zero + 1):
        try:
            c = components(y, zero, st.pre_months, m)
        except ConfigError:
            break
        try:
            se = analytic(c, n, st.ratio)
        except ConfigError:
            continue  # no events yet after entry: a longer follow-up may have some
        if zz * se <= target:
            needed = m
            break
    if not rows and last is not None:  # no follow-up length could be planned: say why
        raise last
    cost_rows = []
    if "emergency_cost" in untreated:
        yc = untreated["emergency_cost"]
        for m in st.followup_months:
            try:
                c = components(yc, zero, st.pre_months, m)
            except ConfigError:
                continue
            se = analytic(c, n, st.ratio, log_scale=False)
            cost_rows.append(
                {
                    "followup_months": m,
                    "se_change_pounds": se,
                    "mde_change_pounds_per_person": zz * se,
                    "mde_share_of_mean_after": zz * se / c.mean_after if c.mean_after else None,
                }
            )
    rate = 12 * base.mean_after
    return DesignResult(st, n, rate, rows, needed, cost_rows, source, base.people)


def seed_example(
    n: int = 1236,
    k: int = 5,
    months: int = 3,
    rate_per_year: float = 0.44,
    pre: int = 12,
    alpha: float = 0.05,
    power: float = 0.8,
    overdispersion: float = 1.0,
    correlation: float = 0.0,
) -> dict[str, float]:
    """The seed's situation in closed form: Poisson counts (times ``overdispersion``), with a
    correlation between a person's totals before and after; returns the minimum detectable
    rate ratio and the power for a 10% fall."""
    mu0, mu1 = rate_per_year * pre / 12, rate_per_year * months / 12
    v0, v1 = overdispersion * mu0, overdispersion * mu1
    cov = correlation * np.sqrt(v0 * v1)
    v = v1 / mu1**2 + v0 / mu0**2 - 2 * cov / (mu0 * mu1)
    se = float(np.sqrt(v * (1 + 1 / k) / n))
    return {
        "se_log_rate_ratio": se,
        "mde_rate_ratio": float(np.exp(-z_sum(alpha, power) * se)),
        "power_for_10pct_fall": power_at(abs(np.log(0.9)), se, alpha),
    }
