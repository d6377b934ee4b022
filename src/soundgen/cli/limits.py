"""Limits the CLI puts on what a user asks for (a typo cannot bring a machine down) and on what it shows (text
from a file or a database cannot drive the terminal)."""

from __future__ import annotations

import os
import re

from soundgen.errors import SoundgenError


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity, where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_workers(asked: int | None, default: int, force: bool) -> int:
    """The number of worker processes to start: ``asked``, or ``default`` capped at the cores.

    Raises:
        SoundgenError: ``asked`` is below 1, or above the cores without ``force`` (``--workers 100000`` would
            fork that many processes).
    """
    cores = available_cpus()
    if asked is None:
        return max(1, min(default, cores))
    if asked < 1:
        raise SoundgenError(f"workers must be >= 1, got {asked}")
    if asked > cores and not force:
        raise SoundgenError(f"--workers {asked} is more than the {cores} CPU cores here; pass --force-workers to "
                            "start that many processes anyway")
    return asked


# C0 controls but tab and newline, DEL, C1 controls (ESC [ ... and the 8-bit CSI start terminal escape sequences).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """``text`` with control characters shown as ``\\x1b`` escapes, so a name read from a file or a database
    (a .sgc header's model id, an API key's name) cannot move the cursor, recolour or retitle the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
