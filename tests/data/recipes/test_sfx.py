"""The procedural sound-effects library, the rendered phrases and the licence classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soundgen.data.licences import allowed, licence_class
from soundgen.data.recipes import dsp
from soundgen.data.recipes.library import LIBRARY_LICENCE, captions_for, library_clip, write_library
from soundgen.data.recipes.packages import SOUNDFONT_PATH
from soundgen.data.recipes.sfx import CATEGORIES, Effect
from soundgen.errors import ConfigError

SR = 16000


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum() / spec.sum())


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_every_category_makes_a_clean_deterministic_clip(category: str) -> None:
    a, b = library_clip(category, 3), library_clip(category, 3)
    assert np.array_equal(a.samples, b.samples) and a.captions == b.captions  # a pure function of its seed
    other = library_clip(category, 4)
    assert not np.array_equal(a.samples[: len(other.samples)], other.samples[: len(a.samples)])
    x = a.samples
    assert x.dtype == np.float32 and np.isfinite(x).all()
    assert 0.1 < len(x) / SR < 12.0
    peak = float(np.abs(x).max())
    assert 0.3 < peak <= 10 ** (-1 / 20) + 1e-6  # loud enough, never clipping
    assert abs(x[0]) < 0.05 and abs(x[-1]) < 0.05  # faded: no click at the cut
    assert len(a.captions) >= 3 and len(set(a.captions)) == len(a.captions)
    assert all(c and c == c.strip() and "{" not in c for c in a.captions)
    assert a.category == category


def test_sounds_have_the_spectra_their_names_promise() -> None:
    # a low rumble, a mid-band body and a high hiss, on average over several draws
    boom = np.concatenate([library_clip("explosion", i).samples for i in range(4)])
    birds = np.concatenate([library_clip("birds", i).samples for i in range(4)])
    hum = np.concatenate([library_clip("hum", i).samples for i in range(4)])
    assert _band_energy(boom, 0, 400) > 0.45
    assert _band_energy(birds, 1800, 8000) > 0.8
    assert _band_energy(hum, 0, 1000) > 0.8


def test_captions_name_the_sound_and_its_space() -> None:
    rng = np.random.default_rng(0)
    effect = Effect(np.zeros(10, np.float32), "explosion", ["a big explosion", "a blast"], ["with debris falling"])
    space = dsp.Space("in a large hall", 1.6, 0.35, "far away", 1800.0, 0.4)
    caps = captions_for(effect, space, rng, count=4)
    assert caps[0] == "a big explosion, with debris falling, in a large hall, far away"
    assert all(("explosion" in c) or ("blast" in c) for c in caps)


def test_space_adds_a_tail_and_distance_darkens() -> None:
    rng = np.random.default_rng(0)
    click = np.zeros(SR // 2, np.float32)
    click[100:110] = 1.0
    hall = dsp.apply_space(click, SR, dsp.Space("in a large hall", 1.6, 0.35), rng)
    assert len(hall) > len(click) and np.abs(hall[SR // 4 :]).max() > 1e-3  # reverberation after the click
    noise = np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    far = dsp.apply_space(noise, SR, dsp.Space(distance="far away", cutoff=1800.0, gain=0.4), rng)
    assert _band_energy(far, 4000, 8000) < 0.2 * _band_energy(noise, 4000, 8000)


def test_write_library_reaches_its_target_and_reruns_identically(tmp_path: Path) -> None:
    clips, seconds = write_library(tmp_path, minutes_per_category=0.05, categories=("ui", "laser"))
    assert set(seconds) == {"ui", "laser"} and all(s >= 3.0 for s in seconds.values())
    assert all(c.licence == LIBRARY_LICENCE and c.captions for c in clips)
    assert all((tmp_path / c.path).is_file() for c in clips)
    again, _ = write_library(tmp_path, minutes_per_category=0.05, categories=("ui", "laser"), workers=2)
    assert [c.record() for c in again] == [c.record() for c in clips]  # the same corpus with 2 workers
    with pytest.raises(ConfigError, match="unknown"):
        write_library(tmp_path, 1.0, categories=("kazoo",))
    with pytest.raises(ConfigError, match="> 0"):
        write_library(tmp_path, 0.0)


@pytest.mark.skipif(not SOUNDFONT_PATH.is_file(), reason="needs fluid-soundfont-gm")
def test_phrases_have_pitch_and_say_what_they_are() -> None:
    from soundgen.data.recipes.phrases import PHRASE_FAMILIES, phrase

    for family in PHRASE_FAMILIES:
        p = phrase(family, 0, SOUNDFONT_PATH)
        assert p.category == f"music/{family}" and np.isfinite(p.samples).all() and len(p.samples) > SR // 2
        assert family in " ".join(p.captions) or "drum" in p.captions[0] or any(
            w in p.captions[0] for w in ("piano", "organ", "string", "violin", "cello", "trumpet", "horn"))
        # after other phrases on the same synthesiser: the same samples (the previous voices' release used to sound
        # into the next phrase, so a corpus' clips depended on the order its worker rendered them in)
        again = phrase(family, 0, SOUNDFONT_PATH).samples
        assert np.array_equal(again, p.samples)
    piano = phrase("piano", 1, SOUNDFONT_PATH).samples
    spec = np.abs(np.fft.rfft(piano))
    assert spec.max() > 20 * np.median(spec)  # peaks of notes, not a noise floor


def test_licence_classes() -> None:
    assert licence_class("CC0-1.0") == "permissive"
    assert licence_class("public domain; rendered with FluidR3_GM (MIT)") == "permissive"
    assert licence_class("CC-BY-3.0") == "permissive"
    assert licence_class("GPL-2+, CC-BY-SA-3.0") == "copyleft"
    assert licence_class("CC-BY-SA-4.0") == "copyleft"
    assert licence_class("CC-BY-NC-4.0") == "unknown"
    assert licence_class("") == "unknown" and licence_class("unknown") == "unknown"
    assert licence_class("CC0-1.0, GPL-3") == "copyleft"  # one share-alike part makes the clip share-alike
    assert allowed("GPL-2", "copyleft") and not allowed("GPL-2", "permissive") and allowed("unknown", "all")
    assert not allowed("unknown", "copyleft")
