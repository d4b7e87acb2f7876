"""G.711 µ-law (PCMU) and A-law (PCMA) encoding and decoding (ITU-T G.711).

Pure functions over 16-bit signed linear samples; the tables are built once at
import time so that encoding 160 samples (20 ms at 8 kHz) is a table look-up each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

_BIAS = 0x84
_ULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for index, end in enumerate(ends):
        if value <= end:
            return index
    return len(ends)


def _linear_to_ulaw(sample: int) -> int:
    # The reference algorithm works on 14 bits, the low bits floored away.
    pcm = sample >> 2
    mask = 0xFF
    if pcm < 0:
        pcm = -pcm
        mask = 0x7F
    pcm = min(pcm, 8159) + (_BIAS >> 2)
    segment = _segment(pcm, _ULAW_SEGMENT_ENDS)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((pcm >> (segment + 1)) & 0x0F)) ^ mask


def _ulaw_to_linear(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if sign else magnitude


def _linear_to_alaw(sample: int) -> int:
    # The reference algorithm works on 13 bits; negative values are offset by one.
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    segment = _segment(pcm, _ALAW_SEGMENT_ENDS)
    if segment >= 8:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    return ((segment << 4) | ((pcm >> shift) & 0x0F)) ^ mask


def _alaw_to_linear(byte: int) -> int:
    byte ^= 0x55
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    if exponent == 0:
        magnitude = (mantissa << 4) + 8
    else:
        magnitude = ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if sign else -magnitude


_ULAW_DECODE = tuple(_ulaw_to_linear(b) for b in range(256))
_ALAW_DECODE = tuple(_alaw_to_linear(b) for b in range(256))


def ulaw_encode(samples: Iterable[int]) -> bytes:
    """Encode 16-bit linear samples as µ-law bytes."""
    return bytes(_linear_to_ulaw(s) for s in samples)


def ulaw_decode(data: bytes) -> list[int]:
    """Decode µ-law bytes to 16-bit linear samples."""
    return [_ULAW_DECODE[b] for b in data]


def alaw_encode(samples: Iterable[int]) -> bytes:
    """Encode 16-bit linear samples as A-law bytes."""
    return bytes(_linear_to_alaw(s) for s in samples)


def alaw_decode(data: bytes) -> list[int]:
    """Decode A-law bytes to 16-bit linear samples."""
    return [_ALAW_DECODE[b] for b in data]


def encode(codec: str, samples: Iterable[int]) -> bytes:
    """Encode for ``codec`` ``"PCMU"`` or ``"PCMA"``."""
    if codec.upper() == "PCMU":
        return ulaw_encode(samples)
    if codec.upper() == "PCMA":
        return alaw_encode(samples)
    raise ValueError(f"unsupported codec {codec!r}: expected PCMU or PCMA")


def tone(frequency: float, samples: int, *, amplitude: int = 8000, rate: int = 8000) -> list[int]:
    """``samples`` samples of a sine tone (one packet's worth is 160 at 8 kHz, 20 ms)."""
    return [round(amplitude * math.sin(2 * math.pi * frequency * n / rate)) for n in range(samples)]
