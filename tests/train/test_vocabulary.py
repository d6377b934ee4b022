"""Both training loops speak one vocabulary: interval and autocast names, one lr schedule, one result type; run
directories and YAML files written with the old names still load."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from soundgen.codec.config import CodecRunConfig, CodecTrainConfig
from soundgen.config import config_from_dict, load_config
from soundgen.errors import ConfigError
from soundgen.lm.config import LMRunConfig, LMTrainParams
from soundgen.train.codec import codec_learning_rate
from soundgen.train.common import by_bitrate, learning_rate, use_autocast
from soundgen.train.lm import lm_learning_rate


def test_both_loops_name_their_intervals_and_autocast_alike() -> None:
    codec, lm = CodecTrainConfig(), LMTrainParams()
    for name in ("checkpoint_every", "eval_every", "log_every", "keep_checkpoints", "autocast", "threads", "seed"):
        assert hasattr(codec, name) and hasattr(lm, name), name
    choices = {f.name: f.type for f in CodecTrainConfig.__dataclass_fields__.values()}["autocast"]
    assert choices == {f.name: f.type for f in LMTrainParams.__dataclass_fields__.values()}["autocast"]


def test_old_names_in_run_directories_still_load(tmp_path: Path) -> None:
    old_lm = tmp_path / "lm.yaml"
    old_lm.write_text("train: {valid_every: 7, autocast: 'on', checkpoint_every: 3}\n")
    lm = load_config(LMRunConfig, old_lm)
    assert (lm.train.eval_every, lm.train.autocast, lm.train.checkpoint_every) == (7, "bf16", 3)
    assert load_config(LMRunConfig, None, ["train.autocast=off"]).train.autocast == "fp32"
    old_codec = tmp_path / "codec.yaml"
    old_codec.write_text("train: {save_every: 11}\n")
    assert load_config(CodecRunConfig, old_codec).train.checkpoint_every == 11
    # a checkpoint's dict (no defaults merged in) reads the same way
    assert config_from_dict(LMTrainParams, {"valid_every": 5}).eval_every == 5
    with pytest.raises(ConfigError, match="old name"):
        config_from_dict(LMTrainParams, {"valid_every": 5, "eval_every": 6})
    with pytest.raises(ConfigError, match="autocast"):
        config_from_dict(LMTrainParams, {"autocast": "sometimes"})


def test_one_lr_schedule() -> None:
    p = LMTrainParams(lr=1e-3, warmup_steps=10, steps=110)
    # what the LM loop computed before it shared the schedule: warm-up, then cosine to 10 % at p.steps
    for step in (0, 5, 9, 10, 40, 60, 109, 110, 500):
        if step < 10:
            old = 1e-3 * (step + 1) / 10
        else:
            done = min(1.0, (step - 10) / 100)
            old = 1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))
        assert lm_learning_rate(p, step) == pytest.approx(old)
    t = CodecTrainConfig(lr=2e-3, lr_decay_start=None)
    assert codec_learning_rate(t, 10**6) == 2e-3
    assert learning_rate(0, 1.0, warmup_steps=4) == 0.25 and learning_rate(4, 1.0, warmup_steps=4) == 1.0


def test_autocast_choice_and_validation_groups() -> None:
    import torch

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not use_autocast("auto", cpu) and use_autocast("auto", cuda)
    assert use_autocast("bf16", cpu) and not use_autocast("fp32", cuda)
    grouped = by_bitrate({"mel@6kbps": 1.0, "stft@6kbps": 2.0, "mel@1.5kbps": 3.0, "loss": 4.0})
    assert grouped == {"6kbps": {"mel": 1.0, "stft": 2.0}, "1.5kbps": {"mel": 3.0}, "": {"loss": 4.0}}
