"""Speech synthesised by espeak-ng, for the generalisation set (:mod:`.generalisation`).

The corpus of the bundled model holds no speech at all, so synthetic speech is the cheapest real test of how a
codec trained on it generalises. :func:`speak` runs the ``espeak-ng`` program (Debian package ``espeak-ng``) on one
of the sentences below, which soundgen's authors wrote for this purpose (CC0), with a voice variant, a rate and a
pitch, and returns the audio at the requested sample rate. espeak-ng's output is a pure function of its version,
the text and these settings, so a seed fixes every clip.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from soundgen.audio.io import resample
from soundgen.errors import AudioReadError, MissingDependencyError

ESPEAK_PACKAGE = "espeak-ng"
ESPEAK_LICENCE = "GPL-3.0-or-later"  # of the program and its voice data (/usr/share/doc/espeak-ng-data/copyright)
SENTENCE_LICENCE = "CC0-1.0"

# language code (espeak-ng voice) -> (language name, sentences written for soundgen)
SENTENCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "en-gb": ("English", (
        "The last train to the coast leaves at half past nine, so please do not be late.",
        "Could you turn the music down a little? I am trying to read.",
        "Seven orange boxes were stacked beside the old wooden door.",
        "If the weather holds, we will walk to the lighthouse tomorrow morning.",
    )),
    "en-us": ("American English", (
        "Welcome back. You have three new messages and one missed call.",
        "The recipe needs two cups of flour, a pinch of salt and warm water.",
        "Keep left at the fork, then follow the signs for the airport.",
    )),
    "de": ("German", (
        "Der Zug nach Hamburg hat heute leider zwanzig Minuten Verspätung.",
        "Am Wochenende wollen wir mit dem Fahrrad an den See fahren.",
    )),
    "fr": ("French", (
        "Le marché ouvre tôt le samedi, et les fruits y sont délicieux.",
        "Pourriez-vous me dire où se trouve la gare, s'il vous plaît ?",
    )),
    "es": ("Spanish", (
        "Mañana por la tarde vamos a visitar a mis abuelos en el pueblo.",
        "El café de esta esquina es el mejor de toda la ciudad.",
    )),
    "it": ("Italian", (
        "La biblioteca chiude alle sette, quindi dobbiamo sbrigarci.",
        "Ho comprato del pane fresco e un po' di formaggio per la cena.",
    )),
    "pt": ("Portuguese", ("O barco parte do cais às oito horas da manhã.",)),
    "nl": ("Dutch", ("Het regent al de hele dag, dus we blijven lekker binnen.",)),
    "sv": ("Swedish", ("Vi ses vid busshållplatsen klockan tre i eftermiddag.",)),
    "fi": ("Finnish", ("Tänään on kaunis päivä, joten lähdetään kävelylle.",)),
    "pl": ("Polish", ("Jutro rano pojedziemy pociągiem do Krakowa.",)),
    "cmn": ("Mandarin Chinese", ("今天天气很好，我们去公园散步吧。",)),
}
# espeak-ng voice variants: a spread of male, female and character voices
VARIANTS: tuple[str, ...] = (
    "m1", "m3", "m7", "f1", "f2", "f4", "klatt", "Annie", "Andy", "Michael", "steph", "grandpa",
)


@dataclass(frozen=True)
class Utterance:
    """One sentence and how espeak-ng speaks it.

    Attributes:
        language: espeak-ng voice (``en-gb``, ``de``, ...), a key of :data:`SENTENCES`.
        variant: voice variant (``m3``, ``f2``, ``klatt``, ...).
        rate: words per minute (80 .. 450).
        pitch: 0 .. 99 (espeak-ng's default is 50).
        text: the sentence.
    """

    language: str
    variant: str
    rate: int
    pitch: int
    text: str

    @property
    def voice(self) -> str:
        """The ``-v`` argument: ``language+variant``."""
        return f"{self.language}+{self.variant}"


def espeak_path() -> str:
    """The espeak-ng executable.

    Raises:
        MissingDependencyError: espeak-ng is not installed (the message names the Debian package).
    """
    path = shutil.which("espeak-ng")
    if path is None:
        raise MissingDependencyError(
            f"speech needs the espeak-ng program: apt-get install {ESPEAK_PACKAGE} (or 'make setup', which installs it)"
        )
    return path


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    """espeak-ng's version line (``eSpeak NG text-to-speech: 1.51 ...``), for the report."""
    out = subprocess.run([espeak_path(), "--version"], capture_output=True, text=True, timeout=30).stdout
    return out.split("  Data at")[0].strip()


def speak(u: Utterance, sample_rate: int) -> np.ndarray:
    """Speak ``u`` with espeak-ng; mono float32 ``[T]`` at ``sample_rate``.

    Raises:
        MissingDependencyError: espeak-ng is not installed.
        AudioReadError: espeak-ng failed or produced no audio.
    """
    cmd = [espeak_path(), "-v", u.voice, "-s", str(u.rate), "-p", str(u.pitch), "--stdout", u.text]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    if proc.returncode != 0 or not proc.stdout:
        detail = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise AudioReadError(f"espeak-ng failed on voice {u.voice}: {detail}")
    try:
        audio, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    except sf.LibsndfileError as e:
        raise AudioReadError(f"espeak-ng wrote audio soundfile cannot read (voice {u.voice}): {e}") from e
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if not len(audio) or float(np.max(np.abs(audio))) < 1e-4:
        raise AudioReadError(f"espeak-ng produced silence for voice {u.voice}")
    return resample(audio, int(rate), sample_rate)


def draw_utterance(rng: np.random.Generator, language: str) -> Utterance:
    """A sentence of ``language`` with a variant, rate (120-210 wpm) and pitch (20-80) drawn from ``rng``."""
    sentences = SENTENCES[language][1]
    return Utterance(
        language,
        VARIANTS[int(rng.integers(len(VARIANTS)))],
        int(rng.integers(120, 211)),
        int(rng.integers(20, 81)),
        sentences[int(rng.integers(len(sentences)))],
    )
