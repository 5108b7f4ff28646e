"""Exact absorption of a unit and a month fixed effect, and Poisson by Newton's method.

The matched study's models have a fixed effect per unit (tens of thousands) and one per calendar
month (some sixty). Alternating projections (pyfixest's demeaner) sweep the two in turn until
they settle, and Poisson's IWLS does that at every iteration: most of the study's time. With so
few months neither is needed:

- **Residualising** ``x`` on both effects with weights ``v`` is exact linear algebra. Demean
  within units; the month dummies demeaned the same way span what is left, and their Gram matrix
  is only months by months, ``G = diag(v by month) - C' diag(1/v by unit) C`` with ``C`` the
  unit-by-month sums of ``v``. The month part is ``D~ gamma`` with
  ``G gamma = D~' V x~``, solved by an eigendecomposition that drops ``G``'s null space (the
  month effects are identified only up to a constant per connected part of the unit-month
  graph, which does not change the fit).
- **Poisson** with both effects is maximised over the months and the regressors alone: for
  given ``eta = g[month] + x b`` each unit's effect has the closed form
  ``exp(a_u) = sum_t w y / sum_t w exp(eta)``, so the concentrated log-likelihood
  ``sum w y eta - sum_u Y_u log sum_t w exp(eta)`` (``Y_u = sum_t w y``) has as many parameters
  as months plus regressors. Its gradient is ``[D, X]' w (y - mu)`` and its negative Hessian is
  the information ``[D~, X~]' W [D~, X~]`` with ``W = w mu`` and ``~`` the within-unit demeaning
  with weights ``W``: the same blocks as residualising. Newton's method with step halving on the
  concentrated likelihood converges quadratically (five to eight iterations on the study's
  panels, each a few group sums) to the maximum likelihood estimate; pyfixest's IWLS, stopped by
  its deviance criterion, reaches the same estimate to about 1e-10 (the tests check both against
  a tightly converged ``fit_fe``).

Rows must have positive weights; a unit or month whose outcome is always zero must be dropped
first (its effect is minus infinity), as :func:`careval.impact.fastfe.fit_points` and the
two-way variance do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse

_EIG_TOL = 1e-10  # eigenvalues of G below this fraction of the largest are its null space
_STEP_TOL = 1e-10  # Newton stops when no parameter moves more than this
_DEV_TOL = 1e-8  # or, while a coefficient runs off, when the deviance changes less (fixest)
_RUNNING = 1e-3  # a coefficient's step this large once the deviance has settled: running off
_MAXITER = 100
_HALVINGS = 40
_MAX_PATTERN_ROWS = 1_000  # units with more rows than this are not grouped into patterns
_MAX_PATTERN_SHARE = 0.5  # nor when the patterns would be more than this share of the units
_DENSE_CELLS = 1 << 20  # units times months up to which the months' Gram matrix is built dense


def group_sums(groups: np.ndarray, weights: np.ndarray | None, x: np.ndarray, n: int) -> np.ndarray:
    """Per-group sums of ``weights * x`` (each column of a 2-d ``x``; no weights: of ``x``)."""
    if x.ndim == 1:
        return np.bincount(groups, weights=x if weights is None else weights * x, minlength=n)
    out = np.empty((n, x.shape[1]))
    for j in range(x.shape[1]):
        col = x[:, j] if weights is None else weights * x[:, j]
        out[:, j] = np.bincount(groups, weights=col, minlength=n)
    return out


@dataclass(frozen=True)
class Blocks:
    """The within-unit pieces of ``[D, X]' V [D, X]`` for weights ``V``.

    ``xu``: ``X`` demeaned within units; ``gram``: the months' ``D~' V D~``; ``cross``:
    ``D~' V X~`` (months by regressors); ``xx``: ``X~' V X~``; ``v`` and ``inv_total``: the
    weights and each unit's ``1 / sum V``, which demean the month dummies.
    """

    xu: np.ndarray
    gram: np.ndarray
    cross: np.ndarray
    xx: np.ndarray
    v: np.ndarray
    inv_total: np.ndarray


class UnitMonth:
    """A panel's unit and month codes (0-based integers), for exact absorption.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> u, m = np.repeat(np.arange(30), 5), np.tile(np.arange(5), 30)
    >>> x = rng.normal(size=(150, 1)) + u[:, None] + m[:, None]
    >>> r = UnitMonth(u, m).residualize(x, np.ones(150))
    >>> bool(np.allclose(np.bincount(u, weights=r[:, 0]), 0))
    True
    >>> bool(np.allclose(np.bincount(m, weights=r[:, 0]), 0))
    True
    """

    def __init__(self, unit: np.ndarray, month: np.ndarray) -> None:
        self.unit = np.asarray(unit, dtype=np.int64)
        self.month = np.asarray(month, dtype=np.int64)
        self.n_units = int(self.unit.max()) + 1 if self.unit.size else 0
        self.n_months = int(self.month.max()) + 1 if self.month.size else 0

    def blocks(self, v: np.ndarray, x: np.ndarray, gram: np.ndarray | None = None) -> Blocks:
        """The information blocks for positive weights ``v`` and regressors ``x`` (n by k);
        ``gram``: the months' Gram matrix for these weights, if already known (it does not
        depend on ``x``)."""
        u, m, nu, nm = self.unit, self.month, self.n_units, self.n_months
        total = np.bincount(u, weights=v, minlength=nu)
        inv = np.divide(1.0, total, out=np.zeros(nu), where=total > 0)
        xu = x - (group_sums(u, v, x, nu) * inv[:, None])[u]
        if gram is None:
            gram = self.gram(v, inv)
        cross = group_sums(m, v, xu, nm)
        xx = (xu * v[:, None]).T @ xu
        return Blocks(xu, gram, cross, xx, v, inv)

    def gram(self, v: np.ndarray, inv_total: np.ndarray) -> np.ndarray:
        """``D~' V D~ = diag(v by month) - C' diag(1 / v by unit) C``, ``C`` the unit-by-month
        sums of ``v``: dense when units times months is small, else sparse (a unit has rows in
        few of the months)."""
        u, m, nu, nm = self.unit, self.month, self.n_units, self.n_months
        by_month = np.bincount(m, weights=v, minlength=nm)
        if nu * nm <= _DENSE_CELLS:
            c = np.bincount(u * nm + m, weights=v, minlength=nu * nm).reshape(nu, nm)
            return np.diag(by_month) - (c * inv_total[:, None]).T @ c
        # rows by unit (as given when sorted), one entry per row: repeated cells add up
        order = slice(None) if bool((np.diff(u) >= 0).all()) else np.argsort(u, kind="stable")
        ptr = np.r_[0, np.cumsum(np.bincount(u, minlength=nu))]
        vo, mo = v[order], m[order]
        c = scipy.sparse.csr_matrix((vo, mo, ptr), shape=(nu, nm))
        scaled = scipy.sparse.csr_matrix((vo * inv_total[u[order]], mo, ptr), shape=(nu, nm))
        return np.diag(by_month) - np.asarray((c.T @ scaled).toarray())

    def month_part(self, b: Blocks, gamma: np.ndarray) -> np.ndarray:
        """``D~ gamma``: month effects ``gamma`` (months, or months by columns) demeaned within
        units with the blocks' weights."""
        g = gamma[self.month]
        return g - (group_sums(self.unit, b.v, g, self.n_units) * _col(b.inv_total, g))[self.unit]

    def residualize(
        self, x: np.ndarray, v: np.ndarray, gram: np.ndarray | None = None
    ) -> np.ndarray:
        """``x`` (n by k) residualised on the unit and month effects with weights ``v``
        (``gram``: :meth:`blocks`')."""
        b = self.blocks(v, x, gram)
        return b.xu - self.month_part(b, pinv_solve(b.gram, b.cross))


