"""The in-project audio classifier: a small CNN on log-mel spectrograms, trained on a dataset's categories.

It judges generated sound (prompt adherence: does the classifier hear the prompt's category?) and gives the
embeddings of the Fréchet distance. Its own held-out accuracy is reported so readers know how far to trust it.
A classifier directory holds ``config.json`` (labels, features), ``model.safetensors`` and ``report.json``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from soundgen.audio.spectral import mel_filterbank
from soundgen.config import config_from_dict
from soundgen.errors import CorruptFileError, ModelNotFoundError, SoundgenError
from soundgen.utils import atomic_path, atomic_write, progress

if TYPE_CHECKING:
    from soundgen.codec.model import Codec

log = logging.getLogger(__name__)


class ClassifierDataError(SoundgenError):
    """The dataset cannot train a classifier (no categories with enough clips, no held-out clips)."""


@dataclass
class ClassifierConfig:
    """Features and shape of the classifier.

    Attributes:
        labels: category names, in output order.
        sample_rate: audio is resampled to this rate before features.
        n_fft: STFT size.
        hop: STFT hop in samples.
        n_mels: mel bands.
        channels: channels of the conv stages (each halves time and frequency).
        embed_dim: width of the embedding before the output layer.
        segment: seconds the classifier looks at; longer clips are averaged over windows.
    """

    labels: list[str] = field(default_factory=list)
    sample_rate: int = 16000
    n_fft: int = 512
    hop: int = 160
    n_mels: int = 64
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    embed_dim: int = 128
    segment: float = 2.0


@dataclass
class ClassifierReport:
    """How well the classifier does on held-out clips."""

    labels: list[str]
    accuracy: float
    chance: float
    eval_split: str
    eval_clips: int
    train_clips: int
    per_label: dict[str, float] = field(default_factory=dict)
    codec: str | None = None
    """The codec the classifier also trained through (its model id and hash), or None."""
    codec_accuracy: float | None = None
    """With ``codec``: accuracy on the same held-out clips after a round trip through it (at codebook counts drawn
    as in training)."""


class AudioClassifier(nn.Module):
    """Log-mel CNN: ``wav [B, T]`` -> embedding ``[B, E]`` -> logits ``[B, labels]``."""

    mel: torch.Tensor

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mel", mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels), persistent=False)
        layers: list[nn.Module] = []
        c_in = 1
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.embed_layer = nn.Linear(c_in, cfg.embed_dim)
        self.out = nn.Linear(cfg.embed_dim, len(cfg.labels))

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> log-mel ``[B, 1, n_mels, frames]``."""
        window = torch.hann_window(self.cfg.n_fft, device=wav.device)
        spec = torch.stft(wav, self.cfg.n_fft, self.cfg.hop, window=window, return_complex=True).abs() ** 2
        return torch.log(self.mel @ spec + 1e-6)[:, None]

    def embed(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> ``[B, embed_dim]`` (the Fréchet-distance embedding)."""
        x = self.features(wav)
        x = (x - x.mean(dim=(2, 3), keepdim=True)) / 4.0  # gain-invariant, roughly unit scale
        x = self.convs(x)
        x = x.amax(dim=2).mean(dim=-1)  # max over frequency, mean over time: [B, C]
        return F.relu(self.embed_layer(x))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(wav))

    @torch.no_grad()
    def analyse(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean class probabilities ``[labels]`` and mean embedding ``[E]`` over windows of one clip ``[T]``.

        ``audio`` must be mono at ``cfg.sample_rate``.
        """
        windows = _windows(audio, int(self.cfg.segment * self.cfg.sample_rate))
        wav = torch.from_numpy(windows).to(self.mel.device)
        emb = self.embed(wav)
        probs = torch.softmax(self.out(emb), dim=-1)
        return probs.mean(0).cpu().numpy(), emb.mean(0).cpu().numpy()


def _windows(audio: np.ndarray, size: int) -> np.ndarray:
    """Half-overlapping windows ``[N, size]`` covering a clip ``[T]`` (zero-padded when short)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.shape[-1] <= size:
        return np.pad(x, (0, size - x.shape[-1]))[None]
    hop = size // 2
    starts = list(range(0, x.shape[-1] - size + 1, hop))
    if starts[-1] + size < x.shape[-1]:
        starts.append(x.shape[-1] - size)
    return np.stack([x[s : s + size] for s in starts])


def save_classifier(model: AudioClassifier, out_dir: str | Path, report: ClassifierReport) -> None:
    """Write ``config.json``, ``model.safetensors`` and ``report.json`` (each atomically)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    with atomic_write(out / "config.json", "w") as f:
        json.dump({"format": "soundgen-classifier", "version": 1, "model": asdict(model.cfg)}, f, indent=2)
    with atomic_write(out / "report.json", "w") as f:
        json.dump(asdict(report), f, indent=2)


def load_classifier(model_dir: str | Path) -> tuple[AudioClassifier, ClassifierReport | None]:
    """Load a classifier (eval mode) and its training report."""
    from safetensors.torch import load_file

    root = Path(model_dir)
    if not (root / "config.json").is_file() or not (root / "model.safetensors").is_file():
        raise ModelNotFoundError(
            f"no classifier at {root}; train one with 'soundgen eval train-classifier --data DATASET --out {root}'"
        )
    try:
        meta = json.loads((root / "config.json").read_text(encoding="utf-8"))
        cfg = config_from_dict(ClassifierConfig, meta["model"])
        model = AudioClassifier(cfg)
        model.load_state_dict(load_file(str(root / "model.safetensors")))
        report = read_classifier_report(root)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SoundgenError) as e:
        raise CorruptFileError(f"cannot read the classifier at {root}: {e}; train it again") from e
    return model.eval(), report


