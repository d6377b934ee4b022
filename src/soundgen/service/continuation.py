"""Audio a generation continues: an uploaded clip, or a result it extends.

At submission the audio is decoded, checked (not empty, not too long, finite) and converted to a WAV file kept
beside the job's results (``jobs/<id>/prompt.wav``), so the worker never sees the upload's own format, a deleted
source cannot break a queued job, and deleting the job removes it. The worker reads it back and hands it to the
pipeline, which encodes it with the codec: every sound starts with it and goes on for ``duration`` seconds.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np

from soundgen.errors import InvalidRequestError, SoundgenError
from soundgen.service import jobs
from soundgen.service.db import Database
from soundgen.service.schemas import GenerationCreate
from soundgen.service.storage import Storage, check_key, result_key

MIN_SECONDS = 0.1  # shorter than a few codec frames: nothing to continue


@dataclass
class PromptAudio:
    """The audio a job continues: its WAV bytes, length, and where it came from (``upload`` or ``<job>/<index>``)."""

    wav: bytes
    seconds: float
    source: str


def prompt_key(job_id: str) -> str:
    """The storage key of the audio job ``job_id`` continues."""
    return check_key(f"jobs/{job_id}/prompt.wav")


def wants_audio(req: GenerationCreate) -> bool:
    """Whether ``req`` continues audio."""
    return req.continue_from is not None or req.audio_prompt is not None


def prompt_audio(req: GenerationCreate, owner: str, db: Database, storage: Storage, max_seconds: float) -> PromptAudio:
    """Decode, check and convert the audio ``req`` continues.

    Raises:
        InvalidRequestError: both sources or neither, a result that is not the caller's, an upload that is not
            base64 or not audio, or audio too short or too long; the message starts with the field's name.
    """
    if req.continue_from is not None and req.audio_prompt is not None:
        raise InvalidRequestError("continue_from: give continue_from (a result) or audio_prompt (a clip), not both")
    if req.continue_from is not None:
        field, source = "continue_from", req.continue_from
        data = _result_wav(req.continue_from, owner, db, storage)
    elif req.audio_prompt is not None:
        field, source = "audio_prompt", "upload"
        data = _upload(req.audio_prompt)
    else:
        raise InvalidRequestError("continue_from: nothing to continue")
    from soundgen.audio.io import encode_audio_bytes, read_audio

    try:
        audio = read_audio(data, name="the result" if req.continue_from else "the clip", max_duration=max_seconds)
    except SoundgenError as e:
        raise InvalidRequestError(f"{field}: {e}") from None
    seconds = audio.samples.shape[-1] / audio.sample_rate
    if seconds > max_seconds:
        raise InvalidRequestError(f"{field}: the audio is {seconds:.1f} s long; at most {max_seconds:g} s can be "
                                  "continued: trim it, or continue its end")
    if seconds < MIN_SECONDS:
        raise InvalidRequestError(f"{field}: the audio is {seconds:.2f} s long; give at least {MIN_SECONDS:g} s")
    return PromptAudio(encode_audio_bytes(audio.samples, audio.sample_rate, "wav"), seconds, source)


def _result_wav(ref: str, owner: str, db: Database, storage: Storage) -> bytes:
    job_id, index = ref.split("/")
    missing = InvalidRequestError(f"continue_from: you have no sound {ref} (it may have been deleted)")
    with db.session() as s:
        try:
            job = jobs.get_job(s, job_id, owner)
        except jobs.JobNotFound:
            raise missing from None
        if job.state != "succeeded" or not 0 <= int(index) < job.result_count:
            raise missing
    key = result_key(job_id, int(index), "wav")
    if not storage.exists(key):
        raise missing
    return storage.get(key)


def _upload(text: str) -> bytes:
    try:
        data = base64.b64decode(text.split(",", 1)[-1] if text.startswith("data:") else text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("audio_prompt: not base64; send the bytes of an audio file base64-encoded") from None
    if not data:
        raise InvalidRequestError("audio_prompt: empty; send the bytes of an audio file base64-encoded")
    return data


def load_prompt(storage: Storage, job_id: str) -> tuple[np.ndarray, int]:
    """The audio ``[C, T]`` and sample rate job ``job_id`` continues (its stored WAV).

    Raises:
        InvalidRequestError: the file is gone from storage (removed by hand).
    """
    from soundgen.audio.io import read_audio

    key = prompt_key(job_id)
    if not storage.exists(key):
        raise InvalidRequestError("the audio this job continues is missing from storage (removed by hand?); "
                                  "submit it again")
    audio = read_audio(storage.get(key), name="prompt.wav")
    return audio.samples, audio.sample_rate
