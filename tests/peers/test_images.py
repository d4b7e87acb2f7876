"""Peer image recipes: tags from recipe hashes, and the built images really work."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import InputError
from harness.peers import labels
from harness.peers.engine import Engine
from harness.peers.images import (
    IMAGES,
    RECIPES_DIR,
    BuildEvent,
    ImageBuildError,
    build_images,
    host_mirror,
    image_tag,
    recipe_hash,
    select_images,
)

SPECS = {spec.name: spec for spec in IMAGES}


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    copy = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, copy)
    return copy


# --- tags, without building ---------------------------------------------------------------


def test_same_recipe_gives_the_same_tag(recipes: Path) -> None:
    for spec in IMAGES:
        tag = image_tag(spec, recipes_dir=recipes)
        assert tag == image_tag(spec)
        assert tag == f"sipharness/{spec.name}:{recipe_hash(spec)}"
        assert len(recipe_hash(spec)) == 12
        int(recipe_hash(spec), 16)


def test_changed_recipe_file_changes_only_that_image(recipes: Path) -> None:
    before = {spec.name: recipe_hash(spec, recipes_dir=recipes) for spec in IMAGES}
    dockerfile = recipes / "kamailio" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# a change\n")
    after = {spec.name: recipe_hash(spec, recipes_dir=recipes) for spec in IMAGES}
    assert after["kamailio"] != before["kamailio"]
    assert after["kamailio6"] != before["kamailio6"]
    assert after["asterisk"] == before["asterisk"]
    assert after["sipp"] == before["sipp"]


def test_new_or_renamed_file_changes_the_tag(recipes: Path) -> None:
    spec = SPECS["sipp"]
    before = recipe_hash(spec, recipes_dir=recipes)
    extra = recipes / "sipp" / "extra.xml"
    extra.write_text("<scenario/>")
    with_file = recipe_hash(spec, recipes_dir=recipes)
    extra.rename(recipes / "sipp" / "other.xml")
    renamed = recipe_hash(spec, recipes_dir=recipes)
    assert len({before, with_file, renamed}) == 3


def test_changed_base_recipe_changes_every_tag(recipes: Path) -> None:
    before = {spec.name: recipe_hash(spec, recipes_dir=recipes) for spec in IMAGES}
    (recipes / "base" / "99slim").write_text('APT::Install-Recommends "true";\n')
    after = {spec.name: recipe_hash(spec, recipes_dir=recipes) for spec in IMAGES}
    assert all(after[name] != before[name] for name in before)


def test_suite_is_part_of_the_tag() -> None:
    # kamailio and kamailio6 share one recipe folder and differ only by suite.
    assert SPECS["kamailio"].recipe == SPECS["kamailio6"].recipe
    assert recipe_hash(SPECS["kamailio"]) != recipe_hash(SPECS["kamailio6"])


def test_default_selection_and_unknown_names() -> None:
    assert [spec.name for spec in select_images()] == ["kamailio", "asterisk", "sipp"]
    assert [spec.name for spec in select_images(["sipp", "kamailio6"])] == ["sipp", "kamailio6"]
    with pytest.raises(InputError, match="kamailo") as caught:
        select_images(["kamailo", "sipp"])
    assert "kamailio6" in str(caught.value)


# --- the host's Debian mirror --------------------------------------------------------------


def test_mirror_from_deb822_sources_skips_security(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.debian.org/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example.test/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert host_mirror(tmp_path) == "http://mirror.example.test/debian"


def test_mirror_from_one_line_sources_with_options(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example.test/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example.test/debian trixie main\n"
    )
    assert host_mirror(tmp_path) == "http://one.example.test/debian"


def test_mirror_ignores_other_distributions(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "deb http://archive.ubuntu.com/ubuntu noble main\n"
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
    )
    assert host_mirror(tmp_path) == "http://deb.debian.org/debian"


# --- real images (integration) -------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    connected = Engine.connect()
    yield connected
    connected.close()


@pytest.fixture(scope="module")
def built(engine: Engine) -> list[str]:
    """Build (or find) the default images; the names of those it had to build.

    Offline: a test must not make the engine look for a registry off loopback.
    """
    results = build_images(engine, offline=True)
    return [result.name for result in results if result.status != "up to date"]


def _run_briefly(engine: Engine, image: str, command: list[str], tmp_path: Path) -> tuple[int, str]:
    """Run ``command`` in ``image`` on the host network; (exit status, output).

    The container resolves through 127.0.0.1 only, so nothing it does leaves loopback;
    it is removed whatever happens.
    """
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    container = engine.client.containers.create(
        image,
        command,
        network_mode="host",
        labels=labels.run_labels("test-images"),
        volumes={str(resolv): {"bind": "/etc/resolv.conf", "mode": "ro"}},
    )
    try:
        container.start()
        status = container.wait(timeout=60)
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return int(status["StatusCode"]), output


@dataclass(frozen=True)
class VersionCheck:
    name: str
    command: list[str]
    status: int
    expected: str


VERSION_CHECKS = [
    VersionCheck("kamailio", ["kamailio", "-v"], 0, "version: kamailio 5.6."),
    VersionCheck("asterisk", ["asterisk", "-V"], 0, "Asterisk 22."),
    # sipp -v prints its version then exits with status 99 by design.
    VersionCheck("sipp", ["sipp", "-v"], 99, "SIPp v3."),
]


@pytest.mark.integration
@pytest.mark.parametrize("check", VERSION_CHECKS, ids=lambda check: check.name)
def test_image_runs_its_program(
    engine: Engine, built: list[str], tmp_path: Path, check: VersionCheck
) -> None:
    tag = image_tag(SPECS[check.name])
    image = engine.client.images.get(tag)
    assert image.labels[labels.MANAGED] == "1"
    assert image.labels[labels.RECIPE_HASH] == tag.rsplit(":", 1)[1]
    assert f"sipharness/{check.name}:latest" in image.tags
    exit_status, output = _run_briefly(engine, tag, check.command, tmp_path)
    assert exit_status == check.status, output
    assert check.expected in output
    leftovers = engine.client.containers.list(all=True, filters=labels.run_filter("test-images"))
    assert leftovers == []


@pytest.mark.integration
def test_warm_build_does_nothing_quickly(engine: Engine, built: list[str]) -> None:
    events: list[BuildEvent] = []
    started = time.monotonic()
    results = build_images(engine, offline=True, progress=events.append)
    elapsed = time.monotonic() - started
    assert [result.status for result in results] == ["up to date"] * 3
    assert [event.kind for event in events] == ["done"] * 3
    assert elapsed < 5.0


def _build_containers(engine: Engine) -> set[str]:
    """Containers that are not peers of a run (peers of tests running in parallel
    come and go; a failed build's leftovers would be among the others)."""
    return {
        container.id
        for container in engine.client.containers.list(all=True, ignore_removed=True)
        if labels.RUN not in (container.labels or {})
    }


@pytest.mark.integration
def test_failed_build_reports_its_log_and_leaves_nothing(
    engine: Engine, built: list[str], recipes: Path
) -> None:
    dockerfile = recipes / "sipp" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo about-to-fail && false\n")
    spec = SPECS["sipp"]
    before = _build_containers(engine)
    with pytest.raises(ImageBuildError) as caught:
        build_images(engine, only=["sipp"], recipes_dir=recipes, offline=True)
    assert "building sipp failed" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert any("about-to-fail" in line for line in caught.value.log_tail)
    assert len(caught.value.log_tail) <= 30
    assert _build_containers(engine) == before
    with pytest.raises(docker.errors.ImageNotFound):
        engine.client.images.get(image_tag(spec, recipes_dir=recipes))


@pytest.mark.integration
@pytest.mark.slow
def test_kamailio6_on_trixie(engine: Engine, tmp_path: Path) -> None:
    build_images(engine, only=["kamailio6"], offline=True)
    exit_status, output = _run_briefly(
        engine, image_tag(SPECS["kamailio6"]), ["kamailio", "-v"], tmp_path
    )
    assert exit_status == 0, output
    assert "version: kamailio 6.0." in output


@pytest.mark.integration
def test_cli_build_prints_one_line_per_image_when_not_a_terminal(built: list[str]) -> None:
    result = CliRunner().invoke(app, ["images", "build", "--offline"], env={"CI": "true"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["kamailio", "up", "to"],
        ["asterisk", "up", "to"],
        ["sipp", "up", "to"],
    ]
    assert image_tag(SPECS["asterisk"]) in lines[1]


def test_cli_rejects_an_unknown_image_name() -> None:
    result = CliRunner().invoke(
        app,
        ["images", "build", "--only", "freeswitch"],
        # Names are checked before the engine is contacted, so a dead one does not matter.
        env={"CI": "true", "DOCKER_HOST": "tcp://127.0.0.1:1"},
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown image name(s) freeswitch; known: ")
    assert len(result.output.strip().splitlines()) == 1
