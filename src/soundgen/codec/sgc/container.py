"""The ``.sgc`` compressed-audio container: codec codes, bit-packed or entropy-coded, chunked, checksummed.

Layout (all integers little-endian; docs/sgc_format.md describes every version byte by byte)::

    b"SGC1"  magic                        4 bytes
    version                               u8  (3 when entropy-coded, else 2; versions 1 and 2 are still read)
    header length H                       u32 (at most 64 KiB)
    header                                H bytes: the UTF-8 JSON of :class:`SgcHeader` (sorted keys, no spaces),
                                          raw-deflated with the preset dictionary :data:`HEADER_DICT`
                                          (version 3: :data:`HEADER_DICT_V3`; version 1: the JSON as it is)
    chunks, each:
        frames f                          u32 (1 .. header.chunk_frames)
        mode m                            u8  (version 3 only: 0 bit-packed, 1 range-coded)
        payload length P                  u32 (bit-packed: must equal ceil(f * K * bits / 8); range-coded: at
                                               least 4 and less than that)
        payload                           P bytes: codes in frame-major order, ``bits`` each, MSB first; or
                                          range-coded with the model's tables (:mod:`soundgen.audio.entropy`)
        CRC-32 of frames, (mode,) length, payload u32
    trailer:
        b"SGCE"                           4 bytes
        total frames                      u64 (must equal header.frame_count)
        SHA-256 of every byte before it   32 bytes

Every count is checked against the header before anything is allocated, so a forged file cannot make the
reader allocate more than one chunk's worth of memory; any damage (truncation, flipped bit, trailing bytes)
raises :class:`~soundgen.errors.CorruptFileError`. Chunks let a writer and a reader work in bounded memory on
hours of audio.

Why version 2: the plain JSON header is ~320 bytes, 10 % of a 4-second clip at 6 kbps. Deflated against a
dictionary holding its field names and the default codec's values it is ~70 bytes, and it is still the same JSON
once inflated. The dictionary is part of the format: changing it needs a new version.

Why version 3: the codes are far from uniform (the previous frame and the coarser codebook predict much of each
code), so range coding them with tables fitted to the codec saves about a third of the payload. The header adds
``entropy_hash``, the tables' hash: a file is never decoded with other tables. A chunk the tables would make
longer is stored bit-packed (mode 0), so a version-3 file is never more than a byte per chunk (and the hash in
its header) larger than version 2.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

import numpy as np

from soundgen.audio.entropy import HASH_CHARS, EntropyTables, decode_codes, encode_codes
from soundgen.errors import CorruptFileError
from soundgen.utils import atomic_write

MAGIC = b"SGC1"
TRAILER_MAGIC = b"SGCE"
VERSION = 2
"""The version written without entropy tables."""
ENTROPY_VERSION = 3
"""The version written with entropy tables (range-coded codes)."""
READABLE_VERSIONS = (1, 2, 3)
HEADER_DICT = (
    b'"model_hash":"","model_id":"soundgen-default","n_codebooks":,"original_channels":2,'
    b'"original_sample_rate":44100,48000,22050,"sample_rate":24000,"sample_rate":16000}'
    b'{"bits_per_code":10,"channels":1,"chunk_frames":1500,"codebook_size":1024,"frame_count":,'
    b'"hop_length":320,"length":'
)
"""Preset dictionary of version 2's deflated header (frozen: a test pins its SHA-256). Deflate copies strings from
its end more cheaply, so the most common start of a header comes last."""
HEADER_DICT_V3 = HEADER_DICT.replace(b'"codebook_size":1024,', b'"codebook_size":1024,"entropy_hash":"",')
"""Version 3's dictionary: version 2's with the ``entropy_hash`` field beside its neighbour (frozen as well)."""
MAX_HEADER_BYTES = 64 * 1024
MAX_CHUNK_FRAMES = 1 << 16
DEFAULT_CHUNK_FRAMES = 1500
_PREFIX = struct.Struct("<4sBI")
_CHUNK = struct.Struct("<II")
_CHUNK_V3 = struct.Struct("<IBI")
MODE_PACKED, MODE_RANGE = 0, 1
_TRAILER = struct.Struct("<4sQ32s")


@dataclass
class SgcHeader:
    """What a ``.sgc`` file says about its content.

    Attributes:
        model_id: name of the codec model that made the codes.
        model_hash: SHA-256 of that model's weights (decoding refuses other weights).
        sample_rate: the codec's sample rate.
        channels: the codec's audio channels.
        hop_length: audio samples per code frame.
        n_codebooks: codebooks K per frame.
        codebook_size: entries per codebook.
        bits_per_code: bits stored per code.
        frame_count: code frames F in the file.
        length: audio samples (at ``sample_rate``) of the original, so decoding trims the padding.
        chunk_frames: most frames per chunk.
        original_sample_rate: sample rate of the file that was encoded (informational).
        original_channels: channels of the file that was encoded (informational).
        entropy_hash: version 3: the first 16 hex digits of the SHA-256 of the entropy tables that coded the
            codes (:attr:`~soundgen.audio.entropy.EntropyTables.hash_id`); ``""`` and absent from the JSON of
            versions 1 and 2.
    """

    model_id: str
    model_hash: str
    sample_rate: int
    channels: int
    hop_length: int
    n_codebooks: int
    codebook_size: int
    bits_per_code: int
    frame_count: int
    length: int
    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    original_sample_rate: int = 0
    original_channels: int = 0
    entropy_hash: str = ""

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def bitrate(self) -> float:
        """Nominal bitrate of the codes in kbps."""
        return self.n_codebooks * self.bits_per_code * self.frame_rate / 1000.0

    def validate(self) -> None:
        """Raise CorruptFileError unless every field is in range and consistent."""
        checks = [
            (isinstance(self.model_id, str) and len(self.model_id) <= 256, "model_id"),
            (isinstance(self.model_hash, str) and len(self.model_hash) <= 128, "model_hash"),
            (_int_in(self.sample_rate, 1, 1_000_000), "sample_rate"),
            (_int_in(self.channels, 1, 64), "channels"),
            (_int_in(self.hop_length, 1, 1 << 20), "hop_length"),
            (_int_in(self.n_codebooks, 1, 256), "n_codebooks"),
            (_int_in(self.codebook_size, 2, 1 << 16), "codebook_size"),
            (_int_in(self.frame_count, 0, 1 << 40), "frame_count"),
            (_int_in(self.chunk_frames, 1, MAX_CHUNK_FRAMES), "chunk_frames"),
            (_int_in(self.original_sample_rate, 0, 1_000_000), "original_sample_rate"),
            (_int_in(self.original_channels, 0, 1 << 16), "original_channels"),
            (isinstance(self.entropy_hash, str) and _is_hash_id(self.entropy_hash), "entropy_hash"),
        ]
        for ok, name in checks:
            if not ok:
                raise CorruptFileError(f"corrupt .sgc header: field '{name}' is out of range")
        if self.bits_per_code != bits_for(self.codebook_size):
            raise CorruptFileError("corrupt .sgc header: bits_per_code does not match codebook_size")
        if (
            not _int_in(self.length, 0, self.frame_count * self.hop_length)
            or math.ceil(self.length / self.hop_length) != self.frame_count
        ):
            raise CorruptFileError("corrupt .sgc header: length does not match frame_count")


def header_fields(version: int) -> set[str]:
    """The JSON keys of a header of ``version`` (``entropy_hash`` from version 3 on)."""
    names = {f.name for f in fields(SgcHeader)}
    return names if version >= ENTROPY_VERSION else names - {"entropy_hash"}


def _header_dict(version: int) -> bytes:
    return HEADER_DICT_V3 if version >= ENTROPY_VERSION else HEADER_DICT


def encode_header(header: SgcHeader, version: int = VERSION) -> bytes:
    """The header's bytes as ``version`` stores them: canonical JSON, deflated from version 2 on."""
    keep = header_fields(version)
    data = {k: v for k, v in asdict(header).items() if k in keep}
    text = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if version < 2:
        return text
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _header_dict(version))
    return packer.compress(text) + packer.flush()


