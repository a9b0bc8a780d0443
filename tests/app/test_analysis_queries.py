"""survey_app.analysis.queries on real MariaDB: the aggregates equal counts and sums
computed in Python from the very rows inserted."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from benchmarks.analysis_bench import RESPONSE_COLUMNS, generate_responses, insert_responses
from survey_app.analysis import queries
from survey_app.questionnaire import questionnaire

COLUMN = {name: i for i, name in enumerate(RESPONSE_COLUMNS[1:])}


def test_unpack_reads_lanes_and_refuses_overflow():
    assert queries.unpack(Decimal(3 + 5 * queries.LANE + 7 * queries.LANE**2), 3) == [3, 5, 7]
    assert queries.unpack(None, 2) == [0, 0]
    with pytest.raises(ValueError):
        queries.unpack(queries.LANE**2, 2)


def test_aggregates_equal_python_counts_of_the_inserted_rows(app, mariadb, database):
    rows = list(generate_responses(random.Random(8), 300))
    with mariadb.connect(database) as conn:
        insert_responses(conn, rows, batch=50)
    q = questionnaire(None)
    with app.app_context():
        groups = queries.cell_aggregates(q)
        multi = queries.multi_choice_counts(q)
        small_cells = sorted({key[:2] for key in groups
                              if sum(g.n for k, g in groups.items() if k[:2] == key[:2]) <= 3})
        small = queries.small_cell_values(small_cells)

    def value(row, name):
        return row.values[COLUMN[name]]

    expected: dict[tuple, list] = defaultdict(list)
    for row in rows:
        key = tuple(value(row, k) for k in queries.GROUPED_KEYS)
        expected[key].append(row)
    assert set(groups) == set(expected)
    for key, members in expected.items():
        g = groups[key]
        spend = [value(r, "monthly_spend") for r in members]
        assert g.n == len(members)
        assert g.spend[0] == sum(spend) and g.spend[1] == sum(y * y for y in spend)
        assert float(g.spend[2]) == pytest.approx(float(sum(y**3 for y in spend)), rel=1e-12)
        assert g.household == (sum(value(r, "household_size") for r in members),
                               sum(value(r, "household_size") ** 2 for r in members))
        for question in queries.counted_questions(q):
            counts = Counter(value(r, question.key) for r in members)
            assert g.counts[question.key] == [counts[c] for c in question.codes], question.key
        brackets = [sum(1 for y in spend if low <= y and (high is None or y < high))
                    for low, high in queries.SPEND_BRACKETS]
        assert g.counts["spend_bracket"] == brackets

    for cell in {key[:2] for key in expected}:
        members = [r for key, rs in expected.items() if key[:2] == cell for r in rs]
        picks = Counter(c for r in members for c in r.priorities)
        assert multi[cell]["priorities"] == [picks[c] for c in q["priorities"].codes]
        picks = Counter(c for r in members for c in r.payment_methods)
        assert multi[cell]["payment_methods"] == [picks[c] for c in q["payment_methods"].codes]

    assert small_cells and {key[:2] for key in small} == set(small_cells)
    for key, values in small.items():
        spend = Counter(value(r, "monthly_spend") for r in expected[key])
        assert dict(values) == spend
