"""The report's numbers, built from the SQL aggregates: a pure function of its inputs.

`build_report` turns the per-group aggregates of `queries` plus the census into
distributions, means, cross-tabs and the viability estimate for one weighting scheme;
the view only fetches, calls it and renders. The tests call it on the same data as the
page to check the figures shown.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from survey_app.analysis import viability
from survey_app.analysis.queries import SPEND_BRACKETS, Cell, Group, GroupAggregate
from survey_app.analysis.stats import (
    CrossTab,
    MeanEstimate,
    Moments,
    PostStratification,
    Share,
    crosstab,
    kish_effective_size,
    mean_interval,
    poststratify,
    shares,
)
from survey_app.census import Census
from survey_app.questionnaire import Kind, Question, Questionnaire

WEIGHTINGS = ("none", "neighbourhood", "neighbourhood_income")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Params:
    """What the analyst chose on the form."""

    weighting: str = "neighbourhood"
    overstatement: float = viability.DEFAULT_OVERSTATEMENT
    break_even: Decimal | None = None
    replicates: int = viability.DEFAULT_REPLICATES
    seed: int = viability.DEFAULT_SEED


@dataclass(frozen=True)
class Distribution:
    """One question's answers: shares per choice (unweighted and weighted)."""

    question: Question
    labels: dict[Hashable, Any]
    shares: list[Share]


@dataclass(frozen=True)
class MeanRow:
    """A mean shown in a table: unweighted and weighted."""

    label: Any
    unweighted: MeanEstimate | None
    weighted: MeanEstimate | None


@dataclass
class Report:
    """Everything the page shows."""

    params: Params
    n: int
    n_eff: float
    households: int
    weighting: PostStratification
    fpc_applied: bool
    distributions: list[Distribution]
    means: list[MeanRow]
    spend_by_neighbourhood: list[MeanRow]
    income_by_spend: CrossTab
    neighbourhood_by_intent: CrossTab
    demand: MeanEstimate | None
    viability: viability.Viability
    verdict: str | None
    labels: dict[str, dict[Hashable, Any]] = field(default_factory=dict)

    @property
    def design_effect(self) -> float:
        """Kish's design effect of the weights, n / n_eff."""
        return self.n / self.n_eff if self.n_eff else 1.0


def weighting_scheme(scheme: str, census: Census, questionnaire: Questionnaire
                     ) -> tuple[Callable[[Cell], Hashable], dict[Hashable, float],
                                Callable[[Hashable], Sequence[Hashable]] | None]:
    """(cell → weighting cell, households per weighting cell, collapse candidates)."""
    if scheme == "none":
        return (lambda cell: "all"), {"all": float(census.total_households)}, None
    if scheme == "neighbourhood":
        return (lambda cell: cell[0]), {k: float(v) for k, v in census.households().items()}, None
    by_income = census.households_by_income()
    if scheme != "neighbourhood_income" or by_income is None:
        raise ValueError(f"unknown weighting {scheme!r}")
    brackets = questionnaire["income_bracket"].codes

    def nearest_brackets(cell: Hashable) -> list[Cell]:
        hood, bracket = cell  # type: ignore[misc]
        here = brackets.index(bracket)
        order = sorted(range(len(brackets)), key=lambda j: (abs(j - here), j))
        return [(hood, brackets[j]) for j in order if j != here]

    return (lambda cell: cell), {k: float(v) for k, v in by_income.items()}, nearest_brackets


def _cell_totals(groups: Mapping[Group, GroupAggregate]) -> dict[Cell, GroupAggregate]:
    """Groups pooled per fine cell (counts and sums added)."""
    cells: dict[Cell, GroupAggregate] = {}
    for (hood, bracket, _i, _s), g in groups.items():
        c = cells.get((hood, bracket))
        if c is None:
            cells[hood, bracket] = GroupAggregate(g.n, g.spend, g.household,
                                                  {k: list(v) for k, v in g.counts.items()})
            continue
        c.n += g.n
        c.spend = tuple(a + b for a, b in zip(c.spend, g.spend, strict=True))
        c.household = tuple(a + b for a, b in zip(c.household, g.household, strict=True))
        for key, values in g.counts.items():
            c.counts[key] = [a + b for a, b in zip(c.counts[key], values, strict=True)]
    return cells


def _choice_counts(question: Question, groups: Mapping[Group, GroupAggregate],
                   cells: Mapping[Cell, GroupAggregate],
                   multi: Mapping[Cell, Mapping[str, list[int]]]) -> dict[tuple, int]:
    """Counts per (fine cell, code) of one question."""
    counts: dict[tuple, int] = {}
    if question.key in ("neighbourhood", "income_bracket"):
        position = 0 if question.key == "neighbourhood" else 1
        for cell, c in cells.items():
            counts[cell, cell[position]] = c.n
    elif question.key in ("purchase_intent", "share_moved"):
        position = 2 if question.key == "purchase_intent" else 3
        for key, g in groups.items():
            code = str(key[position])
            counts[key[:2], code] = counts.get((key[:2], code), 0) + g.n
    else:
        for cell, c in cells.items():
            values = (multi.get(cell, {}).get(question.key) if question.kind is Kind.MULTI
                      else c.counts.get(question.key))
            for code, count in zip(question.codes, values or (), strict=False):
                counts[cell, code] = count
    return counts


