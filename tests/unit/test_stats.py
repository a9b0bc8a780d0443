"""survey_app.analysis.stats against independent implementations (scipy, statsmodels,
numpy textbook formulas) and worked examples computed by hand."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from survey_app.analysis.stats import (
    Moments,
    crosstab,
    finite_population_correction,
    kish_effective_size,
    mean_interval,
    poststratify,
    shares,
    t_quantile,
    wilson_interval,
)

# ---------------------------------------------------------------- t quantile


@pytest.mark.parametrize("df", [0.7, 1, 1.5, 2, 2.5, 3, 4, 5, 7.3, 10, 29, 30.5, 120, 1e4])
@pytest.mark.parametrize("p", [0.0005, 0.01, 0.025, 0.1, 0.4, 0.5, 0.6, 0.9, 0.95, 0.975,
                               0.99, 0.995, 0.9995])
def test_t_quantile_matches_scipy(p, df):
    expected = sps.t.ppf(p, df)
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-6, rel=1e-7)


@pytest.mark.parametrize("p, df", [(0, 5), (1, 5), (0.5, 0), (0.9, -1)])
def test_t_quantile_rejects_bad_arguments(p, df):
    with pytest.raises(ValueError):
        t_quantile(p, df)


# ---------------------------------------------------------------- Wilson


@pytest.mark.parametrize("count, n", [(0, 10), (1, 10), (5, 10), (10, 10), (37, 250),
                                      (999, 1000), (3, 7)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_statsmodels(count, n, confidence):
    low, high = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    interval = wilson_interval(count / n, n, confidence)
    assert interval.estimate == count / n
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)


def test_wilson_with_effective_size_and_fpc_matches_statsmodels_on_adjusted_n():
    # p from weights, n_eff = 123.4, N = 1000 households, n = 200 respondents
    p, n_eff, fpc = 0.3172, 123.4, finite_population_correction(200, 1000)
    assert fpc == pytest.approx(0.8)
    low, high = proportion_confint(p * n_eff / fpc, n_eff / fpc, method="wilson")
    interval = wilson_interval(p, n_eff, 0.95, fpc)
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)


def test_a_census_has_no_sampling_error():
    assert finite_population_correction(50, 50) == 0
    interval = wilson_interval(0.25, 50, fpc=0.0)
    assert (interval.low, interval.high) == (0.25, 0.25)
    with pytest.raises(ValueError):
        finite_population_correction(51, 50)
    assert finite_population_correction(51, None) == 1.0


# ---------------------------------------------------------------- moments and means


def test_moments_from_sql_sums_equal_moments_of_values():
    values = [Decimal("1234.56"), Decimal("0.01"), Decimal("49999.99"), Decimal("310.00")]
    from_sums = Moments.from_sums(len(values), sum(values), sum(v * v for v in values))
    direct = Moments.of(float(v) for v in values)
    assert from_sums.n == direct.n
    assert from_sums.mean == pytest.approx(direct.mean, rel=1e-15)
    assert from_sums.ss == pytest.approx(np.var([float(v) for v in values]) * 4, rel=1e-12)


def test_pooled_moments_equal_moments_of_the_union():
    rng = random.Random(3)
    a, b = [rng.gauss(500, 90) for _ in range(40)], [rng.gauss(800, 200) for _ in range(25)]
    pooled = Moments.of(a) + Moments.of(b)
    assert pooled.n == 65
    assert pooled.mean == pytest.approx(np.mean(a + b), rel=1e-12)
    assert pooled.ss == pytest.approx(np.var(a + b) * 65, rel=1e-10)


@pytest.mark.parametrize("population", [None, 5000])
def test_unweighted_mean_interval_matches_scipy(population):
    rng = np.random.default_rng(7)
    y = rng.lognormal(6.5, 0.5, size=57)
    estimate = mean_interval([(1.0, Moments.of(y))], 0.95, population)
    scale = sps.sem(y) * (math.sqrt(1 - len(y) / population) if population else 1.0)
    low, high = sps.t.interval(0.95, len(y) - 1, loc=y.mean(), scale=scale)
    assert estimate.n == 57 and estimate.n_eff == pytest.approx(57)
    assert estimate.interval.estimate == pytest.approx(y.mean(), rel=1e-12)
    assert (estimate.interval.low, estimate.interval.high) == pytest.approx((low, high), rel=1e-9)
    assert estimate.sd == pytest.approx(np.std(y, ddof=1), rel=1e-12)


def test_weighted_mean_interval_matches_textbook_formula_with_numpy():
    rng = np.random.default_rng(11)
    groups = [(40.0, rng.normal(900, 150, 30)), (120.0, rng.normal(600, 90, 12)),
              (75.0, rng.normal(1200, 300, 21))]
    y = np.concatenate([values for _, values in groups])
    w = np.concatenate([np.full(len(values), weight) for weight, values in groups])
    n = len(y)
    mean = np.average(y, weights=w)
    s2 = np.average((y - mean) ** 2, weights=w) * n / (n - 1)
    n_eff = w.sum() ** 2 / (w**2).sum()
    se = math.sqrt(s2 / n_eff)
    half = sps.t.ppf(0.975, n_eff - 1) * se
    # grouped cells (as the report passes them) and one cell per respondent agree
    grouped = mean_interval([(weight, Moments.of(values)) for weight, values in groups])
    single = mean_interval([(wi, Moments.of([yi])) for wi, yi in zip(w, y, strict=True)])
    for estimate in (grouped, single):
        assert estimate.n_eff == pytest.approx(n_eff, rel=1e-12)
        assert estimate.interval.estimate == pytest.approx(mean, rel=1e-12)
        assert estimate.interval.high - mean == pytest.approx(half, rel=1e-9)
        assert mean - estimate.interval.low == pytest.approx(half, rel=1e-9)


def test_mean_interval_of_nothing_and_of_one():
    assert mean_interval([]) is None
    one = mean_interval([(2.0, Moments.of([42.0]))])
    assert (one.interval.low, one.interval.estimate, one.interval.high) == (42.0, 42.0, 42.0)


# ---------------------------------------------------------------- weights


def test_kish_effective_size_by_hand():
    # weights 1, 1, 2, 4: (1+1+2+4)^2 / (1+1+4+16) = 64/22
    assert kish_effective_size([(1, 2), (2, 1), (4, 1)]) == pytest.approx(64 / 22)
    assert kish_effective_size([(3.5, 10)]) == pytest.approx(10)


def test_poststratification_worked_example():
    """Three strata, N_h = 1000, 2000, 3000 households; n_h = 20, 10, 30 respondents;
    sample means 50, 80, 40.

    w_h = N_h/n_h = 50, 200, 100. Post-stratified mean = (1000·50 + 2000·80 + 3000·40)/6000
    = 330000/6000 = 55 (the raw mean is (20·50 + 10·80 + 30·40)/60 = 50).
    n_eff = 6000² / (20·50² + 10·200² + 30·100²) = 36e6 / 750000 = 48.
    """
    ps = poststratify({"a": 20, "b": 10, "c": 30}, {"a": 1000, "b": 2000, "c": 3000})
    assert ps.weights == {"a": 50, "b": 200, "c": 100}
    assert ps.total == 6000 and not ps.collapsed and not ps.unmatched
    cells = [(ps.weights[h], Moments(n, mean, 0.0))
             for h, n, mean in (("a", 20, 50.0), ("b", 10, 80.0), ("c", 30, 40.0))]
    estimate = mean_interval(cells)
    assert estimate.interval.estimate == pytest.approx(55)
    assert estimate.n_eff == pytest.approx(48)
    assert mean_interval([(1.0, m) for _, m in cells]).interval.estimate == pytest.approx(50)


def test_empty_cell_collapses_into_the_first_candidate_with_respondents():
    sample = {("x", "low"): 4, ("x", "high"): 6, ("y", "low"): 5}
    population = {("x", "low"): 100, ("x", "mid"): 50, ("x", "high"): 300,
                  ("y", "low"): 200, ("y", "high"): 100}

    def nearest(cell):
        order = {"low": ["mid", "high"], "mid": ["low", "high"], "high": ["mid", "low"]}
        return [(cell[0], b) for b in order[cell[1]]]

    ps = poststratify(sample, population, nearest)
    # (x, mid) goes to (x, low) (nearest with respondents); (y, high) to (y, low)
    assert ps.population == {("x", "low"): 150, ("x", "high"): 300, ("y", "low"): 300}
    assert ps.weights == {("x", "low"): 37.5, ("x", "high"): 50, ("y", "low"): 60}
    assert {c.cell: c.into for c in ps.collapsed} == {("x", "mid"): (("x", "low"),),
                                                      ("y", "high"): (("y", "low"),)}
    assert ps.total == sum(population.values())


def test_neighbourhood_without_respondents_is_spread_and_unknown_cells_reported():
    ps = poststratify({"a": 10, "b": 30, "zzz": 5}, {"a": 1000, "b": 3000, "c": 4000})
    # c's 4000 households spread in proportion to a and b: a 2000, b 6000
    assert ps.population["a"] == pytest.approx(2000) and ps.population["b"] == pytest.approx(6000)
    assert ps.collapsed[0].cell == "c" and ps.collapsed[0].into == ()
    assert ps.unmatched == ("zzz",)
    assert ps.weights["zzz"] == pytest.approx(8000 / 40)  # the mean weight of the matched
    assert poststratify({}, {"a": 1}).weights == {}


# ---------------------------------------------------------------- shares and cross-tabs


def test_weighted_shares_by_hand_and_against_statsmodels():
    # two cells: weights 10 and 30; answers yes/no
    counts = {("a", "yes"): 6, ("a", "no"): 4, ("b", "yes"): 2, ("b", "no"): 8}
    weights, sizes = {"a": 10.0, "b": 30.0}, {"a": 10, "b": 10}
    result = {s.value: s for s in shares(counts, weights, sizes, ["yes", "no"])}
    yes = result["yes"]
    assert yes.count == 8
    assert yes.unweighted.estimate == pytest.approx(0.4)
    # weighted: (10·6 + 30·2) / (10·10 + 30·10) = 120/400
    assert yes.weighted.estimate == pytest.approx(0.3)
    n_eff = 400**2 / (100 * 10 + 900 * 10)  # = 16
    low, high = proportion_confint(0.3 * n_eff, n_eff, method="wilson")
    assert (yes.weighted.low, yes.weighted.high) == pytest.approx((low, high), abs=1e-12)
    low, high = proportion_confint(8, 20, method="wilson")
    assert (yes.unweighted.low, yes.unweighted.high) == pytest.approx((low, high), abs=1e-12)


def test_crosstab_row_shares_by_hand():
    counts = {("a", "r1", "c1"): 2, ("a", "r1", "c2"): 2, ("b", "r1", "c2"): 1,
              ("b", "r2", "c1"): 3}
    tab = crosstab(counts, {"a": 1.0, "b": 2.0}, ["r1", "r2"], ["c1", "c2"])
    assert tab.counts[("r1", "c2")] == 3
    assert tab.weighted[("r1", "c2")] == 4.0  # 2·1 + 1·2
    assert tab.row_shares[("r1", "c1")] == pytest.approx(2 / 6)
    assert tab.row_shares[("r2", "c1")] == 1.0 and tab.row_shares[("r2", "c2")] == 0.0
