"""Entropy coding of codec codes with fixed integer probability tables (the payload of ``.sgc`` version 3).

Codes ``[K, F]`` are coded frame by frame, codebook by codebook (frame-major, as the raw payload), each code with
the table of its *context*: codebook ``k``'s table ``freqs[k][p, c]`` is picked by ``p = prev_map[k][code of
codebook k in the previous frame]`` (``prev_map[k][codebook_size]`` for the first frame of a chunk) and ``c =
coarse_map[k][code of codebook k - 1 in the same frame]`` (``c = 0`` for codebook 0, which has one column).
The maps quantise the 1024 codes into a few buckets, so a codebook's tables stay small (16 contexts x 1024
entries of uint16: 32 KiB) while using most of what the previous frame and the coarser codebook tell.

Everything is integers: frequencies sum to ``2 ** PROB_BITS`` with every entry at least 1 (any code is codable),
and the tables' hash is SHA-256 over an explicit little-endian serialisation, so a file decodes the same on
every platform, and never with tables other than those it was coded with (its header holds their hash).
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from dataclasses import dataclass, field

import numpy as np

from soundgen.audio.rangecoder import PROB_BITS, TOTAL, RangeDecoder, encode_intervals
from soundgen.errors import CorruptFileError

HASH_CHARS = 16
"""Hex digits of the tables' SHA-256 kept in a .sgc header (64 bits: enough to tell tables apart)."""
MAX_CONTEXTS = 256
_SERIAL_MAGIC = b"soundgen-entropy/1\0"


@dataclass
class CodebookTable:
    """The tables of one codebook.

    Attributes:
        prev_map: ``[codebook_size + 1]`` bucket of the previous frame's code (last entry: no previous frame).
        coarse_map: ``[codebook_size]`` bucket of the coarser codebook's code in the same frame.
        freqs: ``[P, C, codebook_size]`` frequencies, each row summing to ``2 ** PROB_BITS``.
    """

    prev_map: np.ndarray
    coarse_map: np.ndarray
    freqs: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """Buckets ``(P, C)`` of the previous-frame and coarser-codebook contexts."""
        return int(self.freqs.shape[0]), int(self.freqs.shape[1])


@dataclass
class EntropyTables:
    """Probability tables of every codebook of one codec (see the module docstring).

    Attributes:
        codebook_size: entries per codebook ``V``.
        codebooks: one :class:`CodebookTable` per codebook, coarsest first.
    """

    codebook_size: int
    codebooks: list[CodebookTable]
    _cums: list[list[list[int] | None]] = field(default_factory=list, init=False, repr=False, compare=False)
    _digest: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()
        self.codebooks = [
            CodebookTable(
                np.ascontiguousarray(t.prev_map, dtype=np.int64),
                np.ascontiguousarray(t.coarse_map, dtype=np.int64),
                np.ascontiguousarray(t.freqs, dtype=np.int64),
            )
            for t in self.codebooks
        ]
        self._cums = [[None] * (t.shape[0] * t.shape[1]) for t in self.codebooks]

    @property
    def n_codebooks(self) -> int:
        return len(self.codebooks)

    def validate(self) -> None:
        """Raise CorruptFileError unless every table is well formed (shapes, buckets, sums, no zero entry)."""
        v = self.codebook_size
        if not isinstance(v, int) or not 2 <= v <= 1 << 16 or not 1 <= len(self.codebooks) <= 256:
            raise CorruptFileError("entropy tables: codebook_size or the number of codebooks is out of range")
        for k, t in enumerate(self.codebooks):
            what = f"entropy tables, codebook {k}"
            if t.freqs.ndim != 3 or t.freqs.shape[2] != v or t.prev_map.shape != (v + 1,) or t.coarse_map.shape != (v,):
                raise CorruptFileError(f"{what}: arrays of the wrong shape")
            p, c = t.freqs.shape[:2]
            if not 1 <= p * c <= MAX_CONTEXTS or (k == 0 and c != 1):
                raise CorruptFileError(f"{what}: {p} x {c} contexts (at most {MAX_CONTEXTS}; codebook 0: one column)")
            for arr in (t.prev_map, t.coarse_map, t.freqs):
                if not np.issubdtype(arr.dtype, np.integer):
                    raise CorruptFileError(f"{what}: arrays must hold integers, not {arr.dtype}")
            if t.prev_map.min() < 0 or t.prev_map.max() >= p or t.coarse_map.min() < 0 or t.coarse_map.max() >= c:
                raise CorruptFileError(f"{what}: a context map names a bucket that does not exist")
            f = t.freqs.astype(np.int64)
            if f.min() < 1 or not (f.sum(axis=2) == TOTAL).all():
                raise CorruptFileError(f"{what}: frequencies must be >= 1 and sum to 2**{PROB_BITS} in every row")

    def serialise(self) -> bytes:
        """The canonical bytes of the tables (what :attr:`digest` hashes): explicit little-endian integers."""
        parts = [_SERIAL_MAGIC, struct.pack("<III", self.codebook_size, self.n_codebooks, PROB_BITS)]
        for t in self.codebooks:
            parts.append(struct.pack("<II", *t.shape))
            parts += [a.astype("<u2").tobytes() for a in (t.prev_map, t.coarse_map)]
            parts.append(t.freqs.astype("<u2").tobytes())  # at most 2**16 - 1: every entry >= 1, V >= 2
        return b"".join(parts)

    @property
    def digest(self) -> str:
        """Hex SHA-256 of :meth:`serialise`."""
        if not self._digest:
            self._digest = hashlib.sha256(self.serialise()).hexdigest()
        return self._digest

    @property
    def hash_id(self) -> str:
        """The first :data:`HASH_CHARS` hex digits of :attr:`digest`: what a .sgc header stores."""
        return self.digest[:HASH_CHARS]

    def _cum(self, k: int, ctx: int) -> list[int]:
        """Cumulative frequencies ``[V + 1]`` of codebook ``k``'s context ``ctx`` (built on first use)."""
        row = self._cums[k][ctx]
        if row is None:
            t = self.codebooks[k]
            freqs = t.freqs.reshape(-1, self.codebook_size)[ctx]
            row = [0, *np.cumsum(freqs).tolist()]
            self._cums[k][ctx] = row
        return row


