"""Service settings, read from the environment (``SOUNDGEN_*``) with embedded defaults.

Everything has a default that runs on one machine with nothing else installed: SQLite under the data
directory, local file storage beside it, one in-process worker. The URLs are the seams where other engines plug
in without changing the API: ``database_url`` (``postgresql+psycopg://...``) and ``storage_url``
(``s3://bucket/prefix``, with boto3's usual ``AWS_*`` variables for the endpoint, region and credentials).
``oidc_issuer`` adds OpenID Connect sign-in beside API keys (see ``oidc.py``). ``broker_url`` (``redis://...``) moves
generation out of the server into ``soundgen worker`` processes (Celery on Redis, see ``broker.py``).
"""

from __future__ import annotations

import functools
import ipaddress
import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_data_dir() -> Path:
    """``$SOUNDGEN_HOME`` if set, else ``~/.local/share/soundgen``."""
    home = os.environ.get("SOUNDGEN_HOME")
    return Path(home).expanduser() if home else Path.home() / ".local" / "share" / "soundgen"


@functools.lru_cache(maxsize=64)
def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceSettings(BaseSettings):
    """Settings of ``soundgen serve``; each field can be set as ``SOUNDGEN_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SOUNDGEN_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None  # default: sqlite:///<data_dir>/soundgen.db; or postgresql+psycopg://...
    storage_url: str | None = None  # default: file://<data_dir>/storage; or s3://bucket/prefix
    # S3 only: above 0, downloads answer 307 to a presigned URL valid this many seconds (the client then needs a
    # route to the bucket); 0 streams them through the server.
    storage_presign_seconds: int = Field(default=0, ge=0, le=7 * 24 * 3600)
    host: str = "127.0.0.1"
    port: int = 8000
    model_dir: Path | None = None
    tiny_random_model: bool = False
    require_auth: bool = False  # forced on when bound to a non-loopback address
    workers: int = 1
    generator_process: bool = True  # run the model in a child process (keeps the API responsive)
    torch_threads: int = 0  # CPU threads per generation; 0 keeps torch's default
    # Added to the model process's nice value: when the CPU is short, API requests get it before generation
    # does (on an idle machine generation runs at full speed all the same). 0 keeps the server's priority.
    generator_nice: int = 5

    max_prompt_chars: int = 500
    max_duration: float = 30.0
    max_count: int = 4
    max_batch_prompts: int = 16  # prompts (lines) of one batch request
    max_continue_seconds: float = 30.0  # audio a generation may continue (an upload, or a result it extends)
    page_size_max: int = 100

    rate_limit_per_minute: float = 30.0  # job submissions per API key; 0 turns the limit off
    rate_limit_burst: int = 10
    max_active_jobs_per_key: int = 8  # queued + running jobs per API key; 0 turns the quota off

    # Cross-site and size checks (see service/guard.py). Lists come from the environment comma-separated.
    allowed_hosts: Annotated[list[str], NoDecode] = []  # Host names beyond the bound one and loopback; "*": any
    cors_origins: Annotated[list[str], NoDecode] = []  # other web origins that may call the API (CORS on for them)
    max_body_bytes: int = 1 << 20  # request bodies above this get 413

    # OpenID Connect (service/oidc.py): bearer JWTs of this issuer are accepted beside API keys, each subject
    # owning its own jobs, and the page offers "Sign in". Naming an issuer turns auth on.
    oidc_issuer: str | None = None  # exactly the tokens' iss, e.g. https://login.example.com/realms/main
    oidc_audience: str | None = None  # an aud tokens may carry (the page's client id is accepted as well)
    oidc_client_id: str | None = None  # the page's public client (authorization code with PKCE); None: no button
    oidc_scopes: str = "openid"  # what the page asks the issuer for
    oidc_leeway_seconds: int = Field(default=60, ge=0, le=300)  # clock skew allowed on exp, nbf and iat
    oidc_cache_seconds: int = Field(default=3600, ge=10, le=86400)  # discovery document and keys kept this long
    oidc_refetch_seconds: float = Field(default=30.0, ge=0, le=3600)  # unknown key ids refetch keys at most this often

    progress_persist_seconds: float = 0.5  # how often running progress is written to the database
    switch_interval: float = 0.0005  # seconds; Python's GIL switch interval (see app.create_app)
    poll_seconds: float = 1.0  # how often an idle worker looks for jobs queued by another process
    # A running job's claim lasts this long unless its worker renews it (every quarter of it); a job whose lease
    # ran out (its worker was killed) goes back to the queue, on whichever server or worker notices first.
    lease_seconds: float = Field(default=30.0, ge=2.0, le=3600.0)
    # Celery on Redis: the API only records jobs and sends them to the broker; `soundgen worker` processes (on
    # any machine with the same database and storage) run the model. Events and cancels travel by its pub/sub.
    broker_url: str | None = None

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @classmethod
    def tiny(cls, data_dir: Path) -> ServiceSettings:
        """Settings for tests: the given data directory and the tiny random model."""
        return cls(data_dir=data_dir, tiny_random_model=True, max_duration=10.0, port=0, torch_threads=1,
                   poll_seconds=0.2)

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL of the job database."""
        return self.database_url or f"sqlite:///{self.data_dir / 'soundgen.db'}"

    @property
    def storage_root(self) -> str:
        """The storage URL (``file://`` path by default)."""
        return self.storage_url or f"file://{self.data_dir / 'storage'}"

    @property
    def auth_required(self) -> bool:
        """Whether requests must carry an API key or a sign-in token (always when bound beyond loopback, and
        whenever an OIDC issuer is named: each subject then owns its own jobs)."""
        return self.require_auth or bool(self.oidc_issuer) or not is_loopback(self.host)
