"""The Docker engine connection and the harness's labels."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import InputError, SetupError
from harness.peers import labels
from harness.peers.engine import Engine, EngineUnavailable

# Loopback addresses only: nothing listens on port 1, and no such socket file exists.
DEAD_HOSTS = ["tcp://127.0.0.1:1", "unix:///nonexistent/docker.sock", "bogus://nowhere"]


@pytest.mark.parametrize("host", DEAD_HOSTS)
def test_bad_docker_host_is_a_one_line_setup_error(host: str) -> None:
    with pytest.raises(SetupError) as caught:
        Engine.connect(environment={"DOCKER_HOST": host})
    message = str(caught.value)
    assert "\n" not in message
    assert f"DOCKER_HOST={host}" in message
    assert "./bootstrap.sh setup" in message
    assert "DOCKER_HOST to a running engine" in message
    assert len(message) < 400


def test_refused_connection_names_the_reason() -> None:
    with pytest.raises(EngineUnavailable) as caught:
        Engine.connect(environment={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert "(Connection refused)" in caught.value.problem
    assert caught.value.fix.startswith("as root on Debian")


def test_cli_reports_a_dead_engine_without_a_traceback() -> None:
    result = CliRunner().invoke(
        app, ["images", "build"], env={"DOCKER_HOST": "tcp://127.0.0.1:1", "CI": "true"}
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot reach the Docker engine at DOCKER_HOST=")


def test_doctor_marks_the_engine_missing_and_exits_1() -> None:
    result = CliRunner().invoke(app, ["doctor"], env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith("MISSING")
    assert "docker engine" in first
    assert "./bootstrap.sh setup" in first
    # Without an engine no image can be confirmed either.
    assert "MISSING  image kamailio" in result.output


def test_doctor_json_lists_every_check() -> None:
    result = CliRunner().invoke(app, ["doctor", "--json"], env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.exit_code == 1
    checks = json.loads(result.output)
    names = [check["name"] for check in checks]
    assert names[0] == "docker engine"
    assert {"image kamailio", "image asterisk", "image sipp", "tshark", "sipp"} <= set(names)
    engine = checks[0]
    assert engine["ok"] is False
    assert engine["fix"]


def test_managed_and_run_labels() -> None:
    assert labels.managed_labels() == {"org.sipharness.managed": "1"}
    assert labels.run_labels("run-20250101.1") == {
        "org.sipharness.managed": "1",
        "org.sipharness.run": "run-20250101.1",
    }
    assert labels.run_filter("r1") == {
        "label": ["org.sipharness.managed=1", "org.sipharness.run=r1"]
    }
    assert labels.run_filter() == {"label": ["org.sipharness.managed=1"]}


@pytest.mark.parametrize("bad", ["", "-leading-dash", "has space", "x" * 65, "a/b"])
def test_run_id_must_be_safe(bad: str) -> None:
    with pytest.raises(InputError):
        labels.run_labels(bad)


@pytest.mark.integration
def test_connects_to_the_running_engine() -> None:
    engine = Engine.connect()
    try:
        assert engine.version()
        assert engine.client.ping() is True
        assert not engine.image_exists("sipharness/no-such-image:never")
        assert engine.image_labels("sipharness/no-such-image:never") is None
    finally:
        engine.close()
