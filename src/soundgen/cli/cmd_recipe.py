"""``soundgen data recipe default|synth|generalisation``: the default training corpus (or a quick synthetic one),
soundgen's own sound-effects library, and the generalisation set for evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(groups: Any) -> None:
    """Add ``soundgen data recipe default``."""
    recipe = groups.group("data").add_parser(
        "recipe", help="build a ready-made corpus (see 'soundgen data recipe default --help')"
    )
    sub = recipe.add_subparsers(title="recipes", metavar="RECIPE")
    recipe.set_defaults(func=lambda _a: (recipe.print_help(sys.stderr), 2)[1])
    p = sub.add_parser(
        "default",
        help="the corpus of the bundled model: Debian game sounds and music plus rendered scores",
        description=(
            "Check which corpus Debian packages are installed (printing the apt-get command for the missing "
            "ones; nothing is installed), extract their sound effects and music into DIR/staging, render MIDI "
            "files and music21 scores through the FluidR3_GM SoundFont with varied instruments and tempi, then "
            "build the dataset in DIR and write DIR/recipe_report.json/.md (hours per category, licences). "
            "--quick makes a small synthetic corpus instead, in seconds."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create or update")
    p.add_argument("--quick", action="store_true", help="a ~90 s synthetic corpus (tones, sweeps, noise, clicks, "
                   "chords) for tests and smoke runs")
    p.add_argument("--music-hours", type=float, default=None, metavar="H",
                   help="hours of music to render from music21 scores (default: enough for 5 h of music in all, "
                   "at least 1 h)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N clips per package (smoke runs)")
    p.add_argument("--packages", default=None, metavar="P1,P2", help="only these corpus packages")
    p.add_argument("--extra-packages", action="store_true",
                   help="also use megaglest-data and widelands-data (freely licensed, beyond DESIGN.md's list)")
    p.add_argument("--workers", type=int, default=2, help="processes for rendering and building (default 2)")
    p.add_argument("--sample-rate", type=int, default=16000, help="dataset sample rate in Hz (default 16000)")
    p.add_argument("--seed", type=int, default=0, help="seed for instrument/tempo choices and piece order")
    _synth_options(p)
    p.set_defaults(func=_default)
    s = sub.add_parser(
        "synth",
        help="soundgen's own procedural sound-effects library (CC0), and rendered musical phrases",
        description=(
            "Synthesise a labelled, captioned sound-effects corpus in soundgen's own code (explosions, gunshots, "
            "lasers, impacts by material, footsteps by surface and pace, UI sounds, pickups, jumps, engines, "
            "alarms, wind, rain, fire, drips, hum, whooshes, magic, water, birds, drums), each clip placed in a "
            "room or at a distance, with several plain-language captions made from its parameters; optionally "
            "short musical phrases rendered through the FluidR3_GM SoundFont. Everything is CC0 and "
            "deterministic from --seed: an unlimited corpus to pretrain on before fine-tuning on your sounds."
        ),
    )
    s.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create or update")
    s.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    s.add_argument("--sample-rate", type=int, default=16000, help="dataset sample rate in Hz (default 16000)")
    s.add_argument("--seed", type=int, default=0, help="seed of every clip (default 0)")
    _synth_options(s, phrase_default=0.0)
    s.set_defaults(func=_synth)
    g = sub.add_parser(
        "generalisation",
        help="a small evaluation set unlike the corpus: espeak-ng speech, other instruments, other textures",
        description=(
            "Make a few minutes of audio unlike the training corpus, deterministic in --seed, and build it into "
            "DIR's test split (the layout 'soundgen eval codec --data DIR' reads): sentences spoken by espeak-ng in "
            "12 languages with varied voices, rates and pitches; melodies on General MIDI instruments the corpus "
            "recipe never plays, through the FluidR3_GM SoundFont; FM bells, a plucked-string model, telephone "
            "tones, record crackle, crickets, babble, a robot voice and a noisy phone line. "
            "DIR/generalisation_report.json/.md list every clip's source and licence. Needs espeak-ng "
            "(apt-get install espeak-ng) and fluid-soundfont-gm."
        ),
    )
    g.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create or update")
    g.add_argument("--seed", type=int, default=0, help="seed of every clip (default 0)")
    g.add_argument("--sample-rate", type=int, default=16000, help="dataset sample rate in Hz (default 16000)")
    g.add_argument("--speech-clips", type=int, default=12, metavar="N", help="espeak-ng sentences (default 12)")
    g.add_argument("--music-clips", type=int, default=12, metavar="N",
                   help="melodies, one instrument the corpus lacks each (default 12, at most 20)")
    g.add_argument("--texture-clips", type=int, default=1, metavar="N", help="clips of each of the 8 textures "
                   "(default 1)")
    g.set_defaults(func=_generalisation)


def _synth_options(p: argparse.ArgumentParser, phrase_default: float = 60.0) -> None:
    p.add_argument("--sfx-minutes", type=float, default=30.0, metavar="M",
                   help="minutes per category of procedural sound effects (default 30; 0: none)")
    p.add_argument("--phrase-minutes", type=float, default=phrase_default, metavar="M",
                   help=f"minutes per musical family of rendered phrases (default {phrase_default:g}; 0: none)")
    p.add_argument("--licences", choices=["permissive", "copyleft", "all"], default="all",
                   help="keep clips up to this licence class: permissive (CC0, public domain, CC-BY, MIT/BSD-style: "
                   "what a commercial user can clear; the bundled model's), copyleft (adds GPL, CC-BY-SA), all "
                   "(adds unknown). Default all")


def _synth(args: argparse.Namespace) -> int:
    from soundgen.data.recipes.default import RecipeConfig, run_recipe

    cfg = RecipeConfig(
        out=Path(args.out), workers=args.workers, sample_rate=args.sample_rate, seed=args.seed, synth_only=True,
        sfx_minutes=args.sfx_minutes, phrase_minutes=args.phrase_minutes, licences=args.licences,
    )
    result = run_recipe(cfg)
    r = result.report
    print("hours per category: " + ", ".join(f"{k} {v:.2f}" for k, v in r.hours_by_category.items()))
    print(f"dataset: {result.build.out} ({result.build.total_clips} clips); report: "
          f"{result.build.out / 'recipe_report.md'}; took {result.elapsed:.0f} s")
    return 0


def _generalisation(args: argparse.Namespace) -> int:
    from soundgen.data.recipes.generalisation import GeneralisationConfig, run_generalisation

    cfg = GeneralisationConfig(
        out=Path(args.out), seed=args.seed, sample_rate=args.sample_rate, speech_clips=args.speech_clips,
        music_clips=args.music_clips, texture_clips=args.texture_clips,
    )
    result = run_generalisation(cfg)
    counts: dict[str, int] = {}
    for row in result.clips:
        counts[row.category] = counts.get(row.category, 0) + 1
    print(f"dataset: {cfg.out} ({len(result.clips)} clips, {result.seconds:.1f} s, all in the test split: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"); report: {result.report_md}; "
          f"took {result.elapsed:.0f} s")
    return 0


def _default(args: argparse.Namespace) -> int:
    from soundgen.data.recipes.default import RecipeConfig, run_recipe

    cfg = RecipeConfig(
        out=Path(args.out), quick=args.quick, music_hours=args.music_hours, limit=args.limit,
        workers=args.workers, sample_rate=args.sample_rate, seed=args.seed, extra_packages=args.extra_packages,
        sfx_minutes=args.sfx_minutes, phrase_minutes=args.phrase_minutes, licences=args.licences,
        packages=tuple(p.strip() for p in args.packages.split(",") if p.strip()) if args.packages else None,
    )
    result = run_recipe(cfg)
    r = result.report
    found = [s.spec.name for s in result.statuses if s.installed]
    missing = [s.spec.name for s in result.statuses if not s.installed]
    if not cfg.quick:
        print(f"packages found: {len(found)}/{len(result.statuses)}" + (f" (missing: {', '.join(missing)})"
                                                                         if missing else ""))
    if result.apt_command:
        print(f"to add the missing packages: {result.apt_command}")
    for key, label in (("sfx_hours", "sound effects"), ("music_hours", "music")):
        reached = r.sfx_hours if key == "sfx_hours" else r.music_hours
        target = (f" (target {r.targets[key]:.1f} h, {'met' if r.targets_met[key] else 'NOT met'})"
                  if key in r.targets else "")
        print(f"{label}: {reached:.2f} h{target}")
    print("hours per category: " + ", ".join(f"{k} {v:.2f}" for k, v in r.hours_by_category.items()))
    print(f"dataset: {result.build.out} ({result.build.total_clips} clips); report: "
          f"{result.build.out / 'recipe_report.md'}; took {result.elapsed:.0f} s")
    return 0