def inflate_header(blob: bytes, version: int = VERSION) -> bytes:
    """The JSON text of a version-2 or 3 header, inflated to at most :data:`MAX_HEADER_BYTES` (a forged header
    cannot expand into a memory bomb).

    Raises:
        zlib.error: not a complete deflate stream, longer than the limit once inflated, or followed by bytes.
    """
    unpacker = zlib.decompressobj(-15, _header_dict(version))
    text = unpacker.decompress(blob, MAX_HEADER_BYTES)
    if not unpacker.eof or unpacker.unconsumed_tail or unpacker.unused_data:
        raise zlib.error("the header is not one complete deflate stream of at most 64 KiB")
    return text


def _is_hash_id(text: str) -> bool:
    return text == "" or (len(text) == HASH_CHARS and all(ch in "0123456789abcdef" for ch in text))


def _int_in(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def bits_for(codebook_size: int) -> int:
    """Bits per code for ``codebook_size`` entries (10 for 1024)."""
    return max(1, math.ceil(math.log2(codebook_size)))


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack codes ``[K, F]`` (non-negative, < 2**bits) frame-major, ``bits`` per code, MSB first."""
    flat = np.ascontiguousarray(codes.T).reshape(-1).astype(np.uint32)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    bitarr = ((flat[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    return np.packbits(bitarr.reshape(-1)).tobytes()


def unpack_codes(payload: bytes, bits: int, n_codebooks: int, frames: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`; returns ``[K, F]`` int64."""
    n = n_codebooks * frames
    bitarr = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: n * bits].reshape(n, bits)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.int64)
    return (bitarr.astype(np.int64) @ weights).reshape(frames, n_codebooks).T.copy()


