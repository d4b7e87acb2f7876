"""Where capture and checks plug into a scenario run.

* A scenario's ``capture`` is a context manager around the whole scenario that yields
  the path of the pcap it records, or None. :func:`no_capture` records nothing;
  :func:`live_capture_factory` records the loopback traffic of the profile's peers
  (:mod:`harness.capture.live`), started before the first step and stopped after
  the clean-up.
* :func:`attach_findings` is called with the record, the pcap and the number once a
  captured scenario has ended: it decodes the capture, runs the checks, and puts the
  findings, the captured messages, the ladder and tshark's RTP figures in the record
  (:func:`harness.evidence.fill_record`). Findings are evidence: they do not change
  the scenario's verdict (a negative scenario expects some checks to fail).
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from harness.capture.live import LiveCapture
from harness.errors import HarnessError, SetupError
from harness.evidence import analyze_capture, fill_record
from harness.numbers import NumberConfig
from harness.results import ScenarioRecord, Step

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


@contextlib.contextmanager
def no_capture(record_id: str) -> Iterator[Path | None]:
    """The capture seam's default: nothing is captured (yields None)."""
    del record_id
    yield None


def pcap_name(record_id: str) -> str:
    """A file name for a record's capture.

    ``register[registrar-udp]`` gives ``register--registrar-udp.pcap``.
    """
    return _UNSAFE.sub("--", record_id).strip("-") + ".pcap"


def live_capture_factory(
    folder: Path, hosts: Sequence[str], *, interface: str = "lo"
) -> Callable[[str], AbstractContextManager[Path | None]]:
    """A capture seam recording, per scenario, the traffic of ``hosts`` on ``interface``.

    Raises :class:`~harness.errors.SetupError` (one line) when a capture cannot start
    (no permission, no such interface).
    """
    chosen = sorted(set(hosts))

    @contextlib.contextmanager
    def capture(record_id: str) -> Iterator[Path | None]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / pcap_name(record_id)
        with LiveCapture(path, interface=interface, hosts=chosen):
            yield path

    return capture


def interface_for(address: str) -> str:
    """The network interface that holds the local IPv4 ``address`` (``lo`` for
    loopback addresses); a one-line SetupError when none does."""
    if address.startswith("127.") or address == "::1":
        return "lo"
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # no IPv4 address on this interface
        if socket.inet_ntoa(answer[20:24]) == address:
            return name
    raise SetupError(
        f"no network interface holds {address}: turn capture off with --no-capture, "
        "or pass --local-ip with an address of this machine"
    )


def attach_findings(
    record: ScenarioRecord,
    capture_path: Path,
    number: NumberConfig,
    *,
    local_addresses: Sequence[str] | None = None,
) -> None:
    """Add the checks' findings, messages, ladder and RTP figures of ``capture_path``.

    Never raises because of what the capture holds (a check that fails to run is an
    ``error`` finding); ``number`` may hold the password, the record never does.
    ``local_addresses`` are the platform's own IPs (guessed from the capture if None).
    """
    try:
        analysis = analyze_capture(capture_path, number, local_addresses=local_addresses)
    except HarnessError as err:
        record.steps.append(
            Step(name="capture", status="error", detail=f"the capture could not be read: {err}")
        )
        return
    fill_record(record, analysis, secrets=[number.password])
