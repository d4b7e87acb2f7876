"""Rendering profiles into per-peer config folders (no containers needed)."""

from __future__ import annotations

import dataclasses
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.numbers import NumberConfig, load_number_file
from harness.peers.profiles import Quirk, list_profiles, load_profile
from harness.peers.render import RenderedRun, asterisk_value, kamailio_string, render_run

REPO = Path(__file__).resolve().parents[2]
NUMBERS = REPO / "fixtures" / "numbers"
KAMAILIO = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin")
HOST_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


@pytest.fixture
def number() -> NumberConfig:
    return load_number_file(NUMBERS / "example.yaml")


def _render(tmp_path: Path, name: str, number: NumberConfig, **options: object) -> RenderedRun:
    return render_run(load_profile(name), number, tmp_path / "run", hostname="testhost", **options)  # type: ignore[arg-type]


def test_folders_are_private_and_hold_the_expected_files(
    tmp_path: Path, number: NumberConfig
) -> None:
    run = _render(tmp_path, "registrar-udp", number)
    assert stat.S_IMODE(run.folder.stat().st_mode) == 0o700
    for path in run.folder.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    registrar = run.peer("registrar")
    assert (registrar.folder / "kamailio.cfg").is_file()
    assert registrar.command[-1] == "/etc/sipharness/kamailio.cfg"
    media = run.peer("media")
    assert {p.name for p in (media.folder / "asterisk").iterdir()} >= {
        "asterisk.conf", "pjsip.conf", "extensions.conf", "modules.conf", "rtp.conf",
        "logger.conf"}  # fmt: skip
    assert {m.target for m in media.mounts} == {"/etc/hosts", "/etc/resolv.conf", "/etc/asterisk"}


def test_lookups_stay_on_loopback(tmp_path: Path, number: NumberConfig) -> None:
    run = _render(tmp_path, "registrar-udp", number)
    for peer in run.peers:
        assert (peer.folder / "resolv.conf").read_text().splitlines()[-1] == "nameserver 127.0.0.1"
        assert f"{peer.spec.address}\ttesthost" in (peer.folder / "hosts").read_text()
    kamailio = (run.peer("registrar").folder / "kamailio.cfg").read_text()
    for line in ("dns=no", "rev_dns=no", "dns_try_ipv6=no", "mhomed=0", "children=2"):
        assert line in kamailio.splitlines()


def test_the_password_is_only_in_the_files_that_check_it(
    tmp_path: Path, number: NumberConfig
) -> None:
    assert number.password is not None
    run = _render(tmp_path, "registrar-udp", number)
    holders = sorted(
        p.relative_to(run.folder).as_posix()
        for p in run.folder.rglob("*")
        if p.is_file() and number.password in p.read_text()
    )
    assert holders == ["registrar/kamailio.cfg"]
    kamailio = (run.peer("registrar").folder / "kamailio.cfg").read_text()
    # Per-request logging is off by default and never carries the password.
    assert "xlog(" not in kamailio
    logged = _render(tmp_path / "b", "registrar-udp", number, log_requests=True)
    cfg = (logged.peer("registrar").folder / "kamailio.cfg").read_text()
    assert all(number.password not in line for line in cfg.splitlines() if "xlog" in line)


def test_quirks_change_the_rendered_registrar(tmp_path: Path, number: NumberConfig) -> None:
    plain = (_render(tmp_path / "a", "registrar-udp", number).peer("registrar").folder
             / "kamailio.cfg").read_text()  # fmt: skip
    quirky_run = _render(tmp_path / "b", "registrar-udp", number, quirks=[q.value for q in Quirk])
    quirky = (quirky_run.peer("registrar").folder / "kamailio.cfg").read_text()
    assert 'modparam("auth", "algorithm", "SHA-256")' in quirky
    assert 'modparam("auth", "algorithm"' not in plain
    assert "Min-Expires: 600" in quirky
    assert "Min-Expires" not in plain
    assert 'modparam("auth", "nonce_expire", 2)' in quirky
    assert 'modparam("auth", "nonce_expire", 300)' in plain
    assert "$adu != $ru" in quirky
    assert "$adu" not in plain
    assert '"realm.carrier.test"' in quirky
    assert '"127.0.0.2"' in plain
    assert quirky_run.credentials is not None
    assert quirky_run.credentials.realm == "realm.carrier.test"


