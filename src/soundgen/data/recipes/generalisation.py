"""The generalisation set: ``soundgen data recipe generalisation --out DIR --seed 0``.

A few minutes of audio unlike the training corpus, made here from freely licensed parts and deterministic in the
seed, to evaluate a codec (``soundgen eval codec --data DIR``) on sounds it has never heard:

- **speech**: sentences written for soundgen, spoken by espeak-ng in 12 languages with varied voices, rates and
  pitches (:mod:`.speech`); the corpus has no speech;
- **music**: melodies on General MIDI instruments that the corpus recipe never plays (:data:`INSTRUMENTS`, checked
  against :func:`corpus_programs`), rendered through the recipe's SoundFont (FluidR3_GM);
- **textures**: FM bells, a Karplus-Strong string, telephone signalling, record crackle, crickets, and speech
  textures (babble, a robot voice, a noisy phone line) (:mod:`.textures`).

Categories are ``speech``, ``music`` and ``texture`` (tags carry the language, instrument or kind), so that
``eval codec --max-clips N`` takes them in turn. Every clip goes into the ``test`` split (the eval's default) of a
dataset in the usual layout, built with :func:`soundgen.data.build.build_dataset`;
``generalisation_report.json``/``.md`` list every clip with how it was made, its source and its licence.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from soundgen.audio.io import write_audio
from soundgen.data.build import build_dataset
from soundgen.data.manifest import read_manifest
from soundgen.data.recipes import speech, textures
from soundgen.data.recipes.extract import StagedClip
from soundgen.data.recipes.packages import SOUNDFONT_PACKAGE, SOUNDFONT_PATH
from soundgen.errors import ConfigError, MissingDependencyError
from soundgen.utils import atomic_write, progress

log = logging.getLogger(__name__)

SOURCE = "soundgen-generalisation"
REPORT = "generalisation_report"
SYNTH_LICENCE = "CC0-1.0 (soundgen's own synthesis)"
MUSIC_LICENCE = "CC0-1.0 (soundgen's own generated melodies); rendered with FluidR3_GM (MIT)"
SPEECH_LICENCE = (f"{speech.SENTENCE_LICENCE} (sentences written for soundgen); voiced by espeak-ng "
                  f"({speech.ESPEAK_LICENCE} program and voice data)")

# General MIDI programs (0-based) that the corpus recipe never assigns: (program, name, lowest, highest note)
INSTRUMENTS: tuple[tuple[int, str, int, int], ...] = (
    (105, "banjo", 48, 79), (104, "sitar", 48, 79), (107, "koto", 55, 84), (108, "kalimba", 60, 84),
    (109, "bagpipe", 55, 77), (114, "steel drums", 60, 84), (21, "accordion", 48, 79), (22, "harmonica", 60, 84),
    (66, "tenor saxophone", 44, 75), (75, "pan flute", 60, 91), (79, "ocarina", 60, 84), (36, "slap bass", 28, 55),
    (58, "tuba", 28, 55), (7, "clavinet", 48, 84), (15, "dulcimer", 55, 84), (9, "glockenspiel", 72, 100),
    (106, "shamisen", 50, 79), (77, "shakuhachi", 55, 84), (64, "soprano saxophone", 56, 87), (47, "timpani", 40, 55),
)
_MUSIC_KINDS = ("melody", "arpeggio", "run", "melody")


@dataclass(frozen=True)
class GeneralisationConfig:
    """Settings of the generalisation set.

    Attributes:
        out: the dataset folder (staging files go in ``out/staging``).
        seed: fixes every clip.
        sample_rate: of the dataset, Hz.
        speech_clips: sentences spoken by espeak-ng (the 12 languages in turn).
        music_clips: melodies, one instrument of :data:`INSTRUMENTS` each (at most that many).
        texture_clips: clips of each texture kind (:mod:`.textures`: 5 synthesised, 3 made of speech).
        soundfont: the General MIDI SoundFont (the corpus recipe's).
    """

    out: Path
    seed: int = 0
    sample_rate: int = 16000
    speech_clips: int = 12
    music_clips: int = 12
    texture_clips: int = 1
    soundfont: Path = SOUNDFONT_PATH

    @classmethod
    def tiny(cls, out: Path) -> GeneralisationConfig:
        """A few clips of each kind (tests)."""
        return cls(out=Path(out), speech_clips=3, music_clips=2, texture_clips=1)

    def validate(self) -> None:
        """Raise ConfigError for values that cannot work."""
        if min(self.speech_clips, self.music_clips, self.texture_clips) < 0:
            raise ConfigError("clip counts must be >= 0")
        if self.music_clips > len(INSTRUMENTS):
            raise ConfigError(f"at most {len(INSTRUMENTS)} music clips (one per instrument the corpus lacks)")
        if self.speech_clips + self.music_clips + self.texture_clips == 0:
            raise ConfigError("nothing to make: every clip count is 0")
        if not 8000 <= self.sample_rate <= 48000:
            raise ConfigError(f"sample rate must be 8000..48000 Hz, got {self.sample_rate}")


@dataclass
class MadeClip:
    """One staged clip of the set and how it was made (``how``: the generator's settings, for the report)."""

    staged: StagedClip
    seconds: float
    how: dict[str, object] = field(default_factory=dict)


@dataclass
class SetClip:
    """One clip of the built set, as the report lists it (``how``: the generator's settings)."""

    id: str
    category: str
    seconds: float
    caption: str
    source: str
    source_file: str
    licence: str
    how: dict[str, object]


@dataclass
class GeneralisationResult:
    """What a run made: the clips of the dataset, seconds of audio, and the report paths."""

    clips: list[SetClip]
    seconds: float
    report_json: Path
    report_md: Path
    elapsed: float


def corpus_programs() -> frozenset[int]:
    """General MIDI programs the corpus recipe assigns: the score renderer's and the phrases' instruments.
    (MIDI files found in packages play their own programs; the bundled model's corpus has none.)"""
    from soundgen.data.recipes.phrases import PHRASE_INSTRUMENTS
    from soundgen.data.recipes.render import GM_INSTRUMENTS

    phrases = {p[0] for family, insts in PHRASE_INSTRUMENTS.items() if family != "drums" for p in insts}
    return frozenset({i.program for i in GM_INSTRUMENTS} | phrases)


def _rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(kind.encode()), index])


