"""Nothing typed is lost when the session expires while the questionnaire is open.

The idle expiry is forced by deleting the session's key in Redis (what its TTL does after
30 idle minutes); the keepalive interval is 2 s in these tests (SURVEY_KEEPALIVE_SECONDS).
"""

from __future__ import annotations

import pytest

from tests.app.survey_helpers import VALID
from tests.browser.conftest import PHONE, screenshot
from tests.browser.pages import as_shown, fill_questionnaire, log_in, sign_up, start, typed_answers

pytestmark = pytest.mark.browser

TYPED = dict(VALID, household_size="6", monthly_spend="765,43")


def _expire_session(page, redis_server, redis_db) -> None:
    sid = next(c["value"] for c in page.context.cookies() if c["name"] == "survey_session")
    assert redis_server.client(redis_db).delete(f"survey:session:{sid}") == 1


def _activity_then_ping(page):
    """Some typing, then the keepalive request it causes; returns its JSON."""
    with page.expect_response("**/session/keepalive") as response:
        page.locator("#q-household_size").press("End")
    return response.value.json()


def _stored_spend(live_app, email: str):
    from survey_app import db

    with live_app.app.app_context():
        rows = db.query("SELECT r.monthly_spend FROM responses r JOIN users u "
                        "ON u.id = r.user_id WHERE u.email = %s", (email,))
    return rows[0]["monthly_spend"] if rows else None


def test_typing_keeps_the_session_alive_and_idle_pages_send_nothing(live_app, new_page):
    page = new_page(viewport=PHONE)
    start(page, live_app.url, "en", "/signup")
    sign_up(page, "busy@example.com")
    page.goto(f"{live_app.url}/survey")
    pings = []
    page.on("request", lambda r: "/session/keepalive" in r.url and pings.append(r.url))
    page.wait_for_timeout(4500)  # an idle page: no ping
    assert pings == []
    state = _activity_then_ping(page)
    assert state["logged_in"] is True
    assert page.locator("input[name=csrf_token]").first.input_value() == state["csrf_token"]


def test_an_expired_session_loses_nothing_in_a_real_browser(live_app, new_page, redis_server,
                                                            redis_db):
    page = new_page(viewport=PHONE)
    words = start(page, live_app.url, "en", "/signup")
    sign_up(page, "slow@example.com")
    page.goto(f"{live_app.url}/survey")
    fill_questionnaire(page, TYPED)
    _expire_session(page, redis_server, redis_db)

    # sent at once (before any keepalive could tell): the form comes back, answers kept
    with page.expect_navigation():
        page.locator("form.survey-form button[type=submit]").click()
    notice = page.locator('[data-session="expired"]')
    assert notice.is_visible()
    assert "NOT saved" in notice.inner_text()
    assert typed_answers(page, TYPED) == as_shown(TYPED)
    screenshot(page, "session-expired-phone-en", doc=True)

    # log in again in the new tab the notice's link opens; the form's tab is untouched
    with page.context.expect_page() as popup:
        notice.get_by_role("link").click()
    other = popup.value
    other.wait_for_load_state()
    log_in(other, live_app.url, words, "slow@example.com")
    other.close()

    # back in the form's tab: the keepalive sees the new session and takes its token
    page.bring_to_front()
    page.locator("#q-household_size").press("End")  # activity: a keepalive within 2 s
    page.locator('[data-session="back"]').wait_for(state="visible")
    assert not notice.is_visible()
    with page.expect_navigation():
        page.locator("form.survey-form button[type=submit]").click()
    assert page.url.endswith("/survey/thanks")
    assert str(_stored_spend(live_app, "slow@example.com")) == "765.43"


def test_the_page_warns_before_sending_when_the_session_is_gone(live_app, new_page,
                                                                redis_server, redis_db):
    page = new_page(viewport=PHONE)
    start(page, live_app.url, "pt_BR", "/signup")
    sign_up(page, "aviso@example.com")
    page.goto(f"{live_app.url}/survey")
    fill_questionnaire(page, TYPED)
    _expire_session(page, redis_server, redis_db)
    page.locator("#q-household_size").press("End")  # activity: a keepalive within 2 s
    page.locator('[data-session="expired"]').wait_for(state="visible")
    assert typed_answers(page, TYPED) == as_shown(TYPED)
