#!/usr/bin/env python3
"""Rebuild app/survey_app/data/common_passwords.txt (run by hand; the output is committed).

Sources: Django's `django/contrib/auth/common-passwords.txt.gz` (20k most common
passwords, compiled by Royce Williams, BSD-3-Clause like Django), read from a Django
wheel given as argument (`pip download --no-deps -d /tmp/dj django`), keeping the
entries an 8-character minimum lets through, plus Brazilian patterns generated here.
Usage: scripts/build-common-passwords.py /tmp/dj/django-*.whl
"""

from __future__ import annotations

import gzip
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "app/survey_app/data/common_passwords.txt"
MIN_LENGTH = 8
BR_WORDS = (
    "senha", "brasil", "flamengo", "corinthians", "palmeiras", "saopaulo", "vasco",
    "gremio", "cruzeiro", "santos", "botafogo", "fluminense", "internacional", "atletico",
    "bahia", "jesus", "deus", "amor", "familia", "mudar", "teste", "admin", "usuario",
    "mudarsenha", "trocar", "pesquisa", "mercado", "supermercado", "minhasenha", "brasileiro",
    "felicidade", "saudade", "princesa", "meuamor", "teamo", "gabriel", "lucas", "mateus",
    "pedro", "maria", "ana", "joao", "julia", "beatriz", "rafael", "fernanda", "amanda",
    "carlos", "paulo", "marcos", "bruno", "camila", "leticia", "vitoria", "riodejaneiro",
    "recife", "salvador", "fortaleza", "curitiba", "goiania", "belohorizonte", "manaus",
)
SUFFIXES = ("", "1", "12", "123", "1234", "12345", "123456", "@123", "@2024", "@2025",
            "@2026", "2024", "2025", "2026", "!", "01", "10", "00", "#123", "321")


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read("django/contrib/auth/common-passwords.txt.gz")
    seen: dict[str, None] = {}
    for line in gzip.decompress(raw).decode().splitlines():
        word = line.strip().lower()
        if len(word) >= MIN_LENGTH:
            seen.setdefault(word)
    for word in BR_WORDS:
        for suffix in SUFFIXES:
            for variant in (word + suffix, word.capitalize() + suffix):
                if len(variant) >= MIN_LENGTH:
                    seen.setdefault(variant.lower())
    header = ("# Common passwords refused at sign-up (lower-case, one a line, >= 8 chars).\n"
              "# From Django's common-passwords list (BSD-3-Clause) plus Brazilian patterns;\n"
              "# rebuilt by scripts/build-common-passwords.py.\n")
    OUT.write_text(header + "\n".join(seen) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(seen)} passwords")


if __name__ == "__main__":
    main(sys.argv[1])
