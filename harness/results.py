"""The results of a run: the one shape that ``run``, ``probe`` and ``analyze`` write
(``results.json``) and that every report renders from.

The JSON Schema of this shape is ``reports/results.schema.json``; bump
:data:`SCHEMA_VERSION` on an incompatible change and teach :func:`upgrade` to read
the older shape, so that ``sipharness report`` still renders old results.

What a caller may rely on:

* :class:`RunResults` holds run-level facts (tool version, command, number in its
  public form — never a password —, profiles, peers, start time, duration) and one
  :class:`ScenarioRecord` per scenario × profile (or per probe stage, or one for an
  analysed capture).
* Every record has a verdict (``pass``/``fail``/``error``/``skip``), its steps, the
  agent's event stream, the findings of the checks, the captured messages and a
  ladder, RTP figures, the path of its pcap, and peer logs when it did not pass.
* :meth:`RunResults.to_dict` gives plain JSON types; :func:`load_results` reads a
  file back, one-line :class:`~harness.errors.InputError` when it is not ours.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from harness import __version__
from harness.errors import InputError

SCHEMA_VERSION: Final = 1


class Verdict(StrEnum):
    """A scenario's verdict.

    ``fail``: the peer or the configuration does not do what the scenario expects;
    ``error``: the harness could not run the scenario (a peer died, set-up failed);
    ``skip``: the scenario does not apply (with a reason).
    """

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


#: Order used wherever records are listed for a person: failures first.
VERDICT_ORDER: Final = {Verdict.FAIL: 0, Verdict.ERROR: 1, Verdict.PASS: 2, Verdict.SKIP: 3}


@dataclass
class Step:
    """One step of a scenario (or one stage of a probe)."""

    name: str
    status: str  # "pass" | "fail" | "error" | "skip"
    detail: str = ""
    started_s: float = 0.0  # offset from the record's start
    duration_s: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Event:
    """One entry of the agent's event stream (a SIP message sent or received, or a note)."""

    t: float  # seconds from the record's start
    kind: str  # "sip" | "garbage" | "timeout" | "transport-error" | "note"
    direction: str = ""  # "out" | "in" | ""
    transport: str = ""
    local: str = ""
    remote: str = ""
    summary: str = ""
    text: str = ""  # the message as text, redacted


@dataclass
class EvidenceRef:
    """A message that proves a finding: index into the record's messages, capture frame."""

    index: int | None
    frame: int | None
    time: float | None
    summary: str


@dataclass
class FindingRecord:
    """A check's outcome on a record's capture."""

    id: str
    title: str
    severity: str  # "error" | "warning" | "info"
    outcome: str  # "pass" | "fail" | "not_applicable" | "error"
    rfc: str
    remediation: str
    detail: str = ""
    evidence: list[EvidenceRef] = field(default_factory=list)


@dataclass
class MessageRecord:
    """A captured SIP message, for ladders and evidence."""

    index: int
    time: float  # seconds from the capture's first message
    src: str
    dst: str
    transport: str
    label: str  # method, or "status reason"
    summary: str
    text: str = ""  # redacted text of the message
    frame: int | None = None


@dataclass
class Arrow:
    """One arrow of a ladder diagram."""

    src: int  # participant index
    dst: int
    label: str
    time: float
    transport: str
    message: int | None = None  # index into messages


@dataclass
class LadderRecord:
    participants: list[str] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)


