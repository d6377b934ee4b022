"""Range coding of codes (.sgc version 3): exact round trips, pinned bytes, speed, and refusal of bad input."""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soundgen.audio.entropy import CodebookTable, EntropyTables, decode_codes, encode_codes
from soundgen.audio.rangecoder import TOTAL, RangeDecoder, encode_intervals
from soundgen.codec.sgc.container import (
    MAGIC,
    SgcHeader,
    encode_header,
    read_sgc,
    write_sgc,
)
from soundgen.errors import CorruptFileError


@functools.lru_cache(maxsize=8)
def fixed_tables(n_codebooks: int = 3, size: int = 1024, shift: int = 0) -> EntropyTables:
    """Tables made by integer arithmetic alone (the same on every machine), skewed so that codes compress."""
    books = []
    for k in range(n_codebooks):
        p, c = 4, (1 if k == 0 else 2)
        freqs = np.zeros((p, c, size), dtype=np.int64)
        for i in range(p):
            for j in range(c):
                row = [1 + (16000 >> min(30, abs(s - (i * 97 + j * 13 + k + shift) % size))) for s in range(size)]
                row[(i * 31 + j) % size] += TOTAL - sum(row)
                freqs[i, j] = row
        prev_map = np.array([v % p for v in range(size)] + [0])
        coarse_map = np.array([(v // 3) % c for v in range(size)])
        books.append(CodebookTable(prev_map, coarse_map, freqs))
    return EntropyTables(size, books)


def fixed_codes(n_codebooks: int = 3, frames: int = 40) -> np.ndarray:
    """Codes near the peaks of :func:`fixed_tables` (a deterministic walk), ``[K, F]``."""
    codes = np.zeros((n_codebooks, frames), dtype=np.int64)
    for t in range(frames):
        for k in range(n_codebooks):
            prev = codes[k, t - 1] if t else 0
            coarse = ((codes[k - 1, t] // 3) % 2) if k else 0
            codes[k, t] = ((prev % 4) * 97 + coarse * 13 + k + (t * 7919) % 3) % 1024
    return codes


def _header(n_codebooks: int = 3, chunk_frames: int = 16) -> SgcHeader:
    return SgcHeader(
        model_id="test",
        model_hash="ab" * 32,
        sample_rate=16000,
        channels=1,
        hop_length=320,
        n_codebooks=n_codebooks,
        codebook_size=1024,
        bits_per_code=10,
        frame_count=0,
        length=0,
        chunk_frames=chunk_frames,
    )


def _v3_file(tmp_path: Path, frames: int = 40) -> tuple[Path, np.ndarray, EntropyTables]:
    tables, codes = fixed_tables(), fixed_codes(frames=frames)
    path = tmp_path / "e.sgc"
    write_sgc(path, _header(), codes, length=frames * 320 - 7, tables=tables)
    return path, codes, tables


def _decode_symbols(data: bytes, cum: list[int], n: int) -> list[int]:
    dec, out = RangeDecoder(data), []
    for _ in range(n):
        s = bisect.bisect_right(cum, dec.target()) - 1
        dec.consume(cum[s], cum[s + 1] - cum[s])
        out.append(s)
    dec.finish()
    return out


@given(
    weights=st.lists(st.integers(0, 1000), min_size=2, max_size=40),
    picks=st.lists(st.integers(0, 10**6), max_size=300),
)
@settings(max_examples=150, deadline=None)
def test_range_coder_round_trip(weights: list[int], picks: list[int]) -> None:
    v = len(weights)
    freqs = [1 + w * (TOTAL - v) // max(1, sum(weights)) for w in weights]
    freqs[0] += TOTAL - sum(freqs)
    cum = [0]
    for f in freqs:
        cum.append(cum[-1] + f)
    symbols = [p % v for p in picks]
    data = encode_intervals([cum[s] for s in symbols], [freqs[s] for s in symbols])
    assert _decode_symbols(data, cum, len(symbols)) == symbols


@pytest.mark.parametrize("symbol", [0, 1, 2])
def test_range_coder_carries_through_long_runs_of_ff(symbol: int) -> None:
    # The top symbol of a table (start near TOTAL) drives low towards 0xFF...: carries must cross long runs.
    freqs = [1, TOTAL - 2, 1] if symbol != 1 else [TOTAL - 2, 1, 1]
    cum = [0, freqs[0], freqs[0] + freqs[1], TOTAL]
    symbols = ([2] * 50 + [1] * 3 + [0]) * 20 if symbol else [2, 0] * 500
    data = encode_intervals([cum[s] for s in symbols], [freqs[s] for s in symbols])
    assert _decode_symbols(data, cum, len(symbols)) == symbols


def test_range_decoder_refuses_short_long_and_garbage_streams() -> None:
    cum = [0, TOTAL // 2, TOTAL]
    data = encode_intervals([0, TOTAL // 2] * 40, [TOTAL // 2] * 80)
    with pytest.raises(CorruptFileError, match="bytes after"):
        _decode_symbols(data + b"\0", cum, 80)
    with pytest.raises(CorruptFileError, match="end before"):
        _decode_symbols(data[:-1], cum, 80)
    with pytest.raises(CorruptFileError, match="fewer than 4"):
        RangeDecoder(b"\1\2")


def test_pinned_bytes_of_a_known_file(tmp_path: Path) -> None:
    """The exact bytes of a version-3 file from fixed codes and fixed tables: any change to the coder, the table
    hash or the layout changes them, and so needs a new format version."""
    tables = fixed_tables()
    assert tables.digest == "989434e1a43f557fd02e2cd695d3c92139900723e6a415905aa1f02f1864cd05"
    payload = encode_codes(tables, fixed_codes())
    assert hashlib.sha256(payload).hexdigest() == "6206fe56f7048cc1e237c7c468a92abd9341d8d2adf5313282cf9fba35aaadea"
    path, codes, _ = _v3_file(tmp_path)
    data = path.read_bytes()
    assert data[4] == 3
    assert hashlib.sha256(data).hexdigest() == "c8e445c55f2e705a7dd02a5338b12d6d4c1c12b16e35f7e86208bfebf0e0d026"
    assert np.array_equal(read_sgc(path, tables).codes, codes)


def test_v3_round_trip_is_smaller_and_records_the_tables(tmp_path: Path) -> None:
    path, codes, tables = _v3_file(tmp_path, frames=200)
    f = read_sgc(path, tables)
    assert np.array_equal(f.codes, codes) and f.header.entropy_hash == tables.hash_id
    raw = tmp_path / "raw.sgc"
    write_sgc(raw, _header(), codes, length=200 * 320 - 7)
    assert raw.read_bytes()[4] == 2 and path.stat().st_size < 0.6 * raw.stat().st_size


def test_chunks_the_tables_would_grow_are_stored_packed(tmp_path: Path) -> None:
    # Uniformly random codes cost ~16 bits each with skewed tables: the writer keeps the 10-bit packing.
    codes = np.random.default_rng(0).integers(0, 1024, (3, 40))
    v3, v2 = tmp_path / "a.sgc", tmp_path / "b.sgc"
    write_sgc(v3, _header(), codes, length=40 * 320, tables=fixed_tables())
    write_sgc(v2, _header(), codes, length=40 * 320)
    chunks = 3  # 16 + 16 + 8 frames
    extra_header = len(encode_header(read_sgc(v3, fixed_tables()).header, 3)) - len(
        encode_header(read_sgc(v2).header, 2)
    )
    assert v3.stat().st_size == v2.stat().st_size + chunks + extra_header
    assert np.array_equal(read_sgc(v3, fixed_tables()).codes, codes)


def test_wrong_or_missing_tables_are_refused_naming_both(tmp_path: Path) -> None:
    path, _, tables = _v3_file(tmp_path)
    other = fixed_tables(shift=5)
    with pytest.raises(CorruptFileError, match=f"tables {tables.hash_id}.*tables {other.hash_id}"):
        read_sgc(path, other)
    with pytest.raises(CorruptFileError, match=f"tables {tables.hash_id}.*no entropy tables"):
        read_sgc(path)


def test_decoding_6000_codes_is_fast() -> None:
    # 10 s at 50 frames/s x 12 codebooks.
    tables, codes = fixed_tables(12), fixed_codes(12, 500)
    payload = encode_codes(tables, codes)
    start = time.perf_counter()
    assert np.array_equal(decode_codes(tables, payload, 12, 500), codes)
    assert time.perf_counter() - start < 1.0


def test_every_truncation_and_byte_change_of_a_v3_file_is_detected(tmp_path: Path) -> None:
    path, _, tables = _v3_file(tmp_path, frames=20)
    data = path.read_bytes()
    for n in range(len(data)):
        path.write_bytes(data[:n])
        with pytest.raises(CorruptFileError):
            read_sgc(path, tables)
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(CorruptFileError):
            read_sgc(path, tables)


def _forge(tmp_path: Path, chunks: list[tuple[int, int, bytes]], frames: int, **fields: object) -> Path:
    """A version-3 file with a valid header, the given chunks (frames, mode, payload) with correct CRCs, and a
    correct trailer: only the payloads can be wrong."""
    header = dataclasses.replace(_header(), frame_count=frames, length=frames * 320)
    header = dataclasses.replace(header, **{"entropy_hash": fixed_tables().hash_id, **fields})
    blob = encode_header(header, 3)
    body = MAGIC + struct.pack("<BI", 3, len(blob)) + blob
    for f, mode, payload in chunks:
        head = struct.pack("<IBI", f, mode, len(payload))
        body += head + payload + struct.pack("<I", zlib.crc32(head + payload))
    body += b"SGCE" + struct.pack("<Q", frames) + hashlib.sha256(body).digest()
    path = tmp_path / "forged.sgc"
    path.write_bytes(body)
    return path


@given(payload=st.binary(min_size=4, max_size=44), frames=st.integers(1, 16))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_forged_payloads_with_valid_checksums_decode_or_are_refused(
    tmp_path: Path, payload: bytes, frames: int
) -> None:
    path = _forge(tmp_path, [(frames, 1, payload)], frames)
    try:
        codes = read_sgc(path, fixed_tables()).codes
    except CorruptFileError:
        return
    assert codes.shape == (3, frames) and codes.min() >= 0 and codes.max() < 1024


@pytest.mark.parametrize(
    "chunk",
    [
        (16, 1, b"\0" * 60),  # as long as the packed codes: never written, refused
        (16, 1, b"\0" * 3),  # shorter than the coder's 4 bytes
        (16, 2, b"\0" * 10),  # unknown mode
        (16, 0, b"\0" * 59),  # packed, wrong length
        (2**31, 1, b"\0" * 10),  # huge frame count
    ],
)
def test_forged_chunk_framing_is_refused(tmp_path: Path, chunk: tuple[int, int, bytes]) -> None:
    with pytest.raises(CorruptFileError):
        read_sgc(_forge(tmp_path, [chunk], 16), fixed_tables())


def test_forged_v3_headers_are_refused(tmp_path: Path) -> None:
    good = encode_codes(fixed_tables(), fixed_codes(frames=16))
    assert np.array_equal(read_sgc(_forge(tmp_path, [(16, 1, good)], 16), fixed_tables()).codes, fixed_codes(frames=16))
    for fields in ({"entropy_hash": ""}, {"entropy_hash": "XYZ"}, {"entropy_hash": "0" * 64}, {"n_codebooks": 4}):
        with pytest.raises(CorruptFileError):
            read_sgc(_forge(tmp_path, [(16, 1, good)], 16, **fields), fixed_tables())
    # a version-2 file may not carry entropy_hash
    text = encode_header(dataclasses.replace(_header(), frame_count=1, length=320, entropy_hash="ab" * 8), 3)
    path = tmp_path / "v2.sgc"
    path.write_bytes(MAGIC + struct.pack("<BI", 2, len(text)) + text)
    with pytest.raises(CorruptFileError):
        read_sgc(path)


@pytest.mark.parametrize(
    "damage",
    ["zero_freq", "bad_sum", "map_out_of_range", "coarse_on_codebook_0", "wrong_shape", "float"],
)
def test_malformed_tables_are_refused(damage: str) -> None:
    t = fixed_tables().codebooks
    books = [CodebookTable(b.prev_map.copy(), b.coarse_map.copy(), b.freqs.copy()) for b in t]
    b = books[1]
    if damage == "zero_freq":
        b.freqs[0, 0, 5] = 0
        b.freqs[0, 0, 6] += 1
    elif damage == "bad_sum":
        b.freqs[0, 0, 5] += 1
    elif damage == "map_out_of_range":
        b.prev_map[3] = 4
    elif damage == "coarse_on_codebook_0":
        books[0] = CodebookTable(b.prev_map, b.coarse_map, b.freqs)
    elif damage == "wrong_shape":
        books[1] = CodebookTable(b.prev_map[:-1], b.coarse_map, b.freqs)
    else:
        books[1] = CodebookTable(b.prev_map, b.coarse_map, b.freqs.astype(np.float64))
    with pytest.raises(CorruptFileError):
        EntropyTables(1024, books)
