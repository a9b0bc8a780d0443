"""Driving the app's pages like a person would: by labels, keys and clicks."""

from __future__ import annotations

from pathlib import Path

from tests.app.helpers import DEFAULT_PASSWORD

TEXTS = {  # the visible words the tests click on, per language
    "pt_BR": {"signup": "Criar uma conta", "login": "Entrar", "logout": "Sair",
              "questionnaire": "Questionário", "analysis": "Análise",
              "review": "Rever ou alterar minhas respostas", "thanks": "Obrigado!",
              "email": "E-mail", "password": "Senha"},
    "en": {"signup": "Create an account", "login": "Log in", "logout": "Log out",
           "questionnaire": "Questionnaire", "analysis": "Analysis",
           "review": "Review or change my answers", "thanks": "Thank you!",
           "email": "Email", "password": "Password"},
}


def start(page, base_url: str, lang: str, path: str = "/") -> dict[str, str]:
    """Open `path` in `lang` (the choice is kept in a cookie); returns the language's words."""
    page.goto(f"{base_url}{path}?lang={'en' if lang == 'en' else 'pt_BR'}")
    return TEXTS[lang]


def sign_up(page, email: str, password: str = DEFAULT_PASSWORD) -> None:
    """Fill and send the sign-up form (the page must show it)."""
    page.locator("#email").fill(email)
    page.locator("#new_password").fill(password)
    page.locator("#confirm").fill(password)
    with page.expect_navigation():
        page.locator("form.form button[type=submit]").click()


def log_in(page, base_url: str, words: dict[str, str], email: str,
           password: str = DEFAULT_PASSWORD) -> None:
    """Log in through the form, found by its labels."""
    page.goto(f"{base_url}/login")
    page.get_by_label(words["email"], exact=True).fill(email)
    page.get_by_label(words["password"], exact=True).fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name=words["login"]).click()


def log_out(page, words: dict[str, str]) -> None:
    """Press the nav's log-out button."""
    with page.expect_navigation():
        page.get_by_role("button", name=words["logout"]).click()


def fill_questionnaire(page, answers: dict) -> None:
    """Answer every question: text inputs typed, choices clicked (by their label)."""
    for key, value in answers.items():
        control = page.locator(f"#q-{key}")
        tag = control.evaluate("element => element.tagName")
        if tag == "FIELDSET":
            codes = value if isinstance(value, list) else [value]
            checked = page.locator(f"#q-{key} input:checked").evaluate_all(
                "boxes => boxes.map(box => box.value)")
            for code in checked:
                if code not in codes:
                    page.locator(f"label[for='q-{key}-{code}']").click()
            for code in codes:
                choice = page.locator(f"#q-{key}-{code}")
                if not choice.is_checked():
                    page.locator(f"label[for='q-{key}-{code}']").click()
        elif tag == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def typed_answers(page, keys) -> dict:
    """What the form shows now, per question, as a list: [text], or the checked codes."""
    shown = {}
    for key in keys:
        control = page.locator(f"#q-{key}")
        if control.evaluate("element => element.tagName") == "FIELDSET":
            shown[key] = sorted(box.get_attribute("value")
                                for box in page.locator(f"#q-{key} input:checked").all())
        else:
            shown[key] = [control.input_value()]
    return shown


def as_shown(answers: dict) -> dict:
    """Form values as `typed_answers` reports them."""
    return {k: sorted(v) if isinstance(v, list) else [v] for k, v in answers.items()}


def no_horizontal_scroll(page) -> bool:
    """Whether the page fits the viewport's width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


AXE_SCRIPT: str | None = None


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of `impacts` on the page (WCAG 2.x A/AA and best practice).

    axe-core comes vendored in the PyPI package axe-playwright-python (a dev extra), so
    nothing is fetched at test time.
    """
    global AXE_SCRIPT
    if AXE_SCRIPT is None:
        import axe_playwright_python

        AXE_SCRIPT = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
    page.evaluate(AXE_SCRIPT)
    result = page.evaluate("""() => axe.run(document, {
        runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                        'wcag22aa', 'best-practice']},
        resultTypes: ['violations']})""")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]
