"""Continue or extend a sound (issue 17): an uploaded clip (capped, checked, converted) or one of your results, on a
real server on loopback with the tiny random model."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import soundfile as sf
from svc_helpers import LiveServer, data_dir_of, start_server, wait_final

from soundgen.service.settings import ServiceSettings

G = "/api/v1/generations"


def clip(seconds: float, rate: int = 16000, fmt: str = "WAV", channels: int = 1) -> str:
    """A sine of ``seconds`` as the base64 of an audio file."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    buf = io.BytesIO()
    sf.write(buf, np.stack([x] * channels, axis=1), rate, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def length(c: object, url: str) -> float:
    audio, rate = sf.read(io.BytesIO(c.get(url).content))  # type: ignore[attr-defined]
    return len(audio) / rate


def test_an_uploaded_clip_is_continued(server: LiveServer) -> None:
    c = server.client()
    for fmt, channels in (("WAV", 1), ("FLAC", 2), ("OGG", 1)):  # any format, converted at submission
        r = c.post(G, json={"prompt": "go on with this", "duration": 1.0, "audio_prompt": clip(1.5, fmt=fmt,
                                                                                             channels=channels)})
        assert r.status_code == 201, r.text
        assert r.json()["continues"] == "upload" and abs(r.json()["prompt_seconds"] - 1.5) < 0.01
        job = wait_final(c, r.json()["id"])
        assert job["state"] == "succeeded", job
        assert abs(length(c, job["results"][0]["audio_url"]) - 2.5) < 0.1  # the clip, then a second more
        stored = data_dir_of(server) / "storage" / "jobs" / job["id"] / "prompt.wav"
        assert sf.info(str(stored)).format == "WAV"
    assert c.delete(f"{G}/{job['id']}").status_code == 204
    assert not stored.exists()  # it goes with the job


def test_extend_a_result_and_new_seed_extends_the_same_sound(server: LiveServer) -> None:
    c = server.client()
    first = wait_final(c, c.post(G, json={"prompt": "a hum", "duration": 1.0, "count": 2}).json()["id"])
    r = c.post(G, json={"prompt": "a hum", "duration": 2.0, "continue_from": f"{first['id']}/1"})
    assert r.status_code == 201, r.text
    longer = wait_final(c, r.json()["id"])
    assert longer["continues"] == f"{first['id']}/1" and abs(longer["prompt_seconds"] - 1.0) < 0.05
    assert abs(length(c, longer["results"][0]["audio_url"]) - 3.0) < 0.1
    assert c.delete(f"{G}/{first['id']}").status_code == 204  # the source may go: the audio was copied
    again = wait_final(c, c.post(f"{G}/{longer['id']}/variations").json()["id"])
    assert again["state"] == "succeeded" and again["continues"] == longer["continues"]
    assert abs(length(c, again["results"][0]["audio_url"]) - 3.0) < 0.1


def test_bad_audio_is_refused_clearly_and_nothing_is_queued(server: LiveServer) -> None:
    c = server.client()
    before = len(c.get(G, params={"limit": 100}).json()["items"])
    cases = [
        ({"audio_prompt": "not base64!"}, "audio_prompt: not base64"),
        ({"audio_prompt": base64.b64encode(b"hello, not audio").decode()}, "audio_prompt: the clip: cannot decode"),
        ({"audio_prompt": clip(31.0, rate=8000)}, "longer than the 30 s limit"),
        ({"audio_prompt": clip(0.05)}, "at least 0.1 s"),
        ({"audio_prompt": clip(1.0), "continue_from": f"{'a' * 32}/0"}, "not both"),
        ({"continue_from": f"{'a' * 32}/0"}, "you have no sound"),
        ({"continue_from": "../../etc/passwd"}, "continue_from: String should match pattern"),
    ]
    for extra, needle in cases:
        r = c.post(G, json={"prompt": "x", "duration": 1.0, **extra})
        assert r.status_code == 422 and needle in r.json()["error"], (needle, r.text)
        assert "Traceback" not in r.text
    r = c.post(f"{G}/batch", json={"prompts": ["a", "b"], "audio_prompt": clip(1.0)})
    assert r.status_code == 422 and "a batch cannot continue audio" in r.json()["error"]
    assert len(c.get(G, params={"limit": 100}).json()["items"]) == before
    for stored in (data_dir_of(server) / "storage").glob("jobs/*/prompt.wav"):  # no audio is left without its job
        assert c.get(f"{G}/{stored.parent.name}").status_code == 200


def test_another_keys_result_cannot_be_continued(tmp_path: Path) -> None:
    import contextlib

    from soundgen.cli.main import main

    keys = []
    for name in ("a", "b"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["keys", "create", "--name", name, "--data-dir", str(tmp_path)]) == 0
        keys.append(out.getvalue().strip().splitlines()[-1])
    live = start_server(ServiceSettings.tiny(tmp_path).model_copy(update={"require_auth": True}))
    try:
        a, b = live.client(keys[0]), live.client(keys[1])
        job = wait_final(a, a.post(G, json={"prompt": "mine", "duration": 0.5}).json()["id"])
        theirs = b.post(G, json={"prompt": "steal", "duration": 0.5, "continue_from": f"{job['id']}/0"})
        nobody = b.post(G, json={"prompt": "steal", "duration": 0.5, "continue_from": f"{'f' * 32}/0"})
        assert theirs.status_code == nobody.status_code == 422
        assert theirs.json()["error"].replace(job["id"], "ID") == nobody.json()["error"].replace("f" * 32, "ID")
    finally:
        live.stop()
