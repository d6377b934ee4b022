"""Multi-process training: 2 CPU ranks over gloo train the tiny codec and LM in lockstep; only rank 0 writes.

The ranks run in processes spawned with ``torch.multiprocessing`` (see ``dist_worker.py``) and, for the real
command line, under ``python -m torch.distributed.run``.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from soundgen import distributed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORLD = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory, tiny_codec_data: Path, tiny_tokens: Path) -> dict[str, Any]:
    """One spawn of 2 gloo ranks that train the tiny codec, then the tiny LM, to step 3 and resumed to step 5,
    and the tiny LM to step 5 in one go.

    Returns the run directories and what each rank recorded (``dist_worker.run``).
    """
    import torch.multiprocessing as mp

    root = tmp_path_factory.mktemp("dist_runs")
    jobs = {
        "codec": {"data": str(tiny_codec_data), "run": str(root / "codec"), "steps": [3, 5]},
        "lm": {"tokens": str(tiny_tokens), "run": str(root / "lm"), "steps": [3, 5]},
        "lm_straight": {"tokens": str(tiny_tokens), "run": str(root / "lm_straight"), "steps": [5]},
    }
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.syspath_prepend(str(HERE))  # spawned children inherit sys.path and import the worker by name
        mpatch.setenv("OMP_NUM_THREADS", "1")
        worker = importlib.import_module("dist_worker")
        mp.spawn(worker.run, args=(WORLD, _free_port(), jobs, str(root)), nprocs=WORLD, join=True)
    ranks = [torch.load(root / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    return {"runs": {k: Path(v["run"]) for k, v in jobs.items()}, "ranks": ranks}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _progress(run: Path) -> list[tuple[int, int]]:
    rows = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    return [(row["from_step"], row["step"]) for row in rows]


def _written(rank: dict[str, Any], run: Path) -> set[str]:
    """Names of the files a rank opened for writing under ``run`` (temporary ``.NAME.XXXX.part`` as NAME)."""
    names = {Path(p).name for p in rank["written"] if Path(p).resolve().is_relative_to(run.resolve())}
    return {n[1:].rsplit(".", 2)[0] if n.endswith(".part") else n for n in names}


def _checkpoint(run: Path, step: int) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(run / "checkpoints" / f"step_{step:08d}.pt", weights_only=True)
    return state


def test_helpers_outside_a_process_group_are_single_process_no_ops() -> None:
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    t = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_sum(t) is t and distributed.broadcast(t) is t and t.tolist() == [1.0, 2.0]
    module = torch.nn.Linear(2, 2)
    assert distributed.wrap_ddp(module, torch.device("cpu")) is module
    assert distributed.rank_seed(7, 3) == 10  # rank 0 keeps the single-process seed
    assert len({distributed.rank_seed(7, 3, r) for r in range(4)}) == 4


def test_two_cpu_ranks_train_the_codec_in_lockstep_and_resume(two_ranks: dict[str, Any]) -> None:
    run = two_ranks["runs"]["codec"]
    r0, r1 = (rank["codec"] for rank in two_ranks["ranks"])
    # Both calls ran on both ranks, on different batches (different losses), the second resuming at step 3.
    assert [r["step"] for r in r0["results"]] == [r["step"] for r in r1["results"]] == [3, 5]
    assert r0["results"][0]["loss"] != r1["results"][0]["loss"]
    assert [r["validated"] for r in r0["results"] + r1["results"]] == [True, True, False, False]
    assert _progress(run) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    # Identical weights, codebooks and discriminators on both ranks after every save (the disc starts at step 2).
    assert sorted(r0["saves"]) == sorted(r1["saves"]) == [2, 3, 4, 5]
    for step in (3, 5):
        _assert_same(r0["saves"][step]["codec"], r1["saves"][step]["codec"])
        _assert_same(r0["saves"][step]["disc"], r1["saves"][step]["disc"])
    codebook = "quantizer.layers.0.codebook"
    assert codebook in r0["saves"][5]["codec"]
    assert not torch.equal(r0["saves"][3]["codec"][codebook], r0["saves"][5]["codec"][codebook])
    # Only rank 0 wrote into the run directory: config, checkpoints, progress, TensorBoard.
    assert _written(r1, run) == set()
    assert {"config.yaml", "progress.jsonl", *(f"step_{s:08d}.pt" for s in (2, 3, 4, 5))} <= _written(r0, run)
    _assert_same(_checkpoint(run, 5)["codec"], r1["saves"][5]["codec"])
    events = [p.name for p in (run / "tb").iterdir()]
    assert events and all(f".{two_ranks['ranks'][0]['pid']}." in name for name in events)


def test_two_cpu_ranks_train_the_lm_in_lockstep_and_resume(two_ranks: dict[str, Any]) -> None:
    run = two_ranks["runs"]["lm"]
    r0, r1 = (rank["lm"] for rank in two_ranks["ranks"])
    assert [r["step"] for r in r0["results"]] == [r["step"] for r in r1["results"]] == [3, 5]
    assert r0["results"][0]["loss"] != r1["results"][0]["loss"]
    assert [r["validated"] for r in r0["results"] + r1["results"]] == [True, True, False, False]
    assert sorted(r0["saves"]) == sorted(r1["saves"]) == [3, 5]
    for step in (3, 5):
        _assert_same(r0["saves"][step]["model"], r1["saves"][step]["model"])
        _assert_same(r0["saves"][step]["conditioner"], r1["saves"][step]["conditioner"])
    assert _written(r1, run) == set()
    assert {"config.yaml", "tokens.json", "step_00000003.pt", "step_00000005.pt"} <= _written(r0, run)
    assert _progress(run) == [(0, 3), (3, 5)]
    _assert_same(_checkpoint(run, 5)["model"], r1["saves"][5]["model"])
    # Batches depend on (seed, step, rank) only: resuming at step 3 ends where training straight to 5 does.
    _assert_same(_checkpoint(two_ranks["runs"]["lm_straight"], 5)["model"], r0["saves"][5]["model"])


def test_torchrun_command_line_trains_the_codec_on_two_processes(tiny_codec_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SOUNDGEN_NO_PROGRESS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(WORLD),
        "-m", "soundgen", "codec", "train", "--config", str(ROOT / "configs" / "codec" / "tiny.yaml"),
        "--data", str(tiny_codec_data), "--out", str(run), "--train.steps=3",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "trained to step 3" in proc.stdout
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002.pt", "step_00000003.pt"]
    assert _progress(run) == [(0, 2), (2, 3)]  # one writer: one row per save
    rows = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert all(row["device"].startswith("2 x CPU") for row in rows)
    assert len(list((run / "tb").iterdir())) == 1
