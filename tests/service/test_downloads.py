"""Download names from the prompt in any script, and a whole job as one zip (issue 17), on a real server on
loopback."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import unquote

import soundfile as sf
from svc_helpers import LiveServer, wait_final

G = "/api/v1/generations"


def test_download_names_keep_non_ascii_prompts(server: LiveServer) -> None:
    c = server.client()
    cases = [("Pluie d'été", "pluie-d-été", "pluie-d-ete"), ("雨の音 rain", "雨の音-rain", "sound-rain"),
             ("rain on a roof", "rain-on-a-roof", "rain-on-a-roof")]
    for prompt, utf8, ascii_name in cases:
        job = wait_final(c, c.post(G, json={"prompt": prompt, "duration": 0.05, "seed": 9}).json()["id"])
        for fmt in ("wav", "mp3"):
            header = c.get(job["results"][0]["downloads"][fmt], params={"download": 1}).headers["content-disposition"]
            assert header.startswith(f'attachment; filename="{ascii_name}_s9_1.{fmt}"; '), header
            assert unquote(header.split("filename*=UTF-8''")[1]) == f"{utf8}_s9_1.{fmt}", header
        assert "content-disposition" not in c.get(job["results"][0]["audio_url"]).headers  # played inline


def test_a_job_downloads_as_one_zip_named_from_its_prompt(server: LiveServer) -> None:
    c = server.client()
    job = wait_final(c, c.post(G, json={"prompt": "Pluie d'été", "duration": 0.3, "count": 3, "seed": 4}).json()["id"])
    assert job["archive_url"] == f"{G}/{job['id']}/sounds.zip"
    for fmt in ("wav", "mp3"):
        r = c.get(job["archive_url"], params={"fmt": fmt})
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        header = r.headers["content-disposition"]
        assert header.startswith('attachment; filename="pluie-d-ete_s4.zip"; '), header
        assert unquote(header.split("filename*=UTF-8''")[1]) == "pluie-d-été_s4.zip"
        with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
            assert archive.testzip() is None  # every member's CRC checks
            names = archive.namelist()
            assert names == [f"pluie-d-été_s4_{i}.{fmt}" for i in (1, 2, 3)]
            for i, name in enumerate(names):  # each member is the single download, byte for byte
                assert archive.read(name) == c.get(job["results"][i]["downloads"][fmt]).content
            if fmt == "wav":
                audio, rate = sf.read(io.BytesIO(archive.read(names[0])))
                assert rate == job["sample_rate"] and abs(len(audio) / rate - 0.3) < 0.05


def test_a_zip_is_refused_clearly(server: LiveServer) -> None:
    c = server.client()
    job = wait_final(c, c.post(G, json={"prompt": "zip me", "duration": 0.05}).json()["id"])
    r = c.get(f"{G}/{job['id']}/sounds.zip", params={"fmt": "aiff"})
    assert r.status_code == 422 and "choose one of wav" in r.json()["error"]
    assert c.get(f"{G}/{'0' * 32}/sounds.zip").status_code == 404
    running = c.post(G, json={"prompt": "not yet", "duration": 300.0}).json()
    try:
        r = c.get(f"{G}/{running['id']}/sounds.zip")
        assert r.status_code == 409 and "results exist only once it succeeded" in r.json()["error"]
    finally:
        c.post(f"{G}/{running['id']}/cancel")
    assert job["archive_url"] and c.get(job["archive_url"]).status_code == 200
