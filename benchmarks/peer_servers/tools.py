"""The peers' tools: the product's own (every entry of ``mcpapp.registry.mcp_registry``, with its
title, annotations and declared scopes under ``_meta``), unguarded, so that ``tools/list`` lists the
same tools with the same schemas; ``whoami`` and ``create_note`` answer for the peer account, which
needs no token. Runs under the product's settings (the benchmark gives the peers the product's
server's environment), so a note is written exactly as the product writes it."""

import functools
import logging
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
# As the product runs here (DJANGO_LOG_LEVEL=WARNING): the SDK would log every request at INFO.
logging.getLogger("mcp").setLevel(logging.WARNING)

from django.contrib.auth import get_user_model  # noqa: E402

from benchmarks.peer_servers import PEER_CLIENT_ID, PEER_USERNAME  # noqa: E402
from mcpapp.mcp_tools import Identity  # noqa: E402
from mcpapp.registry import Entry, mcp_registry  # noqa: E402
from notes import services  # noqa: E402
from notes.mcp_tools import NoteItem, note_item  # noqa: E402

_owner_pk: list[int] = []


async def _owner() -> int:
    if not _owner_pk:
        _owner_pk.append((await get_user_model().objects.aget(username=PEER_USERNAME)).pk)
    return _owner_pk[0]


def _for_the_peer(entry: Entry):
    """``entry``'s function, or for whoami and create_note one with its signature acting for the peer."""
    if entry.key == "whoami":

        @functools.wraps(entry.fn)
        async def whoami() -> Identity:
            return Identity(sub="1", username=PEER_USERNAME, client_id=PEER_CLIENT_ID, scope="mcp profile")

        return whoami
    if entry.key == "create_note":

        @functools.wraps(entry.fn)
        async def create_note(title: str, body: str = "") -> NoteItem:
            return note_item(await services.note_create(owner_id=await _owner(), title=title, body=body))

        return create_note
    return entry.fn


def product_entries():
    """(entry, function, options) for every tool, resource and prompt the product registers."""
    for entry in mcp_registry:
        options = dict(entry.options)
        if entry.kind != "prompt":
            scopes = {"securitySchemes": [{"type": "oauth2", "scopes": entry.required_scopes}]}
            options["meta"] = {**(options.get("meta") or {}), **scopes}
        yield entry, _for_the_peer(entry), options
