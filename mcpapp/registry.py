"""What installed apps add to the MCP server: tools, resources and prompts, each with the scopes it needs.

An app puts them in a module of its own, ``<app>/mcp_tools.py``, which ``mcpapp`` imports at start-up
for every installed app (as the admin imports ``admin.py``)::

    from authserver.scopes import Scope, scope_registry
    from mcpapp.registry import current_user, mcp_registry

    scope_registry.register(Scope("notes:read", "Read your notes"))

    @mcp_registry.tool(scopes=["notes:read"], title="List my notes")
    async def list_notes(limit: int = 20) -> list[str]:
        return [note.title async for note in Note.objects.filter(owner=current_user())[:limit]]

Every entry needs the base scope plus the scopes it declares. ``RequireBearerToken`` refuses a
``tools/call``, ``resources/read`` or ``prompts/get`` whose token lacks them with HTTP 403 and a
scope challenge before anything runs; the entry checks again when called (defence in depth).
Synchronous functions are run in the request's Django thread (``mcpapp.work``), so they may use the
ORM as usual.
"""

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from asgiref.sync import sync_to_async
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.shared.uri_template import UriTemplate

from authserver.capabilities import Capability
from authserver.scopes import scope_registry
from mcpapp.work import django_work_unless_inside

Kind = Literal["tool", "resource", "prompt"]

# The JSON-RPC request that uses each kind of entry, and the parameter that names the entry.
USES: dict[str, tuple[Kind, str]] = {
    "tools/call": ("tool", "name"),
    "resources/read": ("resource", "uri"),
    "prompts/get": ("prompt", "name"),
}


class ScopeRequired(PermissionError):
    """The current request's token does not carry what an entry needs (the HTTP gate normally stops it first)."""


# How each kind of entry reports an expected refusal to the SDK (an error result, not a crash).
_REFUSAL: dict[str, type[Exception]] = {"tool": ToolError, "resource": ResourceError, "prompt": ValueError}


def current_token():
    """The verified access token of the request being served (a ``mcpapp.verifier.DjangoAccessToken``)."""
    token = get_access_token()
    if token is None:  # only reachable outside the protected endpoints; refuse rather than guess
        raise ScopeRequired("No authenticated user")
    return token


def current_user():
    """The Django user the current request acts for."""
    return current_token().user


@dataclass(frozen=True)
class Entry:
    kind: Kind
    key: str  # the tool or prompt name, or the resource URI (template)
    fn: Callable[..., Any]
    scopes: tuple[str, ...]  # declared by the entry; the base scope comes on top
    options: dict[str, Any] = field(default_factory=dict)
    # Scopes a tool uses only if granted, each with what it then does ("can also show your email").
    optional_scopes: tuple[tuple[str, str], ...] = ()

    @property
    def required_scopes(self) -> list[str]:
        """What a token needs to use this entry: the base scope, then the entry's own."""
        return list(dict.fromkeys([scope_registry.base.name, *self.scopes]))

    def names(self, value: str) -> bool:
        if self.kind != "resource" or not UriTemplate.is_template(self.key):
            return value == self.key
        return _parsed_template(self.key).match(value) is not None


@functools.cache
def _parsed_template(template: str) -> UriTemplate:
    return UriTemplate.parse(template)


def _guarded(entry: Entry) -> Callable[..., Any]:
    """``entry.fn`` as an async function that first checks the current token's scopes.

    ``functools.wraps`` keeps the signature and annotations, which the SDK reads for the input schema.
    """
    fn = entry.fn
    is_async = inspect.iscoroutinefunction(fn)

    @functools.wraps(fn)
    async def guarded(*args, **kwargs):
        token = get_access_token()
        missing = scope_registry.missing(granted=token.scopes if token else (), required=entry.required_scopes)
        if missing:
            raise _REFUSAL[entry.kind](f"This {entry.kind} needs the scope(s): {' '.join(missing)}")
        # Its own unit of work (Django's request signals around its sync code) unless it runs in its
        # request's: in stateful mode the SDK calls it from the session's task (mcpapp.work).
        async with django_work_unless_inside():
            if is_async:
                return await fn(*args, **kwargs)
            return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)

    return guarded


def _scope_meta(entry: Entry) -> dict[str, Any]:
    # The shape of SEP-1488 / the OpenAI Apps SDK (`securitySchemes`), under `_meta` until MCP has a field.
    return {"securitySchemes": [{"type": "oauth2", "scopes": entry.required_scopes}]}


