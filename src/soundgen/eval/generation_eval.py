"""``soundgen eval generation``: how well and how fast a model generates.

- Prompt adherence: the share of generated clips that the in-project classifier assigns to the prompt's category
  (generated clips are cut of leading and trailing silence first, as the real clips were when the dataset was built).
- Fréchet distance between the classifier's embeddings of generated clips and of real held-out clips. It is
  NOT comparable with published FAD figures (those use VGGish or CLAP embeddings).
- Real-time factor (seconds of audio per wall-clock second) and peak memory.
Results go to ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import resource
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundgen.errors import InvalidRequestError, SoundgenError
from soundgen.eval.classifier import AudioClassifier, codec_round_trips, load_classifier, load_split
from soundgen.eval.sheet import PITCHED, contact_sheet, is_silent, pitch_strength
from soundgen.lm.sampling_params import SamplingParams
from soundgen.utils import atomic_write, progress

FD_NOTE = (
    "The Fréchet distance here uses the embeddings of soundgen's own classifier trained on this dataset; it is not "
    "comparable with published Fréchet Audio Distance figures (VGGish/CLAP embeddings)."
)


class PromptFileError(SoundgenError):
    """The prompts file is missing or malformed."""


@dataclass
class PromptSpec:
    """A prompt and the category its sounds should be heard as."""

    prompt: str
    category: str


@dataclass
class GenerationEvalConfig:
    """What to generate for the evaluation.

    Attributes:
        count: sounds per prompt.
        duration: seconds per sound.
        sampling: the sampling settings; prompt i's sounds use seed ``sampling.seed + i`` (0 when None), and that
            seed also picks the real clips compared with.
        split: the dataset split of the real clips.
        max_real: real clips at most.
    """

    count: int = 4
    duration: float = 4.0
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(seed=0))
    split: str = "test"
    max_real: int = 500

    @property
    def seed(self) -> int:
        """The seed of the first prompt's sounds."""
        return self.sampling.seed or 0


@dataclass
class PromptResult:
    """Outcome of one prompt."""

    prompt: str
    category: str
    predicted: list[str]
    adherence: float | None  # None when the classifier does not know the category
    silent: int = 0  # generated clips that peak below -50 dBFS
    regenerated: int = 0  # draws that came back silent and were drawn again (TextToSound.generate_batch)
    pitch: list[float] = field(default_factory=list)  # soundgen.eval.sheet.pitch_strength of each clip


@dataclass
class GenerationReport:
    """Everything ``soundgen eval generation`` measured."""

    model: str
    prompts: list[PromptResult]
    adherence: float
    frechet_distance: float
    n_generated: int
    n_real: int
    real_time_factor: float
    audio_seconds: float
    wall_seconds: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    classifier_accuracy: float | None
    classifier_chance: float | None
    classifier_labels: list[str] = field(default_factory=list)
    reference: dict[str, float | int] = field(default_factory=dict)
    note: str = FD_NOTE
    classifier_codec: str | None = None  # the codec the classifier also trained through (train-classifier --codec)
    silent_share: float = 0.0  # generated clips peaking below -50 dBFS
    regenerated_share: float = 0.0  # silent draws that generation drew again, per generated clip
    music_pitched_share: float | None = None  # music prompts (drums aside) whose clips have pitch
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> heard as -> clips
    contact_sheet: str | None = None  # file name of the spectrogram sheet beside the report
    # how the sounds were made, so that the figures can be made again: sounds per prompt, seconds each, and the
    # sampling settings (the first prompt's seed; prompt i uses seed + i)
    settings: dict[str, object] = field(default_factory=dict)


