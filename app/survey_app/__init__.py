"""The market-survey web app: `create_app` builds a configured Flask application."""

from __future__ import annotations

from flask import Flask

from survey_app.settings import Settings


def create_app(settings: Settings | None = None, **flask_config: object) -> Flask:
    """Application factory: settings from the environment unless given.

    `flask_config` is applied last, so tests can override any Flask setting.
    """
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=64 * 1024)
    app.extensions["survey_settings"] = settings

    from survey_app import extensions, i18n, sample, web
    from survey_app.analysis import bp as analysis_bp
    from survey_app.auth import bp as auth_bp
    from survey_app.auth.commands import COMMANDS
    from survey_app.health import bp as health_bp
    from survey_app.survey import bp as survey_bp

    extensions.init_app(app, settings)
    app.config.update(flask_config)
    i18n.init_app(app)
    web.init_app(app, settings)
    for blueprint in (health_bp, auth_bp, survey_bp, analysis_bp):
        app.register_blueprint(blueprint)
    for command in COMMANDS:
        app.cli.add_command(command)
    app.cli.add_command(sample.load_sample_responses_command)
    web.add_fallback_home(app)
    return app

