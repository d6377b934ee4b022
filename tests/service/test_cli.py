"""`soundgen serve` refusals and `soundgen keys` through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from soundgen.cli.main import main


def test_serve_without_a_model_says_how_to_get_one(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUNDGEN_MODEL", str(tmp_path / "no-model-here"))
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--model DIR" in err and "--tiny-random-model" in err
    assert main(["serve", "--data-dir", str(tmp_path), "--model", str(tmp_path)]) == 2
    assert "not a model directory" in capsys.readouterr().err


def test_serve_beyond_loopback_requires_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--tiny-random-model", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 without API keys" in err and "soundgen keys create" in err


def test_keys_cli_in_a_subprocess(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    created = subprocess.run([sys.executable, "-m", "soundgen", "keys", "create", "--name", "ci", "--data-dir",
                              str(tmp_path)], capture_output=True, text=True, check=True)
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("sg_") and created.stderr == ""
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert "ci" in listed and "active" in listed and secret not in listed
    assert secret.encode() not in (tmp_path / "soundgen.db").read_bytes()  # stored hashed only
    assert main(["keys", "revoke", "nope", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "soundgen keys list" in err
