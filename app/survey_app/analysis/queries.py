"""The SQL aggregates behind the report, parameterised, through `survey_app.db.query`.

Design for 100,000 responses: nothing per respondent comes back to Python. Every
weighting the report offers (none, neighbourhood, neighbourhood × income) is
constant within a *fine cell* (neighbourhood × income bracket), so every estimate is
a function of counts and moments per fine cell. Two statements (three on a small
sample) give all of them:

1. `cell_aggregates`: ONE scan of `responses`, grouped by fine cell × purchase
   intent × share moved (≤ 6·7·5·5 groups), with count, Σy, Σy² (exact DECIMAL),
   Σy³ (DOUBLE: cheaper, and it only feeds a skewness) of the monthly spend y and Σ, Σ²
   of household size. The moved spend of the bootstrap, v = y · p(intent) · share/100,
   is a constant times y inside such a group, so its
   moments follow exactly in Python (and the intent calibration needs no SQL), and
   intent and share counts and the neighbourhood × intent cross-tab come for free.
   The other single-choice questions and the spend brackets are counted in the same
   scan with ONE `CASE` per question that adds 10^(7·j) for choice j ("packed
   lanes": a DECIMAL sum holds one 7-digit count per choice, see `unpack`). That
   replaces ~50 `SUM(col = %s)` (each a comparison and a DECIMAL addition per row)
   by 7 CASEs, and one scan replaces a GROUP BY per question (a scan and a temporary
   table each).
2. `multi_choice_counts`: picks of the multi questions per fine cell, a join of
   `response_choices` with `responses`, packed the same way per question.
3. `small_cell_values`: spend values with counts per (cell, intent, share) only for
   cells small enough for the bootstrap to resample respondents exactly
   (`viability.EXACT_RESAMPLE_MAX`; none at 100,000).

Statements 1 and 2 run at once on two connections (two cores: about the longer of
the two instead of their sum). Statement 0, `data_version`, is one cheap scan (count,
latest and sum of `updated_at`, largest id): every save bumps `updated_at` in the same
transaction as its choices, and a delete changes the count, so an unchanged version
means unchanged aggregates.
`report_aggregates` keeps the results of 1-3 per version in a small per-process cache:
changing the weighting, the overstatement or the break-even, or reloading while no one
answers, costs statement 0 only.

Column names come from the questionnaire definition, whose keys and codes are checked
against `[a-z0-9_]` at import; every value (codes, bounds) is a query parameter.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from flask import current_app

from survey_app import db
from survey_app.questionnaire import Kind, Question, Questionnaire

T = TypeVar("T")
Cell = tuple[str, str]  # (neighbourhood, income_bracket)
Group = tuple[str, str, int, int]  # (neighbourhood, income_bracket, intent, share_moved)

LANE = 10**7
"""Width of one packed count: up to 9,999,999 respondents per group."""

SPEND_BRACKETS: tuple[tuple[int, int | None], ...] = (
    (0, 300), (300, 600), (600, 1000), (1000, 1500), (1500, 2500), (2500, None),
)
"""Monthly spend brackets [low, high) of the income × spend cross-tab, in reais."""

GROUPED_KEYS = ("neighbourhood", "income_bracket", "purchase_intent", "share_moved")


def counted_questions(questionnaire: Questionnaire) -> list[Question]:
    """Single-choice questions counted with packed lanes (those not grouped on)."""
    return [q for q in questionnaire.columns
            if q.has_choices and q.codes and q.key not in GROUPED_KEYS]


def _packed_sum(expression: str, codes: Sequence[object]) -> tuple[str, list]:
    """SUM(CASE expression WHEN code_j THEN 10^(7j) ... END) and its parameters."""
    whens = " ".join(f"WHEN %s THEN {LANE ** j}" for j in range(len(codes)))
    return f"SUM(CASE {expression} {whens} ELSE 0 END)", list(codes)


def _packed_range_sum(column: str, brackets: Sequence[tuple[int, int | None]]) -> tuple[str, list]:
    """SUM(CASE WHEN column < high_j THEN 10^(7j) ...) over ordered brackets."""
    whens, args = [], []
    for j, (_low, high) in enumerate(brackets):
        if high is None:
            whens.append(f"ELSE {LANE ** j}")
        else:
            whens.append(f"WHEN {column} < %s THEN {LANE ** j}")
            args.append(high)
    return f"SUM(CASE {' '.join(whens)} END)", args


def unpack(total: Decimal | int | None, lanes: int) -> list[int]:
    """The counts packed by `_packed_sum` (lane j = choice j)."""
    value = int(total or 0)
    counts = []
    for _ in range(lanes):
        value, count = divmod(value, LANE)
        counts.append(count)
    if value:
        raise ValueError("packed counts overflowed their lanes")
    return counts


@dataclass
class GroupAggregate:
    """Counts and sums of one (cell, intent, share) group."""

    n: int
    spend: tuple[Decimal, Decimal, Decimal]  # Σy, Σy², Σy³
    household: tuple[Decimal, Decimal]  # Σ, Σ²
    counts: dict[str, list[int]]  # question key (or "spend_bracket") -> count per choice


def cell_aggregates_sql(questionnaire: Questionnaire) -> tuple[str, list]:
    """The text and parameters of statement 1 (also timed bare by the benchmark)."""
    # Grouping on the bytes of the ASCII codes gives the same groups as the column's
    # collation without its sort keys (measured: a tenth of the statement's time).
    select = [*(f"CAST({key} AS BINARY) AS {key}" for key in GROUPED_KEYS[:2]),
              *GROUPED_KEYS[2:], "COUNT(*) AS n", "SUM(monthly_spend) AS y1",
              "SUM(monthly_spend * monthly_spend) AS y2",
              "SUM(POW(monthly_spend, 3)) AS y3",  # DOUBLE: only feeds the skewness
              "SUM(household_size) AS h1", "SUM(household_size * household_size) AS h2"]
    args: list = []
    for q in counted_questions(questionnaire):
        sql, codes = _packed_sum(q.key, [int(c) if q.is_integer else c for c in q.codes])
        select.append(f"{sql} AS {q.key}")
        args += codes
    sql, bounds = _packed_range_sum("monthly_spend", SPEND_BRACKETS)
    select.append(f"{sql} AS spend_bracket")
    args += bounds
    groups = ", ".join(str(i) for i in range(1, len(GROUPED_KEYS) + 1))
    return f"SELECT {', '.join(select)} FROM responses GROUP BY {groups}", args  # noqa: S608 - identifiers from the definition, values are parameters


def cell_aggregates(questionnaire: Questionnaire) -> dict[Group, GroupAggregate]:
    """Statement 1: per (cell, intent, share) group, every count and sum the report needs."""
    sql, args = cell_aggregates_sql(questionnaire)
    questions = counted_questions(questionnaire)
    result: dict[Group, GroupAggregate] = {}
    for row in db.query(sql, args):
        counts = {q.key: unpack(row[q.key], len(q.codes)) for q in questions}
        counts["spend_bracket"] = unpack(row["spend_bracket"], len(SPEND_BRACKETS))
        key = (row["neighbourhood"].decode(), row["income_bracket"].decode(),
               int(row["purchase_intent"]), int(row["share_moved"]))
        result[key] = GroupAggregate(int(row["n"]), (row["y1"], row["y2"], Decimal(row["y3"])),
                                     (row["h1"], row["h2"]), counts)
    return result


def multi_questions(questionnaire: Questionnaire) -> list[Question]:
    """Questions stored as rows of `response_choices`."""
    return [q for q in questionnaire.questions if q.kind is Kind.MULTI]


def multi_choice_sql(questionnaire: Questionnaire) -> tuple[str, list]:
    """The text and parameters of statement 2."""
    select, args = ["r.neighbourhood", "r.income_bracket"], []
    for q in multi_questions(questionnaire):
        whens = " ".join(f"WHEN %s THEN {LANE ** j}" for j in range(len(q.codes)))
        select.append(f"SUM(CASE WHEN c.question = %s THEN CASE c.choice {whens} ELSE 0 END "
                      f"ELSE 0 END) AS {q.key}")
        args += [q.key, *q.codes]
    return (f"SELECT {', '.join(select)} FROM responses r "  # noqa: S608 - as above
            "JOIN response_choices c ON c.response_id = r.id "
            "GROUP BY r.neighbourhood, r.income_bracket", args)


def multi_choice_counts(questionnaire: Questionnaire) -> dict[Cell, dict[str, list[int]]]:
    """Statement 2: picks per fine cell, question key -> count per choice."""
    sql, args = multi_choice_sql(questionnaire)
    questions = multi_questions(questionnaire)
    return {(row["neighbourhood"], row["income_bracket"]):
            {q.key: unpack(row[q.key], len(q.codes)) for q in questions}
            for row in db.query(sql, args)}


def small_cell_values_sql(cells: Sequence[Cell]) -> tuple[str, list]:
    """The text and parameters of statement 3."""
    placeholders = ", ".join("(%s, %s)" for _ in cells)
    return (f"SELECT {', '.join(GROUPED_KEYS)}, monthly_spend, COUNT(*) AS n "  # noqa: S608
            f"FROM responses WHERE (neighbourhood, income_bracket) IN ({placeholders}) "
            f"GROUP BY {', '.join(GROUPED_KEYS)}, monthly_spend",
            [value for cell in cells for value in cell])


def small_cell_values(cells: Sequence[Cell]) -> dict[Group, list[tuple[Decimal, int]]]:
    """Statement 3: (spend, count) pairs per group of the given fine cells."""
    if not cells:
        return {}
    sql, args = small_cell_values_sql(cells)
    result: dict[Group, list[tuple[Decimal, int]]] = {}
    for row in db.query(sql, args):
        key = (row["neighbourhood"], row["income_bracket"], int(row["purchase_intent"]),
               int(row["share_moved"]))
        result.setdefault(key, []).append((row["monthly_spend"], int(row["n"])))
    return result


VERSION_SQL = ("SELECT COUNT(*) AS n, MAX(updated_at) AS latest, "
               "SUM(UNIX_TIMESTAMP(updated_at)) AS stamps, MAX(id) AS last_id FROM responses")


def data_version() -> tuple:
    """Statement 0: a value that changes whenever a response is saved or deleted."""
    row = db.query(VERSION_SQL)[0]
    return (int(row["n"]), row["latest"], row["stamps"], row["last_id"])


@dataclass(frozen=True)
class Aggregates:
    """Everything the report reads from MariaDB."""

    groups: dict[Group, GroupAggregate]
    multi: dict[Cell, dict[str, list[int]]]
    small: dict[Group, list[tuple[Decimal, int]]]


CACHE_SIZE = 8
_cache: OrderedDict[Hashable, Aggregates] = OrderedDict()
_cache_lock = threading.Lock()


def report_aggregates(questionnaire: Questionnaire, database: Hashable,
                      small_cells) -> Aggregates:
    """Statements 1-3, or their cached results while `data_version` is unchanged.

    `database` names the database (host, port, name); `small_cells(groups)` chooses the
    cells whose values statement 3 fetches.
    """
    key = (database, tuple((q.key, q.codes) for q in questionnaire.questions), data_version())
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    # The two big statements at once, on two connections: the longer one, not their sum.
    with ThreadPoolExecutor(max_workers=1) as side:
        multi = side.submit(_on_own_connection(multi_choice_counts, questionnaire))
        groups = cell_aggregates(questionnaire)
        result = Aggregates(groups, multi.result(), small_cell_values(small_cells(groups)))
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def _on_own_connection(work: Callable[..., T], *args: Any) -> Callable[[], T]:
    """`work(*args)` for another thread, in a new app context: its own connection,
    closed when it ends."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> T:
        with app.app_context():
            return work(*args)
    return run


def clear_cache() -> None:
    """Forget every cached result (benchmarks measure the uncached page with it)."""
    with _cache_lock:
        _cache.clear()
