"""Typed configs of the neural audio codec: the model, its training, and the two together (a run)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

Activation = Literal["elu", "snake"]
DecoderKind = Literal["seanet", "fourier", "spectral"]
EncoderKind = Literal["seanet", "stft"]


@dataclass
class CodecConfig:
    """Architecture of a codec (everything needed to rebuild it from ``config.json``).

    Attributes:
        sample_rate: audio samples per second.
        channels: audio channels.
        base_channels: channels of the first encoder stage; each stride doubles them (capped at ``max_channels``).
        max_channels: upper bound on the channels of any stage.
        strides: encoder downsampling factors, first to last; their product is the hop length.
        residual_units: residual units per stage.
        dilations: dilations of the residual units of a stage (cycled when shorter than ``residual_units``).
        kernel_size: kernel of the first and last convolution.
        residual_kernel_size: kernel of the dilated convolutions in residual units.
        activation: ``elu`` or ``snake`` (periodic, per-channel learned frequency).
        decoder_base_channels: channels of the SEANet decoder's last stage, doubling towards its first as in the
            encoder (``None``: ``base_channels``). A decoder for a frozen encoder's codes can be wider than it.
        decoder_upsample: how the SEANet decoder upsamples: ``transposed`` convolutions, or ``linear``
            interpolation followed by a causal convolution (kernel ``2 * stride - 1``), which has no pattern repeated
            once per input sample (the transposed convolutions' such pattern modulates every partial above ~500 Hz
            at 50 and 200 Hz: docs/codec_recipe.md).
        decoder_activation: activation of the SEANet decoder alone (``None``: ``activation``). Lets a decoder
            retrained on a frozen encoder's codes try Snake while the encoder, and so the codes, stay as they are.
        lstm_layers: layers of a unidirectional LSTM at the bottleneck (0 = none).
        latent_dim: dimension of the encoder output / quantizer input.
        n_codebooks: codebooks of the residual quantizer (the most a bitrate can use).
        codebook_size: entries per codebook.
        codebook_dim: if set, codes are looked up in a projected, l2-normalised space of this dimension
            (DAC style); ``None`` looks them up in the latent space itself.
        ema_decay: decay of the EMA codebook updates.
        commitment_weight: weight of the commitment loss.
        dead_code_threshold: a code whose EMA usage falls below this fraction of the uniform usage
            (``total / codebook_size``) is dead and replaced by a current encoder output.
        kmeans_iters: k-means iterations used to initialise the codebooks from the first batch.
        quantizer_dropout: probability that a training example uses a random number of codebooks.
        dropout_bitrates: where quantizer dropout draws that number from. False: uniform in ``1..n_codebooks``
            (every prefix of the quantizer is trained, as SoundStream does). True: uniform over the codebook
            counts of ``bitrates``, so training time goes to the bitrates the model serves (a decoder fine-tune
            for the LM's 4 codebooks, say, lists 2.0 kbps).
        rvq_straight_through: how the encoder gets the decoder's gradient through the quantizer in training.
            ``per_layer`` (the bundled model's training): each active codebook passes it on, so an example
            using ``n`` codebooks sends ``n`` times the gradient to the encoder. ``total``: one straight-through
            estimator around the whole quantizer (EnCodec/audiocraft's fix), the gradient passes once.
            Inference is the same either way.
        bitrates: bitrates (kbps) this model is meant to serve; each must be a whole number of codebooks.
        decoder: ``seanet`` (transposed convolutions up to the sample rate) or ``fourier`` (ConvNeXt blocks at the
            frame rate and an inverse STFT, :mod:`soundgen.codec.fourier`).
        fourier_dim: width of the Fourier decoder's blocks.
        fourier_blocks: number of its ConvNeXt blocks.
        fourier_n_fft: its inverse-STFT size (``None``: 4 hops).
        fourier_phase: how the Fourier head makes each bin's phase. ``absolute``: predicted afresh every frame, so
            nothing joins a frame's partials to the next one's (a steady tone comes out phase-modulated at the frame
            rate). ``integrated``: each bin's phase goes on from the previous frame's by the bin's own advance plus a
            predicted deviation, blended (by a predicted gate) with a fresh phase where a sound starts; a recurrence
            over frames from the start of the clip, so it has no streaming decode.
        encoder: ``seanet`` (strided convolutions over the waveform) or ``stft`` (causal ConvNeXt blocks over the log
            magnitudes of a fine STFT, :mod:`soundgen.codec.spectral`).
        spectral_n_fft, spectral_hop: the STFT of the ``stft`` encoder and the ``spectral`` decoder (``hop_length``
            must be a multiple of ``spectral_hop``; each code frame holds ``hop_length / spectral_hop`` sub-frames).
        spectral_dim: width of their blocks.
        spectral_encoder_blocks, spectral_decoder_blocks: how many blocks each has.
        griffin_lim_iters: fast Griffin-Lim iterations per block when the ``spectral`` decoder rebuilds the phase
            (more: cleaner phase, slower decoding).
        griffin_lim_block: code frames per Griffin-Lim block (the streaming decoder's latency).
        silence_gate: decode frames whose codes are exactly the codes of digital silence to exact zeros (with a
            short fade at the edges), so silence in is silence out at every bitrate and a generated pause is quiet.
    """

    sample_rate: int = 16000
    channels: int = 1
    base_channels: int = 16
    max_channels: int = 256
    strides: list[int] = field(default_factory=lambda: [4, 4, 5, 4])
    residual_units: int = 1
    dilations: list[int] = field(default_factory=lambda: [1, 3, 9])
    kernel_size: int = 7
    residual_kernel_size: int = 3
    activation: Activation = "elu"
    decoder_activation: Activation | None = None
    decoder_base_channels: int | None = None
    decoder_upsample: Literal["transposed", "linear"] = "transposed"
    lstm_layers: int = 0
    latent_dim: int = 128
    n_codebooks: int = 12
    codebook_size: int = 1024
    codebook_dim: int | None = None
    ema_decay: float = 0.99
    commitment_weight: float = 1.0
    dead_code_threshold: float = 0.05
    kmeans_iters: int = 10
    quantizer_dropout: float = 1.0
    dropout_bitrates: bool = False
    rvq_straight_through: Literal["per_layer", "total"] = "per_layer"
    bitrates: list[float] = field(default_factory=lambda: [1.5, 3.0, 6.0])
    decoder: DecoderKind = "seanet"
    fourier_dim: int = 256
    fourier_blocks: int = 8
    fourier_n_fft: int | None = None
    fourier_phase: Literal["absolute", "integrated"] = "absolute"
    encoder: EncoderKind = "seanet"
    spectral_n_fft: int = 640
    spectral_hop: int = 80
    spectral_dim: int = 256
    spectral_encoder_blocks: int = 4
    spectral_decoder_blocks: int = 6
    griffin_lim_iters: int = 32
    griffin_lim_block: int = 50
    silence_gate: bool = False

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.channels <= 0:
            raise ValueError("sample_rate and channels must be positive")
        if not self.strides or any(s <= 0 for s in self.strides):
            raise ValueError("strides must be a non-empty list of positive integers")
        if self.codebook_size < 2 or self.n_codebooks < 1:
            raise ValueError("codebook_size must be >= 2 and n_codebooks >= 1")
        if self.codebook_size > 1 << 16:
            raise ValueError("codebook_size must be at most 65536")
        if "stft" == self.encoder or "spectral" == self.decoder:
            hop = math.prod(self.strides)
            if self.spectral_hop <= 0 or hop % self.spectral_hop:
                raise ValueError(f"spectral_hop must divide the hop length ({hop}), got {self.spectral_hop}")
            if self.spectral_n_fft < 2 * self.spectral_hop or self.spectral_n_fft % self.spectral_hop:
                raise ValueError("spectral_n_fft must be a multiple of spectral_hop, at least twice it")
            if self.griffin_lim_iters < 0 or self.griffin_lim_block < 1:
                raise ValueError("griffin_lim_iters must be >= 0 and griffin_lim_block >= 1")

    @classmethod
    def tiny(cls) -> CodecConfig:
        """A very small codec for tests: 8 kHz, hop 16 (500 frames/s), 4 codebooks of 32."""
        return cls(
            sample_rate=8000,
            base_channels=4,
            max_channels=16,
            strides=[2, 2, 4],
            dilations=[1, 3],
            residual_units=1,
            latent_dim=8,
            n_codebooks=4,
            codebook_size=32,
            kmeans_iters=2,
            bitrates=[5.0, 10.0],
        )

    @property
    def hop_length(self) -> int:
        """Audio samples per code frame (product of the strides)."""
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return self.sample_rate / self.hop_length

    @property
    def bits_per_code(self) -> int:
        """Bits needed to store one code, ``ceil(log2(codebook_size))``."""
        return max(1, math.ceil(math.log2(self.codebook_size)))

    def codebooks_for_bitrate(self, kbps: float) -> int:
        """Number of codebooks whose bitrate is closest to ``kbps`` without exceeding it (at least 1)."""
        per_codebook = self.frame_rate * self.bits_per_code / 1000.0
        k = int(math.floor(kbps / per_codebook + 1e-6))
        return max(1, min(self.n_codebooks, k))

    def bitrate(self, n_codebooks: int) -> float:
        """Nominal bitrate in kbps when ``n_codebooks`` are used."""
        return n_codebooks * self.frame_rate * self.bits_per_code / 1000.0


@dataclass
class CodecTrainConfig:
    """How a codec is trained.

    Attributes:
        steps: total optimisation steps.
        batch_size: examples per step.
        segment_seconds: length of each training crop.
        pitch_shift_semitones: each training crop is resampled by a random factor of up to this many semitones
            either way (drawn uniformly; pitch and speed change together; 0 = off; validation crops never). The
            rendered music of the corpora is tuned to equal temperament, so without it a codec meets only the
            frequencies of its notes and their harmonics, and learns to render those alone (docs/codec_recipe.md,
            session 11's tone probe); a shift of a semitone or more puts every frequency in its training data.
        lr: Adam learning rate (generator and discriminator).
        lr_decay_start: step from which the learning rate decays (None: constant, as EnCodec trains). From there it
            follows half a cosine from ``lr`` down to ``lr * lr_min_ratio`` over ``lr_decay_steps`` steps, then stays
            there. It is a function of the step alone, so a run resumed with a decay added (or changed) follows it.
        lr_decay_steps: length of the decay.
        lr_min_ratio: where the decay ends, as a share of ``lr``.
        betas: Adam betas.
        grad_clip: gradient norm clip (0 = off).
        weight_l1: weight of the L1 waveform loss.
        weight_mel: weight of the multi-scale mel loss.
        weight_adv: weight of the adversarial (hinge) loss.
        weight_feat: weight of the feature-matching loss.
        weight_stft: weight of the log-magnitude STFT loss on the linear frequency axis (0 = off). The mel loss
            alone cannot see noise between a note's harmonics (:class:`soundgen.codec.losses.MultiScaleLogSTFTLoss`).
        stft_windows: window sizes of that loss.
        mel_windows: window sizes of the multi-scale mel loss.
        n_mels: mel bands of the mel loss.
        use_balancer: scale loss gradients with EnCodec's balancer instead of summing them.
        discriminator: train a multi-scale STFT discriminator at all.
        disc_start_step: step from which the discriminator is trained and used (warm-up before).
        disc_every: from ``disc_start_step`` on, the discriminator is trained, and its adversarial and
            feature-matching losses reach the generator, on every k-th step only; the steps between are
            reconstruction-only. On a CPU an adversarial step of EnCodec's size (32 channels, whole segment) costs
            ~22 plain ones; at 8 channels on a 0.5 s window ~3.4, so k = 4 keeps a run at ~1.6x the plain cost
            (``python benchmarks/codec_disc_cost.py --filters 8 --crop 0.5``).
        disc_filters: channels of the discriminator convolutions.
        disc_crop_seconds: the discriminator sees one random window of this length from each example (the same
            window of the real and the reconstructed audio); 0 = the whole segment. Its cost is proportional to it.
        disc_windows: FFT sizes of the discriminator's scales.
        device: ``auto``, ``cpu`` or ``cuda``.
        autocast: ``auto`` (bf16 on CUDA; off on CPU, where bf16 convolutions measured 2-4x slower than
            float32 on this project's machines), ``bf16`` (always) or ``fp32`` (never).
        num_workers: data-loader worker processes.
        threads: torch threads on CPU (0 = leave torch's default).
        log_every: steps between logged scalars.
        eval_every: steps between validation metrics and audio examples.
        checkpoint_every: steps between checkpoints.
        keep_checkpoints: checkpoints kept in the run directory.
        valid_batches: validation batches per evaluation.
        seed: random seed.
        freeze_encoder: train the decoder alone: the encoder and the quantizer (codebooks included) stay as they
            are, so the codes of every audio file, and every LM trained on them, stay valid (with ``--init``).
        init_decoder: with ``--init``, start from the released decoder when it has this config's shapes (a
            fine-tune); false: the decoder starts from scratch on the released codes (an A/B of decoders).
    """

    steps: int = 100_000
    batch_size: int = 8
    segment_seconds: float = 1.0
    pitch_shift_semitones: float = 0.0
    lr: float = 3e-4
    lr_decay_start: int | None = None
    lr_decay_steps: int = 10_000
    lr_min_ratio: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])
    grad_clip: float = 1.0
    weight_l1: float = 0.1
    weight_mel: float = 1.0
    weight_adv: float = 3.0
    weight_feat: float = 3.0
    weight_stft: float = 0.0
    stft_windows: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    mel_windows: list[int] = field(default_factory=lambda: [256, 512, 1024, 2048])
    n_mels: int = 64
    use_balancer: bool = True
    discriminator: bool = True
    disc_start_step: int = 5_000
    disc_every: int = 1
    disc_filters: int = 32
    disc_crop_seconds: float = 0.0
    disc_windows: list[int] = field(default_factory=lambda: [256, 512, 1024])
    device: str = "auto"
    autocast: Literal["auto", "bf16", "fp32"] = "auto"
    num_workers: int = 0
    threads: int = 0
    log_every: int = 25
    eval_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    valid_batches: int = 4
    seed: int = 0
    freeze_encoder: bool = False
    init_decoder: bool = True

    # the names run directories written before the two training loops shared one vocabulary used (and the
    # LM's autocast words, so that both loops take both)
    RENAMED_KEYS: ClassVar[dict[str, str]] = {"save_every": "checkpoint_every"}
    RENAMED_VALUES: ClassVar[dict[str, dict[str, str]]] = {"autocast": {"on": "bf16", "off": "fp32"}}

    def __post_init__(self) -> None:
        if self.lr_decay_start is not None and self.lr_decay_start < 0:
            raise ValueError(f"lr_decay_start={self.lr_decay_start} must be a step (>= 0) or null")
        if self.disc_crop_seconds < 0:
            raise ValueError(f"disc_crop_seconds={self.disc_crop_seconds} must be >= 0 (0: the whole segment)")
        if self.disc_every < 1:
            raise ValueError(f"disc_every={self.disc_every} must be at least 1 (1: every step)")
        if self.lr_decay_steps < 1:
            raise ValueError(f"lr_decay_steps={self.lr_decay_steps} must be at least 1")
        if not 0.0 <= self.lr_min_ratio <= 1.0:
            raise ValueError(f"lr_min_ratio={self.lr_min_ratio} must be between 0 and 1")
        if not 0.0 <= self.pitch_shift_semitones <= 12.0:
            raise ValueError(f"pitch_shift_semitones={self.pitch_shift_semitones} must be between 0 and 12")

    @classmethod
    def tiny(cls) -> CodecTrainConfig:
        """A few fast steps for tests."""
        return cls(
            steps=4,
            batch_size=2,
            segment_seconds=0.128,
            mel_windows=[64, 128],
            n_mels=16,
            disc_start_step=2,
            disc_filters=4,
            disc_windows=[64, 128],
            autocast="fp32",
            log_every=1,
            eval_every=2,
            checkpoint_every=2,
            valid_batches=1,
        )


@dataclass
class CodecRunConfig:
    """A codec training run: ``model`` (architecture) and ``train`` (procedure), one YAML file."""

    model: CodecConfig = field(default_factory=CodecConfig)
    train: CodecTrainConfig = field(default_factory=CodecTrainConfig)

    @classmethod
    def tiny(cls) -> CodecRunConfig:
        return cls(model=CodecConfig.tiny(), train=CodecTrainConfig.tiny())
