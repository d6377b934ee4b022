"""benchmarks/codec_speed.py times the SEANet and the Fourier-head decoder beside EnCodec in one run."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from bench_helpers import load_benchmark
from soundgen.codec import CodecRunConfig


def test_both_decoders_are_timed_with_ratios_to_encodec_and_to_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_benchmark("codec_speed")
    for name in ("torchaudio", "torchaudio.transforms"):  # the stand-in must not outlive the test: other packages
        if name not in sys.modules:  # (transformers) probe for torchaudio and fail on a module without a spec
            monkeypatch.setitem(sys.modules, name, None)
            monkeypatch.delitem(sys.modules, name)
    try:
        peer = bench.load_encodec()  # with its stand-in for torchaudio
    except ImportError as e:
        pytest.skip(f"the peer needs the encodec package (pip install encodec einops): {e}")
    seanet = CodecRunConfig.tiny()
    fourier = dataclasses.replace(seanet, model=dataclasses.replace(seanet.model, decoder="fourier", fourier_dim=16,
                                                                      fourier_blocks=1))
    result = bench.inference(0.25, 1, {"seanet": seanet, "fourier": fourier}, peer)
    assert result["encodec_encode_x_realtime"] > 0 and result["encodec_decode_x_realtime"] > 0
    assert [result["configs"][n]["decoder"] for n in ("seanet", "fourier")] == ["seanet", "fourier"]
    first = result["configs"]["seanet"]
    for entry in result["configs"].values():
        for what in ("encode", "decode"):
            rt = entry[f"{what}_x_realtime"]
            assert rt > 0
            assert entry[f"{what}_ratio_to_encodec"] == pytest.approx(rt / result[f"encodec_{what}_x_realtime"])
            assert entry[f"{what}_ratio_to_seanet"] == pytest.approx(rt / first[f"{what}_x_realtime"])
    assert result["configs"]["seanet"]["decode_ratio_to_seanet"] == 1.0
