"""Results of a finished generation: audio in five formats, its picture, and every sound of a job in one zip."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from soundgen.service import jobs
from soundgen.service.deps import OwnerDep, ServiceDep, SessionDep
from soundgen.service.models import Job
from soundgen.service.schemas import AUDIO_FORMATS, MEDIA_TYPES, ErrorOut
from soundgen.service.storage import Storage, result_key
from soundgen.service.zipstream import Member, zip_stream

router = APIRouter(prefix="/api/v1/generations", tags=["results"],
                   responses={code: {"model": ErrorOut} for code in (400, 401, 404, 409, 421, 503)})
_EXT = {"opus": "opus", "ogg": "ogg"}


def _result_job(session: SessionDep, job_id: str, owner: str, index: int) -> Job:
    try:
        job = jobs.get_job(session, job_id, owner)
    except jobs.JobNotFound:
        raise HTTPException(404, f"no generation with id {job_id}") from None
    if job.state != "succeeded":
        raise HTTPException(409, f"generation {job_id} is {job.state}; results exist only once it succeeded")
    if not 0 <= index < job.result_count:
        raise HTTPException(404, f"generation {job_id} has results 0..{job.result_count - 1}, not {index}")
    return job


def download_name(job: Job, index: int, fmt: str) -> str:
    """A readable file name: prompt words in any script, seed and index (``rain-on-a-roof_s42_1.mp3``,
    ``pluie-sur-le-toit_s7_1.wav``, ``雨の音_s7_1.wav``)."""
    return f"{_stem(job)}_{index + 1}.{_EXT.get(fmt, fmt)}"


def archive_name(job: Job) -> str:
    """The zip of a whole job: ``rain-on-a-roof_s42.zip`` (its members are named by :func:`download_name`)."""
    return f"{_stem(job)}.zip"


def _stem(job: Job) -> str:
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", job.prompt).lower())
    slug = "-".join(words)[:48].strip("-") or "sound"
    return f"{slug}_s{job.seed}"


def content_disposition(filename: str) -> str:
    """An attachment header for ``filename``: UTF-8 (RFC 6266 ``filename*``) with an ASCII ``filename`` for old
    clients (accents dropped, ``sound`` for a name with no Latin letters left)."""
    plain = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    plain = re.sub(r"-*_-*", "_", re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._-]+", "", plain)))
    plain = plain if not plain.startswith(("_", ".", "-")) else "sound" + plain
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _missing(job_id: str, index: int) -> HTTPException:
    return HTTPException(404, f"result {index} of generation {job_id} is missing from storage (removed by hand?); "
                              "generate it again")


def _encoded(storage: Storage, job_id: str, index: int, fmt: str) -> str:
    """The storage key of result ``index`` in ``fmt``, converting (once, then cached) from the WAV."""
    key = result_key(job_id, index, fmt)
    if storage.exists(key):
        return key
    if fmt == "wav" or not storage.exists(result_key(job_id, index, "wav")):
        raise _missing(job_id, index)
    from soundgen.audio.io import encode_audio_bytes, read_audio

    audio = read_audio(storage.get(result_key(job_id, index, "wav")), name="result.wav")
    storage.put(key, encode_audio_bytes(audio.samples, audio.sample_rate, fmt))
    return key


def _send(storage: Storage, key: str, media_type: str, filename: str | None) -> Response:
    """A local file as it is (ranges work); from S3, a redirect to a presigned URL or the object streamed."""
    path = storage.local_path(key)
    headers = {"Cache-Control": "private, max-age=86400"}
    if filename:
        headers["Content-Disposition"] = content_disposition(filename)
    if path is not None:
        return FileResponse(path, media_type=media_type, headers=headers)
    url = storage.presigned_url(key, media_type=media_type, disposition=headers.get("Content-Disposition", "inline"))
    if url is not None:  # the URL expires: the redirect must not be cached
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, no-store"})
    blob = storage.stream(key)
    return StreamingResponse(blob.chunks, media_type=media_type, headers={**headers, "Content-Length": str(blob.size)})


@router.get("/{job_id}/audio/{index}.{fmt}", response_class=Response,
            responses={200: {"content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))}},
                       422: {"model": ErrorOut}})
async def get_audio(job_id: str, index: int, fmt: str, service: ServiceDep, session: SessionDep,
                    owner: OwnerDep, download: bool = False) -> Response:
    """Result ``index`` as ``wav``, ``flac``, ``opus`` (OGG/Opus), ``ogg`` (OGG/Vorbis) or ``mp3``.

    ``?download=1`` answers with a file name to save under.
    """
    if fmt not in AUDIO_FORMATS:
        raise HTTPException(422, f"fmt: unknown audio format '{fmt}'; choose one of {', '.join(AUDIO_FORMATS)}")
    job = await run_in_threadpool(_result_job, session, job_id, owner, index)
    key = await run_in_threadpool(_encoded, service.storage, job_id, index, fmt)
    return _send(service.storage, key, MEDIA_TYPES[fmt], download_name(job, index, fmt) if download else None)


@router.get("/{job_id}/image/{index}.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_image(job_id: str, index: int, service: ServiceDep, session: SessionDep, owner: OwnerDep) -> Response:
    """Waveform and spectrogram picture of result ``index``."""
    _result_job(session, job_id, owner, index)
    key = result_key(job_id, index, "png")
    if not service.storage.exists(key):
        raise _missing(job_id, index)
    return _send(service.storage, key, "image/png", None)


@router.get("/{job_id}/sounds.zip", response_class=Response, responses={200: {"content": {"application/zip": {}}},
                                                                         422: {"model": ErrorOut}})
async def get_archive(job_id: str, service: ServiceDep, session: SessionDep, owner: OwnerDep,
                      fmt: Annotated[str, Query(description="format of every sound in the zip")] = "wav") -> Response:
    """Every sound of a job in one zip, each under the name its own download has; streamed as it is written."""
    if fmt not in AUDIO_FORMATS:
        raise HTTPException(422, f"fmt: unknown audio format '{fmt}'; choose one of {', '.join(AUDIO_FORMATS)}")
    job = await run_in_threadpool(_result_job, session, job_id, owner, 0)
    # Every file is made (a conversion) before the answer starts, so that a missing one is still a 404; each is
    # opened only when the zip reaches it.
    keys = [await run_in_threadpool(_encoded, service.storage, job_id, i, fmt) for i in range(job.result_count)]
    members = [Member(download_name(job, i, fmt), _chunks(service.storage, key), job.finished_at or job.created_at)
               for i, key in enumerate(keys)]
    return StreamingResponse(zip_stream(members), media_type="application/zip",
                             headers={"Content-Disposition": content_disposition(archive_name(job)),
                                      "Cache-Control": "private, no-store"})


def _chunks(storage: Storage, key: str) -> Iterator[bytes]:
    yield from storage.stream(key).chunks
