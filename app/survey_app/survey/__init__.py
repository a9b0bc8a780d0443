"""The `survey` blueprint."""

from flask import Blueprint

bp = Blueprint("survey", __name__)
