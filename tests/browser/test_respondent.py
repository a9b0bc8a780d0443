"""A respondent on a phone: signs up, logs in, answers with one mistake, fixes it, edits."""

from __future__ import annotations

import pytest

from tests.app.survey_helpers import VALID
from tests.browser.conftest import PHONE, screenshot
from tests.browser.pages import (
    as_shown,
    fill_questionnaire,
    log_in,
    log_out,
    no_horizontal_scroll,
    sign_up,
    start,
    typed_answers,
)

pytestmark = pytest.mark.browser

MISTAKE = dict(VALID, household_size="25", monthly_spend="1.234,56")


@pytest.mark.parametrize("lang", ["pt_BR", "en"])
def test_respondent_answers_corrects_a_mistake_and_edits(live_app, new_page, lang):
    page = new_page(viewport=PHONE)
    words = start(page, live_app.url, lang)
    screenshot(page, f"landing-{lang}")
    page.get_by_role("link", name=words["signup"], exact=True).first.click()
    page.wait_for_url("**/signup")
    email = f"maria-{lang}@example.com"
    sign_up(page, email)
    log_out(page, words)
    log_in(page, live_app.url, words, email)

    page.get_by_role("link", name=words["questionnaire"]).first.click()
    page.wait_for_url("**/survey")
    assert no_horizontal_scroll(page)
    screenshot(page, f"questionnaire-phone-{lang}", doc=lang == "pt_BR")

    fill_questionnaire(page, MISTAKE)
    with page.expect_navigation():  # Enter in a text field sends the form
        page.locator("#q-monthly_spend").press("Enter")

    # the mistake: shown in a summary and at the field, tied to it; the rest kept as typed
    summary = page.get_by_role("alert").filter(has=page.locator("#error-summary-title"))
    assert summary.count() == 1
    field = page.locator("#q-household_size")
    assert field.get_attribute("aria-invalid") == "true"
    error = page.locator("#q-household_size-error")
    assert "q-household_size-error" in field.get_attribute("aria-describedby").split()
    assert "20" in error.inner_text()
    shown = typed_answers(page, MISTAKE)
    assert shown == as_shown(MISTAKE)
    assert no_horizontal_scroll(page)
    screenshot(page, f"questionnaire-errors-phone-{lang}", doc=lang == "pt_BR")
    summary.get_by_role("link").first.click()  # the summary's link moves focus to the field
    assert page.evaluate("document.activeElement.id") == "q-household_size"
    assert page.locator("#q-household_size-error").is_visible()
    label_top = page.locator("label[for=q-household_size]").bounding_box()["y"]
    assert 0 <= label_top < PHONE["height"]  # the label is not scrolled out of view
    screenshot(page, f"questionnaire-error-field-phone-{lang}")

    field.fill("4")
    with page.expect_navigation():
        page.locator("form.survey-form button[type=submit]").click()
    assert page.url.endswith("/survey/thanks")
    assert page.get_by_role("heading", level=1).inner_text() == words["thanks"]
    screenshot(page, f"thanks-{lang}")

    # coming back: the stored answers are shown, and can be changed
    page.get_by_role("link", name=words["review"]).click()
    page.wait_for_url("**/survey")
    assert page.locator("#q-household_size").input_value() == "4"
    assert page.locator("#q-monthly_spend").input_value() == "1234,56"
    fill_questionnaire(page, {"monthly_spend": "980", "priorities": ["quality"]})
    with page.expect_navigation():
        page.locator("form.survey-form button[type=submit]").click()
    assert page.url.endswith("/survey/thanks")
    page.get_by_role("link", name=words["review"]).click()
    page.wait_for_url("**/survey")
    assert page.locator("#q-monthly_spend").input_value() == "980,00"
    assert typed_answers(page, ["priorities"]) == {"priorities": ["quality"]}