def _stage(staging: Path, rel: str, samples: np.ndarray, sr: int, clip: StagedClip, how: dict[str, object]
           ) -> MadeClip:
    write_audio(staging / rel, textures.finish(samples, sr), sr)
    return MadeClip(clip, len(samples) / sr, how)


def _languages(n: int) -> list[str]:
    """``n`` languages of :data:`speech.SENTENCES`, in turn."""
    order = list(speech.SENTENCES)
    return [order[i % len(order)] for i in range(n)]


def make_speech(cfg: GeneralisationConfig, staging: Path) -> list[MadeClip]:
    """The espeak-ng sentences."""
    out = []
    for i, language in enumerate(_languages(cfg.speech_clips)):
        u = speech.draw_utterance(_rng(cfg.seed, "speech", i), language)
        name = speech.SENTENCES[language][0]
        rel = f"speech/{i:03d}_{language}_{u.variant}.wav"
        clip = StagedClip(
            rel, f"{name} speech, a synthetic {u.variant} voice: \"{u.text}\"", ["speech", name.lower(), u.variant],
            SPEECH_LICENCE, "speech", SOURCE, f"{SOURCE}:speech:{cfg.seed}:{i}",
        )
        how = {"generator": "espeak-ng", "voice": u.voice, "rate_wpm": u.rate, "pitch": u.pitch, "text": u.text}
        out.append(_stage(staging, rel, speech.speak(u, cfg.sample_rate), cfg.sample_rate, clip, how))
    return out


