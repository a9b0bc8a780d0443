"""CSV / XLSX exports and the codebook: analyst-only, parse back to the stored data."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from survey_app.questionnaire import QUESTIONS, Kind, income_midpoints
from tests.app.helpers import create_user, login, logout
from tests.app.survey_helpers import VALID, answer, respondent

MULTI_CODES = {q.key: q.codes for q in QUESTIONS if q.kind is Kind.MULTI}
ANSWERS = [
    VALID,
    dict(VALID, income_bracket="acima_20000", household_size="1", monthly_spend="0",
         neighbourhood="boa_vista", priorities=["parking"], share_moved="0",
         payment_methods=["cash", "debit_card", "credit_card", "pix", "meal_voucher"]),
    dict(VALID, monthly_spend="R$ 50.000,00", household_size="20", purchase_intent="1",
         priorities=["price", "variety", "quality"]),
]


@pytest.fixture
def filled(app, client):
    """Three respondents answered through the form; the client is then an analyst."""
    for i, data in enumerate(ANSWERS):
        respondent(app, client, f"r{i}@example.com")
        assert answer(client, data).status_code == 303
        logout(client)
    create_user(app, "analyst@example.com", role="analyst")
    assert login(client, "analyst@example.com").status_code == 302
    return client


def _expected(mariadb, database) -> tuple[list[str], list[list]]:
    """The export's header and rows computed straight from the tables."""
    singles = [q.key for q in QUESTIONS if q.kind is not Kind.MULTI]
    header = ["response_id", "created_at", "updated_at", *(
        name for q in QUESTIONS for name in (
            [f"{q.key}__{c}" for c in q.codes] if q.kind is Kind.MULTI else [q.key]))]
    rows = []
    with mariadb.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM responses ORDER BY id")
        names = [d[0] for d in cur.description]
        records = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        cur.execute("SELECT response_id, question, choice FROM response_choices")
        picks = set(cur.fetchall())
    for rec in records:
        row = {"response_id": rec["id"], "created_at": rec["created_at"],
               "updated_at": rec["updated_at"], **{k: rec[k] for k in singles}}
        for key, codes in MULTI_CODES.items():
            row |= {f"{key}__{c}": int((rec["id"], key, c) in picks) for c in codes}
        rows.append([row[name] for name in header])
    return header, rows


