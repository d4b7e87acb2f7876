"""The field rules, password sources and file loading, below the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import InputError
from harness.numbers import (
    HostPort,
    InvalidNumberFile,
    NumberConfig,
    Problem,
    ValidationResult,
    check_number_data,
    check_number_file,
    load_number_file,
)

BASE: dict[object, object] = {"phone_number": "+15550100001", "sip_domain": "sip.example.test"}


def _check(
    tmp_path: Path, environ: dict[str, str] | None = None, **fields: Any
) -> ValidationResult:
    data: dict[object, object] = dict(BASE)
    data.update(fields)
    return check_number_data(data, base_dir=tmp_path, environ=environ or {})


def _ok(tmp_path: Path, *, environ: dict[str, str] | None = None, **fields: Any) -> NumberConfig:
    result = _check(tmp_path, environ=environ, **fields)
    assert result.valid, result.problems
    assert result.config is not None
    return result.config


def _fields(result: ValidationResult) -> list[str]:
    assert not result.valid
    assert result.config is None
    return [problem.field for problem in result.problems]


@pytest.mark.parametrize("number", ["+1", "+14155550123", "+442055550123", "+123456789012345"])
def test_e164_accepted(tmp_path: Path, number: str) -> None:
    assert _ok(tmp_path, phone_number=number).phone_number == number


@pytest.mark.parametrize(
    "number",
    [
        "14155550123",
        "+",
        "+0123",
        "+1234567890123456",
        "+1 415 555 0123",
        "+1-415-555-0123",
        "+1415555O123",
        "+١٢٣",  # Arabic-Indic digits are digits to Python, not to E.164
        "++14155550123",
        "tel:+14155550123",
    ],
)
def test_e164_rejected(tmp_path: Path, number: str) -> None:
    result = _check(tmp_path, phone_number=number)
    assert _fields(result) == ["phone_number"]
    assert "is not E.164" in result.problems[0].message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip.example.test", HostPort("sip.example.test")),
        ("sip.example.test:5070", HostPort("sip.example.test", 5070)),
        ("SIP.Example.Test.", HostPort("SIP.Example.Test.")),
        ("localhost", HostPort("localhost")),
        ("127.0.0.2", HostPort("127.0.0.2")),
        ("203.0.113.10:65535", HostPort("203.0.113.10", 65535)),
        ("[::1]", HostPort("::1")),
        ("[2001:db8::1]:5080", HostPort("2001:db8::1", 5080)),
    ],
)
def test_sip_domain_accepted(tmp_path: Path, text: str, expected: HostPort) -> None:
    config = _ok(tmp_path, sip_domain=text)
    assert config.sip_domain == expected
    assert str(config.sip_domain) == text


@pytest.mark.parametrize(
    "text",
    [
        "sip:sip.example.test",
        "SIPS:sip.example.test",
        "https://sip.example.test",
        "bob@sip.example.test",
        "sip.example.test;transport=tcp",
        "sip.example.test:0",
        "sip.example.test:65536",
        "sip.example.test:",
        "sip.example.test:50a",
        "2001:db8::1",
        "[2001:db8::zz]",
        "[::1",
        "256.1.1.1",
        "1.2.3",
        "-bad.example.test",
        "bad..example.test",
        "exa mple.test",
        "exämple.test",
    ],
)
def test_sip_domain_rejected(tmp_path: Path, text: str) -> None:
    assert _fields(_check(tmp_path, sip_domain=text)) == ["sip_domain"]


@pytest.mark.parametrize("user", ["15550100001", "+15550100001", "alice.smith", "a-b_c~", "a%40b"])
def test_username_accepted(tmp_path: Path, user: str) -> None:
    assert _ok(tmp_path, username=user, password="pw").username == user


@pytest.mark.parametrize("user", ["a b", "a@b", "a;b", "a?b", "a:b", "é", "a%zz", "a\tb", "a<b"])
def test_username_rejected(tmp_path: Path, user: str) -> None:
    assert _fields(_check(tmp_path, username=user, password="pw")) == ["username"]


@pytest.mark.parametrize("auth", ["auth-7781", "auth@example.test", "AUTH.id+1"])
def test_auth_username_accepted(tmp_path: Path, auth: str) -> None:
    config = _ok(tmp_path, username="bob", password="pw", auth_username=auth)
    assert config.auth_username == auth


@pytest.mark.parametrize("auth", ["auth 7781", 'au"th', "au\\th", "äuth"])
def test_auth_username_rejected(tmp_path: Path, auth: str) -> None:
    result = _check(tmp_path, username="bob", password="pw", auth_username=auth)
    assert _fields(result) == ["auth_username"]


@pytest.mark.parametrize("transport", ["udp", "TCP", "Tls"])
def test_transport_is_case_insensitive(tmp_path: Path, transport: str) -> None:
    _ok(tmp_path, outbound_proxy=f"sip:proxy.example.test;transport={transport}")


@pytest.mark.parametrize(
    "proxy",
    [
        "sip:proxy.example.test;maddr=192.0.2.1",
        "sip:proxy.example.test?Subject=x",
        "tel:+14155550123",
        "sip:",
        "sip:proxy.example.test;transport=",
        "proxy.example.test:5065:1",
    ],
)
def test_outbound_proxy_rejected(tmp_path: Path, proxy: str) -> None:
    assert set(_fields(_check(tmp_path, outbound_proxy=proxy))) == {"outbound_proxy"}


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("authusername", "auth_username"),
        ("Phone_Number", "phone_number"),
        ("proxy", "outbound_proxy"),
        ("domain", "sip_domain"),
        ("pasword", "password"),
        ("origination-uri", "origination_uri"),
        ("outbound_proxi", "outbound_proxy"),
    ],
)
def test_unknown_field_suggests_the_closest_known_name(
    tmp_path: Path, key: str, suggestion: str
) -> None:
    fields: dict[str, Any] = {key: "x"}
    result = _check(tmp_path, **fields)
    assert result.problems == (Problem(key, f"unknown field: did you mean {suggestion}?"),)


def test_unknown_field_without_a_close_name_lists_the_known_ones(tmp_path: Path) -> None:
    result = _check(tmp_path, xyzzy="x")
    assert _fields(result) == ["xyzzy"]
    assert "phone_number" in result.problems[0].message
    assert "origination_uri" in result.problems[0].message


def test_name_and_description_are_free_text(tmp_path: Path) -> None:
    config = _ok(tmp_path, name="Carrier A: main line", description="Anything @ all; really")
    assert config.name == "Carrier A: main line"


@pytest.mark.parametrize("value", [["a"], {"a": 1}, True, 12, 1.5, None, "", "   "])
@pytest.mark.parametrize("field", ["sip_domain", "username", "outbound_proxy", "origination_uri"])
def test_wrong_types_and_empty_values(tmp_path: Path, field: str, value: object) -> None:
    fields: dict[str, Any] = {field: value}
    if field == "username":
        fields["password"] = "pw"
    result = _check(tmp_path, **fields)
    assert field in _fields(result)
    message = next(p.message for p in result.problems if p.field == field)
    if value is None or (isinstance(value, str) and not value.strip()):
        assert message.startswith("is empty")
    else:
        assert message.startswith("expected a string")


def test_all_problems_are_collected(tmp_path: Path) -> None:
    result = check_number_data(
        {
            "phone_number": "555",
            "sip_domain": "sip:x",
            "username": "a b",
            "outbound_proxy": "sip:p;transport=foo",
            "origination_uri": 5,
            "bogus": 1,
        },
        base_dir=tmp_path,
        environ={},
    )
    assert _fields(result) == [
        "phone_number",
        "sip_domain",
        "username",
        "outbound_proxy",
        "origination_uri",
        "bogus",
        "username",  # and it has no password
    ]


# -- password sources ---------------------------------------------------------------


def test_credentials_rules(tmp_path: Path) -> None:
    assert _fields(_check(tmp_path, password="pw")) == ["password"]
    assert _fields(_check(tmp_path, username="bob")) == ["username"]
    assert _fields(_check(tmp_path, auth_username="auth")) == ["auth_username"]
    result = _check(tmp_path, password="pw", auth_username="auth")
    assert _fields(result) == ["password", "auth_username"]
    assert result.problems[0].message.startswith("a password needs a username")


def test_at_most_one_password_source(tmp_path: Path) -> None:
    result = _check(
        tmp_path,
        environ={"PW": "x"},
        username="bob",
        password="pw",
        password_env="PW",
        password_file="pw.txt",
    )
    assert _fields(result) == ["password_env", "password_file"]


def test_password_env(tmp_path: Path) -> None:
    config = _ok(tmp_path, environ={"SIP_PW": "from-env"}, username="bob", password_env="SIP_PW")
    assert config.password == "from-env"
    assert config.password_source is not None
    assert config.password_source.describe() == "from password_env SIP_PW"


@pytest.mark.parametrize(
    ("environ", "name", "fragment"),
    [
        ({}, "SIP_PW", "environment variable SIP_PW is not set"),
        ({"SIP_PW": ""}, "SIP_PW", "environment variable SIP_PW is empty"),
        ({}, "$SIP_PW", "not an environment variable name"),
        ({}, "1ABC", "not an environment variable name"),
    ],
)
def test_password_env_problems(
    tmp_path: Path, environ: dict[str, str], name: str, fragment: str
) -> None:
    result = _check(tmp_path, environ=environ, username="bob", password_env=name)
    assert _fields(result) == ["password_env"]
    assert fragment in result.problems[0].message


@pytest.mark.parametrize(
    ("content", "password"),
    [
        (b"s3cret\n", "s3cret"),
        (b"s3cret\r\n", "s3cret"),
        (b"s3cret", "s3cret"),
        (b" a b ", " a b "),
    ],
)
def test_password_file_relative_to_the_number_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, password: str
) -> None:
    folder = tmp_path / "numbers"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(content)
    number = folder / "number.yaml"
    number.write_text(
        'phone_number: "+15550100001"\nsip_domain: sip.example.test\n'
        "username: bob\npassword_file: secret.txt\n"
    )
    monkeypatch.chdir(tmp_path)  # not the number file's folder
    config = load_number_file(number)
    assert config.password == password


def test_password_file_absolute_path(tmp_path: Path) -> None:
    secret = tmp_path / "abs-secret"
    secret.write_text("abs\n")
    config = _ok(tmp_path / "elsewhere", username="bob", password_file=str(secret))
    assert config.password == "abs"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\n", "is empty"),
        (b"one\ntwo\n", "more than one line"),
        (b"\xff\xfe", "not UTF-8"),
        (b"x" * 5000, "larger than"),
    ],
)
def test_password_file_problems(tmp_path: Path, content: bytes, fragment: str) -> None:
    (tmp_path / "pw").write_bytes(content)
    result = _check(tmp_path, username="bob", password_file="pw")
    assert _fields(result) == ["password_file"]
    assert fragment in result.problems[0].message


def test_password_file_missing_or_a_directory(tmp_path: Path) -> None:
    result = _check(tmp_path, username="bob", password_file="nope.txt")
    assert _fields(result) == ["password_file"]
    assert "not found" in result.problems[0].message
    (tmp_path / "adir").mkdir()
    result = _check(tmp_path, username="bob", password_file="adir")
    assert _fields(result) == ["password_file"]
    assert "is a directory" in result.problems[0].message


# -- the model -------------------------------------------------------------------------


def test_password_stays_out_of_repr_and_public_dict(tmp_path: Path) -> None:
    secret = "model-secret-4711"
    config = _ok(tmp_path, username="bob", password=secret)
    assert config.password == secret
    assert secret not in repr(config)
    assert secret not in str(config)
    public = config.to_public_dict()
    assert secret not in repr(public)
    assert public["password"] == "********"
    assert public["password_source"] == {"field": "password", "reference": None}
    assert config.redacted().password is None
    assert secret not in repr(config.redacted().to_public_dict())


# -- files -----------------------------------------------------------------------------


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(InputError, match=r"missing\.yaml: no such file"):
        check_number_file(missing)


def test_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        check_number_file(tmp_path)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty"),
        (b"# nothing\n", "is empty"),
        (b"{}\n", "is empty"),
        (b"- a\n- b\n", "it is a list"),
        (b"42\n", "it is a single number"),
        (b"a: [\n", "not valid YAML"),
        (b"\x00\x01\x02\xff", "not a text file"),
        (b"a: !!python/object:os.system x\n", "not valid YAML"),
        (b"a: " + b"[" * 50000 + b"]" * 50000 + b"\n", "nested too deeply"),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "number.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        check_number_file(path)
    message = str(caught.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b'\xef\xbb\xbfphone_number: "+15550100001"\nsip_domain: x.example.test\n')
    assert check_number_file(path).valid


def test_load_number_file_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('phone_number: "555"\nsip_domain: "sip:x"\n')
    with pytest.raises(InvalidNumberFile) as caught:
        load_number_file(path)
    assert [p.field for p in caught.value.problems] == ["phone_number", "sip_domain"]
    assert isinstance(caught.value, InputError)
    assert "\n" not in str(caught.value)
    assert "2 problems" in str(caught.value)
