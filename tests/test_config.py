"""Typed configs: YAML + dotted overrides, strict about names and types."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from soundgen.config import config_to_dict, load_config, save_config
from soundgen.errors import ConfigError


@dataclass
class Model:
    channels: int = 32
    strides: list[int] = field(default_factory=lambda: [2, 4])
    activation: Literal["elu", "snake"] = "elu"


@dataclass
class Train:
    lr: float = 1e-3
    steps: int = 100
    amp: bool = True
    resume_from: str | None = None


@dataclass
class Cfg:
    model: Model = field(default_factory=Model)
    train: Train = field(default_factory=Train)

    @classmethod
    def tiny(cls) -> Cfg:
        return cls(model=Model(channels=4), train=Train(steps=2))


def test_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  channels: 64\n  activation: snake\ntrain:\n  lr: 3.0e-4\n")
    cfg = load_config(
        Cfg, path, ["--train.lr=3e-4", "--train.steps=7", "model.strides=[2, 8]", "train.resume_from=null"]
    )
    assert cfg.model == Model(channels=64, strides=[2, 8], activation="snake")
    assert cfg.train.lr == pytest.approx(3e-4) and cfg.train.steps == 7 and cfg.train.resume_from is None
    assert load_config(Cfg, base=Cfg.tiny()).model.channels == 4


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(Cfg, overrides=["train.amp=false"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Cfg, tmp_path / "resolved.yaml") == cfg
    assert config_to_dict(cfg)["train"]["amp"] is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.lrr=1"], r"unknown config key\(s\) train\.lrr"),
        (["train.lr=fast"], "must be a number"),
        (["model.channels=wide"], "must be an integer"),
        (["model.activation=relu"], "is not one of"),
        (["train.amp=maybe"], "true or false"),
        (["train"], "must look like"),
        (["model=3"], "must be a mapping"),
    ],
)
def test_bad_overrides_are_named(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(Cfg, overrides=overrides)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Cfg, bad)
