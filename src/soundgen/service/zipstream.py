"""A zip archive written while it is sent: memory holds one chunk of one member at a time, never the archive.

``zipfile`` writes to a stream it cannot seek by putting each member's sizes and CRC after its data (a data
descriptor), which every unzip tool reads. Members are stored as they are: the audio formats are compressed
already and WAV of generated sound gains little from deflate.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass
class Member:
    """One file of the archive: its name and its bytes in chunks."""

    name: str
    chunks: Iterable[bytes]
    modified: float  # seconds since the epoch


class _Sink(io.RawIOBase):
    """A write-only stream that keeps what was written until :meth:`take` hands it on."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buf += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


def zip_stream(members: Iterable[Member]) -> Iterator[bytes]:
    """The bytes of a zip archive of ``members``, chunk by chunk (the last one is the central directory)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for member in members:
            stamp = time.localtime(max(member.modified, 315532800.0))[:6]  # zip times start in 1980
            info = zipfile.ZipInfo(member.name, date_time=stamp)
            with archive.open(info, "w") as out:
                for chunk in member.chunks:
                    out.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    if data := sink.take():
        yield data
