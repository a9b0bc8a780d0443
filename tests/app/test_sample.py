"""Demo commands: `load-sample-responses N [--seed S]`, `create-analyst --generate-password`."""

from __future__ import annotations

import logging
import statistics
import time

from tests.app.helpers import login
from tests.app.survey_helpers import count_responses, stored_response


def _rows(conn) -> list[dict]:
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("SELECT u.email, r.* FROM responses r JOIN users u ON u.id = r.user_id "
                    "ORDER BY u.email")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.commit()
    return rows


def test_sample_responses_are_valid_consistent_and_idempotent(app, mariadb, database):
    runner = app.test_cli_runner()
    started = time.monotonic()
    result = runner.invoke(args=["load-sample-responses", "300", "--seed", "7"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "300 sample responses stored" in result.output
    assert elapsed < 30  # a few hundred in seconds, not minutes
    with mariadb.connect(database) as conn:
        rows = _rows(conn)
        assert len(rows) == 300
        assert rows[0]["email"] == "amostra-0001@example.invalid"
        # internally consistent: spend grows with income and with household size
        income_rank = {c: i for i, c in enumerate(
            ("ate_1500", "1501_3000", "3001_5000", "5001_8000", "8001_12000", "12001_20000",
             "acima_20000"))}
        spend = [float(r["monthly_spend"]) for r in rows]
        assert statistics.correlation([income_rank[r["income_bracket"]] for r in rows],
                                      spend) > 0.2
        assert statistics.correlation([r["household_size"] for r in rows], spend) > 0.2
        # every neighbourhood appears, and intent differs between them
        by_hood: dict[str, list[int]] = {}
        for r in rows:
            by_hood.setdefault(r["neighbourhood"], []).append(r["purchase_intent"])
        assert len(by_hood) == 6
        means = [statistics.mean(v) for v in by_hood.values()]
        assert max(means) - min(means) > 0.5
        assert {r["purchase_intent"] for r in rows} == {1, 2, 3, 4, 5}
        first = stored_response(conn, rows[0]["user_id"])

        # the same seed again: same accounts, same answers; a larger N only adds
        assert runner.invoke(args=["load-sample-responses", "310", "--seed", "7"]).exit_code == 0
        assert count_responses(conn) == 310
        again = stored_response(conn, rows[0]["user_id"])
        assert {k: v for k, v in again.items() if k != "updated_at"} == \
            {k: v for k, v in first.items() if k != "updated_at"}


def test_sample_accounts_cannot_log_in(app, client):
    assert app.test_cli_runner().invoke(args=["load-sample-responses", "2"]).exit_code == 0
    assert login(client, "amostra-0001@example.invalid", "").status_code == 422
    assert login(client, "amostra-0001@example.invalid",
                 "!sample-account-without-password").status_code == 422


def test_sample_count_must_be_positive(app):
    result = app.test_cli_runner().invoke(args=["load-sample-responses", "0"])
    assert result.exit_code == 2


def test_create_analyst_generates_and_prints_a_password_once(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    result = app.test_cli_runner().invoke(
        args=["create-analyst", "boss@example.com", "--generate-password"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "analyst boss@example.com created"
    password = lines[1].rsplit(": ", 1)[1]
    assert len(password) >= 20
    assert result.stdout.count(password) == 1 and password not in result.stderr
    assert password not in caplog.text
    assert login(client, "boss@example.com", password).status_code == 302
    assert client.get("/analysis").status_code == 200


def test_generated_passwords_differ_and_flags_exclude_each_other(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["create-analyst", "a1@example.com", "--generate-password"])
    second = runner.invoke(args=["create-analyst", "a2@example.com", "--generate-password"])
    assert first.output.splitlines()[1] != second.output.splitlines()[1]
    both = runner.invoke(args=["create-analyst", "a3@example.com", "--generate-password",
                               "--password-stdin"], input="whatever password\n")
    assert both.exit_code == 2
    assert "either" in both.output


def test_set_password_resets_and_ends_open_sessions(app, client, make_app):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["create-analyst", "lost@example.com", "--generate-password"])
    old = created.stdout.splitlines()[1].rsplit(": ", 1)[1]
    assert login(client, "lost@example.com", old).status_code == 302
    assert client.get("/analysis").status_code == 200

    reset = runner.invoke(args=["set-password", "lost@example.com", "--password-stdin"],
                          input="a brand new passphrase\n")
    assert reset.exit_code == 0, reset.output
    assert "sessions have ended" in reset.stdout
    assert client.get("/analysis").status_code == 302  # the open session ended
    other = make_app().test_client()
    assert login(other, "lost@example.com", old).status_code != 302
    assert login(other, "lost@example.com", "a brand new passphrase").status_code == 302

    unknown = runner.invoke(args=["set-password", "nobody@example.com", "--generate-password"])
    assert unknown.exit_code == 1 and "no account" in unknown.output
