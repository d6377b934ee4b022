"""A procedural sound-effects library in the project's own code (CC0): ``soundgen data recipe synth``.

Each category is one function ``(rng, sr) -> Effect``: it draws its parameters (pitch, length, decay, material,
size, pace, ...), synthesises the sound from noise, oscillators and struck modes (:mod:`.dsp`), and says in words
what it drew. The words become plain-language captions (:mod:`.sfx_captions`); the room and distance the sound is
placed in (:func:`.dsp.draw_space`) join them. A clip is a pure function of its seed, so the library is an
unlimited, labelled corpus: pretrain on it, then fine-tune on your own sounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy import signal

from soundgen.data.recipes import dsp
from soundgen.data.recipes.dsp import Array


@dataclass
class Effect:
    """A synthesised sound before its room: mono float32 ``samples [T]`` and what it is, in words.

    Attributes:
        category: the label a classifier learns ("explosion", "footsteps", ...).
        nouns: alternative descriptions of the sound itself ("a big explosion", "a loud blast").
        details: phrases about its parameters that captions may add ("on gravel", "at a running pace").
        tags: keywords.
        roomy: whether it may be placed in a room/distance (UI sounds stay dry).
    """

    samples: Array
    category: str
    nouns: list[str]
    details: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    roomy: bool = True


def _pick(rng: np.random.Generator, items: list[str] | tuple[str, ...]) -> str:
    return str(items[int(rng.integers(len(items)))])


def _size(rng: np.random.Generator) -> tuple[str, float]:
    """A size word and a scale in [0, 1]."""
    i = int(rng.integers(3))
    return ("small", "big", "huge")[i], (0.1, 0.55, 1.0)[i] + rng.uniform(-0.1, 0.1)


# ----------------------------------------------------------------------------------------------- explosions


def explosion(rng: np.random.Generator, sr: int) -> Effect:
    size, s = _size(rng)
    dur = 1.2 + 3.0 * s + rng.uniform(0, 0.8)
    n = dsp.seconds(sr, dur)
    crack = dsp.filt(dsp.white(rng, n), sr, "lowpass", 6000) * dsp.decay(sr, n, 0.03 + 0.03 * s)
    body = dsp.sweep_filter(dsp.white(rng, n), sr, 4000 - 1500 * s, 120) * dsp.decay(sr, n, 0.25 + 0.5 * s, 0.004)
    rumble = dsp.filt(dsp.brown(rng, n, sr), sr, "lowpass", 150 + 100 * (1 - s)) * dsp.decay(sr, n, 0.5 + 1.0 * s,
                                                                                             0.02)
    x = 0.6 * crack + 1.0 * body + (1.2 + 1.0 * s) * rumble
    details = []
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(6, 20))):
            bit = dsp.filt(dsp.white(rng, dsp.seconds(sr, 0.02)), sr, "bandpass", (1500, 5000))
            dsp.place(x, bit * dsp.decay(sr, len(bit), 0.005), int(rng.uniform(0.3, 0.9) * n),
                      rng.uniform(0.05, 0.2))
        details.append("with debris falling")
    nouns = [f"a {size} explosion", f"a {size} blast", "an explosion", "a loud explosion", "a detonation",
             "a bomb exploding", f"a {size} boom"]
    return Effect(dsp.normalise(x), "explosion", nouns, details, ["explosion", "blast", size])


def thunder(rng: np.random.Generator, sr: int) -> Effect:
    dur = rng.uniform(3.0, 6.0)
    n = dsp.seconds(sr, dur)
    close = rng.random() < 0.5
    rumble = dsp.filt(dsp.brown(rng, n, sr), sr, "lowpass", 200)
    t = dsp.time_axis(sr, n)
    rolls = np.zeros(n, dtype=np.float32)
    for _ in range(int(rng.integers(3, 7))):
        c, w = rng.uniform(0.05, 0.7) * dur, rng.uniform(0.2, 0.8)
        rolls += np.exp(-((t - c) / w) ** 2) * rng.uniform(0.4, 1.0)
    x = rumble * (rolls + 0.1) * dsp.decay(sr, n, dur * 0.5, 0.05)
    if close:
        crack = dsp.filt(dsp.white(rng, n), sr, "bandpass", (300, 5000)) * dsp.decay(sr, n, 0.12, 0.002)
        x = x + 0.7 * crack
    nouns = ["a clap of thunder", "thunder", "a thunderclap" if close else "distant rolling thunder",
             "a thunderstorm rumble", "thunder rumbling"]
    return Effect(dsp.normalise(x), "thunder", nouns, [], ["thunder", "storm", "rumble"])


# ----------------------------------------------------------------------------------------------- weapons


_GUNS = {  # body band (Hz), body decay (s), thump (Hz), names
    "pistol": ((400, 3500), 0.05, 120, ["a pistol shot", "a handgun firing", "a gunshot"]),
    "rifle": ((250, 4500), 0.08, 90, ["a rifle shot", "a rifle firing", "a gunshot", "a sniper rifle shot"]),
    "shotgun": ((150, 3000), 0.14, 70, ["a shotgun blast", "a shotgun firing", "a shotgun shot"]),
}


def _shot(rng: np.random.Generator, sr: int, kind: str) -> Array:
    band, tau, thump, _ = _GUNS[kind]
    n = dsp.seconds(sr, tau * 6 + 0.1)
    click = dsp.filt(dsp.white(rng, n), sr, "highpass", 2000) * dsp.decay(sr, n, 0.003, 0.0005)
    body = dsp.filt(dsp.white(rng, n), sr, "bandpass", band) * dsp.decay(sr, n, tau, 0.001)
    low = dsp.osc(sr, thump * np.exp(-dsp.time_axis(sr, n) * 8), n) * dsp.decay(sr, n, tau * 1.5, 0.001)
    return 0.8 * click + body + 0.7 * low


def gunshot(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, list(_GUNS))
    burst = kind != "shotgun" and rng.random() < 0.3
    if burst:
        rate, count = rng.uniform(8, 14), int(rng.integers(4, 14))
        n = dsp.seconds(sr, count / rate + 0.6)
        x = np.zeros(n, dtype=np.float32)
        for i in range(count):
            dsp.place(x, _shot(rng, sr, kind), int(i / rate * sr), rng.uniform(0.8, 1.0))
        nouns = ["a machine gun burst", "automatic gunfire", "a burst of gunfire", "a submachine gun firing",
                 "rapid gunshots"]
        return Effect(dsp.normalise(x), "gunshot", nouns, [f"{count} shots"], ["gunshot", "machine gun", "burst"])
    shots = int(rng.integers(1, 4))
    gap = rng.uniform(0.35, 0.9)
    x = np.zeros(dsp.seconds(sr, shots * gap + 0.6), dtype=np.float32)
    for i in range(shots):
        dsp.place(x, _shot(rng, sr, kind), int(i * gap * sr))
    if kind == "shotgun" and rng.random() < 0.5:
        pump = dsp.filt(dsp.white(rng, dsp.seconds(sr, 0.25)), sr, "bandpass", (800, 4000))
        pump *= dsp.decay(sr, len(pump), 0.02)
        x = np.concatenate([x, np.zeros(dsp.seconds(sr, 0.3), dtype=np.float32)])
        dsp.place(x, pump, len(x) - len(pump) - dsp.seconds(sr, 0.1), 0.4)
    nouns = list(_GUNS[kind][3])
    details = ["one shot" if shots == 1 else f"{shots} shots"]
    return Effect(dsp.normalise(x), "gunshot", nouns, details, ["gunshot", kind, "weapon"])


def laser(rng: np.random.Generator, sr: int) -> Effect:
    count = int(rng.integers(1, 4))
    gap = rng.uniform(0.15, 0.4)
    one = rng.uniform(0.12, 0.45)
    f0, f1 = rng.uniform(1500, 4500), rng.uniform(150, 600)
    shape = _pick(rng, ("sine", "square", "saw"))
    x = np.zeros(dsp.seconds(sr, count * gap + one + 0.1), dtype=np.float32)
    for i in range(count):
        n = dsp.seconds(sr, one)
        f = np.geomspace(f0, f1, n) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(20, 60) * dsp.time_axis(sr, n)))
        dsp.place(x, dsp.osc(sr, f, n, shape) * dsp.decay(sr, n, one * 0.5, 0.002), int(i * gap * sr))
    nouns = ["a laser shot", "a laser blaster", "a sci-fi laser gun", "a pew pew laser", "a space blaster firing",
             "a ray gun"]
    details = [] if count == 1 else [f"firing {count} times"]
    return Effect(dsp.normalise(x) * 0.8, "laser", nouns, details, ["laser", "blaster", "sci-fi"])


# ----------------------------------------------------------------------------------------------- impacts


_MATERIALS = {  # mode ratios, fundamental range (Hz), decay range (s), noise share, words
    "metal": ([1.0, 2.76, 5.40, 8.93, 13.3], (250, 900), (0.5, 1.6), 0.15,
              ["a metal clang", "a hit on metal", "a metallic impact", "a clanging metal pipe", "metal being struck"]),
    "wood": ([1.0, 2.57, 4.2, 6.1], (120, 500), (0.04, 0.12), 0.35,
             ["a wooden knock", "a hit on wood", "a wooden impact", "a thud on a wooden plank", "wood being struck"]),
    "glass": ([1.0, 2.32, 4.25, 6.63, 9.38], (1200, 3200), (0.25, 0.7), 0.1,
              ["a glass clink", "a hit on glass", "a glass impact", "a ringing glass", "glass being tapped"]),
    "stone": ([1.0, 1.9, 3.1], (90, 300), (0.02, 0.06), 0.75,
              ["a stone impact", "a rock hitting stone", "a heavy thud on rock", "a stone being struck",
               "rocks colliding"]),
}


def _strike(rng: np.random.Generator, sr: int, material: str, scale: float = 1.0) -> Array:
    ratios, (flo, fhi), (dlo, dhi), noise, _ = _MATERIALS[material]
    f0 = rng.uniform(flo, fhi) / scale
    tau = rng.uniform(dlo, dhi) * scale
    n = dsp.seconds(sr, tau * 5 + 0.05)
    freqs = [f0 * r * rng.uniform(0.98, 1.02) for r in ratios]
    amps = [1.0 / (1 + i) ** 0.7 for i in range(len(ratios))]
    taus = [tau / (1 + 0.5 * i) for i in range(len(ratios))]
    tone = dsp.modal(sr, n, freqs, taus, amps, rng)
    hit = dsp.filt(dsp.white(rng, n), sr, "bandpass", (f0 * 0.5, min(7000, f0 * 12))) * dsp.decay(sr, n, 0.008)
    return dsp.normalise(tone) * (1 - noise) + dsp.normalise(hit) * noise * 1.5


def impact(rng: np.random.Generator, sr: int, material: str) -> Effect:
    """Struck ``material`` (metal, wood, glass, stone), once or a few times; glass sometimes shatters."""
    if material == "glass" and rng.random() < 0.35:
        n = dsp.seconds(sr, rng.uniform(1.0, 2.0))
        x = np.zeros(n, dtype=np.float32)
        dsp.place(x, _strike(rng, sr, "glass"), 0)
        for _ in range(int(rng.integers(15, 40))):
            shard = _strike(rng, sr, "glass", rng.uniform(0.4, 0.9))
            dsp.place(x, shard, int(rng.exponential(0.15) * sr) + dsp.seconds(sr, 0.01), rng.uniform(0.1, 0.5))
        nouns = ["glass shattering", "a window breaking", "glass breaking", "a bottle smashing", "shattering glass"]
        return Effect(dsp.normalise(x), "impact/glass", nouns, [], ["glass", "break", "shatter"])
    hits = int(rng.integers(1, 4))
    gap = rng.uniform(0.25, 0.6)
    heavy = rng.random() < 0.5
    scale = 1.6 if heavy else 1.0
    one = _strike(rng, sr, material, scale)
    x = np.zeros(len(one) + int(hits * gap * sr), dtype=np.float32)
    for i in range(hits):
        dsp.place(x, _strike(rng, sr, material, scale), int(i * gap * sr), rng.uniform(0.7, 1.0))
    nouns = list(_MATERIALS[material][4])
    details = (["a heavy hit"] if heavy else ["a light hit"]) + ([] if hits == 1 else [f"struck {hits} times"])
    return Effect(dsp.normalise(x), f"impact/{material}", nouns, details, ["impact", material, "hit"])


def door(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("knock", "slam", "creak"))
    if kind == "knock":
        count = int(rng.integers(2, 5))
        gap = rng.uniform(0.15, 0.3)
        x = np.zeros(dsp.seconds(sr, count * gap + 0.4), dtype=np.float32)
        for i in range(count):
            dsp.place(x, _strike(rng, sr, "wood", 1.3), int(i * gap * sr))
        nouns = ["knocking on a door", "a knock at the door", "someone knocking on a wooden door", "door knocks"]
    elif kind == "slam":
        x = _strike(rng, sr, "wood", 2.2)
        latch = _strike(rng, sr, "metal", 0.4) * 0.3
        x = np.concatenate([x, np.zeros(dsp.seconds(sr, 0.3), dtype=np.float32)])
        dsp.place(x, latch, dsp.seconds(sr, 0.01))
        nouns = ["a door slamming", "a door slam", "a heavy door shutting", "a door banging shut"]
    else:
        dur = rng.uniform(1.0, 2.5)
        n = dsp.seconds(sr, dur)
        t = dsp.time_axis(sr, n)
        f = rng.uniform(300, 700) * (1 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t)
                                     + 0.05 * dsp.filt(dsp.white(rng, n), sr, "lowpass", 20))
        pulses = (dsp.osc(sr, f / rng.uniform(8, 15), n, "square") > 0.9).astype(np.float32)
        x = dsp.filt(pulses * dsp.osc(sr, f, n, "saw"), sr, "bandpass", (400, 3000)) * dsp.adsr(sr, n, 0.1, 0.1, 0.8,
                                                                                                  0.3)
        nouns = ["a creaking door", "a door creaking open", "a squeaky door hinge", "an old door creaking"]
    return Effect(dsp.normalise(x), "door", nouns, [], ["door", kind])


# ----------------------------------------------------------------------------------------------- footsteps


_SURFACES = ("wood", "gravel", "concrete", "grass", "snow", "metal")


def _step(rng: np.random.Generator, sr: int, surface: str) -> Array:
    n = dsp.seconds(sr, 0.18)
    if surface == "wood":
        return _strike(rng, sr, "wood", 1.6)[:n] * 0.9
    if surface == "metal":
        return _strike(rng, sr, "metal", 0.7)[: n * 2] * 0.6
    if surface == "concrete":
        w = dsp.filt(dsp.white(rng, n), sr, "bandpass", (600, 4000)) * dsp.decay(sr, n, 0.012)
        return w + 0.5 * dsp.filt(dsp.white(rng, n), sr, "lowpass", 300) * dsp.decay(sr, n, 0.02)
    grains = np.zeros(n, dtype=np.float32)
    count = {"gravel": 40, "snow": 60, "grass": 25}[surface]
    for _ in range(count):
        g = dsp.white(rng, dsp.seconds(sr, 0.004)) * dsp.decay(sr, dsp.seconds(sr, 0.004), 0.001)
        dsp.place(grains, g, int(rng.beta(1.5, 4) * n), rng.uniform(0.2, 1))
    band = {"gravel": (1500, 7000), "snow": (300, 2500), "grass": (2000, 7500)}[surface]
    return dsp.filt(grains, sr, "bandpass", band) * dsp.decay(sr, n, 0.06)


def footsteps(rng: np.random.Generator, sr: int) -> Effect:
    surface = _pick(rng, _SURFACES)
    pace = _pick(rng, ("walking", "running", "slow"))
    rate = {"walking": rng.uniform(1.6, 2.1), "running": rng.uniform(2.8, 3.6), "slow": rng.uniform(0.9, 1.3)}[pace]
    dur = rng.uniform(2.5, 5.0)
    x = np.zeros(dsp.seconds(sr, dur), dtype=np.float32)
    t = rng.uniform(0.05, 0.3)
    while t < dur - 0.3:
        heel = _step(rng, sr, surface)
        dsp.place(x, heel, int(t * sr), rng.uniform(0.7, 1.0))
        dsp.place(x, _step(rng, sr, surface), int((t + 0.06) * sr), rng.uniform(0.3, 0.5))
        t += 1 / rate * rng.uniform(0.93, 1.07)
    who = _pick(rng, ("footsteps", "steps", "boots", "someone walking" if pace != "running" else "someone running"))
    nouns = [f"{who} on {surface}", f"footsteps on {surface}", f"{pace} footsteps on {surface}",
             f"boots on a {surface} floor" if surface in ("wood", "concrete", "metal") else f"walking on {surface}"]
    return Effect(dsp.normalise(x), "footsteps", nouns, [f"at a {pace} pace"], ["footsteps", surface, pace])


# ----------------------------------------------------------------------------------------------- game UI


def _beep(sr: int, f: float, dur: float, shape: str = "sine") -> Array:
    n = dsp.seconds(sr, dur)
    return dsp.osc(sr, f, n, shape) * dsp.adsr(sr, n, 0.003, dur * 0.3, 0.6, min(0.03, dur * 0.4))


def _chirp(sr: int, n: int, f0: float, f1: float, shape: str, attack: float, release: float) -> Array:
    """``n`` samples of an oscillator gliding exponentially from ``f0`` to ``f1`` Hz, enveloped."""
    return dsp.osc(sr, np.geomspace(f0, f1, n), n, shape) * dsp.adsr(sr, n, attack, 0.05, 0.7, release)


def _interface(x: Array, sr: int, category: str, nouns: list[str], tags: list[str]) -> Effect:
    """A dry game-interface sound: 50 ms of silence after it, peak at 0.8."""
    x = np.concatenate([x, np.zeros(dsp.seconds(sr, 0.05), dtype=np.float32)])
    return Effect(dsp.normalise(x) * 0.8, category, nouns, [], tags, roomy=False)


def ui(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("click", "confirm", "error", "blip", "notification"))
    shape = _pick(rng, ("sine", "square", "triangle"))
    base = rng.uniform(500, 1600)
    if kind == "click":
        n = dsp.seconds(sr, 0.08)
        x = dsp.filt(dsp.white(rng, n), sr, "bandpass", (base * 2, min(7500, base * 6))) * dsp.decay(sr, n, 0.006)
        x += 0.5 * _beep(sr, base * 2, 0.08, "sine") * dsp.decay(sr, n, 0.012)
        nouns = ["a button click", "a UI click", "a soft menu click", "a mouse click", "a click"]
    elif kind == "confirm":
        x = np.concatenate([_beep(sr, base, 0.08, shape), _beep(sr, base * 1.5, 0.14, shape)])
        nouns = ["a confirmation sound", "a menu confirm beep", "a success chime", "a positive UI beep"]
    elif kind == "error":
        x = np.concatenate([_beep(sr, base * 0.4, 0.12, "square"), _beep(sr, base * 0.3, 0.22, "square")])
        nouns = ["an error buzz", "an error sound", "a wrong-answer buzzer", "a negative UI beep", "a denied sound"]
    elif kind == "blip":
        x = _beep(sr, base * rng.uniform(1, 2), rng.uniform(0.04, 0.1), shape)
        nouns = ["a short blip", "a UI blip", "a beep", "a short electronic beep", "a computer bleep"]
    else:
        ratios = (1.0, 1.26, 1.5) if rng.random() < 0.5 else (1.5, 1.26, 1.0, 2.0)
        x = np.concatenate([_beep(sr, base * r, 0.11, "sine") for r in ratios])
        x = np.concatenate([x, np.zeros(dsp.seconds(sr, 0.2), dtype=np.float32)])
        nouns = ["a notification chime", "a message alert sound", "a pleasant notification", "an app notification"]
    return _interface(x, sr, "ui", nouns, ["ui", kind, "interface"])


def pickup(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("coin", "powerup", "item"))
    shape = _pick(rng, ("square", "triangle", "sine"))
    if kind == "coin":
        f = rng.uniform(900, 1400)
        second = _beep(sr, f * 1.335, rng.uniform(0.25, 0.4), shape)
        x = np.concatenate([_beep(sr, f, 0.07, shape), second * dsp.decay(sr, len(second), 0.15)])
        nouns = ["a coin pickup", "collecting a coin", "a coin sound from a retro game", "a gold coin chime"]
    elif kind == "powerup":
        f = rng.uniform(300, 600)
        steps = int(rng.integers(6, 12))
        scale = (1, 1.122, 1.26, 1.335, 1.5, 1.68, 1.888, 2.0)
        notes = [f * scale[i % 8] * 2 ** (i // 8) for i in range(steps)]
        x = np.concatenate([_beep(sr, v, 0.05, shape) for v in notes])
        nouns = ["a power-up sound", "a level-up jingle", "a rising power-up arpeggio", "an upgrade sound"]
    else:
        n = dsp.seconds(sr, rng.uniform(0.15, 0.3))
        x = _chirp(sr, n, rng.uniform(400, 700), rng.uniform(1500, 2500), shape, 0.005, 0.05)
        nouns = ["an item pickup", "picking up an item", "a pickup sound", "a collect sound"]
    return _interface(x, sr, "pickup", nouns, ["pickup", kind, "game"])


def jump(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("retro", "spring"))
    dur = rng.uniform(0.18, 0.45)
    n = dsp.seconds(sr, dur)
    t = dsp.time_axis(sr, n)
    if kind == "retro":
        x = _chirp(sr, n, rng.uniform(150, 300), rng.uniform(600, 1200), "square", 0.003, 0.04)
        nouns = ["a jump sound", "a retro game jump", "an 8-bit jump", "a platformer jump sound"]
    else:
        f = rng.uniform(200, 400) * (1 + 0.3 * np.sin(2 * np.pi * 18 * t)) * np.geomspace(1, 2.5, n)
        x = dsp.osc(sr, f, n, "sine") * dsp.decay(sr, n, dur * 0.6)
        nouns = ["a springy boing", "a cartoon jump", "a bouncy boing sound", "a spring bounce"]
    return _interface(x, sr, "jump", nouns, ["jump", kind, "game"])


# ----------------------------------------------------------------------------------------------- machines


def engine(rng: np.random.Generator, sr: int) -> Effect:
    size = _pick(rng, ("small", "car", "truck"))
    state = _pick(rng, ("idling", "revving", "accelerating"))
    cylinders = {"small": 1, "car": 4, "truck": 6}[size]
    idle_rpm = {"small": 1400, "car": 850, "truck": 600}[size] * rng.uniform(0.85, 1.15)
    dur = rng.uniform(3.0, 6.0)
    n = dsp.seconds(sr, dur)
    t = dsp.time_axis(sr, n)
    if state == "idling":
        rpm = idle_rpm * (1 + 0.02 * np.sin(2 * np.pi * 0.7 * t))
    elif state == "revving":
        rpm = idle_rpm * (1 + 2.0 * np.exp(-(((t - dur * 0.45) / (dur * 0.18)) ** 2)))
    else:
        rpm = idle_rpm * np.geomspace(1.0, rng.uniform(3.0, 4.5), n)
    fire = rpm / 60 * cylinders / 2  # firing frequency
    phase = np.cumsum(fire) / sr
    pulses = np.maximum(0.0, np.cos(2 * np.pi * phase)) ** 8
    body = dsp.filt(pulses.astype(np.float32), sr, "lowpass", 900 if size != "small" else 2500)
    rough = dsp.filt(dsp.white(rng, n), sr, "lowpass", 1500) * (0.3 + pulses.astype(np.float32))
    x = body + 0.25 * rough + 0.3 * dsp.osc(sr, fire * 0.5, n, "saw") * 0.3
    x *= dsp.adsr(sr, n, 0.1, 0.1, 1.0, 0.2)
    vehicle = {"small": "a motorbike engine", "car": "a car engine", "truck": "a truck engine"}[size]
    nouns = [f"{vehicle} {state}", f"an engine {state}", f"{vehicle}", f"a {size} engine {state}",
             "a motor running" if state == "idling" else f"a motor {state}"]
    return Effect(dsp.normalise(x), "engine", nouns, [], ["engine", size, state, "motor"])


def alarm(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("siren", "beeping", "klaxon", "bell"))
    dur = rng.uniform(2.5, 5.0)
    n = dsp.seconds(sr, dur)
    t = dsp.time_axis(sr, n)
    if kind == "siren":
        f = rng.uniform(600, 800) + rng.uniform(300, 600) * np.sin(2 * np.pi * t / rng.uniform(1.0, 2.5))
        x = dsp.osc(sr, f, n, "triangle")
        nouns = ["a siren wailing", "a police siren", "an air raid siren", "a wailing alarm siren"]
    elif kind == "beeping":
        rate = rng.uniform(2, 5)
        gate = (np.sin(2 * np.pi * rate * t) > 0).astype(np.float32)
        x = dsp.osc(sr, rng.uniform(1500, 3200), n, "square") * dsp.filt(gate, sr, "lowpass", 200)
        nouns = ["an alarm beeping", "a beeping alarm clock", "a warning beep", "a repeated alarm beep"]
    elif kind == "klaxon":
        f = np.where(np.sin(2 * np.pi * t / rng.uniform(0.6, 1.2)) > 0, 440.0, 370.0) * rng.uniform(0.8, 1.2)
        x = dsp.filt(dsp.osc(sr, f, n, "saw"), sr, "lowpass", 3000)
        nouns = ["a klaxon alarm", "a warning horn", "an emergency alarm", "a red alert klaxon"]
    else:
        rate = rng.uniform(12, 20)
        hammer = (np.sin(2 * np.pi * rate * t) > 0.95).astype(np.float32)
        bell = dsp.modal(sr, dsp.seconds(sr, 0.3), [2100, 2100 * 2.76, 2100 * 5.4], [0.2, 0.1, 0.05], [1, 0.5, 0.3],
                         rng)
        x = np.convolve(hammer, bell)[:n].astype(np.float32)
        nouns = ["a ringing alarm bell", "a fire alarm bell", "a school bell ringing", "an old alarm bell"]
    x *= dsp.adsr(sr, n, 0.02, 0.05, 1.0, 0.05)
    return Effect(dsp.normalise(x) * 0.8, "alarm", nouns, [], ["alarm", kind, "warning"])


# ----------------------------------------------------------------------------------------------- ambiences


def wind(rng: np.random.Generator, sr: int) -> Effect:
    dur = rng.uniform(4.0, 8.0)
    n = dsp.seconds(sr, dur)
    strong = rng.random() < 0.5
    gusts = dsp.filt(dsp.white(rng, n), sr, "lowpass", 0.8) if n > 64 else np.zeros(n, np.float32)
    gusts = 0.5 + dsp.normalise(gusts) * 0.5
    centres = 300 + (900 if strong else 400) * gusts[:: 256]
    x = dsp.band_sweep(dsp.pink(rng, n), sr, centres, q=1.2 if strong else 2.5) * gusts
    x *= dsp.adsr(sr, n, 0.5, 0.1, 1.0, 0.5)
    nouns = ["strong wind blowing", "a howling wind", "a gusty storm wind"] if strong else [
        "wind blowing", "a gentle breeze", "soft wind", "wind through the trees"]
    return Effect(dsp.normalise(x) * 0.7, "wind", nouns, [], ["wind", "ambience", "weather"], roomy=False)


def rain(rng: np.random.Generator, sr: int) -> Effect:
    dur = rng.uniform(4.0, 8.0)
    n = dsp.seconds(sr, dur)
    heavy = rng.random() < 0.5
    hiss = dsp.filt(dsp.pink(rng, n), sr, "bandpass", (800, 7000)) * (0.5 if heavy else 0.2)
    drops = np.zeros(n, dtype=np.float32)
    count = int((600 if heavy else 120) * dur)
    d = dsp.seconds(sr, 0.006)
    for f in rng.uniform(1500, 6000, 6):  # six drop pitches, each struck at random times (one convolution each)
        hits = np.zeros(n, dtype=np.float32)
        hits[rng.integers(0, n, count // 6)] = rng.uniform(0.1, 1.0, count // 6)
        drops += signal.fftconvolve(hits, dsp.osc(sr, f, d) * dsp.decay(sr, d, 0.0015))[:n].astype(np.float32)
    x = hiss + drops * 0.6
    x *= dsp.adsr(sr, n, 0.4, 0.1, 1.0, 0.4)
    nouns = ["heavy rain", "a downpour", "rain pouring down", "a rainstorm"] if heavy else [
        "light rain", "gentle rain falling", "a light drizzle", "raindrops"]
    return Effect(dsp.normalise(x) * 0.7, "rain", nouns, [], ["rain", "ambience", "weather"], roomy=False)


def fire(rng: np.random.Generator, sr: int) -> Effect:
    dur = rng.uniform(4.0, 8.0)
    n = dsp.seconds(sr, dur)
    roar = dsp.filt(dsp.brown(rng, n, sr), sr, "lowpass", 400)
    flicker = 0.6 + 0.4 * dsp.normalise(dsp.filt(dsp.white(rng, n), sr, "lowpass", 3.0))
    x = roar * flicker
    crackles = np.zeros(n, dtype=np.float32)
    for pos in rng.integers(0, n - 200, int(rng.uniform(8, 30) * dur)):
        k = int(rng.integers(20, 120))
        c = dsp.white(rng, k) * dsp.decay(sr, k, 0.0015)
        dsp.place(crackles, c, int(pos), rng.uniform(0.2, 1.0))
    x = 0.6 * x + dsp.filt(crackles, sr, "highpass", 1000)
    x *= dsp.adsr(sr, n, 0.3, 0.1, 1.0, 0.3)
    nouns = ["a crackling fire", "a campfire burning", "a fireplace crackling", "flames burning", "a roaring fire"]
    return Effect(dsp.normalise(x) * 0.8, "fire", nouns, [], ["fire", "crackle", "ambience"])


def drips(rng: np.random.Generator, sr: int) -> Effect:
    dur = rng.uniform(3.0, 7.0)
    n = dsp.seconds(sr, dur)
    x = np.zeros(n, dtype=np.float32)
    rate = rng.uniform(1.0, 5.0)
    t = rng.uniform(0, 0.3)
    while t < dur - 0.1:
        k = dsp.seconds(sr, 0.06)
        f = np.geomspace(rng.uniform(600, 1400), rng.uniform(1800, 3500), k)
        dsp.place(x, dsp.osc(sr, f, k) * dsp.decay(sr, k, 0.012), int(t * sr), rng.uniform(0.4, 1.0))
        t += rng.exponential(1 / rate)
    nouns = ["water dripping", "drips of water", "a leaking tap dripping", "water drops falling", "dripping water"]
    return Effect(dsp.normalise(x) * 0.8, "drips", nouns, [], ["drip", "water", "ambience"])


def hum(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("electric", "machine", "spaceship"))
    dur = rng.uniform(4.0, 8.0)
    n = dsp.seconds(sr, dur)
    t = dsp.time_axis(sr, n)
    if kind == "electric":
        f0 = float(rng.choice([50.0, 60.0]))
        x = sum((0.6 ** k) * dsp.osc(sr, f0 * k, n) for k in range(1, 8))
        x = np.asarray(x) + 0.05 * dsp.filt(dsp.white(rng, n), sr, "bandpass", (2000, 6000))
        nouns = ["an electrical hum", "a buzzing transformer", "mains hum", "a humming power line"]
    elif kind == "machine":
        f0 = rng.uniform(80, 200)
        x = sum((0.5 ** k) * dsp.osc(sr, f0 * k * (1 + 0.003 * np.sin(2 * np.pi * 0.5 * t)), n) for k in range(1, 6))
        x = np.asarray(x) + 0.2 * dsp.filt(dsp.pink(rng, n), sr, "lowpass", 800)
        nouns = ["a machine humming", "a refrigerator hum", "an air conditioner humming", "a server room drone"]
    else:
        f0 = rng.uniform(40, 90)
        x = sum((0.7 ** k) * dsp.osc(sr, f0 * k * (1 + 0.01 * np.sin(2 * np.pi * 0.2 * k * t)), n)
                for k in range(1, 9))
        x = np.asarray(x) + 0.3 * dsp.filt(dsp.brown(rng, n, sr), sr, "lowpass", 300)
        nouns = ["a spaceship engine hum", "a low sci-fi drone", "a deep ambient hum", "a starship interior drone"]
    x = np.asarray(x, dtype=np.float32) * dsp.adsr(sr, n, 0.3, 0.1, 1.0, 0.3)
    return Effect(dsp.normalise(x) * 0.7, "hum", nouns, [], ["hum", kind, "drone"])


# ----------------------------------------------------------------------------------------------- motion, magic, water


def whoosh(rng: np.random.Generator, sr: int) -> Effect:
    dur = rng.uniform(0.3, 1.2)
    n = dsp.seconds(sr, dur)
    t = dsp.time_axis(sr, n)
    bell = np.exp(-(((t - dur * rng.uniform(0.4, 0.6)) / (dur * 0.22)) ** 2)).astype(np.float32)
    centres = 300 + rng.uniform(1500, 4000) * bell[:: 256]
    x = dsp.band_sweep(dsp.white(rng, n), sr, centres, q=1.5) * bell
    fast = dur < 0.6
    nouns = ["a fast whoosh", "a sword swish", "a quick swoosh", "something flying past"] if fast else [
        "a whoosh", "a slow swoosh", "a woosh of air", "a passing whoosh"]
    x = np.concatenate([x, np.zeros(dsp.seconds(sr, 0.1), dtype=np.float32)])
    return Effect(dsp.normalise(x) * 0.8, "whoosh", nouns, [], ["whoosh", "swoosh", "air"])


def magic(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("spell", "zap", "sparkle"))
    if kind == "zap":
        dur = rng.uniform(0.3, 1.0)
        n = dsp.seconds(sr, dur)
        t = dsp.time_axis(sr, n)
        buzz = dsp.osc(sr, rng.uniform(60, 140) * (1 + 0.5 * np.sin(2 * np.pi * 30 * t)), n, "saw")
        sparks = (rng.random(n) < 0.02).astype(np.float32) * dsp.white(rng, n)
        x = 0.5 * buzz + dsp.filt(sparks, sr, "highpass", 1500) * 3
        x *= dsp.decay(sr, n, dur * 0.5, 0.002)
        nouns = ["an electric zap", "an electric shock", "a zap of electricity", "a crackling electric arc"]
    else:
        dur = rng.uniform(1.0, 2.5)
        n = dsp.seconds(sr, dur)
        x = np.zeros(n, dtype=np.float32)
        base = rng.uniform(500, 1000)
        for _ in range(int(rng.uniform(15, 40) * dur)):
            k = dsp.seconds(sr, rng.uniform(0.1, 0.4))
            f = base * 2 ** (rng.integers(0, 24) / 12)
            tone = dsp.osc(sr, f * (1 + 0.01 * np.sin(2 * np.pi * 6 * dsp.time_axis(sr, k))), k)
            dsp.place(x, tone * dsp.decay(sr, k, 0.08, 0.005), int(rng.uniform(0, 0.85) * n), rng.uniform(0.1, 0.5))
        if kind == "spell":
            swell = dsp.band_sweep(dsp.white(rng, n), sr, np.geomspace(500, 4000, n // 256 + 1), q=3)
            x += 0.4 * dsp.normalise(swell) * dsp.adsr(sr, n, dur * 0.4, 0.1, 0.5, dur * 0.4)
            nouns = ["a magic spell", "a magical spell being cast", "a fantasy spell sound", "a wizard casting magic"]
        else:
            nouns = ["magical sparkles", "a fairy sparkle", "a twinkling magic shimmer", "glittering chimes"]
    return Effect(dsp.normalise(x) * 0.8, "magic", nouns, [], ["magic", kind, "fantasy"])


def water(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("splash", "bubbles", "stream"))
    dur = {"splash": rng.uniform(0.8, 1.8), "bubbles": rng.uniform(1.5, 3.5), "stream": rng.uniform(4.0, 7.0)}[kind]
    n = dsp.seconds(sr, dur)
    x = np.zeros(n, dtype=np.float32)
    density = {"splash": 60, "bubbles": 25, "stream": 90}[kind]
    for _ in range(int(density * dur)):
        k = dsp.seconds(sr, rng.uniform(0.01, 0.05))
        f = np.geomspace(rng.uniform(300, 1200), rng.uniform(1300, 3000), k)
        pos = int((rng.exponential(0.2) if kind == "splash" else rng.uniform(0, 1)) * n)
        dsp.place(x, dsp.osc(sr, f, k) * dsp.decay(sr, k, k / sr / 3), pos, rng.uniform(0.2, 1.0))
    if kind == "splash":
        x += 1.5 * dsp.filt(dsp.white(rng, n), sr, "bandpass", (400, 5000)) * dsp.decay(sr, n, 0.12, 0.003)
        nouns = ["a splash of water", "something splashing into water", "a big splash", "a water splash"]
    elif kind == "stream":
        x += 0.6 * dsp.filt(dsp.pink(rng, n), sr, "bandpass", (300, 3000))
        nouns = ["a flowing stream", "a babbling brook", "running water", "a river flowing"]
    else:
        nouns = ["bubbles", "water bubbling", "underwater bubbles", "a bubbling liquid"]
    return Effect(dsp.normalise(x) * 0.8, "water", nouns, [], ["water", kind, "liquid"])


def birds(rng: np.random.Generator, sr: int) -> Effect:
    dur = rng.uniform(2.5, 6.0)
    n = dsp.seconds(sr, dur)
    x = np.zeros(n, dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):  # a few birds, each with its own song
        base, length = rng.uniform(2000, 5000), rng.uniform(0.05, 0.15)
        up = rng.random() < 0.5
        t = rng.uniform(0, 0.5)
        while t < dur - 0.3:
            for _ in range(int(rng.integers(1, 5))):
                k = dsp.seconds(sr, length)
                tt = dsp.time_axis(sr, k)
                f = base * (1 + (0.3 if up else -0.3) * tt / length) * (1 + 0.05 * np.sin(2 * np.pi * 60 * tt))
                dsp.place(x, dsp.osc(sr, f, k) * np.sin(np.pi * tt / length) ** 2, int(t * sr), rng.uniform(0.3, 1))
                t += length + rng.uniform(0.02, 0.08)
            t += rng.uniform(0.3, 1.2)
    nouns = ["birds chirping", "birdsong", "a bird singing", "birds tweeting in the morning", "songbirds"]
    return Effect(dsp.normalise(x) * 0.8, "birds", nouns, [], ["birds", "chirp", "nature"])


# ----------------------------------------------------------------------------------------------- drums


def drum(rng: np.random.Generator, sr: int) -> Effect:
    kind = _pick(rng, ("kick", "snare", "hihat", "tom", "clap"))
    n = dsp.seconds(sr, 0.6)
    t = dsp.time_axis(sr, n)
    if kind == "kick":
        f = rng.uniform(45, 60) + rng.uniform(80, 150) * np.exp(-t * rng.uniform(20, 40))
        x = dsp.osc(sr, f, n) * dsp.decay(sr, n, rng.uniform(0.12, 0.3), 0.001)
        x += 0.3 * dsp.filt(dsp.white(rng, n), sr, "highpass", 2000) * dsp.decay(sr, n, 0.003)
        nouns = ["a kick drum", "a bass drum hit", "a punchy kick", "a deep kick drum"]
    elif kind == "snare":
        x = 0.5 * dsp.osc(sr, rng.uniform(160, 220), n) * dsp.decay(sr, n, 0.06)
        x += dsp.filt(dsp.white(rng, n), sr, "bandpass", (1000, 7000)) * dsp.decay(sr, n, rng.uniform(0.08, 0.18))
        nouns = ["a snare drum hit", "a snare", "a crisp snare hit", "a snare drum"]
    elif kind == "hihat":
        tau = 0.04 if rng.random() < 0.6 else 0.25
        metal = sum(dsp.osc(sr, f, n, "square") for f in (2960, 3720, 4400, 5240, 6130, 6780))
        x = dsp.filt(np.asarray(metal, dtype=np.float32) + dsp.white(rng, n), sr, "highpass", 5000)
        x *= dsp.decay(sr, n, tau)
        nouns = ["a closed hi-hat", "a hi-hat tick", "a hi-hat"] if tau < 0.1 else [
            "an open hi-hat", "a cymbal hiss", "an open hat"]
    elif kind == "tom":
        f = rng.uniform(90, 200) * (1 + 0.5 * np.exp(-t * 15))
        x = dsp.osc(sr, f, n) * dsp.decay(sr, n, rng.uniform(0.15, 0.3), 0.001)
        x += 0.2 * dsp.filt(dsp.white(rng, n), sr, "lowpass", 3000) * dsp.decay(sr, n, 0.02)
        nouns = ["a tom drum hit", "a floor tom", "a tom-tom", "a low tom hit"]
    else:
        x = np.zeros(n, dtype=np.float32)
        for i in range(4):
            b = dsp.filt(dsp.white(rng, n), sr, "bandpass", (900, 3000)) * dsp.decay(sr, n, 0.008 if i < 3 else 0.1)
            dsp.place(x, b, int(i * 0.011 * sr))
        nouns = ["a hand clap", "a clap", "a drum machine clap", "a single clap"]
    hits = int(rng.integers(1, 4)) if rng.random() < 0.4 else 1
    if hits > 1:
        gap = rng.uniform(0.2, 0.5)
        y = np.zeros(len(x) + int(hits * gap * sr), dtype=np.float32)
        for i in range(hits):
            dsp.place(y, x, int(i * gap * sr), rng.uniform(0.8, 1.0))
        x = y
    details = [] if hits == 1 else [f"hit {hits} times"]
    return Effect(dsp.normalise(x) * rng.uniform(0.7, 1.0), "drum", nouns, details, ["drum", kind, "percussion"])


EffectFn = Callable[[np.random.Generator, int], Effect]
CATEGORIES: dict[str, EffectFn] = {
    "explosion": explosion, "thunder": thunder, "gunshot": gunshot, "laser": laser,
    **{f"impact/{m}": partial(impact, material=m) for m in _MATERIALS},
    "door": door, "footsteps": footsteps, "ui": ui, "pickup": pickup, "jump": jump, "engine": engine,
    "alarm": alarm, "wind": wind, "rain": rain, "fire": fire, "drips": drips, "hum": hum, "whoosh": whoosh,
    "magic": magic, "water": water, "birds": birds, "drum": drum,
}
