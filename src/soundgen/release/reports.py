"""What the training chain leaves behind, read into typed records for the model card: the one place that knows
the layout of a model directory's configs, a run's ``progress.jsonl``, the corpus recipe's report, a dataset's
manifests, the evaluations' reports and the benchmarks' JSON.

Every reader returns ``None`` (or an empty list) for a part that is absent, so the card can say it was not
recorded, and raises :class:`~soundgen.errors.CorruptFileError` for a part that is there but unreadable.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundgen.codec.config import CodecConfig
from soundgen.codec.io import read_codec_config
from soundgen.errors import CorruptFileError
from soundgen.lm.config import LMConfig, read_lm_config

RECIPE_REPORT = "recipe_report.md"
CODEC_EVAL_REPORT = "codec_eval.md"
GENERATION_EVAL_REPORT = "report.md"


def read_json(path: Path) -> Any:
    """The JSON value of ``path``.

    Raises:
        CorruptFileError: unreadable or not JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptFileError(f"cannot read {path}: {e}") from e


@dataclass(frozen=True)
class PartFiles:
    """One part of a model directory (``codec/`` or ``lm/``) as its files say.

    Attributes:
        millions: parameters stored, in millions.
        stored_as: the floating-point dtypes of the weights, e.g. ``F16``.
        train_steps: the training steps its ``config.json`` records, if any.
    """

    millions: float
    stored_as: str
    train_steps: int | None


@dataclass(frozen=True)
class ModelFacts:
    """The codec and the LM of a model directory: their configs and their files."""

    codec: CodecConfig
    lm: LMConfig
    codec_files: PartFiles
    lm_files: PartFiles


def read_model_facts(model_dir: Path) -> ModelFacts:
    """The facts of the model directory ``model_dir`` (``codec/`` and ``lm/``, each config.json + weights)."""
    return ModelFacts(
        read_codec_config(model_dir / "codec"), read_lm_config(model_dir / "lm"),
        _part_files(model_dir / "codec"), _part_files(model_dir / "lm"),
    )


