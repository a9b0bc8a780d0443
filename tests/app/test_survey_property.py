"""Property: whatever form is posted, the app never fails; it stores exactly the valid ones."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from survey_app.census import load_census
from survey_app.questionnaire import QUESTIONS, Kind, questionnaire
from survey_app.settings import DEFAULT_CENSUS_FILE
from tests.app.helpers import csrf_token
from tests.app.survey_helpers import VALID, answers_of, respondent, stored_response

Q = questionnaire(load_census(DEFAULT_CENSUS_FILE))
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)


def _values(question) -> st.SearchStrategy[str]:
    if question.kind is Kind.INTEGER:
        numbers = st.integers(-5, 30).map(str)
    elif question.kind is Kind.MONEY:
        numbers = st.one_of(
            st.decimals(-10, 60000, places=2).map(lambda d: f"{d:.2f}".replace(".", ",")),
            st.integers(0, 99999).map(lambda i: f"R$ {i:,}".replace(",", ".")))
    else:
        numbers = st.sampled_from(question.codes)
    return st.one_of(numbers, numbers, TEXT, st.sampled_from(["", " ", "0", "-1", "1e9"]))


FIELDS = {q.key: st.one_of(_values(q), st.lists(_values(q), max_size=5)) for q in Q.questions}
ARBITRARY = st.fixed_dictionaries({}, optional={**FIELDS, "user_id": TEXT, "extra": TEXT})
MUTATED = st.builds(lambda base, changes, drop: {k: v for k, v in {**base, **changes}.items()
                                                 if k not in drop},
                    st.just(VALID), st.fixed_dictionaries({}, optional=FIELDS),
                    st.sets(st.sampled_from([q.key for q in QUESTIONS]), max_size=2))


def _valid(question) -> st.SearchStrategy:
    if question.kind is Kind.MULTI:
        return st.lists(st.sampled_from(question.codes), min_size=question.min_picks,
                        max_size=question.max_picks, unique=True)
    if question.kind is Kind.INTEGER:
        return st.integers(question.minimum, question.maximum).map(str)
    if question.kind is Kind.MONEY:
        return st.decimals(0, 50000, places=2).flatmap(lambda d: st.sampled_from([
            f"{d:.2f}", f"{d:.2f}".replace(".", ","), f"R$ {d:,.2f}",
            f"{d:,.2f}".translate(str.maketrans(",.", ".,"))]))
    return st.sampled_from(question.codes)


VALID_FORMS = st.fixed_dictionaries({q.key: _valid(q) for q in Q.questions})


@pytest.fixture
def session(app, client, mariadb, database):
    user_id = respondent(app, client)
    token = csrf_token(client.get("/survey"))
    with mariadb.connect(database) as conn:
        yield client, token, user_id, conn


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(form=st.one_of(ARBITRARY, MUTATED, VALID_FORMS))
def test_any_form_is_stored_exactly_when_valid(session, form):
    client, token, user_id, conn = session
    with conn.cursor() as cur:
        cur.execute("DELETE FROM responses WHERE user_id = %s", (user_id,))
    conn.commit()
    response = client.post("/survey", data={**form, "csrf_token": token})
    expected = Q.validate(form)
    row = stored_response(conn, user_id)
    event("stored" if expected.ok else "refused")
    if expected.ok:
        assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
        assert response.headers["Location"].endswith("/survey/thanks")
        stored = answers_of(row)
        want = {k: Q[k].stored(v) for k, v in expected.answers.items()}
        assert {k: tuple(sorted(v)) if isinstance(v, tuple) else v for k, v in stored.items()} \
            == {k: tuple(sorted(v)) if isinstance(v, tuple) else v for k, v in want.items()}
    else:
        assert response.status_code == 400
        assert 'class="error-summary"' in response.get_data(as_text=True)
        assert row is None
