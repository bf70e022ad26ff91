"""Verified access tokens remembered per worker process, and forgotten the moment one is revoked.

Every MCP request carries a bearer token, so its lookup (a query joining the token, its user and
its client) is on the hot path of everything the server does. A token checked once is kept here,
keyed by its SHA-256 (what DOT stores), for at most ``MCPAPP["TOKEN_CACHE_SECONDS"]`` and never past its
expiry, which is checked on every use (RFC 6750 §3.1).

A revoked token must stop working at once, however it was revoked. Every way a token, its user or
its client changes ends in :func:`token_cache_revoke` (``mcpapp.signals``):

- **in this process** the token is forgotten at once and again when the transaction commits, so the
  very next request looks it up and finds it gone;
- **in the other workers** it is announced through Django's default cache, which every worker
  shares (the database or Redis): a tombstone per token, then a new value of one marker key. Each
  worker reads the marker in the background, started by requests, a little more often than
  ``MCPAPP["TOKEN_REVOCATION_POLL_SECONDS"]``, and when it changed drops the tokens that have a tombstone.
  A worker answers from memory only while its last completed read started less than that interval
  ago; otherwise it looks tokens up. A revocation is therefore refused everywhere within the
  interval (0.5 s by default), however slow a read, and no request ever waits for one.

A token whose lookup was under way while a revocation was learnt is used for that one request (it
was valid when the request began) but not remembered. When the shared cache cannot be read, this
process forgets everything and remembers nothing until it can: every request goes to the database.
"""

import asyncio
import contextvars
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import close_old_connections, transaction

from mcpapp.conf import app_settings

logger = logging.getLogger(__name__)

MARKER_KEY = "mcp-token-revocations"
TOMBSTONE_PREFIX = "mcp-token-revoked:"
# Tombstones outlive every entry that could still be remembered somewhere, with a margin.
TOMBSTONE_MARGIN_SECONDS = 60
TOMBSTONE_BATCH = 500
# A read of the revocations starts this far into the interval, so that it completes before memory
# stops being trusted (at the end of the interval).
READ_AHEAD = 0.6


@dataclass(frozen=True)
class VerifiedToken:
    """What the verifier learnt about a token from the database (never the token itself)."""

    scopes: tuple[str, ...]
    expires_at: float  # seconds since the epoch
    audiences: tuple[str, ...]
    # What each request's AccessToken is copied from (mcpapp.verifier): the client, the user (tools
    # get a copy, DjangoAccessToken.user, never this one) and the rest, but no token.
    access_token: Any


@dataclass
class _Remembered:
    token: VerifiedToken
    until: float  # on the cache's monotonic clock


class _Configured:
    """An attribute given at construction, or else read from ``MCPAPP[key]`` on every access (so a
    site's value and ``override_settings`` reach the cache that is built at import)."""

    def __init__(self, key: str):
        self.key = key

    def __set_name__(self, owner, name):
        self.attribute = "_" + name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__.get(self.attribute)
        return getattr(app_settings, self.key) if value is None else value

    def __set__(self, instance, value):
        instance.__dict__[self.attribute] = value


