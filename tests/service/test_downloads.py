"""Download names from the prompt in any script (issue 17), on a real server on loopback."""

from __future__ import annotations

from urllib.parse import unquote

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
