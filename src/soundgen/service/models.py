"""Database tables: jobs (the source of truth), their state transitions, and API keys.

Times are seconds since the epoch (float) so that SQLite and PostgreSQL store and order them the same way.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from soundgen.lm.sampling_params import SEED, TOP_K

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATES: tuple[JobState, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE_STATES: frozenset[str] = frozenset({"queued", "running"})
# A job's sampling settings are columns of their own, checked with soundgen.lm.sampling_params's limits before they
# are stored. The integer ones are INTEGER columns (32-bit signed on PostgreSQL): the limits must fit them.
INTEGER_MAX = 2**31 - 1
assert SEED.maximum <= INTEGER_MAX and TOP_K.maximum <= INTEGER_MAX, "a sampling limit exceeds its INTEGER column"


class Base(DeclarativeBase):
    """Declarative base of the service's tables."""


class Job(Base):
    """One generation request and everything the service knows about it."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_owner_created", "owner", "created_at"),
        UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)  # None: guided against no text
    # A continuation: what its sounds start with ("upload", or "<job id>/<index>" of a result) and how many seconds
    # of it (the audio itself is the job's prompt.wav in storage); None for a sound made from nothing.
    continues: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prompt_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    cfg_coef: Mapped[float] = mapped_column(Float)
    temperature: Mapped[float] = mapped_column(Float)
    top_k: Mapped[int] = mapped_column(Integer)
    top_p: Mapped[float] = mapped_column(Float)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_count: Mapped[int] = mapped_column(Integer, default=0)
    sample_rate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result_duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    elapsed: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # A running job's claim holds until this time; its worker moves it on while it runs (a heartbeat), and any
    # server puts a job whose lease ran out back in the queue (its worker died). None: not running.
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    # With a broker (Celery on Redis): when the job's task was sent; None: not sent yet (sent again by a sweep).
    dispatched_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class JobTransition(Base):
    """Audit log: one row per state change of a job (lets anyone check that a job ended exactly once)."""

    __tablename__ = "job_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Float)


class ApiKey(Base):
    """An API key; only its SHA-256 hash is stored, the key itself is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
