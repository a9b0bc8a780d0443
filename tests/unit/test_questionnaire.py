"""The questionnaire definition and its validation, without a database or a request."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey_app.census import CensusError, load_census
from survey_app.questionnaire import (
    MAX_FIELD_LENGTH,
    QUESTIONS,
    Kind,
    format_money_input,
    income_midpoints,
    parse_money,
    questionnaire,
)
from survey_app.settings import DEFAULT_CENSUS_FILE
from tests.app.survey_helpers import VALID

CONTRACT = {  # docs/dev/app-contract.md, the fixed keys and values
    "income_bracket": ("single", ["ate_1500", "1501_3000", "3001_5000", "5001_8000",
                                  "8001_12000", "12001_20000", "acima_20000"]),
    "household_size": ("integer", None),
    "shopping_frequency": ("single", ["daily", "several_weekly", "weekly", "biweekly",
                                      "monthly"]),
    "monthly_spend": ("money", None),
    "neighbourhood": ("single", None),
    "age_bracket": ("single", ["18_24", "25_34", "35_44", "45_59", "60_plus"]),
    "travel_mode": ("single", ["walk", "bicycle", "car", "motorcycle", "bus", "ride_app"]),
    "max_distance": ("single", ["up_to_1km", "1_to_3km", "3_to_5km", "5_to_10km", "over_10km"]),
    "current_store": ("single", ["big_chain", "neighbourhood_market", "wholesale_club",
                                 "street_market", "online", "other"]),
    "priorities": ("multi", ["price", "variety", "proximity", "service", "opening_hours",
                             "quality", "parking"]),
    "purchase_intent": ("scale", ["1", "2", "3", "4", "5"]),
    "share_moved": ("single", ["0", "25", "50", "75", "100"]),
    "payment_methods": ("multi", ["cash", "debit_card", "credit_card", "pix", "meal_voucher"]),
    "buys_online": ("single", ["never", "sometimes", "often"]),
}



@pytest.fixture
def q():
    return questionnaire(load_census(DEFAULT_CENSUS_FILE))


def test_definition_matches_the_contract(q):
    assert [x.key for x in q.questions] == list(CONTRACT)
    for question in q.questions:
        kind, codes = CONTRACT[question.key]
        assert question.kind == kind
        if codes is not None:
            assert list(question.codes) == codes
    assert q["neighbourhood"].codes == ("centro", "vila_nova", "jardim_america", "sao_jose",
                                        "industrial", "boa_vista")
    assert (q["priorities"].min_picks, q["priorities"].max_picks) == (1, 3)
    assert (q["payment_methods"].min_picks, q["payment_methods"].max_picks) == (1, 5)
    assert (q["household_size"].minimum, q["household_size"].maximum) == (1, 20)
    assert q["monthly_spend"].maximum == Decimal("50000")


def test_every_question_and_choice_has_a_label():
    for question in QUESTIONS:
        assert str(question.label)
        assert all(str(c.label) for c in question.choices)


def test_income_midpoints_are_documented_and_increasing():
    mids = income_midpoints()
    assert mids["ate_1500"] == 1000 and mids["acima_20000"] == 25000
    assert list(mids.values()) == sorted(mids.values())


def test_valid_form_is_cleaned(q):
    result = q.validate(VALID)
    assert result.ok, result.errors
    assert result.answers["monthly_spend"] == Decimal("1234.56")
    assert result.answers["household_size"] == 3
    assert result.answers["share_moved"] == 50
    assert result.answers["purchase_intent"] == 4
    assert result.answers["priorities"] == ("price", "proximity")  # definition order
    assert result.answers["payment_methods"] == ("debit_card", "pix")


def test_a_werkzeug_multidict_is_accepted(q):
    from werkzeug.datastructures import MultiDict

    form = MultiDict([(k, v) for k, vs in VALID.items()
                      for v in (vs if isinstance(vs, list) else [vs])])
    assert q.validate(form).answers == q.validate(VALID).answers


@pytest.mark.parametrize(("key", "value", "message"), [
    ("income_bracket", None, "Please answer this question."),
    ("income_bracket", "ate_999", "Choose one of the options shown."),
    ("income_bracket", ["ate_1500", "acima_20000"], "Give only one answer."),
    ("household_size", "0", "Enter a value from 1 to 20."),
    ("household_size", "21", "Enter a value from 1 to 20."),
    ("household_size", "2.5", "Enter a whole number."),
    ("household_size", "three", "Enter a whole number."),
    ("monthly_spend", "50000,01", "Enter a value from 0 to 50,000."),
    ("monthly_spend", "-10", "Enter an amount in reais, for example 1.250,00."),
    ("monthly_spend", "1e3", "Enter an amount in reais, for example 1.250,00."),
    ("monthly_spend", "123,456", "Enter a value from 0 to 50,000."),  # grouped: 123456
    ("monthly_spend", "1,234,5", "Enter an amount in reais, for example 1.250,00."),
    ("neighbourhood", "atlantis", "Choose one of the options shown."),
    ("priorities", [], "Pick at least 1 option."),
    ("priorities", ["price", "variety", "service", "parking"], "Pick at most 3 options."),
    ("priorities", ["price", "cheapness"], "Choose only among the options shown."),
    ("purchase_intent", "6", "Choose one of the options shown."),
    ("share_moved", "33", "Choose one of the options shown."),
    ("buys_online", "x" * (MAX_FIELD_LENGTH + 1), "This answer is too long."),
    ("buys_online", "' OR 1=1 --", "Choose one of the options shown."),
    ("buys_online", "<script>alert(1)</script>", "Choose one of the options shown."),
])
def test_invalid_answers_get_a_message(q, key, value, message):
    form = dict(VALID)
    if value is None:
        del form[key]
    else:
        form[key] = value
    result = q.validate(form)
    # outside a request the numbers are formatted in Babel's neutral locale (no grouping)
    assert {k: v.replace("50,000", "50000") for k, v in result.errors.items()} == {
        key: message.replace("50,000", "50000")}
    assert key not in result.answers


def test_typed_answers_are_kept_for_the_form(q):
    form = dict(VALID, household_size="abc", monthly_spend="R$ 1.000,5")
    result = q.validate(form)
    assert result.typed["household_size"] == ["abc"]
    assert result.typed["monthly_spend"] == ["R$ 1.000,5"]
    assert result.answers["monthly_spend"] == Decimal("1000.50")


def test_duplicate_picks_count_once(q):
    result = q.validate(dict(VALID, priorities=["price", "price", "price", "variety"]))
    assert result.answers["priorities"] == ("price", "variety")


@pytest.mark.parametrize(("text", "amount"), [
    ("1.234,56", "1234.56"), ("1,234.56", "1234.56"), ("1234,56", "1234.56"),
    ("1234.56", "1234.56"), ("1234", "1234.00"), ("R$ 1.234", "1234.00"),
    ("r$1.234,5", "1234.50"), ("12,5", "12.50"), ("0,99", "0.99"), ("  800 ", "800.00"),
    ("1.234.567,89", "1234567.89"), ("50.000", "50000.00"), ("1\u00a0234,00", "1234.00"),
])
def test_parse_money_accepts_brazilian_and_english_input(text, amount):
    assert parse_money(text) == Decimal(amount)


@pytest.mark.parametrize("text", [
    "", "R$", "-5", "+5", "1e3", "1.2.3", "1,2345", "12,345.6.7", "1.234,567", "abc", ",5",
    "NaN", "Infinity", "\u0661\u0662", "1 000 000 000 000 000",
])
def test_parse_money_refuses_what_is_not_an_amount(text):
    assert parse_money(text) is None


@given(st.decimals(min_value=0, max_value=50000, places=2, allow_nan=False))
def test_money_form_value_round_trips(amount):
    assert parse_money(format_money_input(amount)) == amount


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from([*CONTRACT, "other"]),
                       st.one_of(st.text(max_size=80), st.lists(st.text(max_size=10), max_size=8))))
def test_validate_never_raises_and_errors_or_answers_cover_every_question(form):
    q = questionnaire(load_census(DEFAULT_CENSUS_FILE))
    result = q.validate(form)
    assert set(result.errors) | set(result.answers) == set(CONTRACT)
    assert not set(result.errors) & set(result.answers)


def test_stored_answers_prefill_the_form(q):
    answers = q.validate(VALID).answers
    values = q.as_form(answers)
    assert values["monthly_spend"] == ["1234,56"]
    assert values["priorities"] == ["price", "proximity"]
    assert q.validate(values).answers == answers


def test_multi_questions_have_no_column_and_others_do(q):
    assert {x.key for x in q.multi} == {"priorities", "payment_methods"}
    assert all(x.column_type for x in q.columns)
    assert {x.kind for x in q.columns} == {Kind.SINGLE, Kind.INTEGER, Kind.MONEY, Kind.SCALE}


# --- census ---------------------------------------------------------------------------------


def test_example_census_loads():
    census = load_census(DEFAULT_CENSUS_FILE)
    assert census.households()["centro"] == 4200
    assert census.total_households == 17250
    assert census.income_households is None


def _write(tmp_path: Path, text: str, name: str = "census.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "line 1 must be the header"),
    ("bairro,label,households\n", "line 1 must be the header"),
    ("neighbourhood,label,households\n", "no data rows"),
    ("neighbourhood,label,households\na,A,10\na,A2,5\n", "line 3: neighbourhood 'a' repeated"),
    ("neighbourhood,label,households\nCentro,Centro,10\n", "line 2: neighbourhood 'Centro'"),
    ("neighbourhood,label,households\nc,C,ten\n", "line 2: households must be a whole number"),
    ("neighbourhood,label,households\nc,C,0\n", "households must be a whole number of at least 1"),
    ("neighbourhood,label,households\nc,,5\n", "label must have 1-100 characters"),
    ("neighbourhood,label,households\nc,C,5,extra\n", "expected 3 columns"),
])
def test_malformed_census_is_refused_with_a_clear_error(tmp_path, text, fragment):
    with pytest.raises(CensusError, match=fragment.replace("(", r"\(")):
        load_census(_write(tmp_path, text))


def test_missing_census_file_is_named(tmp_path):
    with pytest.raises(CensusError, match=r"nope\.csv: cannot read it"):
        load_census(tmp_path / "nope.csv")


def test_census_is_cached_until_the_file_changes(tmp_path):
    path = _write(tmp_path, "neighbourhood,label,households\na,A,10\n")
    first = load_census(path)
    assert load_census(path) is first
    _write(tmp_path, "neighbourhood,label,households\na,A,10\nb,B,20\n")
    assert load_census(path).codes == ("a", "b")


def test_bom_and_blank_lines_are_tolerated(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("\ufeffneighbourhood,label,households\n\na,Água Rasa,10\n", encoding="utf-8")
    assert load_census(path).neighbourhoods[0].label == "Água Rasa"


def test_optional_income_table(tmp_path):
    main = _write(tmp_path, "neighbourhood,label,households\na,A,10\nb,B,20\n")
    income = _write(tmp_path, "neighbourhood,income_bracket,households\na,ate_1500,6\n"
                              "a,1501_3000,4\nb,acima_20000,0\n", "income.csv")
    census = load_census(main, income)
    assert census.households_by_income() == {("a", "ate_1500"): 6, ("a", "1501_3000"): 4,
                                             ("b", "acima_20000"): 0}
    bad = _write(tmp_path, "neighbourhood,income_bracket,households\nz,ate_1500,6\n", "bad.csv")
    with pytest.raises(CensusError, match="'z' is not in the main census file"):
        load_census(main, bad)
    bad = _write(tmp_path, "neighbourhood,income_bracket,households\na,rich,6\n", "bad2.csv")
    with pytest.raises(CensusError, match="income_bracket 'rich' is not one of"):
        load_census(main, bad)


def test_neighbourhood_choices_follow_the_census(tmp_path):
    census = load_census(_write(tmp_path, "neighbourhood,label,households\nx,Xis,10\n"))
    q = questionnaire(census)
    assert q["neighbourhood"].codes == ("x",)
    assert q.validate(dict(VALID, neighbourhood="x")).ok
    assert not q.validate(VALID).ok  # "centro" is not in this census


def test_every_survey_text_is_translated_to_portuguese():
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
    from babel.messages.pofile import read_po

    app_dir = Path(__file__).resolve().parents[2] / "app" / "survey_app"
    po_path = app_dir / "translations" / "pt_BR" / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale="pt_BR")
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    sources = [("python", app_dir / name) for name in ("questionnaire.py", "census.py",
                                                        "export.py")]
    sources += [("python", p) for p in (app_dir / "survey").glob("*.py")]
    sources += [("jinja2", p) for p in (app_dir / "templates" / "survey").glob("*.html")]
    untranslated, checked = [], 0
    for method, path in sources:
        for _line, msgid, _comments, _context in extract_from_file(method, path,
                                                                    keywords=keywords):
            checked += 1
            entry = catalog.get(msgid)
            strings = entry.string if entry and isinstance(entry.string, tuple) else (
                (entry.string,) if entry else ("",))
            if not all(strings):
                untranslated.append((path.name, msgid))
    assert checked > 100 and untranslated == []
