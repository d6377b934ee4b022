"""What each spawned rank of tests/train/test_distributed.py runs (a plain module, so spawned processes can
import it by name: the test puts this folder on ``sys.path`` before spawning).

A worker joins a gloo process group of ``world`` ranks on a loopback port and, for each job (a codec run when
its name starts with ``codec``, else an LM run), trains the tiny config in the job's run directory to each of
the job's ``steps`` in turn (a later call resumes), then writes what it saw to ``OUT/rank{R}.pt``: per job the
state it would have checkpointed at every save, the files it opened for writing and what the training calls
returned; and its pid.
"""

from __future__ import annotations

import builtins
import copy
import io
import os
from pathlib import Path
from typing import Any

import torch


def run(rank: int, world: int, port: int, jobs: dict[str, dict[str, Any]], out: str) -> None:
    """Entry point of one rank (``torch.multiprocessing.spawn`` passes ``rank`` first).

    ``jobs`` maps a name to ``run`` and ``data`` (codec) or ``tokens`` (LM) paths and ``steps`` (a list).
    """
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["SOUNDGEN_NO_PROGRESS"] = "1"
    torch.set_num_threads(1)
    from soundgen.train.common import RunDir

    written: list[str] = []
    saves: dict[int, dict[str, Any]] = {}
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike) and any(c in mode for c in "wax+"):
            written.append(os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    def spy_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            written.append(os.fspath(path))
        return real_os_open(path, flags, *args, **kwargs)

    real_run_save = RunDir.save

    def spy_run_save(self: RunDir, step: int, state: dict[str, Any], keep: int = 3) -> Path:
        saves[step] = copy.deepcopy(state)
        return real_run_save(self, step, state, keep)

    builtins.open = io.open = spy_open  # type: ignore[assignment]
    os.open = spy_os_open  # type: ignore[assignment]
    RunDir.save = spy_run_save  # type: ignore[method-assign]
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    seen: dict[str, Any] = {"pid": os.getpid()}
    try:
        for name, job in jobs.items():
            kind = "codec" if name.startswith("codec") else "lm"
            results = [_train(kind, job, n) for n in job["steps"]]
            seen[name] = {"saves": dict(saves), "written": list(written), "results": results}
            saves.clear()
            written.clear()
    finally:
        torch.distributed.destroy_process_group()
        builtins.open = io.open = real_open
        os.open = real_os_open
    torch.save(seen, Path(out) / f"rank{rank}.pt")


def _train(kind: str, paths: dict[str, str], steps: int) -> dict[str, Any]:
    if kind == "codec":
        from soundgen.codec import CodecRunConfig
        from soundgen.train.codec import train_codec

        res = train_codec(CodecRunConfig.tiny(), paths["data"], paths["run"], steps=steps)
        return {"step": res.step, "loss": res.losses["loss/mel"], "validated": bool(res.validation)}
    from soundgen.lm.config import LMRunConfig
    from soundgen.train.lm import train_lm

    cfg = LMRunConfig.tiny()
    cfg.train.steps = steps
    lm_res = train_lm(cfg, paths["tokens"], paths["run"])
    return {"step": lm_res.step, "loss": lm_res.losses["loss"], "validated": bool(lm_res.validation)}
