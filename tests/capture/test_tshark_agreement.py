"""Agreement with tshark: same SIP messages, same (Call-ID, CSeq, method or status).

Runs on a generated capture of a few hundred mixed UDP/TCP messages and on the
captures recorded from real SIPp traffic in ``data/`` (see ``data/record_sipp.py``).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from harness.capture import Decoded, decode_capture
from harness.sip.message import Request
from tests.capture.builders import (
    CaptureBuilder,
    TcpConnection,
    invite_dialog,
    options_ping,
    register_dialog,
)

DATA = Path(__file__).parent / "data"
TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

Key = tuple[str, str, str]


def tshark_keys(path: Path, display_filter: str = "sip") -> Counter[Key]:
    """(Call-ID, CSeq, method or status) of every SIP message tshark finds.

    ``display_filter`` selects the frames (it should imply ``sip``).
    """
    assert TSHARK is not None
    done = subprocess.run(
        [
            TSHARK,
            "-n",
            "-r",
            str(path),
            "-Y",
            display_filter,
            "-o",
            "sdp.establish_conversation:FALSE",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
            "-e",
            "sip.Call-ID",
            "-e",
            "sip.CSeq",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    keys: Counter[Key] = Counter()
    for line in done.stdout.splitlines():
        call_ids, cseqs, methods, statuses = [*line.split("\t"), "", "", "", ""][:4]
        # One frame can carry several messages over TCP: values are joined per field.
        # A response has no sip.Method, so pair statuses and methods by message kind.
        cseq_list = cseqs.split("|")
        method_list = [m for m in methods.split("|") if m]
        status_list = [s for s in statuses.split("|") if s]
        for call_id, cseq in zip(call_ids.split("|"), cseq_list, strict=True):
            # tshark lists request methods then statuses in message order per field;
            # a frame mixing both is resolved by the CSeq method of requests.
            if method_list and method_list[0] == cseq.split()[-1]:
                keys[(call_id, cseq, method_list.pop(0))] += 1
            else:
                keys[(call_id, cseq, status_list.pop(0))] += 1
    return keys


def our_keys(path: Path) -> Counter[Key]:
    decoded = decode_capture(path)
    assert not any(i.kind == "internal-error" for i in decoded.issues)
    return decoded_keys(decoded)


def decoded_keys(decoded: Decoded) -> Counter[Key]:
    """(Call-ID, CSeq, method or status) of every message the decoder found."""
    keys: Counter[Key] = Counter()
    for m in decoded.messages:
        msg = m.message
        cseq = msg.headers.get("CSeq") or ""
        what = msg.method if isinstance(msg, Request) else str(msg.status)
        keys[(msg.call_id or "", " ".join(cseq.split()), what)] += 1
    return keys


def mixed_capture(path: Path, seed: int = 7) -> int:
    """A few hundred UDP and TCP messages, interleaved, some TCP messages split."""
    rng = random.Random(seed)
    cap = CaptureBuilder()
    count = 0
    for n in range(40):
        a = (f"127.0.1.{1 + n % 3}", 5060 + n % 2)
        b = ("127.0.2.1", rng.choice([5060, 5065, 5080]))
        kind = n % 4
        if kind == 3:  # a TCP connection carrying a call and a registration
            client = (a[0], 50100 + n)
            conn = TcpConnection(cap, client, b)
            conn.handshake()
            msgs = invite_dialog(f"tcp-call-{n}", client, b, transport="TCP")
            msgs += register_dialog(f"tcp-reg-{n}", client, b, transport="TCP")
            pending: list[bytes] = []
            for i, (src, _dst, payload) in enumerate(msgs):
                pending.append(payload)
                same_next = i + 1 < len(msgs) and msgs[i + 1][0] == src
                if same_next and rng.random() < 0.5:
                    continue  # coalesce with the next message
                # Split only lone messages: tshark 4.0 misses a message whose first
                # few bytes end a segment that also holds a complete message (it cannot
                # see the start line to ask for more), which this decoder handles.
                pieces = 1 if len(pending) > 1 else rng.choice([1, 1, 2, 3])
                conn.send(src, b"".join(pending), pieces=pieces)
                pending.clear()
            count += len(msgs)
            conn.close()
        else:
            make = [invite_dialog, register_dialog, options_ping][kind]
            for src, dst, payload in make(f"udp-{n}", a, b):
                cap.udp(src, dst, payload)
                count += 1
    cap.save(path)
    return count


def test_generated_mixed_capture_agrees_with_tshark(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcap"
    expected = mixed_capture(path)
    assert expected > 200
    ours = our_keys(path)
    assert sum(ours.values()) == expected
    assert ours == tshark_keys(path)


@pytest.mark.parametrize("name", ["sipp_udp_lo.pcapng", "sipp_tcp_any.pcap"])
def test_recorded_sipp_capture_agrees_with_tshark(name: str) -> None:
    path = DATA / name
    ours = our_keys(path)
    assert sum(ours.values()) == 30  # 5 calls x INVITE/100/180/200/ACK/BYE... (see README)
    assert ours == tshark_keys(path)
