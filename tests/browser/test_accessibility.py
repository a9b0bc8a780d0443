"""Phones and accessibility: axe-core finds no serious or critical problem on the
respondent's pages; they fit 360 px; every field has a label; the keyboard is enough."""

from __future__ import annotations

import pytest

from tests.app.survey_helpers import VALID
from tests.browser.conftest import PHONE, screenshot
from tests.browser.pages import (
    axe_violations,
    fill_questionnaire,
    no_horizontal_scroll,
    sign_up,
    start,
)

pytestmark = pytest.mark.browser


def _check(page, name: str) -> None:
    """axe-core, the 360 px width and the labels of every form control on this page."""
    assert no_horizontal_scroll(page), f"{name}: wider than the phone"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea')].filter(
        e => !e.labels || e.labels.length === 0 || !e.labels[0].innerText.trim()).map(e => e.id)""")
    assert unlabelled == [], f"{name}: fields without a label: {unlabelled}"
    violations = axe_violations(page)
    assert violations == [], f"{name}: {violations}"


@pytest.mark.parametrize("lang", ["pt_BR", "en"])
def test_respondent_pages_pass_axe_at_360px(live_app, new_page, lang):
    page = new_page(viewport=PHONE)
    start(page, live_app.url, lang)
    _check(page, "landing")
    page.goto(f"{live_app.url}/login")
    _check(page, "login")
    with page.expect_navigation():  # empty: errors
        page.locator("form.form button[type=submit]").click()
    _check(page, "login with errors")
    page.goto(f"{live_app.url}/signup")
    _check(page, "signup")
    page.locator("#email").fill("not an email")
    with page.expect_navigation():
        page.locator("form.form button[type=submit]").click()
    _check(page, "signup with errors")
    for field in ("email", "new_password"):  # each message is tied to its field
        described = page.locator(f"#{field}").get_attribute("aria-describedby") or ""
        assert f"{field}-error" in described.split()
    sign_up(page, f"axe-{lang}@example.com")
    page.goto(f"{live_app.url}/survey")
    _check(page, "questionnaire")
    with page.expect_navigation():  # nothing answered
        page.locator("form.survey-form button[type=submit]").click()
    _check(page, "questionnaire with errors")
    invalid = page.locator("[aria-invalid=true]").evaluate_all(
        "els => els.map(e => [e.id, e.getAttribute('aria-describedby') || e.closest('fieldset')"
        "?.getAttribute('aria-describedby')])")
    assert len(invalid) >= 14
    for element_id, described in invalid:
        error_ids = [i for i in (described or "").split() if i.endswith("-error")]
        assert error_ids, f"{element_id} is not tied to its error message"
        assert page.locator(f"#{error_ids[0]}").inner_text().strip()
    fill_questionnaire(page, VALID)
    with page.expect_navigation():
        page.locator("form.survey-form button[type=submit]").click()
    assert page.url.endswith("/survey/thanks")
    _check(page, "thanks")


def test_the_questionnaire_can_be_answered_with_the_keyboard_alone(live_app, new_page):
    page = new_page(viewport=PHONE)
    start(page, live_app.url, "en", "/signup")
    sign_up(page, "keys@example.com")
    page.goto(f"{live_app.url}/survey")
    page.locator("h1").click()  # start from the page, then only keys

    def tab_to(element_id: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == element_id:
                return
        raise AssertionError(f"Tab never reached #{element_id}")

    def focus_ring() -> str:
        return page.evaluate("getComputedStyle(document.activeElement).outlineStyle")

    # radios: Tab into the group, arrows pick; checkboxes: Space; text: type
    tab_to("q-income_bracket-ate_1500")
    assert focus_ring() != "none"  # a visible focus indicator
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.locator("#q-income_bracket-3001_5000").is_checked()
    screenshot(page, "keyboard-focus-phone")
    tab_to("q-household_size")
    assert focus_ring() != "none"
    page.keyboard.type("3")
    for key, code in (("shopping_frequency", "daily"), ("neighbourhood", "centro"),
                      ("age_bracket", "18_24"), ("travel_mode", "walk"),
                      ("max_distance", "up_to_1km"), ("current_store", "big_chain"),
                      ("purchase_intent", "1"), ("share_moved", "0"),
                      ("buys_online", "never")):
        tab_to(f"q-{key}-{code}")
        page.keyboard.press("Space")
        if key == "shopping_frequency":
            tab_to("q-monthly_spend")
            page.keyboard.type("850,00")
    page.locator("#q-priorities-price").focus()
    page.keyboard.press("Space")
    tab_to("q-payment_methods-pix")
    page.keyboard.press("Space")
    tab_to("q-buys_online-never")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.type") == "submit"
    assert focus_ring() != "none"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/survey/thanks"), page.locator("main").inner_text()[:600]


def test_the_accessibility_check_does_find_problems(new_page):
    page = new_page()
    page.set_content('<html lang="en"><head><title>t</title></head><body><main>'
                     '<input id="nameless"><p class="faint">faint text</p></main>'
                     '<style>.faint { color: #c8c8c8; }</style></body></html>')
    found = {v["id"] for v in axe_violations(page)}
    assert {"label", "color-contrast"} <= found
