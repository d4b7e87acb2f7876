"""``sipharness validate``: the contract other tools script against."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.numbers.helpers import FIXTURES, SIPHARNESS, run_cli

EXAMPLES = sorted(FIXTURES.glob("*.yaml"))
EXAMPLE_ENV = {"HARNESS_NUMBER_PASSWORD": "env-secret-for-tests"}


def test_the_bundled_examples_exist() -> None:
    names = {path.name for path in EXAMPLES}
    assert {
        "example.yaml",
        "outbound-proxy-tcp.yaml",
        "ip-trunk.yaml",
        "tls.yaml",
        "password-env.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_valid_and_explained(path: Path) -> None:
    assert path.read_text().startswith("#"), "each example starts with a comment header"
    run = run_cli(["validate", str(path)], env=EXAMPLE_ENV)
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.startswith(f"{path}: valid")
    payload = run_cli(["validate", "--json", str(path)], env=EXAMPLE_ENV).json()
    assert payload["valid"] is True


def test_example_yaml_is_the_bundled_mock_number() -> None:
    run = run_cli(["validate", "--json", str(FIXTURES / "example.yaml")])
    assert run.exit_code == 0
    payload = run.json()
    assert payload["number"]["phone_number"] == "+15550100001"
    effective = payload["effective"]
    assert effective["target"] == {
        "host": "127.0.0.2",
        "port": 5060,
        "transport": "udp",
        "port_explicit": False,
        "transport_explicit": False,
        "resolution": "none",
    }
    assert effective["registers"] is True
    assert effective["digest_username"] == "15550100001"
    assert effective["origination"]["port"] == 5080
    assert "harness-example-secret" not in run.stdout


def test_json_contract_when_valid() -> None:
    run = run_cli(["validate", "--json", str(FIXTURES / "outbound-proxy-tcp.yaml")])
    assert run.exit_code == 0
    payload = run.json()
    assert payload["valid"] is True
    assert payload["errors"] == []
    effective = payload["effective"]
    for key in ("target", "request_uri", "route", "registers", "digest_username", "from_uri"):
        assert key in effective
    assert effective["target"]["host"] == "127.0.0.3"
    assert effective["target"]["port"] == 5065
    assert effective["target"]["transport"] == "tcp"
    assert effective["request_uri"] == "sip:pbx.example.test"
    assert effective["route"] == "<sip:127.0.0.3:5065;transport=tcp;lr>"
    assert effective["registers"] is True
    assert effective["digest_username"] == "auth-7781"
    assert effective["from_uri"] == "sip:+15550100002@pbx.example.test"


def test_json_contract_for_an_ip_trunk() -> None:
    payload = run_cli(["validate", "--json", str(FIXTURES / "ip-trunk.yaml")]).json()
    effective = payload["effective"]
    assert effective["route"] is None
    assert effective["registers"] is False
    assert effective["digest_username"] is None
    assert effective["origination"]["transport"] == "tcp"


def test_json_contract_when_invalid(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text('phone_number: "555"\nsip_domain: sip.example.test\nfoo: 1\n')
    run = run_cli(["validate", "--json", str(path)])
    assert run.exit_code == 1
    payload = run.json()
    assert payload["valid"] is False
    assert "effective" not in payload
    assert [sorted(error) for error in payload["errors"]] == [["field", "message"]] * 2
    assert [error["field"] for error in payload["errors"]] == ["phone_number", "foo"]
    assert run.fields == ["phone_number", "foo"]


def test_json_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    run = run_cli(["validate", "--json", str(missing)])
    assert run.exit_code == 2
    assert run.json() == {
        "valid": False,
        "errors": [{"field": None, "message": f"{missing}: no such file"}],
    }
    assert run.stderr_lines == [f"error: {missing}: no such file"]


def test_human_summary_masks_the_password() -> None:
    run = run_cli(["validate", str(FIXTURES / "tls.yaml")])
    assert run.exit_code == 0
    assert "127.0.0.5:5061 over TLS" in run.stdout
    assert "<sips:127.0.0.5;lr>" in run.stdout
    assert "password ******** (from password)" in run.stdout
    assert "harness-tls-secret" not in run.stdout


def test_help_names_the_json_option() -> None:
    run = run_cli(["validate", "--help"])
    assert run.exit_code == 0
    assert "--json" in run.stdout


def test_console_script_on_a_valid_file() -> None:
    out = subprocess.run(
        [str(SIPHARNESS), "validate", "--json", str(FIXTURES / "example.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert '"valid": true' in out.stdout


# -- the password never appears in any output -----------------------------------------

Case = Callable[[Path, str], tuple[str, int, dict[str, str | None]]]
HEAD = 'phone_number: "+15550100001"\nsip_domain: sip.example.test\n'


def _write(folder: Path, text: str) -> str:
    path = folder / "number.yaml"
    path.write_text(text)
    return str(path)


def _inline(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f'{HEAD}username: bob\npassword: "{pw}"\n'), 0, {}


def _env(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f"{HEAD}username: bob\npassword_env: NUM_PW\n"), 0, {"NUM_PW": pw}


def _file(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    (folder / "pw.txt").write_text(f"{pw}\n")
    return _write(folder, f"{HEAD}username: bob\npassword_file: pw.txt\n"), 0, {}


def _file_two_lines(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    (folder / "pw.txt").write_text(f"{pw}\n{pw}\n")
    return _write(folder, f"{HEAD}username: bob\npassword_file: pw.txt\n"), 1, {}


def _other_field_invalid(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    text = f'{HEAD}username: bob\npassword: "{pw}"\noutbound_proxy: "sip:x;transport=q"\n'
    return _write(folder, text), 1, {}


def _no_username(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f'{HEAD}password: "{pw}"\n'), 1, {}


def _two_sources(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    text = f'{HEAD}username: bob\npassword: "{pw}"\npassword_env: NUM_PW\n'
    return _write(folder, text), 1, {"NUM_PW": pw}


def _typo_key(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f'{HEAD}username: bob\npasword: "{pw}"\n'), 1, {}


def _duplicate_key(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    text = f'{HEAD}username: bob\npassword: "{pw}"\npassword: "{pw}"\n'
    return _write(folder, text), 1, {}


def _wrong_type(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f'{HEAD}username: bob\npassword: ["{pw}"]\n'), 1, {}


def _in_uri(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    text = f'{HEAD}origination_uri: "sip:bob:{pw}@127.0.0.1:5080"\n'
    return _write(folder, text), 1, {}


def _yaml_tag(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f"{HEAD}username: bob\npassword: !{pw}\n"), 2, {}


def _yaml_alias(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f"{HEAD}username: bob\npassword: *{pw}\n"), 2, {}


def _unterminated_quote(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f'{HEAD}username: bob\npassword: "{pw}\n'), 2, {}


def _bad_indent(folder: Path, pw: str) -> tuple[str, int, dict[str, str | None]]:
    return _write(folder, f"{HEAD}username: bob\npassword: {pw}\n  x: {pw}: y\n"), 2, {}


CASES: list[Case] = [
    _inline,
    _env,
    _file,
    _file_two_lines,
    _other_field_invalid,
    _no_username,
    _two_sources,
    _typo_key,
    _duplicate_key,
    _wrong_type,
    _in_uri,
    _yaml_tag,
    _yaml_alias,
    _unterminated_quote,
    _bad_indent,
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__.strip("_"))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_password_is_never_printed(tmp_path: Path, case: Case, as_json: bool) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    path, expected_code, env = case(tmp_path, password)
    run = run_cli(["validate", *(["--json"] if as_json else []), path], env=env)
    assert run.exit_code == expected_code, (run.stdout, run.stderr)
    assert password not in run.stdout
    assert password not in run.stderr
    # The random part alone, in case a message shortens or escapes the value.
    assert password[3:15] not in run.stdout + run.stderr
