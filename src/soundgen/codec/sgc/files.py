"""Compress audio files to ``.sgc`` and back with a codec, streaming, in bounded memory.

Audio that libsndfile can open is read, resampled (soxr streaming) and encoded block by block, so an hour of
audio never sits in memory whole; other formats go through :func:`soundgen.audio.io.read_audio` (ffmpeg). Decoding
writes the audio as it is decoded (:class:`~soundgen.audio.writer.AudioFileWriter`), in every output format.
With the codec's entropy tables (:mod:`soundgen.codec.entropy`) the codes are range-coded (``.sgc`` version 3).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from soundgen.audio.archive import MEMBER_SEPARATOR
from soundgen.audio.entropy import EntropyTables
from soundgen.audio.io import read_audio, resample, to_channels
from soundgen.audio.writer import AudioFileWriter
from soundgen.codec.io import weights_hash
from soundgen.codec.model import Codec
from soundgen.codec.sgc.container import SgcHeader, SgcReader, SgcWriter, bits_for
from soundgen.errors import AudioReadError, CorruptFileError, InvalidAudioError
from soundgen.utils import progress, write_error

log = logging.getLogger(__name__)

BLOCK_SECONDS = 10.0
DECODE_FRAMES = 256


@dataclass
class EncodeResult:
    """What :func:`encode_file` wrote.

    Attributes:
        header: the file's header.
        bytes_written: the file's size in bytes.
        duration: seconds of audio.
        payload_bytes: bytes of the codes alone (no header, chunk framing or trailer).
        version: the ``.sgc`` version written (3: range-coded).
    """

    header: SgcHeader
    bytes_written: int
    duration: float
    payload_bytes: int = 0
    version: int = 2

    @property
    def bitrate(self) -> float:
        """True bitrate of the file in kbps: file bytes x 8 over the audio's duration, header included."""
        return self.bytes_written * 8 / max(self.duration, 1e-9) / 1000.0

    @property
    def payload_bitrate(self) -> float:
        """Bitrate of the codes alone in kbps (what the container adds left out)."""
        return self.payload_bytes * 8 / max(self.duration, 1e-9) / 1000.0


def model_hash(codec: Codec) -> str:
    """The codec's weight hash (computed once and cached on the codec)."""
    if not codec.model_hash:
        codec.model_hash = weights_hash(codec)
    return codec.model_hash