def _part_files(part_dir: Path) -> PartFiles:
    from safetensors import safe_open

    n = 0
    dtypes = set()
    with safe_open(str(part_dir / "model.safetensors"), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            t = f.get_slice(key)
            count = 1
            for d in t.get_shape():
                count *= d
            n += count
            if str(t.get_dtype()).startswith(("F", "BF")):
                dtypes.add(str(t.get_dtype()))
    steps = read_json(part_dir / "config.json").get("train_steps")
    return PartFiles(n / 1e6, "/".join(sorted(dtypes)), int(steps) if isinstance(steps, int) else None)


@dataclass(frozen=True)
class Sitting:
    """One row of a run's ``progress.jsonl`` (written by :meth:`soundgen.train.common.RunDir.save`): the steps
    ``from_step`` to ``step`` took ``seconds`` of wall time on ``device``."""

    from_step: int
    step: int
    seconds: float
    device: str | None


def read_sittings(run_dir: Path | None) -> list[Sitting]:
    """The timed sittings of a training run, oldest first (none when the run or its log is absent)."""
    log = run_dir / "progress.jsonl" if run_dir is not None else None
    if log is None or not log.is_file():
        return []
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(row, dict) and "step" in row:
            step, device = int(row["step"]), row.get("device")
            out.append(Sitting(int(row.get("from_step", step)), step, float(row.get("seconds", 0.0)),
                               None if device is None else str(device)))
    return out


@dataclass(frozen=True)
class CorpusReport:
    """The corpus recipe's report (``recipe_report.md`` and the JSON beside it).

    Attributes:
        markdown: the report as written.
        hours_by_licence: hours per licence class (``permissive``, ``copyleft``, ``unknown``) where recorded.
    """

    markdown: str
    hours_by_licence: dict[str, float]

    def summary_lines(self) -> list[str]:
        """The report's first bullet points (hours against targets, time)."""
        return [ln for ln in self.markdown.splitlines()[1:] if ln.startswith("- ")][:3]

    def section(self, heading: str) -> str:
        """The body of the ``## heading`` section ('' when absent); a heading may go on in parentheses
        ("Hours per licence class (clips kept: ...)")."""
        out: list[str] = []
        inside = False
        for line in self.markdown.splitlines():
            if line.startswith("## "):
                title = line[3:].strip().lower()
                inside = title == heading.lower() or title.startswith(heading.lower() + " (")
                continue
            if inside:
                out.append(line)
        return "\n".join(out).strip()


def read_corpus_report(corpus_dir: Path | None) -> CorpusReport | None:
    """The recipe report of a corpus made by ``soundgen data recipe``, or ``None`` when it has none."""
    md = corpus_dir / RECIPE_REPORT if corpus_dir is not None else None
    if md is None or not md.is_file():
        return None
    summary = read_json(md.with_suffix(".json")) if md.with_suffix(".json").is_file() else {}
    hours = summary.get("hours_by_licence", {}) if isinstance(summary, dict) else {}
    return CorpusReport(md.read_text(encoding="utf-8"), dict(hours) if isinstance(hours, dict) else {})


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset's clips by source and licence, from its manifests (for a dataset no recipe made).

    Attributes:
        name: the dataset folder's name.
        hours: audio in all splits.
        clips_by_source: (source, licence) -> clips.
    """

    name: str
    hours: float
    clips_by_source: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def clips(self) -> int:
        return sum(self.clips_by_source.values())


def read_dataset_summary(dataset_dir: Path | None) -> DatasetSummary | None:
    """The summary of a dataset's manifests, or ``None`` when there is no dataset there."""
    from soundgen.data.manifest import SPLITS, manifest_path, read_manifest

    if dataset_dir is None or not dataset_dir.is_dir():
        return None
    counts: Counter[tuple[str, str]] = Counter()
    seconds = 0.0
    for split in SPLITS:
        if manifest_path(dataset_dir, split).is_file():
            for clip in read_manifest(dataset_dir, split):
                counts[(clip.source or "?", clip.licence)] += 1
                seconds += clip.duration
    return DatasetSummary(dataset_dir.name, seconds / 3600, dict(counts))


GENERATION_EVAL_JSON = "report.json"


def prompts_that_worked(eval_dir: Path | None, limit: int = 8) -> list[str]:
    """The prompts a generation evaluation heard as asked every time (adherence 1, none silent), one category
    in turn so the examples show the range of what works, the categories where most prompts worked first (ties
    in the evaluation's order); empty when the evaluation was not run or judged no prompt.

    Raises:
        CorruptFileError: the evaluation's report.json is unreadable or not JSON.
    """
    path = eval_dir / GENERATION_EVAL_JSON if eval_dir is not None else None
    if path is None or not path.is_file():
        return []
    by_category: dict[str, list[str]] = {}
    report = read_json(path)
    for row in _dicts(report.get("prompts") if isinstance(report, dict) else None):
        prompt, category = row.get("prompt"), row.get("category")
        if not (isinstance(prompt, str) and isinstance(category, str)):
            continue
        if row.get("adherence") == 1.0 and row.get("silent") == 0:
            by_category.setdefault(category, []).append(prompt)
    ranked = sorted(by_category.values(), key=len, reverse=True)  # stable: ties keep the evaluation's order
    out: list[str] = []
    for rank in range(limit):
        out += [prompts[rank] for prompts in ranked if rank < len(prompts)]
    return out[:limit]


def read_eval_report(eval_dir: Path | None, name: str) -> str | None:
    """The Markdown report ``name`` of an evaluation's ``--out`` directory, or ``None`` when it was not run."""
    path = eval_dir / name if eval_dir is not None else None
    if path is None or not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class SpeedRun:
    """One model's generation speed in ``benchmarks/generation_speed.py``'s JSON."""

    model: str
    dtype: str
    d_model: int | None
    n_layers: int | None
    audio_s_per_wall_s: float
    ms_per_step: float
    peak_rss_mb: float


@dataclass(frozen=True)
class GenerationSpeed:
    """``benchmarks/generation_speed.py``: soundgen's model and a peer of MusicGen-small's size.

    Attributes:
        runs: ``default`` (soundgen's model) and ``peer_musicgen_small_size``, each its runs.
        load_average: the machine's 1-minute load average when the benchmark started.
    """

    file: str
    name: str
    setup: str
    runs: dict[str, list[SpeedRun]]
    load_average: float | None = None

    def by_dtype(self, key: str) -> dict[str, list[SpeedRun]]:
        out: dict[str, list[SpeedRun]] = {}
        for run in self.runs.get(key, []):
            out.setdefault(run.dtype, []).append(run)
        return dict(sorted(out.items()))


GENERATION_SPEED_KEYS = ("default", "peer_musicgen_small_size")


@dataclass(frozen=True)
class CodecSpeedRow:
    """Encode and decode speed (times real time) of one soundgen codec config and the peer, at some threads."""

    threads: str
    config: str
    encode: float
    peer_encode: float
    decode: float
    peer_decode: float


@dataclass(frozen=True)
class CodecSpeed:
    """``benchmarks/codec_speed.py``: every soundgen codec config beside the peer (EnCodec 24 kHz)."""

    file: str
    name: str
    setup: str
    peer: str
    clip_seconds: float | str
    rows: list[CodecSpeedRow]


@dataclass(frozen=True)
class OtherBenchmark:
    """A benchmark's JSON of another shape: its top-level figures as they are."""

    file: str
    name: str
    setup: str
    figures: dict[str, int | float | str | bool]


@dataclass(frozen=True)
class MissingBenchmark:
    """A benchmark file that was named but cannot be shown (``why``: not found, not a benchmark report)."""

    file: str
    why: str


Benchmark = GenerationSpeed | CodecSpeed | OtherBenchmark | MissingBenchmark


def read_benchmark(path: Path) -> Benchmark:
    """The benchmark JSON at ``path`` as the record of its shape."""
    if not path.is_file():
        return MissingBenchmark(path.name, "not found")
    data = read_json(path)
    if not isinstance(data, dict):
        return MissingBenchmark(path.name, "not a benchmark report")
    name = str(data.get("benchmark", path.stem))
    setup = str(data["setup"]) if data.get("setup") else ""
    if name == "generation_speed" or GENERATION_SPEED_KEYS[1] in data:
        runs = {key: [_speed_run(r, key) for r in _dicts(data.get(key, []))] for key in GENERATION_SPEED_KEYS}
        return GenerationSpeed(path.name, name, setup, runs, data.get("load_average_1min_at_start"))
    if "threads" in data and "peer" in data:
        rows = [
            CodecSpeedRow(str(threads), config, float(c.get("encode_x_realtime", 0.0)),
                          float(inf.get("encodec_encode_x_realtime", 0.0)), float(c.get("decode_x_realtime", 0.0)),
                          float(inf.get("encodec_decode_x_realtime", 0.0)))
            for threads, block in sorted(data["threads"].items())
            for inf in [block.get("inference", {})]
            for config, c in inf.get("configs", {}).items()
        ]
        return CodecSpeed(path.name, name, setup, str(data["peer"]), data.get("clip_seconds", "?"), rows)
    figures = {k: v for k, v in data.items() if isinstance(v, int | float | str | bool)}
    return OtherBenchmark(path.name, name, setup, figures)


def _dicts(value: Any) -> list[dict[str, Any]]:
    value = [value] if isinstance(value, dict) else value
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _speed_run(row: dict[str, Any], key: str) -> SpeedRun:
    return SpeedRun(str(row.get("model", key)), str(row.get("dtype", "?")), row.get("d_model"), row.get("n_layers"),
                    float(row["audio_s_per_wall_s"]), float(row["ms_per_step"]), float(row["peak_rss_mb"]))
