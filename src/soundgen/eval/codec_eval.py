"""``soundgen eval codec``: soundgen's codec beside Opus, MP3 and codec2 on the same clips, in one run.

For every system and bitrate each clip goes through a real compressed file (``.sgc`` for soundgen), so the
bitrate is the exact one of the files (container overhead included). soundgen's ``.sgc`` files are range-coded
when the codec has entropy tables, so their true rate can lie well below the nominal one (codebooks x 10 bits x
frame rate): each target then also gets a ``soundgen (true rate)`` row with as many codebooks as fit in the target
at the files' true rate on these clips, so that systems are compared at the rates their files really have.

Metrics: mel distance, multi-resolution STFT distance, SI-SDR, ViSQOL (audio mode, 48 kHz), PESQ (wide band) and
STOI on speech clips, and encode and decode speed as multiples of real time (wall time of the whole file-to-file
operation, process start included for ffmpeg).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from soundgen.audio.io import read_audio, resample
from soundgen.eval import CODEC_SYSTEMS as SYSTEMS
from soundgen.eval.baselines import BaselineSpec, CodedClip, baseline_specs, run_baseline
from soundgen.eval.metrics import mel_distance, si_sdr, stft_distance
from soundgen.utils import atomic_write, progress

log = logging.getLogger(__name__)

SPEECH_WORDS = ("speech", "voice", "vocal", "spoken", "talk", "speak")


@dataclass
class Row:
    """One system at one target bitrate, averaged over clips (``None`` when not measured)."""

    system: str
    target_kbps: float
    setting_kbps: float
    actual_kbps: float
    mel: float
    stft: float
    si_sdr: float
    visqol: float | None
    pesq: float | None
    stoi: float | None
    encode_x_realtime: float
    decode_x_realtime: float
    clips: int
    note: str = ""
    payload_kbps: float | None = None


@dataclass
class CodecEvalReport:
    """Results of a run; ``markdown`` is what the CLI prints."""

    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    clips: list[str] = field(default_factory=list)
    markdown: str = ""


@dataclass
class _Clip:
    id: str
    samples: np.ndarray  # [T] at the codec's rate
    speech: bool


class _Scorer:
    """Per-clip metrics; ViSQOL/PESQ/STOI are optional and noted when their package is missing."""

    def __init__(self, sample_rate: int, visqol: bool, notes: list[str]) -> None:
        self.sample_rate = sample_rate
        self._visqol = None
        if visqol:
            try:
                from visqol.api import VisqolApi

                api = VisqolApi()
                api.create(mode="audio")
                self._visqol = api
            except ImportError:
                notes.append("ViSQOL skipped: pip install visqol-python")
        try:
            import pesq  # noqa: F401
            import pystoi  # noqa: F401

            self.speech_metrics = True
        except ImportError:
            self.speech_metrics = False
            notes.append("PESQ/STOI skipped: pip install pesq pystoi")

    def score(self, ref: np.ndarray, est: np.ndarray, speech: bool) -> dict[str, float]:
        est = align(ref, est)
        sr = self.sample_rate
        out = {"mel": mel_distance(ref, est, sr), "stft": stft_distance(ref, est), "si_sdr": si_sdr(ref, est)}
        if self._visqol is not None:
            r48, e48 = resample(ref, sr, 48000).astype(np.float64), resample(est, sr, 48000).astype(np.float64)
            try:
                out["visqol"] = float(self._visqol.measure_from_arrays(r48, e48, 48000).moslqo)
            except ValueError as e:  # clips shorter than ViSQOL's patch (~0.5 s) cannot be scored
                log.info("ViSQOL skipped a clip: %s", e)
        if speech and self.speech_metrics:
            from pesq import pesq
            from pystoi import stoi

            r16, e16 = resample(ref, sr, 16000), resample(est, sr, 16000)
            try:
                out["pesq"] = float(pesq(16000, r16, e16, "wb"))
            except Exception as e:  # noqa: BLE001 - pesq raises its own errors on silent clips
                log.info("PESQ failed on a clip: %s", e)
            out["stoi"] = float(stoi(r16, e16, 16000, extended=False))
        return out


def align(ref: np.ndarray, est: np.ndarray, max_lag: int = 2000) -> np.ndarray:
    """``est`` shifted by the lag (within ``max_lag`` samples) that best matches ``ref``, cut/padded to its length.

    Codecs add delay (Opus pre-skip, MP3 encoder delay); waveform metrics such as SI-SDR need it removed.
    """
    n = len(ref)
    est = np.pad(est[: n + max_lag], (0, max(0, n + max_lag - len(est))))
    size = 1 << int(np.ceil(np.log2(2 * (n + max_lag))))
    corr = np.fft.irfft(np.fft.rfft(est, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.concatenate([corr[: max_lag + 1], corr[size - max_lag :]])
    lag = int(np.argmax(lags))
    lag = lag if lag <= max_lag else lag - (2 * max_lag + 1)
    shifted = est[lag : lag + n] if lag >= 0 else np.concatenate([np.zeros(-lag), est[: n + lag]])
    return np.pad(shifted, (0, n - len(shifted))).astype(np.float32)


def pick_clips(clips: list[Any], max_clips: int) -> list[Any]:
    """Up to ``max_clips`` clips taken in turn from each category (sorted), so that a corpus of mostly music
    still gets its sound effects evaluated; within a category, manifest order."""
    by_category: dict[str, list[Any]] = {}
    for clip in clips:
        by_category.setdefault(clip.category, []).append(clip)
    out: list[Any] = []
    rank = 0
    while len(out) < max_clips and any(rank < len(v) for v in by_category.values()):
        out += [v[rank] for _, v in sorted(by_category.items()) if rank < len(v)][: max_clips - len(out)]
        rank += 1
    return out


def _load_clips(data_dir: Path, split: str, sample_rate: int, max_clips: int, max_seconds: float) -> list[_Clip]:
    from soundgen.data.manifest import read_manifest

    clips = []
    for clip in pick_clips(read_manifest(data_dir, split), max_clips):
        samples = read_audio(clip.path(data_dir), sample_rate=sample_rate, channels=1).samples[0]
        keep = int(max_seconds * sample_rate)
        if max_seconds > 0 and len(samples) > keep:  # the middle: long tracks often open with silence
            start = (len(samples) - keep) // 2
            samples = samples[start : start + keep]
        text = " ".join([clip.category, clip.caption, *clip.tags]).lower()
        clips.append(_Clip(clip.id, samples, any(w in text for w in SPEECH_WORDS)))
    return clips


Coder = Callable[[np.ndarray], CodedClip]


def _soundgen_coder(codec: object, kbps: float, tables: object, k: int | None = None) -> tuple[Coder, float, str]:
    """Clips through ``.sgc`` files at ``k`` codebooks (default: the nominal bitrate ``kbps``'s)."""
    from soundgen.audio.entropy import EntropyTables
    from soundgen.codec.model import Codec
    from soundgen.codec.sgc.files import decode_file, encode_file

    assert isinstance(codec, Codec) and (tables is None or isinstance(tables, EntropyTables))
    k = k or codec.set_bitrate(kbps)
    setting = codec.config.bitrate(k)

    def run(samples: np.ndarray) -> CodedClip:
        codec.set_n_codebooks(k)
        with tempfile.TemporaryDirectory(prefix="soundgen-eval-") as tmp:
            src, sgc, out = Path(tmp) / "in.wav", Path(tmp) / "x.sgc", Path(tmp) / "out.wav"
            sf.write(src, samples, codec.sample_rate, subtype="FLOAT")
            start = time.perf_counter()
            result = encode_file(codec, src, sgc, show_progress=False, tables=tables)
            enc = time.perf_counter() - start
            start = time.perf_counter()
            decode_file(codec, sgc, out, tables=tables)
            dec = time.perf_counter() - start
            audio, _ = sf.read(out, dtype="float32")
            return CodedClip(audio, sgc.stat().st_size, enc, dec, result.payload_bytes)

    note = "" if abs(setting - kbps) < 1e-6 else f"{k} codebooks = {setting:g} kbps"
    return run, setting, note


def file_kbps_by_codebooks(codec: object, tables: object, clips: list[_Clip]) -> dict[int, float]:
    """The true bitrate (all the files' bytes x 8 over their seconds) of these clips' ``.sgc`` files at every
    number of codebooks. The encoder runs once per clip: fewer codebooks are a prefix of the codes."""
    import torch

    from soundgen.audio.entropy import EntropyTables
    from soundgen.codec.model import Codec
    from soundgen.codec.sgc.files import write_codes

    assert isinstance(codec, Codec) and (tables is None or isinstance(tables, EntropyTables))
    sizes = dict.fromkeys(range(1, codec.max_codebooks + 1), 0)
    codec.set_n_codebooks(codec.max_codebooks)
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="soundgen-eval-") as tmp:
        for clip in clips:
            codes = codec.encode(torch.from_numpy(clip.samples)[None, None])[0].numpy()
            seconds += len(clip.samples) / codec.sample_rate
            for k in sizes:
                sizes[k] += write_codes(
                    codec, codes[:k], len(clip.samples), Path(tmp) / "x.sgc", tables=tables
                ).bytes_written
    return {k: size * 8 / seconds / 1000 for k, size in sizes.items()}