def make_music(cfg: GeneralisationConfig, staging: Path) -> list[MadeClip]:
    """Melodies on instruments the corpus lacks, through the SoundFont."""
    from soundgen.data.recipes.phrases import _MAJOR, _MINOR, _a, _notes, _play, _reset
    from soundgen.data.recipes.render import synth_for

    if cfg.music_clips and not cfg.soundfont.is_file():
        raise MissingDependencyError(
            f"the music needs the SoundFont {cfg.soundfont}: apt-get install {SOUNDFONT_PACKAGE}"
        )
    order = list(INSTRUMENTS)
    np.random.default_rng([cfg.seed, 7]).shuffle(order)  # type: ignore[arg-type]  # a list shuffles in place
    out = []
    for i, (program, inst, lo, hi) in enumerate(order[: cfg.music_clips]):
        rng = _rng(cfg.seed, "music", i)
        synth = synth_for(cfg.soundfont, cfg.sample_rate, owner="generalisation")
        _reset(synth)
        synth.program_change(0, program, False)  # type: ignore[attr-defined]
        minor, key, bpm = bool(rng.random() < 0.5), int(rng.integers(12)), float(rng.uniform(70, 150))
        kind = str(rng.choice(_MUSIC_KINDS))
        root = 12 * ((lo + hi) // 2 // 12) + key - 12
        notes = _notes(rng, kind, root, _MINOR if minor else _MAJOR, lo, hi, 60.0 / bpm)
        events = [e for start, length, keys in notes for k in keys
                  for e in ((start, 0, k, int(rng.integers(70, 110))), (start + length, 0, k, 0))]
        x = _play(synth, events, max(s + ln for s, ln, _ in notes) + 1.0, cfg.sample_rate)
        _reset(synth)
        mode = "minor" if minor else "major"
        rel = f"music/{i:03d}_{program:03d}.wav"
        clip = StagedClip(rel, _a(f"{inst} {kind} in a {mode} key at {bpm:.0f} BPM"), ["music", inst, kind, mode],
                          MUSIC_LICENCE, "music", SOURCE, f"{SOURCE}:music:{cfg.seed}:{i}")
        how = {"generator": "FluidR3_GM via tinysoundfont", "gm_program": program, "instrument": inst, "kind": kind,
               "bpm": round(bpm, 1), "mode": mode}
        out.append(_stage(staging, rel, x, cfg.sample_rate, clip, how))
    return out


def make_textures(cfg: GeneralisationConfig, staging: Path) -> list[MadeClip]:
    """Each texture kind ``texture_clips`` times; the speech textures use espeak-ng voices."""
    sr, out = cfg.sample_rate, []
    kinds = [*textures.SYNTH_TEXTURES, *textures.SPEECH_TEXTURES]
    for kind in kinds:
        for i in range(cfg.texture_clips):
            rng = _rng(cfg.seed, f"texture/{kind}", i)
            licence = SYNTH_LICENCE
            how: dict[str, object] = {"generator": f"soundgen.data.recipes.textures.{kind}"}
            if kind in textures.SYNTH_TEXTURES:
                made = textures.SYNTH_TEXTURES[kind](rng, sr)
            else:
                count = int(rng.integers(4, 7)) if kind == "babble" else 1
                voices = [speech.draw_utterance(rng, _languages(12)[int(rng.integers(12))]) for _ in range(count)]
                audio = [speech.speak(u, sr) for u in voices]
                how["voices"] = [{"voice": u.voice, "rate_wpm": u.rate, "pitch": u.pitch, "text": u.text}
                                 for u in voices]
                licence = SPEECH_LICENCE
                made = (textures.babble(audio, sr, rng) if kind == "babble"
                        else getattr(textures, kind)(audio[0], sr, rng))
            rel = f"texture/{kind}_{i:03d}.wav"
            clip = StagedClip(rel, made.caption, made.tags, licence, "texture", SOURCE,
                              f"{SOURCE}:texture/{kind}:{cfg.seed}:{i}")
            out.append(_stage(staging, rel, made.samples, sr, clip, how))
    return out


def run_generalisation(cfg: GeneralisationConfig) -> GeneralisationResult:
    """Make the set (see the module docstring) and build it into ``cfg.out``.

    Raises:
        ConfigError: bad settings.
        MissingDependencyError: espeak-ng (Debian package ``espeak-ng``) or the SoundFont is missing.
    """
    cfg.validate()
    t0 = time.perf_counter()
    if cfg.speech_clips or cfg.texture_clips:
        speech.espeak_path()  # before anything is written: name the missing package at once
    out = cfg.out.absolute()
    staging = out / "staging"
    made: list[MadeClip] = []
    for step in progress((make_speech, make_music, make_textures), desc="generalisation set", unit="part"):
        made += step(cfg, staging)
    metadata = staging / "metadata.jsonl"
    with atomic_write(metadata, "w") as f:
        for m in made:
            f.write(json.dumps(m.staged.record(), ensure_ascii=False) + "\n")
    build_dataset([staging], out, sample_rate=cfg.sample_rate, captions=metadata, split_fractions=(0.0, 0.0, 1.0),
                  workers=1)
    rows = _rows(out, made)
    elapsed = time.perf_counter() - t0
    report_json, report_md = write_report(out, cfg, rows, elapsed)
    return GeneralisationResult(rows, sum(r.seconds for r in rows), report_json, report_md, elapsed)


def _rows(out: Path, made: list[MadeClip]) -> list[SetClip]:
    """One report row per dataset clip, in the order the clips were made."""
    order = {m.staged.source_file: (i, m) for i, m in enumerate(made)}
    rows = []
    for clip in read_manifest(out, "test"):
        how = order[clip.source_file][1].how if clip.source_file in order else {}
        rows.append(SetClip(clip.id, clip.category, round(clip.duration, 3), clip.caption, clip.source,
                            clip.source_file, clip.licence, how))
    return sorted(rows, key=lambda r: order.get(r.source_file, (len(order), None))[0])


def write_report(out: Path, cfg: GeneralisationConfig, rows: list[SetClip], elapsed: float) -> tuple[Path, Path]:
    """``generalisation_report.json`` and ``.md``: the settings, the tools' versions and every clip."""
    seconds = sum(r.seconds for r in rows)
    facts = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "espeak_ng": speech.espeak_version() if cfg.speech_clips or cfg.texture_clips else None,
        "clips": len(rows), "seconds": round(seconds, 2), "elapsed_seconds": round(elapsed, 1),
        "rows": [asdict(r) for r in rows],
    }
    js, md = out / f"{REPORT}.json", out / f"{REPORT}.md"
    with atomic_write(js, "w") as f:
        json.dump(facts, f, indent=2, ensure_ascii=False)
    lines = [
        "# Generalisation set", "",
        f"{len(rows)} clips, {seconds:.1f} s, seed {cfg.seed}, {cfg.sample_rate} Hz, all in the test split; "
        f"made in {elapsed:.0f} s. espeak-ng: {facts['espeak_ng'] or '-'}; SoundFont: {cfg.soundfont}.", "",
        "Audio unlike the training corpus: speech (espeak-ng), General MIDI instruments the corpus recipe never "
        "plays, and textures made with other techniques. Licences: the sentences, melodies and synthesis are "
        "soundgen's own (CC0); espeak-ng's program and voice data are GPL-3.0-or-later, so the speech clips are "
        "listed with both; the SoundFont is FluidR3_GM (MIT).", "",
        "| id | category | s | how | source | licence |", "|---|---|---:|---|---|---|",
    ]
    for r in rows:
        how = "; ".join(f"{k} {json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v}"
                        for k, v in r.how.items())
        lines.append(f"| {r.id} | {r.category} | {r.seconds:g} | {how.replace('|', '/')} | {r.source_file} "
                     f"| {r.licence} |")
    with atomic_write(md, "w") as f:
        f.write("\n".join(lines) + "\n")
    return js, md
