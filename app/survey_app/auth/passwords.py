"""Password hashing (argon2id) and the password policy.

Policy (ASVS 2.1): at least 8 characters, at most 1024 (refused, never truncated), no
composition rules, not one of the common passwords in `data/common_passwords.txt`,
not the email address.
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l

MIN_LENGTH = 8
MAX_LENGTH = 1024
COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common_passwords.txt"

hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory parameters


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash` (False for a malformed hash)."""
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    return hasher.check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    """A hash to verify against for unknown emails, so they cost the same time."""
    return hasher.hash(secrets.token_urlsafe(16))


@cache
def common_passwords() -> frozenset[str]:
    """The refused common passwords, lower-case."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problem(password: str, email: str = ""):
    """Why `password` is refused (a lazy, translatable message), or None."""
    if len(password) < MIN_LENGTH:
        return _l("Use at least %(min)d characters.", min=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _l("Use at most %(max)d characters.", max=MAX_LENGTH)
    lowered = password.lower()
    if lowered in common_passwords():
        return _l("This password is too common. Choose a less predictable one.")
    if email and lowered in (email.lower(), email.split("@", 1)[0].lower()):
        return _l("Do not use your email address as your password.")
    return None