def payload_size(frames: int, n_codebooks: int, bits: int) -> int:
    return (frames * n_codebooks * bits + 7) // 8


class SgcWriter:
    """Write a ``.sgc`` file chunk by chunk, in bounded memory.

    Chunks are spooled to a temporary file; :meth:`finish` writes the header (whose frame count and length
    are known only then), copies the chunks and appends the trailer, atomically under the final name.

    Args:
        header: the header; its ``frame_count``, ``length`` and ``entropy_hash`` are replaced.
        version: the format to write; default :data:`ENTROPY_VERSION` with ``tables``, else :data:`VERSION`.
        tables: entropy tables to range-code the codes with (version 3 only).

    Example::

        w = SgcWriter(header_without_counts)
        for codes in code_chunks: w.add(codes)        # codes [K, f]
        w.finish("out.sgc", length=n_samples)
    """

    def __init__(self, header: SgcHeader, version: int | None = None, tables: EntropyTables | None = None) -> None:
        version = version if version is not None else (ENTROPY_VERSION if tables is not None else VERSION)
        if version not in READABLE_VERSIONS:
            raise ValueError(f"cannot write .sgc version {version}; versions: {READABLE_VERSIONS}")
        if (tables is not None) != (version >= ENTROPY_VERSION):
            raise ValueError(f".sgc version {ENTROPY_VERSION} and entropy tables go together (version {version})")
        if tables is not None:
            if tables.codebook_size != header.codebook_size or tables.n_codebooks < header.n_codebooks:
                raise ValueError(
                    f"the entropy tables ({tables.n_codebooks} codebooks of {tables.codebook_size}) do not cover "
                    f"{header.n_codebooks} codebooks of {header.codebook_size}"
                )
            header = SgcHeader(**{**asdict(header), "entropy_hash": tables.hash_id})
        else:
            header = SgcHeader(**{**asdict(header), "entropy_hash": ""})
        self.header = header
        self.version = version
        self.tables = tables
        self.frames = 0
        self.payload_bytes = 0
        self._spool: IO[bytes] = tempfile.TemporaryFile()
        self._pending = np.zeros((header.n_codebooks, 0), dtype=np.int64)

    def add(self, codes: np.ndarray) -> None:
        """Append codes ``[K, f]``."""
        h = self.header
        if codes.ndim != 2 or codes.shape[0] != h.n_codebooks:
            raise ValueError(f"expected codes [{h.n_codebooks}, f], got {list(codes.shape)}")
        if codes.size and (codes.min() < 0 or codes.max() >= h.codebook_size):
            raise ValueError(f"codes must lie in [0, {h.codebook_size})")
        self._pending = np.concatenate([self._pending, codes.astype(np.int64)], axis=1)
        while self._pending.shape[1] >= h.chunk_frames:
            self._write_chunk(self._pending[:, : h.chunk_frames])
            self._pending = self._pending[:, h.chunk_frames :]

    def _write_chunk(self, codes: np.ndarray) -> None:
        payload = pack_codes(codes, self.header.bits_per_code)
        if self.tables is None:
            head = _CHUNK.pack(codes.shape[1], len(payload))
        else:
            coded = encode_codes(self.tables, codes)
            mode = MODE_RANGE if len(coded) < len(payload) else MODE_PACKED  # never longer than bit-packed
            payload = coded if mode == MODE_RANGE else payload
            head = _CHUNK_V3.pack(codes.shape[1], mode, len(payload))
        self._spool.write(head + payload + struct.pack("<I", zlib.crc32(head + payload)))
        self.frames += codes.shape[1]
        self.payload_bytes += len(payload)

    def finish(self, path: str | Path, length: int) -> SgcHeader:
        """Write the file to ``path``; ``length`` is the original audio's sample count at the codec rate."""
        if self._pending.shape[1]:
            self._write_chunk(self._pending)
            self._pending = self._pending[:, :0]
        header = SgcHeader(**{**asdict(self.header), "frame_count": self.frames, "length": length})
        header.validate()
        blob = encode_header(header, self.version)
        digest = hashlib.sha256()
        with atomic_write(path) as f:
            for part in (_PREFIX.pack(MAGIC, self.version, len(blob)), blob):
                f.write(part)
                digest.update(part)
            self._spool.seek(0)
            while block := self._spool.read(1 << 20):
                f.write(block)
                digest.update(block)
            f.write(_TRAILER.pack(TRAILER_MAGIC, self.frames, digest.digest()))
        self._spool.close()
        return header


