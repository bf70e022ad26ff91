"""Django's request lifecycle for requests to the MCP endpoints, which Django's handler never sees.

Django's ``ASGIHandler`` runs each request's synchronous code in a thread of its own and sends
``request_started`` / ``request_finished``, whose receivers close database connections that are
broken or past ``CONN_MAX_AGE`` (and hand pooled ones back). Without the same here, every MCP
request of a worker would share one thread and one connection, and a connection broken by a
database restart would fail every later request until a restart. Each MCP request is a unit of
work of ``mcpapp.work``: the same, paid for only by requests that run synchronous code.

While the database is unreachable the MCP endpoint answers 503 with a JSON error and
``Retry-After`` instead of Starlette's plain-text 500, and serves again as soon as it is back.

When the server is told to stop (SIGTERM, a deploy), uvicorn stops accepting connections and waits
(up to ``--timeout-graceful-shutdown``) for the requests in flight:

- a request in flight is answered in full. sse-starlette, which the MCP SDK answers with, would
  end every event stream the moment the signal arrives, and a Streamable HTTP ``tools/call`` is
  answered as an event stream: its caller would get a cut response. Its documented switch
  (``AppStatus.disable_automatic_graceful_drain``) turns that off for the MCP app's lifespan.
- an open-ended event stream (a GET: Streamable HTTP's standalone stream, the legacy SSE
  transport's) is ended cleanly at once, as if its client had left, so the shutdown does not wait
  the whole timeout for it; the client reconnects to another server. The stop is learnt from the
  signal itself (:class:`StopSignals`), not from the server's internals.

Such a stream needs the database only to check its token, so its connection is handed back once
the stream has started, not when the client leaves: otherwise every open stream would hold one of
the worker's pooled connections, and a few connected clients would starve the rest.
"""

import contextlib
import gc
import logging
import signal
import sys
import threading

import anyio
from django.db import close_old_connections
from sse_starlette.sse import AppStatus
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, SERVER_ERROR, UNAVAILABLE
from mcpapp.auth import send_json
from mcpapp.conf import app_settings
from mcpapp.work import django_work

logger = logging.getLogger(__name__)


SHUTDOWN_POLL_SECONDS = 0.5
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Whether this process was told to stop (SIGTERM, or SIGINT: what uvicorn stops on).

    Learnt through Python's own signal API, not a server's internals: while the MCP app's lifespan
    runs, each stop signal's handler is wrapped so that it first notes the stop, then does whatever
    was installed before (uvicorn's graceful shutdown). Only the main thread can install handlers;
    elsewhere (``runserver``'s autoreloader thread) a stop is simply not noticed early.
    """

    def __init__(self):
        self.stopping = False
        self._previous: dict[int, object] = {}

    def _noted(self, previous):
        def handler(signum, frame):
            self.stopping = True
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL and signum == signal.SIGINT:
                signal.default_int_handler(signum, frame)
            elif previous == signal.SIG_DFL:
                sys.exit(128 + signum)

        return handler

    def watch(self) -> None:
        self.stopping = False
        if threading.current_thread() is not threading.main_thread():
            return
        for stop in STOP_SIGNALS:
            previous = signal.getsignal(stop)
            self._previous[stop] = previous
            signal.signal(stop, self._noted(previous))

    def unwatch(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for stop, previous in self._previous.items():
            signal.signal(stop, previous)
        self._previous.clear()


stop_signals = StopSignals()


_heap_frozen = False


def freeze_startup_heap() -> None:
    """``MCPAPP["GC_FREEZE_AT_STARTUP"]``: the objects start-up built, collected once and then frozen
    (``gc.freeze``): later collections skip them. Once per process (later lifespans, e.g. tests',
    find it done)."""
    global _heap_frozen
    if _heap_frozen or not app_settings.GC_FREEZE_AT_STARTUP:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def graceful_shutdown():
    """For the MCP app's lifespan: stop signals noted (:class:`StopSignals`), and event streams left
    to end on their own instead of sse-starlette cutting them all at the stop signal, with its
    documented switch (open-ended ones are ended by :func:`disconnect_at_shutdown`)."""
    AppStatus.disable_automatic_graceful_drain()
    stop_signals.watch()
    try:
        yield
    finally:
        stop_signals.unwatch()


def disconnect_at_shutdown(receive: Receive) -> Receive:
    """``receive`` for an open-ended stream: once the server is stopping, the client "has left"."""

    async def receive_or_disconnect() -> Message:
        message: Message | None = None
        async with anyio.create_task_group() as group:

            async def from_client() -> None:
                nonlocal message
                message = await receive()
                group.cancel_scope.cancel()

            async def at_shutdown() -> None:
                nonlocal message
                while not stop_signals.stopping:
                    await anyio.sleep(SHUTDOWN_POLL_SECONDS)
                message = message or {"type": "http.disconnect"}
                group.cancel_scope.cancel()

            group.start_soon(from_client)
            group.start_soon(at_shutdown)
        return message

    return receive_or_disconnect


class DjangoRequestLifecycle:
    """Each HTTP request to the MCP endpoints is a unit of work (``mcpapp.work``): Django's request
    signals and a thread, only if it runs synchronous code."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        open_ended = scope["method"] == "GET"  # an event stream that lasts until the client leaves
        started = finished = False

        async with django_work(scope) as work:

            async def tracking_send(message):
                nonlocal started, finished
                started = started or message["type"] == "http.response.start"
                finished = finished or message["type"] == "http.response.body" and not message.get("more_body", False)
                await send(message)
                if open_ended and message["type"] == "http.response.start":  # the token is checked: no more queries
                    await work.run(close_old_connections)

            try:
                await self.app(scope, disconnect_at_shutdown(receive) if open_ended else receive, tracking_send)
                if open_ended and started and not finished:
                    # Ended by the shutdown: close the stream properly, so the client sees its end.
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            except DATABASE_UNAVAILABLE as error:
                if started:
                    raise
                logger.warning("Database unavailable answering %s %s: %s", scope["method"], scope["path"], error)
                await send_json(send, 503, UNAVAILABLE, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())])
            except Exception:
                # A bug: answered with a JSON 500 if nothing was sent yet, then raised for the
                # server to log (as Starlette's error layer does, with a plain-text page).
                if not started:
                    await send_json(send, 500, SERVER_ERROR)
                raise