def contexts(tables: EntropyTables, codes: np.ndarray) -> np.ndarray:
    """Context index (``p * C + c``) of every code ``[K, F]`` of one chunk, as the coder sees it."""
    k_count, frames = codes.shape
    v = tables.codebook_size
    out = np.zeros(codes.shape, dtype=np.int64)
    for k in range(k_count):
        t = tables.codebooks[k]
        prev = np.concatenate([[v], codes[k, :-1]]) if frames else codes[k]
        coarse = codes[k - 1] if k else np.zeros(frames, dtype=np.int64)
        out[k] = t.prev_map[prev] * t.shape[1] + t.coarse_map[coarse]
    return out


def encode_codes(tables: EntropyTables, codes: np.ndarray) -> bytes:
    """Range-code one chunk of codes ``[K, F]`` (each in ``[0, codebook_size)``, ``K <= tables.n_codebooks``)."""
    codes = np.asarray(codes, dtype=np.int64)
    assert codes.ndim == 2 and codes.shape[0] <= tables.n_codebooks, "codes [K, F] with K within the tables"
    ctx = contexts(tables, codes)
    starts = np.zeros(codes.shape, dtype=np.int64)
    sizes = np.zeros(codes.shape, dtype=np.int64)
    for k in range(codes.shape[0]):
        flat = tables.codebooks[k].freqs.reshape(-1, tables.codebook_size)
        cum = np.cumsum(flat, axis=1) - flat  # exclusive: start of each symbol
        starts[k] = cum[ctx[k], codes[k]]
        sizes[k] = flat[ctx[k], codes[k]]
    # Frame-major order, as the decoder meets them; Python ints from here on.
    return encode_intervals(starts.T.reshape(-1).tolist(), sizes.T.reshape(-1).tolist())


def decode_codes(tables: EntropyTables, payload: bytes, n_codebooks: int, frames: int) -> np.ndarray:
    """Inverse of :func:`encode_codes`: codes ``[n_codebooks, frames]`` int64.

    Raises:
        CorruptFileError: the payload does not decode into exactly that many codes.
    """
    if n_codebooks > tables.n_codebooks:
        raise CorruptFileError(f"the file has {n_codebooks} codebooks; its entropy tables cover {tables.n_codebooks}")
    v = tables.codebook_size
    dec = RangeDecoder(payload)
    target, consume, find = dec.target, dec.consume, bisect.bisect_right
    prev_ctx = [(t.prev_map * t.shape[1]).tolist() for t in tables.codebooks[:n_codebooks]]
    coarse_ctx = [t.coarse_map.tolist() for t in tables.codebooks[:n_codebooks]]
    cum_of = tables._cum
    cache = tables._cums
    out = [[0] * frames for _ in range(n_codebooks)]
    prev = [v] * n_codebooks
    for i in range(frames):
        coarse = 0
        for k in range(n_codebooks):
            ctx = prev_ctx[k][prev[k]] + coarse_ctx[k][coarse]
            cum = cache[k][ctx] or cum_of(k, ctx)
            x = target()
            s = find(cum, x) - 1
            lo = cum[s]
            consume(lo, cum[s + 1] - lo)
            out[k][i] = s
            prev[k] = coarse = s
    dec.finish()
    return np.array(out, dtype=np.int64).reshape(n_codebooks, frames)
