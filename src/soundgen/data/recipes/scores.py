"""Scores of the music21 corpus as MIDI, with the metadata captions are made from.

:func:`corpus_pieces` lists the corpus files in a balanced order (round-robin over collections, shuffled
within each), so a few hundred renderings span Bach chorales, Palestrina masses, fiddle tunes, madrigals and
folk songs rather than one collection. :func:`score_to_midi` parses one file and writes it as MIDI bytes.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

from soundgen.data.recipes.wad import midi_tempo_bpm
from soundgen.errors import AudioReadError, MissingDependencyError

log = logging.getLogger(__name__)

SCORE_SUFFIXES = frozenset({".mxl", ".xml", ".musicxml", ".krn", ".abc"})
# Bigger files parse slowly (a Beethoven quartet takes ~20 s) and abc books hold hundreds of tunes.
MAX_SCORE_BYTES = 120_000
# Corpus folder -> how captions name the collection; others use the composer from the metadata or the folder.
COLLECTIONS = {
    "bach": "a Bach chorale",
    "palestrina": "a Palestrina Renaissance choral piece",
    "ryansMammoth": "a fiddle tune from Ryan's Mammoth Collection",
    "essenFolksong": "a European folk song from the Essen collection",
    "oneills1850": "an Irish tune from O'Neill's collection",
    "airdsAirs": "a Scottish air from Aird's collection",
    "trecento": "an Italian trecento piece",
    "monteverdi": "a Monteverdi madrigal",
    "josquin": "a Josquin des Prez Renaissance piece",
    "beethoven": "a Beethoven piece",
    "mozart": "a Mozart piece",
    "haydn": "a Haydn piece",
    "handel": "a Handel piece",
    "joplin": "a Scott Joplin ragtime",
    "schumann_robert": "a Robert Schumann piece",
    "schumann_clara": "a Clara Schumann piece",
    "schubert": "a Schubert piece",
    "chopin": "a Chopin piece",
    "corelli": "a Corelli piece",
    "verdi": "a Verdi piece",
    "miscFolk": "a folk tune",
    "demos": "a short demo piece",
}


@dataclass(frozen=True)
class CorpusPiece:
    """One file of the music21 corpus and the collection (corpus folder) it belongs to."""

    path: Path
    collection: str


@dataclass
class ScoreMidi:
    """A parsed score rendered to MIDI bytes, with what captions say about it.

    Attributes:
        midi: Standard MIDI File bytes.
        title: the score's title (or the file name).
        phrase: how captions name it (``"a Bach chorale"``).
        bpm: the tempo written in the MIDI file (beats per minute; music21 writes 120 when the score has none).
    """

    midi: bytes
    title: str
    phrase: str
    bpm: float


def _music21() -> object:
    try:
        import music21
    except ImportError as e:
        raise MissingDependencyError("rendering scores needs music21: pip install 'soundgen[recipe]'") from e
    return music21


def corpus_pieces(seed: int = 0, max_bytes: int = MAX_SCORE_BYTES) -> list[CorpusPiece]:
    """Corpus files, interleaved across collections (round-robin) in a seeded order.

    Raises:
        MissingDependencyError: music21 is not installed.
    """
    _music21()
    from music21 import corpus

    by_collection: dict[str, list[Path]] = {}
    root = Path(corpus.__file__).parent  # music21/corpus/<collection>/...
    for p in sorted(corpus.getCorePaths()):
        path = Path(p)
        if path.suffix.lower() not in SCORE_SUFFIXES or path.stat().st_size > max_bytes:
            continue
        rel = path.relative_to(root).parts if path.is_relative_to(root) else (path.parent.name,)
        by_collection.setdefault(rel[0], []).append(path)
    rng = random.Random(seed)
    queues = []
    for name in sorted(by_collection):
        files = by_collection[name]
        rng.shuffle(files)
        queues.append([CorpusPiece(f, name) for f in files])
    out: list[CorpusPiece] = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop())
    return out


def _strip_repeats(score: object) -> None:
    """Remove repeat barlines, repeat expressions and volta brackets so the score plays straight through."""
    from music21 import bar, repeat, spanner, stream

    assert isinstance(score, stream.Stream)
    for m in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(m.leftBarline, bar.Repeat):
            m.leftBarline = None
        if isinstance(m.rightBarline, bar.Repeat):
            m.rightBarline = None
    for cls in (repeat.RepeatExpression, spanner.RepeatBracket):
        for el in list(score.recurse().getElementsByClass(cls)):
            if el.activeSite is not None:
                el.activeSite.remove(el)


def score_to_midi(piece: CorpusPiece, tune: int = 0) -> ScoreMidi:
    """Parse a corpus file (tune ``tune`` of a multi-tune file) and write it as MIDI.

    Raises:
        AudioReadError: music21 cannot parse or translate the file.
    """
    _music21()
    from music21 import converter, stream
    from music21.midi import translate

    try:
        parsed = converter.parse(piece.path)
        if isinstance(parsed, stream.Opus):
            scores = list(parsed.scores)
            if not scores:
                raise AudioReadError(f"{piece.path} holds no scores")
            parsed = scores[tune % len(scores)]
        try:
            midi = translate.music21ObjectToMidiFile(parsed).writestr()
        except Exception:  # badly formed repeats (ExpanderException) are common: play it once through
            _strip_repeats(parsed)
            midi = translate.music21ObjectToMidiFile(parsed).writestr()
    except AudioReadError:
        raise
    except Exception as e:  # music21 raises many kinds of errors on odd scores
        raise AudioReadError(f"music21 cannot turn {piece.path.name} into MIDI: {type(e).__name__}: {e}") from e
    meta = parsed.metadata
    title = (meta.title if meta is not None and meta.title else None) or piece.path.stem
    composer = meta.composer if meta is not None and meta.composer else None
    fallback = f"a piece by {composer}" if composer else f"a {piece.collection} piece"
    phrase = COLLECTIONS.get(piece.collection) or fallback
    return ScoreMidi(midi, str(title).strip(), phrase, midi_tempo_bpm(midi) or 120.0)
