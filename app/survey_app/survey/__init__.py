"""The `survey` blueprint: landing page, the questionnaire form, thanks, analyst exports.

A respondent only ever reads and writes their OWN response: the user id comes from the
session (`current_user()`), never from the form or the URL. An answer is acknowledged
(redirect to the thanks page) only after its transaction committed; when MariaDB or
Redis fails during the POST (in the view or in the user lookup before it), the
blueprint's error handler shows the form again with the typed answers and a 503.
Likewise when the session ended while the form was open (idle timeout: the CSRF check
fails, or the user is gone): the form comes back with the typed answers and how to send
them (log in again in another tab; `static/js/keepalive.js` then brings the page the new
session's CSRF token, and keeps sessions alive while people type).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import wraps

import redis
from babel.dates import format_datetime
from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError, generate_csrf

from survey_app import export
from survey_app.auth import analyst_required, current_user, login_required
from survey_app.census import load_census
from survey_app.db import DatabaseUnavailable
from survey_app.questionnaire import Questionnaire, questionnaire
from survey_app.settings import Settings, SettingsError
from survey_app.survey.storage import load_response, save_response
from survey_app.web import render_error

bp = Blueprint("survey", __name__)


def _settings() -> Settings:
    return current_app.extensions["survey_settings"]


def closing_time(settings: Settings) -> datetime | None:
    """When the survey closes (`SURVEY_CLOSES_AT`, ISO 8601; no offset means UTC), or None."""
    raw = settings.survey_closes_at
    if not raw:
        return None
    try:
        when = raw if isinstance(raw, datetime) else datetime.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"SURVEY_CLOSES_AT must be an ISO 8601 date and time such as "
                            f"2026-12-31T23:59:00-03:00, got {raw!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def survey_closed() -> bool:
    """Whether answers can no longer be given or changed."""
    closes = closing_time(_settings())
    return closes is not None and datetime.now(UTC) >= closes


def current_questionnaire() -> Questionnaire:
    """The questionnaire bound to the configured census (reloaded when the file changes)."""
    return questionnaire(load_census(_settings().census_file))


@bp.record_once
def _check_configuration(state) -> None:
    """Refuse to start with a malformed census file or closing time."""
    settings = state.app.extensions["survey_settings"]
    load_census(settings.census_file)
    closing_time(settings)


def keepalive_seconds() -> int:
    """How often the open form refreshes its session: a third of the idle timeout, at most
    5 minutes (Flask config `SURVEY_KEEPALIVE_SECONDS` overrides it, for tests)."""
    configured = current_app.config.get("SURVEY_KEEPALIVE_SECONDS")
    return int(configured or min(300, _settings().session_idle_minutes * 20))


def _render_form(q: Questionnaire, values: dict[str, list[str]], errors: dict[str, str],
                 status: int = 200, *, notice: str | None = None, stored: bool = False):
    closes = closing_time(_settings())
    closes_text = closes and format_datetime(closes, "long", tzinfo=closes.tzinfo,
                                             locale=get_locale())
    return render_template(
        "survey/form.html", q=q, values=values, errors=errors, notice=notice,
        closed=survey_closed(), closes_at=closes_text, stored=stored, csrf=_form_csrf_token(),
        keepalive_seconds=keepalive_seconds(),
    ), status


def _typed_answers_again(notice: str, status: int):
    """The questionnaire with the answers just posted (nothing saved) and a notice."""
    q = current_questionnaire()
    return _render_form(q, q.validate(request.form).typed, {}, status, notice=notice)


def _keep_answers_without_session(view):
    """A questionnaire POST whose session has ended gets its typed answers back, not a
    redirect to the login page that would lose them."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if request.method == "POST" and current_user() is None:
            return _typed_answers_again("expired", 401)
        return view(*args, **kwargs)

    return wrapped


def _form_csrf_token() -> str:
    """A CSRF token for the form; without a session (Redis down) the one just posted."""
    if current_app.session_interface.is_null_session(session):
        return request.form.get("csrf_token", "")
    return generate_csrf()


@bp.get("/")
def index():
    """Landing page: what the survey is, and the way in."""
    return render_template("survey/index.html", user=current_user(), closed=survey_closed())


@bp.route("/survey", methods=["GET", "POST"])
@_keep_answers_without_session
@login_required
def form():
    """The questionnaire: GET shows it (prefilled), POST validates and stores it."""
    q = current_questionnaire()
    user_id = current_user().id
    if request.method == "GET" or survey_closed():
        answers = load_response(q, user_id)
        values = q.as_form(answers) if answers else {}
        return _render_form(q, values, {}, 403 if request.method == "POST" else 200,
                            stored=answers is not None)
    result = q.validate(request.form)
    if not result.ok:
        return _render_form(q, result.typed, result.errors, 400)
    save_response(q, user_id, result.answers)  # raises on any failure before COMMIT
    return redirect(url_for("survey.thanks"), 303)


@bp.errorhandler(DatabaseUnavailable)
@bp.errorhandler(redis.RedisError)
def _unavailable(exc: Exception):
    """MariaDB or Redis failed in this blueprint (the user lookup included).

    A questionnaire POST gets its form back with the typed answers and a 503, so
    nothing is lost and nothing is acknowledged; other pages get the generic 503 page.
    """
    current_app.logger.warning("survey: storage unavailable on %s %s: %s: %s", request.method,
                               request.path, type(exc).__name__, exc)
    if request.endpoint == "survey.form" and request.method == "POST":
        body, status = _typed_answers_again("unavailable", 503)
    else:
        body, status = render_error(503)
    return body, status, {"Retry-After": "30"}


@bp.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError):
    """A questionnaire POST with a CSRF token of another session: typically the session
    expired while the form was open. The form comes back with the typed answers."""
    if request.endpoint == "survey.form" and request.method == "POST":
        if current_user() is None:
            return _typed_answers_again("expired", 401)
        return _typed_answers_again("resend", 400)
    return render_template("errors/csrf.html", code=400, error=exc), 400


@bp.get("/survey/thanks")
@login_required
def thanks():
    """Thanks, shown only when the person's answers really are stored."""
    if load_response(current_questionnaire(), current_user().id) is None:
        return redirect(url_for("survey.form"))
    return render_template("survey/thanks.html", closed=survey_closed())


def _download(body, mimetype: str, filename: str) -> Response:
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    })


@bp.get("/export/responses.csv")
@analyst_required
def export_responses_csv():
    """All responses as CSV (streamed)."""
    rows = export.responses_csv(current_questionnaire())  # the query runs here, rows stream
    return _download(rows, "text/csv; charset=utf-8", "responses.csv")


@bp.get("/export/responses.xlsx")
@analyst_required
def export_responses_xlsx():
    """All responses and the codebook as XLSX."""
    return _download(export.responses_xlsx(current_questionnaire()),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     "responses.xlsx")


@bp.get("/export/codebook.csv")
@analyst_required
def export_codebook_csv():
    """The codebook (variables, types, value labels) as CSV, in the request's language."""
    return _download(export.codebook_csv(current_questionnaire()),
                     "text/csv; charset=utf-8", "codebook.csv")
