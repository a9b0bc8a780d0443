"""Demo data: `flask load-sample-responses N [--seed S]` creates N realistic respondents.

Each sample respondent i gets the account `amostra-NNNN@example.invalid` (a hash no
password matches, so nobody can log in with it) and answers drawn from its own seeded
generator, so a second run with the same seed rewrites the same answers and a larger N
only adds respondents. The answers go through the survey's own validation and
`survey.storage.save_response`. The model is simple but consistent: neighbourhoods are
drawn in proportion to their census households, each has its own income level and
interest in a new store; spend grows with household size and income; transport,
priorities, payment and online buying follow income; share moved follows intent.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext

from survey_app import db
from survey_app.census import load_census
from survey_app.questionnaire import Questionnaire, format_money_input, questionnaire
from survey_app.survey.storage import save_response

EMAIL_PATTERN = "amostra-{:04d}@example.invalid"
NO_LOGIN_HASH = "!sample-account-without-password"  # not an argon2 hash: matches nothing
INCOME_EDGES = (1500, 3000, 5000, 8000, 12000, 20000)  # upper bounds of the brackets


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _hood_traits(code: str) -> tuple[float, float]:
    """A neighbourhood's (affluence, interest) in -1..1, stable for its code."""
    rng = random.Random(f"hood:{code}")  # noqa: S311 - demo data, not secrets
    return rng.uniform(-1, 1), rng.uniform(-1, 1)


def sample_answers(q: Questionnaire, index: int, seed: int,
                   household_weights: Sequence[tuple[str, int]]) -> dict[str, list[str]]:
    """The form (code strings, as a browser posts them) of sample respondent `index`."""
    rng = random.Random(f"{seed}:{index}")  # noqa: S311 - demo data, not secrets
    hood = rng.choices([c for c, _ in household_weights],
                       weights=[h for _, h in household_weights])[0]
    affluence, interest = _hood_traits(hood)
    income = math.exp(rng.gauss(math.log(3800) + 0.6 * affluence, 0.75))
    bracket_index = sum(income > edge for edge in INCOME_EDGES)
    bracket = q["income_bracket"].choices[bracket_index]
    rich = bracket_index / (len(INCOME_EDGES))  # 0 (lowest bracket) .. 1 (top)
    size = max(1, min(9, round(rng.gauss(3.3 - 0.8 * rich, 1.3))))
    spend = (420 * size ** 0.75 * (bracket.numeric / 4000) ** 0.4
             * math.exp(rng.gauss(0, 0.25)))
    spend = min(max(spend, 120), 25000)
    travel = _pick(rng, {"walk": 3 - 2 * rich, "bicycle": 0.6, "car": 0.5 + 5 * rich,
                         "motorcycle": 1.0, "bus": 2.5 - 2 * rich, "ride_app": 0.3 + rich})
    distance_weights = ({"up_to_1km": 2, "1_to_3km": 4, "3_to_5km": 3, "5_to_10km": 2,
                         "over_10km": 0.5} if travel == "car" else
                        {"up_to_1km": 5, "1_to_3km": 4, "3_to_5km": 1.5, "5_to_10km": 0.5,
                         "over_10km": 0.2})
    priorities = {"price": 5 - 3 * rich, "variety": 1 + 2 * rich, "quality": 1 + 3 * rich,
                  "service": 1.0, "opening_hours": 1.0, "parking": 0.2 + (travel == "car") * 2,
                  "proximity": 1 + (travel in ("walk", "bicycle")) * 3}
    picked: list[str] = []
    for _ in range(rng.choice((1, 2, 3, 3))):
        choice = _pick(rng, {k: w for k, w in priorities.items() if k not in picked})
        picked.append(choice)
    intent = max(1, min(5, round(rng.gauss(3.2 + 0.9 * interest
                                           + 0.4 * ("proximity" in picked), 1.0))))
    share = _pick(rng, {"0": max(0.1, 3 - intent), "25": 2, "50": intent,
                        "75": max(0.1, intent - 2), "100": max(0.1, intent - 3.5)})
    payments = {"pix", "debit_card"} if rng.random() < 0.8 else {"debit_card"}
    if rng.random() < 0.3 + 0.6 * rich:
        payments.add("credit_card")
    if rng.random() < 0.5 - 0.4 * rich:
        payments.add("cash")
    if rng.random() < 0.3:
        payments.add("meal_voucher")
    return {
        "income_bracket": [bracket.code], "household_size": [str(size)],
        "shopping_frequency": [_pick(rng, {"daily": 1.5 - rich, "several_weekly": 3,
                                           "weekly": 3 + rich, "biweekly": 1.5 + rich,
                                           "monthly": 1.5})],
        "monthly_spend": [format_money_input(Decimal(f"{spend:.2f}"))],
        "neighbourhood": [hood],
        "age_bracket": [_pick(rng, {"18_24": 1.3, "25_34": 2.2, "35_44": 2.2, "45_59": 2.4,
                                    "60_plus": 1.9})],
        "travel_mode": [travel], "max_distance": [_pick(rng, distance_weights)],
        "current_store": [_pick(rng, {"big_chain": 3 + 2 * rich, "neighbourhood_market": 3 - rich,
                                      "wholesale_club": 2 - rich, "street_market": 0.6,
                                      "online": 0.1 + 0.5 * rich, "other": 0.3})],
        "priorities": picked, "purchase_intent": [str(intent)], "share_moved": [share],
        "payment_methods": sorted(payments),
        "buys_online": [_pick(rng, {"never": 3 - 2 * rich, "sometimes": 2, "often": 0.2 + rich})],
    }


def _account(cur, email: str) -> int:
    cur.execute("INSERT INTO users (email, password_hash) VALUES (%s, %s) "
                "ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)", (email, NO_LOGIN_HASH))
    return cur.lastrowid


def load_sample_responses(count: int, seed: int = 1) -> int:
    """Create or rewrite sample respondents 1..`count`; returns how many were stored."""
    census = load_census(current_app.extensions["survey_settings"].census_file)
    q = questionnaire(census)
    weights = list(census.households().items())
    for index in range(1, count + 1):
        result = q.validate(sample_answers(q, index, seed, weights))
        if not result.ok:  # a bug in the model above, never the data's fault
            raise RuntimeError(f"sample respondent {index} is invalid: {result.errors}")
        with db.transaction() as cur:
            user_id = _account(cur, EMAIL_PATTERN.format(index))
        save_response(q, user_id, result.answers)
    return count


@click.command("load-sample-responses")
@with_appcontext
@click.argument("count", type=click.IntRange(1, 9999))
@click.option("--seed", type=int, default=1, show_default=True,
              help="Same seed, same answers: a second run rewrites them.")
def load_sample_responses_command(count: int, seed: int) -> None:
    """Create COUNT demo respondents (amostra-NNNN@example.invalid) with realistic answers."""
    try:
        stored = load_sample_responses(count, seed)
    except db.DatabaseUnavailable as exc:
        raise click.ClickException(f"database unavailable: {exc}") from None
    click.echo(f"{stored} sample responses stored (seed {seed})")
