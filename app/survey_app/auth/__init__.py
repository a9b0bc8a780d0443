"""The `auth` blueprint: accounts, server-side sessions, roles.

Public API for the other blueprints: `current_user()`, `User`, `login_required`,
`analyst_required` (see docs/dev/app-contract.md).
"""

from flask import Blueprint

from survey_app.auth.users import (
    User,
    analyst_required,
    current_user,
    load_user,
    login_required,
)

bp = Blueprint("auth", __name__)
bp.before_app_request(load_user)

from survey_app.auth import commands, views  # noqa: E402, F401  (register routes/commands)

__all__ = ["User", "analyst_required", "bp", "current_user", "login_required"]
