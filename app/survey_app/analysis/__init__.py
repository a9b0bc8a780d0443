"""The `analysis` blueprint: the analysts' report (`/analysis`)."""

from flask import Blueprint

bp = Blueprint("analysis", __name__)

from survey_app.analysis import views  # noqa: E402, F401  (registers the routes)
