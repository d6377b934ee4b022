"""LM training on a token cache: resume, TensorBoard, export, load and generate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from soundgen.codec.io import load_codec
from soundgen.errors import ConfigError, InvalidRequestError, ModelNotFoundError
from soundgen.lm.config import LMRunConfig
from soundgen.lm.io import load_lm
from soundgen.model_files import read_example_prompts
from soundgen.pipeline import GenerationRequest, TextToSound
from soundgen.train.export import ExportError, export_model, load_run
from soundgen.train.lm import train_lm


def _tags(tb: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb), size_guidance={"audio": 0, "images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    return {*tags["scalars"], *tags["audio"], *tags["images"]}


def test_train_resume_log_export_generate(assets: Any, tmp_path: Path) -> None:
    cfg = LMRunConfig.tiny()
    cfg.train.steps = 3
    codec = load_codec(assets.codec_dir)
    first = train_lm(cfg, assets.tokens, tmp_path / "run", codec)
    assert first.step == 3 and "loss" in first.validation
    cfg.train.steps = 6
    second = train_lm(cfg, assets.tokens, tmp_path / "run", codec)  # resumes at 3
    assert second.step == 6
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()][-1].startswith("step_")
    tags = _tags(tmp_path / "run" / "tb")
    for tag in (
        "train/loss",
        "train/perplexity",
        "train/ce_codebook_1",
        "train/accuracy_codebook_0",
        "valid/loss",
        "samples/0",
        "spectrograms/0",
    ):
        assert tag in tags

    out = tmp_path / "model"
    assert export_model(tmp_path / "run", assets.codec_dir, out).step == 6
    assert {p.name for p in out.iterdir()} == {"codec", "lm", "MODEL_CARD.md", "prompts.json"}
    prompts = read_example_prompts(out)
    assert prompts is not None and {p.split()[1] for p in prompts} == {"tone", "noise", "click"}
    assert json.loads((out / "lm" / "config.json").read_text())["text_encoder"] == "hashed"
    assert "test: 12 clips, licence: CC0" in (out / "MODEL_CARD.md").read_text()
    with pytest.raises(ExportError, match="already exists"):
        export_model(tmp_path / "run", assets.codec_dir, out)

    trained, _ = load_run(tmp_path / "run")
    loaded = load_lm(out / "lm")
    memory = [m.lm.memory(m.conditioner.encode(["a tone sound"])) for m in (trained, loaded)]
    tokens = torch.randint(0, 32, (1, 2, 9))
    torch.testing.assert_close(trained.lm(tokens, memory[0]), loaded.lm(tokens, memory[1]))

    tts = TextToSound.load(out)
    result = tts.generate(GenerationRequest("a tone sound", duration=0.06, seed=1))
    assert result.audio[0].shape == (1, 480)
    half = TextToSound.load(out, dtype="bfloat16")
    assert half.lm.dtype == torch.bfloat16
    assert half.generate(GenerationRequest("a tone sound", duration=0.06, seed=1)).audio[0].shape == (1, 480)
    h16 = tmp_path / "model16"
    export_model(tmp_path / "run", assets.codec_dir, h16, fp16=True)
    size = {d: (d / "lm" / "model.safetensors").stat().st_size for d in (out, h16)}
    assert size[h16] < 0.6 * size[out]
    assert json.loads((h16 / "lm" / "config.json").read_text())["dtype"] == "float16"
    loaded16 = load_lm(h16 / "lm")
    assert all(p.dtype == torch.float32 for p in loaded16.lm.parameters())  # stored half, computed in float32
    mem16 = loaded16.lm.memory(loaded16.conditioner.encode(["a tone sound"]))
    torch.testing.assert_close(loaded16.lm(tokens, mem16), loaded.lm(tokens, memory[1]), atol=2e-2, rtol=2e-2)


def test_config_must_fit_the_tokens(assets: Any, tmp_path: Path) -> None:
    cfg = LMRunConfig.tiny()
    cfg.model.n_codebooks = 8
    with pytest.raises(ConfigError, match="holds 4 codebooks"):
        train_lm(cfg, assets.tokens, tmp_path / "run")
    cfg = LMRunConfig.tiny()
    cfg.train.segment_frames = 1000
    with pytest.raises(ConfigError, match="segment_frames"):
        train_lm(cfg, assets.tokens, tmp_path / "run")


@pytest.mark.parametrize("name", ["default", "small", "musicgen_small_size"])
def test_shipped_configs_load(name: str) -> None:
    from soundgen.config import load_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(LMRunConfig, root / "configs" / "lm" / f"{name}.yaml")
    assert cfg.train.segment_frames <= cfg.model.max_frames



@pytest.mark.parametrize("dtype", ["int8", "float16"])
def test_a_removed_or_unknown_dtype_is_refused_before_loading(dtype: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="no longer offered: its decoding steps were" if dtype == "int8"
                       else "dtype must be one of float32, bfloat16"):
        TextToSound.load(tmp_path / "nothing here", dtype=dtype)  # type: ignore[arg-type]


def test_init_starts_a_new_run_from_a_released_model(assets: Any, tmp_path: Path) -> None:
    cfg = LMRunConfig.tiny()
    cfg.train.steps = 3
    codec = load_codec(assets.codec_dir)
    train_lm(cfg, assets.tokens, tmp_path / "run", codec)
    export_model(tmp_path / "run", assets.codec_dir, tmp_path / "released")
    released = load_lm(tmp_path / "released" / "lm")

    other = LMRunConfig.tiny()
    other.model.d_model, other.model.n_heads = 48, 4  # a config of another shape: the released model's wins
    other.train.steps, other.train.lr, other.train.warmup_steps = 1, 1e-12, 1  # one step that barely moves
    result = train_lm(other, assets.tokens, tmp_path / "tuned", codec, init=tmp_path / "released")
    assert result.step == 1
    state = torch.load(next((tmp_path / "tuned" / "checkpoints").iterdir()), weights_only=True)
    assert state["config"]["d_model"] == released.lm.cfg.d_model == 32
    for name, value in released.lm.state_dict().items():  # started from the released weights
        assert torch.allclose(state["model"][name].float(), value.float(), atol=1e-5), name
    again = train_lm(other, assets.tokens, tmp_path / "tuned", codec, init=tmp_path / "released")
    assert again.step == 1 and again.steps_per_second == 0  # resumed, not re-initialised
    with pytest.raises(ModelNotFoundError, match="no released LM"):
        train_lm(other, assets.tokens, tmp_path / "x", codec, init=tmp_path / "nowhere")
