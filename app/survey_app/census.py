"""Census of households: the neighbourhood list of the questionnaire and the analysis'
post-stratification targets.

Main CSV (`Settings.census_file`): `neighbourhood,label,households`, one row per
neighbourhood. Optional second CSV (`income_path`):
`neighbourhood,income_bracket,households`, households per neighbourhood x income bracket
(codes from the questionnaire; a neighbourhood may omit brackets, which then count 0).
Both are validated with errors naming the file, line and column; loads are cached per
path and modification time, so an edited file is picked up without a restart.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from survey_app.questionnaire import CODE_PATTERN, income_midpoints

MAX_LABEL_LENGTH = 100
MAIN_COLUMNS = ("neighbourhood", "label", "households")
INCOME_COLUMNS = ("neighbourhood", "income_bracket", "households")


class CensusError(ValueError):
    """A census file is missing or malformed; the message names file, line and problem."""


@dataclass(frozen=True)
class Neighbourhood:
    """One neighbourhood (bairro): its code (stored in responses), label and households."""

    code: str
    label: str
    households: int


@dataclass(frozen=True)
class Census:
    """Households per neighbourhood, and optionally per neighbourhood x income bracket."""

    neighbourhoods: tuple[Neighbourhood, ...]
    income_households: tuple[tuple[str, str, int], ...] | None = None  # (hood, bracket, n)

    @property
    def codes(self) -> tuple[str, ...]:
        """Neighbourhood codes in file order."""
        return tuple(n.code for n in self.neighbourhoods)

    @property
    def total_households(self) -> int:
        """Households in the whole area."""
        return sum(n.households for n in self.neighbourhoods)

    def households(self) -> dict[str, int]:
        """Neighbourhood code -> households."""
        return {n.code: n.households for n in self.neighbourhoods}

    def households_by_income(self) -> dict[tuple[str, str], int] | None:
        """(neighbourhood, income_bracket) -> households, or None without the income table."""
        if self.income_households is None:
            return None
        return {(hood, bracket): n for hood, bracket, n in self.income_households}


def load_census(path: str | Path, income_path: str | Path | None = None) -> Census:
    """Read and validate the census CSV(s); cached until a file's mtime or size changes."""
    return _load(*_stamp(path), *(_stamp(income_path) if income_path else (None, None)))


def _stamp(path: str | Path) -> tuple[Path, tuple[int, int]]:
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise CensusError(f"census file {path}: cannot read it ({exc.strerror})") from None
    return path, (stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _load(path: Path, _stamp: tuple, income_path: Path | None, _income_stamp: tuple | None
          ) -> Census:
    hoods = tuple(_parse_main(path))
    income = tuple(_parse_income(income_path, {n.code for n in hoods})) if income_path else None
    return Census(hoods, income)


def _rows(path: Path, columns: tuple[str, ...]):
    """(line number, row dict) of a CSV whose header must be exactly `columns`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CensusError(f"census file {path}: cannot read it as UTF-8 text ({exc})") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != columns:
        raise CensusError(f"census file {path}: line 1 must be the header {','.join(columns)!r}, "
                          f"got {','.join(header or [])!r}")
    count = 0
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        if len(row) != len(columns):
            raise CensusError(f"census file {path}, line {line}: expected {len(columns)} "
                              f"columns ({','.join(columns)}), got {len(row)}")
        count += 1
        yield line, dict(zip(columns, (cell.strip() for cell in row), strict=True))
    if not count:
        raise CensusError(f"census file {path}: no data rows")


def _households(path: Path, line: int, raw: str, minimum: int = 1) -> int:
    if not raw.isascii() or not raw.isdigit() or int(raw) < minimum:
        raise CensusError(f"census file {path}, line {line}: households must be a whole number "
                          f"of at least {minimum}, got {raw!r}")
    return int(raw)


def _code(path: Path, line: int, column: str, raw: str) -> str:
    if not CODE_PATTERN.match(raw):
        raise CensusError(f"census file {path}, line {line}: {column} {raw!r} must be 1-32 "
                          "lower-case letters, digits or underscores")
    return raw


def _parse_main(path: Path):
    seen: set[str] = set()
    for line, row in _rows(path, MAIN_COLUMNS):
        code = _code(path, line, "neighbourhood", row["neighbourhood"])
        if code in seen:
            raise CensusError(f"census file {path}, line {line}: neighbourhood {code!r} repeated")
        seen.add(code)
        label = row["label"]
        if not label or len(label) > MAX_LABEL_LENGTH:
            raise CensusError(f"census file {path}, line {line}: label must have 1-"
                              f"{MAX_LABEL_LENGTH} characters")
        yield Neighbourhood(code, label, _households(path, line, row["households"]))


def _parse_income(path: Path, hoods: set[str]):
    brackets = set(income_midpoints())
    seen: set[tuple[str, str]] = set()
    for line, row in _rows(path, INCOME_COLUMNS):
        hood = _code(path, line, "neighbourhood", row["neighbourhood"])
        bracket = row["income_bracket"]
        if hood not in hoods:
            raise CensusError(f"census file {path}, line {line}: neighbourhood {hood!r} is not in "
                              "the main census file")
        if bracket not in brackets:
            raise CensusError(f"census file {path}, line {line}: income_bracket {bracket!r} is "
                              f"not one of {', '.join(sorted(brackets))}")
        if (hood, bracket) in seen:
            raise CensusError(f"census file {path}, line {line}: {hood}/{bracket} repeated")
        seen.add((hood, bracket))
        yield hood, bracket, _households(path, line, row["households"], minimum=0)