def test_pbx_extension_uses_the_authorization_id(tmp_path: Path, number: NumberConfig) -> None:
    run = _render(tmp_path, "pbx-asterisk", number)
    pjsip = (run.peer("pbx").folder / "asterisk" / "pjsip.conf").read_text()
    assert f"[{number.username}]" in pjsip
    assert "username = auth-7781" in pjsip
    assert "bind = 127.0.0.8:5060" in pjsip
    assert "media_address = 127.0.0.8" in pjsip
    assert "bind_rtp_to_media_address = yes" in pjsip
    modules = (run.peer("pbx").folder / "asterisk" / "modules.conf").read_text()
    assert "autoload = no" in modules
    assert "load = codec_gsm.so" in modules


def test_trunk_routes_inbound_calls_to_the_origination_uri(tmp_path: Path) -> None:
    number = load_number_file(NUMBERS / "ip-trunk.yaml")
    run = _render(tmp_path, "ip-trunk", number, allowed_sources=["127.0.0.1", "127.0.0.9"])
    cfg = (run.peer("trunk").folder / "kamailio.cfg").read_text()
    assert '$du = "sip:127.0.0.1:5080;transport=tcp";' in cfg
    assert '$si != "127.0.0.1" && $si != "127.0.0.9"' in cfg
    assert run.credentials is None
    without = dataclasses.replace(number, origination_uri=None)
    with pytest.raises(InputError, match="origination_uri"):
        _render(tmp_path / "x", "ip-trunk", without)


def test_tls_certificate_names_the_peer_address(tmp_path: Path, number: NumberConfig) -> None:
    run = _render(tmp_path, "tls-5061", number, base=2)
    assert run.ca_file is not None
    registrar = run.peer("registrar")
    cert = registrar.folder / "tls" / "server.pem"
    san = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert "IP Address:127.0.2.14" in san
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(run.ca_file), str(cert)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert not (registrar.folder / "tls" / "ca.key").exists()
    assert "listen=tls:127.0.2.14:5061" in (registrar.folder / "kamailio.cfg").read_text()


def test_escaping() -> None:
    assert kamailio_string('a"b\\c') == 'a\\"b\\\\c'
    assert asterisk_value("pa;ss") == "pa\\;ss"
    with pytest.raises(InputError):
        kamailio_string("line\nbreak")
    with pytest.raises(InputError):
        asterisk_value(" padded")


@pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed on this host")
@pytest.mark.parametrize("profile", list_profiles())
@pytest.mark.parametrize("quirks", [False, True])
def test_kamailio_accepts_every_rendered_config(
    tmp_path: Path, number: NumberConfig, profile: str, quirks: bool
) -> None:
    loaded = load_profile(profile)
    if quirks and loaded.authenticator is None:
        pytest.skip("no registrar: quirks do not apply")
    chosen = load_number_file(NUMBERS / "ip-trunk.yaml") if profile == "ip-trunk" else number
    tricky = dataclasses.replace(chosen, password='p"a\\s$s') if chosen.password else chosen
    run = render_run(
        loaded, tricky, tmp_path / "run",
        quirks=[q.value for q in Quirk] if quirks else None,
    )  # fmt: skip
    for peer in run.peers:
        cfg = peer.folder / "kamailio.cfg"
        if not cfg.exists():
            continue
        if peer.spec.transport.value == "tls" and not (HOST_MODULES / "tls.so").exists():
            continue  # the image has kamailio-tls-modules; this host may not
        assert KAMAILIO is not None
        checked = subprocess.run(
            [KAMAILIO, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr[-2000:]


COMPOSE = shutil.which("docker-compose")


@pytest.mark.parametrize("profile", list_profiles())
def test_compose_files_match_the_profiles(profile: str, tmp_path: Path) -> None:
    import yaml

    compose = yaml.safe_load((REPO / "compose" / f"{profile}.yml").read_text())
    loaded = load_profile(profile)
    assert list(compose["services"]) == [p.name for p in loaded.peers]
    for peer in loaded.peers:
        service = compose["services"][peer.name]
        assert service["network_mode"] == "host"
        assert service["labels"]["org.sipharness.managed"] == "1"
    if COMPOSE is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose)")
    run = tmp_path / "run"
    from typer.testing import CliRunner

    from harness.cli import app

    rendered = CliRunner().invoke(app, ["peers", "render", "--profile", profile, "--out", str(run)])
    assert rendered.exit_code == 0, rendered.output
    assert rendered.output.strip() == str(run)
    checked = subprocess.run(
        [COMPOSE, "-f", str(REPO / "compose" / f"{profile}.yml"), "config"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"SIPHARNESS_RUN": str(run), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    config = yaml.safe_load(checked.stdout)
    for peer in loaded.peers:
        for volume in config["services"][peer.name]["volumes"]:
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            assert Path(source).exists(), source