class MCPRegistry:
    """Tools, resources and prompts from every installed app, installed into each ``MCPServer`` built."""

    def __init__(self):
        self._entries: dict[tuple[Kind, str], Entry] = {}

    def _add(self, entry: Entry) -> None:
        existing = self._entries.get((entry.kind, entry.key))
        if existing is not None and existing.fn is not entry.fn:
            raise ValueError(f"Another {entry.kind} is already registered as {entry.key!r}")
        self._entries[(entry.kind, entry.key)] = entry

    def tool(
        self,
        *,
        scopes: Sequence[str] = (),
        optional_scopes: Mapping[str, str] | None = None,
        name: str | None = None,
        **options,
    ):
        """Register an MCP tool needing ``scopes`` (``options`` are ``MCPServer.tool``'s:
        title, description, annotations, icons, meta, structured_output).

        ``optional_scopes`` maps scopes the tool uses *if granted* to what it then does, completing
        "<title> ..." (``{"email": "can also show your email"}``): the consent page offers them,
        unticked, even when the client did not ask; the tool reads ``current_token().scopes``."""

        def decorator(fn):
            optional = tuple((optional_scopes or {}).items())
            self._add(Entry("tool", name or fn.__name__, fn, tuple(scopes), options, optional))
            return fn

        return decorator

    def resource(self, uri: str, *, scopes: Sequence[str] = (), **options):
        """Register an MCP resource or resource template (``options`` are ``MCPServer.resource``'s)."""

        def decorator(fn):
            self._add(Entry("resource", uri, fn, tuple(scopes), options))
            return fn

        return decorator

    def prompt(self, *, scopes: Sequence[str] = (), name: str | None = None, **options):
        """Register an MCP prompt (``options`` are ``MCPServer.prompt``'s: title, description, icons)."""

        def decorator(fn):
            self._add(Entry("prompt", name or fn.__name__, fn, tuple(scopes), options))
            return fn

        return decorator

    def __iter__(self):
        return iter(self._entries.values())

    def install(self, server: MCPServer) -> None:
        for entry in self:
            options = dict(entry.options)
            if entry.kind != "prompt":  # the SDK's prompts carry no _meta
                options["meta"] = {**(options.get("meta") or {}), **_scope_meta(entry)}
            guarded = _guarded(entry)
            if entry.kind == "tool":
                server.tool(name=entry.key, **options)(guarded)
            elif entry.kind == "resource":
                server.resource(entry.key, **options)(guarded)
            else:
                server.prompt(name=entry.key, **options)(guarded)

    def find(self, kind: Kind, value: str) -> Entry | None:
        exact = self._entries.get((kind, value))
        if exact is not None or kind != "resource":  # tools and prompts are named exactly
            return exact
        return next((entry for entry in self if entry.kind == kind and entry.names(value)), None)

    @staticmethod
    def named(method: Any, params: Any) -> tuple[Kind, str] | None:
        """The kind of entry and the name (or URI) a ``tools/call``, ``resources/read`` or ``prompts/get``
        names; None for any other request, or one whose name is missing or not a string."""
        use = USES.get(method) if isinstance(method, str) else None
        if use is None or not isinstance(params, dict):
            return None
        kind, key_param = use
        value = params.get(key_param)
        return (kind, value) if isinstance(value, str) else None

    def scopes_for_message(self, message: Any) -> list[str]:
        """The scopes the registered entries a JSON-RPC request (or batch) uses need, for the HTTP gate.

        Anything that is not a use of a registered entry needs nothing more here; the SDK answers
        malformed or unknown requests itself.
        """
        needed: list[str] = []
        for request in message if isinstance(message, list) else [message]:
            named = self.named(request.get("method"), request.get("params")) if isinstance(request, dict) else None
            entry = self.find(*named) if named else None
            if entry is not None:
                needed.extend(entry.required_scopes)
        return list(dict.fromkeys(needed))

    def undeclared_scopes(self) -> Iterable[tuple[Entry, str]]:
        """Scopes entries need or use that nobody registered (a typo would make an entry unusable)."""
        for entry in self:
            for name in scope_registry.unknown([*entry.scopes, *(name for name, _why in entry.optional_scopes)]):
                yield entry, name

    def capabilities(self) -> list[Capability]:
        """The tools as the consent page and "Connected apps" describe them (``authserver.capabilities``)."""
        return [_capability(entry) for entry in self if entry.kind == "tool"]


def _capability(entry: Entry) -> Capability:
    description = entry.options.get("description") or inspect.getdoc(entry.fn) or ""
    annotations = entry.options.get("annotations")
    # MCP tool annotations: readOnlyHint defaults to false and destructiveHint to true, so a tool that
    # says nothing may change data; readOnlyHint true makes destructiveHint moot unless it insists.
    read_only = (
        annotations is not None and annotations.read_only_hint is True and annotations.destructive_hint is not True
    )
    return Capability(
        name=entry.key,
        title=entry.options.get("title") or entry.key,
        summary=description.strip().split("\n")[0],
        scopes=entry.scopes,
        optional_scopes=entry.optional_scopes,
        changes_data=not read_only,
    )


mcp_registry = MCPRegistry()
