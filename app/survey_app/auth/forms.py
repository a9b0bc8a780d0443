"""Account forms (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from survey_app.auth.passwords import MAX_LENGTH, password_problem

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REQUIRED = _l("This field is required.")


def _email_field() -> EmailField:
    return EmailField(_l("Email"), validators=[
        DataRequired(REQUIRED),
        Length(max=254, message=_l("Use at most %(max)d characters.")),
    ], render_kw={"autocomplete": "email", "maxlength": 254})


def _check_email_format(_form, field) -> None:
    if not EMAIL_PATTERN.match(field.data.strip()):
        raise ValidationError(_l("Enter a valid email address, like name@example.com."))


class _NewPasswordForm(FlaskForm):
    """A new password typed twice and checked against the policy."""

    def _email_for_policy(self) -> str:
        return ""

    def validate_new_password(self, field) -> None:
        """Apply the password policy."""
        problem = password_problem(field.data or "", self._email_for_policy())
        if problem:
            raise ValidationError(problem)


def _new_password_fields():
    new = PasswordField(_l("New password"), validators=[DataRequired(REQUIRED)],
                        render_kw={"autocomplete": "new-password", "minlength": 8})
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(REQUIRED),
        EqualTo("new_password", message=_l("The two passwords differ.")),
    ], render_kw={"autocomplete": "new-password"})
    return new, confirm


class SignupForm(_NewPasswordForm):
    """Create an account."""

    email = _email_field()
    new_password, confirm = _new_password_fields()

    def _email_for_policy(self) -> str:
        return self.email.data or ""

    def validate_email(self, field) -> None:
        """Check the address's shape."""
        _check_email_format(self, field)


class LoginForm(FlaskForm):
    """Log in (no policy hints: the same message for every failure)."""

    email = _email_field()
    password = PasswordField(_l("Password"), validators=[
        DataRequired(REQUIRED),
        Length(max=MAX_LENGTH, message=_l("Use at most %(max)d characters.")),
    ], render_kw={"autocomplete": "current-password"})


class ChangePasswordForm(_NewPasswordForm):
    """Change the password; the current one is required."""

    current_password = PasswordField(_l("Current password"), validators=[
        DataRequired(REQUIRED),
        Length(max=MAX_LENGTH, message=_l("Use at most %(max)d characters.")),
    ], render_kw={"autocomplete": "current-password"})
    new_password, confirm = _new_password_fields()

    def __init__(self, *args, email: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._email = email

    def _email_for_policy(self) -> str:
        return self._email


class LogoutForm(FlaskForm):
    """Log out (a POST with only the CSRF token)."""