def true_rate_codebooks(rates: dict[int, float], target: float) -> int | None:
    """The most codebooks whose files' true rate is at most ``target`` kbps (None: not even one)."""
    fitting = [k for k, kbps in rates.items() if kbps <= target + 1e-9]
    return max(fitting) if fitting else None


def _evaluate(
    system: str, target: float, setting: float, note: str, coder: Coder, clips: list[_Clip], scorer: _Scorer
) -> Row:
    scores: dict[str, list[float]] = {}
    size = enc = dec = seconds = 0.0
    payload: float | None = 0.0
    for clip in clips:
        coded = coder(clip.samples)
        for name, value in scorer.score(clip.samples, coded.audio, clip.speech).items():
            scores.setdefault(name, []).append(value)
        size += coded.file_bytes
        payload = None if payload is None or coded.payload_bytes is None else payload + coded.payload_bytes
        enc += coded.encode_seconds
        dec += coded.decode_seconds
        seconds += len(clip.samples) / scorer.sample_rate

    def mean(name: str) -> float | None:
        values = [v for v in scores.get(name, []) if np.isfinite(v)]
        return float(np.mean(values)) if values else None

    return Row(
        system,
        target,
        setting,
        size * 8 / seconds / 1000,
        mean("mel") or 0.0,
        mean("stft") or 0.0,
        mean("si_sdr") or 0.0,
        mean("visqol"),
        mean("pesq"),
        mean("stoi"),
        seconds / enc,
        seconds / dec,
        len(clips),
        note,
        None if payload is None else payload * 8 / seconds / 1000,
    )


