"""What a scope lets a client do, in the words of the tools it unlocks.

The authorization server issues scopes; the tools that need them are declared elsewhere (``mcpapp``'s
registry). A resource-server app registers a source of ``Capability`` from its ``ready()``, as it
registers its resource paths (``authserver.resources``), so the consent page, "Connected apps" and the
remembered grant can speak of tools without ``authserver`` importing the app that serves them.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from authserver.scopes import Scope, scope_registry


@dataclass(frozen=True)
class Capability:
    """One tool as a person is told about it."""

    name: str
    title: str
    summary: str  # one line
    # What the tool needs besides the base scope.
    scopes: tuple[str, ...]
    # Scopes it uses only if granted, each with what it does with it ("can also show your email").
    optional_scopes: tuple[tuple[str, str], ...] = ()
    # MCP tool annotations: not readOnlyHint, or destructiveHint (the spec's defaults say "may change").
    changes_data: bool = True

    def unlocked_by(self, covered: set[str]) -> bool:
        """Whether a token whose scopes expand to ``covered`` may call it."""
        return scope_registry.base.name in covered and all(name in covered for name in self.scopes)


@dataclass
class OptionalScope:
    """A scope the person may add on the consent page though the client did not ask, and why."""

    scope: Scope
    reasons: list[str] = field(default_factory=list)  # "Who am I can also show your email"


_sources: list[Callable[[], Iterable[Capability]]] = []


def capability_sources_register(source: Callable[[], Iterable[Capability]]) -> None:
    """Add a callable listing capabilities (read on each use: what a deploy serves now)."""
    if source not in _sources:
        _sources.append(source)


def capabilities() -> list[Capability]:
    return [capability for source in _sources for capability in source()]


def capabilities_unlocked(scopes: Iterable[str]) -> list[Capability]:
    """The tools a token with ``scopes`` may call."""
    covered = scope_registry.expand(scopes)
    return [capability for capability in capabilities() if capability.unlocked_by(covered)]


def capabilities_by_scope(scopes: Iterable[str]) -> dict[str, list[Capability]]:
    """For each of ``scopes``, the tools it is (one of) the keys to: those needing it or a scope it
    covers; under the base scope, the tools that need nothing more."""
    listed: dict[str, list[Capability]] = {}
    every = capabilities()
    for name in scopes:
        if name not in scope_registry:
            continue
        if scope_registry[name].base:
            listed[name] = [capability for capability in every if not capability.scopes]
            continue
        covered = scope_registry.expand([name])
        listed[name] = [capability for capability in every if any(needed in covered for needed in capability.scopes)]
    return listed


def optional_scopes_offered(scopes: Iterable[str], *, available: Iterable[str]) -> list[OptionalScope]:
    """Scopes that tools unlocked by ``scopes`` would use if granted, not among ``scopes`` already, and
    that the client may get (``available``: the scopes backend's answer for it)."""
    covered = scope_registry.expand(scopes)
    # RFC 6749 §3.3: offering one the client may not get would fail the request with invalid_scope.
    may_get = set(available)
    offered: dict[str, OptionalScope] = {}
    for capability in capabilities():
        if not capability.unlocked_by(covered):
            continue
        for name, reason in capability.optional_scopes:
            if name in covered or name not in scope_registry or name not in may_get:
                continue
            entry = offered.setdefault(name, OptionalScope(scope_registry[name]))
            entry.reasons.append(f"{capability.title} {reason}")
    return list(offered.values())


def changing_capabilities_unseen(*, scopes: Iterable[str], seen: Iterable[str]) -> list[Capability]:
    """Tools that can change data, unlocked by ``scopes``, that the person was not shown when they
    last allowed this client (``seen``): a deploy added them under a scope granted before."""
    known = set(seen)
    return [
        capability
        for capability in capabilities_unlocked(scopes)
        if capability.changes_data and capability.name not in known
    ]
