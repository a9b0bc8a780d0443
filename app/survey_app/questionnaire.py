"""The questionnaire: ONE declarative definition that drives the form, validation, storage
and the export codebook.

`QUESTIONS` is plain data (keys, kinds, labels, choices, ranges, storage column types);
`questionnaire(census)` binds the neighbourhood choices from the census and returns a
`Questionnaire` whose `validate(form)` checks a submitted form against allow-lists and
ranges and returns the cleaned answers or one message per field.

Income brackets carry a `numeric` value: the bracket's representative monthly household
income in reais, used by the analysis (mean income, demand models):

=============  ==================  ========
code           bracket (R$/month)  numeric
=============  ==================  ========
ate_1500       up to 1,500            1,000
1501_3000      1,501 - 3,000          2,250
3001_5000      3,001 - 5,000          4,000
5001_8000      5,001 - 8,000          6,500
8001_12000     8,001 - 12,000        10,000
12001_20000    12,001 - 20,000       16,000
acima_20000    over 20,000           25,000
=============  ==================  ========

Closed brackets use their midpoint, except the lowest one: most households in it earn
near the minimum wage (R$ 1,518 in 2025), so 1,000 rather than 750. The open top bracket
uses 1.25x its lower bound, the usual convention for an open-ended class.
`share_moved` choices carry their percentage as `numeric` (and are stored as integers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flask_babel import format_decimal, gettext, ngettext
from flask_babel import lazy_gettext as _l

if TYPE_CHECKING:
    from survey_app.census import Census

MAX_FIELD_LENGTH = 64
"""Longest raw value accepted for any field (codes are at most 32 characters)."""

MAX_VALUES = 32
"""Most values one field may post (a multi question has at most a handful of choices)."""

SELECT_THRESHOLD = 8
"""A single question with more choices than this is a drop-down list, not radio buttons."""

CODE_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
"""Shape of every choice code and of every question key (they are SQL identifiers too)."""


class Kind(StrEnum):
    """How a question is asked and what its answer is."""

    SINGLE = "single"    # one code from the choices
    MULTI = "multi"      # min_picks..max_picks distinct codes, stored in response_choices
    INTEGER = "integer"  # a whole number in minimum..maximum
    MONEY = "money"      # reais with at most 2 decimals in minimum..maximum
    SCALE = "scale"      # a labelled point of minimum..maximum (stored as an integer)


@dataclass(frozen=True, eq=False)
class Choice:
    """One allowed answer: its stored code, its label, and an optional numeric meaning."""

    code: str
    label: Any
    numeric: int | None = None


@dataclass(frozen=True, eq=False)
class Question:
    """One question of the definition."""

    key: str
    kind: Kind
    label: Any
    help: Any = None
    choices: tuple[Choice, ...] = ()
    choices_from: str | None = None  # "census": filled in by `questionnaire(census)`
    minimum: int | Decimal | None = None
    maximum: int | Decimal | None = None
    min_picks: int = 1
    max_picks: int = 1
    required: bool = True
    column_type: str | None = None  # MariaDB type of the `responses` column; None for MULTI
    integer_codes: bool = False  # SINGLE whose codes are stored as integers

    @property
    def codes(self) -> tuple[str, ...]:
        """The allowed codes, in display order."""
        return tuple(c.code for c in self.choices)

    @property
    def has_choices(self) -> bool:
        """Whether the answer is picked from `choices` (single, multi, scale)."""
        return self.kind in (Kind.SINGLE, Kind.MULTI, Kind.SCALE)

    @property
    def widget(self) -> str:
        """How the form shows it: radio, checkbox, select, number or money (text inputs, so
        whatever was typed is shown back as typed)."""
        if self.kind is Kind.MULTI:
            return "checkbox"
        if self.kind is Kind.INTEGER:
            return "number"
        if self.kind is Kind.MONEY:
            return "money"
        return "select" if len(self.choices) > SELECT_THRESHOLD else "radio"

    @property
    def is_integer(self) -> bool:
        """Whether the stored value is an integer."""
        return self.kind in (Kind.INTEGER, Kind.SCALE) or self.integer_codes

    def choice(self, code: str) -> Choice | None:
        """The choice with `code`, or None."""
        return next((c for c in self.choices if c.code == code), None)

    def stored(self, value: Any) -> Any:
        """The Python value of a cleaned answer as written to MariaDB."""
        if self.kind is Kind.MULTI or value is None:
            return value
        return int(value) if self.is_integer else value

    def as_form(self, value: Any) -> list[str]:
        """A stored value as the list of strings a form would have posted."""
        if value is None:
            return []
        if self.kind is Kind.MULTI:
            return [str(v) for v in value]
        if self.kind is Kind.MONEY:
            return [format_money_input(Decimal(value))]
        return [str(value)]


def _scale(labels: Iterable[Any]) -> tuple[Choice, ...]:
    return tuple(Choice(str(i), label) for i, label in enumerate(labels, start=1))


VARCHAR = "varchar(32)"

QUESTIONS: tuple[Question, ...] = (
    Question(
        "income_bracket", Kind.SINGLE, _l("Monthly household income"),
        _l("Total monthly income of everyone living in your home, before taxes."),
        choices=(
            Choice("ate_1500", _l("Up to R$ 1,500"), 1000),
            Choice("1501_3000", _l("R$ 1,501 to R$ 3,000"), 2250),
            Choice("3001_5000", _l("R$ 3,001 to R$ 5,000"), 4000),
            Choice("5001_8000", _l("R$ 5,001 to R$ 8,000"), 6500),
            Choice("8001_12000", _l("R$ 8,001 to R$ 12,000"), 10000),
            Choice("12001_20000", _l("R$ 12,001 to R$ 20,000"), 16000),
            Choice("acima_20000", _l("Over R$ 20,000"), 25000),
        ),
        column_type=VARCHAR,
    ),
    Question(
        "household_size", Kind.INTEGER, _l("People living in your home"),
        _l("Count yourself too (1 to 20)."),
        minimum=1, maximum=20, column_type="tinyint unsigned",
    ),
    Question(
        "shopping_frequency", Kind.SINGLE, _l("How often do you shop at a supermarket?"),
        choices=(
            Choice("daily", _l("Every day")),
            Choice("several_weekly", _l("Several times a week")),
            Choice("weekly", _l("Once a week")),
            Choice("biweekly", _l("Every two weeks")),
            Choice("monthly", _l("Once a month")),
        ),
        column_type=VARCHAR,
    ),
    Question(
        "monthly_spend", Kind.MONEY, _l("Average monthly grocery spend"),
        _l("In reais, for the whole household, e.g. 1.250,00."),
        minimum=Decimal("0"), maximum=Decimal("50000"), column_type="decimal(10,2)",
    ),
    Question(
        "neighbourhood", Kind.SINGLE, _l("Neighbourhood where you live"),
        choices_from="census", column_type=VARCHAR,
    ),
    Question(
        "age_bracket", Kind.SINGLE, _l("Your age"),
        choices=(
            Choice("18_24", _l("18 to 24")),
            Choice("25_34", _l("25 to 34")),
            Choice("35_44", _l("35 to 44")),
            Choice("45_59", _l("45 to 59")),
            Choice("60_plus", _l("60 or over")),
        ),
        column_type=VARCHAR,
    ),
    Question(
        "travel_mode", Kind.SINGLE, _l("How do you usually get to the store?"),
        choices=(
            Choice("walk", _l("On foot")),
            Choice("bicycle", _l("Bicycle")),
            Choice("car", _l("Car")),
            Choice("motorcycle", _l("Motorcycle")),
            Choice("bus", _l("Bus")),
            Choice("ride_app", _l("Ride-hailing app or taxi")),
        ),
        column_type=VARCHAR,
    ),
    Question(
        "max_distance", Kind.SINGLE, _l("How far would you travel to shop?"),
        choices=(
            Choice("up_to_1km", _l("Up to 1 km")),
            Choice("1_to_3km", _l("1 to 3 km")),
            Choice("3_to_5km", _l("3 to 5 km")),
            Choice("5_to_10km", _l("5 to 10 km")),
            Choice("over_10km", _l("More than 10 km")),
        ),
        column_type=VARCHAR,
    ),
    Question(
        "current_store", Kind.SINGLE, _l("Where do you buy most of your groceries now?"),
        choices=(
            Choice("big_chain", _l("A large supermarket chain")),
            Choice("neighbourhood_market", _l("A neighbourhood market")),
            Choice("wholesale_club", _l("A cash-and-carry wholesaler")),
            Choice("street_market", _l("A street market")),
            Choice("online", _l("Online")),
            Choice("other", _l("Somewhere else")),
        ),
        column_type=VARCHAR,
    ),
    Question(
        "priorities", Kind.MULTI, _l("What matters most to you in a supermarket?"),
        _l("Pick 1 to 3."),
        choices=(
            Choice("price", _l("Price")),
            Choice("variety", _l("Variety")),
            Choice("proximity", _l("Proximity")),
            Choice("service", _l("Service")),
            Choice("opening_hours", _l("Opening hours")),
            Choice("quality", _l("Quality")),
            Choice("parking", _l("Parking")),
        ),
        min_picks=1, max_picks=3,
    ),
    Question(
        "purchase_intent", Kind.SCALE,
        _l("How likely are you to shop at a new supermarket in your area?"),
        choices=_scale((_l("Very unlikely"), _l("Unlikely"), _l("Not sure"), _l("Likely"),
                        _l("Very likely"))),
        minimum=1, maximum=5, column_type="tinyint",
    ),
    Question(
        "share_moved", Kind.SINGLE,
        _l("What share of your grocery spend would you move to the new store?"),
        choices=(
            Choice("0", _l("None"), 0),
            Choice("25", _l("About a quarter"), 25),
            Choice("50", _l("About half"), 50),
            Choice("75", _l("About three quarters"), 75),
            Choice("100", _l("All of it"), 100),
        ),
        column_type="tinyint", integer_codes=True,
    ),
    Question(
        "payment_methods", Kind.MULTI, _l("How do you pay for groceries?"),
        _l("Pick every method you use."),
        choices=(
            Choice("cash", _l("Cash")),
            Choice("debit_card", _l("Debit card")),
            Choice("credit_card", _l("Credit card")),
            Choice("pix", _l("Pix")),
            Choice("meal_voucher", _l("Meal or food voucher")),
        ),
        min_picks=1, max_picks=5,
    ),
    Question(
        "buys_online", Kind.SINGLE, _l("Do you buy groceries online?"),
        choices=(
            Choice("never", _l("Never")),
            Choice("sometimes", _l("Sometimes")),
            Choice("often", _l("Often")),
        ),
        column_type=VARCHAR,
    ),
)


def _check_definition(questions: tuple[Question, ...]) -> None:
    """Fail at import on a malformed definition (keys and codes are SQL identifiers/values)."""
    keys = [q.key for q in questions]
    if len(set(keys)) != len(keys):
        raise ValueError("questionnaire: duplicate question keys")
    for q in questions:
        codes = q.codes
        if not CODE_PATTERN.match(q.key) or not all(CODE_PATTERN.match(c) for c in codes):
            raise ValueError(f"questionnaire: {q.key!r} has a key or code that is not [a-z0-9_]")
        if len(set(codes)) != len(codes) or (q.kind is Kind.MULTI) != (q.column_type is None):
            raise ValueError(f"questionnaire: {q.key!r} has duplicate codes or a wrong column")


_check_definition(QUESTIONS)


# --- money --------------------------------------------------------------------------------

_MONEY_PREFIX = re.compile(r"^\s*(?:R\$)?\s*", re.IGNORECASE)
_GROUPED = {",": re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+$"),
            ".": re.compile(r"^[0-9]{1,3}(?:\.[0-9]{3})+$")}


def parse_money(text: str) -> Decimal | None:
    """Reais from what a person typed, or None when it is not an amount.

    Accepts "1.234,56" (pt_BR), "1,234.56" (en), "1234,56", "1234.56", "1234", "R$ 1.234".
    With both separators the last one is the decimal mark. With only one kind, it is a
    thousands separator when it groups exactly 3 digits ("1.234" = 1234, "1,234" = 1234)
    and a decimal mark otherwise ("12,5" = 12.50). A sign, letters, exponents or more than
    two decimals are refused.
    """
    s = _MONEY_PREFIX.sub("", text).replace("\u00a0", "").replace(" ", "")
    if not re.fullmatch(r"[0-9][0-9.,]*", s):
        return None
    if "," in s and "." in s:
        mark = "," if s.rfind(",") > s.rfind(".") else "."
        sep = "." if mark == "," else ","
        whole, _, cents = s.rpartition(mark)
        if not _GROUPED[sep].match(whole):
            return None
        whole = whole.replace(sep, "")
    else:
        sep = "," if "," in s else "." if "." in s else None
        if sep is None:
            whole, cents = s, ""
        elif _GROUPED[sep].match(s):
            whole, cents = s.replace(sep, ""), ""
        elif s.count(sep) == 1:
            whole, _, cents = s.partition(sep)
        else:
            return None
    if not re.fullmatch(r"[0-9]{1,12}", whole) or not re.fullmatch(r"[0-9]{0,2}", cents):
        return None
    return Decimal(f"{whole}.{cents or '0'}").quantize(Decimal("0.01"))


def format_money_input(amount: Decimal) -> str:
    """An amount as a pt_BR form value, without thousands separators ("1234,50")."""
    return f"{amount:.2f}".replace(".", ",")


# --- validation -------------------------------------------------------------------------------


@dataclass
class Validation:
    """The outcome of `Questionnaire.validate`."""

    answers: dict[str, Any] = field(default_factory=dict)  # key -> cleaned value
    errors: dict[str, str] = field(default_factory=dict)  # key -> message
    typed: dict[str, list[str]] = field(default_factory=dict)  # key -> raw values, to re-show

    @property
    def ok(self) -> bool:
        """No errors."""
        return not self.errors


def _raw_values(form: Mapping[str, Any], key: str) -> list[str]:
    if hasattr(form, "getlist"):
        values = form.getlist(key)
    elif isinstance(value := form.get(key), list | tuple):
        values = list(value)
    else:
        values = [] if value is None else [value]
    return [v if isinstance(v, str) else str(v) for v in values]


def _check(question: Question, values: list[str]) -> tuple[Any, str | None]:
    """Clean one question's raw values: (value, None) or (None, message)."""
    if len(values) > MAX_VALUES or any(len(v) > MAX_FIELD_LENGTH for v in values):
        return None, gettext("This answer is too long.")
    present = [v.strip() for v in values if v.strip()]
    if not present:
        if not question.required:
            return ((), None) if question.kind is Kind.MULTI else (None, None)
        if question.kind is Kind.MULTI:
            return None, ngettext("Pick at least %(num)d option.",
                                  "Pick at least %(num)d options.", question.min_picks)
        return None, gettext("Please answer this question.")
    if question.kind is Kind.MULTI:
        picked = set(present)
        if not picked <= set(question.codes):
            return None, gettext("Choose only among the options shown.")
        if len(picked) < question.min_picks:
            return None, ngettext("Pick at least %(num)d option.",
                                  "Pick at least %(num)d options.", question.min_picks)
        if len(picked) > question.max_picks:
            return None, ngettext("Pick at most %(num)d option.",
                                  "Pick at most %(num)d options.", question.max_picks)
        return tuple(c for c in question.codes if c in picked), None
    if len(present) > 1:
        return None, gettext("Give only one answer.")
    raw = present[0]
    if question.has_choices:
        if raw not in question.codes:
            return None, gettext("Choose one of the options shown.")
        return question.stored(raw), None
    if question.kind is Kind.INTEGER:
        if not re.fullmatch(r"[+-]?[0-9]{1,9}", raw):
            return None, gettext("Enter a whole number.")
        number: int | Decimal | None = int(raw)
    else:
        number = parse_money(raw)
        if number is None:
            return None, gettext("Enter an amount in reais, for example 1.250,00.")
    if not question.minimum <= number <= question.maximum:
        return None, gettext("Enter a value from %(low)s to %(high)s.",
                             low=format_decimal(question.minimum),
                             high=format_decimal(question.maximum))
    return number, None


