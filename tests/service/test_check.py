"""``soundgen serve --check``: one line naming every configured engine that cannot be reached (exit 1), or saying
that all can (exit 0); closed loopback ports answer at once, so these take well under a second each."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from oidc_issuer import make_key, start_issuer
from svc_helpers import free_port

from soundgen.cli.main import main


def check(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["serve", "--check", "--data-dir", str(data_dir)])
    out = capsys.readouterr()
    assert out.err == "", out.err  # nothing but the one line
    lines = out.out.splitlines()
    assert len(lines) == 1, lines
    return code, lines[0]


def test_embedded_engines_and_an_issuer_are_reachable(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    code, line = check(tmp_path, capsys)
    assert code == 0 and line.startswith("soundgen: all engines are reachable")
    assert f"sqlite:///{tmp_path}/soundgen.db" in line and f"storage {tmp_path}/storage" in line
    issuer = start_issuer([make_key("rsa-1")])
    try:
        monkeypatch.setenv("SOUNDGEN_OIDC_ISSUER", issuer.url)
        monkeypatch.setenv("SOUNDGEN_OIDC_AUDIENCE", "soundgen-api")
        code, line = check(tmp_path, capsys)
        assert code == 0 and f"OIDC issuer {issuer.url}" in line
    finally:
        issuer.stop()


def test_unreachable_engines_are_named_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pg, s3, idp = free_port(), free_port(), free_port()  # nothing listens on them
    monkeypatch.setenv("SOUNDGEN_DATABASE_URL", f"postgresql://soundgen:hunter2@127.0.0.1:{pg}/jobs")
    monkeypatch.setenv("SOUNDGEN_STORAGE_URL", "s3://soundgen-results/prod")
    for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3}", "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SOUNDGEN_OIDC_ISSUER", f"http://127.0.0.1:{idp}/realms/x")
    monkeypatch.setenv("SOUNDGEN_OIDC_CLIENT_ID", "soundgen-page")
    start = time.monotonic()
    code, line = check(tmp_path, capsys)
    assert time.monotonic() - start < 10
    assert code == 1 and line.startswith("soundgen: cannot reach ")
    assert f"database postgresql+psycopg://soundgen:***@127.0.0.1:{pg}/jobs" in line
    assert "hunter2" not in line
    assert f"storage s3://soundgen-results/prod at http://127.0.0.1:{s3}" in line
    assert f"OIDC issuer http://127.0.0.1:{idp}/realms/x" in line
    # Only what cannot be reached is named: local storage is fine.
    monkeypatch.delenv("SOUNDGEN_STORAGE_URL")
    code, line = check(tmp_path, capsys)
    assert code == 1 and "storage" not in line and "database" in line


def test_a_reachable_postgresql_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("postgres").new_database())
    monkeypatch.setenv("SOUNDGEN_DATABASE_URL", url)
    code, line = check(tmp_path, capsys)
    assert code == 0 and "database postgresql" in line, line


def test_a_reachable_bucket_passes_and_a_missing_one_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from s3_server import S3Unavailable, start_s3

    from soundgen.service.s3storage import s3_client

    try:
        server = start_s3()
    except S3Unavailable as e:
        pytest.skip(f"needs an S3 server: {e}")
    try:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(name, raising=False)
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        s3_client().create_bucket(Bucket="soundgen-check")
        monkeypatch.setenv("SOUNDGEN_STORAGE_URL", "s3://soundgen-check/results")
        code, line = check(tmp_path, capsys)
        assert code == 0 and f"storage s3://soundgen-check/results at {server.endpoint}" in line
        monkeypatch.setenv("SOUNDGEN_STORAGE_URL", "s3://soundgen-nothing/results")
        code, line = check(tmp_path, capsys)
        assert code == 1 and "s3://soundgen-nothing/results" in line and "404" in line, line
    finally:
        server.stop()


def test_the_broker_is_tried_when_one_is_configured(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    request: pytest.FixtureRequest) -> None:
    closed = free_port()
    monkeypatch.setenv("SOUNDGEN_BROKER_URL", f"redis://:hunter2@127.0.0.1:{closed}/0")
    code, line = check(tmp_path, capsys)
    assert code == 1 and line.startswith("soundgen: cannot reach broker ")
    assert f"redis://:***@127.0.0.1:{closed}/0" in line and "hunter2" not in line and "database" not in line
    monkeypatch.setenv("SOUNDGEN_BROKER_URL", "amqp://127.0.0.1:5672//")
    code, line = check(tmp_path, capsys)
    assert code == 1 and "only Redis brokers are supported" in line
    server = request.getfixturevalue("redis_server")
    monkeypatch.setenv("SOUNDGEN_BROKER_URL", server.url)
    code, line = check(tmp_path, capsys)
    assert code == 0 and f"broker {server.url}" in line, line
