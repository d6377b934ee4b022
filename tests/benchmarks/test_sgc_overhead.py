"""benchmarks/sgc_overhead.py: the parts of real .sgc files add up to their size, and the fixed overhead is what
makes short clips' true bitrate exceed the nominal one."""

from __future__ import annotations

import numpy as np
import torch

from bench_helpers import load_benchmark
from soundgen.codec import CodecConfig, build_codec
from soundgen.codec.entropy import fit_tables


def test_overhead_is_fixed_bytes_that_weigh_most_on_short_clips() -> None:
    bench = load_benchmark("sgc_overhead")
    torch.manual_seed(0)
    codec = build_codec(CodecConfig.tiny()).eval()
    rng = np.random.default_rng(0)
    tables, _ = fit_tables([rng.integers(0, 32, (4, 400)) for _ in range(4)], 32, 4, show_progress=False)
    audio = bench.audio_source(None, codec.sample_rate, 20.0)
    with torch.no_grad():
        rows = bench.measure(codec, tables, audio, [5.0], windows=1)  # parts_of asserts the parts add up
    assert {r["version"] for r in rows} == {2, 3} and [r["seconds"] for r in rows if r["version"] == 2] == list(
        bench.DURATIONS)
    for version in (2, 3):
        mine = sorted((r for r in rows if r["version"] == version), key=lambda r: r["seconds"])
        fixed = [r["overhead_bytes"] - r["framing_bytes"] for r in mine]
        assert max(fixed) - min(fixed) <= 8  # fixed: only the header's digits of length and frame count vary
        assert all(r["framing_bytes"] == (12 if version == 2 else 13) * np.ceil(r["seconds"] * 500 / 1500)
                   for r in mine)  # one chunk per 1500 frames
        assert all(r["trailer_bytes"] == 44 and r["prefix_bytes"] == 9 for r in mine)
        kbps = [r["overhead_kbps"] for r in mine]
        assert kbps == sorted(kbps, reverse=True) and kbps[0] > 10 * kbps[-1] * 0.9  # 0.5 s vs 10 s: ~20x
        assert all(r["file_kbps"] > r["codes_kbps"] for r in mine)
        assert all(0 < r["header_short_hash_bytes"] < r["header_bytes"] for r in mine)  # the hash's 48 digits
    v2 = next(r for r in rows if r["version"] == 2 and r["seconds"] == 10.0)
    assert abs(v2["codes_kbps"] - 5.0) < 0.05  # bit-packed codes are the nominal rate exactly