@dataclass(frozen=True, eq=False)
class Questionnaire:
    """The definition bound to a census: the questions a form shows and validates."""

    questions: tuple[Question, ...]

    def __getitem__(self, key: str) -> Question:
        """The question with `key` (KeyError when there is none)."""
        for q in self.questions:
            if q.key == key:
                return q
        raise KeyError(key)

    @property
    def columns(self) -> tuple[Question, ...]:
        """Questions stored as a column of `responses` (all but MULTI), in order."""
        return tuple(q for q in self.questions if q.kind is not Kind.MULTI)

    @property
    def multi(self) -> tuple[Question, ...]:
        """Questions stored as rows of `response_choices`."""
        return tuple(q for q in self.questions if q.kind is Kind.MULTI)

    def validate(self, form: Mapping[str, Any]) -> Validation:
        """Check a submitted form (a MultiDict, or a dict of str / list of str)."""
        result = Validation()
        for q in self.questions:
            values = _raw_values(form, q.key)
            result.typed[q.key] = [v[:MAX_FIELD_LENGTH] for v in values[:MAX_VALUES]]
            value, error = _check(q, values)
            if error:
                result.errors[q.key] = error
            else:
                result.answers[q.key] = value
        return result

    def as_form(self, answers: Mapping[str, Any]) -> dict[str, list[str]]:
        """Stored answers as form values (to prefill the form)."""
        return {q.key: q.as_form(answers.get(q.key)) for q in self.questions}


@lru_cache(maxsize=8)
def questionnaire(census: Census | None = None) -> Questionnaire:
    """The definition with census-driven choices filled in (neighbourhoods from `census`)."""
    bound = []
    for q in QUESTIONS:
        if q.choices_from == "census":
            hoods = census.neighbourhoods if census is not None else ()
            q = replace(q, choices=tuple(Choice(n.code, n.label) for n in hoods))
        bound.append(q)
    return Questionnaire(tuple(bound))


def income_midpoints() -> dict[str, int]:
    """Income bracket code -> representative monthly household income in reais."""
    return {c.code: c.numeric for c in _static("income_bracket").choices}


def _static(key: str) -> Question:
    return next(q for q in QUESTIONS if q.key == key)