def read_classifier_report(model_dir: str | Path) -> ClassifierReport | None:
    """The training report (``report.json``) of a classifier directory, or ``None`` when it has none.

    Raises:
        CorruptFileError: the file is there but is not a classifier report.
    """
    path = Path(model_dir) / "report.json"
    if not path.is_file():
        return None
    try:
        return ClassifierReport(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as e:
        raise CorruptFileError(f"{path} is not a classifier report ({e}); train the classifier again") from e


def load_split(
    dataset_dir: str | Path,
    split: str,
    labels: list[str] | None,
    sample_rate: int,
    max_per_label: int,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[str]]:
    """Mono clips at ``sample_rate`` and their categories (only ``labels`` when given; never 'other')."""
    from soundgen.audio.io import read_audio
    from soundgen.data.manifest import manifest_path, read_manifest

    if not manifest_path(dataset_dir, split).is_file():
        return [], []
    clips = [c for c in read_manifest(dataset_dir, split) if c.category != "other"]
    if labels is not None:
        clips = [c for c in clips if c.category in labels]
    order = rng.permutation(len(clips))
    kept, count = [], Counter[str]()
    for i in order:
        clip = clips[int(i)]
        if count[clip.category] < max_per_label:
            kept.append(clip)
            count[clip.category] += 1
    audio = [
        read_audio(c.path(dataset_dir), sample_rate=sample_rate, channels=1).samples[0]
        for c in progress(kept, desc=f"read {split}", unit="clip")
    ]
    return audio, [c.category for c in kept]


def evaluate_classifier(
    model: AudioClassifier, audio: list[np.ndarray], labels: list[str]
) -> tuple[float, dict[str, float]]:
    """Clip-level accuracy (windows averaged) overall and per label."""
    model.eval()
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for x, y in zip(audio, labels, strict=True):
        probs, _ = model.analyse(x)
        totals[y] += 1
        hits[y] += int(model.cfg.labels[int(np.argmax(probs))] == y)
    acc = sum(hits.values()) / max(1, sum(totals.values()))
    return acc, {k: hits[k] / totals[k] for k in sorted(totals)}


def codebook_range(codec: Codec) -> list[int]:
    """Every codebook count from the codec's smallest bitrate to all its codebooks (the round trips draw from it)."""
    smallest = min(codec.config.codebooks_for_bitrate(kbps) for kbps in codec.config.bitrates)
    return list(range(smallest, codec.config.n_codebooks + 1))


@torch.no_grad()
def codec_round_trips(
    codec: Codec,
    clips: list[np.ndarray],
    sample_rate: int,
    choices: list[int],
    seed: int,
    desc: str = "clips",
    max_seconds: float = 0.0,
) -> list[np.ndarray]:
    """``clips`` (mono at ``sample_rate``) after encoding and decoding with ``codec``, each at a number of codebooks
    drawn from ``choices``; same rate, same lengths, or with ``max_seconds > 0`` an excerpt of at most that long from
    a random place in longer clips (training crops need no more; a corpus of 30 s tracks would otherwise cost
    minutes). The codec's codebook setting is restored afterwards."""
    from soundgen.audio.io import resample

    rng = np.random.default_rng([seed, sum(map(ord, desc))])
    device = next(codec.parameters()).device
    before = codec.n_codebooks
    out = []
    try:
        for clip in progress(clips, desc=f"codec round trips ({desc})", unit="clip"):
            codec.set_n_codebooks(int(rng.choice(choices)))
            keep = int(max_seconds * sample_rate)
            if 0 < keep < len(clip):
                start = int(rng.integers(0, len(clip) - keep + 1))
                clip = clip[start : start + keep]
            wav = torch.from_numpy(resample(clip[None], sample_rate, codec.sample_rate).astype(np.float32))
            decoded = codec.decode(codec.encode(wav[None].to(device)))[0].mean(0)[: wav.shape[-1]].float().cpu().numpy()
            back = resample(decoded[None], codec.sample_rate, sample_rate)[0]
            back = np.pad(back, (0, max(0, len(clip) - len(back))))[: len(clip)]
            out.append(back.astype(np.float32))
    finally:
        codec.set_n_codebooks(before)
    return out
