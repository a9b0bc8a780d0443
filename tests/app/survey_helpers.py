"""Shared bits of the survey and export tests: a valid form, reading answers back."""

from __future__ import annotations

from decimal import Decimal

from tests.app.helpers import create_user, login, post_form

VALID = {
    "income_bracket": "3001_5000", "household_size": "3", "shopping_frequency": "weekly",
    "monthly_spend": "1.234,56", "neighbourhood": "centro", "age_bracket": "35_44",
    "travel_mode": "car", "max_distance": "1_to_3km", "current_store": "big_chain",
    "priorities": ["price", "proximity"], "purchase_intent": "4", "share_moved": "50",
    "payment_methods": ["pix", "debit_card"], "buys_online": "sometimes",
}
STORED = {  # VALID as MariaDB holds it
    "income_bracket": "3001_5000", "household_size": 3, "shopping_frequency": "weekly",
    "monthly_spend": Decimal("1234.56"), "neighbourhood": "centro", "age_bracket": "35_44",
    "travel_mode": "car", "max_distance": "1_to_3km", "current_store": "big_chain",
    "purchase_intent": 4, "share_moved": 50, "buys_online": "sometimes",
    "priorities": ("price", "proximity"), "payment_methods": ("debit_card", "pix"),
}


def respondent(app, client, email: str = "ana@example.com") -> int:
    """Create an account and log `client` in; returns the user id."""
    user_id = create_user(app, email)
    assert login(client, email).status_code == 302
    return user_id


def answer(client, data: dict, **kwargs):
    """Fetch the questionnaire and post `data` with its CSRF token."""
    return post_form(client, "/survey", data, **kwargs)


def stored_response(conn, user_id: int) -> dict | None:
    """The response of `user_id` as stored (multi answers as sorted tuples), or None."""
    conn.commit()  # a fresh snapshot
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM responses WHERE user_id = %s", (user_id,))
        rows = cur.fetchall()
        if not rows:
            return None
        assert len(rows) == 1
        names = [d[0] for d in cur.description]
        row = dict(zip(names, rows[0], strict=True))
        cur.execute("SELECT question, choice FROM response_choices WHERE response_id = %s "
                    "ORDER BY question, choice", (row["id"],))
        for question, choice in cur.fetchall():
            row[question] = (*row.get(question, ()), choice)
    conn.commit()
    return row


def answers_of(row: dict) -> dict:
    """The question columns of a stored response (no ids, no times)."""
    return {k: v for k, v in row.items() if k not in ("id", "user_id", "created_at", "updated_at")}


def count_responses(conn) -> int:
    """How many responses are stored."""
    conn.commit()  # a fresh snapshot
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM responses")
        (n,) = cur.fetchone()
    conn.commit()
    return n
