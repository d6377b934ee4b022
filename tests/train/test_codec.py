"""Codec training: the loss goes down on a fixed batch, runs resume, export/load round trip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from soundgen.cli.main import main
from soundgen.codec import CodecRunConfig
from soundgen.codec.balancer import Balancer
from soundgen.codec.io import load_codec, weights_hash
from soundgen.errors import CorruptFileError, ModelNotFoundError
from soundgen.train.codec import CodecTrainer, export_run


def test_training_steps_lower_the_loss_on_a_fixed_batch(signal: Callable[..., object]) -> None:
    torch.manual_seed(0)
    cfg = CodecRunConfig.tiny()
    cfg.train.lr = 3e-3
    cfg.train.discriminator = False
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    wav = torch.stack([torch.as_tensor(signal(0.128, 8000, seed=i)) for i in range(2)])[:, None]
    first = trainer.train_step(wav)
    for _ in range(8):
        last = trainer.train_step(wav)
    assert last["loss/mel"] < 0.9 * first["loss/mel"]
    assert last["vq/perplexity/0"] >= 1.0 and "vq/expired_codes/0" in last


def test_discriminator_switches_on_after_warmup() -> None:
    cfg = CodecRunConfig.tiny()
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    wav = torch.randn(2, 1, 1024) * 0.1
    before = [p.clone() for p in trainer.disc.parameters()]
    out = trainer.train_step(wav)
    assert "loss/adv" not in out and all(
        torch.equal(a, b) for a, b in zip(before, trainer.disc.parameters(), strict=True)
    )
    trainer.train_step(wav)
    out = trainer.train_step(wav)  # step 2 = disc_start_step
    assert {"loss/adv", "loss/feat", "loss/disc"} <= set(out)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.disc.parameters(), strict=True))


def test_discriminator_every_k_steps_on_a_window() -> None:
    cfg = CodecRunConfig.tiny()
    cfg.train.disc_start_step, cfg.train.disc_every = 1, 3
    cfg.train.disc_crop_seconds = 0.032  # 256 of the 1024 samples at 8 kHz
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    seen: list[int] = []
    trainer.disc.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[-1]))
    wav = torch.randn(2, 1, 1024) * 0.1
    active = []
    for _ in range(8):
        before = [p.clone() for p in trainer.disc.parameters()]
        out = trainer.train_step(wav)
        changed = any(not torch.equal(a, b) for a, b in zip(before, trainer.disc.parameters(), strict=True))
        assert changed == ("loss/disc" in out) == ("loss/adv" in out)
        active.append(changed)
    assert active == [False, True, False, False, True, False, False, True]  # steps 1, 4, 7
    assert seen and set(seen) == {256}  # every pass through the discriminator saw the window only


def test_discriminator_settings_are_checked() -> None:
    from soundgen.codec.config import CodecTrainConfig

    with pytest.raises(ValueError, match="disc_every"):
        CodecTrainConfig(disc_every=0)
    with pytest.raises(ValueError, match="disc_crop_seconds"):
        CodecTrainConfig(disc_crop_seconds=-1.0)


def test_balancer_gives_each_loss_its_share_of_the_gradient() -> None:
    out = torch.randn(4, 1, 100, requires_grad=True)
    losses = {"big": 1000 * out.pow(2).mean(), "small": 0.001 * out.abs().mean()}
    grad, norms = Balancer({"big": 1.0, "small": 3.0}, ema_decay=0.0).gradient(losses, out)
    (g_big,) = torch.autograd.grad(losses["big"], out, retain_graph=True)
    (g_small,) = torch.autograd.grad(losses["small"], out)
    per_example = lambda g: float(g.norm(dim=(1, 2)).mean())  # noqa: E731
    expected = 0.25 * g_big / per_example(g_big) + 0.75 * g_small / per_example(g_small)
    torch.testing.assert_close(grad, expected)
    assert norms["big"] > 1e4 * norms["small"]


def _train(data: Path, run: Path, *extra: str) -> int:
    return main(
        ["codec", "train", "--config", "configs/codec/tiny.yaml", "--data", str(data), "--out", str(run), *extra]
    )


def test_train_cli_resumes_and_exports(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert _train(tiny_dataset, run, "--steps", "2", "--train.lr=2e-3", "--train.eval_every=1") == 0
    assert "trained to step 2" in capsys.readouterr().out
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000002.pt"]
    assert any((run / "tb").iterdir())
    assert _train(tiny_dataset, run, "--steps", "4", "--train.lr=2e-3", "--train.eval_every=1") == 0
    out = capsys.readouterr().out
    assert "trained to step 4" in out and "valid @ 5 kbps" in out
    state = torch.load(run / "checkpoints" / "step_00000004.pt", weights_only=True)
    assert state["step"] == 4

    model = tmp_path / "model"
    assert main(["codec", "export", str(run), "--out", str(model)]) == 0
    codec = load_codec(model)
    assert codec.sample_rate == 8000 and not codec.training
    reference = export_run(run, tmp_path / "again")
    assert weights_hash(load_codec(reference)) == codec.model_hash
    half = export_run(run, tmp_path / "half", fp16=True)
    assert (half / "model.safetensors").stat().st_size < (model / "model.safetensors").stat().st_size


def test_train_cli_rejects_unknown_override(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tiny_dataset, tmp_path / "r", "--train.lr=fast") == 2
    assert "train.lr" in capsys.readouterr().err


def test_load_codec_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        load_codec(tmp_path / "nothing")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{not json")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CorruptFileError):
        load_codec(tmp_path / "m")


def test_lr_decay_schedule() -> None:
    from soundgen.codec.config import CodecTrainConfig
    from soundgen.train.codec import codec_learning_rate as lr_at

    constant = CodecTrainConfig(lr=1e-3)
    assert {lr_at(constant, s) for s in (0, 10, 10**6)} == {1e-3}
    t = CodecTrainConfig(lr=1e-3, lr_decay_start=100, lr_decay_steps=50, lr_min_ratio=0.2)
    assert lr_at(t, 0) == lr_at(t, 100) == 1e-3
    assert lr_at(t, 125) == pytest.approx(0.6e-3)  # halfway down the cosine
    assert lr_at(t, 150) == lr_at(t, 10**6) == pytest.approx(0.2e-3)
    values = [lr_at(t, s) for s in range(90, 160)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    for bad in ({"lr_decay_steps": 0}, {"lr_min_ratio": 1.5}, {"lr_decay_start": -1}):
        with pytest.raises(ValueError):
            CodecTrainConfig(**bad)  # type: ignore[arg-type]


def test_a_resumed_run_follows_a_decay_added_later() -> None:
    torch.manual_seed(0)
    cfg = CodecRunConfig.tiny()
    cfg.train.discriminator = False
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    wav = torch.randn(2, 1, 1024) * 0.1
    for _ in range(2):
        assert trainer.train_step(wav)["lr"] == cfg.train.lr
    state = trainer.state_dict()  # a checkpoint of a constant-lr run

    later = CodecRunConfig.tiny()
    later.train.discriminator = False
    later.train.lr_decay_start, later.train.lr_decay_steps, later.train.lr_min_ratio = 2, 2, 0.5
    resumed = CodecTrainer(later, torch.device("cpu"))
    resumed.load_state_dict(state)
    seen = [resumed.train_step(wav)["lr"] for _ in range(3)]  # steps 2, 3, 4
    assert seen == pytest.approx([later.train.lr, 0.75 * later.train.lr, 0.5 * later.train.lr])
    assert all(g["lr"] == pytest.approx(seen[-1]) for g in (*resumed.opt_g.param_groups, *resumed.opt_d.param_groups))


def test_train_cli_rejects_a_bad_lr_decay(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tiny_dataset, tmp_path / "r", "--train.lr_min_ratio=2") == 2
    err = capsys.readouterr().err
    assert "lr_min_ratio" in err and "Traceback" not in err
