"""S3 storage against a real S3-compatible server on loopback (moto's, started here; skipped without it): keys
under the prefix, streamed and presigned downloads through the API, deletes, and malformed storage URLs."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf
from s3_server import S3Server, S3Unavailable, start_s3
from svc_helpers import LiveServer, api_settings, start_server, wait_final

from soundgen.errors import ConfigError
from soundgen.service.s3storage import S3Storage, parse_s3_url, s3_client
from soundgen.service.storage_url import open_storage

G = "/api/v1/generations"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """The server, with the AWS variables of this module's clients pointing at it."""
    try:
        server = start_s3()
    except S3Unavailable as e:
        pytest.skip(f"S3 tests need a server: {e}")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        for name, value in server.env.items():
            mp.setenv(name, value)
        yield server
    server.stop()


def new_bucket() -> str:
    name = f"soundgen-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=name)
    return name


def object_keys(bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3_client().list_objects_v2(Bucket=bucket).get("Contents", []))


def test_keys_live_under_the_prefix_and_deletes_stay_inside_one_job(s3: S3Server) -> None:
    bucket = new_bucket()
    store = open_storage(f"s3://{bucket}/team/sounds/")
    assert isinstance(store, S3Storage) and store.local_path("jobs/a/0.wav") is None
    store.put("jobs/a/0.wav", b"RIFF one")
    store.put("jobs/a/0.png", b"png")
    store.put("jobs/ab/0.wav", b"RIFF other")  # shares the text "jobs/a" but is another job
    assert object_keys(bucket) == ["team/sounds/jobs/a/0.png", "team/sounds/jobs/a/0.wav", "team/sounds/jobs/ab/0.wav"]
    assert store.get("jobs/a/0.wav") == b"RIFF one" and store.exists("jobs/a/0.png")
    blob = store.stream("jobs/ab/0.wav")
    assert blob.size == 10 and b"".join(blob.chunks) == b"RIFF other"
    assert not store.exists("jobs/a/1.wav")
    with pytest.raises(FileNotFoundError):
        store.get("jobs/a/1.wav")
    with pytest.raises(FileNotFoundError):
        store.stream("jobs/a/1.wav")
    with pytest.raises(ValueError, match="malformed storage key"):
        store.put("jobs/../../etc/passwd", b"x")
    store.delete_prefix("jobs/a")
    assert object_keys(bucket) == ["team/sounds/jobs/ab/0.wav"]
    store.delete_prefix("jobs/none")  # nothing there: no error


def test_presigned_urls_answer_with_the_type_and_name_asked(s3: S3Server) -> None:
    bucket = new_bucket()
    store = open_storage(f"s3://{bucket}", presign_seconds=60)
    store.put("jobs/x/0.mp3", b"ID3 fake mp3")
    url = store.presigned_url("jobs/x/0.mp3", media_type="audio/mpeg", disposition='attachment; filename="a.mp3"')
    assert url is not None and url.startswith(s3.endpoint) and "Signature" in url
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == b"ID3 fake mp3"
    assert r.headers["content-type"] == "audio/mpeg" and 'filename="a.mp3"' in r.headers["content-disposition"]
    assert open_storage(f"s3://{bucket}").presigned_url("jobs/x/0.mp3", media_type="audio/mpeg",
                                                        disposition="inline") is None  # streaming by default


@pytest.mark.parametrize("url, needle", [
    ("s3://", "not an S3 bucket name"), ("s3://Upper_Case/x", "not an S3 bucket name"),
    ("s3://ok-bucket/a/../b", "no empty, '.' or '..' parts"), ("s3://ok-bucket/a//b", "no empty"),
    ("s3://ok-bucket/a b", "may only have parts"), ("gs://bucket/x", "not supported"),
])
def test_malformed_storage_urls_are_refused_with_the_reason(url: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        open_storage(url)


def test_s3_urls_parse_to_bucket_and_prefix() -> None:
    assert parse_s3_url("s3://my.bucket-1") == ("my.bucket-1", "")
    assert parse_s3_url("s3://b12/p/q/") == ("b12", "p/q")


def _server(tmp: Path, bucket: str, presign: int = 0) -> LiveServer:
    settings = api_settings(tmp).model_copy(update={"storage_url": f"s3://{bucket}/svc",
                                                    "storage_presign_seconds": presign})
    return start_server(settings)


def _results(live: LiveServer, prompt: str) -> dict[str, Any]:
    with live.client() as c:
        job = wait_final(c, c.post(G, json={"prompt": prompt, "duration": 0.2}).json()["id"])
    assert job["state"] == "succeeded", job
    return job


def test_the_api_streams_results_from_s3_and_deletes_them(s3: S3Server, tmp_path: Path) -> None:
    bucket = new_bucket()
    live = _server(tmp_path, bucket)
    try:
        job = _results(live, "rain on a roof")
        prefix = f"svc/jobs/{job['id']}/"
        assert object_keys(bucket) == [prefix + "0.png", prefix + "0.wav"]
        assert not (tmp_path / "storage" / "jobs").exists()  # nothing on local disk
        with live.client() as c:
            r = c.get(job["results"][0]["audio_url"])
            assert r.status_code == 200 and r.headers["content-length"] == str(len(r.content))
            wav, sr = sf.read(io.BytesIO(r.content), dtype="float32")
            assert sr == job["sample_rate"] and abs(len(wav) / sr - 0.2) < 0.05
            r = c.get(job["results"][0]["downloads"]["mp3"], params={"download": 1})
            assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
            assert "attachment" in r.headers["content-disposition"] and "rain-on-a-roof" in r.headers[
                "content-disposition"]
            assert prefix + "0.mp3" in object_keys(bucket)  # converted once, kept beside the WAV
            assert c.get(job["results"][0]["image_url"]).content.startswith(b"\x89PNG")
            assert c.get(f"{G}/{job['id']}/audio/1.wav").status_code == 404
            assert c.delete(f"{G}/{job['id']}").status_code == 204
        assert object_keys(bucket) == []
    finally:
        live.stop()


def test_the_api_redirects_to_presigned_urls_when_asked(s3: S3Server, tmp_path: Path) -> None:
    bucket = new_bucket()
    live = _server(tmp_path, bucket, presign=120)
    try:
        job = _results(live, "a door slams")
        with live.client() as c:
            r = c.get(job["results"][0]["audio_url"])
            assert r.status_code == 307 and r.headers["location"].startswith(s3.endpoint)
            assert "no-store" in r.headers["cache-control"]
            direct = httpx.get(r.headers["location"])
            assert direct.status_code == 200 and direct.headers["content-type"] == "audio/wav"
            assert direct.content == s3_client().get_object(Bucket=bucket, Key=f"svc/jobs/{job['id']}/0.wav")[
                "Body"].read()
            assert c.get(job["results"][0]["image_url"], follow_redirects=True).content.startswith(b"\x89PNG")
    finally:
        live.stop()
