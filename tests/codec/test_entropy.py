"""A codec's entropy tables: fitting, the table file, and ``codec fit-entropy`` / ``encode --entropy`` end to end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from soundgen.audio.entropy import EntropyTables, decode_codes, encode_codes
from soundgen.audio.rangecoder import TOTAL
from soundgen.cli.main import main
from soundgen.codec import CodecConfig, build_codec
from soundgen.codec.entropy import ENTROPY_FILE, code_bits, fit_tables, integer_freqs, load_tables, save_tables
from soundgen.codec.io import load_codec, save_codec
from soundgen.codec.sgc.container import read_sgc
from soundgen.errors import CorruptFileError
from soundgen.eval.codec_eval import true_rate_codebooks


def markov_clips(n: int, frames: int, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Clips ``[3, F]``: codebook 0 mostly repeats or steps by one, codebook 1 mostly follows codebook 0, codebook 2
    is uniform noise."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n):
        c = np.zeros((3, frames), dtype=np.int64)
        c[0, 0] = rng.integers(size)
        for t in range(1, frames):
            c[0, t] = (c[0, t - 1] + rng.choice([0, 0, 0, 1, 7])) % size
        c[1] = np.where(rng.random(frames) < 0.8, (c[0] * 3) % size, rng.integers(0, size, frames))
        c[2] = rng.integers(0, size, frames)
        clips.append(c)
    return clips


def test_integer_freqs_sum_to_the_total_and_never_reach_zero() -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((5, 1024)) ** 20
    prob[0] = 0.0
    prob[0, 3] = 1.0  # all mass on one code: the others still get 1
    freqs = integer_freqs(prob)
    assert (freqs.sum(axis=1) == TOTAL).all() and freqs.min() == 1
    assert freqs[0, 3] == TOTAL - 1023


def test_fit_learns_what_predicts_each_codebook() -> None:
    size = 64
    tables, report = fit_tables(markov_clips(40, 200, size), size, 4, show_progress=False)
    bits = [c.heldout_bits for c in report.codebooks]
    # 16 buckets cannot hold 64 previous codes exactly (1.4 bits), but they take half the 6 bits away
    assert bits[0] < 3.5 and report.codebooks[0].prev_buckets > 1
    assert bits[1] < 4.0 and report.codebooks[1].coarse_buckets > 1  # the coarser codebook is what predicts it
    assert 5.8 < bits[2] < 6.2  # uniform noise stays ~6 bits
    assert report.codebooks[3].frames == 0 and bits[3] == 6.0  # no data: the uniform table
    test = markov_clips(3, 300, size, seed=9)
    for clip in test:
        payload = encode_codes(tables, clip)
        assert np.array_equal(decode_codes(tables, payload, 3, clip.shape[1]), clip)
    actual = sum(len(encode_codes(tables, c)) * 8 for c in test) / sum(c.shape[1] for c in test)
    estimate = sum(code_bits(tables, test))
    assert abs(actual - estimate) < 0.2  # the fit's estimate is what the coder spends


def test_table_file_round_trip_and_refusals(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tables, _ = fit_tables(markov_clips(20, 100, 32), 32, 3, show_progress=False)
    path = save_tables(tmp_path, tables, codec_hash="c0" * 32, info={"clips": 20})
    assert path.name == ENTROPY_FILE and path.stat().st_mode & 0o044  # readable by others, like the weights
    loaded = load_tables(tmp_path, "c0" * 32)
    assert isinstance(loaded, EntropyTables) and loaded.digest == tables.digest
    assert load_tables(tmp_path / "nothing") is None
    with caplog.at_level(logging.WARNING):
        assert load_tables(tmp_path, "ff" * 32) is None  # fitted for other weights
    assert "other codec weights" in caplog.text
    data = path.read_bytes()
    for damaged in (data[: len(data) // 2], b"garbage" * 10, data.replace(b"soundgen-entropy", b"soundgen-entropx")):
        path.write_bytes(damaged)
        with pytest.raises(CorruptFileError):
            load_tables(tmp_path)


@pytest.fixture
def model_and_tokens(tmp_path: Path, tiny_dataset: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    model = save_codec(build_codec(CodecConfig.tiny()), tmp_path / "model", model_id="tiny-test")
    tokens = tmp_path / "tokens"
    args = ["data", "tokenize", str(tiny_dataset), "--codec", str(model), "--out", str(tokens), "--n-codebooks", "4"]
    assert main(args) == 0
    return model, tokens


def test_fit_entropy_encode_and_decode_end_to_end(
    model_and_tokens: tuple[Path, Path],
    tmp_path: Path,
    signal: Callable[..., np.ndarray],
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, tokens = model_and_tokens
    capsys.readouterr()
    assert main(["codec", "fit-entropy", str(model), "--tokens", str(tokens), "--max-contexts", "4"]) == 0
    printed = capsys.readouterr().out
    assert "entropy.safetensors" in printed and "codebook 3" in printed and "% smaller" in printed
    tables = load_tables(model, load_codec(model).model_hash)
    assert tables is not None and tables.n_codebooks == 4

    src = tmp_path / "in.wav"
    sf.write(src, signal(1.0, 8000), 8000)
    v3, v2 = tmp_path / "a.sgc", tmp_path / "b.sgc"
    assert main(["codec", "encode", str(src), str(v3), "--model", str(model), "--bitrate", "10"]) == 0
    printed = capsys.readouterr().out
    assert "range-coded" in printed and "true bitrate" in printed and "codes alone" in printed
    assert main(["codec", "encode", str(src), str(v2), "--model", str(model), "--bitrate", "10", "--no-entropy"]) == 0
    assert "bit-packed" in capsys.readouterr().out
    assert v3.read_bytes()[4] == 3 and v2.read_bytes()[4] == 2
    assert np.array_equal(read_sgc(v3, tables).codes, read_sgc(v2).codes)
    bitrate = v3.stat().st_size * 8 / 1.0 / 1000
    assert f"true bitrate {bitrate:.2f} kbps" in printed

    outs = []
    for sgc in (v3, v2):
        out = tmp_path / f"{sgc.stem}.wav"
        assert main(["codec", "decode", str(sgc), str(out), "--model", str(model)]) == 0
        outs.append(sf.read(out)[0])
    assert np.array_equal(outs[0], outs[1])

    (model / ENTROPY_FILE).unlink()  # the tables that coded the file are gone
    assert main(["codec", "decode", str(v3), str(tmp_path / "c.wav"), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"tables {tables.hash_id}" in err and "no entropy tables" in err and "\n" not in err
    assert not (tmp_path / "c.wav").exists()
    assert main(["codec", "encode", str(src), str(tmp_path / "d.sgc"), "--model", str(model), "--entropy"]) == 2
    assert "fit-entropy" in capsys.readouterr().err
    assert main(["codec", "encode", str(src), str(tmp_path / "d.sgc"), "--model", str(model)]) == 0  # version 2
    assert (tmp_path / "d.sgc").read_bytes()[4] == 2


def test_fit_entropy_from_a_dataset_and_refusing_other_codecs_tokens(
    model_and_tokens: tuple[Path, Path], tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, tokens = model_and_tokens
    assert main(["codec", "fit-entropy", str(model), "--data", str(tiny_dataset)]) == 0
    assert (model / ENTROPY_FILE).is_file()
    torch.manual_seed(1)
    other = save_codec(build_codec(CodecConfig.tiny()), tmp_path / "other")
    capsys.readouterr()
    assert main(["codec", "fit-entropy", str(other), "--tokens", str(tokens)]) == 2
    assert "another codec" in capsys.readouterr().err
    assert not (other / ENTROPY_FILE).exists()


def test_true_rate_codebooks_takes_the_most_that_fit() -> None:
    rates = {1: 0.4, 2: 0.9, 3: 1.4, 4: 1.9}
    assert true_rate_codebooks(rates, 1.5) == 3
    assert true_rate_codebooks(rates, 9.0) == 4
    assert true_rate_codebooks(rates, 0.1) is None


def test_tables_carry_over_to_a_decoder_trained_on_the_same_codes(
    model_and_tokens: tuple[Path, Path], tmp_path: Path, signal: Callable[..., np.ndarray],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from soundgen.codec.io import codes_hash

    model, tokens = model_and_tokens
    assert main(["codec", "fit-entropy", str(model), "--tokens", str(tokens), "--max-contexts", "4"]) == 0
    original = load_codec(model)
    tables = load_tables(model, original.model_hash)
    assert tables is not None

    retrained = load_codec(model)  # a new decoder for the same codes
    with torch.no_grad():
        for p in retrained.decoder.parameters():
            p.add_(0.01)
    new_dir = save_codec(retrained, tmp_path / "new-decoder")
    new = load_codec(new_dir)
    assert new.model_hash != original.model_hash and codes_hash(new) == codes_hash(original)
    assert load_tables(new_dir, new.model_hash) is None
    capsys.readouterr()
    assert main(["codec", "fit-entropy", str(new_dir), "--tables-from", str(model)]) == 0
    assert "same codes" in capsys.readouterr().out
    copied = load_tables(new_dir, new.model_hash, strict=True)
    assert copied is not None and copied.digest == tables.digest

    src, sgc = tmp_path / "in.wav", tmp_path / "a.sgc"
    sf.write(src, signal(1.0, 8000), 8000)
    assert main(["codec", "encode", str(src), str(sgc), "--model", str(new_dir), "--bitrate", "10"]) == 0
    assert sgc.read_bytes()[4] == 3  # range-coded with the copied tables
    assert main(["codec", "decode", str(sgc), str(tmp_path / "a.wav"), "--model", str(new_dir)]) == 0

    other = load_codec(model)  # another encoder writes other codes: its tables would not fit
    with torch.no_grad():
        next(other.encoder.parameters()).add_(0.01)
    other_dir = save_codec(other, tmp_path / "other-encoder")
    capsys.readouterr()
    assert main(["codec", "fit-entropy", str(other_dir), "--tables-from", str(model)]) == 2
    assert "other codes" in capsys.readouterr().err
    assert not (other_dir / ENTROPY_FILE).exists()
