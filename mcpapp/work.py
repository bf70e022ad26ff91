"""Django's request lifecycle for the synchronous code of MCP requests, paid for only when it runs.

Django's ``ASGIHandler`` gives every request a thread of its own for its synchronous code (asgiref's
``ThreadSensitiveContext``: the ORM, sync views) and sends ``request_started`` / ``request_finished``
in it, whose receivers close the database connections that are broken or past ``CONN_MAX_AGE`` (and
hand pooled ones back). The MCP endpoints get the same, with two differences, because most MCP
requests (``ping``, ``tools/list``, a remembered token, an async tool) run no synchronous code at all,
and starting a thread plus two hops into it cost more than the SDK's whole answer to them:

- **the signals are sent only for a unit of work that runs synchronous code**, in its thread: the
  first synchronous call of the unit sends ``request_started`` before it runs, and
  ``request_finished`` is sent when the unit ends. A unit that ran none touched no connection and
  sends neither (Django's own receivers would have nothing to do; a site receiver that counts every
  request sees only the MCP requests that used Django);
- **the threads are kept** (:class:`RequestThreads`), one unit at a time each, as a WSGI server's
  threads serve request after request; so the connection a thread holds obeys ``CONN_MAX_AGE`` and
  Django's health checks exactly as under WSGI, and persistent connections are bounded by the
  threads kept rather than one per request. A thread not kept closes its connections and ends.

A unit of work is an HTTP request to the MCP endpoints (:class:`mcpapp.lifecycle.DjangoRequestLifecycle`)
and, when it runs outside one, a tool, resource or prompt of the registry (``mcpapp.registry``): in
stateful mode the SDK runs those in the session's task, which outlives the request that started it.
The thread is given to asgiref through its public seam, ``ThreadSensitiveContext(executor=...)``, so
every thread-sensitive ``sync_to_async`` in the unit (the async ORM's included) runs there.
"""

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core import signals
from django.db import connections

# Idle threads kept for the next units of work; more than this many requests at once start threads
# that end with their request. (Each holds at most one connection per database between requests,
# and only with CONN_MAX_AGE or a pool: with the default CONN_MAX_AGE = 0 it is closed at the end.)
IDLE_THREADS_KEPT = 64


class RequestThreads:
    """Single threads for units of work, kept between them. Used from the event loop's thread only."""

    def __init__(self, keep: int = IDLE_THREADS_KEPT):
        self.keep = keep
        self._idle: list[ThreadPoolExecutor] = []

    def take(self) -> ThreadPoolExecutor:
        return self._idle.pop() if self._idle else ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-django")

    def give_back(self, thread: ThreadPoolExecutor) -> None:
        if len(self._idle) < self.keep:
            self._idle.append(thread)
            return
        self._end(thread, wait=False)

    def close_all(self) -> None:
        """End every idle thread, closing its connections (tests, before the test database goes)."""
        while self._idle:
            self._end(self._idle.pop(), wait=True)

    @staticmethod
    def _end(thread: ThreadPoolExecutor, *, wait: bool) -> None:
        thread.submit(connections.close_all)  # runs after whatever the unit left queued
        thread.shutdown(wait=wait)

    def __len__(self) -> int:
        return len(self._idle)


request_threads = RequestThreads()


class DjangoWork(Executor):
    """The executor of one unit of work: takes a thread at its first synchronous call, which it runs
    after ``request_started``; :meth:`finish` sends ``request_finished`` there and gives the thread back."""

    def __init__(self, threads: RequestThreads, scope: dict | None = None):
        self._threads = threads
        self._scope = scope
        self._thread: ThreadPoolExecutor | None = None
        self.finished = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._thread is None:
            self._thread = self._threads.take()
            return self._thread.submit(self._first, fn, args, kwargs)
        return self._thread.submit(fn, *args, **kwargs)

    def _first(self, fn, args, kwargs):
        # Django's handler sends it with the ASGI scope (django.core.handlers.asgi.ASGIHandler.handle).
        signals.request_started.send(sender=DjangoWork, scope=self._scope)
        return fn(*args, **kwargs)

    async def run(self, fn, *args):
        """``fn`` in this unit's thread, if it has one (a connection to hand back, say); else nothing."""
        if self._thread is not None:
            await asyncio.wrap_future(self._thread.submit(fn, *args))

    async def finish(self) -> None:
        self.finished = True
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            await asyncio.wrap_future(thread.submit(signals.request_finished.send, sender=DjangoWork))
        finally:
            self._threads.give_back(thread)


_current: contextvars.ContextVar[DjangoWork | None] = contextvars.ContextVar("mcpapp_django_work", default=None)


@contextlib.asynccontextmanager
async def django_work(scope: dict | None = None) -> AsyncIterator[DjangoWork]:
    """A unit of work: its synchronous code runs in one kept thread, between Django's request signals."""
    work = DjangoWork(request_threads, scope)
    token = _current.set(work)
    try:
        async with ThreadSensitiveContext(executor=work):
            yield work
    finally:
        _current.reset(token)
        await work.finish()


def django_work_unless_inside() -> contextlib.AbstractAsyncContextManager:
    """:func:`django_work`, unless this code already runs inside an unfinished one (a tool called in
    its request's task, stateless mode), whose thread it then shares."""
    current = _current.get()
    if current is not None and not current.finished:
        return contextlib.nullcontext(current)
    return django_work()
