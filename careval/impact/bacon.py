"""The Goodman-Bacon (2021) weights of TWFE's 2x2 comparisons in a balanced staggered panel.

In a balanced panel the TWFE coefficient of ``D`` is a weighted average of every 2x2 DiD between
timing groups: each cohort against the never treated (``treated_vs_untreated``), an earlier
cohort against a later one before the later is treated (``earlier_vs_later``), and a later
cohort against an earlier one after the earlier is treated (``later_vs_earlier``). The last
uses already-treated units as controls, so effects that change over time enter it with the
wrong sign. The weights are Goodman-Bacon's (2021) equation 10: with ``n_g`` the share of
units in group ``g``, ``Dbar_g`` its share of periods treated and ``V`` the variance of ``D``
after unit and period effects,

- ``s_kU = (n_k + n_U)^2 n_kU (1 - n_kU) Dbar_k (1 - Dbar_k) / V``,
- ``s_kl^k = ((n_k + n_l)(1 - Dbar_l))^2 n_kl (1 - n_kl) (Dbar_k - Dbar_l) (1 - Dbar_k)
  / (1 - Dbar_l)^2 / V``,
- ``s_kl^l = ((n_k + n_l) Dbar_k)^2 n_kl (1 - n_kl) Dbar_l (Dbar_k - Dbar_l) / Dbar_k^2 / V``,

``k`` treated earlier than ``l`` and ``n_kl = n_k / (n_k + n_l)``. Units never observed treated
form ``U``; units treated throughout form a cohort with ``Dbar = 1``.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd


def bacon_weights(panel: pd.DataFrame) -> pd.DataFrame | None:
    """The 2x2 comparisons and their weights, or None if the panel is not balanced.

    Parameters
    ----------
    panel : pandas.DataFrame
        Columns ``unit``, ``period``, ``D`` (0/1) and ``cohort`` (first treated period, -1 for
        never treated), one row per unit and period.

    Returns
    -------
    pandas.DataFrame or None
        One row per comparison: ``kind`` (``treated_vs_untreated``, ``earlier_vs_later`` or
        ``later_vs_earlier``), ``treated`` and ``control`` (the cohorts' first treated periods,
        ``-1`` for the never treated) and ``weight`` (summing to 1).
    """
    n_units = panel["unit"].nunique()
    n_periods = panel["period"].nunique()
    if len(panel) != n_units * n_periods:
        return None
    d = panel["D"].to_numpy(float)
    ever = pd.Series(d).groupby(panel["unit"].to_numpy()).transform("max").to_numpy()
    group = np.where(ever > 0, panel["cohort"].to_numpy(float), -1.0)
    eps = (
        d
        - pd.Series(d).groupby(panel["unit"].to_numpy()).transform("mean").to_numpy()
        - pd.Series(d).groupby(panel["period"].to_numpy()).transform("mean").to_numpy()
        + d.mean()
    )
    v = float(np.mean(eps**2))
    by = pd.DataFrame({"g": group, "d": d}).groupby("g")["d"].agg(["mean", "size"])
    share = (by["size"] / len(panel)).to_dict()
    dbar = by["mean"].to_dict()
    rows = []
    cohorts = sorted(g for g in share if g != -1.0)
    if -1.0 in share:
        n_u = share[-1.0]
        for k in cohorts:
            nk = share[k] / (share[k] + n_u)
            s = (share[k] + n_u) ** 2 * nk * (1 - nk) * dbar[k] * (1 - dbar[k]) / v
            rows.append(("treated_vs_untreated", k, -1.0, s))
    for k, ell in combinations(cohorts, 2):  # k earlier: larger share of periods treated
        n_kl = share[k] / (share[k] + share[ell])
        base = (share[k] + share[ell]) ** 2 * n_kl * (1 - n_kl) / v
        gap = dbar[k] - dbar[ell]
        if dbar[k] < 1:  # the squared factors of equation 10 cancel the denominators
            rows.append(("earlier_vs_later", k, ell, base * gap * (1 - dbar[k])))
        if dbar[ell] > 0:
            rows.append(("later_vs_earlier", ell, k, base * gap * dbar[ell]))
    out = pd.DataFrame(rows, columns=["kind", "treated", "control", "weight"])
    return out[out["weight"] > 0].reset_index(drop=True)  # e.g. treated throughout vs never