def read_prompts(path: str | Path) -> list[PromptSpec]:
    """Read prompts: JSON lines ``{"prompt": ..., "category": ...}`` or text lines ``category<TAB>prompt``."""
    p = Path(path)
    try:
        lines = [
            line for line in p.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")
        ]
    except (OSError, UnicodeDecodeError) as e:
        raise PromptFileError(f"cannot read prompts file {p}: {e}") from e
    specs = []
    for n, line in enumerate(lines, 1):
        try:
            if line.lstrip().startswith("{"):
                row = json.loads(line)
                specs.append(PromptSpec(str(row["prompt"]), str(row["category"])))
            else:
                category, prompt = line.split("\t", 1)
                specs.append(PromptSpec(prompt.strip(), category.strip()))
        except (ValueError, KeyError, TypeError) as e:
            raise PromptFileError(
                f"{p}:{n}: expected a JSON object with 'prompt' and 'category' or 'category<TAB>prompt' ({e})"
            ) from e
    if not specs:
        raise PromptFileError(f"{p} holds no prompts")
    return specs


def prompts_from_dataset(
    dataset_dir: str | Path, per_category: int = 1, splits: tuple[str, ...] = ("test", "valid", "train"),
    labels: list[str] | None = None,
) -> list[dict[str, str]]:
    """Evaluation prompts from a dataset's own captions: ``per_category`` distinct captions of each category
    (``labels`` when given, else every category but 'other'), taken from the first split in ``splits`` that has
    that category (held-out splits first), so prompts are the dataset's own words.

    Returns:
        Rows ``{"prompt", "category", "split"}`` sorted by category.
    """
    from soundgen.data.manifest import manifest_path, read_manifest

    found: dict[str, tuple[str, list[str]]] = {}
    for split in splits:
        if not manifest_path(dataset_dir, split).is_file():
            continue
        captions: dict[str, list[str]] = {}
        for clip in read_manifest(dataset_dir, split):
            if clip.category != "other" and clip.caption not in captions.setdefault(clip.category, []):
                captions[clip.category].append(clip.caption)
        for category, texts in captions.items():
            if category not in found and texts:
                found[category] = (split, texts)
    wanted = labels if labels is not None else sorted(found)
    missing = [c for c in wanted if c not in found]
    if missing:
        raise PromptFileError(f"{dataset_dir} has no captions of {', '.join(missing)}")
    rows = []
    for category in sorted(wanted):
        split, texts = found[category]
        step = max(1, len(texts) // per_category)  # spread over the category, not its first few neighbours
        rows += [{"prompt": t, "category": category, "split": split} for t in texts[::step][:per_category]]
    return rows


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to embeddings ``a [N, D]`` and ``b [M, D]``."""
    from scipy import linalg

    if a.shape[0] < 2 or b.shape[0] < 2:
        raise InvalidRequestError("the Fréchet distance needs at least two generated and two real clips")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    offset = eps * np.eye(a.shape[1])
    covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))
    return max(value, 0.0)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def evaluate_generation(
    model_dir: str | Path | None,
    prompts_file: str | Path,
    dataset_dir: str | Path,
    classifier_dir: str | Path,
    out_dir: str | Path,
    cfg: GenerationEvalConfig,
) -> GenerationReport:
    """Generate ``cfg.count`` sounds per prompt and measure adherence, Fréchet distance, speed and memory.

    Returns:
        :class:`GenerationReport` (also written to ``out_dir/report.json`` and ``report.md``).
    """
    from soundgen.pipeline import GenerationRequest, TextToSound, negative_text

    cfg.sampling.check()  # out-of-range settings fail now, not at the first prompt
    negative_text(cfg.sampling.negative_prompt)
    specs = read_prompts(prompts_file)
    classifier, creport = load_classifier(classifier_dir)  # fail early, before spending time generating
    tts = TextToSound.load(model_dir)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    generated: list[list[np.ndarray]] = []
    raw: list[list[np.ndarray]] = []
    redraws: list[int] = []
    audio_s, wall_s = 0.0, 0.0
    for i, spec in enumerate(progress(specs, desc="generate", unit="prompt")):
        sampling = asdict(replace(cfg.sampling, seed=cfg.seed + i))  # its fields are GenerationRequest's
        req = GenerationRequest(spec.prompt, cfg.duration, cfg.count, **sampling)
        started = time.perf_counter()
        result = tts.generate(req)
        wall_s += time.perf_counter() - started
        audio_s += result.duration * len(result.audio)
        rate = classifier.cfg.sample_rate
        generated.append([judged_audio(a, result.sample_rate, rate) for a in result.audio])
        raw.append([a.mean(axis=0) for a in result.audio])
        redraws.append(result.regenerated)
    peak_rss = _peak_rss_mb()
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    prompt_results, gen_emb = _judge(classifier, specs, generated)
    sample_rate = int(tts.codec.sample_rate)
    for res, clips, redrawn in zip(prompt_results, raw, redraws, strict=True):
        res.silent = sum(is_silent(c) for c in clips)
        res.regenerated = redrawn
        res.pitch = [round(pitch_strength(c, sample_rate), 3) for c in clips]
    sheet = contact_sheet([f"{s.prompt} [{s.category}]" for s, clips in zip(specs, raw, strict=True) for _ in clips],
                          [c for clips in raw for c in clips], sample_rate, Path(out_dir) / "contact_sheet.png",
                          columns=max(4, cfg.count * 2), title=f"{model_dir or 'default'}: every generated clip")
    rng = np.random.default_rng(cfg.seed)
    real, _ = load_split(dataset_dir, cfg.split, classifier.cfg.labels, classifier.cfg.sample_rate, cfg.max_real, rng)
    if len(real) < 2:
        raise InvalidRequestError(
            f"{dataset_dir} has fewer than two '{cfg.split}' clips of the classifier's categories"
        )
    real_emb = np.stack([classifier.analyse(x)[1] for x in real[: cfg.max_real]])
    reference = codec_reference(tts, classifier, dataset_dir, cfg)
    known = [r for r in prompt_results if r.adherence is not None]
    hits = sum(sum(p == r.category for p in r.predicted) for r in known)
    report = GenerationReport(
        model=str(model_dir or "default"),
        prompts=prompt_results,
        adherence=hits / max(1, sum(len(r.predicted) for r in known)),
        frechet_distance=frechet_distance(gen_emb, real_emb),
        n_generated=len(gen_emb),
        n_real=len(real_emb),
        real_time_factor=audio_s / max(wall_s, 1e-9),
        audio_seconds=audio_s,
        wall_seconds=wall_s,
        peak_rss_mb=peak_rss,
        peak_gpu_mb=peak_gpu,
        classifier_accuracy=creport.accuracy if creport else None,
        classifier_codec=creport.codec if creport else None,
        classifier_chance=creport.chance if creport else None,
        classifier_labels=list(classifier.cfg.labels),
        reference={k: v for k, v in reference.items() if k != "per_label"},
        contact_sheet=sheet.name,
        settings={"count": cfg.count, "duration": cfg.duration, **asdict(replace(cfg.sampling, seed=cfg.seed))},
    )
    summarise_categories(report, reference_by_label=reference.get("per_label"))
    write_report(report, out_dir)
    return report


@torch.no_grad()
def codec_reference(
    tts: Any, classifier: AudioClassifier, dataset_dir: str | Path, cfg: GenerationEvalConfig, per_label: int = 8
) -> dict[str, Any]:
    """The classifier's accuracy on held-out real clips as they are and after a round trip through the model's
    codec at the LM's codebooks: the second is about the most adherence can show while the codec is what it is.
    The result's ``"per_label"`` holds, per label, [right as they are, right through the codec, clips]."""
    rng = np.random.default_rng(cfg.seed + 1)
    labels = classifier.cfg.labels
    rate = classifier.cfg.sample_rate
    clips, truth = load_split(dataset_dir, cfg.split, labels, rate, per_label, rng)
    k = int(tts.lm.cfg.n_codebooks)
    coded = codec_round_trips(tts.codec, clips, rate, [k], cfg.seed, "reference")
    hits = {"real": 0, "codec": 0}
    by_label: dict[str, list[int]] = {}  # label -> [right as they are, right through the codec, clips]
    for clip, through, label in zip(clips, coded, truth, strict=True):
        row = by_label.setdefault(label, [0, 0, 0])
        row[2] += 1
        for i, (name, audio) in enumerate((("real", clip), ("codec", through))):
            right = labels[int(np.argmax(classifier.analyse(audio)[0]))] == label
            hits[name] += right
            row[i] += right
    n = max(1, len(clips))
    return {"clips": len(clips), "codebooks": k, "real_accuracy": hits["real"] / n, "codec_accuracy": hits["codec"] / n,
            "per_label": by_label}


def summarise_categories(report: GenerationReport, reference_by_label: Any = None) -> None:
    """Fill the report's silent share, music pitch share, per-category table and confusion matrix."""
    clips = sum(len(p.predicted) for p in report.prompts)
    report.silent_share = sum(p.silent for p in report.prompts) / max(1, clips)
    report.regenerated_share = sum(p.regenerated for p in report.prompts) / max(1, clips)
    music = [x for p in report.prompts if p.category.startswith("music/") and p.category != "music/drums"
             for x in p.pitch]
    report.music_pitched_share = sum(x >= PITCHED for x in music) / len(music) if music else None
    refs = reference_by_label or {}
    for cat in sorted({p.category for p in report.prompts}):
        rows = [p for p in report.prompts if p.category == cat]
        n = sum(len(p.predicted) for p in rows)
        heard = Counter(x for p in rows for x in p.predicted)
        report.confusion[cat] = dict(heard.most_common())
        entry = {"clips": float(n), "adherence": heard.get(cat, 0) / max(1, n),
                 "silent": sum(p.silent for p in rows) / max(1, n),
                 "pitch": float(np.median([x for p in rows for x in p.pitch])) if n else 0.0}
        if cat in refs and refs[cat][2]:
            entry["classifier_real"] = refs[cat][0] / refs[cat][2]
            entry["classifier_codec"] = refs[cat][1] / refs[cat][2]
        report.per_category[cat] = entry


def judged_audio(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """A generated sound ``[C, T]`` as the classifier hears it: mono at ``rate``, leading and trailing silence cut
    (as the dataset builder cut it from the real clips: a 0.3 s shot asked for 4 s is judged as the shot). All-silent
    audio is kept whole."""
    from soundgen.audio.io import resample, trim_silence

    mono = resample(audio.mean(0, keepdims=True), sample_rate, rate)
    trimmed = trim_silence(mono, rate)
    return (trimmed if trimmed.shape[-1] else mono)[0]


def _judge(
    classifier: AudioClassifier, specs: list[PromptSpec], generated: list[list[np.ndarray]]
) -> tuple[list[PromptResult], np.ndarray]:
    labels = classifier.cfg.labels
    results, embeddings = [], []
    for spec, clips in zip(specs, generated, strict=True):
        predicted = []
        for clip in clips:
            probs, emb = classifier.analyse(clip)
            predicted.append(labels[int(np.argmax(probs))])
            embeddings.append(emb)
        adherence = sum(p == spec.category for p in predicted) / len(predicted) if spec.category in labels else None
        results.append(PromptResult(spec.prompt, spec.category, predicted, adherence))
    return results, np.stack(embeddings)


def write_report(report: GenerationReport, out_dir: str | Path) -> None:
    """Write ``report.json`` and ``report.md`` into ``out_dir``."""
    out = Path(out_dir)
    with atomic_write(out / "report.json", "w") as f:
        json.dump(asdict(report), f, indent=2, ensure_ascii=False)
    with atomic_write(out / "report.md", "w") as f:
        f.write(markdown(report))


def markdown(r: GenerationReport) -> str:
    """The report as Markdown."""
    acc = (
        "unknown"
        if r.classifier_accuracy is None
        else f"{r.classifier_accuracy:.3f} (chance {r.classifier_chance:.3f})"
    )
    if r.classifier_codec:
        acc += f"; trained on clean clips and their round trips through codec {r.classifier_codec}"
    unknown = sorted({p.category for p in r.prompts if p.adherence is None})
    lines = [
        f"# Generation evaluation: {r.model}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| prompt adherence (classifier agrees with the prompt's category) | {r.adherence:.3f} |",
        f"| Fréchet distance, classifier embeddings ({r.n_generated} generated vs {r.n_real} real) "
        f"| {r.frechet_distance:.3f} |",
        f"| real-time factor (audio s per wall s) | {r.real_time_factor:.2f} |",
        f"| generated audio / wall time | {r.audio_seconds:.1f} s / {r.wall_seconds:.1f} s |",
        f"| peak RSS through generation | {r.peak_rss_mb:.0f} MB |",
        f"| peak GPU memory | {'n/a' if r.peak_gpu_mb is None else f'{r.peak_gpu_mb:.0f} MB'} |",
        f"| classifier held-out accuracy | {acc} |",
        f"| silent generations (peak below -50 dBFS) | {r.silent_share:.3f} |",
        f"| silent draws drawn again, per clip (generation's silent_retries) | {r.regenerated_share:.3f} |",
    ]
    if r.settings:
        st = r.settings
        negative = f", negative prompt {st['negative_prompt']!r}" if st.get("negative_prompt") else ""
        lines.append(
            f"| sounds made with | {st['count']} per prompt, {st['duration']:g} s each, seed {st['seed']} (prompt i: "
            f"seed + i), cfg {st['cfg_coef']:g}, temperature {st['temperature']:g}, top-k {st['top_k']}, "
            f"top-p {st['top_p']:g}{negative} |"
        )
    if r.music_pitched_share is not None:
        share = r.music_pitched_share
        lines.append(f"| music clips with pitch (drums aside; periodicity >= {PITCHED}) | {share:.3f} |")
    if r.reference:
        ref = r.reference
        lines += [
            f"| classifier on {ref['clips']} held-out clips as they are / through the model's codec at "
            f"{ref['codebooks']} codebooks | {float(ref['real_accuracy']):.3f} / {float(ref['codec_accuracy']):.3f} |",
        ]
    lines += [
        "",
        f"**Note:** {r.note}",
        "",
    ]
    if r.reference:
        lines += [
            "The codec row is the classifier's accuracy on real clips after the model's codec: about the most "
            "prompt adherence can show with this codec and classifier, however good the LM.",
            "",
        ]
    if unknown:
        lines += [
            f"Prompts of categories the classifier does not know (left out of adherence): {', '.join(unknown)}",
            "",
        ]
    if r.contact_sheet:
        lines += [f"![every generated clip]({r.contact_sheet})", ""]
    if r.per_category:
        lines += ["## Per category", "", "| category | clips | adherence | silent | median pitch | classifier on real "
                  "clips / through the codec | heard as |", "|---|---:|---:|---:|---:|---|---|"]
        for cat, e in r.per_category.items():
            real = (f"{e['classifier_real']:.2f} / {e['classifier_codec']:.2f}" if "classifier_real" in e else "n/a")
            heard = ", ".join(f"{k} {n}" for k, n in list(r.confusion.get(cat, {}).items())[:4])
            lines.append(f"| {cat} | {int(e['clips'])} | {e['adherence']:.2f} | {e['silent']:.2f} | {e['pitch']:.2f} "
                         f"| {real} | {heard} |")
        lines.append("")
    lines += ["## Per prompt", "", "| prompt | category | adherence | silent | heard as |", "|---|---|---|---|---|"]
    for p in r.prompts:
        heard = ", ".join(f"{k} x{n}" for k, n in Counter(p.predicted).most_common())
        adh = "n/a" if p.adherence is None else f"{p.adherence:.2f}"
        lines.append(f"| {p.prompt} | {p.category} | {adh} | {p.silent}/{len(p.predicted)} | {heard} |")
    return "\n".join(lines) + "\n"
