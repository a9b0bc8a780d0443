"""Viability of the new store: demand, capture rate, revenue with a bootstrap interval.

Definitions (respondent i with weight w_i, monthly spend y_i in R$, purchase intent
k_i in 1..5 and share of spend moved s_i in {0, 25, 50, 75, 100}):

- Annual potential demand  D = 12 · Σ_i w_i y_i
  = Σ_h households_h · 12 · weighted mean monthly spend_h, since the
  post-stratification weights of a neighbourhood add up to its households.
- Capture of respondent i  c_i = p(k_i) · s_i/100 · (1 − o), with the intent
  calibration p = INTENT_PROBABILITY (stated intent overstates behaviour, so
  5 "very likely" counts 0.75, 4 "likely" 0.35, 3 "not sure" 0.10, 2 and 1 zero)
  and o the analyst's overstatement factor in [0, 1) (default 0.2) for what is still
  overstated about the share moved.
- Expected annual revenue  R = 12 · Σ_i w_i y_i c_i = (1 − o) · 12 · Σ_s N_s · v̄_s,
  with v_i = y_i · p(k_i) · s_i/100 and v̄_s its mean in weighting cell s (N_s its
  households). The capture rate is R / D (spend-weighted).
- Interval for R: stratified bootstrap, respondents resampled with replacement
  within each weighting cell (neighbourhood, or neighbourhood × income bracket; one
  cell when unweighted), conditional on the cell sizes; percentile interval of B
  replicates (default 1000) from a seeded generator.

How the bootstrap stays fast at 100,000 respondents: a replicate of cell s only
needs the mean of n_s values drawn from the cell. For cells of at most
EXACT_RESAMPLE_MAX respondents the values themselves are resampled. For larger
cells that mean is drawn from a shifted gamma distribution with exactly the mean,
variance (σ²/n_s) and third moment (μ₃/n_s²) of the resampling distribution, which
only needs n, Σv, Σv², Σv³ per cell from SQL (normal when the skewness is nil).
The error against full resampling is O(1/n_s) in the distribution function, far
below the Monte-Carlo noise of B = 1000; the cost is one variate per cell and
replicate instead of n_s. Because o only scales R, the replicates are drawn once
for o = 0 and scaled.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext

from survey_app.analysis.stats import Interval

INTENT_PROBABILITY: dict[int, Decimal] = {
    1: Decimal("0"), 2: Decimal("0"), 3: Decimal("0.10"), 4: Decimal("0.35"), 5: Decimal("0.75"),
}
DEFAULT_OVERSTATEMENT = 0.2
DEFAULT_REPLICATES = 1000
DEFAULT_SEED = 20261203
EXACT_RESAMPLE_MAX = 20
MONTHS = 12


def respondent_value(spend: float | Decimal, intent: int, share_moved: int) -> Decimal:
    """v_i = y_i · p(k_i) · s_i / 100, the monthly spend a respondent would move (o = 0)."""
    return Decimal(str(spend)) * INTENT_PROBABILITY[int(intent)] * int(share_moved) / 100


@dataclass(frozen=True)
class CellValues:
    """A bootstrap stratum: its households and the moved-spend values of its respondents.

    `sums` holds n, Σv, Σv², Σv³; `atoms` (value, count) pairs are needed only when
    n ≤ EXACT_RESAMPLE_MAX.
    """

    households: float
    n: int
    sums: tuple[Decimal, Decimal, Decimal]
    atoms: tuple[tuple[float, int], ...] = ()

    @classmethod
    def of(cls, households: float, values: Iterable[float | Decimal]) -> CellValues:
        """A cell from its respondents' values (tests, small samples)."""
        data = [Decimal(str(v)) for v in values]
        counts: dict[float, int] = {}
        for v in data:
            counts[float(v)] = counts.get(float(v), 0) + 1
        return cls(households, len(data), (sum(data, Decimal(0)),
                                           sum((v * v for v in data), Decimal(0)),
                                           sum((v * v * v for v in data), Decimal(0))),
                   tuple(sorted(counts.items())))

    def merged(self, other: CellValues) -> CellValues:
        """Two cells pooled into one stratum."""
        atoms: dict[float, int] = dict(self.atoms)
        for value, count in other.atoms:
            atoms[value] = atoms.get(value, 0) + count
        return CellValues(self.households + other.households, self.n + other.n,
                          tuple(a + b for a, b in zip(self.sums, other.sums, strict=True)),
                          tuple(sorted(atoms.items())))

    @property
    def mean(self) -> float:
        """v̄ of the cell."""
        return float(self.sums[0]) / self.n if self.n else 0.0

    def central_moments(self) -> tuple[float, float, float]:
        """Mean, variance σ² and third central moment μ₃ (divisor n), exactly."""
        n = self.n
        s1, s2, s3 = self.sums
        with localcontext() as ctx:
            ctx.prec = 60
            mean = s1 / n
            variance = s2 / n - mean * mean
            third = s3 / n - 3 * mean * s2 / n + 2 * mean**3
        return float(mean), max(float(variance), 0.0), float(third)


