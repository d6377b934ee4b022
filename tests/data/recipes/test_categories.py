"""Category rules: keyword order, stems, music detection and caption nouns."""

from __future__ import annotations

import pytest

from soundgen.data.recipes.categories import categorize, category_noun, is_music_path, tokens
from soundgen.data.recipes.describe import describe_effect
from soundgen.data.recipes.packages import PackageSpec


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("barrel explosion",), "explosion"),
        (("ExplosionBig_02",), "explosion"),  # stem "explo" inside a camel-case word
        (("rifle shot",), "gunshot"),
        (("footsteps gravel",), "footstep"),
        (("engine idle loop",), "engine"),  # engine wins over the ambience word "loop"
        (("menu click",), "ui/beep"),
        (("player death scream",), "voice"),
        (("snare", "drumkits"), "drum"),
        (("wood",), "impact"),
        (("wind", "ambient"), "ambience"),
        (("door opening",), "door"),
        (("zzz qqq",), "other"),
    ],
)
def test_categorize(texts: tuple[str, ...], expected: str) -> None:
    assert categorize(*texts) == expected


def test_first_text_decides_before_later_ones() -> None:
    # the file name says gunshot; the folder ("explosions") is only consulted when the name says nothing
    assert categorize("pistol", "explosions") == "gunshot"
    assert categorize("xyz", "explosions") == "explosion"
    assert categorize("xyz", "abc", default="drum") == "drum"


def test_music_paths_and_nouns() -> None:
    assert is_music_path("supertux2/music/antarctic/voc-night.ogg")
    assert not is_music_path("wesnoth/data/core/sounds/sword-1.ogg")
    assert category_noun("music/piano") == "piano music"
    assert category_noun("ui/beep") == "interface beep"
    assert tokens("Weapons/GunShot_2") == ["weapons", "gunshot", "2"]


def test_describe_effect_uses_doom_names_package_defaults_and_music_folders() -> None:
    doom = PackageSpec("freedoom", "sfx", "Freedoom")
    d = describe_effect("doom/freedoom2.wad/DSBAREXP", doom, lump="DSBAREXP")
    assert d.category == "explosion" and d.caption == "barrel explosion, explosion sound from Freedoom"
    kit = PackageSpec("hydrogen-drumkits", "sfx", "Hydrogen drum kits")
    assert describe_effect("hydrogen/data/drumkits/GMkit/Kick-Soft.flac", kit).category == "drum"
    stk = PackageSpec("supertuxkart-data", "sfx", "SuperTuxKart")
    m = describe_effect("supertuxkart/data/music/celtic_fast.ogg", stk)
    assert m.category == "music/soundtrack" and m.caption.startswith("celtic fast, game soundtrack music")
    assert len(set(m.tags)) == len(m.tags)


def test_deep_folders_decide_when_the_file_name_says_nothing() -> None:
    hw = PackageSpec("hedgewars-data", "sfx", "Hedgewars")
    d = describe_effect("hedgewars/Data/Sounds/voices/Russian_pl/Missed.ogg", hw)
    assert d.category == "voice" and "hedgewars" not in d.caption.split(",")[0]
    wz = PackageSpec("warzone2100-data", "sfx", "Warzone 2100")
    assert describe_effect("warzone2100/base.wz/audio/memressp/power/pcv348.ogg", wz).category == "voice"
    wes = PackageSpec("wesnoth-1.16-data", "sfx", "Battle for Wesnoth")
    assert describe_effect("wesnoth/1.16/data/core/sounds/bow-miss.ogg", wes).category == "whoosh"


def test_music_packages_keep_their_sound_effects_apart() -> None:
    naev = PackageSpec("naev-data", "music", "Naev")
    assert describe_effect("naev/dat/snd/music/agriculture.ogg", naev).category == "music/soundtrack"
    assert describe_effect("naev/dat/snd/sounds/explosion0.wav", naev).category == "explosion"
    assert describe_effect("naev/dat/snd/other/theme.ogg", naev).category == "music/soundtrack"


def test_package_word_hints_come_first() -> None:
    mg = PackageSpec("megaglest-data", "sfx", "MegaGlest", extra=True)
    d = describe_effect("megaglest/techs/megapack/factions/magic/units/battlemage/sounds/battlemage_select1.wav", mg)
    assert d.category == "voice" and d.caption == "battlemage select, voice sound from MegaGlest"
    stk = PackageSpec("supertuxkart-data", "sfx", "SuperTuxKart")
    assert describe_effect("supertuxkart/data/sfx/select.ogg", stk).category == "ui/beep"
