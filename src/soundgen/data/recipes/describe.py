"""Captions, tags and categories for files found in the corpus packages.

A caption reads like ``"rifle shot, gunshot sound from Warzone 2100"``: the words of the file and its nearest
folders (generic words such as "sounds" or "data" dropped), then what kind of sound it is and where it comes
from. Doom sound lumps have eight-letter names (``DSBAREXP``), so the well-known ones are spelled out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from soundgen.audio.archive import MEMBER_SEPARATOR
from soundgen.data.captions import words_from_name
from soundgen.data.recipes.categories import (
    MUSIC_SOUNDTRACK,
    categorize,
    category_noun,
    is_effect_path,
    is_music_path,
)
from soundgen.data.recipes.packages import PackageSpec

# Folder words that say nothing about a sound (install layout, container names).
_GENERIC = frozenset(
    "usr share games game base core local lib sfx sound sounds snd audio media res resources assets content "
    "packs pack pak pk wz music musics ogg wav flac effects effect wad units unit common megapack commondata techs "
    "factions".split()
)
# Package-specific defaults when no keyword rule matches.
_DEFAULT_CATEGORY = {"hydrogen-drumkits": "drum"}
# Package-specific meanings of file-name words, checked before the general rules: MegaGlest units answer
# "select" and "ack" (acknowledge) with spoken lines, not interface beeps.
_PACKAGE_WORDS = {"megaglest-data": {"select": "voice", "ack": "voice", "die": "voice"}}
# Doom sound lump names (without the DS prefix) -> what they sound like.
DOOM_SOUNDS = {
    "PISTOL": "pistol shot", "SHOTGN": "shotgun shot", "SGCOCK": "shotgun cocking", "DSHTGN": "double shotgun shot",
    "DBOPN": "double shotgun opening", "DBCLS": "double shotgun closing", "DBLOAD": "double shotgun loading",
    "PLASMA": "plasma gun shot", "BFG": "bfg energy shot", "SAWUP": "chainsaw starting up", "SAWIDL": "chainsaw idle",
    "SAWFUL": "chainsaw cutting", "SAWHIT": "chainsaw hit", "RLAUNC": "rocket launcher shot",
    "RXPLOD": "rocket explosion", "FIRSHT": "fireball shot", "FIRXPL": "fireball explosion",
    "PSTART": "platform starting", "PSTOP": "platform stopping", "DOROPN": "door opening",
    "DORCLS": "door closing", "STNMOV": "stone moving", "SWTCHN": "switch on", "SWTCHX": "switch off",
    "PLPAIN": "player pain grunt", "DMPAIN": "demon pain growl", "POPAIN": "zombie pain grunt",
    "VIPAIN": "arch-vile pain", "MNPAIN": "mancubus pain", "PEPAIN": "pain elemental pain",
    "SLOP": "gory splat", "ITEMUP": "item pickup", "WPNUP": "weapon pickup", "OOF": "player oof grunt",
    "TELEPT": "teleport", "POSIT1": "zombie sight growl", "POSIT2": "zombie sight growl",
    "POSIT3": "zombie sight growl", "BGSIT1": "imp sight growl", "BGSIT2": "imp sight growl",
    "SGTSIT": "demon sight roar", "CACSIT": "cacodemon sight roar", "BRSSIT": "baron sight roar",
    "CYBSIT": "cyberdemon sight roar", "SPISIT": "spider mastermind sight roar", "SKLATK": "lost soul attack",
    "SGTATK": "demon bite attack", "SKEPCH": "punch hit", "VILATK": "arch-vile fire attack",
    "CLAW": "claw attack", "SKESWG": "revenant punch swing", "PLDETH": "player death scream",
    "PDIEHI": "player gory death scream", "PODTH1": "zombie death scream", "PODTH2": "zombie death scream",
    "PODTH3": "zombie death scream", "BGDTH1": "imp death scream", "BGDTH2": "imp death scream",
    "SGTDTH": "demon death roar", "CACDTH": "cacodemon death", "BRSDTH": "baron death roar",
    "CYBDTH": "cyberdemon death roar", "SPIDTH": "spider mastermind death", "BAREXP": "barrel explosion",
    "PUNCH": "punch hit", "HOOF": "hoof footstep", "METAL": "metal footstep", "CHGUN": "chaingun shot",
    "TINK": "metal tink", "BDOPN": "blazing door opening", "BDCLS": "blazing door closing",
    "ITMBK": "item respawn", "FLAME": "flame burning", "FLAMST": "flame start", "GETPOW": "powerup pickup",
    "BOSPIT": "boss spit", "BOSCUB": "boss cube", "BOSSIT": "boss sight roar", "BOSPN": "boss pain",
    "BOSDTH": "boss death scream", "MANATK": "mancubus attack", "MANDTH": "mancubus death",
    "SSSIT": "soldier sight shout",
    "SSDTH": "soldier death scream", "KEENPN": "keen pain", "KEENDT": "keen death", "SKEACT": "revenant active",
    "SKESIT": "revenant sight", "SKEATK": "revenant rocket attack", "RADIO": "radio beep", "NOWAY": "no way grunt",
    "BSPACT": "arachnotron active", "BSPWLK": "arachnotron footstep", "BSPSIT": "arachnotron sight",
    "BSPDTH": "arachnotron death", "HOOF1": "hoof footstep", "FIRE": "fire", "PLDETH1": "player death scream",
    "POSACT": "zombie active growl", "BGACT": "imp active growl", "DMACT": "demon active growl",
    "VILACT": "arch-vile active", "VILSIT": "arch-vile sight", "VILDTH": "arch-vile death", "KNTSIT": "knight sight",
    "KNTDTH": "knight death", "PESIT": "pain elemental sight", "PEDTH": "pain elemental death",
    "SKLDTH": "lost soul death", "PUNCH1": "punch hit",
}


@dataclass(frozen=True)
class Description:
    """Caption, tags and category of one file."""

    caption: str
    tags: list[str]
    category: str


def _name_words(rel: str, spec: PackageSpec) -> tuple[list[str], list[str], list[str]]:
    """Words of the file name, of its two nearest meaningful folders (for captions) and of all its folders
    (for categories); the game's own name is left out."""
    path = PurePosixPath(rel.replace(MEMBER_SEPARATOR, "/"))
    own = set(words_from_name(spec.name)) | set(words_from_name(spec.title)) | {"drumkits", "supertux2"}
    stem_words = [w for w in words_from_name(path.stem) if w not in own]
    every = [w for part in path.parent.parts for w in words_from_name(part.split(".", 1)[0])]
    every = [w for w in dict.fromkeys(every) if w not in _GENERIC and w not in own and w not in stem_words]
    near = [w for part in path.parent.parts[-3:] for w in words_from_name(part.split(".", 1)[0])]
    return stem_words, [w for w in every if w in near][-2:], every


