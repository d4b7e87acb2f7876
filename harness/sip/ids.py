"""Branch, tag, Call-ID and initial CSeq generation from an injected random source.

The core never reaches for a global random generator: callers pass anything with
``getrandbits`` (``random.Random(seed)`` in tests, ``random.SystemRandom()`` in the
agent), so a test can replay the exact identifiers of a run.

Every value is lower-case hexadecimal, which is a valid SIP ``token`` (RFC 3261
§25.1) and therefore valid in a branch, a tag and a Call-ID.
"""

from __future__ import annotations

from typing import Final, Protocol

#: RFC 3261 §8.1.1.7: a branch starting with this cookie was made by an RFC 3261 element.
MAGIC_COOKIE: Final = "z9hG4bK"

#: Bits of randomness in each kind of identifier.  RFC 3261 asks for at least 32 bits
#: in a tag (§19.3) and for global uniqueness of Call-IDs and branches; 64 and 128 bits
#: keep collisions out of reach across long soak runs.
BRANCH_BITS: Final = 64
TAG_BITS: Final = 64
CALL_ID_BITS: Final = 128


class RandomSource(Protocol):
    """What the generators need: ``random.Random`` and ``random.SystemRandom`` fit."""

    def getrandbits(self, k: int, /) -> int: ...


def _hex(rng: RandomSource, bits: int) -> str:
    return format(rng.getrandbits(bits), f"0{bits // 4}x")


def new_branch(rng: RandomSource) -> str:
    """A Via branch: the magic cookie followed by 64 random bits in hex."""
    return MAGIC_COOKIE + _hex(rng, BRANCH_BITS)


def new_tag(rng: RandomSource) -> str:
    """A From/To tag: 64 random bits in hex."""
    return _hex(rng, TAG_BITS)


def new_call_id(rng: RandomSource, host: str | None = None) -> str:
    """A Call-ID: 128 random bits in hex, with ``@host`` appended when a host is given."""
    local = _hex(rng, CALL_ID_BITS)
    return f"{local}@{host}" if host else local


def new_cseq(rng: RandomSource) -> int:
    """An initial CSeq number: 1 to 2**31 - 1 (RFC 3261 §8.1.1.5 requires < 2**31)."""
    # 30 random bits plus one keeps the value positive, under 2**31, and leaves room
    # for the dialog to count up a long time before reaching the limit.
    return rng.getrandbits(30) + 1


def is_rfc3261_branch(branch: str | None) -> bool:
    """True when ``branch`` starts with the magic cookie (RFC 3261 §8.1.1.7)."""
    return branch is not None and branch.startswith(MAGIC_COOKIE)


class IdGenerator:
    """The four generators bound to one random source, for injection into dialogs."""

    __slots__ = ("_rng",)

    def __init__(self, rng: RandomSource) -> None:
        self._rng = rng

    def branch(self) -> str:
        return new_branch(self._rng)

    def tag(self) -> str:
        return new_tag(self._rng)

    def call_id(self, host: str | None = None) -> str:
        return new_call_id(self._rng, host)

    def cseq(self) -> int:
        return new_cseq(self._rng)
