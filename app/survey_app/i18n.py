"""Translations: `.po` files compiled to `.mo` at start (no binaries in git), money in R$.

English msgids in code and templates; catalogues in `translations/<locale>/LC_MESSAGES/
messages.po`. Update them with `scripts/i18n-update` (pybabel extract + update).
"""

from __future__ import annotations

import logging
import os
import tempfile
from decimal import Decimal
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask_babel import format_currency, get_locale

TRANSLATIONS = Path(__file__).parent / "translations"
CURRENCY = "BRL"

log = logging.getLogger(__name__)


def compile_translations(folder: Path = TRANSLATIONS) -> list[Path]:
    """Compile every `.po` under `folder` whose `.mo` is missing or older; return them.

    A `.mo` that cannot be written (read-only image) is logged, not fatal: the
    image compiles them at build time.
    """
    compiled: list[Path] = []
    for po_path in sorted(folder.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        try:
            _write_atomically(mo_path, catalog)
        except OSError as exc:
            log.warning("cannot compile %s: %s", po_path, exc)
            continue
        compiled.append(mo_path)
    return compiled


def _write_atomically(mo_path: Path, catalog) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
    try:
        with os.fdopen(fd, "wb") as mo_file:
            write_mo(mo_file, catalog)
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; other users must read it
        os.replace(tmp_name, mo_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def money(value: Decimal | float | int | None) -> str:
    """An amount in reais in the user's locale (R$ 1.234,56 / R$1,234.56)."""
    if value is None:
        return ""
    return format_currency(value, CURRENCY)


def init_app(app: Flask) -> None:
    """Compile stale catalogues; add the `money` filter and `get_locale` to templates."""
    compile_translations(Path(app.root_path) / "translations")
    app.jinja_env.filters["money"] = money
    app.jinja_env.globals["get_locale"] = get_locale
