"""Peer images (Kamailio, Asterisk, SIPp) built from the recipes in ``recipes/``.

Each image is tagged ``sipharness/<name>:<hash>``, where the hash covers its recipe
folder, the ``base`` recipe and the Debian suite it builds on; it is also tagged
``:latest``. A build whose tag already exists does nothing, so a warm
:func:`build_images` costs one engine call per image.

The Debian root an image builds on comes, in this order, from: a local
``debian:<suite>-slim``; a local ``sipharness/rootfs:<suite>`` (made earlier); a pull of
``debian:<suite>-slim`` (unless offline; a registry that does not answer is given up
quickly); ``debootstrap --variant=minbase`` imported as ``sipharness/rootfs:<suite>``
(needs root). The ``base`` recipe on top of that root gives ``sipharness/base:<suite>``.
The root's origin is deliberately not part of the hash: a pulled and a debootstrapped
root are equivalent, and a tag computed from the repository alone can be checked
without the engine holding any base image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker.errors
import requests

from harness.errors import InputError, SetupError
from harness.peers import labels
from harness.peers.engine import Engine

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
REPOSITORY_PREFIX = "sipharness"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HASH_LENGTH = 12

LOG_TAIL_LINES = 30
"""How many of the last build-log lines a failed build's error carries."""

PULL_READ_TIMEOUT = 8.0
"""Seconds a pull may stay silent before the registry is deemed unreachable."""
PULL_DEADLINE = 600.0
DEBOOTSTRAP_DEADLINE = 900.0
BUILD_READ_TIMEOUT = 900.0
"""Seconds one build step may stay silent (a long package configuration)."""
BUILD_DEADLINE = 1800.0

# Bump when the hashing scheme itself changes, so every tag changes with it.
_HASH_SCHEME = b"sipharness-image-v1"

