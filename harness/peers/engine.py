"""The connection to the Docker engine, through the Docker SDK only.

The harness never shells out to a ``docker`` command: everything goes through
``docker.from_env()``, so ``DOCKER_HOST`` (and ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``)
choose the engine exactly as they do for the Docker CLI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests

from harness.errors import SetupError

DEFAULT_TIMEOUT = 60.0
"""Seconds the SDK waits for one reply of the engine in ordinary calls."""

CONNECT_TIMEOUT = 5.0
"""Seconds :meth:`Engine.connect` waits for the engine to answer its first ping."""

FIX = (
    "as root on Debian run `./bootstrap.sh setup` (installs docker.io and starts dockerd); "
    "otherwise install Docker and start it, or set DOCKER_HOST to a running engine"
)


def _one_line(text: str, limit: int = 160) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 1] + "…"


def _root_cause(err: BaseException) -> str:
    """The most specific reason in an exception chain (e.g. ``Connection refused``).

    The SDK wraps socket errors in requests and urllib3 errors whose messages run to
    several hundred characters; the operating system's reason is what a user needs.
    """
    reason = _one_line(str(err))
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        current = current.__cause__ or current.__context__
    return reason


def _describe_host(environment: Mapping[str, str]) -> str:
    host = environment.get("DOCKER_HOST", "")
    return f"DOCKER_HOST={host}" if host else "the default socket (DOCKER_HOST unset)"


class EngineUnavailable(SetupError):
    """No Docker engine answers. ``str()`` is one line: what failed, then what to do.

    ``problem`` and ``fix`` hold the two halves for callers that show them apart.
    """

    def __init__(self, where: str, reason: str) -> None:
        self.problem = f"cannot reach the Docker engine at {where} ({reason})"
        self.fix = FIX
        super().__init__(f"{self.problem}; {self.fix}")


@dataclass(frozen=True)
class Engine:
    """A connected Docker engine.

    ``client`` is the high-level SDK client and ``api`` its low-level client; both stay
    valid for the life of the object. ``where`` says which engine it is, for messages.
    """

    client: docker.DockerClient
    where: str
    environment: Mapping[str, str]

    @classmethod
    def connect(
        cls,
        *,
        environment: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Engine:
        """Connect to the engine named by the environment and check that it answers.

        Raises :class:`SetupError` with a one-line message saying what to do when no
        engine answers within :data:`CONNECT_TIMEOUT` seconds or the settings are
        invalid.
        """
        env = dict(os.environ if environment is None else environment)
        where = _describe_host(env)
        try:
            # A short timeout for the first contact, so a dead DOCKER_HOST fails fast.
            probe = docker.DockerClient(
                timeout=int(CONNECT_TIMEOUT), **docker.utils.kwargs_from_env(environment=env)
            )
            probe.ping()
            probe.close()
            client = docker.DockerClient(
                timeout=int(timeout), **docker.utils.kwargs_from_env(environment=env)
            )
        except (docker.errors.DockerException, requests.RequestException, OSError) as err:
            raise EngineUnavailable(where, _root_cause(err)) from err
        return cls(client=client, where=where, environment=env)

    @property
    def api(self) -> docker.APIClient:
        """The low-level SDK client (streaming builds, imports, raw requests)."""
        return self.client.api

    def client_with_timeout(self, timeout: float) -> docker.DockerClient:
        """A second client to the same engine whose calls wait ``timeout`` s per reply.

        The caller closes it. Used for long streaming operations (image builds) whose
        output can pause longer than :data:`DEFAULT_TIMEOUT`.
        """
        try:
            return docker.DockerClient(
                timeout=int(timeout), **docker.utils.kwargs_from_env(environment=self.environment)
            )
        except (docker.errors.DockerException, requests.RequestException, OSError) as err:
            raise EngineUnavailable(self.where, _root_cause(err)) from err

    def version(self) -> str:
        """The engine's version string (e.g. ``20.10.24+dfsg1``)."""
        info: dict[str, Any] = self.client.version()
        return str(info.get("Version", "unknown"))

    def image_exists(self, reference: str) -> bool:
        """Whether the engine holds an image named ``reference`` (``repo:tag`` or id)."""
        try:
            self.client.images.get(reference)
        except docker.errors.ImageNotFound:
            return False
        return True

    def image_labels(self, reference: str) -> dict[str, str] | None:
        """The labels of image ``reference``, or ``None`` when the engine lacks it."""
        try:
            image = self.client.images.get(reference)
        except docker.errors.ImageNotFound:
            return None
        labels = image.labels or {}
        return {str(key): str(value) for key, value in labels.items()}

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()


def connect(*, timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """Shorthand for :meth:`Engine.connect` with the process environment."""
    return Engine.connect(timeout=timeout)
