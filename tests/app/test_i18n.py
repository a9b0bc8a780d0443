"""Languages: Brazilian Portuguese by default, English on request, money in R$."""

from __future__ import annotations

import os
import shutil
from decimal import Decimal

from tests.app.helpers import signup


def body(response) -> str:
    return response.get_data(as_text=True)


def test_default_is_brazilian_portuguese(client):
    page = body(client.get("/login"))
    assert '<html lang="pt-BR">' in page
    assert "<h1>Entrar</h1>" in page and "Senha" in page
    assert 'href="/login?lang=en"' in page  # the switch offers English


def test_english_on_request_is_kept_in_a_cookie(client):
    response = client.get("/login?lang=en")
    assert '<html lang="en">' in body(response) and "<h1>Log in</h1>" in body(response)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("lang="))
    assert cookie.startswith("lang=en;") and "SameSite=Lax" in cookie
    assert "<h1>Log in</h1>" in body(client.get("/login"))  # no ?lang: the cookie
    assert "<h1>Entrar</h1>" in body(client.get("/login?lang=pt_BR"))
    assert "<h1>Entrar</h1>" in body(client.get("/login"))


def test_unknown_language_falls_back_to_default(client):
    assert "<h1>Entrar</h1>" in body(client.get("/login?lang=xx"))


def test_validation_messages_follow_the_language(client):
    pt = signup(client, "", "curta")
    assert "Este campo é obrigatório." in body(pt)
    assert "Use pelo menos 8 caracteres." in body(pt)
    en = signup(client, "", "short", query_string={"lang": "en"})
    assert "This field is required." in body(en)
    assert "Use at least 8 characters." in body(en)


def test_language_switch_keeps_other_query_arguments(client):
    page = body(client.get("/login?next=/password"))
    assert 'href="/login?next=%2Fpassword&amp;lang=en"' in page


def test_money_is_in_reais(app):
    from flask_babel import force_locale

    from survey_app.i18n import money

    with app.test_request_context("/"):
        assert money(Decimal("1234.5")) == "R$\xa01.234,50"
        with force_locale("en"):
            assert money(1234.5) == "R$1,234.50"
        assert app.jinja_env.from_string("{{ 99|money }}").render() == "R$\xa099,00"
        assert money(None) == ""


def test_catalogues_are_compiled_when_missing_or_stale(tmp_path):
    from survey_app.i18n import TRANSLATIONS, compile_translations

    folder = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, folder, ignore=shutil.ignore_patterns("*.mo"))
    compiled = compile_translations(folder)
    assert [p.relative_to(folder).as_posix() for p in compiled] == [
        "pt_BR/LC_MESSAGES/messages.mo"]
    assert compile_translations(folder) == []  # up to date
    po = folder / "pt_BR/LC_MESSAGES/messages.po"
    later = compiled[0].stat().st_mtime + 10
    os.utime(po, (later, later))
    assert compile_translations(folder) == compiled


def test_platform_texts_are_translated():
    from babel.messages.pofile import read_po

    from survey_app.i18n import TRANSLATIONS

    with (TRANSLATIONS / "pt_BR/LC_MESSAGES/messages.po").open("rb") as po:
        catalog = read_po(po)
    for msgid in ("Log in", "Wrong email or password.", "Too many attempts",
                  "Service temporarily unavailable", "This form has expired",
                  "Use at least %(min)d characters."):
        assert catalog[msgid].string, msgid
