"""The dataset lock and the build's worker processes: a killed build leaves nothing running and nothing locked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.data.build import BuildConfig, build_dataset
from soundgen.data.build_pool import execute_pool
from soundgen.data.build_worker import DataSourceError, ItemResult, ProcessSettings, SourceItem, scan_sources

HOLD = """
import fcntl, sys
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
f.truncate(0); f.write(sys.argv[2]); f.flush()
print("held", flush=True)
sys.stdin.read()
"""


def tones(folder: Path, n: int, seconds: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(44100 * seconds)) / 44100
    for i in range(n):
        x = 0.4 * np.sin(2 * np.pi * (200 + 17 * i) * t)
        sf.write(str(folder / f"tone{i:03d}.wav"), np.stack([x, x], 1).astype(np.float32), 44100)
    return folder


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def hold_lock(lock: Path, record: str) -> subprocess.Popen[str]:
    """Another process holding the dataset lock (flock) whose lock file records ``record``."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), record], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_build_leaves_no_workers_and_no_lock(tmp_path: Path) -> None:
    src = tones(tmp_path / "src", 40, 3.0)
    out = tmp_path / "ds"
    env = {**os.environ, "SOUNDGEN_NO_PROGRESS": "1"}
    build = subprocess.Popen(
        [sys.executable, "-m", "soundgen", "-q", "data", "build", str(src), "--out", str(out), "--workers", "2"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(children_of(build.pid)) < 2 and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(build.pid, signal.SIGSTOP)  # freeze the build and its workers mid-work
    workers = children_of(build.pid)
    assert build.poll() is None and len(workers) == 2, "the build ended before its workers were seen"
    build.kill()  # SIGKILL: no cleanup runs in the build itself
    build.wait()
    os.killpg(build.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = [w for w in workers if alive(w)]
    for w in orphans:  # leave nothing running when the test fails
        os.kill(w, signal.SIGKILL)
    assert not orphans, "the killed build's workers outlived it"
    again = build_dataset([src], out, config=BuildConfig.tiny())
    assert again.files == 40 and again.total_clips > 0


def test_a_stale_lock_of_a_dead_build_is_taken_over(tmp_path: Path) -> None:
    src = tones(tmp_path / "src", 1, 0.3)
    lock = tmp_path / "ds" / ".cache" / "lock"
    # Orphans of a dead build still hold the lock; the file names the dead build.
    holder = hold_lock(lock, f"{dead_pid()} {socket.gethostname()}\n")
    try:
        assert build_dataset([src], tmp_path / "ds", config=BuildConfig.tiny()).total_clips == 1
    finally:
        holder.communicate("")


def test_a_live_build_keeps_its_lock_and_is_named(tmp_path: Path) -> None:
    src = tones(tmp_path / "src", 1, 0.3)
    lock = tmp_path / "ds" / ".cache" / "lock"
    holder = hold_lock(lock, "")
    try:
        lock.write_text(f"{holder.pid} {socket.gethostname()}\n")
        with pytest.raises(DataSourceError, match=rf"another 'soundgen data build' \(PID {holder.pid} on "):
            build_dataset([src], tmp_path / "ds", config=BuildConfig.tiny())
    finally:
        holder.communicate("")
    assert build_dataset([src], tmp_path / "ds", config=BuildConfig.tiny()).total_clips == 1


def test_two_builds_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    from soundgen.data.build_lock import dataset_lock

    with dataset_lock(tmp_path), pytest.raises(DataSourceError, match="in this process"):
        build_dataset([tones(tmp_path / "src", 1, 0.3)], tmp_path, config=BuildConfig.tiny())


def count_siblings(item: SourceItem, settings: ProcessSettings, out_dir: str) -> ItemResult:
    """A worker that reports how many processes its parent has started (itself included)."""
    return ItemResult(item.cache_key(settings), item.source_file, "ok", detail=str(len(children_of(os.getppid()))))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_pool_starts_no_more_processes_than_files(tmp_path: Path) -> None:
    items, _ = scan_sources([tones(tmp_path / "src", 3, 0.1)])
    settings = BuildConfig.tiny().process_settings()
    before = len(children_of(os.getpid()))  # servers or helpers other tests of this process left running
    results = list(execute_pool(items, settings, tmp_path / "ds", 64, fn=count_siblings, context="fork"))
    assert len(results) == 3 and max(int(r.detail) for r in results) - before <= 3
