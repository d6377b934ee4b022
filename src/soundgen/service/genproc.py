"""Run the model in a child process, behind the worker's :class:`~soundgen.service.worker.Generator` call.

Generation is Python-heavy between torch calls; in a worker *thread* it would hold the GIL most of the time
and every API request would queue behind it. In a child process it runs on its own core while the server
process only relays progress and cancellation over a pipe. The child exits by itself when the server dies
(its end of the pipe closes), so a killed server never leaves a model process behind.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from soundgen import errors
from soundgen.errors import CancelledError, SoundgenError
from soundgen.service.render import Rendered, result_files

if TYPE_CHECKING:  # the server process does not import torch; the child does
    from soundgen.pipeline import CancelFn, GenerationRequest, GenerationResult, ProgressFn, TextToSound

log = logging.getLogger(__name__)
START_TIMEOUT_S = 600.0


class GeneratorCrashed(SoundgenError):
    """The model process died while generating (out of memory, a crash in a native library)."""


@dataclass(frozen=True)
class ModelSpec:
    """Which model the child loads: the tiny random one, a directory, or the bundled default (None)."""

    tiny_random: bool
    model_dir: str | None
    torch_threads: int
    nice: int = 0  # added to the child's nice value (lower CPU priority than the API)


# The messages on the pipe (pickled; every field is a plain value, a request or a result).
@dataclass(frozen=True)
class _Generate:
    """Server to child: generate this request."""

    request: GenerationRequest


@dataclass(frozen=True)
class _Cancel:
    """Server to child: stop the generation at its next step."""


@dataclass(frozen=True)
class _Ready:
    """Child to server: the model is loaded."""


@dataclass(frozen=True)
class _Progress:
    """Child to server: ``step`` of ``total`` decoding steps are done."""

    step: int
    total: int


@dataclass(frozen=True)
class _Result:
    """Child to server: the sounds and their files."""

    result: GenerationResult
    files: list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class _Failure:
    """Child to server: loading or generating failed; ``name`` is the SoundgenError class, or "internal"."""

    name: str
    message: str


_ToServer = _Ready | _Progress | _Result | _Failure


def load_model(spec: ModelSpec) -> TextToSound:
    """Load the model that ``spec`` names."""
    import torch

    from soundgen.pipeline import TextToSound

    if spec.torch_threads > 0:
        torch.set_num_threads(spec.torch_threads)
    return TextToSound.tiny_random() if spec.tiny_random else TextToSound.load(spec.model_dir)


def _failure(e: BaseException) -> _Failure:
    if isinstance(e, SoundgenError):
        return _Failure(type(e).__name__, str(e))
    return _Failure("internal", f"internal error while generating ({type(e).__name__}: {e})")


def _child_main(conn: Connection, spec: ModelSpec) -> None:
    """Body of the child: load the model, then serve ``generate`` requests until the pipe closes."""
    if spec.nice > 0:
        with contextlib.suppress(OSError):
            os.nice(spec.nice)
    try:
        model = load_model(spec)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(_failure(e))
        return
    conn.send(_Ready())
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the server is gone
        if isinstance(msg, _Generate):
            _child_generate(conn, model, msg.request)


def _child_generate(conn: Connection, model: TextToSound, request: GenerationRequest) -> None:
    cancelled = [False]
    last = [-1]

    def should_cancel() -> bool:
        while conn.poll():  # raises EOFError when the server died: the child then ends with it
            if isinstance(conn.recv(), _Cancel):
                cancelled[0] = True
        return cancelled[0]

    def progress(step: int, total: int) -> None:
        percent = step * 100 // max(total, 1)
        if percent != last[0] or step == total:  # at most ~100 messages per job
            last[0] = percent
            conn.send(_Progress(step, total))

    try:
        result = model.generate(request, progress=progress, should_cancel=should_cancel)
        # The files too: encoding and drawing take ~15 ms of Python and numpy per sound, which in the server
        # process would hold its GIL while API requests wait.
        files = result_files(result)
    except (EOFError, OSError):
        raise SystemExit(0) from None
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent as a message
        conn.send(_failure(e))
        return
    conn.send(_Result(result, files))


class ProcessGenerator:
    """A generator whose model lives in a child process; call it like ``TextToSound.generate``.

    Raises (from the constructor): the model's loading error (e.g. ModelNotFoundError) as the same class.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(child, self.spec), name="soundgen-model", daemon=True)
        self._proc.start()
        child.close()
        if not self._conn.poll(START_TIMEOUT_S):
            self.close()
            raise GeneratorCrashed(f"the model process did not start in {START_TIMEOUT_S:.0f} s")
        try:
            msg = self._conn.recv()
        except EOFError:
            raise GeneratorCrashed(f"the model process died while loading (exit code {self._proc.exitcode})") from None
        if isinstance(msg, _Failure):
            self.close()
            raise _rebuild(msg)
        log.info("model process %d is ready", self._proc.pid)

    def __call__(self, request: GenerationRequest, progress: ProgressFn | None = None,
                 should_cancel: CancelFn | None = None) -> Rendered:
        """Generate in the child; relays progress, forwards cancellation, re-raises its errors here.

        Returns a :class:`~soundgen.service.render.Rendered`: the result with its WAV and PNG files.
        """
        with self._lock:
            self._conn.send(_Generate(request))
            cancel_sent = False
            interrupt: BaseException | None = None
            while True:
                if not cancel_sent and should_cancel is not None:
                    try:
                        if should_cancel():
                            self._conn.send(_Cancel())
                            cancel_sent = True
                    except BaseException as e:  # the worker is stopping: cancel, wait for the child, re-raise
                        interrupt = e
                        self._conn.send(_Cancel())
                        cancel_sent = True
                msg = self._receive()
                if msg is None:
                    continue
                if isinstance(msg, _Progress):
                    if progress is not None and interrupt is None:
                        progress(msg.step, msg.total)
                elif isinstance(msg, _Result):
                    if interrupt is not None:
                        raise interrupt
                    return Rendered(msg.result, msg.files)
                elif isinstance(msg, _Failure):
                    if interrupt is not None:
                        raise interrupt
                    raise _rebuild(msg)

    def _receive(self) -> _ToServer | None:
        """The next message of the child, None after 50 ms without one; restarts a dead child and raises."""
        try:
            if self._conn.poll(0.05):
                msg: _ToServer = self._conn.recv()
                return msg
        except (EOFError, OSError):
            pass
        else:
            if self._proc.is_alive():
                return None
        code = self._proc.exitcode
        log.error("the model process died (exit code %s); starting a new one", code)
        self._start()
        raise GeneratorCrashed(f"the model process died while generating (exit code {code}), for example out "
                               "of memory; try a shorter duration or fewer sounds")

    def close(self) -> None:
        """Stop the child process."""
        self._conn.close()
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


def _rebuild(failure: _Failure) -> Exception:
    """The exception the child reported, as the same SoundgenError class when it is one."""
    name, message = failure.name, failure.message
    cls = getattr(errors, name, None)
    if name == "CancelledError":
        return CancelledError(message)
    if isinstance(cls, type) and issubclass(cls, SoundgenError):
        return cls(message)
    return RuntimeError(message)