def _blocks_soundfile(path: Path, rate: int, channels: int) -> Iterator[np.ndarray] | None:
    """Blocks ``[C, t]`` float32 at ``rate``/``channels`` straight from libsndfile, or None if it cannot open it."""
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None

    def gen() -> Iterator[np.ndarray]:
        with f:
            if f.frames == 0:
                raise AudioReadError(f"{path}: the file holds no audio samples (zero length)")
            stream = (
                soxr.ResampleStream(f.samplerate, rate, channels, dtype="float32") if f.samplerate != rate else None
            )
            block = max(1, int(BLOCK_SECONDS * f.samplerate))
            while True:
                try:
                    data = f.read(block, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as e:
                    raise AudioReadError(f"{path}: cannot decode: {e}") from e
                last = data.shape[0] < block
                if not np.isfinite(data).all():
                    raise InvalidAudioError(f"{path}: the audio holds NaN or infinite samples")
                x = to_channels(np.ascontiguousarray(data.T), channels)
                if stream is not None:
                    x = stream.resample_chunk(np.ascontiguousarray(x.T), last=last).T
                yield np.ascontiguousarray(x, dtype=np.float32)
                if last:
                    return

    return gen()


def _audio_blocks(path: Path, rate: int, channels: int) -> tuple[Iterator[np.ndarray], int, int]:
    """Blocks of the input at the codec's format, plus the input's own sample rate and channels."""
    if MEMBER_SEPARATOR not in str(path) and not path.is_file():
        raise AudioReadError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
        blocks = _blocks_soundfile(path, rate, channels)
        if blocks is not None:
            return blocks, int(info.samplerate), int(info.channels)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    audio = read_audio(path)
    samples = resample(to_channels(audio.samples, channels), audio.sample_rate, rate)
    step = int(BLOCK_SECONDS * rate)
    return iter([samples[:, i : i + step] for i in range(0, samples.shape[1], step)]), audio.sample_rate, audio.channels


def encode_file(
    codec: Codec,
    src: str | Path,
    dst: str | Path,
    *,
    chunk_frames: int = 1500,
    show_progress: bool = True,
    tables: EntropyTables | None = None,
) -> EncodeResult:
    """Encode an audio file (any rate, channels, readable format) to ``dst`` (.sgc) with ``codec.n_codebooks``.

    Args:
        codec: the codec (its ``n_codebooks`` sets the bitrate).
        src: the audio file.
        dst: the ``.sgc`` file to write (atomically).
        chunk_frames: most frames per chunk.
        show_progress: a progress bar over frames.
        tables: the codec's entropy tables (:func:`soundgen.codec.entropy.load_tables`): range-code the codes
            (version 3); None: bit-pack them (version 2).

    Raises:
        AudioReadError / InvalidAudioError: unreadable input.
        OutputWriteError: ``dst`` cannot be written (permission, a file in the way, full disk).
    """
    src = Path(src)
    if tables is not None and (tables.codebook_size != codec.codebook_size or tables.n_codebooks < codec.n_codebooks):
        raise CorruptFileError(
            f"the entropy tables ({tables.n_codebooks} codebooks of {tables.codebook_size}) do not fit the codec "
            f"({codec.n_codebooks} of {codec.codebook_size}); fit them again with 'soundgen codec fit-entropy'"
        )
    blocks, in_rate, in_channels = _audio_blocks(src, codec.sample_rate, codec.channels)
    writer = SgcWriter(sgc_header(codec, codec.n_codebooks, chunk_frames, in_rate, in_channels), tables=tables)
    counter = {"length": 0}
    device = next(codec.parameters()).device

    def tensors() -> Iterator[torch.Tensor]:
        for block in blocks:
            counter["length"] += block.shape[1]
            yield torch.from_numpy(block)[None].to(device)
        pad = (-counter["length"]) % codec.hop_length
        yield torch.zeros(1, codec.channels, pad, device=device)

    bar = progress(desc=f"encode {src.name}", unit="frame", disable=not show_progress)
    for codes in codec.stream_encode(tensors()):
        writer.add(codes[0].cpu().numpy())
        bar.update(codes.shape[-1])
    bar.close()
    if counter["length"] == 0:
        raise AudioReadError(f"{src}: the file holds no audio samples (zero length)")
    try:
        written = writer.finish(dst, length=counter["length"])
    except OSError as e:
        raise write_error(dst, e) from e
    duration = counter["length"] / codec.sample_rate
    return EncodeResult(written, Path(dst).stat().st_size, duration, writer.payload_bytes, writer.version)


def sgc_header(codec: Codec, n_codebooks: int, chunk_frames: int, in_rate: int, in_channels: int) -> SgcHeader:
    """The header of a file of ``codec``'s codes (frame count and length filled in when it is finished)."""
    return SgcHeader(
        model_id=codec.model_id,
        model_hash=model_hash(codec),
        sample_rate=codec.sample_rate,
        channels=codec.channels,
        hop_length=codec.hop_length,
        n_codebooks=n_codebooks,
        codebook_size=codec.codebook_size,
        bits_per_code=bits_for(codec.codebook_size),
        frame_count=0,
        length=0,
        chunk_frames=chunk_frames,
        original_sample_rate=in_rate,
        original_channels=in_channels,
    )


def write_codes(
    codec: Codec,
    codes: np.ndarray,
    length: int,
    dst: str | Path,
    *,
    tables: EntropyTables | None = None,
    chunk_frames: int = 1500,
) -> EncodeResult:
    """Write codes ``[K, F]`` of ``codec`` (e.g. generated ones, or a prefix of a clip's codes) as a ``.sgc`` file
    of ``length`` samples, just as :func:`encode_file` would have.

    Raises:
        OutputWriteError: ``dst`` cannot be written.
    """
    header = sgc_header(codec, codes.shape[0], chunk_frames, codec.sample_rate, codec.channels)
    writer = SgcWriter(header, tables=tables)
    writer.add(codes)
    try:
        written = writer.finish(dst, length=length)
    except OSError as e:
        raise write_error(dst, e) from e
    duration = length / codec.sample_rate
    return EncodeResult(written, Path(dst).stat().st_size, duration, writer.payload_bytes, writer.version)


def check_compatible(codec: Codec, header: SgcHeader, path: Path) -> None:
    """Refuse to decode a file made by other weights or for another audio format."""
    if header.model_hash != model_hash(codec):
        raise CorruptFileError(
            f"{path} was encoded by codec '{header.model_id}' ({header.model_hash[:12]}), not by the loaded codec "
            f"'{codec.model_id}' ({model_hash(codec)[:12]}); decode it with --model pointing at that model"
        )
    same = (header.sample_rate, header.channels, header.hop_length, header.codebook_size)
    if same != (codec.sample_rate, codec.channels, codec.hop_length, codec.codebook_size):
        raise CorruptFileError(f"{path}: its audio format does not match the codec's")
    if header.n_codebooks > codec.max_codebooks:
        raise CorruptFileError(f"{path} uses {header.n_codebooks} codebooks; the codec has {codec.max_codebooks}")


def decode_file(
    codec: Codec,
    src: str | Path,
    dst: str | Path,
    *,
    sample_rate: int | None = None,
    tables: EntropyTables | None = None,
) -> SgcHeader:
    """Decode ``src`` (.sgc) to an audio file ``dst``; at the codec's rate unless ``sample_rate`` is given.

    ``tables`` are the codec's entropy tables, needed by range-coded (version 3) files.

    The audio is written as it is decoded, in any output format, so memory does not grow with the file's length.
    The output appears only when the whole input was read and verified (checksums included): until then it is a
    temporary file beside ``dst``, removed on any failure.

    Raises:
        CorruptFileError: damaged file, or one made by another model or with other entropy tables.
        AudioWriteError: an output format that cannot be written (before anything is decoded).
        OutputWriteError: ``dst`` cannot be written (permission, a file in the way, full disk).
    """
    src, dst = Path(src), Path(dst)
    rate = sample_rate or codec.sample_rate
    out = AudioFileWriter(dst, rate, codec.channels)  # an unsupported output format fails now, not after decoding
    with SgcReader(src) as reader:
        header = reader.header
        check_compatible(codec, header, src)
        reader.check_tables(tables)
        # Decode in pieces of DECODE_FRAMES so that activations stay small whatever the chunk size.
        chunks = (
            torch.from_numpy(c[:, i : i + DECODE_FRAMES])[None].to(next(codec.parameters()).device)
            for c in reader.chunks(tables)
            for i in range(0, c.shape[1], DECODE_FRAMES)
        )
        audio = _trimmed(codec.stream_decode(chunks), header.length)
        if rate != codec.sample_rate:
            audio = _resampled(audio, codec.sample_rate, rate, codec.channels)
        with out:
            for block in audio:
                out.write(block)
    return header


def _trimmed(chunks: Iterator[torch.Tensor], length: int) -> Iterator[np.ndarray]:
    done = 0
    for wav in chunks:
        block = wav[0].float().cpu().numpy()[:, : max(0, length - done)]
        done += block.shape[1]
        if block.shape[1]:
            yield block


def _resampled(blocks: Iterator[np.ndarray], sr_in: int, sr_out: int, channels: int) -> Iterator[np.ndarray]:
    stream = soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32")
    for block in blocks:
        yield stream.resample_chunk(np.ascontiguousarray(block.T)).T
    yield stream.resample_chunk(np.zeros((0, channels), np.float32), last=True).T