class _MeanSampler:
    """Draws one bootstrap replicate of a cell's mean."""

    def __init__(self, cell: CellValues):
        self.n = cell.n
        self.exact = (cell.n <= EXACT_RESAMPLE_MAX
                      and sum(count for _, count in cell.atoms) == cell.n)
        if self.exact:
            self.values = [v for v, _ in cell.atoms]
            running, self.cumulative = 0, []
            for _, count in cell.atoms:
                running += count
                self.cumulative.append(running)
            return
        mean, variance, third = cell.central_moments()
        self.mean = mean
        self.sd = math.sqrt(variance / cell.n)
        skew = third / cell.n**2 / self.sd**3 if self.sd > 0 else 0.0
        self.shape = 4.0 / (skew * skew) if abs(skew) > 1e-6 else math.inf
        self.scale = self.sd * skew / 2.0

    def draw(self, rng: random.Random) -> float:
        """One replicate of the cell mean."""
        if self.exact:
            return sum(rng.choices(self.values, cum_weights=self.cumulative,
                                         k=self.n)) / self.n
        if self.sd == 0:
            return self.mean
        if self.shape > 1e7:
            return rng.gauss(self.mean, self.sd)
        return self.mean + self.scale * (rng.gammavariate(self.shape, 1.0) - self.shape)


def bootstrap_replicates(cells: Sequence[CellValues], replicates: int = DEFAULT_REPLICATES,
                         seed: int = DEFAULT_SEED) -> list[float]:
    """Sorted bootstrap replicates of 12 · Σ_s N_s v̄_s* (revenue with o = 0)."""
    if replicates < 1:
        raise ValueError("at least one replicate")
    rng = random.Random(seed)  # noqa: S311 - statistics, not secrets
    samplers = [(MONTHS * c.households, _MeanSampler(c)) for c in cells if c.n > 0]
    return sorted(math.fsum(factor * s.draw(rng) for factor, s in samplers)
                  for _ in range(replicates))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation (numpy's default)."""
    position = q * (len(sorted_values) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


@dataclass(frozen=True)
class Viability:
    """Demand, capture rate and revenue (with interval) for one overstatement factor."""

    demand: float
    revenue: Interval
    capture_rate: float
    overstatement: float
    replicates: int


def estimate(cells: Sequence[CellValues], demand: float,
             overstatement: float = DEFAULT_OVERSTATEMENT,
             replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
             confidence: float = 0.95,
             bootstrap: Sequence[float] | None = None) -> Viability:
    """R = (1 − o) · 12 · Σ N_s v̄_s with its percentile bootstrap interval.

    `bootstrap` may pass replicates already drawn by `bootstrap_replicates` (cached).
    """
    if not 0.0 <= overstatement < 1.0:
        raise ValueError("the overstatement factor lies in [0, 1)")
    draws = bootstrap if bootstrap is not None else bootstrap_replicates(cells, replicates, seed)
    keep = 1.0 - overstatement
    point = MONTHS * math.fsum(c.households * c.mean for c in cells if c.n > 0)
    alpha = 1.0 - confidence
    revenue = Interval(point, percentile(draws, alpha / 2), percentile(draws, 1 - alpha / 2))
    return Viability(demand, revenue.scaled(keep), keep * point / demand if demand else 0.0,
                     overstatement, len(draws))


VIABLE, UNCERTAIN, NOT_VIABLE = "viable", "uncertain", "not_viable"


def verdict(revenue: Interval, break_even: float) -> str:
    """viable when the whole interval is at or above break-even, not viable when below."""
    if revenue.low >= break_even:
        return VIABLE
    if revenue.high < break_even:
        return NOT_VIABLE
    return UNCERTAIN


def strata(cells: Mapping[Hashable, CellValues], groups: Mapping[Hashable, Hashable],
           households: Mapping[Hashable, float]) -> list[CellValues]:
    """Fine cells pooled into bootstrap strata (`groups`: cell → stratum), with households."""
    pooled: dict[Hashable, CellValues] = {}
    for key, cell in cells.items():
        group = groups[key]
        pooled[group] = pooled[group].merged(cell) if group in pooled else cell
    return [replace(cell, households=households[group]) for group, cell in pooled.items()]
