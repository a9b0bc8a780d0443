"""Responses in MariaDB, the SQL generated from the questionnaire definition.

Column names come from the definition (never from a request; `questionnaire.py` checks
them against `CODE_PATTERN` at import); every value is a query parameter.
"""

from __future__ import annotations

from typing import Any

from survey_app import db
from survey_app.questionnaire import Questionnaire


def _columns(q: Questionnaire) -> list[str]:
    return [question.key for question in q.columns]


def load_response(q: Questionnaire, user_id: int) -> dict[str, Any] | None:
    """The stored answers of `user_id` (multi answers as tuples), or None."""
    cols = _columns(q)
    rows = db.query(f"SELECT id, {', '.join(cols)} FROM responses WHERE user_id = %s",  # noqa: S608
                    (user_id,))
    if not rows:
        return None
    answers = dict(rows[0])
    picks = db.query("SELECT question, choice FROM response_choices WHERE response_id = %s",
                     (answers["id"],))
    for question in q.multi:
        chosen = {p["choice"] for p in picks if p["question"] == question.key}
        answers[question.key] = tuple(c for c in question.codes if c in chosen)
    return answers


def save_response(q: Questionnaire, user_id: int, answers: dict[str, Any]) -> int:
    """Upsert the response of `user_id` and replace its choices in ONE transaction.

    Returns the response id once COMMIT succeeded; raises `db.DatabaseUnavailable` when
    the connection fails at any point (nothing is then committed).
    """
    cols = _columns(q)
    values = [q[c].stored(answers[c]) for c in cols]
    updates = ", ".join(f"{c} = VALUES({c})" for c in cols)
    sql = (
        f"INSERT INTO responses (user_id, {', '.join(cols)}) "  # noqa: S608
        f"VALUES (%s{', %s' * len(cols)}) ON DUPLICATE KEY UPDATE {updates}, "
        "updated_at = CURRENT_TIMESTAMP(6), id = LAST_INSERT_ID(id)"
    )
    picks = [(question.key, code) for question in q.multi for code in answers[question.key]]

    def store(cur) -> int:
        cur.execute(sql, (user_id, *values))
        response_id = cur.lastrowid
        cur.execute("DELETE FROM response_choices WHERE response_id = %s", (response_id,))
        cur.executemany(
            "INSERT INTO response_choices (response_id, question, choice) VALUES (%s, %s, %s)",
            [(response_id, key, code) for key, code in picks],
        )
        return response_id

    return db.in_transaction(store)
