"""An integer-only range coder (32-bit range, byte-wise output, carry propagation).

Symbols are coded as intervals ``[start, start + size)`` of a total of ``2 ** PROB_BITS``: the caller's frequency
tables are integers summing to that total, every symbol at least 1. All state is Python integers, so the bytes
depend on nothing but the intervals: not on the platform, numpy, or floating point.

Encoder state: ``low`` (32 bits plus a carry bit) and ``range`` (kept in ``[2**24, 2**32)`` between symbols).
Coding a symbol sets ``r = range >> PROB_BITS``, ``low += start * r``, ``range = size * r``, then while ``range <
2**24`` shifts a byte out of ``low`` (``range <<= 8``). A byte that leaves ``low`` is held back while it is 0xFF
(a later carry may still turn it into 0x00 and add one to the byte before), as in LZMA's range coder. The very
first byte of that scheme is always 0 and is not written; finishing writes the four bytes of ``low``.

The decoder mirrors it with ``code`` (the value read so far minus ``low``): ``target = code // r`` is the
cumulative frequency of the next symbol (always below the total in a valid stream), and it reads exactly the
bytes the encoder wrote, so a stream that ends early or goes on past its last symbol is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from soundgen.errors import CorruptFileError

PROB_BITS = 16
"""Frequencies of a table sum to ``2 ** PROB_BITS`` (part of the .sgc version 3 format)."""
TOTAL = 1 << PROB_BITS
_TOP = 1 << 24
_MASK = 0xFFFFFFFF
MAX_BYTES_PER_SYMBOL = 2.001
"""Upper bound of the coded size per symbol at the worst frequency (1 of 65536: 16 bits, plus truncation loss)."""


def encode_intervals(starts: Sequence[int], sizes: Sequence[int]) -> bytes:
    """Range-code a sequence of intervals.

    Args:
        starts: cumulative frequency below each symbol, ``0 <= start < TOTAL``.
        sizes: each symbol's frequency, ``1 <= size <= TOTAL - start``.

    Returns:
        The coded bytes (at least 4).
    """
    low, rng = 0, _MASK
    cache, pending, first = 0, 0, True
    out = bytearray()
    for start, size in zip(starts, sizes, strict=True):
        r = rng >> PROB_BITS
        low += start * r
        rng = size * r
        while rng < _TOP:
            rng <<= 8
            # Shift the top byte of low out: final unless it is 0xFF and no carry has come yet.
            if low < 0xFF000000 or low > _MASK:
                carry = low >> 32
                if not first:
                    out.append((cache + carry) & 0xFF)
                first = False
                if pending:
                    out += bytes([(0xFF + carry) & 0xFF]) * pending
                    pending = 0
                cache = (low >> 24) & 0xFF
            else:
                pending += 1
            low = (low << 8) & _MASK
    # Finish: the held byte, any 0xFF bytes behind it, then low's four bytes.
    carry = low >> 32
    low &= _MASK
    if not first:
        out.append((cache + carry) & 0xFF)
    out += bytes([(0xFF + carry) & 0xFF]) * pending
    out += low.to_bytes(4, "big")
    return bytes(out)


class RangeDecoder:
    """Decode what :func:`encode_intervals` wrote, one symbol at a time.

    For each symbol: ``v = target()``, find the symbol whose interval holds ``v``, then ``consume(start,
    size)``; after the last one, ``finish()``.

    Raises:
        CorruptFileError: the bytes are too short, run out, hold a target outside the table, or go on after
            the last symbol.
    """

    def __init__(self, data: bytes) -> None:
        if len(data) < 4:
            raise CorruptFileError("corrupt entropy-coded codes: fewer than 4 bytes")
        self._data = data
        self._pos = 4
        self._code = int.from_bytes(data[:4], "big")
        self._range = _MASK
        self._r = 0

    def target(self) -> int:
        """The cumulative frequency (``0 <= v < TOTAL``) that the next symbol's interval contains."""
        self._r = self._range >> PROB_BITS
        v = self._code // self._r
        if v >= TOTAL:
            raise CorruptFileError("corrupt entropy-coded codes: a value outside the probability table")
        return v

    def consume(self, start: int, size: int) -> None:
        """Remove the symbol ``[start, start + size)`` found from :meth:`target`'s value."""
        self._code -= start * self._r
        self._range = size * self._r
        while self._range < _TOP:
            if self._pos >= len(self._data):
                raise CorruptFileError("corrupt entropy-coded codes: they end before the last code")
            self._code = (self._code << 8) | self._data[self._pos]
            self._pos += 1
            self._range <<= 8

    def finish(self) -> None:
        """Check that every byte was used (nothing after the last symbol)."""
        if self._pos != len(self._data):
            raise CorruptFileError("corrupt entropy-coded codes: bytes after the last code")
