"""Category labels a classifier can learn, from the words of a clip's path and caption.

:func:`categorize` checks ordered keyword rules on whole words (and word prefixes for the stems that games
abbreviate, like ``explo`` or ``footstep``); the first rule that matches names the category. Music has its own
namespace (``music/piano``, ``music/strings``, ``music/soundtrack``, ...), decided by the caller that knows
the instrument; :func:`is_music_path` spots music inside sound-effect packages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OTHER = "other"
MUSIC_SOUNDTRACK = "music/soundtrack"


@dataclass(frozen=True)
class Rule:
    """A category and the words (exact) and stems (prefixes) that select it."""

    category: str
    words: frozenset[str]
    stems: tuple[str, ...] = ()

    def matches(self, tokens: list[str]) -> bool:
        """True when any token equals one of the words or starts with one of the stems."""
        return any(t in self.words or (bool(self.stems) and t.startswith(self.stems)) for t in tokens)


def _rule(category: str, words: str, stems: str = "") -> Rule:
    return Rule(category, frozenset(words.split()), tuple(stems.split()))


# Order matters: the first match wins, so specific classes come before broad ones ("gun hit" is a gunshot
# rather than an impact, "engine explosion" an explosion).
RULES: tuple[Rule, ...] = (
    _rule("drum", "drum drums drumkit kick snare hihat hat tom toms cymbal clap rimshot cowbell "
          "tambourine conga bongo timbale shaker", "drumk hihat snare cymbal"),
    _rule("voice", "voice voices speech speak talk say says said scream screams yell shout grunt grunts groan "
          "laugh laughs taunt pain death die dies dying cry cries hurt ouch oof hello bye vo "
          "moan sigh cough breath breathe giggle whisper maledeath malehurt femaledeath femalehurt memressp "
          "tutorial tut cmndrvoc missmesg vtoltalk comments countdown coltive nexus announcer", "voice scream laugh "
          "taunt shout speech"),
    _rule("explosion", "explosion explosions explode explodes exploding boom blast bomb bombs grenade grenades "
          "detonate detonation nuke dynamite mine barexp kaboom rocket rockets missile missiles", "explo detona"),
    _rule("gunshot", "gun guns gunshot shot shots shoot shoots shooting rifle pistol shotgun shotgn machinegun "
          "minigun chaingun cannon fire firing bullet bullets sniper laser plasma blaster railgun revolver "
          "flak uzi smg bfg", "gunsh machineg shotg rifle pistol blaster"),
    _rule("footstep", "footstep footsteps step steps walk walking run running jump jumps land landing stomp "
          "tread", "footst"),
    _rule("engine", "engine engines motor motors car cars kart truck tank vehicle vehicles helicopter jet "
          "plane aircraft idle accelerate acceleration rev skid horn drive driving tractor vtol hover", "engin"),
    _rule("impact", "impact impacts hit hits hitting punch punches smash smashes crash crashes thud thump bump "
          "bounce bounces collide collision break breaks broken shatter splat slam knock knocks crack metal "
          "wood glass stone rock sword swords blade slash clang clash axe", "impact smash shatter collis"),
    _rule("ui/beep", "menu click clicks button buttons beep beeps bleep select selection hover ui gui interfce "
          "interface notify notification alert alarm error confirm cancel tick blip ping message chat radclik "
          "radclick", "beep button notif"),
    _rule("pickup", "pickup pickups pkup item items powerup powerups bonus coin coins health medkit ammo "
          "collect collected regeneration", "pickup powerup"),
    _rule("whoosh", "whoosh swoosh swish swing swings miss misses throw throws woosh", "whoosh swoosh"),
    _rule("magic", "magic spell spells heal healing zap teleport portal charm curse arcane holy lightning "
          "fireball", "magic spell teleport"),
    _rule("animal", "animal bird birds dog dogs wolf horse cat cow sheep pig chicken frog bat bats insect bee "
          "growl roar howl hiss bark chirp neigh", "growl roar"),
    _rule("water", "water splash splashes bubble bubbles drip drop drops river wave waves swim underwater "
          "ocean sea rain", "splash bubbl"),
    _rule("ambience", "ambient ambience ambiance atmosphere wind forest night city crowd room loop drone hum "
          "birdsong storm thunder tilesets tileset", "ambien ambian atmos"),
    _rule("door", "door doors gate gates open opens close closes slide elevator lift lever switch",
          "door"),
)
# Words that mark music when they appear in a folder of a sound-effect package.
_MUSIC_WORDS = frozenset("music musics song songs soundtrack ost tracks theme themes jingle jingles".split())
_EFFECT_WORDS = frozenset("sounds sound sfx effects voices".split())
_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text``: ``"Weapons/GunShot_2"`` -> ``["weapons", "gunshot", "2"]``."""
    return _TOKEN.findall(text.lower())


def categorize(*texts: str, default: str = OTHER) -> str:
    """The category of a sound effect from the words of its texts (file name, folders, caption).

    Texts are tried in order, so pass the most specific first (the file name before its folders):
    ``categorize("dsbarexp", "sounds")`` -> ``"explosion"``; unknown words give ``default``.
    """
    for text in texts:
        words = tokens(text)
        for rule in RULES:
            if rule.matches(words):
                return rule.category
    return default


def is_effect_path(relative: str) -> bool:
    """True when a path inside a music package is a sound effect (``naev/dat/snd/sounds/engine.ogg``)."""
    return any(t in _EFFECT_WORDS for t in tokens(relative))


def is_music_path(relative: str) -> bool:
    """True when a path inside a sound-effect package is music (``data/music/title.ogg``)."""
    return any(t in _MUSIC_WORDS for t in tokens(relative))


def category_noun(category: str) -> str:
    """A short phrase for captions: ``"ui/beep"`` -> ``"interface beep"``, ``"music/piano"`` -> ``"piano music"``."""
    if category.startswith("music/"):
        kind = category.split("/", 1)[1]
        return "game soundtrack music" if kind == "soundtrack" else f"{kind} music"
    return {"ui/beep": "interface beep", "other": "sound effect"}.get(category, f"{category} sound")
