"""The command line's contract: help works, errors are one line on stderr with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from soundgen.cli.main import main


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "soundgen" in capsys.readouterr().out


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err


def test_python_dash_m_runs_and_errors_cleanly() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "soundgen", "data", "build", "/no/such/folder", "--out", "/tmp/never"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("soundgen: error:")
    assert "/no/such/folder" in lines[0]


def test_control_characters_never_reach_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "bob\x1b]0;pwned\x07\x1b[2J"
    assert main(["keys", "create", "--name", evil, "--data-dir", str(tmp_path)]) == 0
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "bob\\x1b]0;pwned\\x07" in out
    # An error whose message carries text from a file is shown escaped too.
    assert main(["data", "build", str(tmp_path / "no\x1b[31mthing"), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "no\\x1b[31mthing" in err
