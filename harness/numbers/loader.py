"""Loading number files: YAML text to a validated :class:`NumberConfig`.

* :func:`check_number_file` reads and validates a file and returns a
  :class:`~harness.numbers.model.ValidationResult` (every problem at once).
* :func:`load_number_file` does the same and raises
  :class:`InvalidNumberFile` (an :class:`~harness.errors.InputError`) when the
  number is invalid: for commands that need a number, not a report about one.
* :func:`check_number_data` validates an already-loaded mapping.

A file that cannot be read, is not UTF-8 YAML, is empty or is not a mapping
raises :class:`~harness.errors.InputError` with one line naming the file.  The
password may come from ``password`` (inline), ``password_env`` (an environment
variable) or ``password_file`` (a path relative to the number file's folder,
trailing newline stripped); a source that gives nothing is a problem of that
field, not an InputError.  No message ever contains the password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from harness.errors import InputError
from harness.numbers.model import NumberConfig, PasswordSource, Problem, ValidationResult
from harness.numbers.validation import (
    PasswordSourceError,
    YamlContext,
    validate_mapping,
)

#: A number file is a handful of lines; anything bigger is not one.
MAX_NUMBER_FILE_BYTES: Final = 1024 * 1024
#: A password file holds one password.
MAX_PASSWORD_FILE_BYTES: Final = 4096

_QUOTED: Final = re.compile(r"'(?!\\)[^']{2,}'")
_FIELDS_HINT: Final = 'expected a YAML mapping of number fields (phone_number: "+14155550123", ...)'


class InvalidNumberFile(InputError):
    """A number file that was read but failed validation; ``problems`` lists why."""

    def __init__(self, path: Path, problems: tuple[Problem, ...]) -> None:
        self.path = path
        self.problems = problems
        listed = "; ".join(str(problem) for problem in problems)
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{path}: invalid number file ({count} {noun}): {listed}")


def check_number_file(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> ValidationResult:
    """Read and validate a number file.

    ``environ`` is where ``password_env`` is looked up (default ``os.environ``).
    Raises :class:`~harness.errors.InputError` when the file itself is unusable.
    """
    file_path = Path(path)
    data, context = read_yaml_mapping(file_path)
    return check_number_data(
        data,
        base_dir=file_path.parent,
        environ=environ,
        context=context,
    )


def load_number_file(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> NumberConfig:
    """Read a number file and return it; raise :class:`InvalidNumberFile` when invalid."""
    result = check_number_file(path, environ=environ)
    if result.config is None:
        raise InvalidNumberFile(Path(path), result.problems)
    return result.config


def check_number_data(
    data: Mapping[Any, object],
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    context: YamlContext | None = None,
) -> ValidationResult:
    """Validate a loaded mapping; ``password_file`` paths are relative to ``base_dir``."""
    env = os.environ if environ is None else environ

    def read_password(source: PasswordSource) -> str:
        return read_password_source(source, base_dir=base_dir, environ=env)

    return validate_mapping(data, read_password=read_password, context=context)


def read_password_source(
    source: PasswordSource, *, base_dir: Path, environ: Mapping[str, str]
) -> str:
    """The password a ``password_env`` / ``password_file`` source gives.

    Raises :class:`~harness.numbers.validation.PasswordSourceError` with a
    message naming the variable or the file (never the password).
    """
    if source.reference is None:
        raise ValueError(f"{source.field} has no reference to read")
    if source.field == "password_env":
        return _password_from_env(source.reference, environ)
    if source.field == "password_file":
        return _password_from_file(source.reference, base_dir)
    raise ValueError(f"{source.field} is not a password source to read")


def _password_from_env(name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name)
    if value is None:
        raise PasswordSourceError(
            f"environment variable {name} is not set: set it before running,"
            " or give the password with password or password_file"
        )
    if not value:
        raise PasswordSourceError(f"environment variable {name} is empty: expected the password")
    return value


def _password_from_file(reference: str, base_dir: Path) -> str:
    path = Path(reference).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PASSWORD_FILE_BYTES + 1)
    except FileNotFoundError:
        raise PasswordSourceError(
            f"file {reference} not found (looked for {path}): relative paths start"
            " at the number file's folder"
        ) from None
    except IsADirectoryError:
        raise PasswordSourceError(
            f"{path} is a directory: expected a file holding the password"
        ) from None
    except PermissionError:
        raise PasswordSourceError(f"cannot read {path}: permission denied") from None
    except OSError as err:
        raise PasswordSourceError(f"cannot read {path}: {err.strerror}") from None
    if len(raw) > MAX_PASSWORD_FILE_BYTES:
        raise PasswordSourceError(
            f"{path} is larger than {MAX_PASSWORD_FILE_BYTES} bytes:"
            " expected a file holding only the password"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PasswordSourceError(f"{path} is not UTF-8 text") from None
    password = text.removeprefix("\ufeff").rstrip("\r\n")
    if not password:
        raise PasswordSourceError(f"{path} is empty: expected the password")
    if "\n" in password or "\r" in password:
        raise PasswordSourceError(f"{path} holds more than one line: expected only the password")
    return password


def read_yaml_mapping(path: Path) -> tuple[dict[object, object], YamlContext]:
    """Read ``path`` as a YAML mapping; raise InputError (one line, naming it) otherwise."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_NUMBER_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a number file") from None
    except PermissionError:
        raise InputError(f"{path}: cannot read: permission denied") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from None
    if len(raw) > MAX_NUMBER_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_NUMBER_FILE_BYTES} bytes, not a number file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: not a text file (byte {err.start} is not UTF-8): {_FIELDS_HINT}"
        ) from None
    return _parse_yaml_mapping(path, text)