def describe_music_file(rel: str, spec: PackageSpec) -> Description:
    """A game music track: ``"battle theme, game soundtrack music from Battle for Wesnoth"``."""
    stem_words, folders, _ = _name_words(rel, spec)
    words = list(dict.fromkeys(stem_words + folders))
    name = " ".join(words)
    caption = f"{name}, {category_noun(MUSIC_SOUNDTRACK)} from {spec.title}" if name else (
        f"{category_noun(MUSIC_SOUNDTRACK)} from {spec.title}"
    )
    return Description(caption, list(dict.fromkeys([*words, "music", "soundtrack"])), MUSIC_SOUNDTRACK)


def describe_effect(rel: str, spec: PackageSpec, lump: str | None = None) -> Description:
    """A sound effect (or music found among a game's sound effects).

    Args:
        rel: path inside the package (``"wesnoth/1.16/data/core/sounds/sword-1.ogg"``).
        spec: the package.
        lump: the Doom lump name for WAD sounds (``"DSBAREXP"``).
    """
    if lump is None and (is_music_path(rel) or (spec.role == "music" and not is_effect_path(rel))):
        return describe_music_file(rel, spec)
    if lump is not None:
        phrase = DOOM_SOUNDS.get(lump[2:], " ".join(words_from_name(lump[2:])) or lump.lower())
        stem_words, folders, every = phrase.split(), list[str](), list[str]()
    else:
        stem_words, folders, every = _name_words(rel, spec)
    default = _DEFAULT_CATEGORY.get(spec.name, "other")
    hint = next((c for w in stem_words if (c := _PACKAGE_WORDS.get(spec.name, {}).get(w))), None)
    category = hint or (default if default != "other" else categorize(" ".join(stem_words), " ".join(reversed(every))))
    words = list(dict.fromkeys(folders + stem_words)) if spec.name == "hydrogen-drumkits" else list(
        dict.fromkeys(stem_words + folders)
    )
    name = " ".join(words)
    noun = category_noun(category)
    caption = f"{name}, {noun} from {spec.title}" if name else f"{noun} from {spec.title}"
    return Description(caption, words + ([category] if category != "other" else []), category)
