"""Every malformed number file in tests/numbers/bad/ through the real CLI.

Each file declares what it expects on its first line: ``# expect: CODE [FIELD...]``.
Exit 1 files list exactly the fields the stderr lines must name; exit 2 files
expect one ``error: <file>: ...`` line.  No password may ever be printed: every
password written in these files contains ``NEVER-PRINT``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.numbers.helpers import BAD_DIR, SIPHARNESS, Run, run_cli

SECRET_MARK = "NEVER-PRINT"
UNSET_VAR = "SIPHARNESS_TEST_UNSET_PASSWORD"
# password-env-unset.yaml needs this variable absent whatever the caller's environment.
ENV: dict[str, str | None] = {UNSET_VAR: None}


def _expectation(path: Path) -> tuple[int, list[str]]:
    first_line = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    prefix = "# expect:"
    assert first_line.startswith(prefix), f"{path.name} has no '# expect:' first line"
    code, *fields = first_line[len(prefix) :].split()
    return int(code), fields


BAD_FILES = sorted(BAD_DIR.glob("*.yaml"))


def test_there_are_enough_bad_files() -> None:
    assert len(BAD_FILES) >= 20
    codes = {_expectation(path)[0] for path in BAD_FILES}
    assert codes == {1, 2}


def _check_run(path: Path, run: Run, *, as_json: bool) -> None:
    code, fields = _expectation(path)
    assert run.exit_code == code, (run.stdout, run.stderr)
    assert "Traceback" not in run.stdout + run.stderr
    assert SECRET_MARK not in run.stdout + run.stderr
    if code == 1:
        assert run.stderr_lines, "an invalid file must explain itself on stderr"
        assert set(run.fields) == set(fields), run.stderr
        for line in run.stderr_lines:
            field, _, message = line.partition(": ")
            assert message.strip(), f"empty message for {field}"
    else:
        assert len(run.stderr_lines) == 1, run.stderr
        assert run.stderr_lines[0].startswith("error: ")
        assert path.name in run.stderr_lines[0]
    if as_json:
        payload = run.json()
        assert payload["valid"] is False
        assert "effective" not in payload
        json_fields = [error["field"] for error in payload["errors"]]
        if code == 1:
            assert set(json_fields) == set(fields)
            assert json_fields == run.fields  # same problems, same order as stderr
        else:
            assert json_fields == [None]
    elif code == 2:
        assert run.stdout == ""


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.name)
def test_bad_file(path: Path) -> None:
    _check_run(path, run_cli(["validate", str(path)], env=ENV), as_json=False)


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.name)
def test_bad_file_json(path: Path) -> None:
    _check_run(path, run_cli(["validate", "--json", str(path)], env=ENV), as_json=True)


@pytest.mark.parametrize(
    "name",
    [
        "outbound-proxy-bad-transport.yaml",
        "binary-garbage.yaml",
        "password-env-unset.yaml",
    ],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_bad_file_through_the_console_script(name: str, as_json: bool) -> None:
    path = BAD_DIR / name
    env = {key: value for key, value in os.environ.items() if key != UNSET_VAR}
    args = [str(SIPHARNESS), "validate", *(["--json"] if as_json else []), str(path)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, check=False)
    _check_run(path, Run(out.returncode, out.stdout, out.stderr), as_json=as_json)


def test_readme_example_message() -> None:
    run = run_cli(["validate", str(BAD_DIR / "outbound-proxy-bad-transport.yaml")])
    assert run.stderr_lines == [
        'outbound_proxy: unknown transport "sctpx": expected udp, tcp or tls'
    ]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("phone-no-plus.yaml", "is not E.164: expected + then 1-15 digits, first digit 1-9"),
        ("phone-unquoted-int.yaml", 'phone_number: "+14155550123"'),
        ("phone-with-spaces.yaml", "remove the spaces and punctuation: +14155550123"),
        ("phone-double-zero-prefix.yaml", "+44205550123"),
        ("domain-with-scheme.yaml", 'without "sip:"'),
        ("domain-with-user.yaml", "has a user part"),
        ("domain-bare-ipv6.yaml", "[2001:db8::10]"),
        ("outbound-proxy-port-out-of-range.yaml", "port 65536 is out of range: expected 1-65535"),
        ("outbound-proxy-sips-udp.yaml", "transport=udp"),
        ("outbound-proxy-user-part.yaml", "has a user part"),
        ("outbound-proxy-password-in-uri.yaml", "sip:bob:********@proxy.example.test"),
        ("password-without-username.yaml", "a password needs a username"),
        ("password-env-unset.yaml", UNSET_VAR),
        ("password-file-missing.yaml", "no-such-password-file.txt"),
        ("unknown-field.yaml", "did you mean auth_username?"),
        ("wrong-types.yaml", "expected a string, got a list"),
        ("empty-values.yaml", "is empty"),
        ("duplicate-key.yaml", "lines 3, 4"),
    ],
)
def test_messages_say_what_is_wrong_and_what_is_expected(name: str, fragment: str) -> None:
    run = run_cli(["validate", str(BAD_DIR / name)], env=ENV)
    assert fragment in run.stderr


def test_every_problem_is_reported_not_only_the_first() -> None:
    run = run_cli(["validate", str(BAD_DIR / "outbound-proxy-two-problems.yaml")])
    assert run.fields == ["outbound_proxy", "outbound_proxy"]
    assert "port 99999" in run.stderr_lines[0]
    assert 'unknown transport "ws"' in run.stderr_lines[1]
