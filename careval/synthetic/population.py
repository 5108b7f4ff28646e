"""People, practices, registrations, deaths and long-term conditions of the synthetic population.

Everything is vectorised over people (numpy), so millions of people take seconds. Ages are held
in months; the window's months are numbered 0..T-1 from ``settings.start``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from careval.data.codelists import HEALTH_NEEDS
from careval.synthetic.settings import AREAS, PILOT_MDGS, PILOT_PRACTICES, SynthSettings

# Age bands (years) and their shares by area: inner London is young; England is older.
AGE_EDGES = np.array([0, 16, 30, 45, 60, 75, 85, 105])
AGE_SHARES = {
    "pilot": [0.190, 0.217, 0.257, 0.168, 0.112, 0.040, 0.016],
    "inner_nwl_other": [0.190, 0.217, 0.257, 0.168, 0.112, 0.040, 0.016],
    "outer_nwl": [0.205, 0.190, 0.230, 0.180, 0.125, 0.050, 0.020],
    "south_west_london": [0.195, 0.205, 0.245, 0.175, 0.115, 0.045, 0.020],
    "rest_of_england": [0.185, 0.170, 0.195, 0.200, 0.160, 0.064, 0.026],
}
IMD_SHARES = {  # decile 1 (most deprived) .. 10
    "pilot": [0.14, 0.15, 0.13, 0.11, 0.09, 0.08, 0.08, 0.08, 0.07, 0.07],
    "inner_nwl_other": [0.12, 0.14, 0.13, 0.11, 0.10, 0.09, 0.08, 0.08, 0.08, 0.07],
    "outer_nwl": [0.07, 0.10, 0.12, 0.13, 0.12, 0.11, 0.10, 0.09, 0.08, 0.08],
    "south_west_london": [0.05, 0.08, 0.10, 0.11, 0.12, 0.12, 0.12, 0.11, 0.10, 0.09],
    "rest_of_england": [0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10],
}
ETHNIC = ("white", "mixed", "asian", "black", "other", "unknown")
ETHNIC_SHARES = {
    "london": [0.55, 0.05, 0.18, 0.13, 0.06, 0.03],
    "rest_of_england": [0.84, 0.02, 0.07, 0.03, 0.01, 0.03],
}
LOCALITIES = {
    "pilot": ["Westminster", "Kensington and Chelsea", "Hammersmith and Fulham"],
    "inner_nwl_other": ["Westminster", "Kensington and Chelsea", "Hammersmith and Fulham"],
    "outer_nwl": ["Brent", "Ealing", "Harrow", "Hillingdon", "Hounslow"],
    "south_west_london": ["Croydon", "Kingston", "Merton", "Richmond", "Sutton", "Wandsworth"],
    "rest_of_england": ["Rest of England"],
}
PRACTICE_PREFIX = {
    "pilot": "E87",
    "inner_nwl_other": "E85",
    "outer_nwl": "E84",
    "south_west_london": "H84",
    "rest_of_england": "Y00",
}
# Eligibility calibration at the pilot's launch, per 380,000 in the business case:
# 15,200 with diabetes, 22,800 aged 75+, 8,700 both.
TARGET_AGED_75 = 22_800 / 380_000
TARGET_DIABETES_75 = 8_700 / 22_800
TARGET_DIABETES_UNDER_75 = (15_200 - 8_700) / (380_000 - 22_800)

# Long-term conditions: prevalence logit at age 60 and per decade, and emergency-risk multiplier.
CONDITION_MODEL = {
    "hypertension": (-1.2, 0.75, 1.10),
    "chd": (-3.0, 0.75, 1.35),
    "heart_failure": (-4.8, 0.95, 1.90),
    "atrial_fibrillation": (-4.2, 0.95, 1.30),
    "stroke_tia": (-4.0, 0.85, 1.40),
    "copd": (-3.6, 0.65, 1.80),
    "asthma": (-2.4, 0.00, 1.30),
    "ckd": (-3.3, 1.00, 1.45),
    "cancer": (-3.2, 0.60, 1.55),
    "depression": (-2.1, 0.00, 1.35),
    "serious_mental_illness": (-4.2, -0.10, 1.60),
    "epilepsy": (-4.6, 0.00, 1.50),
    "osteoarthritis": (-2.4, 0.75, 1.10),
    "hypothyroidism": (-3.2, 0.40, 1.05),
    "peripheral_arterial_disease": (-4.6, 0.80, 1.40),
}
assert tuple(CONDITION_MODEL) == HEALTH_NEEDS


@dataclass
class Population:
    """Arrays describing every person (index i = 0..N-1) and practice."""

    n: int
    area: np.ndarray  # int8 index into AREAS
    practice: np.ndarray  # int32 index into practice arrays
    birth_month: np.ndarray  # absolute month number
    female: np.ndarray  # bool
    ethnic: np.ndarray  # int8 index into ETHNIC
    imd: np.ndarray  # int8 decile 1-10
    lsoa: np.ndarray  # int32 LSOA number
    frailty: np.ndarray  # float32 latent persistent risk, N(0, 1)
    reg_start: np.ndarray  # window month registration starts (may be negative: before window)
    leave_month: np.ndarray  # window month registration ends by leaving (>= T: not in window)
    death_month: np.ndarray  # window month of death (>= T: alive at the end)
    conditions: dict[str, np.ndarray]  # condition -> onset window month (large: never)
    diabetes_onset: np.ndarray  # window month of diagnosis (large: none)
    dementia_onset: np.ndarray  # window month of true onset (large: none)
    practice_area: np.ndarray
    practice_mdg: np.ndarray  # -1 for non-pilot practices
    practice_locality: list[str]
    practice_code: list[str]
    practice_engagement: np.ndarray  # MDG engagement multiplier for care planning

    def age_months(self, month: int | np.ndarray, first_month: int) -> np.ndarray:
        """Age in completed months at window month ``month``."""
        return first_month + month - self.birth_month

    def registered_alive(self, month: int) -> np.ndarray:
        """People registered and alive during window month ``month``."""
        return (self.reg_start <= month) & (self.leave_month > month) & (self.death_month > month)


NEVER = np.int32(10_000)


def make_population(s: SynthSettings, rng: np.random.Generator) -> Population:
    """Draw people, practices, registrations, deaths and conditions."""
    n, first, t_months, launch = s.persons, s.first_month, s.n_months, s.launch

    # Areas and practices.
    n_pilot = int(round(n * s.pilot_share))
    comp = np.array([s.comparator_shares[a] for a in AREAS[1:]], dtype=float)
    n_comp = np.floor(comp / comp.sum() * (n - n_pilot)).astype(int)
    n_comp[-1] += n - n_pilot - n_comp.sum()
    area_sizes = np.concatenate([[n_pilot], n_comp])
    p_area, p_mdg, p_loc, p_code, p_size = [], [], [], [], []
    for a, (name, size) in enumerate(zip(AREAS, area_sizes, strict=True)):
        k = PILOT_PRACTICES if name == "pilot" else max(3, int(round(size / 6000)))
        sizes = rng.gamma(4.0, 1.0, k)
        p_size.append(sizes / sizes.sum() * size)
        p_area += [a] * k
        if name == "pilot":
            mdg_of = np.sort(rng.integers(0, PILOT_MDGS, k))
            mdg_of[:PILOT_MDGS] = np.arange(PILOT_MDGS)  # every MDG has a practice
            p_mdg += list(np.sort(mdg_of))
        else:
            p_mdg += [-1] * k
        locs = LOCALITIES[name]
        p_loc += [locs[j % len(locs)] for j in range(k)]
        p_code += [f"{PRACTICE_PREFIX[name]}{j + 1:03d}" for j in range(k)]
    practice_area = np.array(p_area, dtype=np.int8)
    practice_mdg = np.array(p_mdg, dtype=np.int8)
    sizes = np.concatenate(p_size)
    # People to practices: within each area proportional to list size.
    practice = np.empty(n, dtype=np.int32)
    area = np.repeat(np.arange(len(AREAS), dtype=np.int8), area_sizes)
    start = 0
    for a, size in enumerate(area_sizes):
        idx = np.flatnonzero(practice_area == a)
        practice[start : start + size] = rng.choice(idx, size=size, p=sizes[idx] / sizes[idx].sum())
        start += size
    engagement = rng.lognormal(0.0, 0.35, PILOT_MDGS)

    # Ages at the window start, by area.
    birth_month = np.empty(n, dtype=np.int32)
    female = np.empty(n, dtype=bool)
    imd = np.empty(n, dtype=np.int8)
    ethnic = np.empty(n, dtype=np.int8)
    for a, name in enumerate(AREAS):
        sel = area == a
        k = int(sel.sum())
        band = rng.choice(
            len(AGE_EDGES) - 1, size=k, p=np.array(AGE_SHARES[name]) / sum(AGE_SHARES[name])
        )
        lo, hi = AGE_EDGES[band] * 12, AGE_EDGES[band + 1] * 12
        age0 = lo + np.floor(rng.random(k) * (hi - lo)).astype(np.int32)
        # Within 85+, numbers fall steeply with age (mean 90), not evenly to 100.
        top = band == len(AGE_EDGES) - 2
        tail = np.minimum(rng.exponential(5.0 * 12, int(top.sum())), 19 * 12)
        age0[top] = 85 * 12 + np.floor(tail).astype(np.int32)
        birth_month[sel] = first - age0
        p_f = np.where(age0 >= 85 * 12, 0.63, np.where(age0 >= 75 * 12, 0.57, 0.50))
        female[sel] = rng.random(k) < p_f
        imd[sel] = rng.choice(10, size=k, p=IMD_SHARES[name]) + 1
        eth = ETHNIC_SHARES["rest_of_england" if name == "rest_of_england" else "london"]
        ethnic[sel] = rng.choice(len(ETHNIC), size=k, p=eth)
    # LSOAs: each practice draws from its own pool of about one LSOA per 1,500 patients.
    pool = np.maximum(2, np.round(sizes / 1500)).astype(np.int32)
    offset = np.concatenate([[0], np.cumsum(pool)[:-1]])
    lsoa = offset[practice] + np.floor(rng.random(n) * pool[practice]).astype(np.int32)

    frailty = rng.standard_normal(n).astype(np.float32)
    age_launch = (first + launch - birth_month) / 12.0

    # Long-term conditions: prevalence rises with age and frailty; onset mostly before the window.
    conditions: dict[str, np.ndarray] = {}
    dec = (age_launch - 60.0) / 10.0
    for name, (a0, a1, _rr) in CONDITION_MODEL.items():
        p = expit(a0 + a1 * np.clip(dec, -4, 4) + 0.45 * frailty) * (age_launch >= 5)
        has = rng.random(n) < p
        onset = launch - np.floor(rng.exponential(60.0, n)).astype(np.int32)
        conditions[name] = np.where(has, onset, NEVER).astype(np.int32)

    # Diabetes: calibrated at launch to the business case shares, separately under and over 75.
    shape = expit((age_launch - 70.0) / 5.0) * (age_launch >= 18) + 0.004 * (age_launch >= 2)
    shape = shape * np.exp(0.25 * frailty)
    p_dm = np.empty(n)
    for mask, target in (
        (age_launch >= 75, TARGET_DIABETES_75),
        (age_launch < 75, TARGET_DIABETES_UNDER_75),
    ):
        p_dm[mask] = np.minimum(shape[mask] * target / max(shape[mask].mean(), 1e-9), 0.95)
    has_dm = rng.random(n) < p_dm
    dm_onset = launch - np.floor(rng.exponential(84.0, n)).astype(np.int32)
    # Incident diabetes during the window: about 0.3% a year among adults 40+.
    incident = (~has_dm) & (age_launch >= 40) & (rng.random(n) < 0.003 * t_months / 12)
    dm_onset = np.where(incident, rng.integers(launch + 1, max(launch + 2, t_months), n), dm_onset)
    diabetes_onset = np.where(has_dm | incident, dm_onset, NEVER).astype(np.int32)

    # Dementia: true onset among the 65+, rising steeply with age.
    p_dem = np.where(age_launch >= 65, 0.012 * np.exp(0.115 * (age_launch - 65)), 0.0)
    p_dem = np.minimum(p_dem * np.exp(0.3 * frailty), 0.6)
    dem = rng.random(n) < p_dem
    dem_onset = launch - np.floor(rng.exponential(30.0, n)).astype(np.int32) + 18
    dementia_onset = np.where(dem, dem_onset, NEVER).astype(np.int32)

    # Registration: most registered before the window; some join during it; some leave.
    joins = rng.random(n) < 0.12
    reg_start = np.where(joins, rng.integers(1, t_months, n), -1 - rng.integers(0, 180, n))
    born_in = birth_month - first  # window month of birth (negative: before the window)
    reg_start = np.maximum(reg_start, born_in).astype(np.int32)
    leave = np.floor(rng.exponential(12 / 0.04, n)).astype(np.int64) + np.maximum(reg_start, 0) + 1
    leave_month = np.minimum(leave, NEVER).astype(np.int32)

    death_month = _deaths(
        birth_month, reg_start, first, t_months, frailty, dementia_onset, conditions, rng
    )
    return Population(
        n=n,
        area=area,
        practice=practice,
        birth_month=birth_month,
        female=female,
        ethnic=ethnic,
        imd=imd,
        lsoa=lsoa,
        frailty=frailty,
        reg_start=reg_start,
        leave_month=leave_month,
        death_month=death_month,
        conditions=conditions,
        diabetes_onset=diabetes_onset,
        dementia_onset=dementia_onset,
        practice_area=practice_area,
        practice_mdg=practice_mdg,
        practice_locality=p_loc,
        practice_code=p_code,
        practice_engagement=engagement,
    )


# Annual death probability by age (log-linear interpolation between these points): about 3.6%
# a year at 75-84 and 13.6% at 85+, as in England.
_MORT_AGES = np.array([0, 1, 15, 45, 65, 75, 80, 85, 90, 100, 120])
_MORT_Q = np.array([0.004, 0.0002, 0.0002, 0.0015, 0.007, 0.019, 0.034, 0.065, 0.125, 0.30, 0.6])


def annual_death_probability(age_years: np.ndarray) -> np.ndarray:
    """Baseline annual probability of death at an age in years."""
    return np.exp(np.interp(age_years, _MORT_AGES, np.log(_MORT_Q)))


def _deaths(
    birth_month: np.ndarray,
    reg_start: np.ndarray,
    first: int,
    t_months: int,
    frailty: np.ndarray,
    dementia_onset: np.ndarray,
    conditions: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Window month of death (NEVER when alive at the end), by monthly hazards.

    The hazard accrues from registration (people joining mid-window are alive when they join).
    """
    n = len(birth_month)
    mult = np.exp(0.35 * frailty - 0.06).astype(np.float32)
    mult *= np.where(dementia_onset < t_months, 1.6, 1.0).astype(np.float32)
    mult *= np.where(conditions["heart_failure"] < t_months, 1.5, 1.0).astype(np.float32)
    mult *= np.where(conditions["cancer"] < t_months, 1.4, 1.0).astype(np.float32)
    threshold = rng.exponential(1.0, n).astype(np.float32)
    death = np.full(n, NEVER, dtype=np.int32)
    cum = np.zeros(n, dtype=np.float32)
    for m in range(t_months):  # T passes over N (cheaper than an N x T matrix)
        age = (first + m - birth_month) / 12.0
        q = annual_death_probability(age).astype(np.float32)
        at_risk = (reg_start <= m).astype(np.float32)
        cum += -np.log1p(-np.minimum(q * mult, 0.95)) / 12.0 * at_risk
        newly = (cum >= threshold) & (death == NEVER) & (age >= 0)
        death[newly] = m
    return death
