"""Codec training: reconstruction + commitment losses, a multi-scale STFT discriminator after a warm-up,
EnCodec's loss balancer, resumable runs, TensorBoard logging and validation metrics.

``train_codec(cfg, data_dir, run_dir)`` is what ``soundgen codec train`` runs; :class:`CodecTrainer` holds the
models and optimisers and does one step at a time (tests drive it directly on a fixed batch).

Under ``torchrun`` (see :mod:`soundgen.distributed`) the codec and the discriminator train in
DistributedDataParallel: each rank draws its own batches, gradients and codebook statistics are averaged over
ranks, and rank 0 alone validates, logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from soundgen import distributed
from soundgen.audio.spectral import spectrogram_image
from soundgen.codec.balancer import Balancer
from soundgen.codec.config import CodecRunConfig, CodecTrainConfig
from soundgen.codec.discriminators import MultiScaleSTFTDiscriminator
from soundgen.codec.io import save_codec
from soundgen.codec.losses import (
    MultiScaleLogSTFTLoss,
    MultiScaleMelLoss,
    SpectralMagnitudeLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    waveform_l1,
)
from soundgen.codec.model import Codec, build_codec
from soundgen.codec.quantizer import QuantizedResult
from soundgen.codec.spectral import LOG_FLOOR, log_magnitude
from soundgen.config import config_from_dict
from soundgen.errors import ConfigError, CorruptFileError, ModelNotFoundError, SoundgenError
from soundgen.eval.metrics import mel_distance, si_sdr, stft_distance
from soundgen.train.common import (
    RunDir,
    ScalarLogger,
    TrainResult,
    autocast,
    learning_rate,
    pick_device,
    seed_everything,
    use_autocast,
)
from soundgen.utils import progress

log = logging.getLogger(__name__)


def codec_learning_rate(t: CodecTrainConfig, step: int) -> float:
    """The codec's learning rate at ``step``: ``t.lr``, then from ``t.lr_decay_start`` (if set) a cosine down to
    ``t.lr_min_ratio`` of it over ``t.lr_decay_steps``."""
    return learning_rate(
        step, t.lr, decay_start=t.lr_decay_start, decay_steps=t.lr_decay_steps, min_ratio=t.lr_min_ratio
    )


class CodecTrainer:
    """Models, optimisers and one training step of a codec run.

    Args:
        cfg: the run config.
        device: where to train.

    ``codec`` and ``disc`` are the plain modules (checkpoints, validation); when a process group is initialised
    the training passes go through their DistributedDataParallel wrappers, which average the gradients.
    """

    def __init__(self, cfg: CodecRunConfig, device: torch.device | None = None) -> None:
        self.cfg = cfg
        t = cfg.train
        self.device = device or pick_device(t.device)
        self.codec: Codec = build_codec(cfg.model).to(self.device)
        self.disc = MultiScaleSTFTDiscriminator(t.disc_windows, t.disc_filters).to(self.device)
        betas = (t.betas[0], t.betas[1])
        if t.freeze_encoder:  # the decoder alone learns: every code, and every LM trained on the codes, stays valid
            for part in (self.codec.encoder, self.codec.quantizer):
                part.requires_grad_(False)
        trainable = [p for p in self.codec.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(trainable, lr=t.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=t.lr, betas=betas)
        # DDP wrappers (the modules themselves outside a process group); they share parameters with the above.
        self._codec_train = distributed.wrap_ddp(self.codec, self.device)
        self._disc_train = distributed.wrap_ddp(self.disc, self.device)
        self.mel_loss = MultiScaleMelLoss(cfg.model.sample_rate, t.mel_windows, t.n_mels).to(self.device)
        self.stft_loss = MultiScaleLogSTFTLoss(t.stft_windows).to(self.device) if t.weight_stft > 0 else None
        self.spectral = cfg.model.decoder == "spectral"
        if self.spectral:
            if t.discriminator:
                raise ConfigError("the spectral decoder learns magnitudes only: train.discriminator must be false")
            m = cfg.model
            self.spectral_loss = SpectralMagnitudeLoss(m.sample_rate, m.spectral_n_fft, t.n_mels).to(self.device)
            self.spectral_window = torch.hann_window(m.spectral_n_fft).to(self.device)
        weights = {
            "l1": t.weight_l1, "mel": t.weight_mel, "stft": t.weight_stft, "adv": t.weight_adv, "feat": t.weight_feat
        }
        self.balancer = Balancer({k: v for k, v in weights.items() if v > 0})
        self.step = 0
        self.use_autocast = use_autocast(t.autocast, self.device)

    def disc_started(self) -> bool:
        """Whether the run is past the discriminator's warm-up (it then takes part every ``disc_every`` steps)."""
        return self.cfg.train.discriminator and self.step >= self.cfg.train.disc_start_step

    def disc_active(self) -> bool:
        """Whether the discriminator is trained and used at the current step (every ``disc_every``-th step
        from ``disc_start_step`` on)."""
        t = self.cfg.train
        return self.disc_started() and (self.step - t.disc_start_step) % t.disc_every == 0

    def train_step(self, wav: torch.Tensor) -> dict[str, float]:
        """One optimisation step on ``wav [B, C, T]``; returns losses and codebook metrics."""
        t = self.cfg.train
        self.codec.train()
        if t.freeze_encoder:  # no codebook updates, no k-means, no expiry; quantizer dropout still draws bitrates
            self.codec.encoder.eval()
            for layer in self.codec.quantizer.layers:
                layer.eval()
        wav = wav.to(self.device)
        if self.spectral:
            return self._spectral_step(wav)
        with autocast(self.device, self.use_autocast):
            recon, q = self._codec_train(wav)
        recon = recon.float()
        losses = {"l1": waveform_l1(recon, wav), "mel": self.mel_loss(recon, wav)}
        if self.stft_loss is not None:
            losses["stft"] = self.stft_loss(recon, wav)
        use_disc = self.disc_active()
        if use_disc:
            # The generator's pass through the discriminator uses the plain module with frozen parameters:
            # only the gradient to ``recon`` is wanted, and DDP must see exactly one backward per forward.
            real_in, fake_in = self._disc_window(wav, recon)
            with _frozen(self.disc.parameters()):
                fake = self.disc(fake_in)
                with torch.no_grad():  # real features are targets only
                    real = self.disc(real_in)
            losses["adv"] = hinge_generator_loss(fake.logits)
            losses["feat"] = feature_matching_loss(real.features, fake.features)
        self.opt_g.zero_grad(set_to_none=True)
        out: dict[str, float] = {}
        if t.use_balancer:
            grad, norms = self.balancer.gradient(losses, recon)
            if q.commit_loss.requires_grad:
                torch.autograd.backward([recon, q.commit_loss], [grad, torch.ones_like(q.commit_loss)])
            else:  # a frozen encoder: the commitment loss has nothing to train
                recon.backward(grad)
            out.update({f"grad_norm/{k}": v for k, v in norms.items()})
        else:
            weights = self.balancer.weights
            total = sum((weights.get(k, 0.0) * v for k, v in losses.items()), q.commit_loss)
            total.backward()
        if use_disc:
            self.disc.zero_grad(set_to_none=True)  # generator losses must not train the discriminator
        self._clip_and_schedule(out)
        self.opt_g.step()
        if use_disc:
            out["loss/disc"] = self._disc_step(real_in, fake_in.detach())
        return self._finish(out, losses, q)

    def _spectral_step(self, wav: torch.Tensor) -> dict[str, float]:
        """A training step of a spectral decoder: losses on its log magnitudes (no waveform, no balancer)."""
        m = self.cfg.model
        with autocast(self.device, self.use_autocast):
            pred, q = self._codec_train(wav)
        padded = self.codec._pad(wav)[:, 0]
        ref = log_magnitude(padded, m.spectral_n_fft, m.spectral_hop, self.spectral_window)
        losses = self.spectral_loss(pred.float(), ref, LOG_FLOOR)
        total = sum(losses.values(), q.commit_loss)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        out: dict[str, float] = {}
        self._clip_and_schedule(out)
        self.opt_g.step()
        return self._finish(out, losses, q)

    def _clip_and_schedule(self, out: dict[str, float]) -> None:
        """Clip the generator's gradient and set this step's learning rate (recorded in ``out``)."""
        t = self.cfg.train
        if t.grad_clip > 0:
            params = [p for p in self.codec.parameters() if p.requires_grad]
            out["grad_norm/total"] = float(torch.nn.utils.clip_grad_norm_(params, t.grad_clip))
        lr = codec_learning_rate(t, self.step)
        for group in (*self.opt_g.param_groups, *self.opt_d.param_groups):
            group["lr"] = lr  # a function of the step: a resumed run follows today's schedule, not the checkpoint's
        out["lr"] = lr

    def _finish(self, out: dict[str, float], losses: dict[str, torch.Tensor], q: QuantizedResult) -> dict[str, float]:
        """Count the step and add its losses and codebook metrics to ``out``."""
        self.step += 1
        out.update({f"loss/{k}": float(v.detach()) for k, v in losses.items()})
        out["loss/commit"] = float(q.commit_loss.detach())
        out.update({f"vq/{k}": v for k, v in q.metrics.items()})
        return out

    def _disc_window(self, wav: torch.Tensor, recon: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same random window of ``disc_crop_seconds`` from the real and the reconstructed batch (the whole
        batch when it is 0 or not shorter than the segment)."""
        n = int(round(self.cfg.train.disc_crop_seconds * self.cfg.model.sample_rate))
        if n <= 0 or n >= wav.shape[-1]:
            return wav, recon
        start = int(torch.randint(0, wav.shape[-1] - n + 1, ()))
        return wav[..., start : start + n], recon[..., start : start + n]

    def _disc_step(self, wav: torch.Tensor, fake: torch.Tensor) -> float:
        disc = self._disc_train
        loss = hinge_discriminator_loss(disc(wav).logits, disc(fake).logits)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "codec": self.codec.state_dict(),
            "disc": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "balancer": self.balancer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.codec.load_state_dict(state["codec"])
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.balancer.load_state_dict(state["balancer"])
        self.step = int(state["step"])


@contextlib.contextmanager
def _frozen(params: Iterable[torch.nn.Parameter]) -> Iterator[None]:
    """Within the block the parameters do not require gradients; afterwards they do again."""
    trainable = [p for p in params if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


@dataclass
class ValidationResult:
    """Validation metrics per bitrate (kbps -> metric name -> value) and one example pair ``[T]``."""

    metrics: dict[float, dict[str, float]] = field(default_factory=dict)
    example_ref: torch.Tensor | None = None
    example_out: torch.Tensor | None = None


@torch.no_grad()
def validate(codec: Codec, batches: list[torch.Tensor]) -> ValidationResult:
    """Mel distance, multi-resolution STFT distance and SI-SDR at every configured bitrate."""
    codec.eval()
    result = ValidationResult()
    sr = codec.sample_rate
    for kbps in codec.config.bitrates:
        k = codec.config.codebooks_for_bitrate(kbps)
        refs, outs = [], []
        for wav in batches:
            wav = wav.to(next(codec.parameters()).device)
            recon, _ = codec(wav, n_quantizers=k)
            refs.append(wav.cpu())
            outs.append(recon.float().cpu())
        ref, out = torch.cat(refs), torch.cat(outs)
        result.metrics[kbps] = {
            "mel": mel_distance(ref, out, sr),
            "stft": stft_distance(ref, out),
            "si_sdr": si_sdr(ref, out),
        }
        result.example_ref, result.example_out = ref[0, 0], out[0, 0]
    codec.train()
    return result


def _batches(loader: DataLoader[torch.Tensor]) -> Iterator[torch.Tensor]:
    while True:
        yield from loader


def _loaders(cfg: CodecRunConfig, data_dir: Path) -> tuple[DataLoader[torch.Tensor], list[torch.Tensor]]:
    from soundgen.data.datasets import AudioCropDataset

    t, m = cfg.train, cfg.model
    train = AudioCropDataset(
        data_dir, "train", t.segment_seconds, m.sample_rate, pitch_shift_semitones=t.pitch_shift_semitones
    )
    loader = DataLoader(train, batch_size=t.batch_size, shuffle=True, num_workers=t.num_workers, drop_last=False)
    try:
        valid = AudioCropDataset(data_dir, "valid", t.segment_seconds, m.sample_rate, seed=t.seed)
    except SoundgenError as e:  # no usable valid split: validate on fixed training crops
        log.info("no usable valid split (%s); validating on fixed training crops", e)
        valid = AudioCropDataset(data_dir, "train", t.segment_seconds, m.sample_rate, seed=t.seed)
    vloader = DataLoader(valid, batch_size=t.batch_size, shuffle=False)
    return loader, list(itertools.islice(iter(vloader), t.valid_batches))


def _log_validation(logger: ScalarLogger, res: ValidationResult, step: int, sample_rate: int) -> None:
    for kbps, metrics in res.metrics.items():
        for name, value in metrics.items():
            logger.scalar(f"valid/{name}@{kbps:g}kbps", value, step)
    if res.example_ref is not None and res.example_out is not None:
        logger.audio("audio/reference", res.example_ref, step, sample_rate)
        logger.audio("audio/reconstruction", res.example_out, step, sample_rate)
        logger.image("spectrogram/reference", spectrogram_image(res.example_ref.float().cpu().numpy()), step)
        logger.image("spectrogram/reconstruction", spectrogram_image(res.example_out.float().cpu().numpy()), step)


def _log_step(logger: ScalarLogger, losses: dict[str, float], x_realtime: float, step: int) -> None:
    for name, value in losses.items():
        logger.scalar(name, value, step)
    for stat in ("perplexity", "used_codes", "expired_codes"):
        values = [v for k, v in losses.items() if k.startswith(f"vq/{stat}/")]
        if values:
            logger.scalar(f"vq/{stat}_mean", sum(values) / len(values), step)
    logger.scalar("speed/x_realtime", x_realtime, step)


def train_codec(
    cfg: CodecRunConfig,
    data_dir: str | Path,
    run_dir: str | Path,
    steps: int | None = None,
    init: str | Path | None = None,
) -> TrainResult:
    """Train (or resume) a codec run until ``steps`` (default ``cfg.train.steps``) steps are done.

    ``init`` names a released codec (or model) directory whose weights start a new run: its encoder and quantizer
    (which must have the config's shapes) and, when it has the same kind of decoder, its decoder too. With
    ``train.freeze_encoder`` this trains a new decoder for a released codec's codes. A run that has a checkpoint
    resumes from it instead.

    Started by ``torchrun``, every process runs this: each trains on its own batches, and rank 0 alone
    validates, logs and writes checkpoints (its :class:`TrainResult` holds the validation metrics).
    """
    t = cfg.train
    total_steps = steps if steps is not None else t.steps
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    device = pick_device(t.device)
    with distributed.session(device):
        return _train_codec(cfg, Path(data_dir), run_dir, total_steps, device, init)


def init_from_release(codec: Codec, model_dir: Path, decoder: bool = True) -> list[str]:
    """Copy a released codec's weights into ``codec``: encoder and quantizer always, the decoder when it fits.

    With ``decoder`` false the decoder keeps its fresh weights even where the released one would fit.

    Returns:
        The parts copied.

    Raises:
        ConfigError: the released encoder or quantizer has other shapes than ``codec``'s.
    """
    from soundgen.codec.io import load_codec

    released = load_codec(model_dir)
    copied = []
    for name in ("encoder", "quantizer", "decoder") if decoder else ("encoder", "quantizer"):
        part, source = getattr(codec, name), getattr(released, name)
        try:
            part.load_state_dict(source.state_dict(), strict=True)
            copied.append(name)
        except RuntimeError as e:
            if name != "decoder":
                raise ConfigError(f"--init {model_dir}: its {name} does not fit this config's model ({e})") from e
            log.info("--init: %s has another decoder; this run trains its own", model_dir)
    return copied


def _train_codec(
    cfg: CodecRunConfig,
    data_dir: Path,
    run_dir: str | Path,
    total_steps: int,
    device: torch.device,
    init: str | Path | None = None,
) -> TrainResult:
    t = cfg.train
    main = distributed.is_main()
    seed_everything(t.seed)
    run = RunDir.create(run_dir, cfg)
    trainer = CodecTrainer(cfg, device)
    state = run.load_latest(map_location=trainer.device)  # every rank resumes from the same checkpoint
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resumed %s at step %d", run.path, trainer.step)
        seed_everything(distributed.rank_seed(t.seed, trainer.step))  # batches depend on (seed, step, rank)
    else:
        if init is not None:
            copied = init_from_release(trainer.codec, Path(init), t.init_decoder)
            log.info("initialised %s from %s", ", ".join(copied), init)
        if not main:
            seed_everything(distributed.rank_seed(t.seed, 0))
    distributed.barrier()  # no rank may write a checkpoint before all have read theirs
    loader, valid = _loaders(cfg, data_dir)
    logger = ScalarLogger(run.path / "tb")
    batches = _batches(loader)
    bar = progress(total=total_steps, initial=trainer.step, desc="codec train", unit="step", disable=not main)
    losses: dict[str, float] = {}
    validation: dict[str, float] = {}
    started, first_step = time.perf_counter(), trainer.step
    run.start_timing(trainer.step, trainer.device)
    while trainer.step < total_steps:
        t0 = time.perf_counter()
        losses = trainer.train_step(next(batches))
        step = trainer.step
        x_realtime = t.batch_size * t.segment_seconds / max(time.perf_counter() - t0, 1e-9)
        if step % t.log_every == 0 or step == total_steps:
            _log_step(logger, losses, x_realtime, step)
        shown: dict[str, object] = {
            k: f"{losses[f'loss/{k}']:.3f}" for k in ("mel", "l1", "logmag", "sc") if f"loss/{k}" in losses
        }
        shown.update(xRT=f"{x_realtime:.1f}", disc="on" if trainer.disc_started() else "off")
        bar.set_postfix(shown)
        bar.update(1)
        if main and (step % t.eval_every == 0 or step == total_steps):
            res = validate(trainer.codec, valid)
            _log_validation(logger, res, step, cfg.model.sample_rate)
            validation = {f"{k}@{kbps:g}kbps": v for kbps, m in res.metrics.items() for k, v in m.items()}
        if step % t.checkpoint_every == 0 or step == total_steps:
            run.save(step, trainer.state_dict(), keep=t.keep_checkpoints)  # rank 0 writes
    bar.close()
    logger.close()
    distributed.barrier()  # return once the last checkpoint is on disk
    elapsed = time.perf_counter() - started
    rate = (trainer.step - first_step) / elapsed if trainer.step > first_step else 0.0
    return TrainResult(run.path, trainer.step, losses, rate, validation)


def load_run_config(run_dir: str | Path) -> CodecRunConfig:
    """The config a run was started with (``RUN_DIR/config.yaml``)."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ModelNotFoundError(f"{run_dir} is not a codec run directory (no config.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise CorruptFileError(f"cannot read {path}: {e}") from e
    try:
        return config_from_dict(CodecRunConfig, data)
    except ConfigError as e:
        raise CorruptFileError(f"{path} is not a codec run config: {e}") from e


def export_run(run_dir: str | Path, out_dir: str | Path, fp16: bool = False, model_id: str | None = None) -> Path:
    """Write the newest checkpoint's codec of a run as a released model directory."""
    cfg = load_run_config(run_dir)
    state = RunDir(Path(run_dir)).load_latest()
    if state is None:
        raise ModelNotFoundError(f"{run_dir} has no checkpoint yet; train first")
    codec = build_codec(cfg.model)
    codec.load_state_dict(state["codec"])
    step = state.get("step")
    extra = {"train_steps": int(step)} if isinstance(step, int) else None
    return save_codec(codec.eval(), out_dir, fp16=fp16, model_id=model_id, extra=extra)
