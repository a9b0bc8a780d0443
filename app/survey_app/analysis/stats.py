"""Survey statistics from counts and moments, with the standard library only.

Everything here works on *summaries* (counts per cell, moments per cell) so the
report can aggregate in SQL and never pull respondents into Python.

Formulas (n respondents, N households, weights w_i):

- Student t quantile: Newton's method on the t tail (regularised incomplete beta,
  continued fraction), started from a Cornish–Fisher expansion; accurate to ~1e-10.
- Wilson score interval for a proportion p with (effective) size m:
  (p + z²/2m ± z·sqrt(p(1−p)/m + z²/4m²)) / (1 + z²/m).
- Finite-population correction: fpc = 1 − n/N (Cochran). A proportion's Wilson
  interval uses m = n_eff / fpc; a mean's standard error is multiplied by sqrt(fpc).
- Kish effective sample size: n_eff = (Σw)² / Σw²; design effect deff = n / n_eff.
- Weighted mean ȳ = Σwy / Σw; s² = [Σw(y − ȳ)² / Σw] · n/(n − 1);
  SE = sqrt(fpc) · s / sqrt(n_eff); t-interval with df = n_eff − 1. With equal
  weights these are the textbook s²/n and df = n − 1.
- Post-stratification: expansion weight w_c = N_c / n_c in each cell c, so the
  weights add up to the households of the census. Cells of the census without
  respondents are collapsed (see `poststratify`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from statistics import NormalDist

_STANDARD_NORMAL = NormalDist()


# ---------------------------------------------------------------- distributions


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def regularized_beta(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` (real, > 0) degrees of freedom."""
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2.0, 0.5)
    return tail if t >= 0 else 1.0 - tail


def t_density(t: float, df: float) -> float:
    """Density of Student's t."""
    return math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                    - 0.5 * math.log(df * math.pi) - (df + 1) / 2 * math.log1p(t * t / df))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom (df may be fractional)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    q = 1.0 - p
    z = _STANDARD_NORMAL.inv_cdf(p)
    guess = (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
             + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))
    low, high = 0.0, max(guess, 1.0)
    while t_upper_tail(high, df) > q:  # bracket the root
        low, high = high, high * 2.0
    t = min(max(guess, low), high)
    for _ in range(100):
        error = t_upper_tail(t, df) - q  # decreasing in t
        if error > 0:
            low = t
        else:
            high = t
        step = error / t_density(t, df)
        candidate = t + step
        if not low < candidate < high:
            candidate = (low + high) / 2.0
        if abs(candidate - t) <= 1e-13 * max(1.0, abs(t)):
            return candidate
        t = candidate
    return t


def z_value(confidence: float) -> float:
    """Two-sided standard normal critical value for `confidence` (0.95 → 1.96)."""
    return _STANDARD_NORMAL.inv_cdf(0.5 + confidence / 2.0)


# ---------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float

    @property
    def margin(self) -> float:
        """The larger distance from the estimate to an end of the interval."""
        return max(self.estimate - self.low, self.high - self.estimate)

    def scaled(self, factor: float) -> Interval:
        """The same interval multiplied by a non-negative factor."""
        return Interval(self.estimate * factor, self.low * factor, self.high * factor)


def finite_population_correction(n: float, population: float | None) -> float:
    """fpc = 1 − n/N; 1 when the population is unknown."""
    if population is None:
        return 1.0
    if population <= 0 or n > population:
        raise ValueError("the sample cannot be larger than the population")
    return 1.0 - n / population


