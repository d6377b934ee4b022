"""The .sgc container: round trips, bit packing, and every kind of damage giving CorruptFileError."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soundgen.codec.sgc.container import (
    HEADER_DICT,
    MAGIC,
    SgcHeader,
    SgcReader,
    encode_header,
    pack_codes,
    read_sgc,
    unpack_codes,
    write_sgc,
)
from soundgen.errors import CorruptFileError


def _header(n_codebooks: int = 3, codebook_size: int = 1024, chunk_frames: int = 7) -> SgcHeader:
    bits = max(1, (codebook_size - 1).bit_length())
    return SgcHeader(
        model_id="test",
        model_hash="ab" * 32,
        sample_rate=16000,
        channels=1,
        hop_length=320,
        n_codebooks=n_codebooks,
        codebook_size=codebook_size,
        bits_per_code=bits,
        frame_count=0,
        length=0,
        chunk_frames=chunk_frames,
    )


def _json_fields(header: SgcHeader) -> dict[str, object]:
    """The header's fields as versions 1 and 2 store them (without version 3's entropy_hash)."""
    return {k: v for k, v in dataclasses.asdict(header).items() if k != "entropy_hash"}


def _valid_file(tmp_path: Path, frames: int = 20, version: int = 2) -> tuple[Path, np.ndarray]:
    codes = np.random.default_rng(0).integers(0, 1024, (3, frames))
    path = tmp_path / "a.sgc"
    write_sgc(path, _header(), codes, length=frames * 320 - 5, version=version)
    return path, codes


@given(
    k=st.integers(1, 6),
    frames=st.integers(0, 40),
    size=st.sampled_from([2, 3, 1000, 1024, 1025, 65536]),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=40, deadline=None)
def test_pack_unpack_round_trip(k: int, frames: int, size: int, seed: int) -> None:
    codes = np.random.default_rng(seed).integers(0, size, (k, frames))
    bits = max(1, (size - 1).bit_length())
    payload = pack_codes(codes, bits)
    assert len(payload) == (k * frames * bits + 7) // 8
    assert np.array_equal(unpack_codes(payload, bits, k, frames), codes)


@pytest.mark.parametrize("version", [1, 2])
def test_round_trip_and_ten_bits_per_code(tmp_path: Path, version: int) -> None:
    path, codes = _valid_file(tmp_path, frames=100, version=version)
    assert path.read_bytes()[4] == version
    f = read_sgc(path)
    assert np.array_equal(f.codes, codes)
    assert f.header.frame_count == 100 and f.header.length == 100 * 320 - 5
    assert f.header.bits_per_code == 10
    header_bytes = len(encode_header(f.header, version))
    if version == 1:
        assert header_bytes == len(json.dumps(_json_fields(f.header), sort_keys=True, separators=(",", ":")))
    chunks = [7] * 14 + [2]
    payload = sum((3 * n * 10 + 7) // 8 for n in chunks)  # 10 bits per code, bytes rounded up per chunk
    overhead = path.stat().st_size - payload - header_bytes
    assert overhead == 9 + len(chunks) * 12 + 44  # prefix, per-chunk framing, trailer: nothing else


def test_empty_file_round_trip(tmp_path: Path) -> None:
    write_sgc(tmp_path / "e.sgc", _header(), np.zeros((3, 0), dtype=np.int64), length=0)
    assert read_sgc(tmp_path / "e.sgc").codes.shape == (3, 0)


def test_chunks_stream_one_at_a_time(tmp_path: Path) -> None:
    path, codes = _valid_file(tmp_path, frames=20)
    with SgcReader(path) as reader:
        sizes = [c.shape[1] for c in reader.chunks()]
    assert sizes == [7, 7, 6]


def _expect_corrupt(path: Path) -> None:
    with pytest.raises(CorruptFileError):
        read_sgc(path)


def test_every_truncation_is_detected(tmp_path: Path) -> None:
    path, _ = _valid_file(tmp_path)
    data = path.read_bytes()
    for n in range(len(data)):
        path.write_bytes(data[:n])
        _expect_corrupt(path)


def test_every_single_byte_change_is_detected(tmp_path: Path) -> None:
    path, _ = _valid_file(tmp_path, frames=9)
    data = path.read_bytes()
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x01
        path.write_bytes(bytes(damaged))
        _expect_corrupt(path)


def test_trailing_garbage_and_wrong_magic(tmp_path: Path) -> None:
    path, _ = _valid_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data + b"\0")
    _expect_corrupt(path)
    path.write_bytes(b"RIFF" + data[4:])
    with pytest.raises(CorruptFileError, match="not a .sgc file"):
        read_sgc(path)
    path.write_bytes(MAGIC + bytes([9]) + data[5:])
    with pytest.raises(CorruptFileError, match="version"):
        read_sgc(path)


def _deflate(text: bytes, zdict: bytes = HEADER_DICT) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict)
    return packer.compress(text) + packer.flush()


def _forged(tmp_path: Path, version: int = 1, **fields: object) -> Path:
    """A file whose header is replaced (valid framing, forged values), in format ``version``."""
    header = {**_json_fields(_header()), "frame_count": 2, "length": 640, **fields}
    blob = json.dumps(header).encode()
    if version == 2:
        blob = _deflate(blob)
    path = tmp_path / "forged.sgc"
    path.write_bytes(MAGIC + struct.pack("<BI", version, len(blob)) + blob)
    return path


@pytest.mark.parametrize(
    "fields",
    [
        {"frame_count": 2**62, "length": 2**62},  # would allocate petabytes
        {"n_codebooks": 100000},
        {"codebook_size": 1},
        {"bits_per_code": 12},
        {"length": 10**9},
        {"sample_rate": -1},
        {"chunk_frames": 0},
        {"model_id": ["x"]},
        {"channels": True},
    ],
)
@pytest.mark.parametrize("version", [1, 2])
def test_forged_headers_are_rejected_before_allocating(tmp_path: Path, fields: dict[str, object], version: int) -> None:
    _expect_corrupt(_forged(tmp_path, version, **fields))


def test_version_2_header_is_small_and_its_dictionary_frozen() -> None:
    # v2 files depend on these exact bytes: changing the dictionary needs a new format version
    assert hashlib.sha256(HEADER_DICT).hexdigest()[:16] == "2a26a079a936d3c5"
    header = dataclasses.replace(_header(12), model_id="soundgen-default", frame_count=200, length=64000)
    header = dataclasses.replace(header, original_sample_rate=44100, original_channels=2)
    assert len(encode_header(header, 1)) > 300
    assert len(encode_header(header, 2)) < 100


@pytest.mark.parametrize(
    "blob",
    [
        b"\x00" * 40,  # not deflate at all (a stored block header with a bad length)
        _deflate(b'{"model_id":"x"' + b" " * 200_000 + b"}"),  # inflates past the 64 KiB limit (a header bomb)
        _deflate(json.dumps(_json_fields(_header())).encode())[:-3],  # cut short
        _deflate(json.dumps(_json_fields(_header())).encode()) + b"xx",  # bytes after the stream
        _deflate(json.dumps(_json_fields(_header())).encode(), zdict=b"another dictionary"),
    ],
)
def test_damaged_version_2_headers(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "v2.sgc"
    path.write_bytes(MAGIC + struct.pack("<BI", 2, len(blob)) + blob)
    with pytest.raises(CorruptFileError):
        read_sgc(path)


def test_header_length_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "huge.sgc"
    path.write_bytes(MAGIC + struct.pack("<BI", 1, 2**31) + b"{}")
    with pytest.raises(CorruptFileError, match="header length"):
        read_sgc(path)


def test_unknown_or_missing_header_fields(tmp_path: Path) -> None:
    path = _forged(tmp_path, extra=1)
    _expect_corrupt(path)
    blob = b'{"model_id": "x"}'
    path.write_bytes(MAGIC + struct.pack("<BI", 1, len(blob)) + blob)
    _expect_corrupt(path)
    blob = b"[1, 2, 3]"
    path.write_bytes(MAGIC + struct.pack("<BI", 1, len(blob)) + blob)
    _expect_corrupt(path)


def test_codes_beyond_the_codebook_are_rejected(tmp_path: Path) -> None:
    # 1000 entries need 10 bits, so a forged payload can hold 1000..1023: must not reach the decoder
    header = dataclasses.replace(_header(codebook_size=1024))
    path = tmp_path / "big.sgc"
    write_sgc(path, header, np.full((3, 4), 1010), length=4 * 320, version=1)
    data = path.read_bytes().replace(b'"codebook_size":1024', b'"codebook_size":1000')
    path.write_bytes(data)
    _expect_corrupt(path)


@given(data=st.binary(max_size=400))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.sgc"
    path.write_bytes(data)
    _expect_corrupt(path)


@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_mutated_valid_file(tmp_path: Path, edits: list[tuple[int, int]], cut: int | None) -> None:
    path, codes = _valid_file(tmp_path, frames=15)
    original = path.read_bytes()
    data = bytearray(original)
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path.write_bytes(bytes(data))
    if bytes(data) == original:
        assert np.array_equal(read_sgc(path).codes, codes)
    else:
        _expect_corrupt(path)


@pytest.mark.parametrize("version", [1, 2])
def test_an_integer_of_thousands_of_digits_is_a_corrupt_header(tmp_path: Path, version: int) -> None:
    # Python refuses to parse integers of over 4300 digits (ValueError, not a JSONDecodeError).
    text = json.dumps({**_json_fields(_header()), "frame_count": 2, "length": 640})
    blob = text.replace('"length": 640', '"length": 1' + "0" * 5000).encode()
    if version == 2:
        blob = _deflate(blob)
    path = tmp_path / "digits.sgc"
    path.write_bytes(MAGIC + struct.pack("<BI", version, len(blob)) + blob)
    with pytest.raises(CorruptFileError, match="corrupt header"):
        read_sgc(path)


def test_versions_1_and_2_are_written_byte_for_byte_as_before(tmp_path: Path) -> None:
    # SHA-256 of files written by the code before version 3 existed (commit bc246ed) from the same input.
    expected = {
        1: "4cd5b74374da377b011018cfdd410e264ef1c98e614d3729d63d4651c7cec2a5",
        2: "de2f870c3cd3c20dbcc9278300ea82d0a501613753f7c1e8ad62fd2e2db60099",
    }
    header = dataclasses.replace(_header(), model_id="golden", original_sample_rate=44100, original_channels=2)
    codes = (np.arange(3 * 20).reshape(3, 20) * 37) % 1024
    for version, digest in expected.items():
        path = tmp_path / f"v{version}.sgc"
        write_sgc(path, header, codes, length=20 * 320 - 5, version=version)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        assert np.array_equal(read_sgc(path).codes, codes)