@dataclass
class ScenarioRecord:
    """The outcome of one scenario on one profile."""

    scenario: str
    profile: str
    verdict: Verdict
    title: str = ""
    reason: str = ""
    duration_s: float = 0.0
    started_at: str = ""
    steps: list[Step] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    findings: list[FindingRecord] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)
    ladder: LadderRecord = field(default_factory=LadderRecord)
    rtp: list[dict[str, Any]] = field(default_factory=list)
    pcap: str | None = None
    peer_logs: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The readable id used in pytest and JUnit: ``register[proxy-tcp-5065]``."""
        return f"{self.scenario}[{self.profile}]"

    @property
    def failed_findings(self) -> list[FindingRecord]:
        return [f for f in self.findings if f.outcome in ("fail", "error")]


@dataclass
class PeerInfo:
    profile: str
    role: str
    kind: str  # "kamailio" | "asterisk" | "sipp" | "trunk"
    version: str = ""
    address: str = ""
    port: int = 0
    transport: str = ""


@dataclass
class RunResults:
    """Everything one command produced."""

    command: str  # "run" | "probe" | "analyze"
    started_at: str
    duration_s: float = 0.0
    number: dict[str, Any] | None = None
    profiles: list[str] = field(default_factory=list)
    peers: list[PeerInfo] = field(default_factory=list)
    records: list[ScenarioRecord] = field(default_factory=list)
    tool_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    def counts(self) -> dict[str, int]:
        """Records per verdict, with ``total``."""
        out = {v.value: 0 for v in Verdict}
        for record in self.records:
            out[record.verdict.value] += 1
        out["total"] = len(self.records)
        return out

    @property
    def ok(self) -> bool:
        """True when no record failed or errored."""
        return all(r.verdict in (Verdict.PASS, Verdict.SKIP) for r in self.records)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tool"] = {"name": "sip-harness", "version": data.pop("tool_version")}
        data["summary"] = self.counts()
        for record in data["records"]:
            record["verdict"] = str(record["verdict"])
        # schema_version first, for people reading the file.
        return {"schema_version": data.pop("schema_version"), **data}

    def write(self, path: Path) -> Path:
        """Write ``results.json`` atomically (a reader never sees half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResults:
        data = upgrade(dict(data))
        tool = data.get("tool") or {}
        records = [_record_from_dict(r) for r in data.get("records", [])]
        return cls(
            command=str(data.get("command", "")),
            started_at=str(data.get("started_at", "")),
            duration_s=float(data.get("duration_s", 0.0)),
            number=data.get("number"),
            profiles=list(data.get("profiles", [])),
            peers=[PeerInfo(**p) for p in data.get("peers", [])],
            records=records,
            tool_version=str(tool.get("version", "")),
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
        )


def _record_from_dict(data: dict[str, Any]) -> ScenarioRecord:
    ladder = data.get("ladder") or {}
    return ScenarioRecord(
        scenario=str(data["scenario"]),
        profile=str(data["profile"]),
        verdict=Verdict(data["verdict"]),
        title=str(data.get("title", "")),
        reason=str(data.get("reason", "")),
        duration_s=float(data.get("duration_s", 0.0)),
        started_at=str(data.get("started_at", "")),
        steps=[Step(**s) for s in data.get("steps", [])],
        events=[Event(**e) for e in data.get("events", [])],
        findings=[
            FindingRecord(
                **{k: v for k, v in f.items() if k != "evidence"},
                evidence=[EvidenceRef(**e) for e in f.get("evidence", [])],
            )
            for f in data.get("findings", [])
        ],
        messages=[MessageRecord(**m) for m in data.get("messages", [])],
        ladder=LadderRecord(
            participants=list(ladder.get("participants", [])),
            arrows=[Arrow(**a) for a in ladder.get("arrows", [])],
        ),
        rtp=list(data.get("rtp", [])),
        pcap=data.get("pcap"),
        peer_logs=dict(data.get("peer_logs", {})),
    )


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older ``results.json`` shape up to :data:`SCHEMA_VERSION`.

    Version 1 is the first; later versions add their conversions here.
    """
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise InputError("results file has no valid schema_version")
    if version > SCHEMA_VERSION:
        raise InputError(
            f"results file has schema_version {version}, newer than this harness "
            f"understands ({SCHEMA_VERSION}); upgrade sip-harness"
        )
    return data


def load_results(path: Path) -> RunResults:
    """Read a ``results.json``; a one-line InputError naming the file when it is not one."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not JSON (line {err.lineno}: {err.msg})") from None
    if not isinstance(raw, dict) or "records" not in raw:
        raise InputError(f"{path}: not a sip-harness results file (no records)")
    try:
        return RunResults.from_dict(raw)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: malformed results file ({err!s})") from None
