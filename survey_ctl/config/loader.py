"""Reading a topology file: YAML, `${NAME}` from the environment or `.env`, validation.

Every failure becomes one `TopologyError` naming the file and each problem as
`key.path: what is wrong`. No message ever contains a value read from the file or the
environment (they may be secrets), only key paths, variable names and file names.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from survey_ctl.config.models import Problem, Topology, TopologyProblems
from survey_ctl.errors import ConfigError

STARTER_HINT = (
    "`surveyctl init` writes an annotated starter topology; every key is described in "
    "config.example.yaml"
)
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TopologyError(ConfigError):
    """An unusable topology file (exit 2): `.file` and every `.problems` entry."""

    def __init__(
        self,
        file: str,
        problems: Sequence[Problem],
        hint: str | None = None,
        headline: str | None = None,
    ) -> None:
        self.file = file
        self.problems = list(problems)
        if headline is None and len(self.problems) == 1:
            message = f"{file}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  {problem}" for problem in self.problems)
            message = f"{file}: {headline or f'{len(self.problems)} problems'}:\n{lines}"
        super().__init__(message, hint)


def load_topology(path: Path, environ: Mapping[str, str] | None = None) -> Topology:
    """Read, interpolate and validate a topology file; raise `TopologyError` on any problem.

    `${NAME}` comes from `environ` (default: the process environment), else from a
    `.env` file beside the topology. Relative paths are resolved against its folder.
    """
    path = Path(path)
    shown = str(path)
    base_dir = Path(os.path.normpath(path.absolute().parent))
    data = _read_yaml(path, shown)
    variables = dict(read_dotenv(base_dir / ".env"))
    variables.update(os.environ if environ is None else environ)
    data = _interpolate_all(data, variables, shown, base_dir / ".env")
    try:
        return Topology.model_validate(data, context={"base_dir": base_dir, "path": path})
    except ValidationError as exc:
        raise TopologyError(shown, problems_of(exc), hint=STARTER_HINT) from None


def starter_topology() -> str:
    """The annotated starter topology that `surveyctl init` writes (= config.example.yaml)."""
    return resources.files("survey_ctl").joinpath("templates/topology.yaml").read_text("utf-8")


def variables_in(text: str) -> list[str]:
    """The `${NAME}` variables the values of a topology text refer to, in order of use."""
    return list(_substitute(yaml.safe_load(text), {})[1])


# ---------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first given on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        except TypeError:  # an unhashable key: construct_mapping reports it
            pass
    loader.flatten_mapping(node)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    """The top-level mapping of the file; a `TopologyError` for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(shown, [Problem("", "file not found")], hint=(
            f"write a starter with `surveyctl init {shown}`, or run `surveyctl lab up` and use "
            "the lab's .lab/surveyctl.yaml; -c/--config or SURVEYCTL_CONFIG picks the file"
        )) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise TopologyError(shown, [Problem("", f"cannot read the file: {reason}")]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        syntax = isinstance(exc, yaml.scanner.ScannerError | yaml.parser.ParserError)
        raise TopologyError(shown, [Problem("", _describe_yaml_error(exc))], hint=(
            "check the indentation and quoting around that line (a value containing ': ' "
            "or starting with a special character needs quotes)"
        ) if syntax else None) from None
    except yaml.YAMLError as exc:
        raise TopologyError(shown, [Problem("", f"YAML error: {type(exc).__name__}")]) from None
    if data is None:
        raise TopologyError(shown, [Problem("", "the file is empty")], hint=STARTER_HINT)
    if not isinstance(data, dict):
        raise TopologyError(shown, [Problem("", (
            "the top level must be a mapping of keys (cluster:, ssh:, hosts:, app:, …), "
            f"not a {_yaml_kind(data)}"
        ))], hint=STARTER_HINT)
    return data


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    """`YAML syntax error at line L, column C: problem (context)`, without the file's text."""
    syntax = not isinstance(exc, yaml.constructor.ConstructorError)
    kind = "YAML syntax error" if syntax else "YAML error"
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    what = exc.problem or "invalid YAML"
    if exc.context:
        context_mark = exc.context_mark
        started = f" at line {context_mark.line + 1}" if context_mark else ""
        what += f" ({exc.context}{started})"
    return f"{kind}{where}: {what}"


def _yaml_kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


# ---------------------------------------------------------------- variables


def read_dotenv(path: Path) -> dict[str, str]:
    """Variables of a `.env` file (`NAME=value`, `export`, quotes, `#` comments); {} if none."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not _NAME.fullmatch(name):
            problems.append(Problem(f"line {number}", "expected NAME=value"))
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name] = value
    if problems:
        raise TopologyError(str(path), problems, hint="each line is NAME=value (or a # comment)")
    return values


def _interpolate_all(data: Any, variables: Mapping[str, str], shown: str, dotenv: Path) -> Any:
    """`data` with every `${NAME}` replaced; a `TopologyError` naming all missing names."""
    result, missing, malformed = _substitute(data, variables)
    if missing:
        problems = [Problem(p, f"variable {name} is not set")
                    for name, paths in missing.items() for p in paths]
        raise TopologyError(
            shown, [*problems, *malformed],
            headline=f"{len(missing)} variable{'s' if len(missing) > 1 else ''} not set: "
                     f"{', '.join(missing)}",
            hint=f"export {'them' if len(missing) > 1 else 'it'}, or add NAME=value lines to "
                 f"{dotenv} (the environment wins over .env)",
        )
    if malformed:
        raise TopologyError(shown, malformed)
    return result


def _substitute(
    data: Any, variables: Mapping[str, str]
) -> tuple[Any, dict[str, list[str]], list[Problem]]:
    """`data` with `${NAME}` replaced in string values; missing names with their key paths;
    malformed references."""
    missing: dict[str, list[str]] = {}
    malformed: list[Problem] = []

    def walk(value: Any, loc: tuple[str | int, ...]) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, (*loc, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*loc, i)) for i, item in enumerate(value)]
        if not isinstance(value, str) or "$" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if match.group(0) == "$${":
                return "${"
            if name is None or not _NAME.fullmatch(name):
                malformed.append(Problem(key_path(loc), (
                    "malformed variable reference: write ${NAME} (letters, digits, _), "
                    "or $${ for a literal ${"
                )))
                return ""
            if name not in variables:
                missing.setdefault(name, []).append(key_path(loc))
                return ""
            return variables[name]

        return _REFERENCE.sub(replace, value)

    return walk(data, ()), missing, malformed


# ---------------------------------------------------------------- pydantic errors


def key_path(loc: Sequence[str | int]) -> str:
    """`("hosts", 2, "ssh", "port")` as `hosts[2].ssh.port`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else str(part)
    return text


_PLAIN_MESSAGES = {
    "missing": "missing (required)",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list, e.g. [a, b]",
    "tuple_type": "must be a list, e.g. [a, b]",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "path_type": "must be a path (a string)",
    "too_short": "must not be empty",
}


def problems_of(exc: ValidationError) -> list[Problem]:
    """Each pydantic error as a `Problem`, never quoting the offending value."""
    problems: list[Problem] = []
    errors = exc.errors(include_url=False)
    failed_items = {error["loc"][:-1] for error in errors}
    for error in errors:
        if error["type"] == "too_short" and error["loc"] in failed_items:
            continue  # a list whose items failed: those errors say why
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, TopologyProblems):
            problems.extend(cause.problems)
            continue
        loc = error["loc"]
        path = key_path(loc)
        if error["type"] == "extra_forbidden":
            problems.append(Problem(path, _unknown_key(loc)))
        elif error["type"] == "literal_error":
            problems.append(Problem(path, _not_one_of(error["ctx"]["expected"], error)))
        elif error["type"] in _PLAIN_MESSAGES:
            problems.append(Problem(path, _PLAIN_MESSAGES[error["type"]]))
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(Problem(path, message.replace("Input should be", "must be")))
    return problems


def _unknown_key(loc: Sequence[str | int]) -> str:
    """`unknown key; did you mean 'address'?`, or the keys allowed there."""
    allowed = _allowed_keys(loc[:-1])
    key = str(loc[-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; allowed here: {', '.join(allowed)}" if allowed else "unknown key"


def _allowed_keys(loc: Sequence[str | int]) -> list[str]:
    """The keys the model at `loc` (a path into `Topology`) accepts."""
    model: type[BaseModel] | None = Topology
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        model = _model_in(field.annotation) if field else None
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as `tuple[Host, ...]` or `Vpn | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found:
            return found
    return None


def _not_one_of(expected: str, error: Any) -> str:
    """`must be one of 'a', 'b'`, with a close value suggested when there is one."""
    choices = re.findall(r"'([^']*)'", expected)
    message = f"must be one of {', '.join(choices)}"
    given = error.get("input")
    if isinstance(given, str):
        normalised = {choice.replace("-", "_"): choice for choice in choices}
        close = difflib.get_close_matches(given.lower().replace("-", "_"), list(normalised), n=1)
        if close:
            message += f"; did you mean {normalised[close[0]]!r}?"
    return message
