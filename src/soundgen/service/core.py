"""What one server process holds (:class:`Service`), for the routes and the app that assembles them.

The routes import the service state from here, below the app, so that nothing imports the module that builds
the application (app.py -> routes -> deps -> core, never back).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from soundgen.errors import ModelNotFoundError, SoundgenError
from soundgen.service.auth import RateLimiter
from soundgen.service.db import Database
from soundgen.service.events import EventBus
from soundgen.service.genproc import ModelSpec, ProcessGenerator, load_model
from soundgen.service.metrics import Metrics
from soundgen.service.oidc import OidcVerifier, verifier_from_settings
from soundgen.service.settings import ServiceSettings
from soundgen.service.storage import Storage
from soundgen.service.storage_url import open_storage
from soundgen.service.worker import Generator, Worker

if TYPE_CHECKING:
    from soundgen.lm.prompt_tokens import PromptTokens
    from soundgen.service.dispatch import Dispatcher

log = logging.getLogger(__name__)
UNTRAINED_WARNING = ("This server runs a tiny UNTRAINED random model (--tiny-random-model): every result is "
                     "noise. It is for demos and tests only; start it with --model DIR for real sounds.")


class Service:
    """Everything one server process holds: settings, database, storage, events, worker, limits, the OIDC
    verifier (None without an issuer). With a broker (``settings.broker_url``) the worker is a
    :class:`~soundgen.service.dispatch.Dispatcher` that sends jobs to ``soundgen worker`` processes, and events
    travel over Redis."""

    def __init__(self, settings: ServiceSettings, load_generator: Callable[[], Generator] | None = None) -> None:
        self.settings = settings
        self.oidc: OidcVerifier | None = verifier_from_settings(settings)
        self.db = Database(settings.db_url)
        self.storage: Storage = open_storage(settings.storage_root, settings.storage_presign_seconds)
        self.metrics = Metrics()
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self.bus: EventBus
        self.worker: Worker | Dispatcher
        if settings.broker_url:  # the model runs in `soundgen worker` processes; events come back over Redis
            from soundgen.service.broker import RedisEventBus
            from soundgen.service.dispatch import Dispatcher

            redis_bus = RedisEventBus(settings.broker_url)
            self.bus, self.worker = redis_bus, Dispatcher(self.db, redis_bus, settings)
        else:
            self.bus = EventBus()
            self.worker = Worker(self.db, self.storage, self.bus, load_generator or default_generator(settings),
                                 settings, self.metrics)

    @functools.cached_property
    def example_prompts(self) -> list[str] | None:
        """The served model's own example prompts (``prompts.json`` of its directory), if it has them."""
        if self.settings.tiny_random_model:
            return None
        from soundgen.model_files import default_model_dir, read_example_prompts

        try:
            model_dir = self.settings.model_dir or default_model_dir()
        except ModelNotFoundError:
            return None
        return read_example_prompts(model_dir)

    @functools.cached_property
    def prompt_tokens(self) -> PromptTokens | None:
        """Counts prompts in the served model's text-encoder tokens, so that a submission over the encoder's
        limit is refused at once instead of failing in the worker; None when the model's config cannot be read
        (the worker then fails to load it and /readyz says why)."""
        from soundgen.lm.config import LMConfig, read_lm_config
        from soundgen.lm.prompt_tokens import PromptTokens
        from soundgen.model_files import default_model_dir

        try:
            if self.settings.tiny_random_model:  # TextToSound.tiny_random's text encoder
                return PromptTokens(LMConfig.tiny().text)
            model_dir = self.settings.model_dir or default_model_dir()
            return PromptTokens(read_lm_config(Path(model_dir) / "lm").text)
        except SoundgenError as e:
            log.warning("prompts are not counted in tokens at submission: %s", e)
            return None

    @property
    def model_name(self) -> str:
        """A short description of the model being served."""
        if self.settings.tiny_random_model:
            return "tiny random (untrained)"
        return str(self.settings.model_dir or "bundled default")


def default_generator(settings: ServiceSettings) -> Callable[[], Generator]:
    """A loader for the model named by ``settings`` (tiny random, a directory, or the bundled default).

    With ``settings.generator_process`` (the default) the model runs in a child process (see genproc).
    """

    def load() -> Generator:
        if settings.tiny_random_model:
            log.warning("*** %s ***", UNTRAINED_WARNING)
        spec = ModelSpec(settings.tiny_random_model, str(settings.model_dir) if settings.model_dir else None,
                         settings.torch_threads, settings.generator_nice)
        if settings.generator_process:
            return ProcessGenerator(spec)
        return load_model(spec).generate

    return load
