"""The command line's contract: help works, errors are one line on stderr with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

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
