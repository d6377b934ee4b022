"""Celery on Redis (``SOUNDGEN_BROKER_URL=redis://...``): the names both sides share, and events over pub/sub.

With a broker the API only records a job and sends a task naming it; ``soundgen worker`` processes take the
tasks, claim the job in the database (the source of truth) and run it. A task is acknowledged after it ran
(``acks_late``), so a task whose worker is killed is delivered again after the broker's visibility timeout; long
before that the job's lease runs out and a server or worker puts it back in the queue and sends it again (see
``jobs.reap_expired``). A task for a job that is not queued any more does nothing, so a task delivered twice runs
its job once.

Job events and cancels travel over Redis pub/sub: every API replica hears every event, whichever worker sent it,
and every worker hears every cancel.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from soundgen.service.events import EventBus

if TYPE_CHECKING:
    import redis
    from celery import Celery

log = logging.getLogger(__name__)

TASK_NAME = "soundgen.run_job"
QUEUE = "soundgen"
EVENTS_CHANNEL = "soundgen:events"
CANCEL_CHANNEL = "soundgen:cancel"
# An unacknowledged task (its worker died) goes to another worker after this long. Jobs are reaped much sooner by
# their lease; this is the backstop when no server runs. A task delivered while its job still runs does nothing.
VISIBILITY_TIMEOUT_S = 3600
CONNECT_TIMEOUT_S = 5.0


def celery_app(broker_url: str) -> Celery:
    """The Celery application of the API (which sends tasks) and of ``soundgen worker`` (which runs them)."""
    from celery import Celery

    app = Celery("soundgen", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # acknowledge after the job ran: a killed worker's task is delivered again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds only the tasks it runs
        task_ignore_result=True,  # results live in the database and storage; no result backend
        task_default_queue=QUEUE,
        task_serializer="json", accept_content=["json"],
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        broker_connection_retry_on_startup=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                   "interval_max": 1.0},
        # A lost broker connection does not stop running jobs: their leases are in the database, and a task delivered
        # again while its job runs does nothing.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def redis_client(url: str, *, timeout: float | None = CONNECT_TIMEOUT_S) -> redis.Redis:
    """A Redis client for ``url``; ``timeout`` bounds each command (None: no bound, for pub/sub listeners)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=timeout,
                                health_check_interval=30)


def broker_problem(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why the broker at ``url`` cannot be used (None: it answers PING)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return "only Redis brokers are supported: use redis://host:port/db (or rediss:// for TLS)"
    try:
        import redis
    except ImportError:
        return "the redis package is missing: pip install 'soundgen[service]'"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as e:
        return " ".join(str(e).split()) or type(e).__name__
    return None


def hide_password(url: str) -> str:
    """``url`` with the password replaced by ``***`` (for logs and one-line answers)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


class RedisEventBus(EventBus):
    """Job events through Redis pub/sub: :meth:`publish` sends to every process, and a bound bus (an API server's)
    delivers what any process sent to its own WebSocket subscribers.

    Sending happens on a thread of its own, in order, so that publishers (request handlers, the worker's progress
    callback) never wait for the network. :meth:`send_cancel` asks every worker to stop a job; ``on_cancel`` (a
    worker's) hears those requests.

    Args:
        url: the broker's ``redis://`` URL.
        on_cancel: called with a job id for every cancel sent by any process (None: cancels are not listened to).
    """

    def __init__(self, url: str, on_cancel: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.url = url
        self._on_cancel = on_cancel
        self._out: queue.Queue[tuple[str, str] | None] = queue.Queue(maxsize=100_000)
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None
        self._sender = threading.Thread(target=self._send_loop, name="soundgen-redis-publish", daemon=True)
        self._sender.start()
        if on_cancel is not None:
            self._start_listener([CANCEL_CHANNEL])

    def bind(self, loop: Any) -> None:
        """Attach the server's event loop and start hearing the events of every process."""
        super().bind(loop)
        self._start_listener([EVENTS_CHANNEL] + ([CANCEL_CHANNEL] if self._on_cancel else []))

    def wants(self, owner: str, job_id: str) -> bool:
        """Always: a subscriber of another process may want it."""
        return True

    def publish(self, owner: str, event: dict[str, Any]) -> None:
        """Send ``event`` to the subscribers of every process (this one's included, when bound)."""
        self._send(EVENTS_CHANNEL, json.dumps({"owner": owner, "event": event}))

    def send_cancel(self, job_id: str) -> None:
        """Ask the worker running ``job_id``, wherever it is, to stop it at its next step."""
        self._send(CANCEL_CHANNEL, job_id)

    def close(self) -> None:
        """Send what is waiting (for at most a few seconds) and stop listening."""
        self._closed.set()
        self._out.put(None)
        self._sender.join(5)
        if self._listener is not None:
            self._listener.join(5)

    def _send(self, channel: str, payload: str) -> None:
        try:
            self._out.put_nowait((channel, payload))
        except queue.Full:
            log.warning("too many events wait for the broker; dropping one (WebSockets re-read the database)")

    def _send_loop(self) -> None:
        import redis

        client = redis_client(self.url)
        while True:
            item = self._out.get()
            if item is None:
                break
            try:
                client.publish(*item)
            except redis.RedisError as e:  # the sockets re-read the database every few seconds: nothing is lost
                log.warning("cannot publish a job event to the broker: %s", e)
        client.close()

    def _start_listener(self, channels: list[str]) -> None:
        if self._listener is not None:
            return
        self._listener = threading.Thread(target=self._listen, args=(channels,), name="soundgen-redis-listen",
                                          daemon=True)
        self._listener.start()

    def _listen(self, channels: list[str]) -> None:
        import redis

        while not self._closed.is_set():
            client = redis_client(self.url, timeout=None)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(*channels)
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._deliver(message)
            except (redis.RedisError, OSError) as e:
                log.warning("lost the broker's pub/sub (%s); listening again in 1 s", e)
                self._closed.wait(1.0)
            finally:
                client.close()

    def _deliver(self, message: dict[str, Any]) -> None:
        channel, data = message["channel"], message["data"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        data = data.decode() if isinstance(data, bytes) else str(data)
        if channel == CANCEL_CHANNEL:
            if self._on_cancel is not None:
                self._on_cancel(data)
            return
        try:
            body = json.loads(data)
            owner, event = str(body["owner"]), body["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed job event on %s", EVENTS_CHANNEL)
            return
        super().publish(owner, event)
