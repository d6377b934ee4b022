"""Captions: words from paths, sidecars, CSV/JSONL metadata and their precedence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.data.build import BuildConfig, build_dataset
from soundgen.data.captions import (
    MetadataError,
    caption_from_path,
    load_metadata,
    parse_tags,
    words_from_name,
)
from soundgen.data.manifest import SPLITS, Clip, read_manifest


def tone(path: Path, freq: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(8000) / 16000
    sf.write(str(path), (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)
    return path


def clips_by_name(out: Path) -> dict[str, Clip]:
    return {Path(c.source_file.split("::")[-1]).name: c for s in SPLITS for c in read_manifest(out, s)}


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("ExplosionBig_02", ["explosion", "big"]),
        ("door-open-final-v2", ["door", "open"]),
        ("sfx_laserShot", ["laser", "shot"]),
        ("snd_GUNFire3", ["gun", "fire"]),
        ("HTTPRequestBeep", ["http", "request", "beep"]),
        ("footstep.gravel.copy", ["footstep", "gravel"]),
        ("a3f9c2d1e0_thunder", ["thunder"]),
        ("rain 01 (copy of take2)", ["rain"]),
        ("123_456", []),
        ("dog_bark_v10_FINAL_new", ["dog", "bark"]),
        ("naïve café", ["naïve", "café"]),
        ("grandÉcran_Straße", ["grand", "écran", "straße"]),
        ("ВзрывБольшой_02", ["взрыв", "большой"]),
        ("cafe\u0301_nai\u0308ve", ["café", "naïve"]),  # combining marks: NFC keeps each word whole
    ],
)
def test_words_from_name(name: str, words: list[str]) -> None:
    assert words_from_name(name) == words


def test_caption_from_path_keeps_non_ascii_letters() -> None:
    info = caption_from_path("Bruits/naïve café.wav")
    assert info.caption == "bruits naïve café"
    assert info.category == "bruits"


def test_caption_from_path_uses_folders_then_file_and_outer_folder_as_category() -> None:
    info = caption_from_path("Sounds/weapons/Rocket/rocketFire_02.ogg")
    assert info.caption == "weapons rocket fire"  # "sounds" is noise; "rocket" said once
    assert info.tags == ["weapons", "rocket", "fire"]
    assert info.category == "weapons"
    assert caption_from_path("boom.wav").category == "other"
    member = caption_from_path("packs/ui.pk3::menu/ClickSoft.wav")
    assert member.caption == "packs ui menu click soft" and member.category == "packs"


def test_parse_tags_accepts_lists_and_separated_strings() -> None:
    assert parse_tags(["a", " b ", ""]) == ["a", "b"]
    assert parse_tags("door; wood,creak|old") == ["door", "wood", "creak", "old"]
    assert parse_tags('["x", "y"]') == ["x", "y"]
    assert parse_tags("") is None and parse_tags(None) is None


def test_load_metadata_jsonl_and_csv(tmp_path: Path) -> None:
    jl = tmp_path / "meta.jsonl"
    jl.write_text(
        json.dumps({"path": "a/b.wav", "caption": "B", "tags": ["t"], "licence": "CC0", "category": "c", "source": "s"})
        + "\n\n"
        + json.dumps({"path": str(tmp_path / "abs.wav"), "caption": "ABS", "license": "GPL-2+"})
        + "\n"
    )
    table = load_metadata(jl)
    assert len(table) == 2
    row = table.lookup(["a/b.wav"])
    assert row is not None and (row.caption, row.tags, row.licence, row.category, row.source) == (
        "B", ["t"], "CC0", "c", "s",
    )
    hit = table.lookup([str(tmp_path / "x" / ".." / "abs.wav")])
    assert hit is not None and hit.licence == "GPL-2+"
    assert table.lookup(["./a/b.wav"]) is row and table.lookup(["nope.wav"]) is None

    path = tmp_path / "meta.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "caption", "tags", "licence"])
        w.writerow(["game.pk3::snd/x.ogg", "an x, with commas", "one;two", "MIT"])
    row2 = load_metadata(path).lookup(["game.pk3::snd/x.ogg"])
    assert row2 is not None and (row2.caption, row2.tags, row2.licence) == ("an x, with commas", ["one", "two"], "MIT")


def test_malformed_metadata_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.wav"}\n{not json\n')
    with pytest.raises(MetadataError, match=r"bad.jsonl:2"):
        load_metadata(bad)
    nopath = tmp_path / "nopath.csv"
    nopath.write_text("file,caption\na.wav,x\n")
    with pytest.raises(MetadataError, match="'path' column"):
        load_metadata(nopath)
    with pytest.raises(MetadataError, match="does not exist"):
        load_metadata(tmp_path / "missing.jsonl")
    (tmp_path / "empty_path.jsonl").write_text('{"path": "", "caption": "x"}\n')
    with pytest.raises(MetadataError, match="non-empty 'path'"):
        load_metadata(tmp_path / "empty_path.jsonl")


def test_metadata_wins_over_sidecar_which_wins_over_path(tmp_path: Path) -> None:
    src = tmp_path / "pack"
    tone(src / "doors" / "heavyDoor_01.wav", 300)
    (src / "doors" / "heavyDoor_01.json").write_text(
        json.dumps({"caption": "sidecar caption", "tags": ["side"], "licence": "CC-BY-4.0", "category": "door"})
    )
    tone(src / "doors" / "creak.wav", 400)
    (src / "doors" / "creak.txt").write_text("an old hinge  creaks\n")
    tone(src / "birds" / "robinSong.wav", 500)
    tone(src / "birds" / "crow.wav", 600)
    meta = tmp_path / "meta.jsonl"
    meta.write_text(
        json.dumps({"path": "doors/heavyDoor_01.wav", "caption": "a heavy door slams", "source": "freesfx"}) + "\n"
        + json.dumps({"path": str(src / "birds" / "crow.wav"), "caption": "a crow caws", "tags": "bird;crow",
                      "licence": "CC0", "category": "animals/birds", "source_file": "/orig/crow.flac"}) + "\n"
        + json.dumps({"path": "birds/broken.wav", "source_file": "/orig/broken.ogg"}) + "\n"
    )
    (src / "birds" / "broken.wav").write_bytes(b"RIFF junk")
    cfg = BuildConfig.tiny()
    build_dataset([src], tmp_path / "ds", captions=meta, config=cfg)
    clips = clips_by_name(tmp_path / "ds")
    door = clips["heavyDoor_01.wav"]
    assert (door.caption, door.source) == ("a heavy door slams", "freesfx")  # metadata
    assert (door.tags, door.licence, door.category) == (["side"], "CC-BY-4.0", "door")  # sidecar fills the rest
    assert clips["creak.wav"].caption == "an old hinge creaks"
    assert clips["creak.wav"].category == "doors" and clips["creak.wav"].source == "pack"
    robin = clips["robinSong.wav"]
    assert (robin.caption, robin.tags, robin.licence) == ("birds robin song", ["birds", "robin", "song"], "unknown")
    crow = clips["crow.flac"]  # named by its original
    assert (crow.caption, crow.tags, crow.licence, crow.category) == ("a crow caws", ["bird", "crow"], "CC0",
                                                                      "animals/birds")
    assert crow.source_file == "/orig/crow.flac" and robin.source_file == str(src / "birds" / "robinSong.wav")
    report = json.loads((tmp_path / "ds" / "report.json").read_text())
    assert [(s["source_file"], s["reason"]) for s in report["skipped"]] == [("/orig/broken.ogg", "corrupt")]
    assert report["licences"] == {"freesfx": ["CC-BY-4.0"], "pack": ["CC0", "unknown"]}
    assert report["sources"]["freesfx"]["clips"] == 1 and report["categories"]["animals/birds"]["clips"] == 1

    # An edited captions file takes effect on the next build without decoding anything again.
    meta.write_text(json.dumps({"path": "birds/robinSong.wav", "caption": "a robin sings"}) + "\n")
    again = build_dataset([src], tmp_path / "ds", captions=meta, config=cfg)
    assert again.processed == 0
    assert clips_by_name(tmp_path / "ds")["robinSong.wav"].caption == "a robin sings"
