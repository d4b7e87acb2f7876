"""The pytest plugin: matrix items only when asked, readable ids, one option group."""

from __future__ import annotations

import pytest


def test_no_matrix_items_without_asking(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("--co", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*test_plain*", "1 test collected*"])
    assert "sipharness" not in result.stdout.str()


def test_sip_run_collects_scenario_profile_items(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--co", "-q", "--sip-run", "--profile", "proxy-tcp-5065", "-p", "no:cacheprovider"
    )
    out = result.stdout.str()
    assert "register[proxy-tcp-5065]" in out
    assert "register-via-outbound-proxy[proxy-tcp-5065]" in out
    assert "ip-trunk-call" not in out  # does not apply to this profile
    assert "tls-call" not in out


def test_scenario_option_alone_enables_and_filters(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--co", "-q", "--scenario", "tls-call", "--scenario", "ip-trunk-call",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*::ip-trunk-call[[]ip-trunk[]]", "*::tls-call[[]tls-5061[]]"])
    assert result.stdout.str().count("::sipharness::") == 2


def test_marker_selects_only_the_matrix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest(
        "--co", "-q", "--sip-run", "--scenario", "register", "-m", "sip_scenario",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    out = result.stdout.str()
    assert "test_plain" not in out
    assert "register[registrar-udp]" in out


def test_bad_scenario_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--co", "--scenario", "no-such", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*unknown scenario 'no-such'*"])


def test_options_are_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "sip-harness conformance runs:",
            "*--sip-run*",
            "*--number=FILE*",
            "*--sip-report-dir=DIR*",
        ]
    )