# Debian suite names a host's apt sources may name for the main archive.
_DEBIAN_SUITES = frozenset(
    {
        "buster", "bullseye", "bookworm", "trixie", "forky", "sid",
        "oldstable", "stable", "testing", "unstable",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ImageSpec:
    """One image the harness can build.

    ``name`` is what users type (``--only kamailio``); ``recipe`` is the folder under
    ``recipes/``; ``suite`` the Debian suite of its base; ``default`` whether a plain
    build makes it.
    """

    name: str
    recipe: str
    suite: str
    default: bool
    summary: str

    @property
    def repository(self) -> str:
        """The image repository, ``sipharness/<name>``."""
        return f"{REPOSITORY_PREFIX}/{self.name}"


IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("kamailio", "kamailio", "bookworm", default=True, summary="Kamailio 5.6"),
    ImageSpec("asterisk", "asterisk", "sid", default=True, summary="Asterisk 22"),
    ImageSpec("sipp", "sipp", "bookworm", default=True, summary="SIPp (sip-tester)"),
    ImageSpec("kamailio6", "kamailio", "trixie", default=False, summary="Kamailio 6.0"),
)
"""Every image; those with ``default=False`` are built only when named."""


@dataclass(frozen=True)
class ImageResult:
    """What :func:`build_images` did for one image (or one base it had to make)."""

    name: str
    tag: str
    status: Literal["built", "up to date", "pulled", "bootstrapped"]
    seconds: float


@dataclass(frozen=True)
class BuildEvent:
    """A progress report: ``start`` and ``done`` once per step, ``log`` per output line."""

    image: str
    kind: Literal["start", "log", "done"]
    text: str
    result: ImageResult | None = None
    """Set on ``done`` events: what the step made."""


ProgressCallback = Callable[[BuildEvent], None]


class ImageBuildError(SetupError):
    """An image could not be made. ``str()`` is one line; ``log_tail`` the last log lines."""

    def __init__(self, message: str, *, log_tail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.log_tail: tuple[str, ...] = tuple(log_tail)


def _ignore(_: BuildEvent) -> None:
    """The progress callback used when the caller gives none."""


# --- tags ------------------------------------------------------------------------------


def _recipe_files(folder: Path) -> Iterator[tuple[str, bytes]]:
    if not folder.is_dir():
        raise SetupError(f"image recipe folder {folder} is missing; reinstall sip-harness")
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path.relative_to(folder).as_posix(), path.read_bytes()


def _hash_folder(digest: Any, label: str, folder: Path) -> None:
    # Names and lengths are framed so that moving bytes between files changes the hash.
    digest.update(f"folder\0{label}\0".encode())
    for name, content in _recipe_files(folder):
        digest.update(f"file\0{name}\0{len(content)}\0".encode())
        digest.update(content)


def base_hash(suite: str, *, recipes_dir: Path = RECIPES_DIR) -> str:
    """The hash of ``sipharness/base:<suite>``: the ``base`` recipe and the suite."""
    digest = hashlib.sha256(_HASH_SCHEME)
    digest.update(f"\0suite\0{suite}\0".encode())
    _hash_folder(digest, "base", recipes_dir / "base")
    return digest.hexdigest()[:HASH_LENGTH]


def recipe_hash(spec: ImageSpec, *, recipes_dir: Path = RECIPES_DIR) -> str:
    """The first 12 hex digits of a sha256 over the image's recipe, its base and suite.

    Equal recipe files (names and contents) and suite give an equal hash; any change
    to a file of the image's recipe or of the base recipe gives a different one.
    """
    digest = hashlib.sha256(_HASH_SCHEME)
    digest.update(f"\0base\0{base_hash(spec.suite, recipes_dir=recipes_dir)}\0".encode())
    _hash_folder(digest, "recipe", recipes_dir / spec.recipe)
    return digest.hexdigest()[:HASH_LENGTH]


def image_tag(spec: ImageSpec, *, recipes_dir: Path = RECIPES_DIR) -> str:
    """The full reference ``sipharness/<name>:<hash>`` of the image ``spec`` describes."""
    return f"{spec.repository}:{recipe_hash(spec, recipes_dir=recipes_dir)}"


def select_images(only: Sequence[str] = ()) -> list[ImageSpec]:
    """The default images when ``only`` is empty, else the named ones in ``IMAGES`` order.

    Raises :class:`InputError` naming every unknown name.
    """
    known = {spec.name for spec in IMAGES}
    unknown = sorted(set(only) - known)
    if unknown:
        raise InputError(
            f"unknown image name(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    if not only:
        return [spec for spec in IMAGES if spec.default]
    return [spec for spec in IMAGES if spec.name in only]


def image_present(engine: Engine, spec: ImageSpec, *, recipes_dir: Path = RECIPES_DIR) -> bool:
    """Whether the engine holds the image built from the current recipe of ``spec``."""
    return engine.image_exists(image_tag(spec, recipes_dir=recipes_dir))


# --- the host's Debian mirror ------------------------------------------------------------


def _source_stanzas(apt_dir: Path) -> Iterator[tuple[str, list[str]]]:
    """(URI, suites) pairs of ``deb`` entries in one-line and deb822 apt sources."""
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for raw in path.read_text(errors="replace").splitlines():
            words = raw.split("#", 1)[0].split()
            if words[:1] != ["deb"]:
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                # Options in brackets may contain spaces: skip to the closing bracket.
                while words and not words[0].endswith("]"):
                    words = words[1:]
                words = words[1:]
            if len(words) >= 2:
                yield words[0], [words[1]]
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            suites = fields.get("suites", "").split()
            for uri in fields.get("uris", "").split():
                yield uri, suites


def host_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive the host's apt uses, or :data:`DEFAULT_MIRROR`.

    The first ``deb`` source naming a Debian suite (not its security archive) wins, so
    images come from the same mirror (or frozen snapshot) as the host's packages.
    """
    for uri, suites in _source_stanzas(apt_dir):
        if "security" in uri:
            continue
        if any(suite in _DEBIAN_SUITES for suite in suites):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


# --- running things with a deadline --------------------------------------------------------


def _run_logged(
    argv: Sequence[str], *, step: str, progress: ProgressCallback, deadline: float
) -> None:
    """Run ``argv``, reporting each output line; kill it after ``deadline`` seconds."""
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    killed = threading.Event()
    try:
        process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace", stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as err:
        raise ImageBuildError(f"{step}: cannot run {argv[0]}: {err}") from err

    def kill() -> None:
        killed.set()
        process.kill()

    watchdog = threading.Timer(deadline, kill)
    watchdog.start()
    try:
        assert process.stdout is not None  # guaranteed by stdout=PIPE
        for line in process.stdout:
            text = line.rstrip()
            tail.append(text)
            progress(BuildEvent(step, "log", text))
        # stdout is at EOF: the process has closed it and is exiting.
        code = process.wait(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
    if killed.is_set():
        raise ImageBuildError(
            f"{step}: {Path(argv[0]).name} took longer than {deadline:.0f} s and was stopped",
            log_tail=tail,
        )
    if code != 0:
        raise ImageBuildError(
            f"{step}: {Path(argv[0]).name} exited with status {code}", log_tail=tail
        )


# --- Debian roots ----------------------------------------------------------------------------


def _try_pull(
    engine: Engine, repository: str, tag: str, *, step: str, progress: ProgressCallback
) -> bool:
    """Pull ``repository:tag``; False (reported, not raised) when no registry delivers it."""
    api = engine.api
    # The SDK's pull() waits without a timeout; a raw request with a read timeout lets a
    # registry that does not answer (blackholed network) fail in seconds, not minutes.
    url = f"{api.base_url}/v{api.api_version}/images/create"
    started = time.monotonic()
    try:
        with api.post(
            url, params={"fromImage": repository, "tag": tag}, stream=True,
            timeout=(PULL_READ_TIMEOUT, PULL_READ_TIMEOUT),
        ) as response:  # fmt: skip
            if response.status_code != 200:
                reason = _engine_message(response.text)
                progress(BuildEvent(step, "log", f"no registry answers: {reason}"))
                return False
            for raw in response.iter_lines():
                if time.monotonic() - started > PULL_DEADLINE:
                    progress(BuildEvent(step, "log", "pull is too slow; giving up"))
                    return False
                item = _decode(raw)
                if "error" in item:
                    progress(BuildEvent(step, "log", f"pull failed: {item['error']}"))
                    return False
                status = item.get("status")
                if status:
                    progress(BuildEvent(step, "log", str(status)))
    except requests.RequestException as err:
        progress(BuildEvent(step, "log", f"no registry answers: {type(err).__name__}"))
        return False
    return engine.image_exists(f"{repository}:{tag}")


def _engine_message(body: str) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:200]
    if isinstance(decoded, dict) and "message" in decoded:
        return " ".join(str(decoded["message"]).split())[:200]
    return " ".join(body.split())[:200]


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except ValueError:
        return {"stream": raw.decode(errors="replace")}
    return item if isinstance(item, dict) else {}


def _slim_rootfs(root: Path) -> None:
    """Drop what a ``-slim`` image also lacks: package caches and index files."""
    for folder in (root / "var/cache/apt", root / "var/lib/apt/lists"):
        if folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def _bootstrap_root(engine: Engine, suite: str, *, mirror: str, progress: ProgressCallback) -> str:
    """debootstrap ``suite`` and import it as ``sipharness/rootfs:<suite>``."""
    step = f"rootfs:{suite}"
    if os.geteuid() != 0:
        raise SetupError(
            f"no debian:{suite}-slim image and no registry to pull it from; making one with "
            "debootstrap needs root: run `sudo .venv/bin/sipharness images build`, or "
            f"load debian:{suite}-slim into the engine first"
        )
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    tar = shutil.which("tar")
    if debootstrap is None or tar is None:
        raise SetupError(
            f"no debian:{suite}-slim image and no registry to pull it from; install "
            "debootstrap (apt-get install debootstrap) so the harness can make one"
        )
    repository = f"{REPOSITORY_PREFIX}/rootfs"
    with tempfile.TemporaryDirectory(prefix=f"sipharness-{suite}-") as tmp:
        root = Path(tmp) / "root"
        progress(BuildEvent(step, "log", f"debootstrap {suite} from {mirror}"))
        _run_logged(
            [debootstrap, "--variant=minbase", suite, str(root), mirror],
            step=step, progress=progress, deadline=DEBOOTSTRAP_DEADLINE,
        )  # fmt: skip
        _slim_rootfs(root)
        tarball = Path(tmp) / "root.tar"
        # Numeric owners and tar's defaults keep ids, modes and device nodes as they are.
        _run_logged(
            [tar, "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."],
            step=step, progress=progress, deadline=DEBOOTSTRAP_DEADLINE,
        )  # fmt: skip
        progress(BuildEvent(step, "log", "importing into the engine"))
        changes = [
            *(f"LABEL {key}={value}" for key, value in labels.managed_labels().items()),
            f"LABEL {labels.IMAGE}=rootfs",
            'CMD ["/bin/bash"]',
        ]
        try:
            # A local import of a few hundred MiB; the SDK gives it no timeout.
            engine.api.import_image(
                src=str(tarball), repository=repository, tag=suite, changes=changes
            )
        except (docker.errors.DockerException, requests.RequestException) as err:
            raise ImageBuildError(f"{step}: importing the root file system failed: {err}") from err
    return f"{repository}:{suite}"


@dataclass
class _Builder:
    engine: Engine
    offline: bool
    progress: ProgressCallback
    recipes_dir: Path
    mirror: str | None
    results: list[ImageResult] = field(default_factory=list)
    bases: dict[str, str] = field(default_factory=dict)

    def root(self, suite: str) -> str:
        for reference in (f"debian:{suite}-slim", f"{REPOSITORY_PREFIX}/rootfs:{suite}"):
            if self.engine.image_exists(reference):
                return reference
        step = f"rootfs:{suite}"
        started = time.monotonic()
        self.progress(BuildEvent(step, "start", f"Debian {suite} root"))
        status: Literal["pulled", "bootstrapped"]
        if not self.offline and _try_pull(
            self.engine, "debian", f"{suite}-slim", step=step, progress=self.progress
        ):
            reference, status = f"debian:{suite}-slim", "pulled"
        else:
            mirror = self.mirror or host_mirror()
            reference = _bootstrap_root(self.engine, suite, mirror=mirror, progress=self.progress)
            status = "bootstrapped"
        self._finish(ImageResult(step, reference, status, time.monotonic() - started))
        return reference

    def base(self, suite: str) -> str:
        if suite in self.bases:
            return self.bases[suite]
        reference = f"{REPOSITORY_PREFIX}/base:{suite}"
        wanted = base_hash(suite, recipes_dir=self.recipes_dir)
        current = self.engine.image_labels(reference)
        if current is None or current.get(labels.RECIPE_HASH) != wanted:
            root = self.root(suite)
            step = f"base:{suite}"
            started = time.monotonic()
            self.progress(BuildEvent(step, "start", f"base image on {root}"))
            _docker_build(
                self.engine, step=step, path=self.recipes_dir / "base",
                repository=f"{REPOSITORY_PREFIX}/base", tags=(suite,),
                buildargs={"ROOT": root},
                image_labels={labels.IMAGE: "base", labels.RECIPE_HASH: wanted},
                progress=self.progress,
            )  # fmt: skip
            self._finish(ImageResult(step, reference, "built", time.monotonic() - started))
        self.bases[suite] = reference
        return reference

    def image(self, spec: ImageSpec) -> None:
        started = time.monotonic()
        digest = recipe_hash(spec, recipes_dir=self.recipes_dir)
        tag = f"{spec.repository}:{digest}"
        if self.engine.image_exists(tag):
            # Re-point :latest in case another checkout's build moved it.
            self.engine.api.tag(tag, spec.repository, "latest")
            self._finish(ImageResult(spec.name, tag, "up to date", time.monotonic() - started))
            return
        base = self.base(spec.suite)
        # Timed from here: the root and base it needed have result lines of their own.
        started = time.monotonic()
        self.progress(BuildEvent(spec.name, "start", spec.summary))
        _docker_build(
            self.engine, step=spec.name, path=self.recipes_dir / spec.recipe,
            repository=spec.repository, tags=(digest, "latest"),
            buildargs={"BASE": base},
            image_labels={labels.IMAGE: spec.name, labels.RECIPE_HASH: digest},
            progress=self.progress,
        )  # fmt: skip
        self._finish(ImageResult(spec.name, tag, "built", time.monotonic() - started))

    def _finish(self, result: ImageResult) -> None:
        self.results.append(result)
        self.progress(BuildEvent(result.name, "done", result.status, result))


def _build_lines(items: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """("log", line) for output, ("error", message) for a failure, ("id", id) at the end."""
    for item in items:
        if "error" in item:
            yield "error", " ".join(str(item["error"]).split())
        elif "stream" in item:
            for line in str(item["stream"]).splitlines():
                if line.strip():
                    yield "log", line.rstrip()
        elif "status" in item:
            yield "log", str(item["status"])
        aux = item.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            yield "id", str(aux["ID"])


def _docker_build(
    engine: Engine,
    *,
    step: str,
    path: Path,
    repository: str,
    tags: Sequence[str],
    buildargs: dict[str, str],
    image_labels: dict[str, str],
    progress: ProgressCallback,
) -> str:
    """Build ``path`` and tag it ``repository:<tag>`` for every tag; return the image id."""
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    client = engine.client_with_timeout(BUILD_READ_TIMEOUT)
    image_id: str | None = None
    started = time.monotonic()
    try:
        # forcerm: a failed build leaves no intermediate containers behind. The build
        # runs on the engine's default (bridge) network, which reaches the mirror.
        stream = client.api.build(
            path=str(path), tag=f"{repository}:{tags[0]}", rm=True, forcerm=True,
            pull=False, buildargs=buildargs, decode=True,
            labels={**labels.managed_labels(), **image_labels},
        )  # fmt: skip
        for kind, text in _build_lines(stream):
            if kind == "error":
                tail.append(text)
                raise ImageBuildError(f"building {step} failed: {text}", log_tail=tail)
            if kind == "id":
                image_id = text
                continue
            tail.append(text)
            progress(BuildEvent(step, "log", text))
            if time.monotonic() - started > BUILD_DEADLINE:
                raise ImageBuildError(
                    f"building {step} took longer than {BUILD_DEADLINE:.0f} s; stopped",
                    log_tail=tail,
                )
        reference = f"{repository}:{tags[0]}"
        if image_id is None:
            image_id = str(client.images.get(reference).id)
        for tag in tags[1:]:
            client.api.tag(image_id, repository, tag)
    except (docker.errors.DockerException, requests.RequestException) as err:
        raise ImageBuildError(
            f"building {step} failed: {' '.join(str(err).split())}", log_tail=tail
        ) from err
    finally:
        client.close()
    return image_id


def build_images(
    engine: Engine,
    *,
    offline: bool = False,
    progress: ProgressCallback | None = None,
    only: Sequence[str] = (),
    recipes_dir: Path = RECIPES_DIR,
    mirror: str | None = None,
) -> list[ImageResult]:
    """Make sure the images named by ``only`` (default: the default ones) exist.

    Returns one result per image in ``IMAGES`` order, preceded by a result for each
    Debian root or base image it had to make on the way. ``offline`` skips registry
    pulls. ``mirror`` overrides the Debian mirror debootstrap uses (default: the
    host's, see :func:`host_mirror`). Raises :class:`InputError` for an unknown name
    and :class:`ImageBuildError` (a :class:`SetupError`) when an image cannot be made.
    """
    specs = select_images(only)
    builder = _Builder(
        engine=engine, offline=offline, progress=progress or _ignore,
        recipes_dir=recipes_dir, mirror=mirror,
    )  # fmt: skip
    for spec in specs:
        builder.image(spec)
    return builder.results
