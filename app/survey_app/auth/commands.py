"""Operator commands: `flask create-analyst EMAIL`, `flask promote EMAIL`, `flask demote EMAIL`.

There is no default account: the first analyst is created with a password the operator
types (twice, hidden), pipes in with `--password-stdin`, or has generated with
`--generate-password` (printed once on stdout, never logged); never on the command line.
"""

from __future__ import annotations

import secrets
import sys

import click
import pymysql
from flask.cli import with_appcontext
from flask_babel import force_locale

from survey_app import db
from survey_app.auth.passwords import hash_password, password_problem
from survey_app.auth.users import normalise_email


def _read_password(from_stdin: bool, email: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with force_locale("en"):  # operators read English
        problem = password_problem(password, email)
        if problem:
            raise click.ClickException(str(problem))
    return password


def _password_options(command):
    """The ways to give a password: prompt (default), stdin, or generated."""
    command = click.option(
        "--generate-password", is_flag=True,
        help="Generate a random password and print it once (change it after logging in).",
    )(command)
    return click.option("--password-stdin", is_flag=True,
                        help="Read the password from the first line of standard input.")(command)


def _chosen_password(email: str, password_stdin: bool, generate_password: bool) -> str:
    if password_stdin and generate_password:
        raise click.UsageError("use either --password-stdin or --generate-password")
    if generate_password:
        return secrets.token_urlsafe(15)  # 20 characters, ~120 bits
    return _read_password(password_stdin, email)


def _announce(password: str, generated: bool) -> None:
    if generated:
        click.echo(f"one-time password (shown only now; change it after logging in): {password}")


@click.command("create-analyst")
@with_appcontext
@click.argument("email")
@_password_options
def create_analyst(email: str, password_stdin: bool, generate_password: bool) -> None:
    """Create an analyst account (the password is prompted for, never an argument)."""
    email = normalise_email(email)
    password = _chosen_password(email, password_stdin, generate_password)
    try:
        with db.transaction() as cur:
            cur.execute("INSERT INTO users (email, password_hash, role) "
                        "VALUES (%s, %s, 'analyst')", (email, hash_password(password)))
    except pymysql.err.IntegrityError:
        raise click.ClickException(
            f"an account for {email} already exists; use `flask promote {email}`") from None
    except db.DatabaseUnavailable as exc:
        raise click.ClickException(f"database unavailable: {exc}") from None
    click.echo(f"analyst {email} created")
    _announce(password, generate_password)


@click.command("set-password")
@with_appcontext
@click.argument("email")
@_password_options
def set_password(email: str, password_stdin: bool, generate_password: bool) -> None:
    """Give an account a new password; its open sessions end (operator reset)."""
    email = normalise_email(email)
    password = _chosen_password(email, password_stdin, generate_password)
    try:
        with db.transaction() as cur:
            found = cur.execute(
                "UPDATE users SET password_hash = %s, password_changed_at = NOW(6) "
                "WHERE email = %s", (hash_password(password), email))
    except db.DatabaseUnavailable as exc:
        raise click.ClickException(f"database unavailable: {exc}") from None
    if not found:
        raise click.ClickException(f"no account for {email}")
    click.echo(f"password of {email} changed; its open sessions have ended")
    _announce(password, generate_password)


def _set_role(email: str, role: str) -> None:
    email = normalise_email(email)
    try:
        with db.transaction() as cur:
            found = cur.execute("SELECT id FROM users WHERE email = %s", (email,))
            if found:
                cur.execute("UPDATE users SET role = %s WHERE email = %s", (role, email))
    except db.DatabaseUnavailable as exc:
        raise click.ClickException(f"database unavailable: {exc}") from None
    if not found:
        raise click.ClickException(f"no account for {email}")
    click.echo(f"{email} is now {role}")


@click.command("promote")
@with_appcontext
@click.argument("email")
def promote(email: str) -> None:
    """Give an existing account the analyst role."""
    _set_role(email, "analyst")


@click.command("demote")
@with_appcontext
@click.argument("email")
def demote(email: str) -> None:
    """Make an analyst a respondent again."""
    _set_role(email, "respondent")


COMMANDS = (create_analyst, set_password, promote, demote)
