"""benchmarks/codec_disc_cost.py: prices the discriminator's steps beside the plain step, in one run."""

from __future__ import annotations

import json
from pathlib import Path

from bench_helpers import load_benchmark
from soundgen.codec import CodecRunConfig
from soundgen.config import save_config


def test_benchmark_times_every_mode_beside_the_plain_step(tmp_path: Path) -> None:
    bench = load_benchmark("codec_disc_cost")
    config = tmp_path / "tiny.yaml"
    save_config(CodecRunConfig.tiny(), config)
    out = tmp_path / "cost.json"
    assert bench.main(["--config", str(config), "--every", "1,3", "--repeats", "1", "--crop", "0.05",
                       "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["seconds_per_step"]) == {"plain", "adversarial", "every_3"}
    assert result["ratio_to_plain"]["plain"] == 1.0
    assert all(v > 0 for v in result["seconds_per_step"].values())
    assert result["disc_crop_seconds"] == 0.05 and result["threads"] == 1
