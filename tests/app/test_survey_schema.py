"""Migration 0002 matches the questionnaire definition (they cannot drift apart)."""

from __future__ import annotations

import re

from survey_app.questionnaire import QUESTIONS, Kind


def _columns(conn, database: str, table: str) -> dict[str, tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                    (database, table))
        return {name: (_normalise(ctype), nullable) for name, ctype, nullable in cur.fetchall()}


def _normalise(column_type: str) -> str:
    """Drop integer display widths (MariaDB shows `tinyint(3) unsigned`)."""
    return re.sub(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)", r"\1", column_type.lower())


def test_responses_columns_match_the_definition(mariadb, database):
    with mariadb.connect(database) as conn:
        columns = _columns(conn, database, "responses")
    expected = {"id": ("bigint unsigned", "NO"), "user_id": ("bigint unsigned", "NO")}
    for q in QUESTIONS:
        if q.kind is not Kind.MULTI:
            expected[q.key] = (q.column_type, "YES" if not q.required else "NO")
    expected |= {"created_at": ("datetime(6)", "NO"), "updated_at": ("datetime(6)", "NO")}
    assert columns == expected


def test_response_choices_hold_every_multi_code(mariadb, database):
    with mariadb.connect(database) as conn:
        columns = _columns(conn, database, "response_choices")
        with conn.cursor() as cur:
            cur.execute("SELECT ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN ('responses', "
                        "'response_choices')", (database,))
            tables = cur.fetchall()
    assert columns == {"response_id": ("bigint unsigned", "NO"), "question": ("varchar(32)", "NO"),
                       "choice": ("varchar(32)", "NO")}
    assert len(tables) == 2
    assert all(engine == "InnoDB" and coll.startswith("utf8mb4") for engine, coll in tables)
    for q in QUESTIONS:
        assert len(q.key) <= 32 and all(len(code) <= 32 for code in q.codes)


def test_deleting_an_account_deletes_its_response(app, mariadb, database):
    from survey_app import db
    from survey_app.questionnaire import questionnaire
    from survey_app.survey.storage import save_response
    from tests.app.helpers import create_user
    from tests.app.survey_helpers import STORED

    user_id = create_user(app, "gone@example.com")
    with app.test_request_context():
        save_response(questionnaire(None), user_id, STORED)
        db.close_db()
    with mariadb.connect(database) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
        conn.commit()
        cur.execute("SELECT (SELECT COUNT(*) FROM responses), (SELECT COUNT(*) FROM "
                    "response_choices)")
        assert cur.fetchone() == (0, 0)
