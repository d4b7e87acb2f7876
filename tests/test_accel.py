"""The compiled (mypyc) modules: used only when current, and giving identical results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import accel

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "capture" / "data"

# Child script: decode every capture given, run the catalogue with and without the
# example number, print the findings' JSON per capture and whether compiled code ran.
_CHILD = """
import json, sys
from pathlib import Path
from harness import accel
from harness.capture import build_flows, decode_capture
from harness.checks import run_checks
from harness.numbers import load_number_file

number = load_number_file(Path(sys.argv[1]))
out = {}
for name in sys.argv[2:]:
    decoded = decode_capture(name)
    flows = build_flows(decoded)
    for label, config in (("none", None), ("number", number)):
        run = run_checks(
            flows,
            config,
            issues=decoded.issues,
            tls_streams=decoded.tls_streams,
            unreachable=decoded.unreachable,
        )
        out[f"{Path(name).name}|{label}"] = [f.to_dict() for f in run.findings]
    out[f"{Path(name).name}|messages"] = len(decoded.messages)
print(json.dumps({"compiled": accel.compiled_in_use(), "status": accel.status().reason,
                  "findings": out}, sort_keys=True))
"""


def _analyse(captures: list[Path], *, pure: bool) -> dict[str, object]:
    env = dict(os.environ)
    env.pop(accel.PURE_ENV, None)
    if pure:
        env[accel.PURE_ENV] = "1"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(ROOT / "fixtures" / "numbers" / "example.yaml"),
            *map(str, captures),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


GENERATED: dict[str, int] = {}


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_decode import generate
    finally:
        sys.path.remove(str(ROOT / "bench"))
    mixed = tmp_path_factory.mktemp("accel") / "mixed.pcap"
    # INVITE and REGISTER dialogs, UDP and split/coalesced TCP, RTP in between.
    GENERATED[mixed.name] = generate(mixed, 3000)
    found = sorted(p for p in DATA.rglob("*.pcap*") if p.is_file())
    assert len(found) >= 7  # the SIPp recordings and the public samples
    return [*found, mixed]


def test_compiled_modules_give_the_same_findings_as_pure_python(captures: list[Path]) -> None:
    problem = accel.missing_toolchain()
    if problem is not None:
        pytest.skip(f"this machine cannot compile ({problem}): pure Python only")
    compiled = _analyse(captures, pure=False)
    # ./bootstrap.sh builds them whenever the toolchain is there: not in use is a defect
    # (or sources edited since the last build: run `python -m harness.build_accel`).
    assert compiled["compiled"] is True, compiled["status"]
    pure = _analyse(captures, pure=True)
    assert pure["compiled"] is False
    assert pure["status"] == f"pure Python ({accel.PURE_ENV} is set)"
    assert pure["findings"] == compiled["findings"]
    findings = compiled["findings"]
    assert isinstance(findings, dict)
    assert findings["mixed.pcap|messages"] == GENERATED["mixed.pcap"] >= 3000


def _write_build(build: Path, digest: str, files: dict[str, str]) -> None:
    build.mkdir(parents=True, exist_ok=True)
    (build / accel.MANIFEST).write_text(json.dumps({"digest": digest, "files": files}))


def test_missing_stale_or_incomplete_builds_leave_pure_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(accel.PURE_ENV, raising=False)
    monkeypatch.setattr(accel, "_state", [accel.status()])  # restored after the test
    build = tmp_path / "accel"
    monkeypatch.setattr(accel, "BUILD_DIR", build)
    before = list(sys.meta_path)

    assert accel.install().reason.startswith("pure Python (no compiled build")

    _write_build(build, "0" * 64, {name: "x.so" for name in accel.MODULES})
    assert accel.install().reason == "pure Python (the compiled build is stale: sources changed)"

    current = accel.source_digest()
    _write_build(build, current, {accel.MODULES[0]: "missing.so"})
    assert accel.install().reason == "pure Python (the compiled build is incomplete)"

    (build / accel.MANIFEST).write_text("{not json")
    assert accel.install().reason.startswith("pure Python (unreadable build manifest")

    # A complete, current build cannot replace modules this process already imported.
    for name in accel.MODULES:
        path = build / f"{name}.so"
        path.write_bytes(b"")
    _write_build(build, current, {name: f"{name}.so" for name in accel.MODULES})
    import harness.sip.message  # noqa: F401 - the point: imported before install()

    state = accel.install()
    assert not state.active
    assert "was imported before the build" in state.reason
    assert sys.meta_path == before  # no finder was added by any of these


def test_the_environment_variable_turns_compiled_modules_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(accel.PURE_ENV, "1")
    monkeypatch.setattr(accel, "_state", [accel.status()])
    assert accel.install() == accel.Status(False, f"pure Python ({accel.PURE_ENV} is set)")


def test_an_edit_makes_the_digest_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "harness"
    for name in accel.MODULES:
        source = accel.source_path(name)
        target = package / source.relative_to(accel.PACKAGE_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    monkeypatch.setattr(accel, "PACKAGE_DIR", package)
    first = accel.source_digest()
    assert first == accel.source_digest()
    edited = package / "capture" / "flows.py"
    edited.write_text(edited.read_text() + "\n# an edit\n")
    assert accel.source_digest() != first


def test_build_command_arguments_and_up_to_date_build(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.build_accel import main

    assert main(["--fast"]) == 2
    assert "usage: python -m harness.build_accel [--force]" in capsys.readouterr().err
    if not accel.status().active:
        pytest.skip(f"no current compiled build here ({accel.status().reason})")
    assert main([]) == 0  # current: nothing to compile, answers at once
    assert capsys.readouterr().out == "compiled modules are up to date\n"


def test_doctor_reports_the_compiled_modules_as_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.commands import doctor

    monkeypatch.setattr(accel, "_state", [accel.Status(False, "pure Python (stale)")])
    check = doctor.check_compiled()
    assert (check.ok, check.optional, check.detail) == (False, True, "pure Python (stale)")
    assert "optional, for speed" in check.fix
    monkeypatch.setattr(accel, "_state", [accel.Status(True, "in use: 25 modules")])
    assert doctor.check_compiled() == doctor.Check("compiled modules", True, "in use: 25 modules")


def test_doctor_passes_when_only_an_optional_check_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from harness.cli import app
    from harness.commands import doctor

    checks = [
        doctor.Check("tshark", True, "/usr/bin/tshark"),
        doctor.Check("compiled modules", False, "pure Python (stale)", "rebuild", optional=True),
    ]
    monkeypatch.setattr(doctor, "run_checks", lambda: checks)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "OPTIONAL compiled modules pure Python (stale) — rebuild" in result.output
    checks.append(doctor.Check("sipp", False, "sipp not found on PATH", "install it"))
    assert CliRunner().invoke(app, ["doctor"]).exit_code == 1
