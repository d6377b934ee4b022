"""`soundgen data build` on the command line: outputs, summaries and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.cli.main import main
from soundgen.data.manifest import SPLITS, read_manifest


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    src = tmp_path / "sounds"
    (src / "animals").mkdir(parents=True)
    t = np.arange(16000) / 16000
    for i, name in enumerate(["dogBark.wav", "cat_meow.flac", "cow-moo.ogg"]):
        sf.write(str(src / "animals" / name), (0.4 * np.sin(2 * np.pi * (200 + 150 * i) * t)).astype(np.float32), 16000)
    (src / "animals" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    (src / "animals" / "empty.flac").write_bytes(b"")
    return src


def test_cli_builds_manifest_and_report_from_good_and_broken_files(
    mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    code = main(["data", "build", str(mixed_folder), "--out", str(out), "--workers", "1", "--sample-rate", "8000"])
    captured = capsys.readouterr()
    assert code == 0
    assert "3 clips from 5 files" in captured.out and "skipped: corrupt 1, empty 1" in captured.out
    clips = [c for s in SPLITS for c in read_manifest(out, s)]
    assert sorted(c.caption for c in clips) == ["animals cat meow", "animals cow moo", "animals dog bark"]
    assert {c.sample_rate for c in clips} == {8000} and all(c.path(out).is_file() for c in clips)
    report = json.loads((out / "report.json").read_text())
    assert {Path(s["source_file"]).name: s["reason"] for s in report["skipped"]} == {
        "broken.wav": "corrupt", "empty.flac": "empty",
    }
    assert (out / "report.md").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--split", "0.9,0.1"], "--split needs three"),
        (["--captions", "/no/such/meta.jsonl"], "captions file"),
        (["--workers", "0"], "workers must be >= 1"),
        (["--workers", "100000"], "pass --force-workers"),
        (["--split", "nan,0.5,0.5"], "split fractions"),
        (["--max-duration", "nan"], "max_duration must be a finite number"),
        (["--max-duration", "-3"], "max_duration > 0"),
        (["--silence-db", "nan"], "silence_threshold_db must be a finite number"),
        (["--silence-db", "12"], "at most 0"),
        (["--max-file-duration", "-1"], "max_file_duration must be positive"),
        (["--max-file-duration", "inf"], "max_file_duration must be a finite number"),
        (["--sample-rate", "10"], "sample rate 10 Hz"),
    ],
)
def test_cli_bad_options_are_one_line_errors(
    mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = main(["data", "build", str(mixed_folder), "--out", str(tmp_path / "ds"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_missing_source_in_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "soundgen", "data", "build", str(tmp_path / "missing"), "--out", str(tmp_path / "ds")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0] and lines[0].startswith("soundgen: error:")
    assert not (tmp_path / "ds").exists()


def test_cli_build_in_a_subprocess_with_two_workers(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    proc = subprocess.run(
        [sys.executable, "-m", "soundgen", "-q", "data", "build", str(mixed_folder), "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False, env={"SOUNDGEN_NO_PROGRESS": "1", "PATH": "/usr/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert sum(len(read_manifest(out, s)) for s in SPLITS) == 3


def test_cli_captions_from_a_csv_file(mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "path,caption,tags,licence,category,source\n"
        'animals/dogBark.wav,"a dog barks twice, loudly",dog;bark,CC0,animals/dog,farm\n'
        f"{mixed_folder / 'animals' / 'cow-moo.ogg'},a cow moos,,CC-BY-4.0,,\n"
    )
    out = tmp_path / "ds"
    assert main(["data", "build", str(mixed_folder), "--out", str(out), "--workers", "1", "--captions", str(meta)]) == 0
    clips = {Path(c.source_file).name: c for s in SPLITS for c in read_manifest(out, s)}
    dog, cow, cat = clips["dogBark.wav"], clips["cow-moo.ogg"], clips["cat_meow.flac"]
    assert (dog.caption, dog.tags, dog.licence, dog.category, dog.source) == (
        "a dog barks twice, loudly", ["dog", "bark"], "CC0", "animals/dog", "farm",
    )
    assert (cow.caption, cow.tags, cow.licence, cow.category, cow.source) == (
        "a cow moos", ["animals", "cow", "moo"], "CC-BY-4.0", "animals", "sounds",
    )
    assert (cat.caption, cat.licence) == ("animals cat meow", "unknown")


def test_forced_workers_beyond_the_cores_are_allowed(
    mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    assert main(["data", "build", str(mixed_folder), "--out", str(out), "--workers", "500", "--force-workers"]) == 0
    assert "3 clips from 5 files" in capsys.readouterr().out