class SgcReader:
    """Read a ``.sgc`` file: the header at once, code chunks one at a time (bounded memory).

    Raises:
        CorruptFileError: on any damage, as soon as it is seen; the final checksum is verified after the last
            chunk, so consumers must not publish their output before :meth:`chunks` is exhausted.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._f: IO[bytes] = open(self.path, "rb")
        except OSError as e:
            raise CorruptFileError(f"cannot open {self.path}: {e.strerror or e}") from e
        self._digest = hashlib.sha256()
        self.version = 0
        try:
            self.header = self._read_header()
        except BaseException:
            self._f.close()
            raise

    def __enter__(self) -> SgcReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def _read(self, n: int, what: str) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise CorruptFileError(f"{self.path} is truncated (while reading the {what})")
        self._digest.update(data)
        return data

    def _read_header(self) -> SgcHeader:
        magic, version, size = _PREFIX.unpack(self._read(_PREFIX.size, "file signature"))
        if magic != MAGIC:
            raise CorruptFileError(f"{self.path} is not a .sgc file (bad signature)")
        if version not in READABLE_VERSIONS:
            raise CorruptFileError(
                f"{self.path} has .sgc version {version}; this soundgen reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))} (a newer soundgen may read it)"
            )
        if not 2 <= size <= MAX_HEADER_BYTES:
            raise CorruptFileError(f"{self.path} has an invalid header length ({size} bytes)")
        blob = self._read(size, "header")
        try:  # ValueError covers JSON syntax and integers of over 4300 digits (Python's conversion limit)
            data = json.loads((inflate_header(blob, version) if version >= 2 else blob).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError, zlib.error) as e:
            raise CorruptFileError(f"{self.path} has a corrupt header: {e}") from e
        if not isinstance(data, dict) or set(data) != header_fields(version):
            raise CorruptFileError(f"{self.path} has a corrupt header (unexpected or missing fields)")
        header = SgcHeader(**data)
        try:
            header.validate()
        except (TypeError, ValueError, OverflowError) as e:  # a field of the wrong type (a string for a number)
            raise CorruptFileError(f"{self.path} has a corrupt header (a field of the wrong type: {e})") from e
        if (version >= ENTROPY_VERSION) != bool(header.entropy_hash):
            raise CorruptFileError(f"{self.path} has a corrupt header (entropy_hash does not fit version {version})")
        self.version = version
        return header

    def check_tables(self, tables: EntropyTables | None) -> None:
        """Refuse to decode an entropy-coded file without the very tables that coded it.

        Raises:
            CorruptFileError: naming the file's tables and the given ones (or their absence).
        """
        want = self.header.entropy_hash
        if not want or (tables is not None and tables.hash_id == want):
            return
        have = f"tables {tables.hash_id}" if tables is not None else "no entropy tables"
        raise CorruptFileError(
            f"{self.path} was entropy-coded with tables {want}, but the model has {have}; decode it with the codec "
            "model directory (and its entropy.safetensors) that encoded it"
        )

    def chunks(self, tables: EntropyTables | None = None) -> Iterator[np.ndarray]:
        """Yield code chunks ``[K, f]`` (int64, each code < codebook_size), then verify the trailer.

        Args:
            tables: the entropy tables of the model (needed by version 3 files; see :meth:`check_tables`).
        """
        self.check_tables(tables)
        h, done = self.header, 0
        v3 = self.version >= ENTROPY_VERSION
        while done < h.frame_count:
            if v3:
                head = self._read(_CHUNK_V3.size, "chunk header")
                frames, mode, size = _CHUNK_V3.unpack(head)
            else:
                head = self._read(_CHUNK.size, "chunk header")
                (frames, size), mode = _CHUNK.unpack(head), MODE_PACKED
            if not 1 <= frames <= min(h.chunk_frames, h.frame_count - done):
                raise CorruptFileError(f"{self.path} is corrupt: a chunk claims {frames} frames")
            packed = payload_size(frames, h.n_codebooks, h.bits_per_code)
            if not (size == packed if mode == MODE_PACKED else mode == MODE_RANGE and 4 <= size < packed):
                raise CorruptFileError(f"{self.path} is corrupt: chunk payload length {size} is inconsistent")
            payload = self._read(size, "codes")
            (crc,) = struct.unpack("<I", self._read(4, "chunk checksum"))
            if crc != zlib.crc32(head + payload):
                raise CorruptFileError(f"{self.path} is corrupt: checksum mismatch in the codes")
            if mode == MODE_RANGE:
                assert tables is not None, "check_tables let an entropy-coded file through without tables"
                codes = decode_codes(tables, payload, h.n_codebooks, frames)
            else:
                codes = unpack_codes(payload, h.bits_per_code, h.n_codebooks, frames)
            if codes.size and codes.max() >= h.codebook_size:
                raise CorruptFileError(f"{self.path} is corrupt: a code exceeds the codebook size")
            done += frames
            yield codes
        self._check_trailer(done)

    def _check_trailer(self, frames: int) -> None:
        expected = self._digest.digest()
        data = self._f.read(_TRAILER.size)
        if len(data) != _TRAILER.size:
            raise CorruptFileError(f"{self.path} is truncated (the trailer is missing)")
        magic, total, digest = _TRAILER.unpack(data)
        if magic != TRAILER_MAGIC or total != frames or digest != expected:
            raise CorruptFileError(f"{self.path} is corrupt: the final checksum does not match")
        if self._f.read(1):
            raise CorruptFileError(f"{self.path} is corrupt: unexpected bytes after the end")


@dataclass
class SgcFile:
    """A whole ``.sgc`` file in memory: header and codes ``[K, F]``."""

    header: SgcHeader
    codes: np.ndarray


def read_sgc(path: str | Path, tables: EntropyTables | None = None) -> SgcFile:
    """Read and verify a whole file (use :class:`SgcReader` for long files); ``tables`` decode version 3."""
    with SgcReader(path) as reader:
        chunks = list(reader.chunks(tables))
        h = reader.header
    codes = np.concatenate(chunks, axis=1) if chunks else np.zeros((h.n_codebooks, 0), dtype=np.int64)
    return SgcFile(h, codes)


def write_sgc(
    path: str | Path,
    header: SgcHeader,
    codes: np.ndarray,
    length: int,
    version: int | None = None,
    tables: EntropyTables | None = None,
) -> SgcHeader:
    """Write codes ``[K, F]`` with ``header`` (its frame_count/length are replaced) to ``path`` in format
    ``version`` (default: 3 with ``tables``, else 2)."""
    writer = SgcWriter(header, version, tables)
    writer.add(codes)
    return writer.finish(path, length)
