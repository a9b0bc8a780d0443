"""Exports of the responses (CSV, XLSX) and their codebook, built from the definition.

One row per response, identified by the response id (no e-mail: respondents stay
anonymous to whoever receives the file). Single-valued questions are one column holding
the stored code or number; a multi question is one 0/1 column per choice, named
`<question>__<choice>` (e.g. `priorities__price`). Money has a dot decimal mark and two
decimals; times are the database's DATETIME values in ISO 8601. The codebook has one row
per (variable, value) with labels in the request's language. Strings that a spreadsheet
would run as a formula (starting with = + - @ tab or CR) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pymysql
import pymysql.cursors
from flask import current_app
from flask_babel import gettext

from survey_app import db
from survey_app.questionnaire import Choice, Kind, Question, Questionnaire

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CODEBOOK_COLUMNS = ("variable", "label", "type", "range", "value", "value_label", "numeric")
MULTI_SEPARATOR = "__"
_PICKS = ("(SELECT GROUP_CONCAT(c.choice SEPARATOR ',') FROM response_choices c "
          "WHERE c.response_id = r.id AND c.question = %s)")


@dataclass(frozen=True, eq=False)
class Variable:
    """One column of the export: a question, one choice of a multi question, or metadata."""

    name: str
    type: str  # id | datetime | single | integer | money | scale | multi (0/1)
    question: Question | None = None
    choice: Choice | None = None

    @property
    def label(self) -> str:
        """The variable's label in the current language."""
        if self.question is None:
            return {"response_id": gettext("Response id"),
                    "created_at": gettext("First answered at"),
                    "updated_at": gettext("Last changed at")}[self.name]
        if self.choice is not None:
            return f"{self.question.label}: {self.choice.label}"
        return str(self.question.label)


def variables(q: Questionnaire) -> list[Variable]:
    """The export's columns, in order."""
    out = [Variable("response_id", "id"), Variable("created_at", "datetime"),
           Variable("updated_at", "datetime")]
    for question in q.questions:
        if question.kind is Kind.MULTI:
            out += [Variable(f"{question.key}{MULTI_SEPARATOR}{c.code}", "multi", question, c)
                    for c in question.choices]
        else:
            out.append(Variable(question.key, question.kind.value, question))
    return out


def response_rows(q: Questionnaire) -> Iterator[list[Any]]:
    """Export rows (values in `variables` order), streamed from MariaDB by response id.

    The query runs at once on a connection of its own (so an outage raises
    `DatabaseUnavailable` before any byte is sent, and the stream outlives the request's
    connection); rows are then read one by one from an unbuffered cursor.
    """
    cols = [question.key for question in q.columns]
    picks = ", ".join(f"{_PICKS} AS {question.key}" for question in q.multi)
    sql = (f"SELECT r.id AS response_id, r.created_at, r.updated_at, "  # noqa: S608 - names from the definition
           f"{', '.join('r.' + c for c in cols)}{', ' + picks if picks else ''} "
           "FROM responses r ORDER BY r.id")
    conn = db.connect(current_app.extensions["survey_settings"])
    try:
        cur = conn.cursor(pymysql.cursors.SSDictCursor)
        cur.execute(sql, [question.key for question in q.multi])
    except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
        conn.close()
        raise db.DatabaseUnavailable(str(exc)) from None
    return _stream(conn, cur, variables(q))


def _stream(conn: pymysql.connections.Connection, cur: pymysql.cursors.SSDictCursor,
            names: list[Variable]) -> Iterator[list[Any]]:
    try:
        for record in cur:
            yield [_value(v, record) for v in names]
    except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
        raise db.DatabaseUnavailable(str(exc)) from None
    finally:
        with suppress(pymysql.err.Error):
            conn.close()


def _value(variable: Variable, record: dict[str, Any]) -> Any:
    if variable.choice is None:
        return record[variable.name]
    picked = (record[variable.question.key] or "").split(",")
    return int(variable.choice.code in picked)


def safe_cell(value: Any) -> Any:
    """`value`, with a leading quote when it is a string a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(safe_cell(value))


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text, one line at a time (RFC 4180, CRLF), cells guarded against formulas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in _chain(header, rows):
        writer.writerow([_text(cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _chain(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[Iterable[Any]]:
    yield header
    yield from rows


def responses_csv(q: Questionnaire) -> Iterator[str]:
    """The responses as CSV (ASCII: codes and numbers), generated row by row."""
    return csv_lines([v.name for v in variables(q)], response_rows(q))


def codebook(q: Questionnaire) -> list[list[Any]]:
    """Codebook rows (`CODEBOOK_COLUMNS`): every variable, and one row per labelled value."""
    rows: list[list[Any]] = []
    for v in variables(q):
        question, label = v.question, v.label
        value_range = ""
        if question is not None and question.minimum is not None:
            value_range = f"{question.minimum}..{question.maximum}"
        if v.choice is not None:
            value_range = "0..1"
            values = [(0, gettext("Not picked"), None), (1, gettext("Picked"), None)]
        elif question is not None and question.has_choices:
            values = [(c.code, str(c.label), c.numeric) for c in question.choices]
        else:
            values = [("", "", None)]
        rows += [[v.name, label, v.type, value_range, code, value_label, numeric]
                 for code, value_label, numeric in values]
    return rows


def codebook_csv(q: Questionnaire) -> str:
    """The codebook as CSV, with a UTF-8 byte order mark so spreadsheets show accents."""
    return "\ufeff" + "".join(csv_lines(CODEBOOK_COLUMNS, codebook(q)))


def responses_xlsx(q: Questionnaire) -> bytes:
    """The responses (sheet "responses") and the codebook (sheet "codebook") as XLSX."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheets = (("responses", [v.name for v in variables(q)], response_rows(q)),
              ("codebook", CODEBOOK_COLUMNS, codebook(q)))
    for title, header, rows in sheets:
        sheet = book.create_sheet(title)
        for row in _chain(header, rows):
            sheet.append([safe_cell(cell) for cell in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
