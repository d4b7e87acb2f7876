"""The effective-target rules: where packets go for every accepted form."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest

from harness.numbers import (
    Effective,
    NumberConfig,
    Resolution,
    Transport,
    check_number_data,
    effective_view,
)

DOMAIN = "sip.example.test"


def _config(tmp_path: Path, **fields: Any) -> NumberConfig:
    data: dict[object, object] = {"phone_number": "+15550100001", "sip_domain": DOMAIN}
    data.update(fields)
    result = check_number_data(data, base_dir=tmp_path, environ={})
    assert result.config is not None, result.problems
    return result.config


def _view(tmp_path: Path, **fields: Any) -> Effective:
    return effective_view(_config(tmp_path, **fields))


class ProxyForm(NamedTuple):
    """An accepted outbound_proxy spelling and what it must mean on the wire."""

    typed: str
    host: str
    port: int
    transport: Transport
    port_explicit: bool
    transport_explicit: bool
    resolution: Resolution
    route: str


PROXY_FORMS = [
    ProxyForm("sip:proxy.example.test:5065", "proxy.example.test", 5065, Transport.UDP,
              True, False, Resolution.ADDRESS, "<sip:proxy.example.test:5065;lr>"),
    ProxyForm("proxy.example.test:5065", "proxy.example.test", 5065, Transport.UDP,
              True, False, Resolution.ADDRESS, "<sip:proxy.example.test:5065;lr>"),
    ProxyForm("sip:proxy.example.test;transport=tcp", "proxy.example.test", 5060, Transport.TCP,
              False, True, Resolution.SRV, "<sip:proxy.example.test;transport=tcp;lr>"),
    ProxyForm("sip:1.2.3.4:5065;transport=tcp", "1.2.3.4", 5065, Transport.TCP,
              True, True, Resolution.NONE, "<sip:1.2.3.4:5065;transport=tcp;lr>"),
    ProxyForm("sip:127.0.0.3:5065;transport=tcp", "127.0.0.3", 5065, Transport.TCP,
              True, True, Resolution.NONE, "<sip:127.0.0.3:5065;transport=tcp;lr>"),
    ProxyForm("sips:proxy.example.test", "proxy.example.test", 5061, Transport.TLS,
              False, True, Resolution.SRV, "<sips:proxy.example.test;lr>"),
    ProxyForm("sips:proxy.example.test;transport=tcp", "proxy.example.test", 5061, Transport.TLS,
              False, True, Resolution.SRV, "<sips:proxy.example.test;transport=tcp;lr>"),
    ProxyForm("sip:proxy.example.test;transport=TLS", "proxy.example.test", 5061, Transport.TLS,
              False, True, Resolution.SRV, "<sip:proxy.example.test;transport=TLS;lr>"),
    ProxyForm("[::1]:5070", "::1", 5070, Transport.UDP,
              True, False, Resolution.NONE, "<sip:[::1]:5070;lr>"),
    ProxyForm("sip:[::1]:5070;transport=Udp", "::1", 5070, Transport.UDP,
              True, True, Resolution.NONE, "<sip:[::1]:5070;transport=Udp;lr>"),
    ProxyForm("proxy.example.test", "proxy.example.test", 5060, Transport.UDP,
              False, False, Resolution.NAPTR, "<sip:proxy.example.test;lr>"),
    ProxyForm("sip:proxy.example.test:5065;lr", "proxy.example.test", 5065, Transport.UDP,
              True, False, Resolution.ADDRESS, "<sip:proxy.example.test:5065;lr>"),
]  # fmt: skip


@pytest.mark.parametrize("form", PROXY_FORMS, ids=[form.typed for form in PROXY_FORMS])
def test_outbound_proxy_form(tmp_path: Path, form: ProxyForm) -> None:
    view = _view(tmp_path, outbound_proxy=form.typed)
    assert view.via == "outbound_proxy"
    target = view.target
    assert (target.host, target.port, target.transport) == (form.host, form.port, form.transport)
    assert target.port_explicit is form.port_explicit
    assert target.transport_explicit is form.transport_explicit
    assert target.resolution is form.resolution
    assert view.route == form.route
    # The proxy is only the next hop: the Request-URI keeps naming the domain.
    assert view.register_uri == view.request_uri == f"sip:{DOMAIN}"
    assert view.from_uri == f"sip:+15550100001@{DOMAIN}"
    assert view.call_request_uri("+15550100009") == f"sip:+15550100009@{DOMAIN}"


class DomainForm(NamedTuple):
    typed: str
    host: str
    port: int
    port_explicit: bool
    resolution: Resolution
    request_uri: str


DOMAIN_FORMS = [
    DomainForm("sip.example.test", "sip.example.test", 5060, False, Resolution.NAPTR,
               "sip:sip.example.test"),
    DomainForm("sip.example.test:5070", "sip.example.test", 5070, True, Resolution.ADDRESS,
               "sip:sip.example.test:5070"),
    DomainForm("127.0.0.2", "127.0.0.2", 5060, False, Resolution.NONE, "sip:127.0.0.2"),
    DomainForm("[::1]:5062", "::1", 5062, True, Resolution.NONE, "sip:[::1]:5062"),
]  # fmt: skip


@pytest.mark.parametrize("form", DOMAIN_FORMS, ids=[form.typed for form in DOMAIN_FORMS])
def test_without_proxy_the_domain_is_the_target(tmp_path: Path, form: DomainForm) -> None:
    view = _view(tmp_path, sip_domain=form.typed)
    assert view.via == "sip_domain"
    assert (view.target.host, view.target.port) == (form.host, form.port)
    # UDP until DNS says otherwise: never fixed by a bare host[:port].
    assert view.target.transport is Transport.UDP
    assert view.target.transport_explicit is False
    assert view.target.port_explicit is form.port_explicit
    assert view.target.resolution is form.resolution
    assert view.route is None
    assert view.register_uri == form.request_uri


def test_credentials_register_with_the_digest_username(tmp_path: Path) -> None:
    view = _view(tmp_path, username="15550100001", password="pw")
    assert view.registers is True
    assert view.digest_username == "15550100001"
    assert view.aor == f"sip:15550100001@{DOMAIN}"
    assert view.from_uri == f"sip:+15550100001@{DOMAIN}"


def test_auth_username_is_the_digest_username_but_not_the_aor(tmp_path: Path) -> None:
    view = _view(tmp_path, username="15550100002", password="pw", auth_username="auth-7781")
    assert view.digest_username == "auth-7781"
    assert view.aor == f"sip:15550100002@{DOMAIN}"


def test_no_credentials_means_no_register(tmp_path: Path) -> None:
    view = _view(tmp_path)
    assert view.registers is False
    assert view.digest_username is None
    assert view.aor == f"sip:+15550100001@{DOMAIN}"


def test_from_and_aor_carry_the_domain_host_without_its_port(tmp_path: Path) -> None:
    view = _view(tmp_path, sip_domain="sip.example.test:5070", username="bob", password="pw")
    assert view.from_uri == "sip:+15550100001@sip.example.test"
    assert view.aor == "sip:bob@sip.example.test"
    assert view.register_uri == "sip:sip.example.test:5070"


@pytest.mark.parametrize(
    ("uri", "host", "port", "transport"),
    [
        ("sip:127.0.0.1:5080", "127.0.0.1", 5080, Transport.UDP),
        ("sip:127.0.0.1:5080;transport=tcp", "127.0.0.1", 5080, Transport.TCP),
        ("sip:127.0.0.1", "127.0.0.1", 5060, Transport.UDP),
        ("sips:127.0.0.1", "127.0.0.1", 5061, Transport.TLS),
        ("sip:platform.example.test;transport=tls", "platform.example.test", 5061, Transport.TLS),
        ("127.0.0.1:5090", "127.0.0.1", 5090, Transport.UDP),
        ("sip:+15550100001@127.0.0.1:5080", "127.0.0.1", 5080, Transport.UDP),
    ],
)
def test_origination(tmp_path: Path, uri: str, host: str, port: int, transport: Transport) -> None:
    view = _view(tmp_path, origination_uri=uri)
    assert view.origination is not None
    assert (view.origination.host, view.origination.port) == (host, port)
    assert view.origination.transport is transport
    # The origination URI is where we listen: it never changes the outbound target.
    assert view.target.host == DOMAIN


def test_to_dict_is_the_json_contract(tmp_path: Path) -> None:
    view = _view(
        tmp_path,
        username="15550100002",
        password="pw",
        auth_username="auth-7781",
        outbound_proxy="sip:127.0.0.3:5065;transport=tcp",
        origination_uri="sip:127.0.0.1:5080",
    )
    assert view.to_dict() == {
        "target": {
            "host": "127.0.0.3",
            "port": 5065,
            "transport": "tcp",
            "port_explicit": True,
            "transport_explicit": True,
            "resolution": "none",
        },
        "via": "outbound_proxy",
        "request_uri": f"sip:{DOMAIN}",
        "route": "<sip:127.0.0.3:5065;transport=tcp;lr>",
        "registers": True,
        "digest_username": "auth-7781",
        "from_uri": f"sip:+15550100001@{DOMAIN}",
        "aor": f"sip:15550100002@{DOMAIN}",
        "origination": {
            "host": "127.0.0.1",
            "port": 5080,
            "transport": "udp",
            "port_explicit": True,
            "transport_explicit": False,
            "resolution": "none",
        },
    }