def _col(a: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``a`` as a column when ``like`` is 2-d."""
    return a[:, None] if like.ndim == 2 else a


def pinv_solve(g: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """The minimum-norm solution of ``g a = rhs`` for symmetric positive semi-definite ``g``."""
    if g.size == 0:
        return np.zeros_like(rhs)
    lam, q = np.linalg.eigh(g)
    keep = lam > _EIG_TOL * max(float(lam.max()), 0.0)
    if not keep.any():
        return np.zeros_like(rhs)
    qk = q[:, keep]
    scaled = (qk.T @ rhs) / (lam[keep][:, None] if rhs.ndim == 2 else lam[keep])
    return np.asarray(qk @ scaled)


@dataclass(frozen=True)
class Patterns:
    """Units grouped by the pattern of their rows, for a likelihood that sees units only
    through it.

    Two units whose rows have the same months and regressors (and weights, unless each
    unit's weight is constant) in the same order have the same within-unit shares
    ``w exp(eta) / sum_t w exp(eta)`` whatever the coefficients, so Poisson's concentrated
    likelihood, its gradient and its information need each pattern once, with the units' outcome
    totals added: the matched panel's units (a set's treated person or control, each month from
    before entry to death, censoring or the data's end) fall into far fewer patterns than units
    (about 1,000 for 9,300 units, 32,000 rows for 387,000, at 100,000 people).

    ``fe``: the pattern rows' (pattern, month); ``take``: for each pattern row, the original row
    it is read from; ``of_row``: each original row's pattern row; ``of_unit``: each unit's
    pattern; ``weighted``: whether the weights are part of the pattern (else each unit's weight,
    ``unit_w``, is constant and cancels from its shares).
    """

    fe: UnitMonth
    take: np.ndarray
    of_row: np.ndarray
    of_unit: np.ndarray
    weighted: bool
    unit_w: np.ndarray

    @classmethod
    def of(cls, fe: UnitMonth, w: np.ndarray, cols: Sequence[np.ndarray]) -> Patterns:
        """The patterns of the units' rows of the columns ``cols`` and weights ``w``; every
        unit its own pattern when the rows are not sorted by unit and month (or patterns would
        save little)."""
        u, m, n = fe.unit, fe.month, fe.unit.size
        if n < 2 or not _sorted(u, m):
            return cls.own(fe)
        count = np.bincount(u, minlength=fe.n_units)
        start = np.r_[0, np.cumsum(count)[:-1]]
        weighted = bool((w != w[start[u]]).any())
        code, levels = m, fe.n_months  # each row's (month, columns, weight) as one code
        for c in [*cols, *([w] if weighted else [])]:
            f, n_f = _small_codes(c)
            if levels * n_f >= 2**62:
                code, levels = dense_codes(code)
            code, levels = code * n_f + f, levels * n_f
        width = int(count.max())
        if width > _MAX_PATTERN_ROWS:
            return cls.own(fe)
        grid = np.full((fe.n_units, width), -1, dtype=np.int64)
        pos = np.arange(n) - start[u]
        grid[u, pos] = code
        # a 64-bit hash per unit, then checked exactly (a collision would only cost the saving)
        mult = np.random.default_rng(0).integers(1, 2**62, width, dtype=np.uint64) | np.uint64(1)
        with np.errstate(over="ignore"):
            h = ((grid + 1).astype(np.uint64) * mult).sum(axis=1)
        of_unit, hashes = pd.factorize(h)
        n_pat = len(hashes)
        rep = np.unique(of_unit, return_index=True)[1]  # each pattern's first unit
        if n_pat > _MAX_PATTERN_SHARE * fe.n_units or not (grid == grid[rep[of_unit]]).all():
            return cls.own(fe)
        rows = count[rep]
        first = np.r_[0, np.cumsum(rows)[:-1]]
        pat_of_row = np.repeat(np.arange(n_pat), rows)
        take = start[rep][pat_of_row] + (np.arange(rows.sum()) - first[pat_of_row])
        of_row = first[of_unit[u]] + pos
        unit_w = np.ones(fe.n_units) if weighted else w[np.minimum(start, n - 1)]
        return cls(UnitMonth(pat_of_row, m[take]), take, of_row, of_unit, weighted, unit_w)

    @classmethod
    def own(cls, fe: UnitMonth) -> Patterns:
        """Every unit its own pattern."""
        n = fe.unit.size
        return cls(fe, np.arange(n), np.arange(n), np.arange(fe.n_units), True, np.ones(fe.n_units))

    def pattern_w(self, w: np.ndarray) -> np.ndarray:
        """The weights of the pattern rows' own (the rows' when they are part of the pattern,
        else 1: each unit's constant weight is in ``unit_w``)."""
        return w[self.take] if self.weighted else np.ones(self.take.size)

    def row_weights(self, w: np.ndarray, unit_factor: np.ndarray) -> np.ndarray:
        """The pattern rows' summed weights ``w * unit_factor[unit]`` over their units
        (``unit_factor`` one number per unit)."""
        per = np.bincount(
            self.of_unit, weights=self.unit_w * unit_factor, minlength=self.fe.n_units
        )
        return self.pattern_w(w) * per[self.fe.unit]

    def multiplicity(self) -> np.ndarray:
        """How many units each pattern row stands for."""
        return np.bincount(self.of_unit, minlength=self.fe.n_units)[self.fe.unit].astype(float)


def dense_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes ``0 .. n - 1`` of the distinct values in sorted order, and ``n``; integers of a
    small range by counting (no hashing or sorting)."""
    v = np.asarray(values)
    if v.size and np.issubdtype(v.dtype, np.integer):
        lo, hi = int(v.min()), int(v.max())
        if hi - lo <= 4 * v.size + 1024:
            present = np.bincount(v - lo, minlength=hi - lo + 1) > 0
            remap = np.cumsum(present) - 1
            return remap[v - lo], int(present.sum())
    codes, uniques = pd.factorize(v, sort=True)
    return codes.astype(np.int64), len(uniques)


def sorted_codes(s: pd.Series) -> np.ndarray:
    """A column's codes in the order of its values, -1 where missing (the units' patterns need
    months in order)."""
    if s.dtype.kind in "iu":  # numpy integers (no missing values)
        return dense_codes(s.to_numpy())[0]
    return pd.factorize(s, sort=True)[0].astype(np.int64)


def _small_codes(c: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes of a column and their number: 0/1 and other small whole numbers directly."""
    lo, hi = float(c.min()), float(c.max())
    if hi - lo < 256 and np.isfinite(lo) and np.isfinite(hi):
        f = c - lo
        ints = f.astype(np.int64)
        if (ints == f).all():
            return ints, int(hi - lo) + 1
    return dense_codes(c)


def _sorted(u: np.ndarray, m: np.ndarray) -> bool:
    """Rows sorted by unit, and by month within unit with no month twice."""
    du, dm = np.diff(u), np.diff(m)
    return bool(((du > 0) | ((du == 0) & (dm > 0))).all())


@dataclass(frozen=True)
class PoissonFit:
    """Newton's answer: coefficients, month effects (up to a constant), the fitted means, the
    regressors residualised on the effects with the fit's weights ``w mu`` (the ``X~`` of the
    information ``X~' W X~``: ``xtilde``, the same for every unit of a pattern, so kept per
    pattern row, ``pattern_xtilde``, with each row's pattern row, ``of_row``), whether it
    converged and in how many iterations."""

    beta: np.ndarray
    month_effects: np.ndarray
    mu: np.ndarray
    pattern_xtilde: np.ndarray
    of_row: np.ndarray
    converged: bool
    iterations: int

    @property
    def xtilde(self) -> np.ndarray:
        """``X~`` per row."""
        return self.pattern_xtilde[self.of_row]


def poisson(
    fe: UnitMonth,
    y: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    beta: np.ndarray | None = None,
    patterns: Patterns | None = None,
) -> PoissonFit:
    """Weighted Poisson maximum likelihood with unit and month effects, by Newton's method on
    the likelihood concentrated over the units (see the module docstring), on the units'
    patterns (:class:`Patterns`).

    With ``beta`` given the coefficients are held there and only the month (and unit) effects
    are fitted: the means of given coefficients. Every unit and every month must have a positive
    outcome somewhere, and ``x`` must not be collinear with the effects. ``patterns``: those of
    ``x``'s columns (or more) and ``w``, if already found.
    """
    k = x.shape[1]
    free_beta = beta is None
    pt = patterns or Patterns.of(fe, w, list(x.T))
    pfe, take = pt.fe, pt.take
    xp, wp = x[take], pt.pattern_w(w)
    wy = w * y
    y_unit = np.bincount(fe.unit, weights=wy, minlength=fe.n_units)
    y_pat = np.bincount(pt.of_unit, weights=y_unit, minlength=pfe.n_units)
    pos = y_pat > 0
    lin_g = np.bincount(fe.month, weights=wy, minlength=fe.n_months)  # the likelihood's
    lin_b = x.T @ wy  # linear part, from the rows

    first = _starts(pfe.unit) if _sorted(pfe.unit, pfe.month) else None

    def at(g: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Concentrated log-likelihood (up to a constant), each pattern row's summed ``w mu``,
        its ``w exp(eta - top)`` and each pattern's sum of those (``top``: the pattern's largest
        ``eta``, which keeps every pattern's sum from underflowing)."""
        eta = g[pfe.month] + xp @ b
        top = _group_max(pfe.unit, eta, pfe.n_units, first)
        e = wp * np.exp(eta - top[pfe.unit])
        s = np.bincount(pfe.unit, weights=e, minlength=pfe.n_units)
        ll = float(lin_g @ g + lin_b @ b - y_pat[pos] @ (np.log(s[pos]) + top[pos]))
        share = np.divide(y_pat, s, out=np.zeros(pfe.n_units), where=s > 0)
        return ll, e * share[pfe.unit], e, s

    # the deviance is 2 (dev_c - ll), dev_c from the outcomes and the units' totals
    y_of_unit = y_unit / pt.unit_w
    ypos, upos = y > 0, y_unit > 0
    dev_c = float(wy[ypos] @ np.log(y[ypos]) - y_unit[upos] @ np.log(y_of_unit[upos]))
    g, b = np.zeros(fe.n_months), (np.zeros(k) if beta is None else np.asarray(beta, float))
    ll, wmu, e, s = at(g, b)
    converged, iterations = False, 0
    while not converged and iterations < _MAXITER:
        iterations += 1
        bl = pfe.blocks(wmu, xp)
        grad_g = lin_g - np.bincount(pfe.month, weights=wmu, minlength=fe.n_months)
        # Newton's step by the Schur complement on the regressors (the months' Gram matrix is
        # singular: see the module docstring)
        if k and free_beta:
            gc = pinv_solve(bl.gram, np.column_stack([bl.cross, grad_g]))
            g_cross, g_grad = gc[:, :k], gc[:, k]
            schur = bl.xx - bl.cross.T @ g_cross
            d_b = np.linalg.solve(schur, lin_b - xp.T @ wmu - bl.cross.T @ g_grad)
            d_g = g_grad - g_cross @ d_b
        else:
            d_b = np.zeros(k)
            d_g = pinv_solve(bl.gram, grad_g)
        step, better = 1.0, False
        for _ in range(_HALVINGS):
            trial = at(g + step * d_g, b + step * d_b)
            if np.isfinite(trial[0]) and trial[0] >= ll - 1e-12 * abs(ll):
                better = True
                break
            step /= 2
        if not better:
            break
        moved = step * max(np.abs(d_g).max(initial=0.0), np.abs(d_b).max(initial=0.0))
        gain = trial[0] - ll
        g, b = g + step * d_g, b + step * d_b
        ll, wmu, e, s = trial
        # exact: until nothing moves; but where a regressor's coefficient runs off to minus
        # infinity (separation: each step moves it by about one), stop as pyfixest's IWLS does, when
        # the deviance 2 (dev_c - ll) changes by less than 1e-8 relatively
        running = step * np.abs(d_b).max(initial=0.0) > _RUNNING
        converged = moved < _STEP_TOL or (
            running and 2 * gain < _DEV_TOL * (0.1 + abs(2 * (dev_c - ll)))
        )
    # each row's mean: its pattern row's exp(eta - top) times the unit's outcome total over the
    # pattern's sum (the unit's constant weight cancels when it is not part of the pattern)
    pat = pt.of_unit[fe.unit]
    mu = (e / wp)[pt.of_row] * y_of_unit[fe.unit] / np.where(s > 0, s, 1)[pat]
    xt = pfe.residualize(xp, wmu) if k else np.zeros((pfe.unit.size, 0))
    return PoissonFit(b, g, mu, xt, pt.of_row, converged, iterations)


def _starts(unit: np.ndarray) -> np.ndarray:
    """Each unit's first row (rows sorted by unit, every unit present)."""
    return np.r_[0, np.flatnonzero(np.diff(unit)) + 1]


def _group_max(unit: np.ndarray, v: np.ndarray, n: int, starts: np.ndarray | None) -> np.ndarray:
    """Each unit's largest ``v`` (``starts``: the units' first rows when sorted)."""
    if starts is not None and starts.size == n:
        return np.maximum.reduceat(v, starts)
    out = np.full(n, -np.inf)
    np.maximum.at(out, unit, v)
    return np.where(np.isfinite(out), out, 0.0)