def wilson_interval(p: float, size: float, confidence: float = 0.95,
                    fpc: float = 1.0) -> Interval:
    """Wilson score interval for proportion `p` from an (effective) sample `size`."""
    if not 0.0 <= p <= 1.0:
        raise ValueError("a proportion lies in [0, 1]")
    if size <= 0:
        raise ValueError("the sample size must be positive")
    if fpc <= 0:
        return Interval(p, p, p)
    m = size / fpc
    z = z_value(confidence)
    z2 = z * z
    denominator = 1.0 + z2 / m
    centre = (p + z2 / (2 * m)) / denominator
    half = z * math.sqrt(p * (1 - p) / m + z2 / (4 * m * m)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


# ---------------------------------------------------------------- moments


def _decimal_ss(n: int, total: Decimal, total_sq: Decimal) -> float:
    with localcontext() as ctx:
        ctx.prec = 60
        return float(total_sq - total * total / n)


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations of one cell's values."""

    n: int
    mean: float
    ss: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        """Moments of a list of values."""
        data = [float(v) for v in values]
        if not data:
            return cls(0, 0.0, 0.0)
        mean = math.fsum(data) / len(data)
        return cls(len(data), mean, math.fsum((v - mean) ** 2 for v in data))

    @classmethod
    def from_sums(cls, n: int, total: float | Decimal, total_sq: float | Decimal) -> Moments:
        """Moments from n, Σy and Σy² (exactly, when SQL hands back Decimals)."""
        if n <= 0:
            return cls(0, 0.0, 0.0)
        if isinstance(total, Decimal) and isinstance(total_sq, Decimal):
            ss = _decimal_ss(n, total, total_sq)
        else:
            ss = float(total_sq) - float(total) ** 2 / n
        return cls(n, float(total) / n, max(ss, 0.0))

    def __add__(self, other: Moments) -> Moments:
        """Pool two cells (Chan et al.'s parallel update)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return Moments(n, self.mean + delta * other.n / n,
                       self.ss + other.ss + delta * delta * self.n * other.n / n)


def kish_effective_size(weights: Iterable[tuple[float, float]]) -> float:
    """Kish's n_eff = (Σw)²/Σw² over (weight, number of respondents with it) pairs."""
    total = squares = 0.0
    for weight, count in weights:
        total += weight * count
        squares += weight * weight * count
    return total * total / squares if squares else 0.0


@dataclass(frozen=True)
class MeanEstimate:
    """A (weighted) mean with its t-interval and the sample it came from."""

    interval: Interval
    n: int
    n_eff: float
    sd: float


def mean_interval(cells: Iterable[tuple[float, Moments]], confidence: float = 0.95,
                  population: float | None = None) -> MeanEstimate | None:
    """Weighted mean and t-interval from (weight, Moments) per cell; None without data.

    Every respondent of a cell carries that cell's weight (weight 1 everywhere gives
    the unweighted textbook interval).
    """
    cells = [(w, m) for w, m in cells if m.n > 0]
    n = sum(m.n for _, m in cells)
    if n == 0:
        return None
    weight_total = sum(w * m.n for w, m in cells)
    mean = sum(w * m.n * m.mean for w, m in cells) / weight_total
    n_eff = kish_effective_size((w, m.n) for w, m in cells)
    if n < 2:
        return MeanEstimate(Interval(mean, mean, mean), n, n_eff, 0.0)
    weighted_ss = sum(w * (m.ss + m.n * (m.mean - mean) ** 2) for w, m in cells)
    variance = weighted_ss / weight_total * n / (n - 1)
    sd = math.sqrt(max(variance, 0.0))
    fpc = finite_population_correction(n, population)
    se = math.sqrt(fpc) * sd / math.sqrt(n_eff)
    half = t_quantile(0.5 + confidence / 2.0, max(n_eff - 1.0, 1.0)) * se
    return MeanEstimate(Interval(mean, mean - half, mean + half), n, n_eff, sd)


# ---------------------------------------------------------------- weighting


@dataclass(frozen=True)
class Collapse:
    """A census cell without respondents whose households went to other cells."""

    cell: Hashable
    into: tuple[Hashable, ...]


@dataclass(frozen=True)
class PostStratification:
    """Expansion weights per sample cell after collapsing empty census cells."""

    weights: dict[Hashable, float]
    population: dict[Hashable, float]
    collapsed: tuple[Collapse, ...] = ()
    unmatched: tuple[Hashable, ...] = ()

    @property
    def total(self) -> float:
        """Households the weights add up to."""
        return sum(self.population.values())


def poststratify(
    sample: Mapping[Hashable, int],
    population: Mapping[Hashable, float],
    merge_candidates: Callable[[Hashable], Sequence[Hashable]] | None = None,
) -> PostStratification:
    """Post-stratification weights w_c = N_c / n_c (households per respondent).

    A census cell with households but no respondent is collapsed: its households go
    to the first cell of `merge_candidates(cell)` that has respondents (e.g. the
    nearest income bracket in the same neighbourhood); failing that, they are spread
    over every cell with respondents in proportion to the cells' households (which
    amounts to giving them the overall weighted mean). Sample cells absent from the
    census ("unmatched") get the mean weight and are reported.
    """
    observed = {c: n for c, n in sample.items() if n > 0}
    if not observed:
        return PostStratification({}, {})
    adjusted = {c: float(population.get(c, 0.0)) for c in observed if c in population}
    collapsed: list[Collapse] = []
    spread = 0.0
    for cell, households in population.items():
        if cell in observed or households <= 0:
            continue
        candidates = [c for c in (merge_candidates(cell) if merge_candidates else ())
                      if c in adjusted]
        if candidates:
            adjusted[candidates[0]] += households
            collapsed.append(Collapse(cell, (candidates[0],)))
        else:
            spread += households
            collapsed.append(Collapse(cell, ()))
    matched_total = sum(adjusted.values())
    if spread and matched_total:
        adjusted = {c: n + spread * n / matched_total for c, n in adjusted.items()}
    weights = {c: adjusted[c] / observed[c] for c in adjusted if adjusted[c] > 0}
    unmatched = tuple(c for c in observed if c not in weights)
    if unmatched:
        matched_n = sum(observed[c] for c in weights)
        mean_weight = sum(adjusted.values()) / matched_n if matched_n else 1.0
        for c in unmatched:
            weights[c] = mean_weight
            adjusted[c] = mean_weight * observed[c]
    return PostStratification(weights, adjusted, tuple(collapsed), unmatched)


# ---------------------------------------------------------------- shares and cross-tabs


@dataclass(frozen=True)
class Share:
    """One answer's share, unweighted and weighted, each with its Wilson interval."""

    value: Hashable
    count: int
    unweighted: Interval
    weighted: Interval


def shares(
    counts: Mapping[tuple[Hashable, Hashable], int],
    weights: Mapping[Hashable, float],
    cell_sizes: Mapping[Hashable, int],
    values: Sequence[Hashable],
    confidence: float = 0.95,
    population: float | None = None,
) -> list[Share]:
    """Shares of respondents giving each value, from counts per (cell, value).

    `cell_sizes` counts the respondents of each cell who answered (the base); the
    weighted interval uses Kish's n_eff of that base, with the fpc when N is given.
    """
    n = sum(cell_sizes.values())
    if n == 0:
        return []
    base = sum(weights[c] * size for c, size in cell_sizes.items())
    n_eff = kish_effective_size((weights[c], size) for c, size in cell_sizes.items())
    fpc = finite_population_correction(n, population)
    raw: dict[Hashable, int] = dict.fromkeys(values, 0)
    weighted: dict[Hashable, float] = dict.fromkeys(values, 0.0)
    for (cell, value), count in counts.items():
        if value in raw:
            raw[value] += count
            weighted[value] += weights[cell] * count
    return [
        Share(value, raw[value],
              wilson_interval(raw[value] / n, n, confidence, fpc),
              wilson_interval(min(weighted[value] / base, 1.0), n_eff, confidence, fpc))
        for value in values
    ]


@dataclass(frozen=True)
class CrossTab:
    """Weighted counts of rows × columns with each row's shares (rows add up to 1)."""

    rows: tuple[Hashable, ...]
    columns: tuple[Hashable, ...]
    counts: dict[tuple[Hashable, Hashable], int]
    weighted: dict[tuple[Hashable, Hashable], float]
    row_shares: dict[tuple[Hashable, Hashable], float] = field(default_factory=dict)


def crosstab(
    counts: Mapping[tuple[Hashable, Hashable, Hashable], int],
    weights: Mapping[Hashable, float],
    rows: Sequence[Hashable],
    columns: Sequence[Hashable],
) -> CrossTab:
    """Cross-tab from counts per (weighting cell, row value, column value)."""
    raw: dict[tuple[Hashable, Hashable], int] = {(r, c): 0 for r in rows for c in columns}
    weighted: dict[tuple[Hashable, Hashable], float] = dict.fromkeys(raw, 0.0)
    for (cell, row, column), count in counts.items():
        if (row, column) in raw:
            raw[row, column] += count
            weighted[row, column] += weights[cell] * count
    row_shares = {}
    for r in rows:
        total = sum(weighted[r, c] for c in columns)
        for c in columns:
            row_shares[r, c] = weighted[r, c] / total if total else 0.0
    return CrossTab(tuple(rows), tuple(columns), raw, weighted, row_shares)