def moved_spend_cells(groups: Mapping[Group, GroupAggregate],
                      small: Mapping[Group, Sequence[tuple[Decimal, int]]]
                      ) -> dict[Cell, viability.CellValues]:
    """Per fine cell, the moments (and for small cells the values) of v = y·p(k)·s/100."""
    cells: dict[Cell, viability.CellValues] = {}
    for key, g in groups.items():
        hood, bracket, intent, share = key
        factor = viability.respondent_value(1, intent, share)
        atoms = tuple((float(factor * spend), count) for spend, count in small.get(key, ()))
        part = viability.CellValues(0.0, g.n, (factor * g.spend[0], factor**2 * g.spend[1],
                                               factor**3 * g.spend[2]), atoms)
        cell = cells.get((hood, bracket))
        cells[hood, bracket] = cell.merged(part) if cell else part
    return cells


@lru_cache(maxsize=32)
def _bootstrap(strata: tuple[viability.CellValues, ...], replicates: int, seed: int
               ) -> tuple[float, ...]:
    """Memoised bootstrap: the replicates are a pure function of the strata."""
    return tuple(viability.bootstrap_replicates(strata, replicates, seed))


def small_cells(groups: Mapping[Group, GroupAggregate]) -> list[Cell]:
    """Fine cells small enough for exact resampling (their values are fetched)."""
    totals: dict[Cell, int] = {}
    for key, g in groups.items():
        totals[key[:2]] = totals.get(key[:2], 0) + g.n
    return sorted(c for c, n in totals.items() if n <= viability.EXACT_RESAMPLE_MAX)


def build_report(groups: Mapping[Group, GroupAggregate],
                 multi: Mapping[Cell, Mapping[str, list[int]]],
                 small: Mapping[Group, Sequence[tuple[Decimal, int]]],
                 census: Census, questionnaire: Questionnaire, params: Params) -> Report | None:
    """All figures of the report; None when there is no response yet."""
    cells = _cell_totals(groups)
    if not cells:
        return None
    group_of, population, candidates = weighting_scheme(params.weighting, census, questionnaire)
    sample: dict[Hashable, int] = {}
    for cell, c in cells.items():
        sample[group_of(cell)] = sample.get(group_of(cell), 0) + c.n
    ps = poststratify(sample, population, candidates)
    weights = {cell: ps.weights[group_of(cell)] for cell in cells}
    sizes = {cell: c.n for cell, c in cells.items()}
    n = sum(sizes.values())
    households = census.total_households
    fpc_population = float(households) if n <= households else None

    labels: dict[str, dict[Hashable, Any]] = {}
    distributions = []
    for q in questionnaire.questions:
        if not q.has_choices:
            continue
        labels[q.key] = {c.code: c.label for c in q.choices}
        counts = _choice_counts(q, groups, cells, multi)
        distributions.append(Distribution(q, labels[q.key], shares(
            counts, weights, sizes, q.codes, CONFIDENCE, fpc_population)))
    labels["spend_bracket"] = {j: b for j, b in enumerate(SPEND_BRACKETS)}

    spend = {cell: Moments.from_sums(c.n, c.spend[0], c.spend[1]) for cell, c in cells.items()}
    household = {cell: Moments.from_sums(c.n, c.household[0], c.household[1])
                 for cell, c in cells.items()}

    def both(moments: Mapping[Cell, Moments], label: Any, where=lambda cell: True,
             pop: float | None = fpc_population) -> MeanRow:
        chosen = [cell for cell in moments if where(cell)]
        return MeanRow(label,
                       mean_interval([(1.0, moments[c]) for c in chosen], CONFIDENCE, pop),
                       mean_interval([(weights[c], moments[c]) for c in chosen], CONFIDENCE, pop))

    means = [both(spend, questionnaire["monthly_spend"].label),
             both(household, questionnaire["household_size"].label)]
    hood_households = census.households()
    by_hood = []
    for hood in census.codes:
        hood_n = sum(c.n for cell, c in cells.items() if cell[0] == hood)
        pop = float(hood_households[hood]) if hood_n <= hood_households[hood] else None
        by_hood.append(both(spend, labels["neighbourhood"].get(hood, hood),
                            lambda cell, hood=hood: cell[0] == hood, pop))

    income_codes = questionnaire["income_bracket"].codes
    income_by_spend = crosstab(
        {(cell, cell[1], j): count for cell, c in cells.items()
         for j, count in enumerate(c.counts["spend_bracket"])},
        weights, income_codes, range(len(SPEND_BRACKETS)))
    intent_codes = questionnaire["purchase_intent"].codes
    intent_counts: dict[tuple, int] = {}
    for key, g in groups.items():
        k = (key[:2], key[0], str(key[2]))
        intent_counts[k] = intent_counts.get(k, 0) + g.n
    neighbourhood_by_intent = crosstab(intent_counts, weights, census.codes, intent_codes)

    weighted_spend = means[0].weighted
    demand = None
    if weighted_spend is not None:
        factor = viability.MONTHS * ps.total
        demand = MeanEstimate(weighted_spend.interval.scaled(factor), weighted_spend.n,
                              weighted_spend.n_eff, weighted_spend.sd * factor)
    strata = viability.strata(moved_spend_cells(groups, small),
                              {cell: group_of(cell) for cell in cells}, ps.population)
    draws = _bootstrap(tuple(strata), params.replicates, params.seed)
    estimate = viability.estimate(strata, demand.interval.estimate if demand else 0.0,
                                  params.overstatement, confidence=CONFIDENCE, bootstrap=draws)
    verdict = (viability.verdict(estimate.revenue, float(params.break_even))
               if params.break_even is not None else None)
    return Report(params, n, kish_effective_size((weights[c], sizes[c]) for c in cells),
                  households, ps, fpc_population is not None, distributions, means, by_hood,
                  income_by_spend, neighbourhood_by_intent, demand, estimate, verdict, labels)