def _fmt(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def to_markdown(report: CodecEvalReport) -> str:
    """The report as a Markdown table plus notes."""
    lines = [
        f"# Codec evaluation ({len(report.clips)} clips)",
        "",
        "| system | target kbps | set kbps | file kbps | codes kbps | mel ↓ | STFT ↓ | SI-SDR dB ↑ | ViSQOL ↑ | PESQ ↑ "
        "| STOI ↑ | enc ×RT | dec ×RT |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        lines.append(
            f"| {r.system} | {r.target_kbps:g} | {r.setting_kbps:g} | {r.actual_kbps:.2f} | {_fmt(r.payload_kbps)} "
            f"| {r.mel:.3f} | {r.stft:.3f} "
            f"| {r.si_sdr:.2f} | {_fmt(r.visqol)} | {_fmt(r.pesq)} | {_fmt(r.stoi)} | {r.encode_x_realtime:.1f} "
            f"| {r.decode_x_realtime:.1f} |"
        )
    notes = report.notes + [f"{r.system} @ {r.target_kbps:g} kbps: {r.note}" for r in report.rows if r.note]
    lines += [
        "",
        "File kbps = compressed file size × 8 / audio duration (container overhead included): the true bitrate. "
        "Codes kbps: soundgen's codes alone. Set kbps: the encoder's setting (soundgen: nominal, codebooks × "
        "10 bits × frame rate).",
        "×RT = seconds of audio processed per second of wall time, file to file (ffmpeg: process start included).",
        "PESQ/STOI only on clips whose category, caption or tags say speech.",
    ]
    lines += [f"- {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


def plot(report: CodecEvalReport, path: Path) -> None:
    """Mel distance and ViSQOL against the files' bitrate, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for system in dict.fromkeys(r.system for r in report.rows):
        rows = sorted((r for r in report.rows if r.system == system), key=lambda r: r.actual_kbps)
        kbps = [r.actual_kbps for r in rows]
        axes[0].plot(kbps, [r.mel for r in rows], "o-", label=system)
        axes[1].plot(kbps, [r.visqol if r.visqol is not None else np.nan for r in rows], "o-", label=system)
    for ax, title in zip(axes, ("mel distance (lower is better)", "ViSQOL MOS-LQO (higher is better)"), strict=True):
        ax.set_xlabel("bitrate of the files (kbps)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def run_codec_eval(
    model_dir: str | Path | None,
    data_dir: str | Path,
    bitrates: list[float],
    out_dir: str | Path,
    *,
    split: str = "test",
    max_clips: int = 20,
    visqol: bool = True,
    max_seconds: float = 10.0,
    systems: Sequence[str] | None = None,
) -> CodecEvalReport:
    """Evaluate a codec and the ffmpeg baselines on the same clips; write JSON, Markdown and a PNG plot.

    Clips are taken in turn from each category (:func:`pick_clips`) and cut to their middle ``max_seconds``
    (0: whole clips; ViSQOL takes about a second per second of audio). ``systems`` keeps only these of
    :data:`SYSTEMS` (``soundgen`` includes its true-rate rows), e.g. to A/B two codecs without the baselines."""
    wanted = set(SYSTEMS if systems is None else systems)
    if not wanted or not wanted <= set(SYSTEMS):
        from soundgen.errors import SoundgenError

        unknown = ", ".join(sorted(wanted - set(SYSTEMS))) or "none given"
        raise SoundgenError(f"unknown systems to evaluate ({unknown}); choose from {', '.join(SYSTEMS)}")
    from soundgen.codec.entropy import has_stale_tables, load_tables
    from soundgen.codec.io import load_codec, resolve_model_dir

    codec = load_codec(model_dir)
    tables = load_tables(resolve_model_dir(model_dir), codec.model_hash)
    clips = _load_clips(Path(data_dir), split, codec.sample_rate, max_clips, max_seconds)
    notes: list[str] = []
    if not clips:
        from soundgen.errors import SoundgenError

        raise SoundgenError(f"split '{split}' of {data_dir} has no clips to evaluate")
    if not any(c.speech for c in clips):
        notes.append("no speech clips in this set: PESQ/STOI not computed")
    scorer = _Scorer(codec.sample_rate, visqol, notes)
    if tables is not None:
        notes.append(f"soundgen's .sgc files are range-coded (entropy tables {tables.hash_id})")
    elif has_stale_tables(resolve_model_dir(model_dir), codec.model_hash):
        notes.append("soundgen's .sgc files are bit-packed: the codec's entropy tables were fitted for other weights "
                     "and are ignored (run 'soundgen codec fit-entropy' again)")
    else:
        notes.append("soundgen's .sgc files are bit-packed (the codec has no entropy tables)")
    rates = file_kbps_by_codebooks(codec, tables, clips) if "soundgen" in wanted else {}
    jobs: list[tuple[str, float, float, str, Coder]] = []
    seen: set[tuple[str, float]] = set()
    for kbps in bitrates:
        if "soundgen" in wanted:
            coder, setting, note = _soundgen_coder(codec, kbps, tables)
            jobs.append(("soundgen", kbps, setting, note, coder))
            nominal, true_k = codec.config.codebooks_for_bitrate(kbps), true_rate_codebooks(rates, kbps)
            if true_k is not None and true_k != nominal:
                coder, setting, _ = _soundgen_coder(codec, kbps, tables, true_k)
                note = f"{true_k} codebooks: the most whose files stay within {kbps:g} kbps ({rates[true_k]:.2f})"
                jobs.append(("soundgen (true rate)", kbps, setting, note, coder))
        specs, skipped = baseline_specs(kbps, wanted)
        notes += skipped
        for spec in specs:
            if (spec.name, spec.setting_kbps) not in seen:  # e.g. Opus at its 6 kbps floor: measured once
                seen.add((spec.name, spec.setting_kbps))
                jobs.append((spec.name, kbps, spec.setting_kbps, spec.note, _baseline_coder(spec, codec.sample_rate)))
    rows = [
        _evaluate(system, target, setting, note, coder, clips, scorer)
        for system, target, setting, note, coder in progress(jobs, desc="eval codec", unit="system")
    ]
    report = CodecEvalReport(rows, list(dict.fromkeys(notes)), [c.id for c in clips])
    report.markdown = to_markdown(report)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "codec_eval.json", "w") as f:
        json.dump(
            {
                "rows": [asdict(r) for r in rows],
                "notes": report.notes,
                "clips": report.clips,
                "model": str(model_dir),
                "model_hash": codec.model_hash,
            },
            f,
            indent=2,
        )
    with atomic_write(out / "codec_eval.md", "w") as f:
        f.write(report.markdown)
    plot(report, out / "codec_eval.png")
    return report


def _baseline_coder(spec: BaselineSpec, sample_rate: int) -> Coder:
    return lambda samples: run_baseline(spec, samples, sample_rate)