def _parse_yaml_mapping(path: Path, text: str) -> tuple[dict[object, object], YamlContext]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        # Built from the problem and its position only: str(err) quotes the
        # offending line, which may be the password's.
        raise InputError(f"{path}: not valid YAML: {_yaml_problem(err)}") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML: {type(err).__name__}") from None
    except RecursionError:
        # PyYAML composes nested nodes recursively; "[[[[..." exhausts the stack.
        raise InputError(f"{path}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if data is None:
        raise InputError(f"{path}: is empty: {_FIELDS_HINT}")
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single {_scalar_kind(data)}"
        raise InputError(f"{path}: is not a YAML mapping (it is {kind}): {_FIELDS_HINT}")
    if not data:
        raise InputError(f"{path}: is empty (an empty mapping): {_FIELDS_HINT}")
    return data, _context(node)


def _context(node: yaml.Node | None) -> YamlContext:
    """Raw scalar texts and duplicate keys of the top-level mapping node."""
    raw: dict[str, str] = {}
    lines: dict[str, list[int]] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            lines.setdefault(key, []).append(key_node.start_mark.line + 1)
            if isinstance(value_node, yaml.ScalarNode):
                raw[key] = str(value_node.value)
    duplicates = {key: tuple(found) for key, found in lines.items() if len(found) > 1}
    return YamlContext(raw_scalars=raw, duplicates=duplicates)


def _yaml_problem(err: yaml.MarkedYAMLError) -> str:
    problem = err.problem or err.context or "syntax error"
    # PyYAML quotes what it could not use: a tag ('!hunter2'), an alias name...
    # A password starting with "!", "&" or "*" ends up there, so only a single
    # character (or its escape, '\t') is kept.
    problem = _QUOTED.sub("'...'", problem)
    if "tag" in problem or "alias" in problem or "anchor" in problem:
        problem = f'{problem} (a value starting with "!", "&" or "*" must be in quotes)'
    if err.problem and err.context and err.context_mark is not None:
        problem = f"{problem} ({err.context} from line {err.context_mark.line + 1})"
    mark = err.problem_mark or err.context_mark
    if mark is None:
        return " ".join(problem.split())
    return " ".join(f"line {mark.line + 1}, column {mark.column + 1}: {problem}".split())


def _scalar_kind(value: object) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__
