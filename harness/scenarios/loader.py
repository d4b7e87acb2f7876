"""Loading scenario files: YAML → :class:`~harness.scenarios.model.Scenario`.

A scenario file looks like::

    name: register
    title: The number registers with its digest credentials
    applies_to: {registers: true}        # or: profiles: [registrar-udp, ...] / all
    steps:
      - register: {expires: 300}
      - unregister: {}
        expect: success
        within: 10

Every problem is reported as one :class:`~harness.errors.InputError` line naming the
file and the place: ``scenarios/register.yaml: steps[2].expect: unknown status "2xx0"``.
Unknown fields, unknown step kinds, unknown profiles and unknown capabilities are all
errors: a typo never silently changes what a scenario checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from harness.errors import InputError
from harness.resources import data_dir
from harness.scenarios.model import (
    STATUS_PATTERN,
    SUCCESS,
    Applicability,
    Expectation,
    Outcome,
    PeerAction,
    Scenario,
    Step,
    StepKind,
)

SCENARIO_SUFFIX: Final = ".yaml"
MAX_SCENARIO_BYTES: Final = 256 * 1024
SCENARIO_FIELDS: Final = (
    "name", "title", "description", "profiles", "applies_to", "number", "negative", "steps",
)  # fmt: skip
STEP_COMMON_FIELDS: Final = ("expect", "within", "name")
#: Number fields a scenario may change (to run with a wrong password, say).
NUMBER_OVERRIDE_FIELDS: Final = ("password", "username", "auth_username")

#: Capabilities ``applies_to`` may ask for, and the values each takes.
CAPABILITIES: Final[Mapping[str, tuple[object, ...]]] = {
    "registers": (True, False),
    "outbound_proxy": (True, False),
    "transport": ("udp", "tcp", "tls"),
    "inbound": (True, False),
    "network_calls": (True, False),
    "trunk": (True, False),
}

#: Default deadline of each step kind, seconds.
DEFAULT_WITHIN: Final[Mapping[StepKind, float]] = {
    StepKind.OPTIONS: 10.0,
    StepKind.REGISTER: 10.0,
    StepKind.REFRESH: 10.0,
    StepKind.UNREGISTER: 10.0,
    StepKind.CALL: 20.0,
    StepKind.CANCEL: 15.0,
    StepKind.ANSWER: 5.0,
    StepKind.WAIT: 30.0,
    StepKind.PEER: 15.0,
}
MAX_WITHIN: Final = 600.0


@dataclass(frozen=True)
class _Arg:
    kind: type | tuple[type, ...]
    default: object
    low: float | None = None
    high: float | None = None


#: The arguments of each step kind (a mapping under the kind's key).
STEP_ARGS: Final[Mapping[StepKind, Mapping[str, _Arg]]] = {
    StepKind.OPTIONS: {},
    StepKind.REGISTER: {"expires": _Arg(int, 300, 0, 86400)},
    StepKind.REFRESH: {},
    StepKind.UNREGISTER: {"wildcard": _Arg(bool, False)},
    StepKind.CALL: {
        "to": _Arg(str, "echo"),
        "duration": _Arg((int, float), 1.0, 0, 3600),
    },
    StepKind.CANCEL: {
        "to": _Arg(str, "ring"),
        "after": _Arg((int, float), 0.5, 0, 60),
    },
    StepKind.ANSWER: {
        "hangup_after": _Arg((int, float), 1.0, 0, 3600),
        "ring": _Arg((int, float), 0.0, 0, 600),
        "reject": _Arg(int, None, 300, 699),
        "calls": _Arg(int, 1, 1, 100),
    },
}

#: What a step expects when its file says nothing.
DEFAULT_EXPECT: Final[Mapping[StepKind, Expectation]] = {
    StepKind.CANCEL: Expectation(status="487"),
}


class ScenarioError(InputError):
    """A scenario file is malformed; ``str()`` is the one line naming file and place."""


class _Fail(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)


# --- files ----------------------------------------------------------------------------


def bundled_scenarios_dir() -> Path:
    """The bundled scenarios folder (top-level ``scenarios/`` of a checkout)."""
    return data_dir("scenarios")


def scenario_files(folder: Path | None = None) -> list[Path]:
    """The scenario files of ``folder`` (default: the bundled ones), sorted by name."""
    where = folder or bundled_scenarios_dir()
    return sorted(where.glob(f"*{SCENARIO_SUFFIX}"))


def _display(path: Path) -> str:
    """``scenarios/x.yaml`` for bundled files, the path as given otherwise."""
    try:
        return str(path.resolve().relative_to(bundled_scenarios_dir().resolve().parent))
    except ValueError:
        return str(path)


def load_scenario_file(path: Path, *, known_profiles: Iterable[str] | None = None) -> Scenario:
    """Load and check one scenario file; :class:`ScenarioError` names file and place.

    ``known_profiles``: profile names a ``profiles:`` list may use (None: not checked).
    """
    shown = _display(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ScenarioError(f"{shown}: cannot read: {err.strerror or err}") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{shown}: too large for a scenario ({len(raw)} bytes)")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ScenarioError(f"{shown}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(err, "problem", None) or str(err)
        raise ScenarioError(f"{shown}: {where}: not valid YAML: {problem}") from None
    try:
        return _parse(data, source=path, default_name=path.stem, known_profiles=known_profiles)
    except _Fail as err:
        raise ScenarioError(f"{shown}: {err}") from None


def load_scenarios(
    folder: Path | None = None,
    *,
    names: Sequence[str] = (),
    known_profiles: Iterable[str] | None = None,
) -> list[Scenario]:
    """Every scenario of ``folder`` (default: the bundled ones), or those in ``names``.

    A name may also be a path to a scenario file.  Raises :class:`ScenarioError` for
    the first malformed file and for an unknown name (listing the known ones).
    """
    profiles = tuple(known_profiles) if known_profiles is not None else None
    files = scenario_files(folder)
    by_name: dict[str, Scenario] = {}
    for path in files:
        scenario = load_scenario_file(path, known_profiles=profiles)
        if scenario.name in by_name:
            raise ScenarioError(f"{_display(path)}: name: {scenario.name!r} is used twice")
        by_name[scenario.name] = scenario
    if not names:
        return list(by_name.values())
    chosen: list[Scenario] = []
    for name in names:
        if name.endswith(SCENARIO_SUFFIX) or "/" in name:
            chosen.append(load_scenario_file(Path(name), known_profiles=profiles))
        elif name in by_name:
            chosen.append(by_name[name])
        else:
            known = ", ".join(sorted(by_name)) or "none"
            raise ScenarioError(f"unknown scenario {name!r}; known: {known}")
    return chosen


# --- documents --------------------------------------------------------------------------


def parse_scenario(
    data: object,
    *,
    source: Path | None = None,
    default_name: str | None = None,
    known_profiles: Iterable[str] | None = None,
) -> Scenario:
    """Check a loaded YAML document; :class:`ScenarioError` names the place (and the
    file, when ``source`` is given)."""
    try:
        return _parse(data, source=source, default_name=default_name, known_profiles=known_profiles)
    except _Fail as err:
        prefix = f"{_display(source)}: " if source is not None else ""
        raise ScenarioError(f"{prefix}{err}") from None


def _parse(
    data: object,
    *,
    source: Path | None,
    default_name: str | None,
    known_profiles: Iterable[str] | None,
) -> Scenario:
    if not isinstance(data, dict):
        raise _Fail("", "a scenario must be a mapping with name, title and steps")
    _no_unknown(data, "", SCENARIO_FIELDS)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise _Fail("name", "must be a non-empty string")
    name = name.strip()
    if not all(ch.isalnum() or ch in "-_" for ch in name):
        raise _Fail("name", f"{name!r}: use letters, digits, '-' and '_' only")
    title = data.get("title", name)
    if not isinstance(title, str):
        raise _Fail("title", "must be a string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _Fail("description", "must be a string")
    negative = data.get("negative", False)
    if not isinstance(negative, bool):
        raise _Fail("negative", "must be true or false")
    applies = _applicability(data, known_profiles)
    number = _number_overrides(data.get("number"))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _Fail("steps", "must be a non-empty list of steps")
    steps = tuple(_step(item, f"steps[{i}]") for i, item in enumerate(raw_steps))
    return Scenario(
        name=name,
        title=" ".join(title.split()),
        steps=steps,
        applies_to=applies,
        description=" ".join(description.split()),
        number=number,
        negative=negative,
        source=source,
    )


def _no_unknown(data: Mapping[Any, Any], where: str, allowed: Sequence[str]) -> None:
    for key in data:
        if key not in allowed:
            place = f"{where}.{key}" if where else str(key)
            raise _Fail(place, f"unknown field; expected one of {', '.join(allowed)}")


def _applicability(data: Mapping[str, Any], known: Iterable[str] | None) -> Applicability:
    known_set = set(known) if known is not None else None
    profiles: tuple[str, ...] | None = None
    if "profiles" in data:
        raw = data["profiles"]
        if raw == "all":
            profiles = None
        elif isinstance(raw, list) and raw:
            names = []
            for i, item in enumerate(raw):
                if not isinstance(item, str):
                    raise _Fail(f"profiles[{i}]", "must be a profile name")
                if known_set is not None and item not in known_set:
                    listed = ", ".join(sorted(known_set))
                    raise _Fail(f"profiles[{i}]", f'unknown profile "{item}"; known: {listed}')
                names.append(item)
            profiles = tuple(names)
        else:
            raise _Fail("profiles", "must be `all` or a non-empty list of profile names")
    capabilities: list[tuple[str, object]] = []
    raw_applies = data.get("applies_to")
    if raw_applies is None or raw_applies == "all":
        pass
    elif isinstance(raw_applies, dict):
        for key, value in raw_applies.items():
            place = f"applies_to.{key}"
            if key == "all":
                if value is not True:
                    raise _Fail(place, "only `all: true` is meaningful")
                continue
            allowed = CAPABILITIES.get(str(key))
            if allowed is None:
                raise _Fail(
                    place, f"unknown capability; expected one of all, {', '.join(CAPABILITIES)}"
                )
            if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
                shown = ", ".join(str(v).lower() for v in allowed)
                raise _Fail(place, f"must be one of {shown}")
            capabilities.append((str(key), value))
    else:
        raise _Fail("applies_to", "must be `all` or a mapping of capabilities")
    return Applicability(profiles=profiles, capabilities=tuple(capabilities))


def _number_overrides(raw: object) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise _Fail("number", f"must be a mapping of {', '.join(NUMBER_OVERRIDE_FIELDS)}")
    _no_unknown(raw, "number", NUMBER_OVERRIDE_FIELDS)
    result = []
    for key, value in raw.items():
        if not isinstance(value, str) or not value:
            raise _Fail(f"number.{key}", "must be a non-empty string")
        result.append((str(key), value))
    return tuple(result)


def parse_expectation(value: object, where: str) -> Expectation:
    """``487``, ``"4xx"``, or an outcome word (``credentials rejected``...)."""
    if isinstance(value, bool):
        raise _Fail(where, f"unknown expectation {value!r}")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise _Fail(where, "must be a status (200, 4xx) or an outcome")
    text = " ".join(value.strip().lower().replace("-", " ").replace("_", " ").split())
    if text[0].isdigit():
        if STATUS_PATTERN.fullmatch(text):
            return Expectation(status=text)
        raise _Fail(where, f'unknown status "{value.strip()}"')
    try:
        return Expectation(outcome=Outcome(text))
    except ValueError:
        words = ", ".join(o.value for o in Outcome)
        raise _Fail(
            where, f'unknown expectation "{value.strip()}"; expected a status or one of {words}'
        ) from None


def _step(item: object, where: str) -> Step:
    if not isinstance(item, dict) or not item:
        raise _Fail(where, "must be a mapping with one action (options, register, call...)")
    actions = [key for key in item if key not in STEP_COMMON_FIELDS]
    if not actions:
        raise _Fail(where, f"has no action; expected one of {', '.join(k.value for k in StepKind)}")
    if len(actions) > 1:
        raise _Fail(where, f"has two actions ({actions[0]}, {actions[1]}); use one per step")
    key = actions[0]
    try:
        kind = StepKind(str(key))
    except ValueError:
        kinds = ", ".join(k.value for k in StepKind)
        raise _Fail(f"{where}.{key}", f"unknown step; expected one of {kinds}") from None
    args = _step_args(kind, item[key], f"{where}.{key}")
    expect = DEFAULT_EXPECT.get(kind, SUCCESS)
    if "expect" in item:
        expect = parse_expectation(item["expect"], f"{where}.expect")
    within = item.get("within", DEFAULT_WITHIN[kind])
    if kind is StepKind.WAIT and isinstance(args.get("value"), float) and "within" not in item:
        within = float(args["value"]) + 5.0  # type: ignore[arg-type]  # checked float
    if (
        isinstance(within, bool)
        or not isinstance(within, int | float)
        or not 0 < within <= MAX_WITHIN
    ):
        raise _Fail(
            f"{where}.within", f"must be a number of seconds above 0, at most {MAX_WITHIN:g}"
        )
    label = item.get("name", "")
    if not isinstance(label, str):
        raise _Fail(f"{where}.name", "must be a string")
    return Step(kind=kind, args=args, expect=expect, within=float(within), label=label)


def _step_args(kind: StepKind, raw: object, where: str) -> dict[str, object]:
    if kind is StepKind.WAIT:
        if raw == "answer":
            return {"value": "answer"}
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= MAX_WITHIN:
            raise _Fail(where, f"must be `answer` or a number of seconds (0 to {MAX_WITHIN:g})")
        return {"value": float(raw)}
    if kind is StepKind.PEER:
        try:
            return {"value": PeerAction(str(raw)).value}
        except ValueError:
            actions = ", ".join(a.value for a in PeerAction)
            raise _Fail(where, f'unknown peer action "{raw}"; expected one of {actions}') from None
    spec = STEP_ARGS[kind]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        if not spec:
            raise _Fail(where, "takes no arguments (write `{}`)")
        raise _Fail(where, f"must be a mapping of {', '.join(spec)}")
    if not spec and raw:
        raise _Fail(f"{where}.{next(iter(raw))}", "unknown field; this step takes no arguments")
    _no_unknown(raw, where, tuple(spec))
    args: dict[str, object] = {}
    for name, arg in spec.items():
        value = raw.get(name, arg.default)
        if value is None:
            args[name] = None
            continue
        place = f"{where}.{name}"
        kinds = arg.kind if isinstance(arg.kind, tuple) else (arg.kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            wanted = " or ".join(k.__name__ for k in kinds)
            raise _Fail(place, f"must be of type {wanted}")
        if isinstance(value, str) and (not value or any(ch.isspace() or ch == "@" for ch in value)):
            raise _Fail(place, "must be a number or user part (no spaces, no @)")
        if arg.low is not None and isinstance(value, int | float) and not isinstance(value, bool):
            assert arg.high is not None
            if not arg.low <= value <= arg.high:
                raise _Fail(place, f"must be from {arg.low:g} to {arg.high:g}")
        args[name] = float(value) if float in kinds and not isinstance(value, bool) else value
    return args


__all__ = [
    "CAPABILITIES",
    "ScenarioError",
    "bundled_scenarios_dir",
    "load_scenario_file",
    "load_scenarios",
    "parse_expectation",
    "parse_scenario",
    "scenario_files",
]
