"""The recipe end to end: --quick through the CLI, and a package run on a fake doc root and fake packages."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.cli.main import main
from soundgen.data.manifest import SPLITS, read_manifest
from soundgen.data.recipes.default import RecipeConfig, run_recipe
from soundgen.data.recipes.synth import synth_clips
from soundgen.errors import ConfigError

SR = 16000


def all_clips(out: Path) -> list:  # type: ignore[type-arg]
    return [c for split in SPLITS for c in read_manifest(out, split)]


def test_quick_synth_is_labelled_deterministic_and_short() -> None:
    clips = synth_clips(seed=0)
    assert {c.category for c in clips} == {"tone", "sweep", "noise", "click", "chord"}
    total = sum(len(c.samples) for c in clips) / SR
    assert 60 <= total <= 120
    assert all(np.max(np.abs(c.samples)) <= 1.0 and np.max(np.abs(c.samples)) > 0.1 for c in clips)
    again = synth_clips(seed=0)
    pairs = zip(clips, again, strict=True)
    assert all(np.array_equal(a.samples, b.samples) and a.caption == b.caption for a, b in pairs)


def test_quick_builds_a_dataset_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "quick"
    assert main(["data", "recipe", "default", "--out", str(out), "--quick", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "hours per category" in printed and "chord" in printed
    clips = all_clips(out)
    assert len(clips) == 45
    assert {c.category for c in clips} == {"tone", "sweep", "noise", "click", "chord"}
    assert all(c.licence == "CC0-1.0" and c.source == "soundgen-synth" and c.caption for c in clips)
    assert {c.caption for c in clips if c.category == "click"}.isdisjoint({c.caption for c in clips
                                                                          if c.category == "tone"})
    report = json.loads((out / "recipe_report.json").read_text())
    assert report["mode"] == "quick" and sum(report["clips_by_category"].values()) == 45
    assert 60 / 3600 < report["sfx_hours"] < 130 / 3600
    assert (out / "report.json").is_file() and (out / "recipe_report.md").is_file()


def test_quick_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "q"
    proc = subprocess.run(
        [sys.executable, "-m", "soundgen", "-q", "data", "recipe", "default", "--out", str(out), "--quick",
         "--workers", "1"], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sound effects:" in proc.stdout and (out / "train" / "manifest.jsonl").is_file()


def test_bad_options_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "recipe", "default", "--out", str(tmp_path), "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown corpus packages"):
        run_recipe(RecipeConfig(out=tmp_path, packages=("not-a-package",)))


def fake_packages(tmp_path: Path) -> tuple[Path, dict[str, list[Path]]]:
    """A doc root with two packages, a pk3 of oggs and a WAD with one DS lump, installed under tmp_path."""
    doc = tmp_path / "doc"
    for name, licence in (("ufoai-sound", "GPL-2+"), ("freedoom", "BSD-3-Clause")):
        (doc / name).mkdir(parents=True)
        (doc / name / "copyright").write_text(
            f"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            f"Files: *\nCopyright: 2020 The {name} authors\nLicense: {licence}\n"
        )
    pk3 = tmp_path / "usr/share/games/ufoai/base/0snd.pk3"
    pk3.parent.mkdir(parents=True)
    with zipfile.ZipFile(pk3, "w") as zf:
        for i, (name, freq) in enumerate([("weapons/rifle_shot", 300), ("aliens/scream", 600), ("ui/click", 900)]):
            wav = tmp_path / f"m{i}.ogg"
            t = np.arange(SR) / SR
            sf.write(wav, 0.4 * np.sin(2 * np.pi * freq * t), SR, format="OGG", subtype="VORBIS")
            zf.write(wav, f"sound/{name}.ogg")
    wad = tmp_path / "usr/share/games/doom/freedoom2.wad"
    wad.parent.mkdir(parents=True)
    pcm = (128 + 100 * np.sin(np.arange(11025) / 5)).astype(np.uint8).tobytes()
    lump = struct.pack("<HHI", 3, 11025, len(pcm) + 32) + pcm[:16] + pcm + pcm[-16:]
    directory = struct.pack("<ii8s", 12, len(lump), b"DSBAREXP")
    wad.write_bytes(b"PWAD" + struct.pack("<ii", 1, 12 + len(lump)) + lump + directory)
    return doc, {"ufoai-sound": [pk3], "freedoom": [wad]}


def test_package_run_extracts_labels_and_reports(tmp_path: Path) -> None:
    doc, files = fake_packages(tmp_path)
    out = tmp_path / "corpus"
    cfg = RecipeConfig(out=out, workers=1, doc_root=doc, soundfont=tmp_path / "no.sf2",
                       packages=("ufoai-sound", "freedoom", "naev-data"), sfx_minutes=0, phrase_minutes=0)
    result = run_recipe(cfg, is_installed=None, list_files=lambda name: files.get(name, []))
    assert result.apt_command == "sudo apt-get install -y naev-data fluid-soundfont-gm"
    clips = all_clips(out)
    assert {c.category for c in clips} == {"gunshot", "voice", "ui/beep", "explosion"}
    by_cat = {c.category: c for c in clips}
    assert by_cat["explosion"].licence == "BSD-3-Clause" and by_cat["explosion"].source == "freedoom"
    assert by_cat["gunshot"].licence == "GPL-2+" and "UFO: Alien Invasion" in by_cat["gunshot"].caption
    report = json.loads((out / "recipe_report.json").read_text())
    assert report["targets_met"] == {"sfx_hours": False, "music_hours": False}
    assert report["sfx_hours"] == pytest.approx(4 / 3600, rel=0.1)  # three 1 s oggs and a 1 s Doom sound
    lines = {p["name"]: p for p in report["packages"]}
    assert lines["naev-data"]["installed"] is False and lines["freedoom"]["clips"] == 1
    assert "2020 The freedoom authors" in (out / "recipe_report.md").read_text()
    # a rerun with a clip limit drops what it no longer stages from the staging folder and the dataset
    run_recipe(RecipeConfig(**{**cfg.__dict__, "limit": 1}), is_installed=None,
               list_files=lambda name: files.get(name, []))
    assert len(all_clips(out)) == 2
    assert len([p for p in (out / "staging").rglob("*") if p.suffix in (".ogg", ".wav")]) == 2


def test_licences_select_clips_and_the_report_counts_them(tmp_path: Path) -> None:
    doc, files = fake_packages(tmp_path)
    out = tmp_path / "corpus"
    cfg = RecipeConfig(out=out, workers=1, doc_root=doc, soundfont=tmp_path / "no.sf2", licences="permissive",
                       packages=("ufoai-sound", "freedoom"), sfx_minutes=0.02, phrase_minutes=0)
    run_recipe(cfg, is_installed=None, list_files=lambda name: files.get(name, []))
    clips = all_clips(out)
    assert {c.source for c in clips} == {"freedoom", "soundgen-sfx"}  # the GPL package is left out
    assert all(c.licence.startswith(("BSD", "CC0")) for c in clips)
    report = json.loads((out / "recipe_report.json").read_text())
    assert set(report["hours_by_licence"]) == {"permissive"} and report["licence_filter"] == "permissive"
    assert set(report["hours_by_source"]) == {"freedoom", "soundgen-sfx"}
    md = (out / "recipe_report.md").read_text()
    assert "## Hours per licence class" in md and "soundgen-sfx" in md
    # attributions are owed to the packages whose clips the dataset holds, not to the GPL package left out
    attributions = md.split("## Attributions", 1)[1]
    assert "The freedoom authors" in attributions and "ufoai-sound" not in attributions
    assert {p["name"]: p["licence"] for p in report["packages"]}["freedoom"] == "BSD-3-Clause"
    sfx = [c for c in clips if c.source == "soundgen-sfx"]
    assert len({c.category for c in sfx}) >= 20 and all(c.captions for c in sfx)  # several captions per clip


def test_the_synth_recipe_builds_a_captioned_cc0_corpus(tmp_path: Path) -> None:
    from soundgen.cli.main import main

    out = tmp_path / "synth"
    assert main(["data", "recipe", "synth", "--out", str(out), "--sfx-minutes", "0.02", "--workers", "1"]) == 0
    clips = all_clips(out)
    assert clips and {c.licence for c in clips} == {"CC0-1.0 (soundgen's own procedural synthesis)"}
    assert {"explosion", "footsteps", "impact/metal", "ui"} <= {c.category for c in clips}
    assert all(c.caption and c.captions and c.caption not in c.captions for c in clips)
    assert main(["data", "recipe", "synth", "--out", str(out), "--sfx-minutes", "-1"]) == 2  # a one-line error


def test_a_quick_build_never_replaces_a_full_corpus(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    run_recipe(RecipeConfig.tiny(out))
    before = sorted(p.name for p in (out / "staging").rglob("*.wav"))
    with pytest.raises(ConfigError, match="holds a quick corpus"):
        run_recipe(RecipeConfig(out=out, workers=1, packages=("hedgewars-data",)))
    assert sorted(p.name for p in (out / "staging").rglob("*.wav")) == before


def test_extra_packages_are_opt_in(tmp_path: Path) -> None:
    from soundgen.data.recipes.default import _wanted
    from soundgen.data.recipes.packages import PACKAGES

    extras = {p.name for p in PACKAGES if p.extra}
    assert extras  # megaglest-data, widelands-data
    strict = RecipeConfig(out=tmp_path)
    assert not any(_wanted(p, strict) for p in PACKAGES if p.extra)
    assert all(_wanted(p, strict) for p in PACKAGES if not p.extra)
    opted = RecipeConfig(out=tmp_path, extra_packages=True)
    assert all(_wanted(p, opted) for p in PACKAGES)