def _as_text(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def test_exports_are_for_analysts_only(app, client):
    for url in ("/export/responses.csv", "/export/responses.xlsx", "/export/codebook.csv"):
        assert client.get(url).status_code == 302  # to the login page
    respondent(app, client)
    for url in ("/export/responses.csv", "/export/responses.xlsx", "/export/codebook.csv"):
        assert client.get(url).status_code == 403


def test_csv_parses_back_to_the_stored_data(filled, mariadb, database):
    response = filled.get("/export/responses.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="responses.csv"' in response.headers["Content-Disposition"]
    assert response.is_streamed
    body = response.get_data(as_text=True)
    assert "@example.com" not in body  # no e-mail addresses
    parsed = list(csv.reader(io.StringIO(body)))
    header, rows = _expected(mariadb, database)
    assert parsed[0] == header
    assert parsed[1:] == [[_as_text(v) for v in row] for row in rows]
    assert len(rows) == 3
    assert [r[header.index("monthly_spend")] for r in parsed[1:]] == ["1234.56", "0.00",
                                                                       "50000.00"]
    assert [r[header.index("priorities__parking")] for r in parsed[1:]] == ["0", "1", "0"]


def test_xlsx_parses_back_to_the_stored_data(filled, mariadb, database):
    response = filled.get("/export/responses.xlsx")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["responses", "codebook"]
    parsed = [list(r) for r in book["responses"].iter_rows(values_only=True)]
    header, rows = _expected(mariadb, database)
    assert parsed[0] == header
    for got, want in zip(parsed[1:], rows, strict=True):
        for name, g, w in zip(header, got, want, strict=True):
            if isinstance(w, Decimal):
                assert Decimal(str(g)).quantize(Decimal("0.01")) == w, name
            elif isinstance(w, datetime):
                assert abs((g - w).total_seconds()) < 0.001, name  # Excel keeps milliseconds
            else:
                assert g == w, name
    codebook = [[("" if c is None else str(c)) for c in r]
                for r in book["codebook"].iter_rows(values_only=True)]
    csv_codebook = list(csv.reader(io.StringIO(
        filled.get("/export/codebook.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert codebook == csv_codebook


def test_codebook_matches_the_definition(app, client):
    create_user(app, "analyst@example.com", role="analyst")
    login(client, "analyst@example.com")
    response = client.get("/export/codebook.csv?lang=en")
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    by_variable: dict[str, list[dict]] = {}
    for row in rows:
        by_variable.setdefault(row["variable"], []).append(row)
    header, _ = _expected_header()
    assert list(by_variable) == header
    for q in QUESTIONS:
        if q.kind is Kind.MULTI:
            for choice in q.choices:
                entries = by_variable[f"{q.key}__{choice.code}"]
                assert entries[0]["label"] == f"{q.label}: {choice.label}"
                assert [(e["value"], e["value_label"]) for e in entries] == [
                    ("0", "Not picked"), ("1", "Picked")]
        elif q.key == "neighbourhood":
            assert [e["value"] for e in by_variable[q.key]] == [
                "centro", "vila_nova", "jardim_america", "sao_jose", "industrial", "boa_vista"]
            assert by_variable[q.key][2]["value_label"] == "Jardim América"
        elif q.has_choices:
            entries = by_variable[q.key]
            assert [(e["value"], e["value_label"]) for e in entries] == [
                (c.code, str(c.label)) for c in q.choices]
            assert {e["type"] for e in entries} == {q.kind.value}
        else:
            (entry,) = by_variable[q.key]
            assert entry["label"] == str(q.label) and entry["type"] == q.kind.value
            assert entry["range"] == f"{q.minimum}..{q.maximum}"
    income = {e["value"]: int(e["numeric"]) for e in by_variable["income_bracket"]}
    assert income == income_midpoints()
    assert by_variable["household_size"][0]["label"] == "People living in your home"
    portuguese = client.get("/export/codebook.csv?lang=pt_BR").get_data(as_text=True)
    assert "Quantas pessoas moram na sua casa?" in portuguese and "Até R$ 1.500" in portuguese


def _expected_header():
    names = ["response_id", "created_at", "updated_at"]
    for q in QUESTIONS:
        names += [f"{q.key}__{c}" for c in q.codes] if q.kind is Kind.MULTI else [q.key]
    return names, None


def test_an_empty_export_has_the_header_only(app, client):
    create_user(app, "analyst@example.com", role="analyst")
    login(client, "analyst@example.com")
    rows = list(csv.reader(io.StringIO(client.get("/export/responses.csv").get_data(
        as_text=True))))
    assert rows == [_expected_header()[0]]


def test_cells_that_would_be_formulas_are_neutralised(mariadb, database, redis_server,
                                                       redis_db, tmp_path):
    from survey_app import create_app
    from survey_app.export import safe_cell
    from tests.conftest import make_settings

    census = tmp_path / "census.csv"
    census.write_text('neighbourhood,label,households\na,"=HYPERLINK(""http://x"")",10\n'
                      "b,+1 Bairro,5\nc,@SUM(A1),5\nd,-Vila,5\ne,Centro,5\n", encoding="utf-8")
    app = create_app(make_settings(mariadb, database, redis_server, redis_db,
                                   census_file=census), TESTING=True)
    client = app.test_client()
    create_user(app, "analyst@example.com", role="analyst")
    login(client, "analyst@example.com")
    rows = list(csv.DictReader(io.StringIO(client.get("/export/codebook.csv").get_data(
        as_text=True).lstrip("\ufeff"))))
    labels = [r["value_label"] for r in rows if r["variable"] == "neighbourhood"]
    assert labels == ["'=HYPERLINK(\"http://x\")", "'+1 Bairro", "'@SUM(A1)", "'-Vila", "Centro"]
    book = load_workbook(io.BytesIO(client.get("/export/responses.xlsx").data))
    cells = [r[5] for r in book["codebook"].iter_rows(values_only=True) if r[0] == "neighbourhood"]
    assert cells == labels
    assert book["codebook"].cell(row=2, column=1).data_type != "f"
    assert safe_cell("\tx") == "'\tx" and safe_cell(-5) == -5 and safe_cell("a=b") == "a=b"
