"""MIDI rendering through the FluidR3_GM SoundFont, and music21 scores as MIDI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from soundgen.data.recipes.extract import MidiFile, StagedClip
from soundgen.data.recipes.jobs import (
    SCORE_SOURCE,
    JobResult,
    RenderSettings,
    ScoreJob,
    _select,
    midi_jobs,
    render_all,
    run_score_job,
    score_jobs,
)
from soundgen.data.recipes.packages import SOUNDFONT_PATH
from soundgen.data.recipes.render import GM_INSTRUMENTS, TAIL_SECONDS, Arrangement, render_midi
from soundgen.data.recipes.scores import CorpusPiece, corpus_pieces
from soundgen.errors import AudioReadError, MissingDependencyError

pytestmark = pytest.mark.skipif(not SOUNDFONT_PATH.is_file(), reason="needs fluid-soundfont-gm")
SR = 16000
SmfMaker = Callable[..., bytes]


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


def test_one_note_renders_non_silent_with_the_expected_duration_and_pitch(smf_one_note: SmfMaker) -> None:
    r = render_midi(smf_one_note(1.0, note=69), SOUNDFONT_PATH, SR)
    assert r.sample_rate == SR and not r.truncated
    assert r.duration == pytest.approx(1.0 + TAIL_SECONDS, abs=0.01)
    held = r.samples[int(0.2 * SR) : int(0.9 * SR)]
    assert np.sqrt(np.mean(held**2)) > 0.05  # sounding while the note is held
    assert np.max(np.abs(r.samples)) == pytest.approx(10 ** (-1 / 20), rel=1e-3)  # peak-normalised to -1 dBFS
    assert dominant_hz(held, SR) == pytest.approx(440.0, rel=0.03)  # note 69 is A4


def test_tempo_factor_scales_time_and_max_seconds_truncates(smf_one_note: SmfMaker) -> None:
    fast = render_midi(smf_one_note(2.0), SOUNDFONT_PATH, SR, Arrangement(None, 2.0))
    assert fast.duration == pytest.approx(1.0 + TAIL_SECONDS, abs=0.01)
    cut = render_midi(smf_one_note(2.0), SOUNDFONT_PATH, SR, max_seconds=0.5)
    assert cut.truncated and cut.duration == pytest.approx(0.5, abs=1e-3)


def test_instrument_override_changes_the_sound(smf_one_note: SmfMaker) -> None:
    piano = render_midi(smf_one_note(1.0, program=0), SOUNDFONT_PATH, SR)
    organ = next(i for i in GM_INSTRUMENTS if i.name == "church organ")
    other = render_midi(smf_one_note(1.0, program=0), SOUNDFONT_PATH, SR, Arrangement(organ, 1.0))
    assert piano.samples.shape == other.samples.shape
    # an organ sustains where a piano decays: compare the level late in the note
    late = slice(int(0.8 * SR), int(1.0 * SR))
    assert np.sqrt(np.mean(other.samples[late] ** 2)) > 1.5 * np.sqrt(np.mean(piano.samples[late] ** 2))


def test_bad_midi_is_a_clear_error(tmp_path: Path, smf_one_note: SmfMaker) -> None:
    with pytest.raises(AudioReadError):
        render_midi(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0", SOUNDFONT_PATH, SR)  # no track, no notes
    with pytest.raises(MissingDependencyError, match="fluid-soundfont-gm"):
        render_midi(smf_one_note(), tmp_path / "missing.sf2", SR)


def test_corpus_pieces_interleave_collections() -> None:
    pieces = corpus_pieces(seed=1)
    first = [p.collection for p in pieces[:10]]
    assert len(set(first)) == 10  # round-robin: the first ten come from ten collections
    assert corpus_pieces(seed=1)[:5] == pieces[:5]


def test_score_job_renders_each_arrangement_with_captions(tmp_path: Path) -> None:
    from music21 import corpus

    path = Path(corpus.getWork("bach/bwv66.6"))
    settings = RenderSettings(tmp_path / "staging", tmp_path / "work", SOUNDFONT_PATH, SR, max_seconds=6.0)
    (job,) = list(score_jobs([CorpusPiece(path, "bach")], variants=2, seed=3))
    assert job.arrangements[0].instrument.family != job.arrangements[1].instrument.family  # type: ignore[union-attr]
    result = run_score_job(job, settings)
    assert result.error is None and len(result.clips) == 2
    for clip, arr, seconds in zip(result.clips, job.arrangements, result.durations, strict=True):
        assert clip.category == f"music/{arr.instrument.family}"  # type: ignore[union-attr]
        assert "Bach chorale" in clip.caption and arr.instrument.name in clip.caption  # type: ignore[union-attr]
        assert "BPM" in clip.caption and seconds == pytest.approx(6.0, abs=1e-3)
        assert (tmp_path / "staging" / clip.path).is_file()
    again = run_score_job(job, settings)  # reruns reuse the files
    assert [c.caption for c in again.clips] == [c.caption for c in result.clips]
    broken = run_score_job(ScoreJob(CorpusPiece(tmp_path / "nope.krn", "x"), job.arrangements), settings)
    assert broken.error is not None and not broken.clips


def _clip(source: str, name: str) -> StagedClip:
    return StagedClip(name, name, [], "x", "music/piano", source, name)


def test_selection_keeps_score_jobs_in_order_up_to_the_target() -> None:
    done = {
        0: JobResult([_clip("freedoom", "m0")], [100.0]),
        1: JobResult([_clip(SCORE_SOURCE, "s1"), _clip(SCORE_SOURCE, "s1b")], [30.0, 30.0]),
        2: JobResult(error="bad score"),
        3: JobResult([_clip(SCORE_SOURCE, "s3")], [50.0]),
        4: JobResult([_clip(SCORE_SOURCE, "s4")], [50.0]),  # finished too, but past the target: left out
    }
    summary = _select(done, target=100.0)
    assert [c.path for c in summary.clips] == ["m0", "s1", "s1b", "s3"]
    assert summary.seconds == {"freedoom": 100.0, SCORE_SOURCE: 110.0} and summary.failures == ["bad score"]


def test_render_all_renders_package_midi_in_a_pool(tmp_path: Path, smf_one_note: SmfMaker) -> None:
    midis = []
    for i in range(2):
        path = tmp_path / f"song{i}.mid"
        path.write_bytes(smf_one_note(1.0 + i))
        midis.append(MidiFile(path, f"song {i}", "openttd-openmsx", "OpenMSX", "GPL-2.0", str(path)))
    settings = RenderSettings(tmp_path / "staging", tmp_path / "work", SOUNDFONT_PATH, SR)
    summary = render_all(midi_jobs(midis, seed=0), iter(()), settings, 0.0, workers=1)
    assert sorted(c.caption.split('"')[1] for c in summary.clips) == ["song 0", "song 1"]
    assert all(c.category == "music/soundtrack" and c.licence.startswith("GPL-2.0") for c in summary.clips)
    assert summary.seconds["openttd-openmsx"] > 2 * TAIL_SECONDS + 2.0 / 1.1  # tempo factors are 0.9..1.1
    assert all((tmp_path / "staging" / c.path).is_file() for c in summary.clips)


def test_a_rendering_does_not_depend_on_what_the_process_rendered_before(smf_one_note: SmfMaker) -> None:
    # the synth is shared within a process; a long organ note cut off by max_seconds must not sound into the next
    # rendering (it did: "all sounds off" only starts a quick release), or a corpus' clips depend on worker order
    from soundgen.data.recipes import render

    render._SYNTH_CACHE.clear()
    first = render_midi(smf_one_note(0.5, note=69, program=0), SOUNDFONT_PATH, SR).samples
    render_midi(smf_one_note(3.0, note=48, program=19), SOUNDFONT_PATH, SR, max_seconds=1.0)
    again = render_midi(smf_one_note(0.5, note=69, program=0), SOUNDFONT_PATH, SR).samples
    assert first.shape == again.shape
    assert np.array_equal(first, again)