class VerifiedTokenCache:
    seconds = _Configured("TOKEN_CACHE_SECONDS")
    max_entries = _Configured("TOKEN_CACHE_MAX_ENTRIES")
    poll_seconds = _Configured("TOKEN_REVOCATION_POLL_SECONDS")

    def __init__(
        self,
        *,
        seconds: float | None = None,
        max_entries: int | None = None,
        poll_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.seconds = seconds
        self.max_entries = max_entries
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._entries: OrderedDict[str, _Remembered] = OrderedDict()
        self._lock = threading.Lock()  # forgetting happens in Django's threads, reading on the event loop
        # Bumped whenever tokens are forgotten: a lookup that started before must not be remembered.
        self.generation = 0
        self._marker: str | None = None
        self._synced_at = -float("inf")  # when the last completed read of the revocations started
        self._reading: asyncio.Task | None = None  # the read under way, if any
        self._shared_readable = True

    # --- This process ------------------------------------------------------------------------

    def get(self, checksum: str) -> VerifiedToken | None:
        if not self.trusted():
            return None
        with self._lock:
            remembered = self._entries.get(checksum)
            if remembered is None:
                return None
            if remembered.until <= self.clock():
                del self._entries[checksum]
                return None
            self._entries.move_to_end(checksum)
        return remembered.token

    def put(self, checksum: str, token: VerifiedToken, *, generation: int) -> bool:
        """Remember ``token`` unless tokens were forgotten since ``generation`` was read."""
        if self.seconds <= 0 or not self._shared_readable:
            return False
        lifetime = min(self.seconds, token.expires_at - time.time())
        if lifetime <= 0:
            return False
        until = self.clock() + lifetime
        with self._lock:
            if generation != self.generation:
                return False
            self._entries[checksum] = _Remembered(token, until)
            self._entries.move_to_end(checksum)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return True

    def forget(self, checksums: Iterable[str]) -> None:
        with self._lock:
            self.generation += 1
            for checksum in checksums:
                self._entries.pop(checksum, None)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    # --- The other workers -------------------------------------------------------------------

    def announce(self, checksums: Iterable[str]) -> None:
        """Tell every worker (through the shared cache) that these tokens are revoked. Synchronous:
        called from Django's code, after the revoking transaction committed."""
        checksums = list(checksums)
        timeout = self.seconds + TOMBSTONE_MARGIN_SECONDS
        try:
            for start in range(0, len(checksums), TOMBSTONE_BATCH):
                batch = checksums[start : start + TOMBSTONE_BATCH]
                cache.set_many({TOMBSTONE_PREFIX + checksum: True for checksum in batch}, timeout=timeout)
            # Last: a worker that sees the new marker finds every tombstone already there.
            cache.set(MARKER_KEY, uuid.uuid4().hex, timeout=None)
        except Exception:  # the cache backend's own errors (Redis, database) have no common base
            logger.exception(
                "Could not announce %d revoked token(s) to the other workers; they may accept them for up to %s s",
                len(checksums),
                self.seconds,
            )

    def trusted(self) -> bool:
        """Whether remembered tokens may be used now: only while the revocations announced up to
        ``poll_seconds`` ago are known, so a revocation is refused everywhere within that time even
        when a read of the shared cache is slow or fails."""
        return self._shared_readable and self.clock() - self._synced_at < self.poll_seconds

    def sync(self) -> None:
        """Start a read of the revocations other processes announced if one is due, in the background:
        no request waits for it. Until it completes, :meth:`trusted` says whether memory may serve."""
        if self.seconds <= 0 or self.clock() - self._synced_at < self.poll_seconds * READ_AHEAD:
            return
        if self._reading is not None and not self._reading.done():
            return
        read = sync_to_async(self.read_revocations, thread_sensitive=True)
        # A context of its own: not the request's (its Django thread ends with it), but asgiref's
        # one thread for code outside requests, where the read is one of Django's own. The task is
        # kept: the event loop holds only a weak reference to it.
        self._reading = asyncio.get_running_loop().create_task(read(), context=contextvars.Context())

    def read_revocations(self) -> None:
        """Forget the tokens other processes revoked since the last read (synchronous: Django's cache)."""
        started = self.clock()
        try:
            marker = cache.get(MARKER_KEY)
            if marker != self._marker:
                self._forget_tombstoned()
                self._marker = marker
            if not self._shared_readable:
                logger.warning("Revocations can be read from the shared cache again")
            self._shared_readable = True
            self._synced_at = started
        except Exception as error:  # any backend failure means: trust nothing remembered
            if self._shared_readable:
                logger.warning("Cannot read revocations from the shared cache, checking every token: %r", error)
            self._shared_readable = False
            self.clear()
        finally:
            close_old_connections()  # as at the end of a request: nothing held between reads

    def _forget_tombstoned(self) -> None:
        with self._lock:
            self.generation += 1  # lookups under way now might have read a revoked row
            checksums = list(self._entries)
        revoked: list[str] = []
        for start in range(0, len(checksums), TOMBSTONE_BATCH):
            keys = [TOMBSTONE_PREFIX + checksum for checksum in checksums[start : start + TOMBSTONE_BATCH]]
            revoked.extend(key.removeprefix(TOMBSTONE_PREFIX) for key in cache.get_many(keys))
        if revoked:
            self.forget(revoked)


# This process's cache, configured by MCPAPP (read on each use).
verified_tokens = VerifiedTokenCache()


def token_cache_revoke(checksums: Iterable[str]) -> None:
    """The tokens with these checksums are revoked, or their user or client changed: forget them
    here at once, and when the transaction commits, here again and in every worker."""
    checksums = [checksum for checksum in checksums if checksum]
    if not checksums:
        return
    verified_tokens.forget(checksums)

    def after_commit():
        verified_tokens.forget(checksums)
        verified_tokens.announce(checksums)

    transaction.on_commit(after_commit)
